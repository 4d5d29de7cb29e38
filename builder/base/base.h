/* Base kinds: what a disk starts from before templates and files are laid on
 * it. One table (base.c) holds every kind; each kind is one constant row of
 * facts and operations, and its code lives in its own file or folder
 * (base_tiny.c, debian/). The recipe's base.kind picks the row; the build,
 * the driver audit and verify ask the row, never the kind's name. */
#ifndef QVSA_BASE_H
#define QVSA_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kernel;
struct pack;
struct recipe;

/* What a base needs to get its kernel (and root tree) for one build. */
struct base_open_params {
	const struct recipe *recipe; /* kernel package, package list, suite, mirror, snapshot */
	const char *cache_dir;       /* qvsa's cache (kernels/, debian/) */
	bool refresh;                /* rebuild cached trees instead of reusing them (--refresh) */
};

/* One build's opened base: filled by base_ops.open, released by base_state_clear. */
struct base_state {
	struct kernel *kernel; /* the kernel every disk boots; owned */
	char *tree;            /* cached root tree disks start from (read-only, never written), or NULL */
	char *key;             /* what the tree was made from, hashed (hex), or NULL */
	char *packages;        /* "name version\n" per package the image holds (manifest), or NULL */
	bool reused;           /* the tree came from the cache (nothing downloaded) */
};
void base_state_clear(struct base_state *s);

/* What a base populates one disk from. */
struct base_ctx {
	const char *datadir;          /* qvsa data folder (templates/, targets/) */
	const struct base_state *st;  /* the opened base */
	const struct kernel *kernel;  /* st->kernel */
	char *const *modules;         /* module names the initramfs must hold (the disk's targets' and the base's) */
	char *const *module_paths;    /* the same as .ko paths relative to the module dir, in load order */
	const char *root_uuid;        /* root filesystem UUID for the kernel command line */
	const char *workdir;          /* this disk's scratch folder */
	const char *cache_dir;        /* qvsa's cache (a base may keep derived files, e.g. initramfs images) */
	int64_t epoch;                /* mtime for every file */
	const char *firmware;         /* "bios" | "uefi" | "bios+uefi": which boot paths to prepare */
};

/* Where populate leaves the disk's initramfs (the build's driver audit reads it). */
#define BASE_INITRD_FILE "initrd.img"

/* Operations and facts of one base kind. Every pointer may be NULL only where said. */
struct base_ops {
	const char *name;                 /* recipe base.kind */
	const char *kernel_package;       /* default of base.kernel_package */
	bool takes_packages;              /* base.packages, suite, mirror and snapshot apply (else refused) */
	const char *const *templates;     /* the recipe's default templates:, NULL-terminated */
	const char *const *modules;       /* modules the base itself needs (root fs, seed), NULL-terminated */
	const char *extlinux_dir;         /* BIOS boot through libguestfs's assembly (QVSA_ASSEMBLE=guestfs):
					   * the folder with its extlinux.conf; NULL: the base boots GRUB
					   * only (host-tool assembly; its ESP holds its UEFI loader) */
	const char *initrd_path;          /* the initramfs as the image holds it; verify's audit reads it
					   * (a relative symlink is followed) */
	unsigned verify_vcpus;            /* vCPUs of a verification domain */
	unsigned verify_memory_mib;       /* its memory */
	unsigned verify_boot_s;           /* its boot's time budget under TCG; 0: verify's default */
	const char *const *check_paths;   /* files verify reads from the overlay after the boot, besides
					   * qvsa's own; NULL-terminated, or NULL for none */
	/* Judge those files (contents[i] NULL when absent): 0 with *ret_summary
	 * (a short line for the report, caller frees) or -1 with the reason
	 * recorded. datasource: the platform hands the guest a datasource
	 * (false where the code comes at the console). NULL when check_paths
	 * is NULL. */
	int (*check)(char *const *contents, const size_t *lens, bool datasource, char **ret_summary);
	/* Get the kernel (and root tree) for one build into *ret. */
	int (*open)(const struct base_open_params *p, struct base_state *ret);
	/* Write the base's own files into rootfs (or into the tree it hands
	 * over), and leave the disk's initramfs at workdir/BASE_INITRD_FILE.
	 * *ret_tree: a folder assembly starts from (the archive is laid over
	 * it; the build removes it), or NULL to start empty. */
	int (*populate)(const struct base_ctx *ctx, struct pack *rootfs, char **ret_tree);
	/* UEFI: write the EFI system partition's files into esp; called after
	 * populate. NULL if the base cannot boot UEFI. */
	int (*populate_esp)(const struct base_ctx *ctx, struct pack *esp);
};

/* The row of kind name, or NULL. */
const struct base_ops *base_find(const char *name);
/* Every row, in table order (the first is the default kind). */
size_t base_all(const struct base_ops *const **ret);

/* The module names an initramfs holds (its .ko files, and what its
 * modules.builtin lists), whatever base made it: a cpio archive, compressed
 * or not. what names it in errors. ret_names is NULL-terminated (strv). */
int base_initrd_modules(const void *initrd, size_t len, const char *what, char ***ret_names);

/* The kernel command line every base boots with (caller frees). */
char *base_kernel_cmdline(const char *root_uuid);

#endif
