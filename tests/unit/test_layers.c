/* What build_add_layers lays on the base, read back from the archive it
 * writes: os-release, platform.conf (ALLOW_HTTP) and the recipe's CA bundle. */
#include "build.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "pack.h"
#include "recipe.h"
#include "stamp.h"
#include "target.h"

#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <string.h>

#define FIXTURES QVSA_SRCDIR "/tests/fixtures/recipes"

static void recipe_freep(struct recipe **r) { recipe_free(*r); }
static void target_freep(struct target **t) { target_free(*t); }

/* One member of the archive: its bytes and mode. */
struct member {
	char *data;    /* contents plus a NUL, or NULL when absent */
	unsigned mode; /* permission bits */
};

/* Lay recipe's layers for target kvm into a tar, and read back member path. */
static struct member layers_member(const char *recipe, const char *path)
{
	_cleanup_(recipe_freep) struct recipe *r = NULL;
	_cleanup_(target_freep) struct target *t = NULL;
	cr_assert_eq(recipe_load(recipe, &r), 0, "%s", err_msg());
	cr_assert_eq(target_find(QVSA_SRCDIR, "kvm", &t), 0, "%s", err_msg());
	struct stamp st = {.appliance = recipe_name(r), .version = recipe_version(r), .recipe_sha256 = "ab",
			   .targets = "kvm", .kernel = "6.1.0-1-amd64", .epoch = 1700000000};
	stamp_init(&st);
	char dir[] = "/tmp/qvsa-test-layers-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	_cleanup_free_ char *tar = xasprintf("%s/rootfs.tar", dir);
	struct pack *p = NULL;
	cr_assert_eq(pack_open(tar, PACK_TAR, st.epoch, &p), 0);
	cr_assert_eq(build_add_layers(r, QVSA_SRCDIR, &st, t, p), 0, "%s", err_msg());
	cr_assert_eq(pack_close(p), 0);

	struct member m = {0};
	struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	cr_assert_eq(archive_read_open_filename(a, tar, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (strcmp(name, path + 1) != 0 && strcmp(name, path) != 0)
			continue;
		size_t len = (size_t)archive_entry_size(e);
		m.data = calloc(1, len + 1);
		cr_assert_eq(archive_read_data(a, m.data, len), (la_ssize_t)len);
		m.mode = archive_entry_perm(e);
	}
	archive_read_free(a);
	fs_rm_rf(dir);
	return m;
}

Test(layers, https_recipe_gets_ca_and_no_allow_http)
{
	/* minimal.yaml: https, no ca. */
	struct member conf = layers_member(FIXTURES "/minimal.yaml", "/etc/qvsa/platform.conf");
	cr_assert_not_null(conf.data);
	cr_assert_str_eq(conf.data, "# qvsa: where the bootstrap agent personalizes (user-data may override)\n"
				    "PLATFORM_URL=https://platform.example/\n");
	free(conf.data);
	struct member ca = layers_member(FIXTURES "/minimal.yaml", BUILD_CA_PATH);
	cr_assert_null(ca.data, "no ca: in the recipe, no " BUILD_CA_PATH);
}

Test(layers, full_recipe_gets_allow_http_proxy_and_ca)
{
	struct member conf = layers_member(FIXTURES "/full.yaml", "/etc/qvsa/platform.conf");
	cr_assert_str_eq(conf.data, "# qvsa: where the bootstrap agent personalizes (user-data may override)\n"
				    "PLATFORM_URL=http://platform.example:8080/api\n"
				    "PROXY=http://user:secret@proxy.example:3128\n"
				    "ALLOW_HTTP=yes\n");
	free(conf.data);
	struct member ca = layers_member(FIXTURES "/full.yaml", BUILD_CA_PATH);
	_cleanup_free_ char *want = NULL;
	cr_assert_eq(fs_read_file(FIXTURES "/files/ca.pem", &want, NULL), 0);
	cr_assert_not_null(ca.data);
	cr_assert_str_eq(ca.data, want);
	cr_assert_eq(ca.mode, 0644);
	free(ca.data);
}

Test(layers, os_release_says_what_the_image_is)
{
	struct member os = layers_member(FIXTURES "/minimal.yaml", "/etc/os-release");
	cr_assert_not_null(os.data);
	static const char *const want[][2] = {
		{ "ID", "qvsa" }, { "ID_LIKE", "debian" }, { "NAME", "qVSA" }, { "VERSION_ID", "2.5" },
		{ "PRETTY_NAME", "qVSA 2.5" }, { "IMAGE_ID", "minimal" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		_cleanup_free_ char *v = stamp_get(os.data, want[i][0]);
		cr_assert_not_null(v, "no %s", want[i][0]);
		cr_assert_str_eq(v, want[i][1]);
	}
	cr_assert_eq(os.mode, 0644);
	free(os.data);
}
