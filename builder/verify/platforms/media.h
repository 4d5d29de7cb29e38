/* Deterministic media images for the platforms verification plays: the
 * NoCloud seed, the OpenStack config drive, vSphere's OVF environment ISO
 * (ISO9660 + Rock Ridge + Joliet, written with libarchive) and Azure's
 * provisioning DVD (UDF + ISO9660 bridge, written by genisoimage). Every
 * timestamp inside is one fixed UTC instant (SOURCE_DATE_EPOCH, else 0), so
 * the same files give the same bytes on any machine, in any time zone. */
#ifndef QVSA_MEDIA_H
#define QVSA_MEDIA_H

#include <stddef.h>
#include <time.h>

/* One regular file of an image. Parent folders are made as needed. */
struct media_file {
	const char *path; /* inside the image, '/'-separated, no leading '/', e.g. "openstack/latest/user_data" */
	const char *data; /* contents; borrowed */
	size_t len;       /* bytes of data */
};

/* The instant stamped everywhere: SOURCE_DATE_EPOCH if set, else 0. */
int media_epoch(time_t *ret);

/* An ISO9660 image (Rock Ridge + Joliet) with volume id label holding files,
 * written to path atomically. */
int media_write_iso(const char *label, const struct media_file *files, size_t n_files, const char *path);

/* A UDF + ISO9660 bridge image (genisoimage -udf) with volume id label
 * holding files, staged in a folder under tmpdir (removed afterwards) and
 * written to path atomically. */
int media_write_udf(const char *label, const struct media_file *files, size_t n_files, const char *tmpdir,
		    const char *path);

#endif
