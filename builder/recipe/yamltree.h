/* A small YAML document tree (built with libyaml) that remembers where every
 * node came from, plus typed accessors that report schema errors as one line
 * "FILE:LINE:COLUMN: expected ... for 'key.path', got ..." (ERR_INPUT).
 * Shared by recipes and target data files so both speak the same error style.
 *
 * Deliberately strict: one document per file, no anchors/aliases, duplicate
 * mapping keys and non-scalar keys are errors. Scalars are kept as text; a
 * plain "", "~" or "null" (any case of "null") is the NULL kind. */
#ifndef QVSA_YAMLTREE_H
#define QVSA_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct yamltree;

/* Limits on one file, each a located error when passed (docs/recipe.md).
 * They keep a hostile file from costing more than a fraction of a second. */
#define YAMLTREE_MAX_BYTES (4u << 20)   /* size of one file */
#define YAMLTREE_MAX_DEPTH 64           /* nesting of mappings and sequences */
#define YAMLTREE_MAX_ENTRIES 100000     /* mapping keys plus list items in one file */
/* Longest value a message quotes; longer ones are described by their length. */
#define YAMLTREE_QUOTE_MAX 40

enum yamltree_kind {
	YAMLTREE_NULL,     /* plain empty, ~ or null */
	YAMLTREE_SCALAR,   /* any other scalar, kept as text */
	YAMLTREE_SEQUENCE, /* list of nodes */
	YAMLTREE_MAPPING,  /* ordered scalar keys -> nodes, keys unique */
};

/* Parse buf (len bytes) as one YAML document. file is what error messages
 * call it (the path as the user gave it). An empty document yields a NULL
 * node at 1:1. On error records ERR_INPUT "file:line:column: ..." and returns
 * -1; a signal (qvsa_interrupted) stops it with ERR_FAIL "interrupted". */
int yamltree_parse(const char *file, const char *buf, size_t len, struct yamltree **ret);
/* yamltree_parse with flags: YAMLTREE_NO_QUOTE for a file that may not be
 * ours (an include): its syntax errors are located, but quote nothing of it. */
#define YAMLTREE_NO_QUOTE 1u
int yamltree_parse_flags(const char *file, const char *buf, size_t len, unsigned flags, struct yamltree **ret);
/* Read path (ERR_INPUT if missing or not a regular file) and parse it. */
int yamltree_load_file(const char *path, struct yamltree **ret);
/* Read a whole input file, recording ERR_INPUT (not ERR_FAIL) when the user
 * named a file that does not exist or is not a regular file. */
int yamltree_read_input(const char *path, char **ret_buf, size_t *ret_len);
void yamltree_free(struct yamltree *n); /* accepts NULL */
static inline void yamltree_freep(struct yamltree **n) { yamltree_free(*n); }
#define _cleanup_yamltree_ __attribute__((cleanup(yamltree_freep)))

enum yamltree_kind yamltree_kind(const struct yamltree *n);
/* "a mapping", "a sequence", "null", or for "got ...": the quoted scalar
 * ('text', URL credentials masked) when at most YAMLTREE_QUOTE_MAX
 * characters, else "a string of N characters". */
const char *yamltree_describe(const struct yamltree *n, char *buf, size_t size);
const char *yamltree_file(const struct yamltree *n); /* as given to yamltree_parse */
unsigned yamltree_line(const struct yamltree *n);    /* 1-based */
unsigned yamltree_column(const struct yamltree *n);  /* 1-based */
const char *yamltree_text(const struct yamltree *n); /* scalar text; NULL for other kinds */
size_t yamltree_count(const struct yamltree *n);     /* items or key/value pairs; 0 for scalars */
const struct yamltree *yamltree_item(const struct yamltree *seq, size_t i);
const struct yamltree *yamltree_key(const struct yamltree *map, size_t i); /* a scalar node */
const struct yamltree *yamltree_value(const struct yamltree *map, size_t i);
/* Value for key in a mapping, or NULL if absent or null (an optional key set
 * to null means "use the default"; that is also how an include is undone). */
const struct yamltree *yamltree_get(const struct yamltree *map, const char *key);
/* Remove key from a mapping and hand its value to the caller (NULL if absent). */
struct yamltree *yamltree_take(struct yamltree *map, const char *key);
/* Overlay over onto base (both consumed): mappings merge key by key,
 * recursively; anything else is replaced by over entirely. */
struct yamltree *yamltree_merge(struct yamltree *base, struct yamltree *over);

/* Record ERR_INPUT "FILE:LINE:COLUMN: message" located at n. Returns -1. */
int yamltree_error(const struct yamltree *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same at an explicit place (a line of a file that is not a tree). */
int yamltree_error_at(const char *file, unsigned line, unsigned column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Copy s into buf for an error message: quoted-safe (no control characters), truncated. */
const char *yamltree_escape(const char *s, char *buf, size_t size);
/* Closest candidate to word by edit distance, or NULL if none is close enough to suggest. */
const char *yamltree_suggest(const char *word, const char *const *candidates);

/* Schema helpers. path names the value in messages ("disk.size", "files[0]");
 * "" means the top level. Each returns 0 or records ERR_INPUT and returns -1. */

/* n must be of kind (YAMLTREE_SCALAR accepts no NULL): "expected a mapping for 'disk', got a sequence". */
int yamltree_expect(const struct yamltree *n, enum yamltree_kind kind, const char *path);
/* Every key of map must be in allowed (NULL-terminated); suggests the closest. */
int yamltree_check_keys(const struct yamltree *map, const char *path, const char *const *allowed);
/* *ret = value of a key that must be present and not null ("missing required key"). */
int yamltree_require(const struct yamltree *map, const char *path, const char *key, const struct yamltree **ret);
/* *ret = text of a non-null scalar. */
int yamltree_string(const struct yamltree *n, const char *path, const char **ret);
/* *ret = the one of allowed (NULL-terminated) that n's text equals. */
int yamltree_enum(const struct yamltree *n, const char *path, const char *const *allowed, const char **ret);
/* Sizes: integer bytes, or with K/M/G/T or KiB/MiB/GiB/TiB (binary). */
int yamltree_size(const struct yamltree *n, const char *path, uint64_t *ret);
/* Parse a size string without a node; records nothing, returns -EINVAL
 * (not a size) or -ERANGE (does not fit in 64 bits). */
int yamltree_parse_size(const char *s, uint64_t *ret);

/* How yamltree_strv checks a list of names. */
struct yamltree_strv_rules {
	bool (*valid)(const char *s); /* per-item check; NULL accepts any string */
	const char *expected;         /* what valid() wants, e.g. "a module name ([a-z0-9_-]+)" */
	bool unique;                  /* duplicates are an error */
	bool nonempty;                /* an empty list is an error */
};
/* A sequence of strings as a new NULL-terminated strv (caller frees). */
int yamltree_strv(const struct yamltree *n, const char *path, const struct yamltree_strv_rules *rules, char ***ret);

#endif
