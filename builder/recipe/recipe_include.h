/* Reading a recipe's top file and its includes into one merged tree. */
#ifndef QVSA_RECIPE_INCLUDE_H
#define QVSA_RECIPE_INCLUDE_H

#include <stddef.h>

struct yamltree;

/* Every key a recipe file may have at its top level (recipe.c); an
 * included file is checked against it before merging. */
extern const char *const recipe_top_keys[];

/* Read path (or, when mem is not NULL, mem_len bytes of text named path,
 * whose includes then stand for empty fragments), its includes first,
 * and return the merged tree in *ret and the SHA-256 (hex) over the bytes
 * of every file read in ret_sha256. -1 with a "file:line:column" error. */
int recipe_include_load(const char *path, const char *mem, size_t mem_len, struct yamltree **ret,
			char ret_sha256[65]);

#endif
