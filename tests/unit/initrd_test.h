/* Shared by the unit tests of initramfs reading (test_base.c,
 * test_verify_base.c): cpio archives made in memory with libarchive. */
#ifndef QVSA_INITRD_TEST_H
#define QVSA_INITRD_TEST_H

#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <stddef.h>

/* A newc cpio at buf (cap bytes) holding files (path, NULL-terminated), each 4 bytes; filter: ARCHIVE_FILTER_*. */
static size_t make_cpio(char *buf, size_t cap, int filter, const char *const *files)
{
	size_t used = 0;
	struct archive *a = archive_write_new();
	cr_assert_eq(archive_write_set_format_cpio_newc(a), ARCHIVE_OK);
	if (filter != ARCHIVE_FILTER_NONE)
		cr_assert_eq(archive_write_add_filter(a, filter), ARCHIVE_OK, "%s", archive_error_string(a));
	cr_assert_eq(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (const char *const *f = files; *f; f++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, *f);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, 4);
		cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK);
		cr_assert_eq(archive_write_data(a, "\177ELF", 4), 4);
		archive_entry_free(e);
	}
	cr_assert_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return used;
}

#endif
