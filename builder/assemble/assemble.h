/* Disk assembly: partition, format, fill and make bootable a raw disk. The
 * default path runs host tools on the image file (sfdisk, mke2fs -d, mtools,
 * grub-mkimage; no VM, no mount); QVSA_ASSEMBLE=guestfs selects the former
 * path, every disk in one libguestfs appliance launch (extlinux for BIOS). */
#ifndef QVSA_ASSEMBLE_H
#define QVSA_ASSEMBLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The disk to make. */
struct assemble_params {
	const char *raw_path;        /* raw disk written (created sparse, replaced) */
	uint64_t size;               /* bytes */
	const char *partition_table; /* "mbr" | "gpt" */
	const char *filesystem;      /* "ext4" */
	const char *label;           /* filesystem label */
	const char *fs_uuid;         /* filesystem UUID (derived from the build id) */
	const char *rootfs_tar;      /* tar extracted at the root filesystem's top */
	const char *rootfs_tree;     /* host path: a base's tree the tar is laid over (owners, modes, hard
					links and xattrs kept; the caller removes it), or NULL: start empty */
	const char *bootloader_dir;  /* guestfs path, BIOS: where extlinux is installed, e.g. "/boot/extlinux";
					NULL: the base has no extlinux (refused there) */
	const char *syslinux_dir;    /* host folder with mbr.bin / gptmbr.bin */
	const char *firmware;        /* "bios": boot code (GRUB or extlinux); "uefi": GPT, EFI system partition;
					ASSEMBLE_HYBRID: GPT with both (host path only) */
	const char *esp_tar;         /* uefi, hybrid: tar extracted onto the EFI system partition */
	const char *what;            /* names the disk in progress and errors (e.g. its targets) */
	const char *workdir;         /* host path: scratch folder of this disk (trees, core image) */
	const char *guid_seed;       /* host path: disk, partition and FAT ids derive from it (build id) */
	int64_t epoch;               /* host path: SOURCE_DATE_EPOCH, mke2fs's clock */
};

/* The firmware value of a disk that boots both ways: a GPT disk with a BIOS
 * boot partition (GRUB i386-pc) and an ESP, as Debian's cloud images. */
#define ASSEMBLE_HYBRID "bios+uefi"

/* Size of the EFI system partition on UEFI disks. */
#define ASSEMBLE_ESP_MIB 64

/* Which way assemble_disks works: $QVSA_ASSEMBLE ("host", the default, or
 * "guestfs"); records an input error for anything else. */
int assemble_method(const char **ret);
/* Whether a non-root caller can make a user namespace mapping it to root
 * (`unshare --map-root-user true` succeeds; asked once). */
bool assemble_userns_works(void);

/* Assemble n disks by the method assemble_method picks. */
int assemble_disks(const struct assemble_params *ps, size_t n);

/* Assemble n disks in one libguestfs appliance launch (the launch is the
 * expensive part; each disk then takes seconds). */
int assemble_disks_guestfs(const struct assemble_params *ps, size_t n);
/* Assemble one disk with host tools on the image file (assemble_host.c). */
int assemble_disk_host(const struct assemble_params *p);

/* Where the len bytes of file path (on the ext root of the assembled disk
 * raw) lie: *ret_off, the byte offset of its data block in raw. The file
 * must hold exactly expect (len bytes, at most one block, not inline data),
 * which is checked at that offset (assemble_locate.c). */
int assemble_file_offset(const char *raw, const char *path, const void *expect, size_t len, uint64_t *ret_off);

#endif
