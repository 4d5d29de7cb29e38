/* Directory listings: the entries' array, and how the direct reader
 * lists directories with debugfs ("ls -p" per directory, one run per
 * depth, its output parsed field by field). */
#include "image.h"
#include "image_private.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"

#include <stdio.h>
#include <string.h>

void image_listing_add(struct image_listing *l, const char *path, char type, uint64_t size)
{
	/* Grow by doubling: the array is full whenever n is a power of two (or 0). */
	if ((l->n & (l->n - 1)) == 0) {
		l->entries = realloc(l->entries, (l->n ? 2 * l->n : 1) * sizeof(*l->entries));
		if (!l->entries)
			abort();
	}
	l->entries[l->n++] = (struct image_entry){.path = xstrdup(path), .type = type, .size = size};
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct image_entry *)a)->path, ((const struct image_entry *)b)->path);
}

void image_listing_sort(struct image_listing *l)
{
	if (l->n)
		qsort(l->entries, l->n, sizeof(*l->entries), entry_cmp);
}

void image_listing_clear(struct image_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].path);
	free(l->entries);
	*l = (struct image_listing){0};
}

/* Parse one unsigned number (base 8 or 10) ending at '/'; *pp moves past the '/'. */
static bool ls_field(const char **pp, int base, uint64_t *ret)
{
	const char *p = *pp;
	uint64_t v = 0;
	if (*p == '/')
		return false;
	for (; *p != '/'; p++) {
		if (*p < '0' || *p > '0' + base - 1 || v > UINT64_MAX / 16)
			return false;
		v = v * (uint64_t)base + (uint64_t)(*p - '0');
	}
	*pp = p + 1;
	*ret = v;
	return true;
}

/* The entry type of an inode mode. */
static char mode_type(uint64_t mode)
{
	switch (mode & 0170000) {
	case 0100000:
		return 'f';
	case 0040000:
		return 'd';
	case 0120000:
		return 'l';
	default:
		return '?';
	}
}

int image_debugfs_parse_ls(const char *out, const char *const *dirs, size_t n, struct image_listing *lists)
{
	/* ls -p prints one record per entry, "/INODE/MODE/UID/GID/NAME/SIZE/\n"
	 * (SIZE empty for a directory). A name holds no '/' but may hold a
	 * newline: records are read field by field, not line by line. */
	size_t k = 0; /* commands seen */
	for (const char *p = out; *p;) {
		if (strncmp(p, "debugfs: ", 9) == 0) {
			if (strncmp(p + 9, "ls -p ", 6) != 0)
				return err_fail("debugfs: unexpected command echo in a listing");
			if (k >= n)
				return err_fail("debugfs: more listings than commands");
			k++;
			p += strcspn(p, "\n");
		} else if (*p == '/' && k > 0) {
			p++;
			uint64_t ino, mode, uid, gid, size = 0;
			if (!ls_field(&p, 10, &ino) || !ls_field(&p, 8, &mode) || !ls_field(&p, 10, &uid) ||
			    !ls_field(&p, 10, &gid))
				return err_fail("debugfs: a listing record this parser does not know");
			const char *name = p, *slash = strchr(p, '/');
			if (!slash || slash == name)
				return err_fail("debugfs: a listing record without a name");
			p = slash + 1;
			if (*p != '/' && !ls_field(&p, 10, &size))
				return err_fail("debugfs: a listing record with a bad size");
			if (*p == '/')
				p++;
			if (*p != '\n')
				return err_fail("debugfs: a listing record that does not end its line");
			size_t nlen = (size_t)(slash - name);
			struct image_listing *l = &lists[k - 1];
			if (nlen == 1 && name[0] == '.') {
				l->exists = true; /* only a directory lists itself */
			} else if (!(nlen == 2 && name[0] == '.' && name[1] == '.')) {
				const char *d = dirs[k - 1];
				_cleanup_free_ char *path = xasprintf("%s%s%.*s", d, strcmp(d, "/") == 0 ? "" : "/", (int)nlen, name);
				char type = mode_type(mode);
				image_listing_add(l, path, type, type == 'f' ? size : 0);
			}
		} else if (*p != '\n') {
			return err_fail("debugfs: unexpected output in a listing");
		}
		if (*p)
			p++;
	}
	if (k != n)
		return err_fail("debugfs: %zu of %zu listings", k, n);
	return 0;
}

/* A path debugfs reads as one argument when quoted ("..."). */
static bool ls_quotable(const char *path)
{
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			return false;
	return path[0] == '/';
}

/* One depth of a listing: the directories to list, each with the index
 * of the list (of dirs) it feeds. */
struct ls_level {
	char **paths;  /* directories, NULL-terminated (strv); owned */
	size_t *owner; /* owner[i]: the list paths[i] feeds; owned */
	size_t n;      /* entries in paths and owner */
};

static void ls_level_clear(struct ls_level *l)
{
	cleanup_strvp(&l->paths);
	free(l->owner);
	*l = (struct ls_level){0};
}

static void ls_level_add(struct ls_level *l, const char *path, size_t owner)
{
	/* Grown by doubling: the arrays are full whenever n is a power of two (or 0). */
	if ((l->n & (l->n - 1)) == 0) {
		size_t cap = l->n ? 2 * l->n : 1;
		l->paths = realloc(l->paths, (cap + 1) * sizeof(*l->paths));
		l->owner = realloc(l->owner, cap * sizeof(*l->owner));
		if (!l->paths || !l->owner)
			abort();
	}
	l->paths[l->n] = xstrdup(path);
	l->owner[l->n++] = owner;
	l->paths[l->n] = NULL;
}

/* List cur's directories with one debugfs run: their entries go to
 * c->lists, their subdirectories to next. 0, 1 declined, -1 error. */
static int debugfs_list_level(const char *dev, const char *cmdfile, const char *const *dirs, bool first,
			      const struct ls_level *cur, struct ls_level *next, struct image_content *c)
{
	_cleanup_free_ char *cmds = NULL;
	size_t clen = 0;
	FILE *f = open_memstream(&cmds, &clen);
	if (!f)
		abort();
	for (size_t i = 0; i < cur->n; i++) {
		if (!ls_quotable(cur->paths[i])) {
			fclose(f);
			return image_decline("a path debugfs cannot quote under '%s'", dirs[cur->owner[i]]);
		}
		fprintf(f, "ls -p \"%s\"\n", cur->paths[i]);
	}
	if (fclose(f) != 0)
		abort();
	if (fs_write_file_atomic(cmdfile, cmds, clen, 0600) < 0)
		return -1;
	const char *argv[] = {"debugfs", "-c", "-f", cmdfile, dev, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(argv, NULL, &out) < 0)
		return 1;
	_cleanup_free_ struct image_listing *got = calloc(cur->n, sizeof(*got));
	if (!got)
		abort();
	int rc = image_debugfs_parse_ls(out, (const char *const *)cur->paths, cur->n, got);
	for (size_t i = 0; i < cur->n; i++) {
		struct image_listing *l = &c->lists[cur->owner[i]];
		if (rc == 0 && first)
			l->exists = got[i].exists;
		for (size_t j = 0; rc == 0 && j < got[i].n; j++) {
			const struct image_entry *e = &got[i].entries[j];
			image_listing_add(l, e->path, e->type, e->size);
			if (e->type == 'd')
				ls_level_add(next, e->path, cur->owner[i]);
		}
		image_listing_clear(&got[i]);
	}
	return rc < 0 ? 1 : 0; /* output this parser does not know: libguestfs reads the disk */
}

/* Deeper than any directory qvsa lists: a tree deeper is not read directly. */
#define LIST_MAX_DEPTH 32

size_t image_content_lists_new(struct image_content *c, const char *const *dirs)
{
	size_t n = 0;
	while (dirs && dirs[n])
		n++;
	if (n == 0)
		return 0;
	c->lists = calloc(n, sizeof(*c->lists));
	if (!c->lists)
		abort();
	c->n_lists = n;
	return n;
}

int image_debugfs_list(const char *dev, const char *tmp, const char *const *dirs, struct image_content *c)
{
	size_t n = image_content_lists_new(c, dirs);
	if (n == 0)
		return 0;
	_cleanup_free_ char *cmdfile = xasprintf("%s/ls-cmds", tmp);
	struct ls_level cur = {0};
	for (size_t i = 0; i < n; i++)
		ls_level_add(&cur, dirs[i], i);
	int rc = 0;
	for (unsigned depth = 0; rc == 0 && cur.n > 0; depth++) {
		struct ls_level next = {0};
		rc = depth > LIST_MAX_DEPTH ? image_decline("a directory tree deeper than %d", LIST_MAX_DEPTH)
					    : debugfs_list_level(dev, cmdfile, dirs, depth == 0, &cur, &next, c);
		ls_level_clear(&cur);
		cur = next;
	}
	ls_level_clear(&cur);
	for (size_t i = 0; rc == 0 && i < n; i++)
		image_listing_sort(&c->lists[i]);
	return rc;
}
