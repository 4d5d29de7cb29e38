/* Bootstrap versions: exactly "qVSA-X.Y" with X and Y decimal (no leading zeros but "0"). */
#ifndef QVSA_VERSION_H
#define QVSA_VERSION_H

/* Parse s; on success writes major/minor (either may be NULL) and returns 0.
 * On failure returns -1 and records ERR_INPUT "bootstrap version 's': expected qVSA-X.Y ...". */
int version_parse(const char *s, unsigned *ret_major, unsigned *ret_minor);

/* Read a VERSION file (one line "qVSA-X.Y\n"), validate, return a new string. */
int version_read_file(const char *path, char **ret_version);

#endif
