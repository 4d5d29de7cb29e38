/* The per-target CI job matrix of a recipe (`qvsa matrix`): one job per
 * target, with its artifact file names, firmware and verify platform, in
 * the recipe's target order, as GitHub Actions, GitLab CI or plain JSON
 * read it. docs/ci.md shows and uses this output. */
#ifndef QVSA_MATRIX_H
#define QVSA_MATRIX_H

#include <stdio.h>

struct recipe;

/* Formats matrix_print knows, for usage messages. */
#define MATRIX_FORMATS "json, github or gitlab"

/* Print r's matrix in format ("json", "github", "gitlab"; NULL: json) to
 * out; targets are read from datadir. ERR_INPUT for an unknown format or target. */
int matrix_print(const struct recipe *r, const char *datadir, const char *format, FILE *out)
	__attribute__((nonnull(1, 2, 4)));

#endif
