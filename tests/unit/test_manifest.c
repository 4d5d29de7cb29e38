/* The release manifest: round trip, validation, merge (ok and conflicts). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "manifest.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define RECIPE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct manifest_build build_a = {
	.appliance = "qvsa-scanner", .version = "qVSA-1.0", .build_id = "1111111111111111",
	.recipe_sha256 = RECIPE, .epoch = 1700000000, .kernel = "6.1.0-57-amd64", .base_kind = "tiny",
	.base_version = "12.11",
};

static struct manifest *one(const struct manifest_build *b, const struct manifest_artifact *arts, size_t n)
{
	struct manifest *m = NULL;
	cr_assert_eq(manifest_new(b, &m), 0, "%s", err_msg());
	manifest_add_package(m, "busybox-static", "1:1.35.0-4");
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(manifest_add_artifact(m, &arts[i]), 0, "%s", err_msg());
	return m;
}

static const struct manifest_artifact kvm = {.target = "kvm", .file = "qVSA-1.0-kvm.qcow2", .format = "qcow2",
					     .firmware = "bios", .build_id = "2222222222222222", .sha256 = SHA_A,
					     .size = 15204352, .virtual_size = 268435456};
static const struct manifest_artifact aws_raw = {.target = "aws", .file = "qVSA-1.0-aws.raw", .format = "raw",
						 .firmware = "bios", .build_id = "3333333333333333", .sha256 = SHA_B,
						 .size = 268435456, .virtual_size = 268435456};
static const struct manifest_artifact gen2 = {.target = "hyperv-gen2", .file = "qVSA-1.0-hyperv-gen2.vhdx",
					      .format = "vhdx", .firmware = "uefi", .build_id = "4444444444444444",
					      .sha256 = SHA_C, .size = 9, .virtual_size = 268435456};

Test(manifest, round_trip_same_fields_and_bytes)
{
	struct manifest_artifact arts[] = {kvm, aws_raw, gen2};
	struct manifest *m = one(&build_a, arts, 3);
	size_t len = 0;
	char *text = manifest_to_json(m, &len);
	cr_assert_eq(strlen(text), len);
	/* The keys the printf manifest had, as run.sh greps them. */
	cr_assert(strstr(text, "\"sha256\": \"" SHA_A "\""), "%s", text);
	cr_assert(strstr(text, "\"build_date\": \"2023-11-14T22:13:20Z\""), "%s", text);

	struct manifest *r = NULL;
	cr_assert_eq(manifest_parse(text, len, "test", &r), 0, "%s", err_msg());
	const struct manifest_build *b = manifest_build(r);
	cr_assert_str_eq(b->appliance, build_a.appliance);
	cr_assert_str_eq(b->version, build_a.version);
	cr_assert_str_eq(b->build_id, build_a.build_id);
	cr_assert_str_eq(b->recipe_sha256, build_a.recipe_sha256);
	cr_assert_eq(b->epoch, build_a.epoch);
	cr_assert_str_eq(b->kernel, build_a.kernel);
	cr_assert_str_eq(b->base_kind, "tiny");
	cr_assert_str_eq(b->base_version, "12.11");
	cr_assert_eq(manifest_n_packages(r), 1);
	const char *pn, *pv;
	manifest_package_at(r, 0, &pn, &pv);
	cr_assert_str_eq(pn, "busybox-static");
	cr_assert_str_eq(pv, "1:1.35.0-4");
	cr_assert_eq(manifest_n_artifacts(r), 3);
	for (size_t i = 0; i < 3; i++) {
		const struct manifest_artifact *a = manifest_artifact_at(r, i);
		cr_assert_str_eq(a->target, arts[i].target);
		cr_assert_str_eq(a->file, arts[i].file);
		cr_assert_str_eq(a->format, arts[i].format);
		cr_assert_str_eq(a->firmware, arts[i].firmware);
		cr_assert_str_eq(a->build_id, arts[i].build_id);
		cr_assert_str_eq(a->sha256, arts[i].sha256);
		cr_assert_eq(a->size, arts[i].size);
		cr_assert_eq(a->virtual_size, arts[i].virtual_size);
	}
	/* Written again, the same bytes: what was signed can be re-derived. */
	char *again = manifest_to_json(r, NULL);
	cr_assert_str_eq(again, text);
	size_t pos = 0;
	cr_assert_eq(manifest_find_sha256(r, SHA_B, &pos), 1);
	cr_assert_eq(manifest_find_sha256(r, SHA_B, &pos), -1, "each entry found once");
	pos = 0;
	cr_assert_eq(manifest_find_sha256(r, "00", &pos), -1);
	free(again);
	free(text);
	manifest_free(r);
	manifest_free(m);
}

Test(manifest, write_is_atomic_and_drops_a_stale_signature)
{
	char dir[] = "/tmp/qvsa-test-manifest-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char *path = xasprintf("%s/manifest.json", dir), *sig = xasprintf("%s/manifest.json.sig", dir);
	cr_assert_eq(fs_write_file_atomic(sig, "old", 3, 0644), 0);
	struct manifest *m = one(&build_a, &kvm, 1);
	cr_assert_eq(manifest_write(m, path), 0, "%s", err_msg());
	cr_assert(!fs_exists(sig), "a signature of other bytes must not survive");
	struct manifest *r = NULL;
	cr_assert_eq(manifest_load(path, &r), 0, "%s", err_msg());
	cr_assert_eq(manifest_n_artifacts(r), 1);
	manifest_free(r);
	manifest_free(m);
	fs_rm_rf(dir);
	free(path);
	free(sig);
}

static void expect_parse_error(const char *text, const char *needle)
{
	struct manifest *m = NULL;
	err_clear();
	cr_assert_eq(manifest_parse(text, strlen(text), "t", &m), -1, "accepted: %s", text);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), needle), "'%s' lacks '%s'", err_msg(), needle);
}

Test(manifest, parse_names_what_is_wrong)
{
	struct manifest *m = one(&build_a, &kvm, 1);
	char *text = manifest_to_json(m, NULL);
	manifest_free(m);
	expect_parse_error("{", "not JSON");
	expect_parse_error("[]", "not a qvsa manifest");
	expect_parse_error("{\"a\": 1}", "no manifest_version");
	char *extra = xasprintf("%s{}", text);
	expect_parse_error(extra, "not JSON"); /* a second object after the first */
	free(extra);
	/* One field broken at a time. */
	const struct {
		const char *from, *to, *needle;
	} cases[] = {
		{"\"manifest_version\": 1", "\"manifest_version\": 2", "this qvsa reads version 1"},
		{"\"sha256\": \"" SHA_A "\"", "\"sha256\": \"xyz\"", "artifacts[0]: field 'sha256'"},
		{"\"firmware\": \"bios\"", "\"firmware\": \"coreboot\"", "field 'firmware'"},
		{"\"size\": 15204352", "\"size\": -1", "field 'size'"},
		{"\"file\": \"qVSA-1.0-kvm.qcow2\"", "\"file\": \"../x\"", "field 'file'"},
		{"\"build_date\": \"2023-11-14T22:13:20Z\"", "\"build_date\": \"2024-01-01T00:00:00Z\"",
		 "is not source_date_epoch"},
		{"\"recipe_sha256\"", "\"recipe_sha\"", "field 'recipe_sha256'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = strstr(text, cases[i].from);
		cr_assert_not_null(p, "%s", cases[i].from);
		char *bad = xasprintf("%.*s%s%s", (int)(p - text), text, cases[i].to, p + strlen(cases[i].from));
		expect_parse_error(bad, cases[i].needle);
		free(bad);
	}
	free(text);
}

Test(manifest, add_refuses_a_file_listed_twice)
{
	struct manifest *m = one(&build_a, &kvm, 1);
	struct manifest_artifact again = aws_raw;
	again.file = kvm.file;
	cr_assert_eq(manifest_add_artifact(m, &again), -1);
	cr_assert(strstr(err_msg(), "listed twice"), "%s", err_msg());
	manifest_free(m);
}

Test(manifest, merge_per_target_manifests)
{
	/* Two CI jobs: their builds have their own ids; the merged set is sorted and order-free. */
	struct manifest_build b2 = build_a;
	b2.build_id = "5555555555555555";
	struct manifest *ins[3] = {one(&build_a, &kvm, 1), one(&b2, &aws_raw, 1), one(&build_a, &gen2, 1)};
	const char *names[3] = {"kvm/manifest.json", "aws/manifest.json", "gen2/manifest.json"};
	struct manifest *m = NULL, *m2 = NULL;
	cr_assert_eq(manifest_merge(ins, names, 3, &m), 0, "%s", err_msg());
	cr_assert_eq(manifest_n_artifacts(m), 3);
	cr_assert_str_eq(manifest_artifact_at(m, 0)->target, "aws");
	cr_assert_str_eq(manifest_artifact_at(m, 1)->target, "hyperv-gen2");
	cr_assert_str_eq(manifest_artifact_at(m, 2)->target, "kvm");
	cr_assert_str_eq(manifest_build(m)->version, "qVSA-1.0");
	const char *id = manifest_build(m)->build_id;
	cr_assert_neq(strcmp(id, build_a.build_id), 0, "differing inputs: a derived id");
	cr_assert_neq(strcmp(id, b2.build_id), 0);
	struct manifest *rev[3] = {ins[2], ins[1], ins[0]};
	const char *rnames[3] = {names[2], names[1], names[0]};
	cr_assert_eq(manifest_merge(rev, rnames, 3, &m2), 0, "%s", err_msg());
	char *t1 = manifest_to_json(m, NULL), *t2 = manifest_to_json(m2, NULL);
	cr_assert_str_eq(t1, t2, "the order of the inputs must not matter");
	free(t1);
	free(t2);
	manifest_free(m2);
	manifest_free(m);

	/* The same file in two inputs (a job re-run): listed once, id kept when all agree. */
	struct manifest *dup[2] = {ins[0], ins[2]};
	struct manifest *same = one(&build_a, &kvm, 1);
	struct manifest *dup2[2] = {ins[0], same};
	cr_assert_eq(manifest_merge(dup2, names, 2, &m), 0, "%s", err_msg());
	cr_assert_eq(manifest_n_artifacts(m), 1);
	cr_assert_str_eq(manifest_build(m)->build_id, build_a.build_id);
	manifest_free(m);
	cr_assert_eq(manifest_merge(dup, names, 2, &m), 0, "%s", err_msg());
	manifest_free(m);
	manifest_free(same);
	for (size_t i = 0; i < 3; i++)
		manifest_free(ins[i]);
}

static void expect_merge_error(struct manifest *a, struct manifest *b, const char *needle)
{
	struct manifest *ins[2] = {a, b}, *m = NULL;
	const char *names[2] = {"one.json", "two.json"};
	err_clear();
	cr_assert_eq(manifest_merge(ins, names, 2, &m), -1, "merged despite: %s", needle);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), needle), "'%s' lacks '%s'", err_msg(), needle);
	cr_assert(strstr(err_msg(), "one.json") && strstr(err_msg(), "two.json"), "%s", err_msg());
	manifest_free(a);
	manifest_free(b);
}

Test(manifest, merge_refuses_conflicts)
{
	/* The same file name with other bytes. */
	struct manifest_artifact other = kvm;
	other.sha256 = SHA_C;
	expect_merge_error(one(&build_a, &kvm, 1), one(&build_a, &other, 1), "artifact 'qVSA-1.0-kvm.qcow2' conflicts");
	/* Another version, another recipe, another build date: not one build. */
	struct manifest_build b = build_a;
	b.version = "qVSA-1.1";
	expect_merge_error(one(&build_a, &kvm, 1), one(&b, &aws_raw, 1), "bootstrap_version differs");
	b = build_a;
	b.recipe_sha256 = SHA_A;
	expect_merge_error(one(&build_a, &kvm, 1), one(&b, &aws_raw, 1), "recipe_sha256 differs");
	b = build_a;
	b.epoch = 1700000001;
	expect_merge_error(one(&build_a, &kvm, 1), one(&b, &aws_raw, 1), "build_date differs");
	b = build_a;
	b.kernel = "6.1.0-58-amd64";
	expect_merge_error(one(&build_a, &kvm, 1), one(&b, &aws_raw, 1), "kernel differs");
}
