/* A hash index from strings to positions (open addressing, FNV-1a), so
 * duplicate checks over untrusted input stay linear: 100,000 keys would be
 * 5 billion comparisons pairwise. Keys are borrowed, never copied. */
#ifndef QVSA_STRSET_H
#define QVSA_STRSET_H

#include <stddef.h>

struct strset;

struct strset *strset_new(void); /* aborts on out-of-memory, like xasprintf */
void strset_free(struct strset *s); /* accepts NULL */
static inline void strset_freep(struct strset **s) { strset_free(*s); }
#define _cleanup_strset_ __attribute__((cleanup(strset_freep)))

/* Position stored for key, or SIZE_MAX if absent. */
size_t strset_find(const struct strset *s, const char *key);
/* Store key -> value. If key is present its stored pointer and value are
 * replaced (the caller may hand over an equal string that outlives the old
 * one) and the old value is returned; otherwise SIZE_MAX. key must stay
 * valid while it is stored. */
size_t strset_put(struct strset *s, const char *key, size_t value);

#endif
