/* Deterministic archives (cpio newc + gzip for the initramfs, tar for the
 * root filesystem fed to libguestfs): sorted entries, owner root, one fixed
 * mtime, parents created implicitly. Written to a temp name, renamed on close. */
#ifndef QVSA_PACK_H
#define QVSA_PACK_H

#include <stddef.h>
#include <stdint.h>

struct pack;

enum pack_format {
	PACK_CPIO_GZ, /* newc cpio, gzip (initramfs) */
	PACK_TAR,     /* POSIX pax/ustar tar, uncompressed */
};

int pack_open(const char *path, enum pack_format fmt, int64_t mtime, struct pack **ret);
/* Paths inside the archive are absolute ("/etc/motd"); stored without the leading '/'. */
int pack_dir(struct pack *p, const char *path, unsigned mode);
int pack_data(struct pack *p, const char *path, unsigned mode, const void *data, size_t len);
int pack_file(struct pack *p, const char *path, unsigned mode, const char *host_src);
int pack_symlink(struct pack *p, const char *path, const char *target);
int pack_chardev(struct pack *p, const char *path, unsigned mode, unsigned major, unsigned minor);
/* Add host_dir's contents below dest (recursively, sorted), keeping modes and symlinks. */
int pack_tree(struct pack *p, const char *dest, const char *host_dir);
/* Finish and rename into place. Frees p in every case. */
int pack_close(struct pack *p);
/* Drop the partial archive. Accepts NULL. */
void pack_abort(struct pack *p);

struct archive_entry;
/* A libarchive entry with the metadata every qvsa archive uses: owner root,
 * the given mtime and no other time. type is AE_IFREG etc. Caller frees it. */
struct archive_entry *pack_entry_new(const char *path, unsigned type, unsigned mode, int64_t mtime, uint64_t size);

#endif
