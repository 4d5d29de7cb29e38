/* Artifact writers: one constant table of operations per format. A target's
 * data file names its writer; adding a format is one file plus one row in
 * writer.c's table. */
#ifndef QVSA_WRITER_H
#define QVSA_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct target;
struct target_artifact;

/* What a writer is given. */
struct writer_input {
	const char *raw;             /* assembled raw disk (read only) */
	uint64_t size;               /* its size in bytes, already aligned for the target */
	const struct target *target; /* the target (name, firmware, devices) */
	const struct target_artifact *artifact; /* this file's writer options */
	const char *version;         /* "qVSA-X.Y" (for descriptors such as OVF) */
	const char *workdir;         /* scratch folder the writer may use */
	int64_t epoch;               /* SOURCE_DATE_EPOCH: the only time an artifact may carry (archive mtimes,
					VHD footer); 0 when unset */
	const char *build_id;        /* identity derived from the build's inputs: seeds the ids some formats
					need (VMDK CID, VHD/VHDX GUIDs); may be NULL */
	const char *name;            /* final file name, e.g. "qVSA-1.0-vmware.ova", for names inside the
					artifact (OVA members, VMDK extent); NULL: VERSION-TARGET.EXTENSION */
};

/* Operations of one artifact format. */
struct writer_ops {
	const char *name;        /* as named by targets' artifact.writer */
	const char *disk_format; /* QEMU/libvirt/libguestfs format of the bootable disk in the artifact */
	/* Write the artifact to out (a temporary name the caller renames). */
	int (*write)(const struct writer_input *in, const char *out);
	/* Check a finished artifact against the format's and the target's rules
	 * (virtual size, structure); independent of how it was written. */
	int (*check)(const char *path, uint64_t expect_size, const struct target_artifact *a);
	/* Container formats only (OVA, GCE tar.gz), else NULL: extract the bootable
	 * disk (of disk_format) into dir; *ret_disk is its path, caller frees. */
	int (*unpack)(const char *artifact, const char *dir, char **ret_disk);
};

/* The writer called name, or NULL. */
const struct writer_ops *writer_find(const char *name);

/* Shared by writers that use qemu-img: virtual size and format as qemu-img
 * reports them; records an error naming the artifact if they differ. */
int writer_qemu_img_check(const char *artifact, const char *format, uint64_t expect_size);

/* Shared by the vmdk and ova writers (writer_vmdk.c). Write in->raw as a
 * stream-optimized VMDK to out whose embedded extent is called extent_name;
 * its CID derives from in->build_id, extent_name and the size. */
int writer_vmdk_stream(const struct writer_input *in, const char *out, const char *extent_name);
/* Check a VMDK's first len bytes (enough to hold its embedded descriptor):
 * sparse header, stream-optimized, capacity expect_size. what prefixes error
 * messages, e.g. "artifact 'x.ova': member 'x-disk1.vmdk'". */
int writer_vmdk_check_head(const void *head, size_t len, uint64_t expect_size, const char *what);

#endif
