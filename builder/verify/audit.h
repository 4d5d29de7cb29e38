/* The driver audit: before a boot is spent, confirm the initramfs inside an
 * image holds every kernel module the target's devices need. */
#ifndef QVSA_AUDIT_H
#define QVSA_AUDIT_H

#include <stddef.h>

struct target;

/* initrd/len: a cpio initramfs (compressed or not) as any base makes it
 * (base_initrd_modules reads which modules it holds).
 * what names the image in messages. Missing modules: ERR_FAIL
 * "driver audit 'what' (target T): initramfs lacks module(s) M1, M2 needed by the platform's devices". */
int audit_initramfs(const void *initrd, size_t len, const struct target *t, const char *what);

#endif
