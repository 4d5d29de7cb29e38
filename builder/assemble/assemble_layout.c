/* Host-tool assembly without side effects: layout, ids, tool inputs, GRUB's
 * boot sector patch. */
#include "assemble_host.h"
#include "bytes.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void asm_guid(const char *seed, const char *what, char out[37])
{
	_cleanup_free_ char *in = xasprintf("%s %s", seed, what);
	char hex[65];
	sha256_hex(in, strlen(in), hex);
	snprintf(out, 37, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 12, hex + 15, hex + 18);
}

const struct asm_part *asm_layout_part(const struct asm_layout *l, enum asm_role role)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->parts[i].role == role)
			return &l->parts[i];
	return NULL;
}

int asm_layout_make(const struct assemble_params *p, struct asm_layout *ret)
{
	bool hybrid = strcmp(p->firmware, ASSEMBLE_HYBRID) == 0;
	struct asm_layout l = {.uefi = hybrid || strcmp(p->firmware, "uefi") == 0};
	l.bios = hybrid || !l.uefi;
	/* UEFI firmware reads only GPT's ESP; the recipe's table applies to BIOS disks. */
	l.gpt = l.uefi || strcmp(p->partition_table, "gpt") == 0;
	const char *what = p->what ? p->what : p->raw_path;
	if (p->size % ((uint64_t)ASM_ALIGN * ASM_SECTOR) != 0)
		return err_input("%s: disk size %" PRIu64 " is not a multiple of 1 MiB", what, p->size);
	uint64_t total = p->size / ASM_SECTOR;
	/* GPT keeps its backup header in the last sectors: leave the last MiB out. */
	uint64_t end = l.gpt ? total - ASM_ALIGN : total;
	uint64_t next = ASM_ALIGN;
	if (l.bios && l.gpt) {
		/* GRUB's core image needs a home on GPT: the BIOS boot partition. */
		l.parts[l.n++] = (struct asm_part){.role = ASM_ROLE_BIOS_BOOT, .start = next, .sectors = ASM_ALIGN};
		l.core_sector = next;
		l.core_max = ASM_ALIGN;
		next += ASM_ALIGN;
	} else if (l.bios) {
		/* On MBR it lives in the gap between the boot sector and the first partition. */
		l.core_sector = 1;
		l.core_max = ASM_ALIGN - 1;
	}
	if (l.uefi) {
		l.parts[l.n++] = (struct asm_part){.role = ASM_ROLE_ESP, .start = next,
						   .sectors = (uint64_t)ASSEMBLE_ESP_MIB * ASM_ALIGN};
		next += (uint64_t)ASSEMBLE_ESP_MIB * ASM_ALIGN;
	}
	/* 16 MiB: below that ext4 with a journal is not worth booting. */
	if (end < next + 16 * (uint64_t)ASM_ALIGN)
		return err_input("%s: disk size %" PRIu64 " leaves no room for the root filesystem", what, p->size);
	l.root = l.n;
	l.parts[l.n++] = (struct asm_part){.role = ASM_ROLE_ROOT, .start = next, .sectors = end - next};
	if (l.gpt) {
		asm_guid(p->guid_seed, "disk", l.disk_id);
		for (size_t i = 0; i < l.n; i++) {
			char w[32];
			snprintf(w, sizeof(w), "part%zu", i + 1);
			asm_guid(p->guid_seed, w, l.parts[i].uuid);
		}
	} else {
		char g[37];
		asm_guid(p->guid_seed, "mbr", g);
		/* A zero signature means "none" to some tools; the GUID's next digits then. */
		snprintf(l.disk_id, sizeof(l.disk_id), "0x%.8s", strncmp(g, "00000000", 8) ? g : g + 9);
	}
	*ret = l;
	return 0;
}

static const char *gpt_type(enum asm_role r)
{
	return r == ASM_ROLE_ESP ? ASM_GPT_ESP : r == ASM_ROLE_BIOS_BOOT ? ASM_GPT_BIOS_BOOT : ASM_GPT_LINUX;
}

static const char *gpt_name(const struct assemble_params *p, enum asm_role r)
{
	return r == ASM_ROLE_ESP ? "EFI system partition" : r == ASM_ROLE_BIOS_BOOT ? "BIOS boot" : p->label;
}

char *asm_sfdisk_script(const struct assemble_params *p, const struct asm_layout *l)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		abort();
	fprintf(f, "label: %s\nlabel-id: %s\nunit: sectors\n", l->gpt ? "gpt" : "dos", l->disk_id);
	if (l->gpt)
		fprintf(f, "first-lba: %d\n", ASM_ALIGN);
	fputc('\n', f);
	for (size_t i = 0; i < l->n; i++) {
		const struct asm_part *pt = &l->parts[i];
		fprintf(f, "start=%" PRIu64 ", size=%" PRIu64, pt->start, pt->sectors);
		if (l->gpt)
			fprintf(f, ", type=%s, uuid=%s, name=\"%s\"", gpt_type(pt->role), pt->uuid,
				gpt_name(p, pt->role));
		else
			/* Some BIOSes boot only a disk with an active partition. */
			fprintf(f, ", type=83, bootable");
		fputc('\n', f);
	}
	fclose(f);
	return s;
}

static void strv_add(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv)
		abort();
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
}

char **asm_tool_argv(int64_t epoch, const char *const *argv)
{
	char **v = NULL;
	size_t n = 0;
	strv_add(&v, &n, xstrdup("env"));
	strv_add(&v, &n, xstrdup("-i"));
	/* No ~/.mtoolsrc; mtools falls back to the passwd entry's home if HOME is unset. */
	strv_add(&v, &n, xstrdup("HOME=/nonexistent"));
	strv_add(&v, &n, xstrdup("LC_ALL=C"));
	/* FAT stores local time: UTC whatever the caller's zone. */
	strv_add(&v, &n, xstrdup("TZ=UTC0"));
	/* The clocks: mtools' (directory entries, the volume label) and e2fsprogs'. */
	strv_add(&v, &n, xasprintf("SOURCE_DATE_EPOCH=%" PRId64, epoch));
	strv_add(&v, &n, xasprintf("E2FSPROGS_FAKE_TIME=%" PRId64, epoch));
	/* env -i leaves no PATH to search: the tool by its full path (proc_find knows
	 * the sbin folders); a missing one is left to env to report. */
	char *path = proc_find(argv[0]);
	strv_add(&v, &n, path ? path : xstrdup(argv[0]));
	for (size_t i = 1; argv[i]; i++)
		strv_add(&v, &n, xstrdup(argv[i]));
	return v;
}

char **asm_mke2fs_argv(const struct assemble_params *p, const struct asm_layout *l, const char *tree)
{
	const struct asm_part *root = &l->parts[l->root];
	char hash_seed[37];
	asm_guid(p->guid_seed, "ext4 hash seed", hash_seed);
	char **v = NULL;
	size_t n = 0;
	const char *fixed[] = {"mke2fs", "-q", "-F", "-t", p->filesystem, "-b", "4096", "-I", "256",
			       /* The features the guestfs path makes (its extlinux reads no others). */
			       "-O", "^64bit,^metadata_csum", "-L", p->label, "-U", p->fs_uuid};
	for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
		strv_add(&v, &n, xstrdup(fixed[i]));
	strv_add(&v, &n, xstrdup("-E"));
	/* hash_seed: directory hashes are otherwise random; root_owner: the tree's
	 * top is owned by whoever unpacked it. */
	strv_add(&v, &n, xasprintf("offset=%" PRIu64 ",hash_seed=%s,root_owner=0:0", root->start * ASM_SECTOR,
				   hash_seed));
	strv_add(&v, &n, xstrdup("-d"));
	strv_add(&v, &n, xstrdup(tree));
	strv_add(&v, &n, xstrdup(p->raw_path));
	strv_add(&v, &n, xasprintf("%" PRIu64, root->sectors * ASM_SECTOR / ASM_FS_BLOCK));
	return v;
}

char *asm_grub_early_cfg(const char *fs_uuid)
{
	return xasprintf("search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n", fs_uuid);
}

/* Offsets in GRUB 2's i386-pc images (grub/include/grub/i386/pc/boot.h). */
#define BOOT_BPB_START 0x3         /* BIOS parameter block: the disk's, kept */
#define BOOT_BPB_END 0x5a
#define BOOT_KERNEL_SECTOR 0x5c    /* 64-bit LE: where the core image starts */
#define BOOT_DRIVE_CHECK 0x66      /* a 2-byte jmp; nop'ed for hard disks */
#define BOOT_NT_MAGIC 0x1b8        /* from here to the signature: the partition table, kept */
#define CORE_BLOCKLIST (ASM_SECTOR - 12) /* diskboot.img's blocklist: start u64, len u16, segment u16 */
#define CORE_SEGMENT 0x820         /* where diskboot loads the rest (GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20) */

int asm_grub_patch(unsigned char sector0[ASM_SECTOR], const unsigned char *boot_img, size_t boot_len,
		   unsigned char *core, size_t core_len, uint64_t core_sector)
{
	if (boot_len != ASM_SECTOR || boot_img[510] != 0x55 || boot_img[511] != 0xaa)
		return err_fail("GRUB boot.img: %zu bytes without a boot signature, expected GRUB 2's", boot_len);
	if (boot_img[BOOT_DRIVE_CHECK] != 0xeb && boot_img[BOOT_DRIVE_CHECK] != 0x90)
		return err_fail("GRUB boot.img: no drive check jump at 0x%x: not GRUB 2.0x's", BOOT_DRIVE_CHECK);
	if (core_len < 2 * ASM_SECTOR || core_len % ASM_SECTOR != 0)
		return err_fail("GRUB core image: %zu bytes, expected whole sectors", core_len);
	unsigned char *bl = core + CORE_BLOCKLIST;
	unsigned len = bl[8] | (unsigned)bl[9] << 8, seg = bl[10] | (unsigned)bl[11] << 8;
	/* grub-mkimage sets len to the sectors after diskboot.img and the load segment. */
	if (len != core_len / ASM_SECTOR - 1 || seg != CORE_SEGMENT)
		return err_fail("GRUB core image: blocklist says %u sectors at segment 0x%x, expected %zu at 0x%x", len,
				seg, core_len / ASM_SECTOR - 1, CORE_SEGMENT);
	put_le64(bl, core_sector + 1);
	memcpy(sector0, boot_img, BOOT_BPB_START);
	memcpy(sector0 + BOOT_BPB_END, boot_img + BOOT_BPB_END, BOOT_NT_MAGIC - BOOT_BPB_END);
	put_le64(sector0 + BOOT_KERNEL_SECTOR, core_sector);
	/* BIOSes that pass a wrong boot drive: trust only hard disks (grub-bios-setup does the same). */
	sector0[BOOT_DRIVE_CHECK] = 0x90;
	sector0[BOOT_DRIVE_CHECK + 1] = 0x90;
	sector0[510] = 0x55;
	sector0[511] = 0xaa;
	return 0;
}
