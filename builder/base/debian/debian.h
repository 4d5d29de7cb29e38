/* The debian base: a Debian 12 root made by mmdebstrap from the recipe's
 * package list (systemd, cloud-init, the kernel), sysprepped and kept in the
 * cache keyed by what it was made from; each disk starts from a hard-linked
 * copy of it, with an initramfs made by the distribution's own mkinitramfs
 * holding the disk's targets' drivers. */
#ifndef QVSA_BASE_DEBIAN_H
#define QVSA_BASE_DEBIAN_H

#include <stdbool.h>

struct base_open_params;
struct base_state;

/* What every debian image holds besides base.packages and the kernel package. */
extern const char *const debian_packages[];

/* The cached, sysprepped root tree for p's recipe into ret (tree, key,
 * packages): reused when present (nothing is downloaded), else made with
 * mmdebstrap (rootless unshare mode where it works, else root mode; a
 * notice says which), or remade when p->refresh. */
int debian_tree_get(const struct base_open_params *p, struct base_state *ret);

/* Sysprep a root tree in place: an empty /etc/machine-id, no SSH host keys,
 * no apt lists or caches, no logs, no cloud-init state, no random seed, a
 * locked root password, a neutral host name and no host resolv.conf. Every
 * file it changes is replaced (unlinked first), never written in place. */
int debian_sysprep(const char *tree);

/* Replace path (under a hard-linked tree: never write a shared inode) with data. */
int debian_replace_file(const char *path, const char *data, unsigned mode);

#endif
