/* NoCloud seeds: the user-data / meta-data text (read back by the agent's own
 * parser), and the cidata ISO: deterministic bytes, the volume descriptor at
 * the right offsets, contents readable by libarchive and by the agent's probe. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "seed.h"

static const struct seed_params base = {
	.instance_id = "iid-qvsa-verify-1",
	.hostname = "qvsa-verify",
	.perscode = "12345678",
	.platform_url = "http://10.0.2.2:8080/",
	.poweroff = true,
};

Test(seed, user_data_text)
{
	_cleanup_free_ char *ud = NULL;
	cr_assert_eq(seed_user_data(&base, &ud), 0, "%s", err_msg());
	cr_assert_str_eq(ud, "#cloud-config\n"
			     "# qVSA first-boot personalization, read by /usr/sbin/qvsa-agent\n"
			     "qvsa:\n"
			     "  perscode: \"12345678\"\n"
			     "  platform_url: \"http://10.0.2.2:8080/\"\n"
			     "power_state:\n"
			     "  mode: poweroff\n"
			     "  message: \"qVSA first-boot personalization done\"\n"
			     "  timeout: 5\n"
			     "  condition: true\n");
	struct seed_params p = base;
	p.platform_url = NULL;
	p.poweroff = false;
	p.proxy = "http://proxy:3128";
	_cleanup_free_ char *ud2 = NULL;
	cr_assert_eq(seed_user_data(&p, &ud2), 0);
	cr_assert(strstr(ud2, "  proxy: \"http://proxy:3128\"\n"));
	cr_assert_null(strstr(ud2, "platform_url"));
	cr_assert_null(strstr(ud2, "power_state"));
}

Test(seed, user_data_reads_back_in_the_agent)
{
	struct seed_params p = base;
	p.platform_url = "http://h/\"quoted\"\\path";
	p.proxy = "http://u:p#x@proxy:3128";
	_cleanup_free_ char *ud = NULL;
	cr_assert_eq(seed_user_data(&p, &ud), 0);
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(ud, &u), 0, "%s", agent_error());
	cr_assert(u.cloud_config);
	cr_assert_str_eq(u.perscode, p.perscode);
	cr_assert_str_eq(u.platform_url, p.platform_url);
	cr_assert_str_eq(u.proxy, p.proxy);
	cr_assert(u.poweroff);
	agent_userdata_free(&u);
}

/* Two certificates as a bundle arrives (CRLF, blank line between them). */
static const char two_certs[] = "-----BEGIN CERTIFICATE-----\r\nMIIBAAA=\r\n-----END CERTIFICATE-----\r\n\r\n"
				"-----BEGIN CERTIFICATE-----\nMIIBBBB\nCCCC==\n-----END CERTIFICATE-----\n";

Test(seed, ca_certs_as_literal_blocks)
{
	struct seed_params p = base;
	p.ca_pem = two_certs;
	_cleanup_free_ char *ud = NULL;
	cr_assert_eq(seed_user_data(&p, &ud), 0, "%s", err_msg());
	cr_assert_str_eq(ud, "#cloud-config\n"
			     "# qVSA first-boot personalization, read by /usr/sbin/qvsa-agent\n"
			     "qvsa:\n"
			     "  perscode: \"12345678\"\n"
			     "  platform_url: \"http://10.0.2.2:8080/\"\n"
			     "ca_certs:\n"
			     "  trusted:\n"
			     "    - |\n"
			     "      -----BEGIN CERTIFICATE-----\n"
			     "      MIIBAAA=\n"
			     "      -----END CERTIFICATE-----\n"
			     "    - |\n"
			     "      -----BEGIN CERTIFICATE-----\n"
			     "      MIIBBBB\n"
			     "      CCCC==\n"
			     "      -----END CERTIFICATE-----\n"
			     "power_state:\n"
			     "  mode: poweroff\n"
			     "  message: \"qVSA first-boot personalization done\"\n"
			     "  timeout: 5\n"
			     "  condition: true\n");
	/* same input, same text */
	_cleanup_free_ char *again = NULL;
	cr_assert_eq(seed_user_data(&p, &again), 0);
	cr_assert_str_eq(ud, again);
	/* the agent still reads its own keys around the block scalars */
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(ud, &u), 0, "%s", agent_error());
	cr_assert_str_eq(u.perscode, "12345678");
	cr_assert(u.poweroff);
	agent_userdata_free(&u);
}

Test(seed, ca_certs_must_be_certificates)
{
	static const char *const bad[] = {
		"", "not pem at all",
		"-----BEGIN CERTIFICATE-----\nMIIB\n",                          /* no end */
		"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", /* never a key */
		"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct seed_params p = base;
		p.ca_pem = bad[i];
		char *ud = NULL;
		cr_assert_eq(seed_user_data(&p, &ud), -1, "case %zu accepted", i);
		cr_assert_null(ud);
		cr_assert_eq(err_kind(), ERR_INPUT);
		cr_assert(strstr(err_msg(), "PEM certificates"), "%s", err_msg());
	}
}

Test(seed, meta_data_text_and_required_fields)
{
	_cleanup_free_ char *md = NULL;
	cr_assert_eq(seed_meta_data(&base, &md), 0);
	cr_assert_str_eq(md, "instance-id: \"iid-qvsa-verify-1\"\nlocal-hostname: \"qvsa-verify\"\n");
	struct seed_params p = base;
	p.hostname = NULL;
	_cleanup_free_ char *md2 = NULL;
	cr_assert_eq(seed_meta_data(&p, &md2), 0);
	cr_assert_str_eq(md2, "instance-id: \"iid-qvsa-verify-1\"\n");

	char *out = NULL;
	p = base;
	p.perscode = NULL;
	cr_assert_eq(seed_user_data(&p, &out), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), "personalization code"), "%s", err_msg());
	p = base;
	p.instance_id = "";
	cr_assert_eq(seed_meta_data(&p, &out), -1);
	cr_assert(strstr(err_msg(), "instance id"), "%s", err_msg());
	cr_assert_eq(seed_write_iso(&p, "/tmp/never-written.iso"), -1);
	cr_assert_null(out);
}

/* A temp dir for ISOs, removed at the end of the test. */
static char iso_dir[] = "/tmp/qvsa-test-seed-XXXXXX";

static void iso_setup(void) { cr_assert_not_null(mkdtemp(iso_dir)); }
static void iso_teardown(void) { fs_rm_rf(iso_dir); }

static char *write_iso(const char *name)
{
	char *path = xasprintf("%s/%s", iso_dir, name);
	cr_assert_eq(seed_write_iso(&base, path), 0, "%s", err_msg());
	return path;
}

static char *slurp(const char *path, size_t *len)
{
	char *data = NULL;
	cr_assert_eq(fs_read_file(path, &data, len), 0);
	return data;
}

Test(seed_iso, deterministic_and_cidata, .init = iso_setup, .fini = iso_teardown, .timeout = 30)
{
	unsetenv("SOURCE_DATE_EPOCH");
	setenv("TZ", "UTC0", 1);
	tzset();
	_cleanup_free_ char *a = write_iso("a.iso");
	/* a different second and a different zone must not change a byte */
	usleep(1100 * 1000);
	setenv("TZ", "XYZ-5:30", 1);
	tzset();
	_cleanup_free_ char *b = write_iso("b.iso");
	size_t alen, blen;
	_cleanup_free_ char *da = slurp(a, &alen), *db = slurp(b, &blen);
	cr_assert_eq(alen, blen);
	cr_assert_eq(alen % 2048, 0);
	cr_assert_eq(memcmp(da, db, alen), 0, "the two images differ");

	/* primary volume descriptor in sector 16: type 1, "CD001", volume id at +40 */
	const unsigned char *pvd = (const unsigned char *)da + 32768;
	cr_assert_eq(pvd[0], 1);
	cr_assert_eq(memcmp(pvd + 1, "CD001", 5), 0);
	cr_assert_eq(strncasecmp((const char *)pvd + 40, "cidata  ", 8), 0);
	for (int i = 46; i < 72; i++)
		cr_assert_eq(pvd[i], ' ', "volume id must be space padded");
	/* creation date: 1970-01-01 00:00:00 UTC */
	cr_assert_eq(memcmp(pvd + 813, "1970010100000000", 16), 0);
	cr_assert_eq(pvd[813 + 16], 0);
	/* Joliet keeps the lower-case name for blkid / cloud-init */
	const unsigned char *svd = pvd + 2048;
	cr_assert_eq(svd[0], 2);
	const char joliet[] = { 0, 'c', 0, 'i', 0, 'd', 0, 'a', 0, 't', 0, 'a' };
	cr_assert_eq(memcmp(svd + 40, joliet, sizeof(joliet)), 0);
	/* libarchive's information block carries a date too */
	cr_assert_not_null(memmem(da, alen, "INFO Thu Jan  1 00:00:00 1970\n", 30));

	/* no temporary files left next to the image */
	_cleanup_free_ char *cmd = xasprintf("test $(ls -A %s | wc -l) -eq 2", iso_dir);
	cr_assert_eq(system(cmd), 0, "leftover files in %s", iso_dir);
}

Test(seed_iso, contents_and_source_date_epoch, .init = iso_setup, .fini = iso_teardown)
{
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	_cleanup_free_ char *path = write_iso("seed.iso");
	size_t len;
	_cleanup_free_ char *data = slurp(path, &len);
	cr_assert_eq(memcmp(data + 32768 + 813, "2023111422132000", 16), 0);

	_cleanup_free_ char *ud = NULL, *md = NULL;
	cr_assert_eq(seed_user_data(&base, &ud), 0);
	cr_assert_eq(seed_meta_data(&base, &md), 0);
	struct archive *a = archive_read_new();
	archive_read_support_format_iso9660(a);
	cr_assert_eq(archive_read_open_memory(a, data, len), ARCHIVE_OK, "%s", archive_error_string(a));
	struct archive_entry *e;
	int files = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		/* the root directory's times come from libarchive's clock unless fixed */
		cr_assert_eq(archive_entry_mtime(e), 1700000000, "%s: mtime %lld", name,
			     (long long)archive_entry_mtime(e));
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		const char *want = strcmp(name, "user-data") == 0 ? ud : strcmp(name, "meta-data") == 0 ? md : NULL;
		cr_assert_not_null(want, "unexpected entry %s", name);
		char buf[4096] = { 0 };
		la_ssize_t n = archive_read_data(a, buf, sizeof(buf) - 1);
		cr_assert_eq(n, (la_ssize_t)strlen(want), "%s: size", name);
		cr_assert_str_eq(buf, want);
		cr_assert_eq(archive_entry_perm(e) & 0444, 0444, "%s: mode %o", name, archive_entry_perm(e));
		files++;
	}
	cr_assert_eq(files, 2);
	archive_read_free(a);

	setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
	_cleanup_free_ char *bad = xasprintf("%s/bad.iso", iso_dir);
	cr_assert_eq(seed_write_iso(&base, bad), -1);
	cr_assert(strstr(err_msg(), "SOURCE_DATE_EPOCH"), "%s", err_msg());
	cr_assert_not(fs_exists(bad));
}

Test(seed_iso, the_agent_finds_it, .init = iso_setup, .fini = iso_teardown)
{
	unsetenv("SOURCE_DATE_EPOCH");
	_cleanup_free_ char *path = write_iso("seed.iso");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	char label[33];
	cr_assert_eq(agent_fs_label(fd, label), 0, "%s", agent_error());
	cr_assert(agent_label_is_cidata(label), "label '%s'", label);

	/* an ISO with another volume id is not a seed */
	_cleanup_free_ char *other = xasprintf("%s/other.iso", iso_dir);
	size_t len;
	_cleanup_free_ char *data = slurp(path, &len);
	memcpy(data + 32768 + 40, "CONFIG", 6);
	cr_assert_eq(fs_write_file_atomic(other, data, len, 0644), 0);
	_cleanup_close_ int fd2 = open(other, O_RDONLY | O_CLOEXEC);
	cr_assert_eq(agent_fs_label(fd2, label), 0);
	cr_assert_not(agent_label_is_cidata(label));
}

Test(seed_iso, unwritable_destination, .init = iso_setup, .fini = iso_teardown)
{
	cr_assert_eq(seed_write_iso(&base, "/nonexistent-dir/seed.iso"), -1);
	cr_assert(strstr(err_msg(), "/nonexistent-dir/seed.iso"), "%s", err_msg());
}
