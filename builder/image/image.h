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

/* One entry below a listed directory. */
struct image_entry {
	char *path;    /* absolute path inside the image; owned */
	char type;     /* 'f' regular file, 'd' directory, 'l' symbolic link, '?' anything else */
	uint64_t size; /* bytes of a regular file; 0 for the other types */
};

/* One listed directory: every entry below it, at any depth. */
struct image_listing {
	bool exists;                 /* the path is a directory (a symbolic link to one is not followed) */
	struct image_entry *entries; /* sorted by path (byte order), the directory itself not included; owned */
	size_t n;                    /* entries */
};

/* What image_read_many found on one disk. */
struct image_content {
	char **files;            /* files[i]: paths[i]'s bytes plus a NUL, NULL if absent; owned; NULL on error */
	size_t *lens;            /* lens[i]: length of files[i] (0 if absent); owned; NULL on error */
	size_t n_files;          /* entries in files and lens: the number of paths (0 on error) */
	struct image_listing *lists; /* lists[i]: dirs[i] listed (the *_dirs readers); owned; NULL without dirs or on error */
	size_t n_lists;          /* entries in lists: the number of dirs (0 without dirs or on error) */
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
/* image_read_many, also listing each of dirs (NULL-terminated; NULL for
 * none) into (*ret)[i].lists: every file, directory and link below it,
 * recursively, with types and sizes, no link followed. */
int image_read_many_dirs(const struct image_disk *disks, size_t n, const char *const *paths, const char *const *dirs,
			 struct image_content **ret) __attribute__((nonnull(5)));
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
/* image_read_direct, also listing dirs as image_read_many_dirs does (one
 * debugfs run per depth below them); declines (1) a name it cannot quote. */
int image_read_direct_dirs(const struct image_disk *d, const char *const *paths, const char *const *dirs,
			   struct image_content *c) __attribute__((nonnull(1, 2, 4)));
/* image_read_many, reading each disk directly where image_read_direct can
 * and the rest in ONE libguestfs launch (none if every disk was read
 * directly; QVSA_DIRECT_READ=0 sends every disk to libguestfs).
 * *ret_launched: how many disks went to libguestfs. */
int image_read_auto(const struct image_disk *disks, size_t n, const char *const *paths, struct image_content **ret,
		    size_t *ret_launched) __attribute__((nonnull(4, 5)));
/* Whether image_read_auto tries the direct reader (QVSA_DIRECT_READ is not "0"). */
bool image_direct_read_enabled(void);
/* image_read_auto, also listing dirs as image_read_many_dirs does. */
int image_read_auto_dirs(const struct image_disk *disks, size_t n, const char *const *paths, const char *const *dirs,
			 struct image_content **ret, size_t *ret_launched) __attribute__((nonnull(5, 6)));

/* Parse the output of a debugfs run of "ls -p DIR" commands (each echoed as
 * "debugfs: ls -p ...") into lists[0..n): for each command, whether DIR is a
 * directory and its entries ("." and ".." left out), paths made from dirs[i]
 * and the names. -1 (error recorded) for output this parser does not know. */
int image_debugfs_parse_ls(const char *out, const char *const *dirs, size_t n, struct image_listing *lists)
	__attribute__((nonnull));
/* Add one entry to l (the path copied). */
void image_listing_add(struct image_listing *l, const char *path, char type, uint64_t size) __attribute__((nonnull));
/* Sort l's entries by path. */
void image_listing_sort(struct image_listing *l) __attribute__((nonnull));
/* Free what l holds and zero it; accepts an empty l. */
void image_listing_clear(struct image_listing *l) __attribute__((nonnull));

/* The partitions of the raw disk open at fd (MBR primaries or GPT entries,
 * 512-byte sectors): byte offsets and sizes of at most max, their count in
 * *ret_n (0: no partition table). -1 for a table that is malformed or has
 * more than max entries. */
int image_partitions(int fd, uint64_t *offs, uint64_t *sizes, size_t max, size_t *ret_n) __attribute__((nonnull));

/* True if partition or filesystem fs (as libguestfs names it) lies on
 * device dev ("/dev/sdb1" and "/dev/sdb" are on "/dev/sdb"; "/dev/sdba1" is not). */
bool image_fs_on_device(const char *fs, const char *dev) __attribute__((nonnull));

#endif
