/* String index (see strset.h). */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One slot: key NULL when empty. */
struct slot {
	const char *key; /* borrowed */
	size_t value;    /* what the caller stored */
	uint64_t hash;   /* of key, to skip most string compares and to rehash */
};

struct strset {
	struct slot *slots; /* cap slots, a power of two */
	size_t cap;         /* slots allocated */
	size_t n;           /* slots used; kept at most cap / 2 */
};

static uint64_t hash_of(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

struct strset *strset_new(void)
{
	struct strset *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->cap = 16;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	if (!s->slots)
		abort();
	return s;
}

void strset_free(struct strset *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s);
}

/* The slot holding key, or the empty slot where it would go. */
static struct slot *probe(const struct strset *s, const char *key, uint64_t h)
{
	size_t mask = s->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct slot *sl = &s->slots[i];
		if (!sl->key || (sl->hash == h && strcmp(sl->key, key) == 0))
			return sl;
	}
}

static void grow(struct strset *s)
{
	struct strset bigger = { .cap = s->cap * 2, .n = s->n };
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		abort();
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i].key)
			*probe(&bigger, s->slots[i].key, s->slots[i].hash) = s->slots[i];
	free(s->slots);
	*s = bigger;
}

size_t strset_find(const struct strset *s, const char *key)
{
	const struct slot *sl = probe(s, key, hash_of(key));
	return sl->key ? sl->value : SIZE_MAX;
}

size_t strset_put(struct strset *s, const char *key, size_t value)
{
	uint64_t h = hash_of(key);
	struct slot *sl = probe(s, key, h);
	if (sl->key) {
		size_t old = sl->value;
		sl->key = key;
		sl->value = value;
		return old;
	}
	*sl = (struct slot){ .key = key, .value = value, .hash = h };
	if (++s->n * 2 > s->cap)
		grow(s);
	return SIZE_MAX;
}
