/* Minimal JSON output: string escaping (everything else is printf). */
#ifndef QVSA_JSON_H
#define QVSA_JSON_H

#include <stdio.h>

/* Write s as a JSON string literal (with quotes); NULL writes null. */
void json_write_str(FILE *f, const char *s);

#endif
