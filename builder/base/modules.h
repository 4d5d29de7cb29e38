/* Kernel module closure and load order, from the kernel's own modules.dep,
 * modules.softdep, modules.alias and modules.builtin (busybox insmod in the
 * initramfs has no dependency resolution, so the order must be exact). */
#ifndef QVSA_MODULES_H
#define QVSA_MODULES_H

#include <stddef.h>

struct modindex;

/* Load the index files from moddir (lib/modules/RELEASE). */
int modindex_load(const char *moddir, struct modindex **ret);
void modindex_free(struct modindex *m); /* accepts NULL */

/* Resolve the requested module names (with '-' and '_' equivalent, or
 * aliases) to the .ko paths (relative to moddir) to insmod, dependencies and
 * "pre:" soft dependencies first, each once. Built-in modules need nothing.
 * An unknown name is an error naming it and `who` (e.g. "target 'kvm'").
 * ret_paths is NULL-terminated; caller frees it (strv). */
int modindex_resolve(const struct modindex *m, char *const *wanted, const char *who, char ***ret_paths);

/* Module name of a .ko path: "kernel/fs/ext4/ext4.ko" -> "ext4". Newly allocated. */
char *module_name_of(const char *path);

#endif
