/* Host-tool assembly, the parts without side effects: where the partitions
 * go, the ids derived from the build, the scripts and argument vectors handed
 * to sfdisk and mke2fs, and how GRUB's boot sector and core image are patched
 * to find each other (what grub-bios-setup does). Exposed for unit tests. */
#ifndef QVSA_ASSEMBLE_HOST_H
#define QVSA_ASSEMBLE_HOST_H

#include "assemble.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ASM_SECTOR 512   /* bytes per sector, as BIOS, GPT and GRUB's core image count */
#define ASM_ALIGN 2048   /* partitions start on 1 MiB boundaries (sectors) */
#define ASM_FS_BLOCK 4096 /* ext4 block size, fixed so that mke2fs.conf's "small" type cannot change it */

/* GPT partition types. */
#define ASM_GPT_LINUX "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define ASM_GPT_ESP "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define ASM_GPT_BIOS_BOOT "21686148-6E69-6D65-6F4E-656564454649"

/* What a partition holds. */
enum asm_role {
	ASM_ROLE_ROOT,      /* the ext4 root filesystem */
	ASM_ROLE_ESP,       /* the FAT EFI system partition (UEFI) */
	ASM_ROLE_BIOS_BOOT, /* GRUB's core image on a GPT disk booted by BIOS */
};

/* One partition. */
struct asm_part {
	enum asm_role role; /* its content */
	uint64_t start;     /* first sector */
	uint64_t sectors;   /* length in sectors */
	char uuid[37];      /* GPT partition GUID (derived); empty on MBR */
};

/* Where everything goes on one disk. */
struct asm_layout {
	bool gpt;                 /* GPT, else MBR */
	bool uefi;                /* an ESP with systemd-boot (UEFI) */
	bool bios;                /* GRUB i386-pc in the boot sector (BIOS); both on a hybrid disk */
	char disk_id[37];         /* GPT disk GUID, or the MBR disk signature as "0x%08x" */
	struct asm_part parts[3]; /* in partition-number order */
	size_t n;                 /* used entries of parts */
	size_t root;              /* index of the root filesystem in parts */
	uint64_t core_sector;     /* BIOS: first sector of GRUB's core image */
	uint64_t core_max;        /* BIOS: sectors it may fill (the MBR gap or the BIOS boot partition) */
};

/* The partition of role in l, or NULL. */
const struct asm_part *asm_layout_part(const struct asm_layout *l, enum asm_role role);

/* A version-4-shaped GUID from sha256("SEED WHAT"): the same build gives the same ids. */
void asm_guid(const char *seed, const char *what, char out[37]);

/* The layout of p's disk. Records an input error if it does not fit. */
int asm_layout_make(const struct assemble_params *p, struct asm_layout *ret);

/* sfdisk's input for the layout (caller frees). */
char *asm_sfdisk_script(const struct assemble_params *p, const struct asm_layout *l);

/* argv run through env with a clean environment: no variable of the
 * caller's may change the bytes a tool writes (MTOOLS_* settings, e.g.
 * MTOOLS_NO_VFAT drops long names; TZ, as FAT times are local; MKE2FS_*),
 * and the tool's clock is epoch (mtools reads SOURCE_DATE_EPOCH, e2fsprogs
 * E2FSPROGS_FAKE_TIME). NULL-terminated, every string allocated. */
char **asm_tool_argv(int64_t epoch, const char *const *argv);

/* mke2fs's argv (to run through asm_tool_argv), populating the root
 * partition's byte range of p->raw_path from tree. NULL-terminated,
 * every string allocated (free with cleanup_strvp). */
char **asm_mke2fs_argv(const struct assemble_params *p, const struct asm_layout *l, const char *tree);

/* GRUB's early configuration, built into the core image: find the root
 * filesystem by UUID (on MBR and GPT alike) and read grub.cfg from it. */
char *asm_grub_early_cfg(const char *fs_uuid);

/* Make GRUB's boot sector and core image point at each other, as
 * grub-bios-setup does for an embedded core image: sector0 (the disk's first
 * 512 bytes) gets boot.img's code around its BPB and partition table, and the
 * sector of the core; core (padded to whole sectors) gets the sector of its
 * second half. Records an error if the images are not what GRUB 2 makes. */
int asm_grub_patch(unsigned char sector0[ASM_SECTOR], const unsigned char *boot_img, size_t boot_len,
		   unsigned char *core, size_t core_len, uint64_t core_sector);

#endif
