/* Disks and media for a libvirt that does not share this file system
 * (--connect to a libvirtd, local or not): they travel through a storage
 * pool and libvirt's stream API. A file is uploaded into a volume
 * (virStorageVolUpload, sparse where the daemon can), the overlay is a
 * qcow2 volume the daemon creates on top of the uploaded disk, and after
 * the boot the overlay is downloaded again to be read here. The artifact
 * is only ever read. */
#ifndef QVSA_REMOTE_H
#define QVSA_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

struct vm_host;
struct remote_pool;

/* The pool verify uses when --pool names none. */
#define REMOTE_POOL_DEFAULT "qvsa-verify"

/* True if uri needs the pool and stream path: every URI but the embedded
 * driver's (qemu:///embed?...), whose QEMU runs in this process. */
bool remote_uri_uses_pool(const char *uri) __attribute__((nonnull));
/* True if uri names a libvirt on another machine: a host part other than
 * localhost / 127.0.0.1 / ::1 (qemu+ssh://build7/system). */
bool remote_uri_is_other_host(const char *uri) __attribute__((nonnull));

/* The pool named name on h's connection (NULL: REMOTE_POOL_DEFAULT). An
 * existing pool is used as it is (started if inactive); a missing default
 * pool is defined as a dir pool beside the daemon's "default" pool (or in
 * /var/lib/libvirt/images/qvsa-verify), built and started, and
 * remote_pool_close removes it again once it is empty. A named pool
 * (--pool) must exist. Volumes of verify runs whose process is gone are
 * deleted. *ret is written only on success. */
int remote_pool_open(struct vm_host *h, const char *name, struct remote_pool **ret) __attribute__((nonnull(1, 3)));
/* Delete every volume this pool handle made that is still there; if qvsa
 * defined the pool and it is now empty, stop, delete and undefine it.
 * Records no error. Accepts NULL. */
void remote_pool_close(struct remote_pool *p);
/* The pool's directory on the libvirt host. */
const char *remote_pool_path(const struct remote_pool *p) __attribute__((nonnull));
const char *remote_pool_name(const struct remote_pool *p) __attribute__((nonnull));

/* Upload the local file path into a new raw volume vol (its size; holes
 * stay holes when the daemon takes sparse streams). *ret_path (caller frees)
 * is its path on the libvirt host. */
int remote_upload(struct remote_pool *p, const char *vol, const char *path, char **ret_path)
	__attribute__((nonnull));
/* A new qcow2 volume vol of capacity bytes backed by the file backing
 * (a path on the libvirt host, e.g. from remote_upload) of format
 * backing_format. *ret_path (caller frees) is its path there. */
int remote_overlay(struct remote_pool *p, const char *vol, const char *backing, const char *backing_format,
		   uint64_t capacity, char **ret_path) __attribute__((nonnull));
/* Download volume vol into the local file path (replaced; holes kept). */
int remote_download(struct remote_pool *p, const char *vol, const char *path) __attribute__((nonnull));
/* Delete volume vol now if it exists (a file the daemon made in the pool's
 * directory, such as a UEFI variable store, is found after a refresh).
 * Records no error. */
void remote_delete(struct remote_pool *p, const char *vol) __attribute__((nonnull));

/* Virtual size of a local disk image of format fmt (qemu-img info). */
int remote_virtual_size(const char *path, const char *fmt, uint64_t *ret) __attribute__((nonnull));

#endif
