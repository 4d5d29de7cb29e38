/* The recipe's files: list: where each source is (inside the recipe's
 * folder), where it goes (never a path qvsa or the base system owns), and
 * that it carries no personalization code. Only recipe.c and
 * recipe_files.c use this header. */
#ifndef QVSA_RECIPE_FILES_H
#define QVSA_RECIPE_FILES_H

#include "recipe.h"

#include <stdbool.h>
#include <stddef.h>

struct yamltree;

/* Bytes of each source scanned for a personalization code. */
#define RECIPE_SCAN_BYTES (1u << 20)

/* files: as loaded. */
struct recipe_files {
	struct recipe_file *v; /* n entries, strings owned; never NULL after a successful parse */
	size_t n;              /* complete entries in v */
};

/* Validate files (a sequence, or NULL for none) into *ret. With no_fs the
 * sources are checked as names only (nothing is read). On error records a
 * located ERR_INPUT; clear *ret either way. */
int recipe_files_parse(const struct yamltree *files, bool no_fs, struct recipe_files *ret);
void recipe_files_clear(struct recipe_files *f);

/* Why a recipe may not write dest (an absolute path, already normalised),
 * or NULL if it may. */
const char *recipe_reserved_dest(const char *dest);
/* Whether buf holds what looks like a personalization code: a PERSCODE=
 * line, a perscode key with a value (YAML, JSON, ini), or an OVF property
 * qvsa.perscode with a value. *ret_line (1-based) says where. */
bool recipe_find_perscode(const char *buf, size_t len, unsigned *ret_line);

#endif
