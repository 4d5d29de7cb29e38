/* An artifact's format from its bytes, not its name. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "artifact_id.h"
#include "err.h"
#include "fs.h"

static char dir[] = "/tmp/qvsa-test-sniff-XXXXXX";
static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(sniff, .init = setup, .fini = teardown);

/* A 4 KiB file named "appliance (1).bin" with magic at off (and at the end when tail). */
static const char *sniff(const void *magic, size_t len, size_t off, bool tail)
{
	unsigned char buf[4096] = {0};
	memcpy(buf + (tail ? sizeof(buf) - 512 : off), magic, len);
	char *p = xasprintf("%s/appliance (1).bin", dir);
	cr_assert_eq(fs_write_file_atomic(p, buf, sizeof(buf), 0644), 0);
	const char *w = NULL;
	int rc = artifact_sniff(p, &w);
	free(p);
	return rc == 0 ? w : NULL;
}

Test(sniff, every_format_by_its_magic)
{
	cr_assert_str_eq(sniff("QFI\xfb", 4, 0, false), "qcow2");
	cr_assert_str_eq(sniff("KDMV", 4, 0, false), "vmdk");
	cr_assert_str_eq(sniff("vhdxfile", 8, 0, false), "vhdx");
	cr_assert_str_eq(sniff("conectix", 8, 0, false), "vhd");
	cr_assert_str_eq(sniff("conectix", 8, 0, true), "vhd", "a fixed VHD: the footer at the end");
	cr_assert_str_eq(sniff("\x1f\x8b", 2, 0, false), "gce");
	cr_assert_str_eq(sniff("ustar", 5, 257, false), "ova");
	cr_assert_str_eq(sniff("\x55\xaa", 2, 510, false), "raw");
	err_clear();
	cr_assert_null(sniff("nothing", 7, 100, false));
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), "not a format qvsa writes"), "%s", err_msg());
}
