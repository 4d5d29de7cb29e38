/* Typed accessors over a yamltree (see yamltree.h): each reports a schema
 * error as one located line, quoting only short, non-secret values. */
#include "yamltree_private.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <ctype.h>
#include <string.h>

/* Optimal string alignment distance (a swap of neighbours counts once),
 * ignoring case; SIZE_MAX for words too long to be worth comparing. */
static size_t edit_distance(const char *a, const char *b)
{
	enum { MAXLEN = 64 };
	size_t la = strlen(a), lb = strlen(b);
	if (la >= MAXLEN || lb >= MAXLEN)
		return SIZE_MAX;
	unsigned short d[MAXLEN + 1][MAXLEN + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned short)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned short)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			unsigned best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned short)best;
		}
	}
	return d[la][lb];
}

const char *yamltree_suggest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (const char *const *c = candidates; *c; c++) {
		size_t d = edit_distance(word, *c);
		size_t longest = strlen(word) > strlen(*c) ? strlen(word) : strlen(*c);
		/* Close enough: about one edit in three characters, at least one. */
		size_t limit = longest / 3 > 1 ? longest / 3 : 1;
		if (d <= limit && d < best_d) {
			best = *c;
			best_d = d;
		}
	}
	return best;
}

/* Schema helpers. */

/* "for 'disk.size'" or "at the top level", for messages. */
static const char *for_path(const char *path, char *buf, size_t size)
{
	if (!*path)
		return "at the top level";
	snprintf(buf, size, "for '%s'", path);
	return buf;
}

/* "in disk" or "at the top level". */
static const char *in_path(const char *path, char *buf, size_t size)
{
	if (!*path)
		return "at the top level";
	snprintf(buf, size, "in %s", path);
	return buf;
}

int yamltree_expect(const struct yamltree *n, enum yamltree_kind kind, const char *path)
{
	static const char *const names[] = {
		[YAMLTREE_NULL] = "null",
		[YAMLTREE_SCALAR] = "a string",
		[YAMLTREE_SEQUENCE] = "a sequence",
		[YAMLTREE_MAPPING] = "a mapping",
	};
	char where[512], got[256];
	if (n->kind == kind)
		return 0;
	if (!*path && n->kind == YAMLTREE_NULL)
		return yamltree_error(n, "expected %s at the top level, got an empty document", names[kind]);
	/* A top level that is not a mapping is some other file (a key, a
	 * password file): say what it is, never what it holds. */
	if (!*path && n->kind == YAMLTREE_SCALAR)
		return yamltree_error(n, "expected %s at the top level, got a string (is this a recipe?)", names[kind]);
	return yamltree_error(n, "expected %s %s, got %s", names[kind], for_path(path, where, sizeof(where)),
			      yamltree_describe(n, got, sizeof(got)));
}

int yamltree_check_keys(const struct yamltree *map, const char *path, const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i++) {
		const struct yamltree *key = map->items[2 * i];
		const char *const *a = allowed;
		while (*a && strcmp(*a, key->text) != 0)
			a++;
		if (*a)
			continue;
		char where[512], esc[YAMLTREE_QUOTE_MAX + 32], list[1024] = "";
		const char *hint = yamltree_suggest(key->text, allowed);
		/* A long key may be a line of some file: its length only. */
		if (yamltree_describe(key, esc, sizeof(esc))[0] != '\'')
			snprintf(esc, sizeof(esc), "of %zu characters (not shown)", strlen(key->text));
		if (hint)
			return yamltree_error(key, "unknown key %s %s; did you mean '%s'?", esc,
					      in_path(path, where, sizeof(where)), hint);
		for (a = allowed; *a; a++) {
			size_t o = strlen(list);
			snprintf(list + o, sizeof(list) - o, "%s%s", a == allowed ? "" : ", ", *a);
		}
		return yamltree_error(key, "unknown key %s %s; expected one of: %s", esc,
				      in_path(path, where, sizeof(where)), list);
	}
	return 0;
}

int yamltree_require(const struct yamltree *map, const char *path, const char *key, const struct yamltree **ret)
{
	char where[512];
	long i = yamltree_find_pair(map, key);
	if (i < 0)
		return yamltree_error(map, "missing required key '%s' %s", key, in_path(path, where, sizeof(where)));
	if (map->items[2 * i + 1]->kind == YAMLTREE_NULL)
		return yamltree_error(map->items[2 * i], "missing value for required key '%s' %s", key,
				      in_path(path, where, sizeof(where)));
	*ret = map->items[2 * i + 1];
	return 0;
}

int yamltree_string(const struct yamltree *n, const char *path, const char **ret)
{
	if (yamltree_expect(n, YAMLTREE_SCALAR, path) < 0)
		return -1;
	*ret = n->text;
	return 0;
}

int yamltree_enum(const struct yamltree *n, const char *path, const char *const *allowed, const char **ret)
{
	const char *s;
	if (yamltree_string(n, path, &s) < 0)
		return -1;
	for (const char *const *a = allowed; *a; a++) {
		if (strcmp(*a, s) == 0) {
			*ret = *a;
			return 0;
		}
	}
	char list[1024] = "", where[512], got[256];
	for (const char *const *a = allowed; *a; a++) {
		size_t o = strlen(list);
		snprintf(list + o, sizeof(list) - o, "%s'%s'", a == allowed ? "" : ", ", *a);
	}
	return yamltree_error(n, "expected %s%s %s, got %s", allowed[1] ? "one of " : "", list,
			      for_path(path, where, sizeof(where)), yamltree_describe(n, got, sizeof(got)));
}

int yamltree_parse_size(const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix; /* as written after the number */
		unsigned shift;     /* power of two it multiplies by */
	} units[] = {
		{ "", 0 },     { "K", 10 },   { "M", 20 },   { "G", 30 },   { "T", 40 },
		{ "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
	};
	uint64_t v = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*ret = v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int yamltree_size(const struct yamltree *n, const char *path, uint64_t *ret)
{
	char where[512], got[256];
	const char *s;
	if (yamltree_string(n, path, &s) < 0)
		return -1;
	int r = yamltree_parse_size(s, ret);
	if (r == -ERANGE)
		return yamltree_error(n, "size %s %s is too large", yamltree_describe(n, got, sizeof(got)),
				      for_path(path, where, sizeof(where)));
	if (r < 0)
		return yamltree_error(n, "expected a size like 512M or 2G %s, got %s", for_path(path, where, sizeof(where)),
				      yamltree_describe(n, got, sizeof(got)));
	return 0;
}

int yamltree_strv(const struct yamltree *n, const char *path, const struct yamltree_strv_rules *rules, char ***ret)
{
	char where[512], got[256];
	if (yamltree_expect(n, YAMLTREE_SEQUENCE, path) < 0)
		return -1;
	if (rules->nonempty && n->n == 0)
		return yamltree_error(n, "expected at least one entry %s", for_path(path, where, sizeof(where)));
	_cleanup_strv_ char **v = calloc(n->n + 1, sizeof(*v));
	_cleanup_strset_ struct strset *seen = rules->unique ? strset_new() : NULL;
	if (!v)
		abort();
	for (size_t i = 0; i < n->n; i++) {
		const struct yamltree *item = n->items[i];
		_cleanup_free_ char *ipath = xasprintf("%s[%zu]", path, i);
		const char *s;
		if (yamltree_string(item, ipath, &s) < 0)
			return -1;
		if (rules->valid && !rules->valid(s))
			return yamltree_error(item, "expected %s %s, got %s", rules->expected,
					      for_path(ipath, where, sizeof(where)), yamltree_describe(item, got, sizeof(got)));
		v[i] = xstrdup(s);
		size_t j = seen ? strset_put(seen, v[i], i) : SIZE_MAX;
		if (j != SIZE_MAX)
			return yamltree_error(item, "duplicate entry %s in '%s' (first at line %u, column %u)",
					      yamltree_describe(item, got, sizeof(got)), path, n->items[j]->line,
					      n->items[j]->column);
	}
	*ret = TAKE_PTR(v);
	return 0;
}
