/* Read-only access to files inside disk images through libguestfs: one
 * appliance launch per call, for one disk or for many. */
#ifndef QVSA_IMAGE_H
#define QVSA_IMAGE_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>

/* Use TCG in every libguestfs launch (set once accel is resolved to tcg). */
void image_set_force_tcg(bool on);
bool image_force_tcg(void);

/* Open disk (format "raw", "qcow2", "vmdk", "vpc", "vhdx" or NULL to probe)
 * read-only, mount its root filesystem (the partition holding /etc/qvsa-release),
 * and read each of paths. ret_contents[i] gets the file's text or NULL if it
 * does not exist; caller frees each and the array. */
int image_read_files(const char *disk, const char *format, const char *const *paths, char ***ret_contents);

/* One disk for image_read_many. */
struct image_disk {
	const char *path;   /* the image file, opened read-only; borrowed, required */
	const char *format; /* QEMU format name as for image_read_files; NULL: probe */
	const char *name;   /* what messages call it (e.g. the artifact behind an overlay); NULL: path */
};

/* What image_read_many found on one disk. */
struct image_content {
	char **files;            /* files[i]: paths[i]'s bytes plus a NUL, NULL if absent; owned; NULL on error */
	size_t *lens;            /* lens[i]: length of files[i] (0 if absent); owned; NULL on error */
	size_t n_files;          /* entries in files and lens: the number of paths (0 on error) */
	char *error;             /* why this disk could not be read ("image 'X': ..."); owned; NULL if read */
	enum err_kind error_kind; /* ERR_INPUT (not a qvsa image) or ERR_FAIL; ERR_NONE if read */
};

/* Add all n disks read-only to ONE libguestfs appliance and, disk by disk,
 * mount its root filesystem (the partition holding /etc/qvsa-release) and
 * read each of paths (NULL-terminated). A disk that cannot be read gets its
 * own error in (*ret)[i].error and does not stop the others. Returns -1 with
 * an error recorded only when nothing could be read (handle, launch, a
 * signal); *ret (n entries, free with image_contents_free) is written only
 * on success. n == 0 launches nothing. */
int image_read_many(const struct image_disk *disks, size_t n, const char *const *paths,
		    struct image_content **ret) __attribute__((nonnull(3, 4)));
/* Free n entries of an image_read_many result and the array; accepts NULL. */
void image_contents_free(struct image_content *c, size_t n);

/* True if partition or filesystem fs (as libguestfs names it) lies on
 * device dev ("/dev/sdb1" and "/dev/sdb" are on "/dev/sdb"; "/dev/sdba1" is not). */
bool image_fs_on_device(const char *fs, const char *dev) __attribute__((nonnull));

#endif
