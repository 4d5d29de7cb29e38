/* Bootstrap version strings "qVSA-X.Y" and VERSION files. */
#include "version.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#define EXPECTED "expected qVSA-X.Y with X and Y decimal numbers without leading zeros, e.g. qVSA-1.0"

static void expect_valid(const char *s, unsigned major, unsigned minor)
{
	unsigned got_major = 12345, got_minor = 12345;
	err_clear();
	cr_assert_eq(version_parse(s, &got_major, &got_minor), 0, "'%s' rejected: %s", s, err_msg());
	cr_assert_eq(got_major, major, "'%s'", s);
	cr_assert_eq(got_minor, minor, "'%s'", s);
	cr_assert_null(err_msg());
}

/* Rejected with ERR_INPUT, outputs untouched; message shows the value as escaped. */
static void expect_invalid(const char *s, const char *shown)
{
	unsigned major = 777, minor = 777;
	_cleanup_free_ char *want = xasprintf("bootstrap version '%s': " EXPECTED, shown);
	err_clear();
	cr_assert_eq(version_parse(s, &major, &minor), -1, "'%s' accepted", s);
	cr_assert_eq(major, 777);
	cr_assert_eq(minor, 777);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), want);
}

Test(version, valid)
{
	expect_valid("qVSA-1.0", 1, 0);
	expect_valid("qVSA-12.34", 12, 34);
	expect_valid("qVSA-0.9", 0, 9);
	expect_valid("qVSA-0.0", 0, 0);
	expect_valid("qVSA-10.100", 10, 100);
	expect_valid("qVSA-4294967295.1", 4294967295u, 1);
	cr_assert_eq(version_parse("qVSA-2.3", NULL, NULL), 0);
}

Test(version, invalid)
{
	expect_invalid("qvsa-1.0", "qvsa-1.0");
	expect_invalid("QVSA-1.0", "QVSA-1.0");
	expect_invalid("qVSA-1", "qVSA-1");
	expect_invalid("qVSA-1.", "qVSA-1.");
	expect_invalid("qVSA-.1", "qVSA-.1");
	expect_invalid("qVSA-1.0.1", "qVSA-1.0.1");
	expect_invalid("qVSA-01.0", "qVSA-01.0");
	expect_invalid("qVSA-1.00", "qVSA-1.00");
	expect_invalid("qVSA-1.0 ", "qVSA-1.0 ");
	expect_invalid(" qVSA-1.0", " qVSA-1.0");
	expect_invalid("qVSA-+1.0", "qVSA-+1.0");
	expect_invalid("qVSA--1.0", "qVSA--1.0");
	expect_invalid("qVSA-1,0", "qVSA-1,0");
	expect_invalid("qVSA 1.0", "qVSA 1.0");
	expect_invalid("qVSA-", "qVSA-");
	expect_invalid("", "");
	expect_invalid("qVSA-4294967296.0", "qVSA-4294967296.0");
	/* Control characters are escaped so the message stays one line. */
	expect_invalid("qVSA-1.0\n", "qVSA-1.0\\x0a");
}

static char tmp[PATH_MAX];

static void tmp_make(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/qvsa-test-version-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void tmp_remove(void) { fs_rm_rf(tmp); }

static char *put(const char *text, size_t len)
{
	char *path = xasprintf("%s/VERSION", tmp);
	cr_assert_eq(fs_write_file_atomic(path, text, len, 0644), 0);
	return path;
}

Test(version, read_file, .init = tmp_make, .fini = tmp_remove)
{
	_cleanup_free_ char *path = put("qVSA-1.0\n", 9);
	_cleanup_free_ char *v = NULL;
	cr_assert_eq(version_read_file(path, &v), 0, "%s", err_msg());
	cr_assert_str_eq(v, "qVSA-1.0");
}

Test(version, read_file_without_newline, .init = tmp_make, .fini = tmp_remove)
{
	_cleanup_free_ char *path = put("qVSA-7.12", 9);
	_cleanup_free_ char *v = NULL;
	cr_assert_eq(version_read_file(path, &v), 0, "%s", err_msg());
	cr_assert_str_eq(v, "qVSA-7.12");
}

/* Reading text fails with "PATH:where: message", ERR_INPUT, *ret untouched. */
static void expect_file_message(const char *text, size_t len, const char *where_and_message)
{
	_cleanup_free_ char *path = put(text, len);
	_cleanup_free_ char *want = xasprintf("%s:%s", path, where_and_message);
	char *v = (char *)&tmp;
	err_clear();
	cr_assert_eq(version_read_file(path, &v), -1);
	cr_assert_eq(v, (char *)&tmp, "*ret written on error");
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), want);
}

static void expect_file_error(const char *text, size_t len, const char *shown)
{
	_cleanup_free_ char *msg = xasprintf("1:1: bootstrap version '%s': " EXPECTED, shown);
	expect_file_message(text, len, msg);
}

/* The VERSION file is named with the line at fault. */
Test(version, read_file_errors, .init = tmp_make, .fini = tmp_remove)
{
	expect_file_message("qVSA-1.0\n\n", 10, "2:1: version file holds more than one line; it must hold one line qVSA-X.Y");
	expect_file_message("qVSA-1.0\nqVSA-2.0\n", 18,
			    "2:1: version file holds more than one line; it must hold one line qVSA-X.Y");
	expect_file_error("qVSA-1.0\r\n", 10, "qVSA-1.0\\x0d");
	expect_file_error("", 0, "");
	expect_file_error("1.0\n", 4, "1.0");
}

/* A VERSION file found by walking up may be anyone's: a long line is cut short. */
Test(version, read_file_long_line_cut, .init = tmp_make, .fini = tmp_remove)
{
	static const char line[] = "qVSA-1.0-this-is-a-very-long-line-that-goes-on-and-on-and-on-SECRET-TAIL\n";
	_cleanup_free_ char *path = put(line, sizeof(line) - 1);
	char *v = NULL;
	err_clear();
	cr_assert_eq(version_read_file(path, &v), -1);
	cr_assert_null(strstr(err_msg(), "SECRET-TAIL"), "%s", err_msg());
}

Test(version, read_file_too_large, .init = tmp_make, .fini = tmp_remove)
{
	_cleanup_free_ char *big = calloc(1, 5000);
	memset(big, 'x', 4999);
	_cleanup_free_ char *path = put(big, 4999);
	_cleanup_free_ char *want = xasprintf("%s:1:1: version file is 4999 bytes; it must hold one line qVSA-X.Y", path);
	char *v = NULL;
	err_clear();
	cr_assert_eq(version_read_file(path, &v), -1);
	cr_assert_str_eq(err_msg(), want);
}

Test(version, read_file_nul_byte, .init = tmp_make, .fini = tmp_remove)
{
	expect_file_message("qVSA-1.0\0\n", 10, "1:9: version file holds a NUL byte");
}

Test(version, read_file_missing, .init = tmp_make, .fini = tmp_remove)
{
	_cleanup_free_ char *path = xasprintf("%s/VERSION", tmp);
	_cleanup_free_ char *want = xasprintf("reading version file '%s': No such file or directory", path);
	char *v = NULL;
	err_clear();
	cr_assert_eq(version_read_file(path, &v), -1);
	cr_assert_null(v);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), want);
}
