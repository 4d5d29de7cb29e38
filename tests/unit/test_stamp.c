/* The stamp: content, build identity from inputs only, SOURCE_DATE_EPOCH. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "stamp.h"

static struct stamp sample(void)
{
	struct stamp s = {.appliance = "qvsa-scanner", .version = "qVSA-1.0", .recipe_sha256 = "ab12",
			  .targets = "kvm", .kernel = "6.1.0-56-amd64", .epoch = 1700000000};
	stamp_init(&s);
	return s;
}

Test(stamp, release_text_fields)
{
	struct stamp s = sample();
	char *t = stamp_release_text(&s);
	char *v = stamp_get(t, "BOOTSTRAP_VERSION");
	cr_assert_str_eq(v, "qVSA-1.0");
	free(v);
	v = stamp_get(t, "VERSION_ID");
	cr_assert_str_eq(v, "1.0");
	free(v);
	v = stamp_get(t, "BUILD_DATE");
	cr_assert_str_eq(v, "2023-11-14T22:13:20Z");
	free(v);
	v = stamp_get(t, "BUILD_ID");
	cr_assert_str_eq(v, s.build_id);
	cr_assert_eq(strlen(v), 16);
	free(v);
	v = stamp_get(t, "TARGETS");
	cr_assert_str_eq(v, "kvm");
	free(v);
	cr_assert_null(stamp_get(t, "BOOTSTRAP"), "a key prefix is not a key");
	free(t);
}

Test(stamp, os_facts_in_one_place)
{
	struct os_facts os;
	stamp_os_facts("qVSA-12.34", &os);
	cr_assert_str_eq(os.id, "qvsa");
	cr_assert_str_eq(os.id_like, "debian");
	cr_assert_str_eq(os.version_id, "12.34");
	cr_assert_str_eq(os.pretty_name, "qVSA 12.34");
	cr_assert_eq(os.ovf_os_id, 96);
	cr_assert_str_eq(os.ovf_os_type, "debian10_64Guest");
	/* The stamp and os-release agree with the facts. */
	struct stamp s = sample();
	char *rel = stamp_release_text(&s), *osr = stamp_os_release_text(&s);
	static const char *const same[] = {"NAME", "ID", "VERSION_ID", "BUILD_ID"};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		char *a = stamp_get(rel, same[i]), *b = stamp_get(osr, same[i]);
		cr_assert_not_null(a);
		cr_assert_not_null(b);
		cr_assert_str_eq(a, b, "%s differs", same[i]);
		free(a);
		free(b);
	}
	char *v = stamp_get(osr, "PRETTY_NAME");
	cr_assert_str_eq(v, "qVSA 1.0");
	free(v);
	v = stamp_get(osr, "ID_LIKE");
	cr_assert_str_eq(v, "debian");
	free(v);
	free(rel);
	free(osr);
}

Test(stamp, build_id_depends_on_inputs_only)
{
	struct stamp a = sample(), b = sample();
	cr_assert_str_eq(a.build_id, b.build_id);
	b.epoch++;
	stamp_init(&b);
	cr_assert_str_neq(a.build_id, b.build_id);
	struct stamp c = sample();
	c.recipe_sha256 = "ab13";
	stamp_init(&c);
	cr_assert_str_neq(a.build_id, c.build_id);
}

Test(stamp, source_date_epoch)
{
	int64_t e = 0;
	setenv("SOURCE_DATE_EPOCH", "1234", 1);
	cr_assert_eq(stamp_epoch(NULL, &e), 0);
	cr_assert_eq(e, 1234);
	setenv("SOURCE_DATE_EPOCH", "12x", 1);
	cr_assert_eq(stamp_epoch(NULL, &e), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), "SOURCE_DATE_EPOCH '12x': expected seconds since 1970 (a non-negative integer)");
	unsetenv("SOURCE_DATE_EPOCH");
	const char *paths[] = {"/nonexistent-qvsa", NULL};
	e = 99;
	cr_assert_eq(stamp_epoch(paths, &e), 0);
	cr_assert_eq(e, 0, "no readable input: epoch 0, never the clock");
}

Test(stamp, get_unquotes)
{
	char *v = stamp_get("A=1\nNAME='x y'\nB=\"q\"", "NAME");
	cr_assert_str_eq(v, "x y");
	free(v);
	v = stamp_get("A=1\nNAME='x y'\nB=\"q\"", "B");
	cr_assert_str_eq(v, "q");
	free(v);
}
