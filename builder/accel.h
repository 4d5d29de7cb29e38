/* Choosing the accelerator for every VM qvsa starts (libguestfs and libvirt).
 * "auto" proves KVM with a short probe boot of the appliance kernel, because
 * a present /dev/kvm does not mean guests run, and falls back to TCG. */
#ifndef QVSA_ACCEL_H
#define QVSA_ACCEL_H

/* want: "auto" | "kvm" | "tcg". On success *ret is the static string "kvm" or
 * "tcg". vmlinuz is the kernel to probe with; the verdict is cached in
 * cache_dir per (host kernel, QEMU binary, probe kernel). */
int accel_resolve(const char *want, const char *cache_dir, const char *vmlinuz, const char **ret);

/* Validate an --accel argument (ERR_INPUT for anything else). */
int accel_check_arg(const char *want);

#endif
