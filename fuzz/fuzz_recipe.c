/* libFuzzer target: the recipe parser and validator on one in-memory
 * file (recipe_load_memory: no file is read, no tool run, no network),
 * plus the helpers that see untrusted text (URL masking, the
 * personalization-code scan, version parsing). `make fuzz` runs it.
 *
 * Beyond crashes, sanitizer reports and hangs, it enforces what every
 * recipe error must be: one line, located ("fuzz.yaml:LINE:COLUMN: ..."). */
#include "err.h"
#include "recipe.h"
#include "recipe_files.h"
#include "redact.h"
#include "version.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_message(void)
{
	const char *m = err_msg();
	unsigned line, col;
	int n = 0;
	if (!m) {
		fprintf(stderr, "recipe refused without a message\n");
		abort();
	}
	if (strchr(m, '\n')) {
		fprintf(stderr, "message of more than one line: %s\n", m);
		abort();
	}
	if (sscanf(m, "fuzz.yaml:%u:%u: %n", &line, &col, &n) != 2 || n == 0 || line == 0 || col == 0) {
		fprintf(stderr, "message without a location: %s\n", m);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recipe *r = NULL;
	err_clear();
	if (recipe_load_memory("fuzz.yaml", (const char *)data, size, &r) == 0)
		recipe_free(r);
	else
		check_message();

	char *s = strndup((const char *)data, size);
	if (!s)
		abort();
	char *masked = redact_url(s);
	/* Masking is idempotent, and what it hides never comes back. */
	char *twice = redact_url(masked);
	if (strcmp(masked, twice) != 0) {
		fprintf(stderr, "redact_url not idempotent: '%s' -> '%s'\n", masked, twice);
		abort();
	}
	free(twice);
	free(masked);
	unsigned line;
	(void)recipe_find_perscode((const char *)data, size, &line);
	err_clear();
	(void)version_parse(s, NULL, NULL);
	free(s);
	return 0;
}
