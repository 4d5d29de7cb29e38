/* The node layout, shared only by yamltree.c (parsing, the tree) and
 * yamltree_schema.c (typed accessors); everyone else sees struct yamltree
 * as opaque. */
#ifndef QVSA_YAMLTREE_PRIVATE_H
#define QVSA_YAMLTREE_PRIVATE_H

#include "strset.h"
#include "yamltree.h"

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
	size_t cap;                 /* items (sequence) or pairs (mapping) allocated */
	struct yamltree **items;    /* owned: n items, or 2n (key, value, key, ...) for a mapping */
	struct strset *index;       /* MAPPING with many keys: key text -> pair position; owned, else NULL */
};

/* Position of key among map's pairs, or -1 (hashed for large mappings). */
long yamltree_find_pair(const struct yamltree *map, const char *key);

#endif
