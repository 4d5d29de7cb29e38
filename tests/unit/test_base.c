/* The base table and what every base shares: which modules an initramfs
 * holds (any compression, an early uncompressed cpio in front, as the
 * kernel reads them) and the table's rows. No VM, no image. */
#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "initrd_test.h"

#include <criterion/criterion.h>
#include <string.h>

static bool has(char *const *v, const char *s)
{
	for (; *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

Test(base, modules_behind_an_early_uncompressed_cpio)
{
	static const char *const early[] = {"kernel/x86/microcode/GenuineIntel.bin", NULL};
	static const char *const main_files[] = {"usr/lib/modules/6.1.0-50-amd64/kernel/drivers/block/virtio_blk.ko",
						 "usr/lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko.xz",
						 "usr/lib/modules/6.1.0-50-amd64/kernel/drivers/scsi/vmw_pvscsi.ko.zst",
						 "usr/bin/not-a-module.ko.txt", NULL};
	size_t cap = 1 << 20;
	_cleanup_free_ char *buf = calloc(1, cap);
	size_t n = make_cpio(buf, cap, ARCHIVE_FILTER_NONE, early);
	n = (n + 511) / 512 * 512 + 512; /* zero padding between the two, as mkinitramfs leaves it */
	n += make_cpio(buf + n, cap - n, ARCHIVE_FILTER_ZSTD, main_files);
	_cleanup_strv_ char **mods = NULL;
	cr_assert_eq(base_initrd_modules(buf, n, "test", &mods), 0, "%s", err_msg());
	cr_expect(has(mods, "virtio_blk"));
	cr_expect(has(mods, "ext4"));
	cr_expect(has(mods, "vmw_pvscsi"));
	cr_expect(!has(mods, "not_a_module"));
}

Test(base, a_truncated_initramfs_is_an_error)
{
	static const char *const files[] = {"lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko", NULL};
	size_t cap = 1 << 16;
	_cleanup_free_ char *buf = calloc(1, cap);
	size_t n = make_cpio(buf, cap, ARCHIVE_FILTER_GZIP, files);
	_cleanup_strv_ char **mods = NULL;
	cr_expect_eq(base_initrd_modules(buf, n / 2, "cut.img", &mods), -1);
	cr_expect(strstr(err_msg(), "driver audit 'cut.img': initramfs unreadable"), "%s", err_msg());
}

Test(base, one_table_every_row_complete)
{
	const struct base_ops *const *rows = NULL;
	size_t n = base_all(&rows);
	cr_assert_geq(n, 2);
	cr_expect_str_eq(rows[0]->name, "tiny", "the first row is the default kind");
	for (size_t i = 0; i < n; i++) {
		const struct base_ops *b = rows[i];
		cr_expect(base_find(b->name) == b);
		cr_expect(b->open && b->populate && b->templates && b->modules && b->initrd_path && b->kernel_package,
			  "row %s", b->name);
		cr_expect(b->initrd_path[0] == '/', "row %s", b->name);
		cr_expect(b->verify_vcpus >= 1 && b->verify_memory_mib >= 256, "row %s", b->name);
		cr_expect(!b->check_paths == !b->check, "row %s: check_paths and check go together", b->name);
	}
	cr_expect_null(base_find("gentoo"));
}
