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

/* One cpio archive of an initramfs at data/len: its modules added to *v (*n entries).
 * *ret_next: where a following archive starts when this one was stored
 * uncompressed (the kernel reads an early cpio, e.g. CPU microcode, then
 * the compressed main one behind it), else len. */
static int read_segment(const unsigned char *data, size_t len, const char *what, char ***v, size_t *n,
			size_t *ret_next)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_cpio(a);
	int r = archive_read_open_memory(a, data, len);
	struct archive_entry *e;
	while (r == ARCHIVE_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
		if (archive_entry_filetype(e) != AE_IFREG || !strstr(p, "lib/modules/"))
			continue;
		/* Kernel modules as installed: name.ko, or compressed (name.ko.xz, name.ko.zst). */
		const char *ko = strstr(base, ".ko");
		if (ko && (ko[3] == 0 || ko[3] == '.')) {
			names_add(v, n, module_name_of(base));
		} else if (strcmp(base, "modules.builtin") == 0) {
			size_t sz = (size_t)archive_entry_size(e);
			_cleanup_free_ char *text = calloc(1, sz + 1);
			if (!text || archive_read_data(a, text, sz) != (la_ssize_t)sz) {
				r = ARCHIVE_FATAL;
				break;
			}
			add_builtin(v, n, text);
		}
	}
	*ret_next = len;
	if (r == ARCHIVE_EOF && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
		/* The trailer entry's name, then padding: the next archive begins at the first non-zero byte. */
		const unsigned char *t = memmem(data, len, "TRAILER!!!", 10);
		size_t at = t ? (size_t)(t - data) + 10 : len;
		while (at < len && data[at] == 0)
			at++;
		*ret_next = at;
	}
	if (r != ARCHIVE_EOF) {
		err_fail("driver audit '%s': initramfs unreadable: %s", what,
			 archive_error_string(a) ? archive_error_string(a) : "truncated");
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	return 0;
}

int base_initrd_modules(const void *initrd, size_t len, const char *what, char ***ret_names)
{
	char **names = calloc(1, sizeof(*names));
	size_t n = 0;
	if (!names)
		abort();
	const unsigned char *data = initrd;
	for (size_t off = 0, next = 0; off < len; off += next) {
		if (read_segment(data + off, len - off, what, &names, &n, &next) < 0) {
			cleanup_strvp(&names);
			return -1;
		}
	}
	*ret_names = names;
	return 0;
}
