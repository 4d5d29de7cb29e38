/* YAML document tree with source locations (see yamltree.h). The schema
 * helpers live here too so recipes and targets report errors identically. */
#include "yamltree.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* Nesting beyond this is surely a mistake and would only risk the stack. */
#define YAMLTREE_MAX_DEPTH 64

/* A file name shared by every node parsed from that file (merges mix files). */
struct yamltree_src {
	unsigned refs; /* nodes pointing here */
	char name[];   /* as given to yamltree_parse */
};

struct yamltree {
	enum yamltree_kind kind;    /* what this node holds */
	struct yamltree_src *src;   /* file it came from; one reference owned */
	unsigned line;              /* 1-based */
	unsigned column;            /* 1-based */
	char *text;                 /* SCALAR only: the text, owned; NULL otherwise */
	size_t n;                   /* sequence items or mapping pairs */
	struct yamltree **items;    /* owned: n items, or 2n (key, value, key, ...) for a mapping */
};

/* Parser state for one document. */
struct parse_ctx {
	yaml_parser_t parser;     /* libyaml's pull parser over buf */
	struct yamltree_src *src; /* one reference owned, handed to each node */
	const char *buf;          /* the input, to turn byte offsets into line:column */
	size_t len;               /* bytes in buf */
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q)
		abort();
	return q;
}

static void event_deletep(yaml_event_t *e) { yaml_event_delete(e); }

static struct yamltree *node_new(enum yamltree_kind kind, struct yamltree_src *src, yaml_mark_t mark)
{
	struct yamltree *n = calloc(1, sizeof(*n));
	if (!n)
		abort();
	n->kind = kind;
	n->src = src;
	src->refs++;
	n->line = (unsigned)mark.line + 1;
	n->column = (unsigned)mark.column + 1;
	return n;
}

static void seq_append(struct yamltree *seq, struct yamltree *item)
{
	seq->items = xrealloc(seq->items, (seq->n + 1) * sizeof(*seq->items));
	seq->items[seq->n++] = item;
}

static void map_append(struct yamltree *map, struct yamltree *key, struct yamltree *value)
{
	map->items = xrealloc(map->items, (2 * map->n + 2) * sizeof(*map->items));
	map->items[2 * map->n] = key;
	map->items[2 * map->n + 1] = value;
	map->n++;
}

static void src_unref(struct yamltree_src *src)
{
	if (src && --src->refs == 0)
		free(src);
}

void yamltree_free(struct yamltree *n)
{
	if (!n)
		return;
	size_t slots = n->kind == YAMLTREE_MAPPING ? 2 * n->n : n->n;
	for (size_t i = 0; i < slots; i++)
		yamltree_free(n->items[i]);
	free(n->items);
	free(n->text);
	src_unref(n->src);
	free(n);
}

static int error_at(const char *file, unsigned line, unsigned column, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static int error_at(const char *file, unsigned line, unsigned column, const char *fmt, va_list ap)
{
	char msg[3072];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return err_input("%s:%u:%u: %s", file, line, column, msg);
}

int yamltree_error(const struct yamltree *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_at(n->src->name, n->line, n->column, fmt, ap);
	va_end(ap);
	return -1;
}

static int ctx_error(struct parse_ctx *c, yaml_mark_t mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctx_error(struct parse_ctx *c, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_at(c->src->name, (unsigned)mark.line + 1, (unsigned)mark.column + 1, fmt, ap);
	va_end(ap);
	return -1;
}

/* libyaml's reader reports a byte offset only; count lines up to it. */
static yaml_mark_t mark_from_offset(const struct parse_ctx *c, size_t offset)
{
	yaml_mark_t m = { .index = offset };
	for (size_t i = 0; i < offset && i < c->len; i++) {
		if (c->buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	return m;
}

static int syntax_error(struct parse_ctx *c)
{
	const yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "unknown error";
	if (p->error == YAML_MEMORY_ERROR)
		abort(); /* as xasprintf: the one failure we do not recover from */
	if (p->error == YAML_READER_ERROR) {
		yaml_mark_t m = mark_from_offset(c, p->problem_offset);
		if (p->problem_value >= 0)
			return ctx_error(c, m, "YAML syntax error: %s (byte 0x%02x)", problem, (unsigned)p->problem_value);
		return ctx_error(c, m, "YAML syntax error: %s", problem);
	}
	if (p->context)
		return ctx_error(c, p->problem_mark, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
				 p->context, p->context_mark.line + 1, p->context_mark.column + 1);
	return ctx_error(c, p->problem_mark, "YAML syntax error: %s", problem);
}

static int next_event(struct parse_ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return syntax_error(c);
	return 0;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !ev->data.scalar.plain_implicit)
		return false;
	return v[0] == 0 || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

static int check_anchor(struct parse_ctx *c, const yaml_event_t *ev, const yaml_char_t *anchor)
{
	if (anchor)
		return ctx_error(c, ev->start_mark, "YAML anchors (&%s) are not supported; repeat the value or use include:",
				 (const char *)anchor);
	return 0;
}

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, unsigned depth, struct yamltree **ret);

static int find_pair(const struct yamltree *map, const char *key)
{
	for (size_t i = 0; map->kind == YAMLTREE_MAPPING && i < map->n; i++)
		if (strcmp(map->items[2 * i]->text, key) == 0)
			return (int)i;
	return -1;
}

static int parse_mapping(struct parse_ctx *c, struct yamltree *map, unsigned depth)
{
	for (;;) {
		_cleanup_(event_deletep) yaml_event_t kev = { 0 };
		_cleanup_(event_deletep) yaml_event_t vev = { 0 };
		_cleanup_yamltree_ struct yamltree *key = NULL;
		struct yamltree *value = NULL;
		if (next_event(c, &kev) < 0)
			return -1;
		if (kev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (parse_node(c, &kev, depth + 1, &key) < 0)
			return -1;
		if (key->kind != YAMLTREE_SCALAR) {
			char what[64];
			return yamltree_error(key, "expected a string as mapping key, got %s",
					      yamltree_describe(key, what, sizeof(what)));
		}
		int first = find_pair(map, key->text);
		if (first >= 0) {
			char esc[128];
			const struct yamltree *k = map->items[2 * first];
			return yamltree_error(key, "duplicate key '%s' (first at line %u, column %u)",
					      yamltree_escape(key->text, esc, sizeof(esc)), k->line, k->column);
		}
		if (next_event(c, &vev) < 0 || parse_node(c, &vev, depth + 1, &value) < 0)
			return -1;
		map_append(map, TAKE_PTR(key), value);
	}
}

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, unsigned depth, struct yamltree **ret)
{
	if (depth > YAMLTREE_MAX_DEPTH)
		return ctx_error(c, ev->start_mark, "nesting deeper than %d levels", YAMLTREE_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return ctx_error(c, ev->start_mark, "YAML aliases (*%s) are not supported; repeat the value or use include:",
				 (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT: {
		if (check_anchor(c, ev, ev->data.scalar.anchor) < 0)
			return -1;
		const char *v = (const char *)ev->data.scalar.value;
		if (memchr(v, 0, ev->data.scalar.length))
			return ctx_error(c, ev->start_mark, "NUL characters are not allowed in values");
		bool null = is_null_scalar(ev);
		struct yamltree *n = node_new(null ? YAMLTREE_NULL : YAMLTREE_SCALAR, c->src, ev->start_mark);
		if (!null)
			n->text = xstrdup(v);
		*ret = n;
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT: {
		if (check_anchor(c, ev, ev->data.sequence_start.anchor) < 0)
			return -1;
		_cleanup_yamltree_ struct yamltree *seq = node_new(YAMLTREE_SEQUENCE, c->src, ev->start_mark);
		for (;;) {
			_cleanup_(event_deletep) yaml_event_t iev = { 0 };
			struct yamltree *item = NULL;
			if (next_event(c, &iev) < 0)
				return -1;
			if (iev.type == YAML_SEQUENCE_END_EVENT)
				break;
			if (parse_node(c, &iev, depth + 1, &item) < 0)
				return -1;
			seq_append(seq, item);
		}
		*ret = TAKE_PTR(seq);
		return 0;
	}
	case YAML_MAPPING_START_EVENT: {
		if (check_anchor(c, ev, ev->data.mapping_start.anchor) < 0)
			return -1;
		_cleanup_yamltree_ struct yamltree *map = node_new(YAMLTREE_MAPPING, c->src, ev->start_mark);
		if (parse_mapping(c, map, depth) < 0)
			return -1;
		*ret = TAKE_PTR(map);
		return 0;
	}
	default:
		return ctx_error(c, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
	}
}

static int parse_stream(struct parse_ctx *c, struct yamltree **ret)
{
	_cleanup_(event_deletep) yaml_event_t ev = { 0 };
	_cleanup_(event_deletep) yaml_event_t end = { 0 };
	_cleanup_(event_deletep) yaml_event_t after = { 0 };
	_cleanup_(event_deletep) yaml_event_t root = { 0 };
	_cleanup_yamltree_ struct yamltree *tree = NULL;

	if (next_event(c, &ev) < 0) /* STREAM-START */
		return -1;
	yaml_event_delete(&ev);
	if (next_event(c, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		/* Nothing but comments: an empty document. */
		*ret = node_new(YAMLTREE_NULL, c->src, (yaml_mark_t){ 0 });
		return 0;
	}
	if (next_event(c, &root) < 0 || parse_node(c, &root, 0, &tree) < 0)
		return -1;
	if (next_event(c, &end) < 0) /* DOCUMENT-END */
		return -1;
	if (next_event(c, &after) < 0)
		return -1;
	if (after.type == YAML_DOCUMENT_START_EVENT)
		return ctx_error(c, after.start_mark, "a second YAML document starts here; "
				 "a file must hold exactly one (remove the '---')");
	*ret = TAKE_PTR(tree);
	return 0;
}

int yamltree_parse(const char *file, const char *buf, size_t len, struct yamltree **ret)
{
	size_t flen = strlen(file) + 1;
	struct parse_ctx c = { .buf = buf, .len = len };
	c.src = malloc(sizeof(*c.src) + flen);
	if (!c.src)
		abort();
	c.src->refs = 1;
	memcpy(c.src->name, file, flen);
	if (!yaml_parser_initialize(&c.parser))
		abort();
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)buf, len);
	int r = parse_stream(&c, ret);
	yaml_parser_delete(&c.parser);
	src_unref(c.src);
	return r;
}

int yamltree_read_input(const char *path, char **ret_buf, size_t *ret_len)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return err_input("reading '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_input("reading '%s': not a regular file", path);
	return fs_read_file(path, ret_buf, ret_len);
}

int yamltree_load_file(const char *path, struct yamltree **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (yamltree_read_input(path, &buf, &len) < 0)
		return -1;
	return yamltree_parse(path, buf, len, ret);
}

enum yamltree_kind yamltree_kind(const struct yamltree *n) { return n->kind; }
const char *yamltree_file(const struct yamltree *n) { return n->src->name; }
unsigned yamltree_line(const struct yamltree *n) { return n->line; }
unsigned yamltree_column(const struct yamltree *n) { return n->column; }
const char *yamltree_text(const struct yamltree *n) { return n->text; }
size_t yamltree_count(const struct yamltree *n) { return n->n; }

const struct yamltree *yamltree_item(const struct yamltree *seq, size_t i)
{
	return seq->kind == YAMLTREE_SEQUENCE && i < seq->n ? seq->items[i] : NULL;
}

const struct yamltree *yamltree_key(const struct yamltree *map, size_t i)
{
	return map->kind == YAMLTREE_MAPPING && i < map->n ? map->items[2 * i] : NULL;
}

const struct yamltree *yamltree_value(const struct yamltree *map, size_t i)
{
	return map->kind == YAMLTREE_MAPPING && i < map->n ? map->items[2 * i + 1] : NULL;
}

const struct yamltree *yamltree_get(const struct yamltree *map, const char *key)
{
	int i = find_pair(map, key);
	if (i < 0 || map->items[2 * i + 1]->kind == YAMLTREE_NULL)
		return NULL;
	return map->items[2 * i + 1];
}

struct yamltree *yamltree_take(struct yamltree *map, const char *key)
{
	int i = find_pair(map, key);
	if (i < 0)
		return NULL;
	struct yamltree *value = map->items[2 * i + 1];
	yamltree_free(map->items[2 * i]);
	memmove(&map->items[2 * i], &map->items[2 * i + 2], (2 * (map->n - (size_t)i) - 2) * sizeof(*map->items));
	map->n--;
	return value;
}

struct yamltree *yamltree_merge(struct yamltree *base, struct yamltree *over)
{
	if (!base)
		return over;
	if (!over)
		return base;
	if (base->kind != YAMLTREE_MAPPING || over->kind != YAMLTREE_MAPPING) {
		yamltree_free(base);
		return over;
	}
	for (size_t i = 0; i < over->n; i++) {
		struct yamltree *key = over->items[2 * i], *value = over->items[2 * i + 1];
		int j = find_pair(base, key->text);
		if (j >= 0) {
			/* The overriding key is where a later error about it belongs. */
			yamltree_free(base->items[2 * j]);
			base->items[2 * j] = key;
			base->items[2 * j + 1] = yamltree_merge(base->items[2 * j + 1], value);
		} else {
			map_append(base, key, value);
		}
	}
	/* The merged mapping is reported where the overriding one was written. */
	struct yamltree_src *s = base->src;
	base->src = over->src;
	over->src = s;
	base->line = over->line;
	base->column = over->column;
	over->n = 0;
	yamltree_free(over);
	return base;
}

const char *yamltree_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	for (; *s && o + 5 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\n')
			o += (size_t)snprintf(buf + o, size - o, "\\n");
		else if (ch == '\t')
			o += (size_t)snprintf(buf + o, size - o, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (*s && size > 4) {
		o = o > size - 4 ? size - 4 : o;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o < size ? o : size - 1] = 0;
	return buf;
}

const char *yamltree_describe(const struct yamltree *n, char *buf, size_t size)
{
	switch (n->kind) {
	case YAMLTREE_NULL:
		return "null";
	case YAMLTREE_SEQUENCE:
		return "a sequence";
	case YAMLTREE_MAPPING:
		return "a mapping";
	case YAMLTREE_SCALAR:
		break;
	}
	char esc[256];
	snprintf(buf, size, "'%s'", yamltree_escape(n->text, esc, size > 2 && size - 2 < sizeof(esc) ? size - 2 : sizeof(esc)));
	return buf;
}

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
		char where[512], esc[128], list[1024] = "";
		const char *hint = yamltree_suggest(key->text, allowed);
		yamltree_escape(key->text, esc, sizeof(esc));
		if (hint)
			return yamltree_error(key, "unknown key '%s' %s; did you mean '%s'?", esc,
					      in_path(path, where, sizeof(where)), hint);
		for (a = allowed; *a; a++) {
			size_t o = strlen(list);
			snprintf(list + o, sizeof(list) - o, "%s%s", a == allowed ? "" : ", ", *a);
		}
		return yamltree_error(key, "unknown key '%s' %s; expected one of: %s", esc,
				      in_path(path, where, sizeof(where)), list);
	}
	return 0;
}

int yamltree_require(const struct yamltree *map, const char *path, const char *key, const struct yamltree **ret)
{
	char where[512];
	int i = find_pair(map, key);
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
		for (size_t j = 0; rules->unique && j < i; j++) {
			if (strcmp(v[j], s) == 0)
				return yamltree_error(item, "duplicate entry %s in '%s' (first at line %u, column %u)",
						      yamltree_describe(item, got, sizeof(got)), path, n->items[j]->line,
						      n->items[j]->column);
		}
		v[i] = xstrdup(s);
	}
	*ret = TAKE_PTR(v);
	return 0;
}
