#include "audit.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <string.h>

#define MODULE_LIST "etc/qvsa-modules"

int audit_list_modules(const void *initrd, size_t len, const char *what, char ***ret_names)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_cpio(a);
	if (archive_read_open_memory(a, initrd, len) != ARCHIVE_OK) {
		err_fail("driver audit '%s': initramfs unreadable: %s", what, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	char *list = NULL;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		while (*p == '/' || (p[0] == '.' && p[1] == '/'))
			p += p[0] == '.' ? 2 : 1;
		if (strcmp(p, MODULE_LIST) != 0)
			continue;
		size_t sz = (size_t)archive_entry_size(e);
		list = calloc(1, sz + 1);
		if (!list || archive_read_data(a, list, sz) != (la_ssize_t)sz) {
			free(list);
			list = NULL;
			r = ARCHIVE_FATAL;
		}
		break;
	}
	if (r != ARCHIVE_OK && r != ARCHIVE_EOF) {
		err_fail("driver audit '%s': initramfs unreadable: %s", what, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	if (!list)
		return err_fail("driver audit '%s': the initramfs has no /%s (not built by qvsa?)", what, MODULE_LIST);

	size_t n = 0;
	char **names = calloc(1, sizeof(*names));
	char *save = NULL;
	for (char *line = strtok_r(list, "\n", &save); line && names; line = strtok_r(NULL, "\n", &save)) {
		char **nn = realloc(names, (n + 2) * sizeof(*names));
		if (!nn)
			abort();
		names = nn;
		names[n++] = xstrdup(line);
		names[n] = NULL;
	}
	free(list);
	if (!names)
		abort();
	*ret_names = names;
	return 0;
}

int audit_initramfs(const void *initrd, size_t len, const struct target *t, const char *what)
{
	_cleanup_strv_ char **have = NULL;
	if (audit_list_modules(initrd, len, what, &have) < 0)
		return -1;
	char missing[512] = "";
	size_t nmissing = 0;
	for (char *const *need = target_modules(t); *need; need++) {
		_cleanup_free_ char *norm = xstrdup(*need);
		for (char *c = norm; *c; c++)
			if (*c == '-')
				*c = '_';
		bool found = false;
		for (char **h = have; *h && !found; h++)
			found = strcmp(*h, norm) == 0;
		if (!found) {
			size_t used = strlen(missing);
			snprintf(missing + used, sizeof(missing) - used, "%s%s", nmissing ? ", " : "", norm);
			nmissing++;
		}
	}
	if (nmissing)
		return err_fail("driver audit '%s' (target %s): initramfs lacks module%s %s needed by the platform's "
				"devices (%s disk, %s NIC)",
				what, target_name(t), nmissing > 1 ? "s" : "", missing, target_verify_disk_bus(t),
				target_verify_nic_model(t));
	return 0;
}
