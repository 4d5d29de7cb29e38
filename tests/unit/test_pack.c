/* Archives are deterministic and complete: same entries, same bytes. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "pack.h"

static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-pack-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(pack, .init = setup, .fini = teardown);

static void make(const char *path, enum pack_format fmt)
{
	struct pack *p = NULL;
	cr_assert_eq(pack_open(path, fmt, 1700000000, &p), 0);
	cr_assert_eq(pack_data(p, "/etc/qvsa/platform.conf", 0644, "X=1\n", 4), 0);
	cr_assert_eq(pack_symlink(p, "/sbin/init", "/bin/busybox"), 0);
	cr_assert_eq(pack_chardev(p, "/dev/console", 0600, 5, 1), 0);
	cr_assert_eq(pack_dir(p, "/tmp", 01777), 0);
	cr_assert_eq(pack_close(p), 0);
}

Test(pack, cpio_gz_is_byte_identical_and_lists_parents)
{
	char *a = xasprintf("%s/a.cpio.gz", dir), *b = xasprintf("%s/b.cpio.gz", dir);
	make(a, PACK_CPIO_GZ);
	make(b, PACK_CPIO_GZ);
	char ha[65], hb[65];
	cr_assert_eq(fs_sha256_file(a, ha, NULL), 0);
	cr_assert_eq(fs_sha256_file(b, hb, NULL), 0);
	cr_assert_str_eq(ha, hb);

	struct archive *r = archive_read_new();
	archive_read_support_filter_all(r);
	archive_read_support_format_all(r);
	cr_assert_eq(archive_read_open_filename(r, a, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	const char *expect[] = {"etc", "etc/qvsa", "etc/qvsa/platform.conf", "sbin", "sbin/init", "dev", "dev/console", "tmp"};
	size_t i = 0;
	while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
		cr_assert_lt(i, sizeof(expect) / sizeof(expect[0]));
		cr_assert_str_eq(archive_entry_pathname(e), expect[i]);
		cr_assert_eq(archive_entry_mtime(e), 1700000000);
		cr_assert_eq(archive_entry_uid(e), 0);
		i++;
	}
	cr_assert_eq(i, sizeof(expect) / sizeof(expect[0]));
	archive_read_free(r);
	free(a);
	free(b);
}

Test(pack, abort_leaves_nothing)
{
	char *a = xasprintf("%s/x.tar", dir);
	struct pack *p = NULL;
	cr_assert_eq(pack_open(a, PACK_TAR, 0, &p), 0);
	cr_assert_eq(pack_data(p, "/x", 0644, "x", 1), 0);
	pack_abort(p);
	cr_assert(!fs_exists(a));
	char *tmp = xasprintf("%s.tmp-%d", a, (int)getpid());
	cr_assert(!fs_exists(tmp));
	free(tmp);
	free(a);
}
