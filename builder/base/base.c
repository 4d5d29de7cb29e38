/* The one table of base kinds, and what every kind shares: the state one
 * build opens, the kernel command line, and reading which modules an
 * initramfs holds (the driver audit works the same on any base). */
#include "base.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "kernel.h"
#include "modules.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

extern const struct base_ops base_tiny_ops;
extern const struct base_ops base_debian_ops;

/* The first row is the default kind. Adding a kind is one row here and its own code. */
static const struct base_ops *const bases[] = {&base_tiny_ops, &base_debian_ops};

const struct base_ops *base_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(bases); i++)
		if (strcmp(bases[i]->name, name) == 0)
			return bases[i];
	return NULL;
}

size_t base_all(const struct base_ops *const **ret)
{
	*ret = bases;
	return ELEMENTSOF(bases);
}

void base_state_clear(struct base_state *s)
{
	if (!s)
		return;
	kernel_free(s->kernel);
	free(s->tree);
	free(s->key);
	free(s->packages);
	memset(s, 0, sizeof(*s));
}

char *base_kernel_cmdline(const char *root_uuid)
{
	return xasprintf("root=UUID=%s rw console=tty0 console=ttyS0,115200n8 loglevel=4 panic=10", root_uuid);
}

/* A growing strv. */
static void names_add(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));
	if (!nv)
		abort();
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
}

/* Names listed in a modules.builtin text ("kernel/net/packet/af_packet.ko" per line). */
static void add_builtin(char ***v, size_t *n, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (*line)
			names_add(v, n, module_name_of(line));
}

int base_initrd_modules(const void *initrd, size_t len, const char *what, char ***ret_names)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_cpio(a);
	if (archive_read_open_memory(a, initrd, len) != ARCHIVE_OK) {
		err_fail("driver audit '%s': initramfs unreadable: %s", what, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	char **names = calloc(1, sizeof(*names));
	size_t n = 0;
	struct archive_entry *e;
	int r;
	if (!names)
		abort();
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		/* Kernel modules as installed: name.ko, or compressed (name.ko.xz, .zst, .gz). */
		const char *ko = strstr(base, ".ko");
		if (ko && (ko[3] == 0 || ko[3] == '.') && strstr(p, "lib/modules/")) {
			names_add(&names, &n, module_name_of(base));
			continue;
		}
		if (strcmp(base, "modules.builtin") == 0 && strstr(p, "lib/modules/")) {
			size_t sz = (size_t)archive_entry_size(e);
			_cleanup_free_ char *text = calloc(1, sz + 1);
			if (!text || archive_read_data(a, text, sz) != (la_ssize_t)sz) {
				r = ARCHIVE_FATAL;
				break;
			}
			add_builtin(&names, &n, text);
		}
	}
	if (r != ARCHIVE_EOF) {
		err_fail("driver audit '%s': initramfs unreadable: %s", what,
			 archive_error_string(a) ? archive_error_string(a) : "truncated");
		archive_read_free(a);
		cleanup_strvp(&names);
		return -1;
	}
	archive_read_free(a);
	*ret_names = names;
	return 0;
}
