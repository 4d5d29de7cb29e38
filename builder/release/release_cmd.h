/* The release commands of the command line (keygen, sign, manifest merge,
 * matrix): main.c parses options and prints errors; these do the work and
 * print their one-line results on stdout. */
#ifndef QVSA_RELEASE_CMD_H
#define QVSA_RELEASE_CMD_H

#include <stdbool.h>

/* `qvsa keygen KEY`: KEY (0600) and KEY.pub. */
int release_cmd_keygen(const char *key) __attribute__((nonnull));
/* `qvsa sign MANIFEST --key KEY [--signature SIG]`: the manifest must parse
 * before it is signed. sig NULL: MANIFEST.sig. */
int release_cmd_sign(const char *manifest, const char *key, const char *sig) __attribute__((nonnull(1, 2)));
/* `qvsa manifest merge OUT IN...`: OUT, and SHA256SUMS beside it. */
int release_cmd_merge(const char *out, char *const *ins, int n, bool json) __attribute__((nonnull));
/* `qvsa matrix RECIPE [--format F]`. */
int release_cmd_matrix(const char *recipe, const char *datadir, const char *format) __attribute__((nonnull(1, 2)));

#endif
