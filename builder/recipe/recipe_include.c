/* Reading a recipe's top file and its includes (include: a name or a list,
 * relative to the including file), includes first, merged key by key into
 * one tree; cycles, depth and total size bounded, each error at the
 * include's own line. */
#include "recipe_include.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "yamltree.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* State while reading the top file and its includes. */
struct loader {
	char *bytes;   /* every file read so far, concatenated, for recipe_sha256 */
	size_t len;    /* bytes used in bytes */
	char *chain[32]; /* display paths of the include chain being loaded */
	char *real[32];  /* realpath of each chain entry, to detect cycles */
	size_t depth;    /* entries used in chain/real */
	bool no_fs;      /* recipe_load_memory: includes are names only */
};

static int load_tree(struct loader *l, const char *display, const struct yamltree *from, const char *mem,
		     size_t mem_len, struct yamltree **ret);

/* Path of an include as the user would write it from the current directory. */
static char *include_display(const char *includer, const char *inc)
{
	if (inc[0] == '/')
		return xstrdup(inc);
	_cleanup_free_ char *dir = fs_dirname(includer);
	if (strcmp(dir, ".") == 0)
		return xstrdup(inc);
	return xasprintf("%s/%s", dir, inc);
}

static int cycle_error(const struct loader *l, const struct yamltree *from, const char *display, size_t start)
{
	char chain[2048] = "";
	for (size_t i = start; i < l->depth; i++) {
		size_t o = strlen(chain);
		snprintf(chain + o, sizeof(chain) - o, "%s -> ", l->chain[i]);
	}
	size_t o = strlen(chain);
	snprintf(chain + o, sizeof(chain) - o, "%s", display);
	return yamltree_error(from, "include cycle: %s", chain);
}

/* Load every file named by the top mapping's include: into one merged tree. */
static int load_includes(struct loader *l, const char *display, struct yamltree *inc, struct yamltree **ret)
{
	_cleanup_yamltree_ struct yamltree *acc = NULL;
	size_t n = yamltree_kind(inc) == YAMLTREE_SEQUENCE ? yamltree_count(inc) : 1;
	if (yamltree_kind(inc) == YAMLTREE_MAPPING)
		return yamltree_error(inc, "expected a file name or a sequence of file names for 'include', got a mapping");
	for (size_t i = 0; i < n; i++) {
		const struct yamltree *item = yamltree_kind(inc) == YAMLTREE_SEQUENCE ? yamltree_item(inc, i) : inc;
		_cleanup_free_ char *ipath = xasprintf("include[%zu]", i);
		struct yamltree *child = NULL;
		const char *name;
		if (yamltree_string(item, yamltree_kind(inc) == YAMLTREE_SEQUENCE ? ipath : "include", &name) < 0)
			return -1;
		_cleanup_free_ char *child_display = include_display(display, name);
		if (load_tree(l, child_display, item, NULL, 0, &child) < 0)
			return -1;
		acc = yamltree_merge(TAKE_PTR(acc), child);
	}
	*ret = TAKE_PTR(acc);
	return 0;
}

/* An included file must be a recipe fragment: a mapping of recipe keys.
 * Anything else (a password file, a key) is refused, and nothing of what
 * it holds is shown: not a mapping at the include, an unknown key where it is. */
static int check_included(const struct yamltree *from, const char *display, const struct yamltree *root)
{
	char esc[256];
	if (yamltree_kind(root) == YAMLTREE_NULL)
		return 0;
	if (yamltree_kind(root) != YAMLTREE_MAPPING)
		return yamltree_error(from, "include file '%s' is not a qvsa recipe: its top level is not a mapping "
				      "(its contents are not shown)", yamltree_escape(display, esc, sizeof(esc)));
	for (size_t i = 0; i < yamltree_count(root); i++) {
		const struct yamltree *key = yamltree_key(root, i);
		const char *const *k = recipe_top_keys;
		while (*k && strcmp(*k, yamltree_text(key)) != 0)
			k++;
		if (*k)
			continue;
		const char *hint = yamltree_suggest(yamltree_text(key), recipe_top_keys);
		if (hint)
			return yamltree_error(key, "unknown key at the top level of an included file (not shown); "
					      "did you mean '%s'?", hint);
		return yamltree_error(key, "unknown key at the top level of an included file (not shown): "
				      "is '%s' a qvsa recipe?", yamltree_escape(display, esc, sizeof(esc)));
	}
	return 0;
}

/* Read display (top file if from is NULL, else the include named by from),
 * its includes first, and return the merged tree. mem (mem_len bytes), if
 * not NULL, is the top file's text. */
static int load_tree(struct loader *l, const char *display, const struct yamltree *from, const char *mem,
		     size_t mem_len, struct yamltree **ret)
{
	_cleanup_free_ char *real = NULL;
	_cleanup_free_ char *buf = NULL;
	_cleanup_yamltree_ struct yamltree *root = NULL;
	_cleanup_yamltree_ struct yamltree *inc = NULL;
	_cleanup_yamltree_ struct yamltree *base = NULL;
	char esc[256];
	struct stat st;
	size_t len;

	yamltree_escape(display, esc, sizeof(esc));
	if (mem) {
		buf = malloc(mem_len + 1);
		if (!buf)
			abort();
		memcpy(buf, mem, mem_len);
		buf[mem_len] = 0;
		len = mem_len;
	} else if (!from) {
		if (yamltree_read_input(display, &buf, &len) < 0)
			return -1;
	} else if (l->no_fs) {
		buf = xstrdup("{}"); /* in memory, an include stands for an empty fragment */
		len = 2;
	} else {
		real = realpath(display, NULL);
		if (!real || stat(real, &st) < 0)
		{
			char name[256];
			return yamltree_error(from, "include file '%s' not found (looked for '%s')",
					      yamltree_escape(yamltree_text(from), name, sizeof(name)), esc);
		}
		if (!S_ISREG(st.st_mode))
			return yamltree_error(from, "include file '%s' is not a regular file", esc);
		for (size_t i = 0; i < l->depth; i++)
			if (strcmp(l->real[i], real) == 0)
				return cycle_error(l, from, display, i);
		if (l->depth == ELEMENTSOF(l->chain))
			return yamltree_error(from, "includes nested deeper than %zu files", ELEMENTSOF(l->chain));
		if ((uint64_t)st.st_size + l->len > YAMLTREE_MAX_BYTES)
			return yamltree_error(from, "include file '%s' makes the recipe's files larger than %u MiB together",
					      esc, YAMLTREE_MAX_BYTES >> 20);
		if (fs_read_file(display, &buf, &len) < 0)
			return -1;
	}
	/* Every file read counts, so a list that includes one file many times is bounded too. */
	if (from && l->len + len > YAMLTREE_MAX_BYTES)
		return yamltree_error(from, "include file '%s' makes the recipe's files larger than %u MiB together",
				      esc, YAMLTREE_MAX_BYTES >> 20);
	l->bytes = realloc(l->bytes, l->len + len + 1);
	if (!l->bytes)
		abort();
	memcpy(l->bytes + l->len, buf, len);
	l->len += len;

	if (yamltree_parse_flags(display, buf, len, from ? YAMLTREE_NO_QUOTE : 0, &root) < 0 ||
	    (from && check_included(from, display, root) < 0))
		return -1;
	if (yamltree_expect(root, YAMLTREE_MAPPING, "") < 0)
		return -1;
	inc = yamltree_take(root, "include");
	if (inc && yamltree_kind(inc) != YAMLTREE_NULL) {
		l->chain[l->depth] = xstrdup(display);
		l->real[l->depth] = real ? xstrdup(real) : fs_abspath(display);
		l->depth++;
		int r = load_includes(l, display, inc, &base);
		l->depth--;
		free(l->chain[l->depth]);
		free(l->real[l->depth]);
		if (r < 0)
			return -1;
	}
	*ret = yamltree_merge(TAKE_PTR(base), TAKE_PTR(root));
	return 0;
}

int recipe_include_load(const char *path, const char *mem, size_t mem_len, struct yamltree **ret,
			char ret_sha256[65])
{
	struct loader l = { .no_fs = mem != NULL };
	int rc = load_tree(&l, path, NULL, mem, mem_len, ret);
	if (rc == 0)
		sha256_hex(l.bytes, l.len, ret_sha256);
	free(l.bytes);
	return rc;
}
