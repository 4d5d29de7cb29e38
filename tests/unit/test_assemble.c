/* Host-tool assembly: layout, ids, tool inputs and GRUB's patch as pure
 * functions, then two small disks really made with the host tools and read
 * back with sfdisk, blkid and dumpe2fs (no VM). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assemble_host.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "pack.h"
#include "proc.h"

#define MIB (1024ULL * 1024)

static struct assemble_params params(const char *firmware, const char *table, uint64_t size)
{
	return (struct assemble_params){
		.raw_path = "/nonexistent/disk.raw", .size = size, .partition_table = table, .filesystem = "ext4",
		.label = "qvsa-root", .fs_uuid = "11111111-2222-4333-8444-555555555555", .firmware = firmware,
		.what = "test", .guid_seed = "0123456789abcdef", .epoch = 1700000000,
	};
}

Test(assemble_layout, mbr_bios_root_fills_the_disk_and_grub_takes_the_gap)
{
	struct assemble_params p = params("bios", "mbr", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(!l.gpt && !l.uefi);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.root, 0);
	cr_assert_eq(l.parts[0].start, 2048);
	cr_assert_eq(l.parts[0].sectors, 256 * 2048 - 2048);
	cr_assert_eq(l.core_sector, 1);
	cr_assert_eq(l.core_max, 2047);
	cr_assert_eq(strlen(l.disk_id), 10);
	cr_assert_eq(strncmp(l.disk_id, "0x", 2), 0);
}

Test(assemble_layout, gpt_bios_has_a_bios_boot_partition_and_keeps_the_backup_header_free)
{
	struct assemble_params p = params("bios", "gpt", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(l.gpt && !l.uefi);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.parts[0].role, ASM_ROLE_BIOS_BOOT);
	cr_assert_eq(l.core_sector, l.parts[0].start);
	cr_assert_eq(l.core_max, l.parts[0].sectors);
	cr_assert_eq(l.root, 1);
	cr_assert_eq(l.parts[1].start, 4096);
	cr_assert_eq(l.parts[1].start + l.parts[1].sectors, 256 * 2048 - 2048);
	cr_assert_str_neq(l.parts[0].uuid, l.parts[1].uuid);
}

Test(assemble_layout, uefi_is_gpt_with_the_esp_first_whatever_the_recipe_table)
{
	struct assemble_params p = params("uefi", "mbr", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(l.gpt && l.uefi);
	cr_assert_eq(l.parts[0].role, ASM_ROLE_ESP);
	cr_assert_eq(l.parts[0].start, 2048);
	cr_assert_eq(l.parts[0].sectors, ASSEMBLE_ESP_MIB * 2048);
	cr_assert_eq(l.parts[l.root].start, 2048 + ASSEMBLE_ESP_MIB * 2048);
	cr_assert_eq(l.core_max, 0);
}

Test(assemble_layout, hybrid_is_gpt_with_bios_boot_then_esp_then_root)
{
	struct assemble_params p = params(ASSEMBLE_HYBRID, "gpt", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(l.gpt && l.uefi && l.bios);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.parts[0].role, ASM_ROLE_BIOS_BOOT);
	cr_assert_eq(l.parts[0].start, 2048);
	cr_assert_eq(l.parts[0].sectors, 2048);
	cr_assert_eq(l.core_sector, 2048);
	cr_assert_eq(l.core_max, 2048);
	cr_assert_eq(asm_layout_part(&l, ASM_ROLE_ESP), &l.parts[1]);
	cr_assert_eq(l.parts[1].start, 4096);
	cr_assert_eq(l.parts[1].sectors, ASSEMBLE_ESP_MIB * 2048);
	cr_assert_eq(l.root, 2);
	cr_assert_eq(l.parts[2].start, 4096 + ASSEMBLE_ESP_MIB * 2048);
	cr_assert_eq(l.parts[2].start + l.parts[2].sectors, 256 * 2048 - 2048);
	cr_assert_str_neq(l.parts[0].uuid, l.parts[1].uuid);
	cr_assert_str_neq(l.parts[1].uuid, l.parts[2].uuid);
	/* BIOS and UEFI alone keep their one boot path. */
	p = params("bios", "mbr", 256 * MIB);
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(l.bios && !l.uefi);
	cr_assert_null(asm_layout_part(&l, ASM_ROLE_ESP));
	p = params("uefi", "gpt", 256 * MIB);
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert(!l.bios && l.uefi);
	cr_assert_null(asm_layout_part(&l, ASM_ROLE_BIOS_BOOT));
}

Test(assemble_layout, the_libguestfs_path_refuses_a_hybrid_disk_before_launching)
{
	struct assemble_params p = params(ASSEMBLE_HYBRID, "gpt", 256 * MIB);
	err_clear();
	cr_assert_eq(assemble_disks_guestfs(&p, 1), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_not_null(strstr(err_msg(), "host-tool assembly only"), "%s", err_msg());
	cr_assert(!fs_exists(p.raw_path));
	err_clear();
}

Test(assemble_layout, refuses_disks_that_do_not_fit)
{
	struct asm_layout l;
	err_clear();
	struct assemble_params p = params("uefi", "gpt", 64 * MIB);
	cr_assert_eq(asm_layout_make(&p, &l), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	err_clear();
	p = params("bios", "mbr", 256 * MIB + 512);
	cr_assert_eq(asm_layout_make(&p, &l), -1);
	cr_assert_not_null(strstr(err_msg(), "1 MiB"));
	err_clear();
}

Test(assemble_layout, guids_are_derived_stable_and_distinct)
{
	char a[37], b[37], c[37];
	asm_guid("seed", "disk", a);
	asm_guid("seed", "disk", b);
	asm_guid("seed", "part1", c);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	asm_guid("other", "disk", b);
	cr_assert_str_neq(a, b);
	cr_assert_eq(strlen(a), 36);
	cr_assert_eq(a[14], '4');
	cr_assert_eq(a[19], '8');
	cr_assert(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
}

Test(assemble_layout, sfdisk_scripts_name_every_partition)
{
	struct assemble_params p = params("bios", "mbr", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	_cleanup_free_ char *mbr = asm_sfdisk_script(&p, &l);
	cr_assert_not_null(strstr(mbr, "label: dos\n"));
	_cleanup_free_ char *want = xasprintf("label-id: %s\n", l.disk_id);
	cr_assert_not_null(strstr(mbr, want));
	cr_assert_not_null(strstr(mbr, "start=2048, size=522240, type=83, bootable\n"));

	p = params("uefi", "gpt", 256 * MIB);
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	_cleanup_free_ char *gpt = asm_sfdisk_script(&p, &l);
	cr_assert_not_null(strstr(gpt, "label: gpt\n"));
	_cleanup_free_ char *esp = xasprintf("start=2048, size=131072, type=%s, uuid=%s, name=\"EFI system partition\"",
					     ASM_GPT_ESP, l.parts[0].uuid);
	cr_assert_not_null(strstr(gpt, esp), "%s", gpt);
	cr_assert_not_null(strstr(gpt, "name=\"qvsa-root\""));
}

Test(assemble_layout, mke2fs_writes_the_root_partition_range_with_fixed_ids)
{
	struct assemble_params p = params("bios", "mbr", 256 * MIB);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	_cleanup_strv_ char **v = asm_mke2fs_argv(&p, &l, "/tree");
	size_t n = 0;
	_cleanup_free_ char *joined = NULL;
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	for (; v[n]; n++)
		fprintf(f, "%s ", v[n]);
	fclose(f);
	joined = s;
	cr_assert_str_eq(v[0], "mke2fs");
	cr_assert_str_eq(v[n - 2], p.raw_path);
	cr_assert_str_eq(v[n - 1], "65280"); /* (256 MiB - 1 MiB) / 4 KiB */
	cr_assert_not_null(strstr(joined, " -U 11111111-2222-4333-8444-555555555555 "), "%s", joined);
	cr_assert_not_null(strstr(joined, " -L qvsa-root "));
	cr_assert_not_null(strstr(joined, " -d /tree "));
	cr_assert_not_null(strstr(joined, "offset=1048576,hash_seed="));
	cr_assert_not_null(strstr(joined, ",root_owner=0:0 "));
}

Test(assemble_layout, tools_run_with_a_clean_environment_and_the_build_clock)
{
	setenv("MTOOLS_NO_VFAT", "1", 1);
	setenv("TZ", "America/New_York", 1);
	const char *argv[] = {"/bin/true", "-x", "::/", NULL};
	_cleanup_strv_ char **v = asm_tool_argv(1700000000, argv);
	size_t n = 0;
	bool epoch = false, fake = false, tz = false;
	for (; v[n]; n++) {
		cr_assert_null(strstr(v[n], "MTOOLS"), "%s", v[n]);
		cr_assert_null(strstr(v[n], "New_York"), "%s", v[n]);
		epoch |= strcmp(v[n], "SOURCE_DATE_EPOCH=1700000000") == 0;
		fake |= strcmp(v[n], "E2FSPROGS_FAKE_TIME=1700000000") == 0;
		tz |= strcmp(v[n], "TZ=UTC0") == 0;
	}
	cr_assert_str_eq(v[0], "env");
	cr_assert_str_eq(v[1], "-i");
	cr_assert(epoch && fake && tz);
	cr_assert_str_eq(v[n - 3], "/bin/true");
	cr_assert_str_eq(v[n - 2], "-x");
	cr_assert_str_eq(v[n - 1], "::/");
	unsetenv("MTOOLS_NO_VFAT");
	unsetenv("TZ");
}

/* A boot.img and core.img shaped as GRUB 2 makes them. */
static void fake_images(unsigned char boot[512], unsigned char *core, size_t sectors)
{
	memset(boot, 0xcc, 512);
	boot[0x66] = 0xeb;
	boot[510] = 0x55;
	boot[511] = 0xaa;
	memset(core, 0, sectors * 512);
	core[500] = 2;                           /* start: sector 2, as grub-mkimage leaves it */
	core[508] = (unsigned char)(sectors - 1); /* len */
	core[510] = 0x20;                        /* segment 0x820 */
	core[511] = 0x08;
}

Test(assemble_grub, patch_points_boot_sector_and_core_at_each_other_and_keeps_the_partition_table)
{
	unsigned char boot[512], core[4 * 512], sector0[512];
	fake_images(boot, core, 4);
	memset(sector0, 0x11, sizeof(sector0)); /* the disk's BPB and partition table */
	cr_assert_eq(asm_grub_patch(sector0, boot, sizeof(boot), core, sizeof(core), 2048), 0);
	cr_assert_eq(sector0[0], 0xcc);
	cr_assert_eq(sector0[0x10], 0x11); /* BPB kept */
	cr_assert_eq(sector0[0x5a], 0xcc);
	cr_assert_eq(sector0[0x5c], 0x00); /* kernel sector 2048, little-endian */
	cr_assert_eq(sector0[0x5d], 0x08);
	cr_assert_eq(sector0[0x66], 0x90);
	cr_assert_eq(sector0[0x67], 0x90);
	cr_assert_eq(sector0[0x1be], 0x11); /* partition table kept */
	cr_assert_eq(sector0[510], 0x55);
	cr_assert_eq(core[500], 0x01); /* second half at 2049 */
	cr_assert_eq(core[501], 0x08);
}

Test(assemble_grub, patch_refuses_a_core_whose_blocklist_disagrees)
{
	unsigned char boot[512], core[4 * 512], sector0[512] = {0};
	fake_images(boot, core, 4);
	core[508] = 7;
	cr_assert_eq(asm_grub_patch(sector0, boot, sizeof(boot), core, sizeof(core), 1), -1);
	cr_assert_not_null(strstr(err_msg(), "blocklist"));
	err_clear();
	fake_images(boot, core, 4);
	boot[511] = 0;
	cr_assert_eq(asm_grub_patch(sector0, boot, sizeof(boot), core, sizeof(core), 1), -1);
	err_clear();
}

/* Real disks: made with sfdisk, mke2fs, grub-mkimage and mtools, read back. */
static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-asm-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(assemble_host, .init = setup, .fini = teardown, .timeout = 60);

static char *run(const char *const *argv)
{
	char *out = NULL;
	cr_assert_eq(proc_run(argv, NULL, &out), 0, "%s: %s", argv[0], err_msg());
	return out;
}

static void make_tar(const char *path, const char *file, const char *content)
{
	struct pack *p = NULL;
	cr_assert_eq(pack_open(path, PACK_TAR, 1700000000, &p), 0);
	cr_assert_eq(pack_data(p, file, 0644, content, strlen(content)), 0);
	cr_assert_eq(pack_symlink(p, "/sbin/init", "/bin/busybox"), 0);
	cr_assert_eq(pack_close(p), 0);
}

/* An ESP archive: the loader and, in an order that is not the names', a folder of entries. */
static void make_esp_tar(const char *path, bool with_link)
{
	struct pack *p = NULL;
	cr_assert_eq(pack_open(path, PACK_TAR, 1700000000, &p), 0);
	cr_assert_eq(pack_data(p, "/EFI/BOOT/BOOTX64.EFI", 0644, "not really a loader\n", 20), 0);
	const char *names[] = {"/loader/entries/m.conf", "/loader/entries/b.conf", "/loader/entries/x.conf",
			       "/loader/entries/a.conf", "/loader/entries/q.conf", "/loader/loader.conf"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		cr_assert_eq(pack_data(p, names[i], 0644, "x\n", 2), 0);
	if (with_link)
		cr_assert_eq(pack_symlink(p, "/loader/link.conf", "loader.conf"), 0);
	cr_assert_eq(pack_close(p), 0);
}

static void need_tools(void)
{
	if (geteuid() != 0)
		cr_skip_test("the host path unpacks the tree with root's owners: run as root");
	const char *tools[] = {"sfdisk", "mke2fs", "grub-mkimage", "mformat", "mcopy", "blkid", "dumpe2fs"};
	for (size_t i = 0; i < ELEMENTSOF(tools); i++)
		if (!proc_have(tools[i]))
			cr_skip_test("%s is not installed", tools[i]);
}

Test(assemble_host, bios_mbr_disk_has_the_table_the_filesystem_and_grub)
{
	need_tools();
	if (!fs_exists("/usr/lib/grub/i386-pc/boot.img"))
		cr_skip_test("grub-pc-bin is not installed");
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir), *tar = xasprintf("%s/root.tar", dir);
	make_tar(tar, "/etc/motd", "hello\n");
	struct assemble_params p = params("bios", "mbr", 64 * MIB);
	p.raw_path = raw;
	p.rootfs_tar = tar;
	p.workdir = dir;
	cr_assert_eq(assemble_disk_host(&p), 0, "%s", err_msg());

	const char *sf[] = {"sfdisk", "--json", raw, NULL};
	_cleanup_free_ char *js = run(sf);
	cr_assert_not_null(strstr(js, "\"label\": \"dos\""), "%s", js);
	cr_assert_not_null(strstr(js, "\"start\": 2048"), "%s", js);
	cr_assert_not_null(strstr(js, "\"bootable\": true"), "%s", js);

	const char *bl[] = {"blkid", "-p", "-O", "1048576", "-o", "export", raw, NULL};
	_cleanup_free_ char *id = run(bl);
	cr_assert_not_null(strstr(id, "UUID=11111111-2222-4333-8444-555555555555\n"), "%s", id);
	cr_assert_not_null(strstr(id, "LABEL=qvsa-root\n"), "%s", id);
	cr_assert_not_null(strstr(id, "TYPE=ext4\n"), "%s", id);

	/* dumpe2fs reads the partition through an extracted copy (it takes no offset). */
	_cleanup_free_ char *part = xasprintf("%s/part.img", dir), *tree = xasprintf("%s/root-tree", dir);
	_cleanup_free_ char *ifile = xasprintf("if=%s", raw), *ofile = xasprintf("of=%s", part);
	const char *dd[] = {"dd", ifile, ofile, "bs=1M", "skip=1", "status=none", "conv=sparse", NULL};
	free(run(dd));
	const char *de[] = {"dumpe2fs", "-h", part, NULL};
	_cleanup_free_ char *sb = run(de);
	char seed[37];
	asm_guid(p.guid_seed, "ext4 hash seed", seed);
	cr_assert_not_null(strstr(sb, seed), "hash seed %s not in:\n%s", seed, sb);
	cr_assert_not_null(strstr(sb, "Block size:               4096"), "%s", sb);
	/* Every time of every entry is the epoch, not the moment of unpacking. */
	const char *st[] = {"debugfs", "-R", "stat /etc", part, NULL};
	_cleanup_free_ char *ino = run(st);
	for (const char *f = " ctime: \0 atime: \0 mtime: \0"; *f; f += strlen(f) + 1) {
		_cleanup_free_ char *want = xasprintf("%s0x%08x:", f, 1700000000u);
		cr_assert_not_null(strstr(ino, want), "%s not in:\n%s", want, ino);
	}

	/* GRUB's boot sector names its core at sector 1; the core follows it. */
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(fs_read_file(raw, &buf, &len), 0);
	cr_assert_eq((unsigned char)buf[0x5c], 1);
	cr_assert_eq((unsigned char)buf[0x66], 0x90);
	cr_assert_eq((unsigned char)buf[510], 0x55);
	cr_assert_eq((unsigned char)buf[512 + 500], 2);
	cr_assert(!fs_exists(tree), "scratch tree left behind");
}

Test(assemble_host, uefi_disk_has_an_esp_with_the_loader_and_a_fixed_serial)
{
	need_tools();
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir), *tar = xasprintf("%s/root.tar", dir);
	_cleanup_free_ char *esp = xasprintf("%s/esp.tar", dir);
	make_tar(tar, "/etc/motd", "hello\n");
	make_esp_tar(esp, false);
	struct assemble_params p = params("uefi", "gpt", 96 * MIB);
	p.raw_path = raw;
	p.rootfs_tar = tar;
	p.esp_tar = esp;
	p.workdir = dir;
	/* None of the caller's settings reaches mtools: no 8.3-only names, no local time. */
	setenv("MTOOLS_NO_VFAT", "1", 1);
	setenv("TZ", "America/New_York", 1);
	int rc = assemble_disk_host(&p);
	unsetenv("MTOOLS_NO_VFAT");
	unsetenv("TZ");
	cr_assert_eq(rc, 0, "%s", err_msg());

	const char *sf[] = {"sfdisk", "--json", raw, NULL};
	_cleanup_free_ char *js = run(sf);
	cr_assert_not_null(strstr(js, "\"label\": \"gpt\""), "%s", js);
	cr_assert_not_null(strstr(js, ASM_GPT_ESP), "%s", js);
	struct asm_layout l;
	cr_assert_eq(asm_layout_make(&p, &l), 0);
	cr_assert_not_null(strcasestr(js, l.disk_id), "%s", js);

	const char *bl[] = {"blkid", "-p", "-O", "1048576", "-o", "export", raw, NULL};
	_cleanup_free_ char *id = run(bl);
	char serial[37];
	asm_guid(p.guid_seed, "esp serial", serial);
	_cleanup_free_ char *want = xasprintf("UUID=%.4s-%.4s\n", serial, serial + 4);
	for (char *c = want; *c; c++)
		*c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
	cr_assert_not_null(strstr(id, want), "%s not in:\n%s", want, id);
	cr_assert_not_null(strstr(id, "TYPE=vfat\n"), "%s", id);

	_cleanup_free_ char *img = xasprintf("%s@@1048576", raw);
	const char *mt[] = {"mtype", "-i", img, "::/EFI/BOOT/BOOTX64.EFI", NULL};
	_cleanup_free_ char *loader = run(mt);
	cr_assert_str_eq(loader, "not really a loader\n");
	/* Entries in name order, whatever order the unpacked tree lists them in;
	 * every time (files, folders, the volume label) the epoch in UTC. */
	const char *md[] = {"mdir", "-a", "-i", img, "::/loader/entries", NULL};
	_cleanup_free_ char *ls = run(md);
	const char *at = ls;
	for (const char *const *n = (const char *const[]){" a.conf\n", " b.conf\n", " m.conf\n", " q.conf\n", " x.conf\n", NULL}; *n; n++) {
		const char *hit = strstr(at, *n);
		cr_assert_not_null(hit, "%s after %zu in:\n%s", *n, (size_t)(at - ls), ls);
		at = hit;
	}
	const char *mr[] = {"mdir", "-/", "-a", "-i", img, "::/", NULL};
	_cleanup_free_ char *all = run(mr);
	cr_assert_not_null(strstr(all, " loader.conf"), "long names kept:\n%s", all);
	for (const char *d = strstr(all, "20"); d; d = strstr(d + 1, "20"))
		if (d[4] == '-' && d[7] == '-')
			cr_assert_eq(strncmp(d, "2023-11-14  22:13", 17), 0, "%.17s in:\n%s", d, all);
	_cleanup_free_ char *label = NULL;
	size_t label_len = 0;
	cr_assert_eq(fs_read_file(raw, &label, &label_len), 0);
	/* The label is the root folder's first entry (after the reserved sectors and
	 * the FATs: FAT16), its write time and date at 22 and 24. */
	const unsigned char *bs = (const unsigned char *)label + MIB;
	const unsigned char *root = bs + 512 * ((bs[14] | bs[15] << 8) + bs[16] * (bs[22] | bs[23] << 8));
	cr_assert_eq(memcmp(root, "ESP        ", 11), 0);
	cr_assert_eq(root[22] | root[23] << 8, 22 << 11 | 13 << 5 | 20 / 2);
	cr_assert_eq(root[24] | root[25] << 8, (2023 - 1980) << 9 | 11 << 5 | 14);

	_cleanup_free_ char *off = xasprintf("%d", (1 + ASSEMBLE_ESP_MIB) * 1024 * 1024);
	const char *bl2[] = {"blkid", "-p", "-O", off, "-o", "export", raw, NULL};
	_cleanup_free_ char *id2 = run(bl2);
	cr_assert_not_null(strstr(id2, "TYPE=ext4\n"), "%s", id2);
}

Test(assemble_host, hybrid_disk_has_grub_in_the_bios_boot_partition_and_an_esp)
{
	need_tools();
	if (!fs_exists("/usr/lib/grub/i386-pc/boot.img"))
		cr_skip_test("grub-pc-bin is not installed");
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir), *tar = xasprintf("%s/root.tar", dir);
	_cleanup_free_ char *esp = xasprintf("%s/esp.tar", dir);
	make_tar(tar, "/etc/motd", "hello\n");
	make_esp_tar(esp, false);
	struct assemble_params p = params(ASSEMBLE_HYBRID, "gpt", 128 * MIB);
	p.raw_path = raw;
	p.rootfs_tar = tar;
	p.esp_tar = esp;
	p.workdir = dir;
	cr_assert_eq(assemble_disk_host(&p), 0, "%s", err_msg());

	const char *sf[] = {"sfdisk", "--json", raw, NULL};
	_cleanup_free_ char *js = run(sf);
	cr_assert_not_null(strstr(js, "\"label\": \"gpt\""), "%s", js);
	cr_assert_not_null(strstr(js, ASM_GPT_BIOS_BOOT), "%s", js);
	cr_assert_not_null(strstr(js, ASM_GPT_ESP), "%s", js);
	cr_assert_not_null(strstr(js, ASM_GPT_LINUX), "%s", js);

	/* BIOS: boot.img names the core at the BIOS boot partition's first sector (2048). */
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(fs_read_file(raw, &buf, &len), 0);
	cr_assert_eq((unsigned char)buf[0x5c], 2048 & 0xff);
	cr_assert_eq((unsigned char)buf[0x5d], 2048 >> 8);
	cr_assert_eq((unsigned char)buf[510], 0x55);
	cr_assert_eq((unsigned char)buf[0x1c2], 0xee, "the protective MBR stays");
	cr_assert_eq((unsigned char)buf[2048 * 512 + 500], (2049) & 0xff, "core blocklist: its second sector");
	cr_assert_eq((unsigned char)buf[2048 * 512 + 501], 2049 >> 8);

	/* UEFI: the loader on the ESP at 2 MiB. */
	_cleanup_free_ char *img = xasprintf("%s@@%llu", raw, 2 * MIB);
	const char *mt[] = {"mtype", "-i", img, "::/EFI/BOOT/BOOTX64.EFI", NULL};
	_cleanup_free_ char *loader = run(mt);
	cr_assert_str_eq(loader, "not really a loader\n");

	_cleanup_free_ char *off = xasprintf("%llu", (2 + ASSEMBLE_ESP_MIB) * MIB);
	const char *bl[] = {"blkid", "-p", "-O", off, "-o", "export", raw, NULL};
	_cleanup_free_ char *id = run(bl);
	cr_assert_not_null(strstr(id, "TYPE=ext4\n"), "%s", id);
	cr_assert_not_null(strstr(id, "UUID=11111111-2222-4333-8444-555555555555\n"), "%s", id);
}

Test(assemble_host, esp_refuses_what_fat_cannot_hold)
{
	need_tools();
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir), *tar = xasprintf("%s/root.tar", dir);
	_cleanup_free_ char *esp = xasprintf("%s/esp.tar", dir);
	make_tar(tar, "/etc/motd", "hello\n");
	make_esp_tar(esp, true);
	struct assemble_params p = params("uefi", "gpt", 96 * MIB);
	p.raw_path = raw;
	p.rootfs_tar = tar;
	p.esp_tar = esp;
	p.workdir = dir;
	cr_assert_eq(assemble_disk_host(&p), -1);
	cr_assert_not_null(strstr(err_msg(), "/loader/link.conf': the EFI system partition holds only folders and files"),
			   "%s", err_msg());
}
