/* Artifact writers: one constant table of operations per format. A target's
 * data file names its writer; adding a format is one file plus one row in
 * writer.c's table. */
#ifndef QVSA_WRITER_H
#define QVSA_WRITER_H

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
};

/* The writer called name, or NULL. */
const struct writer_ops *writer_find(const char *name);
/* Names of all writers, NULL-terminated (static). */
const char *const *writer_names(void);

/* Shared by writers that use qemu-img: virtual size and format as qemu-img
 * reports them; records an error naming the artifact if they differ. */
int writer_qemu_img_check(const char *artifact, const char *format, uint64_t expect_size);

#endif
