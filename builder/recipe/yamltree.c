/* YAML document tree with source locations (see yamltree.h): parsing with
 * libyaml under fixed limits, the tree, merging. The schema helpers are in
 * yamltree_schema.c. Recipes come from many hands: every cost here is
 * linear in the input and bounded (size, depth, entries). */
#include "yamltree_private.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "redact.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* A mapping gets a hash index once it has this many keys (below it a scan is cheaper). */
#define INDEX_MIN 8

/* Parser state for one document. */
struct parse_ctx {
	yaml_parser_t parser;     /* libyaml's pull parser over buf */
	struct yamltree_src *src; /* one reference owned, handed to each node */
	const char *buf;          /* the input, to turn byte offsets into line:column */
	size_t len;               /* bytes in buf */
	size_t entries;           /* mapping pairs and sequence items so far */
	bool quiet;               /* YAMLTREE_NO_QUOTE: messages quote nothing from buf */
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

/* Room for one more item (sequence) or pair (mapping): capacity doubles, so appends are linear. */
static void reserve_one(struct yamltree *n)
{
	if (n->n < n->cap)
		return;
	n->cap = n->cap ? 2 * n->cap : 4;
	n->items = xrealloc(n->items, (n->kind == YAMLTREE_MAPPING ? 2 : 1) * n->cap * sizeof(*n->items));
}

static void seq_append(struct yamltree *seq, struct yamltree *item)
{
	reserve_one(seq);
	seq->items[seq->n++] = item;
}

static void index_build(struct yamltree *map)
{
	strset_free(map->index);
	map->index = NULL;
	if (map->n < INDEX_MIN)
		return;
	map->index = strset_new();
	for (size_t i = 0; i < map->n; i++)
		strset_put(map->index, map->items[2 * i]->text, i);
}

static void map_append(struct yamltree *map, struct yamltree *key, struct yamltree *value)
{
	reserve_one(map);
	map->items[2 * map->n] = key;
	map->items[2 * map->n + 1] = value;
	map->n++;
	if (map->index)
		strset_put(map->index, key->text, map->n - 1);
	else if (map->n >= INDEX_MIN)
		index_build(map);
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
	strset_free(n->index);
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

int yamltree_error_at(const char *file, unsigned line, unsigned column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_at(file, line, column, fmt, ap);
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
	/* libyaml's problem texts are its own constants: they quote nothing from the input. */
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
	/* The signal handler only sets a flag: a parse must notice it itself. */
	if (qvsa_interrupted)
		return err_fail("interrupted");
	if (!yaml_parser_parse(&c->parser, ev))
		return syntax_error(c);
	return 0;
}

static int count_entry(struct parse_ctx *c, const yaml_event_t *ev)
{
	if (++c->entries > YAMLTREE_MAX_ENTRIES)
		return ctx_error(c, ev->start_mark, "more than %d keys and list items in one file", YAMLTREE_MAX_ENTRIES);
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
	char esc[YAMLTREE_QUOTE_MAX + 8];
	if (anchor)
		return ctx_error(c, ev->start_mark, "YAML anchors (&%s) are not supported; repeat the value or use include:",
				 c->quiet ? "..." : yamltree_escape((const char *)anchor, esc, sizeof(esc)));
	return 0;
}

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, unsigned depth, struct yamltree **ret);

long yamltree_find_pair(const struct yamltree *map, const char *key)
{
	if (map->kind != YAMLTREE_MAPPING)
		return -1;
	if (map->index) {
		size_t i = strset_find(map->index, key);
		return i == SIZE_MAX ? -1 : (long)i;
	}
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->items[2 * i]->text, key) == 0)
			return (long)i;
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
		if (count_entry(c, &kev) < 0 || parse_node(c, &kev, depth + 1, &key) < 0)
			return -1;
		if (key->kind != YAMLTREE_SCALAR) {
			char what[64];
			return yamltree_error(key, "expected a string as mapping key, got %s",
					      c->quiet ? "something else" : yamltree_describe(key, what, sizeof(what)));
		}
		long first = yamltree_find_pair(map, key->text);
		if (first >= 0) {
			char esc[YAMLTREE_QUOTE_MAX + 32];
			const struct yamltree *k = map->items[2 * first];
			if (c->quiet)
				return yamltree_error(key, "duplicate key (first at line %u, column %u)", k->line, k->column);
			if (yamltree_describe(key, esc, sizeof(esc))[0] != '\'')
				snprintf(esc, sizeof(esc), "of %zu characters (not shown)", strlen(key->text));
			return yamltree_error(key, "duplicate key %s (first at line %u, column %u)", esc, k->line, k->column);
		}
		if (next_event(c, &vev) < 0 || parse_node(c, &vev, depth + 1, &value) < 0)
			return -1;
		map_append(map, TAKE_PTR(key), value);
	}
}

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, unsigned depth, struct yamltree **ret)
{
	char esc[YAMLTREE_QUOTE_MAX + 8];
	if (depth > YAMLTREE_MAX_DEPTH)
		return ctx_error(c, ev->start_mark, "nesting deeper than %d levels", YAMLTREE_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return ctx_error(c, ev->start_mark, "YAML aliases (*%s) are not supported; repeat the value or use include:",
				 c->quiet ? "..." : yamltree_escape((const char *)ev->data.alias.anchor, esc, sizeof(esc)));
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
			if (count_entry(c, &iev) < 0 || parse_node(c, &iev, depth + 1, &item) < 0)
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

static int too_large(const char *file, uint64_t len)
{
	return yamltree_error_at(file, 1, 1, "file is %llu bytes; a recipe or data file may be at most %u MiB",
				 (unsigned long long)len, YAMLTREE_MAX_BYTES >> 20);
}

int yamltree_parse(const char *file, const char *buf, size_t len, struct yamltree **ret)
{
	return yamltree_parse_flags(file, buf, len, 0, ret);
}

int yamltree_parse_flags(const char *file, const char *buf, size_t len, unsigned flags, struct yamltree **ret)
{
	if (len > YAMLTREE_MAX_BYTES)
		return too_large(file, len);
	size_t flen = strlen(file) + 1;
	struct parse_ctx c = { .buf = buf, .len = len, .quiet = flags & YAMLTREE_NO_QUOTE };
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
	/* Checked before reading: a 50 MB file is refused, not read and then refused. */
	if ((uint64_t)st.st_size > YAMLTREE_MAX_BYTES)
		return too_large(path, (uint64_t)st.st_size);
	if (fs_read_file(path, ret_buf, ret_len) < 0)
		return -1;
	/* A file that grew (or a /proc file that claims size 0) after stat. */
	if (*ret_len > YAMLTREE_MAX_BYTES) {
		free(*ret_buf);
		*ret_buf = NULL;
		return too_large(path, *ret_len);
	}
	return 0;
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
	long i = yamltree_find_pair(map, key);
	if (i < 0 || map->items[2 * i + 1]->kind == YAMLTREE_NULL)
		return NULL;
	return map->items[2 * i + 1];
}

struct yamltree *yamltree_take(struct yamltree *map, const char *key)
{
	long i = yamltree_find_pair(map, key);
	if (i < 0)
		return NULL;
	struct yamltree *value = map->items[2 * i + 1];
	yamltree_free(map->items[2 * i]);
	memmove(&map->items[2 * i], &map->items[2 * i + 2], (2 * (map->n - (size_t)i) - 2) * sizeof(*map->items));
	map->n--;
	index_build(map); /* positions after i moved */
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
		long j = yamltree_find_pair(base, key->text);
		if (j >= 0) {
			/* The overriding key is where a later error about it belongs. */
			yamltree_free(base->items[2 * j]);
			base->items[2 * j] = key;
			if (base->index) /* the index borrowed the freed key's text */
				strset_put(base->index, key->text, (size_t)j);
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
	/* Credentials are masked; anything long may be a file's contents or a secret: not quoted. */
	_cleanup_free_ char *masked = redact_needed(n->text) ? redact_url(n->text) : NULL;
	const char *shown = masked ? masked : n->text;
	size_t len = strlen(shown);
	char esc[YAMLTREE_QUOTE_MAX * 4 + 8];
	if (len > YAMLTREE_QUOTE_MAX || strlen(yamltree_escape(shown, esc, sizeof(esc))) > YAMLTREE_QUOTE_MAX + 8)
		snprintf(buf, size, "a string of %zu characters", strlen(n->text));
	else
		snprintf(buf, size, "'%s'", esc);
	return buf;
}
