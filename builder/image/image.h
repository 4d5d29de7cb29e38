/* Read-only access to files inside disk images through libguestfs: one
 * appliance launch per call, for one disk or for many. */
#ifndef QVSA_IMAGE_H
#define QVSA_IMAGE_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Use TCG in every libguestfs launch (set once accel is resolved to tcg). */
void image_set_force_tcg(bool on);
bool image_force_tcg(void);

/* Open disk (format "raw", "qcow2", "vmdk", "vpc", "vhdx" or NULL to probe)
 * read-only, mount its root filesystem (the partition holding /etc/qvsa-release),
 * and read each of paths. ret_contents[i] gets the file's text or NULL if it
 * does not exist; caller frees each and the array. Every reader here follows
 * a path that is a symlink as the guest would (inside the image's root); a
 * path that is neither a regular file nor a symlink to one counts as absent. */
int image_read_files(const char *disk, const char *format, const char *const *paths, char ***ret_contents);

/* One disk for image_read_many. */
struct image_disk {
	const char *path;   /* the image file, opened read-only; borrowed, required */
	const char *format; /* QEMU format name as for image_read_files; NULL: probe */
	const char *name;   /* what messages call it (e.g. the artifact behind an overlay); NULL: path */
	const char *const *paths; /* what to read from this disk (NULL-terminated; borrowed); NULL: the
				   * call's paths. Its image_content follows this list. */
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
 * read each of its paths (the disk's own, else paths: NULL-terminated; NULL
 * only when every disk has its own). A disk that cannot be read gets its
 * own error in (*ret)[i].error and does not stop the others. Returns -1 with
 * an error recorded only when nothing could be read (handle, launch, a
 * signal); *ret (n entries, free with image_contents_free) is written only
 * on success. n == 0 launches nothing. */
int image_read_many(const struct image_disk *disks, size_t n, const char *const *paths,
		    struct image_content **ret) __attribute__((nonnull(4)));
/* Free n entries of an image_read_many result and the array; accepts NULL. */
void image_contents_free(struct image_content *c, size_t n);
/* Drop what was read into c (files, lens), leaving its error. */
void image_content_clear(struct image_content *c) __attribute__((nonnull));

/* Read paths from one disk without an appliance (image_direct.c): qemu-img
 * makes a private sparse raw copy, the MBR/GPT is parsed here, and debugfs
 * reads the ext2/3/4 partition holding /etc/qvsa-release, after replaying
 * its journal on a copy when a guest left it dirty. paths (not d->paths) are
 * read; a symlink with a relative target is followed (a few hops). Returns 0
 * with *c filled as image_read_many would; 1 when this reader cannot be exact
 * for the disk (XFS, external journal, no root found, a tool missing or
 * failing, a symlink that is absolute, slow, too deep or leads above the
 * root), with the reason recorded; -1 on a signal. */
int image_read_direct(const struct image_disk *d, const char *const *paths, struct image_content *c)
	__attribute__((nonnull));
/* image_read_many, reading each disk directly where image_read_direct can
 * and the rest in ONE libguestfs launch (none if every disk was read
 * directly; QVSA_DIRECT_READ=0 sends every disk to libguestfs).
 * *ret_launched: how many disks went to libguestfs. */
int image_read_auto(const struct image_disk *disks, size_t n, const char *const *paths, struct image_content **ret,
		    size_t *ret_launched) __attribute__((nonnull(4, 5)));

/* The partitions of the raw disk open at fd (MBR primaries or GPT entries,
 * 512-byte sectors): byte offsets and sizes of at most max, their count in
 * *ret_n (0: no partition table). -1 for a table that is malformed or has
 * more than max entries. */
int image_partitions(int fd, uint64_t *offs, uint64_t *sizes, size_t max, size_t *ret_n) __attribute__((nonnull));

/* True if partition or filesystem fs (as libguestfs names it) lies on
 * device dev ("/dev/sdb1" and "/dev/sdb" are on "/dev/sdb"; "/dev/sdba1" is not). */
bool image_fs_on_device(const char *fs, const char *dev) __attribute__((nonnull));

#endif
