/* Base kinds: what a disk starts from before templates and files are laid on
 * it. Each kind is one constant table of operations; the recipe's base.kind
 * picks the row. */
#ifndef QVSA_BASE_H
#define QVSA_BASE_H

#include <stdint.h>

struct kernel;
struct pack;

/* What a base populates from. */
struct base_ctx {
	const char *datadir;          /* qvsa data folder (templates/, targets/) */
	const struct kernel *kernel;  /* unpacked appliance kernel */
	char *const *module_paths;    /* .ko paths relative to the module dir, in load order */
	const char *root_uuid;        /* root filesystem UUID for the kernel command line */
	const char *workdir;          /* scratch folder */
	int64_t epoch;                /* mtime for every file */
	const char *firmware;         /* "bios" | "uefi" | "bios+uefi": which boot paths to prepare */
};

/* Operations of one base kind. */
struct base_ops {
	const char *name;               /* recipe base.kind */
	const char *const *modules;     /* modules the base itself needs (root fs, seed), NULL-terminated */
	const char *bootloader_dir;     /* where the bootloader lives in the root filesystem */
	const char *initrd;             /* populate leaves the initramfs at workdir/<initrd>; also its
					 * path below /boot in the image (the driver audit reads it) */
	/* Write the base's files (userland, kernel, initramfs, bootloader config) into rootfs. */
	int (*populate)(const struct base_ctx *ctx, struct pack *rootfs);
	/* UEFI: write the EFI system partition's files (loader, kernel, initramfs)
	 * into esp; called after populate. NULL if the base cannot boot UEFI. */
	int (*populate_esp)(const struct base_ctx *ctx, struct pack *esp);
};

const struct base_ops *base_find(const char *name);

#endif
