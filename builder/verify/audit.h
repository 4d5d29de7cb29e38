/* The driver audit: before a boot is spent, confirm the initramfs inside an
 * image holds every kernel module the target's devices need. */
#ifndef QVSA_AUDIT_H
#define QVSA_AUDIT_H

#include <stddef.h>

struct target;

/* initrd/len: a gzip'd (or plain) newc cpio initramfs as qvsa writes it.
 * what names the image in messages. Missing modules: ERR_FAIL
 * "driver audit 'what' (target T): initramfs lacks module(s) M1, M2 needed by the platform's devices". */
int audit_initramfs(const void *initrd, size_t len, const struct target *t, const char *what);

/* The module names listed in the initramfs (its /etc/qvsa-modules), NULL-terminated; caller frees. */
int audit_list_modules(const void *initrd, size_t len, const char *what, char ***ret_names);

#endif
