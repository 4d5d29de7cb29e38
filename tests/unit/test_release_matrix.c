/* `qvsa matrix`: each format's shape, and docs/ci.md shows exactly what
 * the command prints for the example recipe. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "matrix.h"
#include "recipe.h"

static char *print(const char *format)
{
	struct recipe *r = NULL;
	cr_assert_eq(recipe_load(QVSA_SRCDIR "/recipes/qvsa.yaml", &r), 0, "%s", err_msg());
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = matrix_print(r, QVSA_SRCDIR, format, f);
	fclose(f);
	recipe_free(r);
	cr_assert_eq(rc, 0, "%s", err_msg());
	return buf;
}

Test(matrix, formats)
{
	char *j = print(NULL);
	json_object *o = json_tokener_parse(j);
	cr_assert(json_object_is_type(o, json_type_array), "%s", j);
	cr_assert_eq(json_object_array_length(o), 12, "one job per target of the recipe");
	json_object *aws = json_object_array_get_idx(o, 10), *v = NULL;
	cr_assert(json_object_object_get_ex(aws, "target", &v));
	cr_assert_str_eq(json_object_get_string(v), "aws");
	cr_assert(json_object_object_get_ex(aws, "artifacts", &v));
	cr_assert_eq(json_object_array_length(v), 2, "aws ships a VMDK and a raw disk");
	cr_assert(json_object_object_get_ex(aws, "platform", &v));
	cr_assert_str_eq(json_object_get_string(v), "ec2");
	json_object_put(o);

	char *g = print("github");
	cr_assert_eq(strchr(g, '\n'), g + strlen(g) - 1, "one line, for $GITHUB_OUTPUT");
	o = json_tokener_parse(g);
	cr_assert(json_object_object_get_ex(o, "include", &v) && json_object_array_length(v) == 12, "%s", g);
	json_object_put(o);

	char *l = print("gitlab");
	cr_assert_eq(strncmp(l, "parallel:\n  matrix:\n    - TARGET: kvm\n", 38), 0, "%s", l);
	cr_assert(strstr(l, "    - TARGET: aws\n      ARTIFACTS: \"qVSA-1.0-aws.vmdk qVSA-1.0-aws.raw\"\n"), "%s", l);

	struct recipe *r = NULL;
	cr_assert_eq(recipe_load(QVSA_SRCDIR "/recipes/qvsa.yaml", &r), 0);
	cr_assert_eq(matrix_print(r, QVSA_SRCDIR, "circleci", stdout), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	recipe_free(r);
	free(j);
	free(g);
	free(l);
}

/* The fenced block after the marker line "<!-- qvsa matrix recipes/qvsa.yaml[ --format F] -->". */
static char *doc_block(const char *doc, const char *marker)
{
	const char *m = strstr(doc, marker);
	cr_assert_not_null(m, "docs/ci.md lacks the marker '%s'", marker);
	const char *open = strstr(m, "```");
	cr_assert_not_null(open);
	open = strchr(open, '\n') + 1;
	const char *close = strstr(open, "\n```");
	cr_assert_not_null(close);
	return xasprintf("%.*s\n", (int)(close - open), open);
}

Test(matrix, docs_ci_shows_the_commands_output)
{
	char *doc = NULL;
	cr_assert_eq(fs_read_file(QVSA_SRCDIR "/docs/ci.md", &doc, NULL), 0, "%s", err_msg());
	const struct {
		const char *marker, *format;
	} blocks[] = {
		{"<!-- qvsa matrix recipes/qvsa.yaml -->", NULL},
		{"<!-- qvsa matrix recipes/qvsa.yaml --format github -->", "github"},
		{"<!-- qvsa matrix recipes/qvsa.yaml --format gitlab -->", "gitlab"},
	};
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		char *want = print(blocks[i].format), *got = doc_block(doc, blocks[i].marker);
		cr_assert_str_eq(got, want, "docs/ci.md: the block after %s is not what the command prints; now:\n%s",
				 blocks[i].marker, want);
		free(want);
		free(got);
	}
	free(doc);
}
