/* The appliance kernel: a Debian kernel package downloaded once with
 * apt-get and unpacked into qvsa's cache (never the host's /boot). */
#ifndef QVSA_KERNEL_H
#define QVSA_KERNEL_H

struct kernel;

/* Resolve package (a metapackage such as linux-image-amd64 is followed to the
 * versioned image package), download and unpack it under cache_dir/kernels/
 * unless already there. $QVSA_KERNEL_DEB names a local .deb to use instead. */
int kernel_fetch(const char *cache_dir, const char *package, struct kernel **ret);
/* Offline: resolve package with apt-cache (an error if apt does not know
 * it) and return the kernel only if kernel_fetch already unpacked it in the
 * cache; else *ret = NULL. Downloads nothing (for qvsa lint). */
int kernel_find_cached(const char *cache_dir, const char *package, struct kernel **ret);
/* The kernel a root tree (or an unpacked package) holds: dir/boot/vmlinuz-R
 * and dir/lib/modules/R (depmod is run there if modules.dep is missing). */
int kernel_from_tree(const char *dir, const char *package_id, struct kernel **ret);
void kernel_free(struct kernel *k); /* accepts NULL */

const char *kernel_release(const struct kernel *k); /* uname -r, e.g. "6.1.0-56-amd64" */
const char *kernel_image(const struct kernel *k);   /* path of vmlinuz */
const char *kernel_moddir(const struct kernel *k);  /* path of lib/modules/RELEASE */
const char *kernel_package_id(const struct kernel *k); /* "name_version", recorded in the stamp */

#endif
