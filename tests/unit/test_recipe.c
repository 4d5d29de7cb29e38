/* Recipe loading: the schema, includes, and the exact "file:line:column:
 * message" of every kind of bad input. Fixtures are under tests/fixtures/recipes;
 * cases that need symbolic links or a folder without VERSION above it build
 * their files in a temporary directory. */
#include "recipe.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "recipe_personalization.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define FIXTURES QVSA_SRCDIR "/tests/fixtures/recipes"
#define BAD FIXTURES "/bad"

static char sentinel;
#define UNTOUCHED ((struct recipe *)&sentinel)

static void recipe_freep(struct recipe **r) { recipe_free(*r); }

static struct recipe *load_ok(const char *path)
{
	struct recipe *r = NULL;
	err_clear();
	int rc = recipe_load(path, &r);
	cr_assert_eq(rc, 0, "recipe_load(%s): %s", path, err_msg());
	cr_assert_not_null(r);
	return r;
}

/* Loading path fails with ERR_INPUT, exactly message, and *ret untouched. */
static void expect_message(const char *path, const char *message)
{
	struct recipe *r = UNTOUCHED;
	err_clear();
	cr_assert_eq(recipe_load(path, &r), -1, "recipe_load(%s) succeeded", path);
	cr_assert_eq(r, UNTOUCHED, "*ret written on error");
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), message);
}

/* The usual case: the error is in the fixture itself, at "line:column: message". */
static void expect_error(const char *name, const char *where_and_message)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", BAD, name);
	_cleanup_free_ char *want = xasprintf("%s:%s", path, where_and_message);
	expect_message(path, want);
}

static void expect_strv(char *const *got, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		cr_assert_not_null(got[i], "missing entry %zu ('%s')", i, want[i]);
		cr_assert_str_eq(got[i], want[i]);
	}
	cr_assert_null(got[i], "extra entry '%s'", got[i]);
}

static char *real(const char *path)
{
	char *p = realpath(path, NULL);
	cr_assert_not_null(p, "realpath(%s)", path);
	return p;
}

Test(recipe, minimal_gets_defaults)
{
	_cleanup_(recipe_freep) struct recipe *r = load_ok(FIXTURES "/minimal.yaml");
	static const char *const templates[] = { "tiny-base", "bootstrap-agent", NULL };
	static const char *const targets[] = { "kvm", NULL };
	static const char *const none[] = { NULL };

	cr_assert_str_eq(recipe_path(r), FIXTURES "/minimal.yaml");
	cr_assert_str_eq(recipe_name(r), "minimal");
	cr_assert_str_eq(recipe_version(r), "qVSA-2.5");
	cr_assert_str_eq(recipe_base_kind(r), "tiny");
	cr_assert_str_eq(recipe_kernel_package(r), "linux-image-amd64");
	expect_strv(recipe_modules_add(r), none);
	expect_strv(recipe_modules_omit(r), none);
	cr_assert_eq(recipe_disk_size(r), UINT64_C(64) << 20);
	cr_assert_str_eq(recipe_disk_partition_table(r), "mbr");
	cr_assert_str_eq(recipe_disk_filesystem(r), "ext4");
	cr_assert_str_eq(recipe_disk_label(r), "qvsa-root");
	expect_strv(recipe_templates(r), templates);
	cr_assert_eq(recipe_n_files(r), 0);
	cr_assert_null(recipe_file_at(r, 0));
	cr_assert_str_eq(recipe_platform_url(r), "https://platform.example/");
	cr_assert_null(recipe_proxy(r));
	cr_assert_null(recipe_ca(r));
	cr_assert(!recipe_allow_http(r));
	expect_strv(recipe_targets(r), targets);
}

Test(recipe, every_key_set)
{
	_cleanup_(recipe_freep) struct recipe *r = load_ok(FIXTURES "/full.yaml");
	_cleanup_free_ char *hello = real(FIXTURES "/files/hello.txt");
	static const char *const add[] = { "nvme", "virtio_scsi", NULL };
	static const char *const omit[] = { "e1000", NULL };
	static const char *const templates[] = { "tiny-base", NULL };
	static const char *const targets[] = { "kvm", "vmware", "hyperv", NULL };

	cr_assert_str_eq(recipe_name(r), "full-1");
	cr_assert_str_eq(recipe_version(r), "qVSA-0.9");
	cr_assert_str_eq(recipe_kernel_package(r), "linux-image-cloud-amd64");
	expect_strv(recipe_modules_add(r), add);
	expect_strv(recipe_modules_omit(r), omit);
	cr_assert_eq(recipe_disk_size(r), UINT64_C(2) << 30);
	cr_assert_str_eq(recipe_disk_partition_table(r), "gpt");
	cr_assert_str_eq(recipe_disk_label(r), "full-root");
	expect_strv(recipe_templates(r), templates);
	cr_assert_eq(recipe_n_files(r), 3);
	/* "0600" as a string, 755 as a YAML integer (octal digits), and the default. */
	cr_assert_str_eq(recipe_file_at(r, 0)->source, hello);
	cr_assert_str_eq(recipe_file_at(r, 0)->dest, "/etc/hello");
	cr_assert_eq(recipe_file_at(r, 0)->mode, 0600);
	cr_assert_str_eq(recipe_file_at(r, 1)->source, hello);
	cr_assert_str_eq(recipe_file_at(r, 1)->dest, "/usr/local/bin/hello");
	cr_assert_eq(recipe_file_at(r, 1)->mode, 0755);
	cr_assert_eq(recipe_file_at(r, 2)->mode, 0644);
	cr_assert_str_eq(recipe_platform_url(r), "http://platform.example:8080/api");
	cr_assert_str_eq(recipe_proxy(r), "http://user:secret@proxy.example:3128");
	_cleanup_free_ char *ca = real(FIXTURES "/files/ca.pem");
	cr_assert_str_eq(recipe_ca(r), ca);
	cr_assert(recipe_allow_http(r));
	expect_strv(recipe_targets(r), targets);
}

Test(recipe, version_from_repository_file)
{
	_cleanup_(recipe_freep) struct recipe *r = load_ok(FIXTURES "/noversion.yaml");
	_cleanup_free_ char *want = NULL;
	cr_assert_eq(fs_read_file(QVSA_SRCDIR "/VERSION", &want, NULL), 0);
	want[strcspn(want, "\n")] = 0;
	cr_assert_str_eq(recipe_version(r), want);
}

Test(recipe, shipped_example_loads)
{
	_cleanup_(recipe_freep) struct recipe *r = load_ok(QVSA_SRCDIR "/recipes/qvsa.yaml");
	_cleanup_free_ char *motd = real(QVSA_SRCDIR "/recipes/files/motd");
	static const char *const targets[] = { "kvm", "openstack", "nutanix", "oci", "vmware", "azure", "azure-gen2",
					       "hyperv", "hyperv-gen2", "gcp", "aws", "xen", NULL };

	cr_assert_str_eq(recipe_name(r), "qvsa-scanner");
	cr_assert_str_eq(recipe_base_kind(r), "tiny");
	cr_assert_str_eq(recipe_platform_url(r), "https://platform.qvsa.example/");
	cr_assert_str_eq(recipe_ca(r), "/etc/ssl/certs/ca-certificates.crt");
	cr_assert(!recipe_allow_http(r));
	cr_assert_eq(recipe_disk_size(r), UINT64_C(256) << 20);
	cr_assert_str_eq(recipe_disk_partition_table(r), "mbr");
	cr_assert_eq(recipe_n_files(r), 1);
	cr_assert_str_eq(recipe_file_at(r, 0)->source, motd);
	cr_assert_str_eq(recipe_file_at(r, 0)->dest, "/etc/motd");
	expect_strv(recipe_targets(r), targets);
}

/* top.yaml includes common.yaml (which includes sub/disk.yaml) and more.yaml. */
Test(recipe, includes_merge_in_order)
{
	_cleanup_(recipe_freep) struct recipe *r = load_ok(FIXTURES "/include/top.yaml");
	_cleanup_free_ char *sub_file = real(FIXTURES "/include/sub/sub-file.txt");
	static const char *const targets[] = { "vmware", NULL };
	static const char *const templates[] = { "tiny-base", NULL };

	cr_assert_str_eq(recipe_name(r), "top");
	cr_assert_str_eq(recipe_version(r), "qVSA-1.2");           /* from common.yaml */
	cr_assert_eq(recipe_disk_size(r), UINT64_C(1) << 30);      /* top overrides sub's 512M */
	cr_assert_str_eq(recipe_disk_label(r), "from-sub");        /* ... but disk: merged key by key */
	cr_assert_str_eq(recipe_disk_partition_table(r), "gpt");
	cr_assert_str_eq(recipe_platform_url(r), "http://common.example/");
	cr_assert(recipe_allow_http(r));                           /* from common.yaml */
	cr_assert_null(recipe_proxy(r));                           /* more.yaml sets it to null */
	_cleanup_free_ char *ca = real(FIXTURES "/files/ca.pem");  /* relative to common.yaml's folder */
	cr_assert_str_eq(recipe_ca(r), ca);
	expect_strv(recipe_targets(r), targets);                   /* lists replaced, not appended */
	expect_strv(recipe_templates(r), templates);
	/* A source is relative to the file that names it. */
	cr_assert_eq(recipe_n_files(r), 1);
	cr_assert_str_eq(recipe_file_at(r, 0)->source, sub_file);
}

Test(recipe, sha256_covers_every_file_in_load_order)
{
	static const char *const order[] = { "top.yaml", "common.yaml", "sub/disk.yaml", "more.yaml" };
	_cleanup_(recipe_freep) struct recipe *r = load_ok(FIXTURES "/include/top.yaml");
	_cleanup_free_ char *all = NULL;
	size_t len = 0;
	char want[65];

	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		_cleanup_free_ char *path = xasprintf("%s/include/%s", FIXTURES, order[i]);
		_cleanup_free_ char *buf = NULL;
		size_t n;
		cr_assert_eq(fs_read_file(path, &buf, &n), 0);
		all = realloc(all, len + n);
		memcpy(all + len, buf, n);
		len += n;
	}
	sha256_hex(all, len, want);
	cr_assert_str_eq(recipe_sha256(r), want);

	_cleanup_(recipe_freep) struct recipe *m = load_ok(FIXTURES "/minimal.yaml");
	_cleanup_free_ char *buf = NULL;
	cr_assert_eq(fs_read_file(FIXTURES "/minimal.yaml", &buf, &len), 0);
	sha256_hex(buf, len, want);
	cr_assert_str_eq(recipe_sha256(m), want);
}

Test(recipe, missing_file)
{
	expect_message(BAD "/no-such-recipe.yaml", "reading '" BAD "/no-such-recipe.yaml': No such file or directory");
}

Test(recipe, yaml_syntax_errors)
{
	expect_error("syntax.yaml", "4:9: YAML syntax error: mapping values are not allowed in this context");
	expect_error("syntax-flow.yaml", "3:1: YAML syntax error: did not find expected ',' or ']' "
					 "(while parsing a flow sequence at line 2, column 10)");
	expect_error("utf8.yaml", "4:12: YAML syntax error: invalid leading UTF-8 octet (byte 0xff)");
}

Test(recipe, yaml_structure_errors)
{
	expect_error("empty.yaml", "1:1: expected a mapping at the top level, got an empty document");
	expect_error("top-sequence.yaml", "1:1: expected a mapping at the top level, got a sequence");
	expect_error("multi-doc.yaml", "3:1: a second YAML document starts here; a file must hold exactly one "
				       "(remove the '---')");
	expect_error("anchor.yaml", "3:7: YAML anchors (&disk) are not supported; repeat the value or use include:");
	expect_error("alias.yaml", "3:16: YAML aliases (*other) are not supported; repeat the value or use include:");
	expect_error("complex-key.yaml", "2:3: expected a string as mapping key, got a sequence");
	expect_error("duplicate-key.yaml", "5:1: duplicate key 'name' (first at line 3, column 1)");
}

Test(recipe, unknown_keys)
{
	expect_error("unknown-key.yaml",
		     "6:3: unknown key 'platfrom_url' in personalization; did you mean 'platform_url'?");
	expect_error("unknown-top.yaml", "1:1: unknown key 'nmae' at the top level; did you mean 'name'?");
	expect_error("unknown-nohint.yaml",
		     "5:3: unknown key 'colour' in disk; expected one of: size, partition_table, filesystem, label");
	expect_error("files-key.yaml", "5:5: unknown key 'dst' in files[0]; did you mean 'dest'?");
}

Test(recipe, missing_required_keys)
{
	/* Located at the mapping that lacks the key. */
	expect_error("missing-name.yaml", "1:1: missing required key 'name' at the top level");
	expect_error("missing-size.yaml", "4:3: missing required key 'size' in disk");
	expect_error("missing-value.yaml", "4:3: missing value for required key 'size' in disk");
}

Test(recipe, wrong_types_and_values)
{
	expect_error("disk-sequence.yaml", "3:7: expected a mapping for 'disk', got a sequence");
	expect_error("size-word.yaml", "4:9: expected a size like 512M or 2G for 'disk.size', got 'big'");
	expect_error("size-unaligned.yaml", "4:9: expected a multiple of 1M for 'disk.size', got '100000000'");
	expect_error("size-small.yaml", "4:9: expected a size between 64M and 2T for 'disk.size', got '32M'");
	expect_error("label.yaml", "5:10: expected a label of 1 to 16 characters from A-Z a-z 0-9 . _ - "
				   "for 'disk.label', got 'this-label-is-too-long'");
	expect_error("name.yaml", "1:7: expected a name of lowercase letters, digits and '-' (not first), "
				  "at most 63 characters, for 'name', got 'Scanner'");
	expect_error("module.yaml", "5:23: expected a module name ([a-z0-9_-]+) for 'base.modules.add[1]', got 'Bad!'");
	expect_error("targets-empty.yaml", "7:10: expected at least one entry for 'targets'");
	expect_error("targets-duplicate.yaml", "10:5: duplicate entry 'kvm' in 'targets' (first at line 8, column 5)");
	expect_error("platform-url.yaml", "6:17: expected an http:// or https:// URL for "
					  "'personalization.platform_url', got 'ftp://platform.example/'");
	/* The proxy's password never reaches the message. */
	expect_error("proxy.yaml", "7:10: expected an http:// URL (http://[user:password@]host:port) for "
				   "'personalization.proxy', got 'https://alice:***@proxy.example:3128'");
}

Test(recipe, bad_https_settings)
{
	expect_error("http-platform.yaml", "6:17: 'personalization.platform_url' 'http://platform.example/' is plain "
					   "HTTP, which would send the personalization code unencrypted; use https://, "
					   "or add 'allow_http: true' under personalization to accept that");
	expect_error("allow-http-word.yaml", "7:15: expected one of 'true', 'false' for "
					     "'personalization.allow_http', got 'yes'");
	_cleanup_free_ char *missing = xasprintf("7:7: CA bundle 'no-such-ca.pem' for 'personalization.ca' not found "
						 "(looked for '%s/no-such-ca.pem')", BAD);
	expect_error("ca-missing.yaml", missing);
	expect_error("ca-dir.yaml", "7:7: CA bundle '.' for 'personalization.ca' is not a regular file");
	expect_error("ca-empty.yaml", "7:7: CA bundle 'ca-empty.pem' for 'personalization.ca' is not usable: it holds "
				      "no PEM certificate (-----BEGIN CERTIFICATE-----)");
	expect_error("ca-broken.yaml", "7:7: CA bundle 'ca-broken.pem' for 'personalization.ca' is not usable: a "
				       "certificate after the first ones does not parse");
}

Test(recipe, ca_bundle_rules)
{
	_cleanup_free_ char *ca = NULL;
	size_t len = 0;
	unsigned n = 0;
	const char *why = NULL;
	cr_assert_eq(fs_read_file(FIXTURES "/files/ca.pem", &ca, &len), 0);
	cr_assert_eq(recipe_check_ca_pem(ca, len, &n, &why), 0, "%s", why);
	cr_assert_eq(n, 1);
	_cleanup_free_ char *two = xasprintf("# comments and text between blocks are fine\n%s\n%s", ca, ca);
	cr_assert_eq(recipe_check_ca_pem(two, strlen(two), &n, &why), 0, "%s", why);
	cr_assert_eq(n, 2);
	/* A key never goes into an image, even beside good certificates. */
	_cleanup_free_ char *key = xasprintf("%s-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", ca);
	cr_assert_eq(recipe_check_ca_pem(key, strlen(key), &n, &why), -1);
	cr_assert_str_eq(why, "it holds a private key (only certificates belong in an image)");
	const char *garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
	cr_assert_eq(recipe_check_ca_pem(garbage, strlen(garbage), &n, &why), -1);
	cr_assert_str_eq(why, "its first certificate does not parse");
}

Test(recipe, bad_enum_values)
{
	expect_error("enum.yaml", "5:20: expected one of 'mbr', 'gpt' for 'disk.partition_table', got 'msdos'");
	expect_error("base-unknown.yaml", "4:9: expected one of 'tiny', 'debian' for 'base.kind', got 'gentoo'");
	expect_error("base-packages-tiny.yaml", "5:13: 'base.packages' applies only to a base that installs packages (kind 'debian'), not to kind 'tiny'");
	expect_error("base-snapshot.yaml", "5:13: expected a snapshot.debian.org time stamp (YYYYMMDDTHHMMSSZ) for 'base.snapshot', got '2026-11-01'");
}

Test(recipe, bad_version)
{
	expect_error("version.yaml", "2:10: bootstrap version 'qVSA-1.0.1': expected qVSA-X.Y with X and Y "
				     "decimal numbers without leading zeros, e.g. qVSA-1.0");
}

Test(recipe, files_errors)
{
	expect_error("source-dotdot.yaml",
		     "4:13: 'files[0].source' '../minimal.yaml' leads outside the recipe's folder '" BAD "'");
	expect_error("source-missing.yaml", "6:13: 'files[1].source' 'nope.txt' not found in the recipe's folder '" BAD "'");
	expect_error("source-absolute.yaml", "4:14: expected a path relative to the recipe's folder for "
					     "'files[0].source', got '/etc/hostname'");
	expect_error("dest-relative.yaml", "5:11: 'files[0].dest' 'etc/common.yaml': expected an absolute path "
					   "(starting with '/')");
	expect_error("dest-dotdot.yaml", "5:11: 'files[0].dest' '/etc/../root/common.yaml': it has a '.' or '..' "
					 "component: write the path plainly");
	expect_error("dest-twice.yaml", "7:11: 'files[1].dest' '/etc/a' is already the dest of files[0]");
	expect_error("mode.yaml", "6:11: expected an octal mode like 0644 or \"0755\" for 'files[0].mode', got '0999'");
}

Test(recipe, include_errors)
{
	expect_error("include-missing.yaml",
		     "3:5: include file 'nothere.yaml' not found (looked for '" BAD "/nothere.yaml')");
	expect_error("include-mapping.yaml",
		     "1:10: expected a file name or a sequence of file names for 'include', got a mapping");
	/* An error inside an included file names that file. */
	expect_message(BAD "/include-syntax.yaml",
		       BAD "/syntax.yaml:4:9: YAML syntax error: mapping values are not allowed in this context");
	/* The cycle is reported where it closes: cycle-b.yaml's second include. */
	expect_message(BAD "/cycle-a.yaml", BAD "/cycle-b.yaml:1:24: include cycle: " BAD "/cycle-a.yaml -> " BAD
					    "/cycle-b.yaml -> " BAD "/cycle-a.yaml");
}

/* Cases that need a folder built at test time. */
static char tmp[PATH_MAX];

static void tmp_make(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/qvsa-test-recipe-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void tmp_remove(void) { fs_rm_rf(tmp); }

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", tmp, rel);
	_cleanup_free_ char *dir = fs_dirname(path);
	cr_assert_eq(fs_mkdir_p(dir, 0755), 0);
	cr_assert_eq(fs_write_file_atomic(path, text, strlen(text), 0644), 0);
}

#define BODY "name: t\ndisk: {size: 64M}\npersonalization: {platform_url: https://p.example/}\ntargets: [kvm]\n"

Test(recipe, version_file_found_above, .init = tmp_make, .fini = tmp_remove)
{
	put("a/VERSION", "qVSA-3.7\n");
	put("a/b/c/recipe.yaml", BODY);
	_cleanup_free_ char *path = xasprintf("%s/a/b/c/recipe.yaml", tmp);
	_cleanup_(recipe_freep) struct recipe *r = load_ok(path);
	cr_assert_str_eq(recipe_version(r), "qVSA-3.7");
}

Test(recipe, version_file_invalid, .init = tmp_make, .fini = tmp_remove)
{
	put("VERSION", "qvsa-1.0\n");
	put("recipe.yaml", BODY);
	_cleanup_free_ char *path = xasprintf("%s/recipe.yaml", tmp);
	_cleanup_free_ char *want = xasprintf("%s/VERSION:1:1: bootstrap version 'qvsa-1.0': expected "
					      "qVSA-X.Y with X and Y decimal numbers without leading zeros, e.g. qVSA-1.0",
					      tmp);
	expect_message(path, want);
}

Test(recipe, no_version_anywhere, .init = tmp_make, .fini = tmp_remove)
{
	if (fs_exists("/tmp/VERSION") || fs_exists("/VERSION"))
		cr_skip_test("a VERSION file exists above /tmp");
	put("recipe.yaml", "# no version\n" BODY);
	_cleanup_free_ char *path = xasprintf("%s/recipe.yaml", tmp);
	_cleanup_free_ char *want =
		xasprintf("%s:2:1: no 'version' key and no VERSION file in '%s' or any folder above it", path, tmp);
	expect_message(path, want);
}

Test(recipe, source_symlink_escaping, .init = tmp_make, .fini = tmp_remove)
{
	put("outside.txt", "secret\n");
	put("r/inside/file.txt", "fine\n");
	put("r/recipe.yaml", "version: qVSA-1.0\n" BODY "files:\n  - {source: good-link, dest: /a}\n"
			     "  - {source: bad-link, dest: /b}\n");
	_cleanup_free_ char *good = xasprintf("%s/r/good-link", tmp);
	_cleanup_free_ char *bad = xasprintf("%s/r/bad-link", tmp);
	cr_assert_eq(symlink("inside/file.txt", good), 0);
	cr_assert_eq(symlink("../outside.txt", bad), 0);
	_cleanup_free_ char *path = xasprintf("%s/r/recipe.yaml", tmp);
	_cleanup_free_ char *want = xasprintf("%s:8:14: 'files[1].source' 'bad-link' resolves to a file outside the "
					      "recipe's folder '%s/r'", path, tmp);
	expect_message(path, want);
	/* Without the escaping entry the link inside the folder is accepted, resolved. */
	put("r/recipe.yaml", "version: qVSA-1.0\n" BODY "files:\n  - {source: good-link, dest: /a}\n");
	_cleanup_(recipe_freep) struct recipe *r = load_ok(path);
	_cleanup_free_ char *inside = xasprintf("%s/r/inside/file.txt", tmp);
	_cleanup_free_ char *inside_real = real(inside);
	cr_assert_str_eq(recipe_file_at(r, 0)->source, inside_real);
}

Test(recipe, relative_path_as_given, .init = tmp_make, .fini = tmp_remove)
{
	/* Messages name files as the user wrote them, includes resolved from there. */
	put("inc.yaml", "disk: {size: 1X}\n");
	put("top.yaml", "include: inc.yaml\nversion: qVSA-1.0\nname: t\n");
	cr_assert_eq(chdir(tmp), 0);
	expect_message("top.yaml", "inc.yaml:1:14: expected a size like 512M or 2G for 'disk.size', got '1X'");
	cr_assert_eq(chdir("/"), 0);
	_cleanup_free_ char *rel = xasprintf("%s/top.yaml", tmp + 1);
	_cleanup_free_ char *want = xasprintf("%s/inc.yaml:1:14: expected a size like 512M or 2G for 'disk.size', "
					      "got '1X'", tmp + 1);
	expect_message(rel, want);
}
