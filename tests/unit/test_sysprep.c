/* The sysprep checks (sysprep.c) over recorded files and listings, every
 * check passing and failing; the debugfs listing parser over recorded
 * output; and the direct reader's listings on a small disk this test
 * makes with mke2fs -d (no appliance starts). */
#include <criterion/criterion.h>

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "proc.h"
#include "sysprep.h"

#include <string.h>

/* sysprep_paths' files and sysprep_dirs' listings, as a test sets them. */
struct recorded {
	char *files[8];                    /* by sysprep_paths index; NULL: absent */
	size_t lens[8];                    /* their lengths */
	struct image_listing lists[8];     /* by sysprep_dirs index */
	struct sysprep_result res[SYSPREP_N_CHECKS]; /* the verdicts */
};

static size_t path_index(const char *path)
{
	for (size_t i = 0; sysprep_paths[i]; i++)
		if (strcmp(sysprep_paths[i], path) == 0)
			return i;
	cr_assert_fail("%s is not one of sysprep_paths", path);
	return 0;
}

static size_t dir_index(const char *dir)
{
	for (size_t i = 0; sysprep_dirs[i]; i++)
		if (strcmp(sysprep_dirs[i], dir) == 0)
			return i;
	cr_assert_fail("%s is not one of sysprep_dirs", dir);
	return 0;
}

static void set_file(struct recorded *r, const char *path, const char *text)
{
	size_t i = path_index(path);
	free(r->files[i]);
	r->files[i] = text ? xstrdup(text) : NULL;
	r->lens[i] = text ? strlen(text) : 0;
}

/* Listing of dir from lines "TYPE SIZE RELPATH" ('f', 'd', 'l'); NULL: dir absent. */
static void set_dir(struct recorded *r, const char *dir, const char *spec)
{
	struct image_listing *l = &r->lists[dir_index(dir)];
	image_listing_clear(l);
	if (!spec)
		return;
	l->exists = true;
	_cleanup_free_ char *copy = xstrdup(spec);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char type = line[0];
		char *end = NULL;
		unsigned long long size = strtoull(line + 2, &end, 10);
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, end + 1);
		image_listing_add(l, path, type, size);
	}
	image_listing_sort(l);
}

/* What a clean Debian image holds (the artifact qvsa builds). */
static void clean_debian(struct recorded *r)
{
	memset(r, 0, sizeof(*r));
	set_file(r, "/etc/machine-id", "");
	set_file(r, "/etc/shadow", "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
	set_file(r, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
	set_dir(r, "/var/lib/apt/lists", "");
	set_dir(r, "/var/cache/apt", "");
	set_dir(r, "/var/log", "d 0 apt\nd 0 journal\nd 0 private\n");
}

static void judge(struct recorded *r)
{
	sysprep_judge(r->files, r->lens, r->lists, r->res);
}

static void clear(struct recorded *r)
{
	for (size_t i = 0; i < 8; i++) {
		free(r->files[i]);
		image_listing_clear(&r->lists[i]);
	}
}

static const struct sysprep_result *result(struct recorded *r, const char *name)
{
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++)
		if (strcmp(r->res[i].name, name) == 0)
			return &r->res[i];
	cr_assert_fail("no check %s", name);
	return NULL;
}

/* name's verdict is want, and its detail holds needle. */
static void expect(struct recorded *r, const char *name, enum sysprep_status want, const char *needle)
{
	const struct sysprep_result *x = result(r, name);
	cr_expect_eq(x->status, want, "%s: %s (%s), expected %s", name, sysprep_status_name(x->status), x->detail,
		     sysprep_status_name(want));
	cr_expect(strstr(x->detail, needle), "%s: '%s' lacks '%s'", name, x->detail, needle);
	cr_expect_null(strchr(x->detail, '\n'), "%s: one line", name);
}

Test(sysprep, clean_debian_image_passes)
{
	struct recorded r;
	clean_debian(&r);
	judge(&r);
	const char *names[] = {"machine-id", "ssh-host-keys", "apt-lists", "apt-cache",
			       "logs",       "cloud-init",    "root-password", "random-seed"};
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++) {
		cr_expect_str_eq(r.res[i].name, names[i], "a fixed order");
		cr_expect_neq(r.res[i].status, SYSPREP_FAIL, "%s: %s", r.res[i].name, r.res[i].detail);
	}
	expect(&r, "machine-id", SYSPREP_OK, "empty");
	expect(&r, "ssh-host-keys", SYSPREP_NA, "no /etc/ssh");
	expect(&r, "apt-lists", SYSPREP_OK, "no package lists");
	expect(&r, "logs", SYSPREP_OK, "no log files");
	expect(&r, "cloud-init", SYSPREP_OK, "no /var/lib/cloud");
	expect(&r, "root-password", SYSPREP_OK, "locked");
	expect(&r, "random-seed", SYSPREP_OK, "no /var/lib/systemd/random-seed");
	clear(&r);
}

/* A tiny-base image: busybox, no systemd, apt, SSH or cloud-init; root locked. */
Test(sysprep, tiny_image_passes_or_does_not_apply)
{
	struct recorded r = {0};
	set_file(&r, "/etc/shadow", "root:*:19000:0:99999:7:::\n");
	set_file(&r, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
	set_dir(&r, "/var/log", "");
	judge(&r);
	expect(&r, "machine-id", SYSPREP_NA, "no /etc/machine-id");
	expect(&r, "ssh-host-keys", SYSPREP_NA, "no SSH server");
	expect(&r, "apt-lists", SYSPREP_NA, "no apt");
	expect(&r, "apt-cache", SYSPREP_NA, "no apt");
	expect(&r, "logs", SYSPREP_OK, "no log files");
	expect(&r, "cloud-init", SYSPREP_OK, "starts fresh");
	expect(&r, "root-password", SYSPREP_OK, "locked");
	expect(&r, "random-seed", SYSPREP_OK, "no /var/lib/systemd/random-seed");
	clear(&r);
}

Test(sysprep, machine_id)
{
	struct recorded r;
	clean_debian(&r);
	set_file(&r, "/etc/machine-id", "uninitialized\n");
	judge(&r);
	expect(&r, "machine-id", SYSPREP_OK, "uninitialized");
	set_file(&r, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
	judge(&r);
	expect(&r, "machine-id", SYSPREP_FAIL, "holds a machine ID");
	set_file(&r, "/etc/machine-id", "\n");
	judge(&r);
	expect(&r, "machine-id", SYSPREP_FAIL, "holds 1 byte that is");
	clear(&r);
}

Test(sysprep, ssh_host_keys)
{
	struct recorded r;
	clean_debian(&r);
	set_dir(&r, "/etc/ssh", "f 1700 sshd_config\nd 0 sshd_config.d\nf 80 ssh_host_ed25519_key.pub\n"
				"f 0 ssh_host_notakey\nf 9 sshd_config.d/ssh_host_x_key\n");
	judge(&r);
	expect(&r, "ssh-host-keys", SYSPREP_OK, "no host keys");
	set_dir(&r, "/etc/ssh", "f 1700 sshd_config\nf 411 ssh_host_ed25519_key\nf 80 ssh_host_ed25519_key.pub\n"
				"f 2602 ssh_host_rsa_key\nl 0 ssh_host_ecdsa_key\n");
	judge(&r);
	expect(&r, "ssh-host-keys", SYSPREP_FAIL, "3 host keys in /etc/ssh: ssh_host_ecdsa_key, ssh_host_ed25519_key, "
						  "ssh_host_rsa_key");
	clear(&r);
}

Test(sysprep, apt_lists)
{
	struct recorded r;
	clean_debian(&r);
	set_dir(&r, "/var/lib/apt/lists", "f 0 lock\nd 0 partial\nd 0 auxfiles\n");
	judge(&r);
	expect(&r, "apt-lists", SYSPREP_OK, "no package lists");
	set_dir(&r, "/var/lib/apt/lists", "f 0 lock\nd 0 partial\nf 9 partial/x_InRelease\n"
					  "f 123 deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4\n");
	judge(&r);
	expect(&r, "apt-lists", SYSPREP_FAIL, "2 files in /var/lib/apt/lists: deb.debian.org_debian_dists");
	expect(&r, "apt-lists", SYSPREP_FAIL, "partial/x_InRelease");
	clear(&r);
}

Test(sysprep, apt_cache)
{
	struct recorded r;
	clean_debian(&r);
	set_dir(&r, "/var/cache/apt", "d 0 archives\nd 0 archives/partial\nf 0 archives/lock\n");
	judge(&r);
	expect(&r, "apt-cache", SYSPREP_OK, "no package caches");
	set_dir(&r, "/var/cache/apt", "f 100 pkgcache.bin\nf 90 srcpkgcache.bin\nd 0 archives\n");
	judge(&r);
	expect(&r, "apt-cache", SYSPREP_FAIL, "pkgcache.bin, srcpkgcache.bin in /var/cache/apt");
	set_dir(&r, "/var/cache/apt", "d 0 archives\nf 5 archives/zstd_1.5.4_amd64.deb\nf 5 archives/partial/a.deb\n");
	judge(&r);
	expect(&r, "apt-cache", SYSPREP_FAIL, "2 .deb files in /var/cache/apt/archives");
	set_dir(&r, "/var/cache/apt", "f 100 pkgcache.bin\nf 5 archives/a.deb\n");
	judge(&r);
	expect(&r, "apt-cache", SYSPREP_FAIL, "pkgcache.bin and 1 .deb file");
	clear(&r);
}

Test(sysprep, logs)
{
	struct recorded r;
	clean_debian(&r);
	set_dir(&r, "/var/log", "f 0 lastlog\nf 0 wtmp\nd 0 journal\nl 0 link\n");
	judge(&r);
	expect(&r, "logs", SYSPREP_OK, "no log content; 2 empty files");
	set_dir(&r, "/var/log", "f 0 lastlog\nd 0 journal\nd 0 journal/abc\nf 8388608 journal/abc/system.journal\n"
				"f 10 apt/history.log\n");
	judge(&r);
	expect(&r, "logs", SYSPREP_FAIL, "2 files with content, 8388618 bytes: apt/history.log, journal/abc/system.journal");
	/* A name with a newline (set_dir's lines cannot hold one) is shown on one line. */
	image_listing_clear(&r.lists[dir_index("/var/log")]);
	r.lists[dir_index("/var/log")].exists = true;
	image_listing_add(&r.lists[dir_index("/var/log")], "/var/log/odd\nname", 'f', 3);
	judge(&r);
	expect(&r, "logs", SYSPREP_FAIL, "odd?name");
	set_dir(&r, "/var/log", NULL);
	judge(&r);
	expect(&r, "logs", SYSPREP_NA, "no /var/log");
	clear(&r);
}

Test(sysprep, many_findings_stay_one_short_line)
{
	struct recorded r;
	clean_debian(&r);
	_cleanup_free_ char *spec = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&spec, &len);
	for (int i = 0; i < 200; i++)
		fprintf(f, "f 1 a-rather-long-log-file-name-%03d.log\n", i);
	fclose(f);
	set_dir(&r, "/var/log", spec);
	judge(&r);
	expect(&r, "logs", SYSPREP_FAIL, "200 files with content, 200 bytes: a-rather-long-log-file-name-000.log");
	expect(&r, "logs", SYSPREP_FAIL, ", ...");
	cr_expect_lt(strlen(result(&r, "logs")->detail), sizeof(r.res[0].detail) - 1);
	clear(&r);
}

Test(sysprep, cloud_init_state)
{
	struct recorded r;
	clean_debian(&r);
	set_dir(&r, "/var/lib/cloud", "");
	judge(&r);
	expect(&r, "cloud-init", SYSPREP_OK, "holds no files");
	set_dir(&r, "/var/lib/cloud", "d 0 scripts\nd 0 scripts/per-boot\n");
	judge(&r);
	expect(&r, "cloud-init", SYSPREP_OK, "holds no files");
	set_dir(&r, "/var/lib/cloud", "l 0 instance\nd 0 instances\nd 0 instances/iid-1\nf 40 instances/iid-1/boot-finished\n"
				      "d 0 data\nf 200 data/result.json\n");
	judge(&r);
	expect(&r, "cloud-init", SYSPREP_FAIL, "3 entries in /var/lib/cloud, a boot's state: data/result.json, instance, "
					       "instances/iid-1/boot-finished");
	clear(&r);
}

Test(sysprep, root_password_is_judged_never_printed)
{
	struct recorded r;
	clean_debian(&r);
	const char *hash = "$6$saltsalt$Q9hR2pLuSEjOk0Og9yH0l7cQJtC3xG7bq3pQ0oTqzJQ3mJc0a1vWZKj7n2ZbCkQ0bY0Lq9rYw8e9tFkzM9xW1/";
	_cleanup_free_ char *set = xasprintf("daemon:*:1::::::\nroot:%s:19000:0:99999:7:::\n", hash);
	set_file(&r, "/etc/shadow", set);
	judge(&r);
	expect(&r, "root-password", SYSPREP_FAIL, "root has a password in /etc/shadow");
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++) {
		cr_expect_null(strstr(r.res[i].detail, "saltsalt"), "%s quotes the hash", r.res[i].name);
		cr_expect_null(strstr(r.res[i].detail, "$6$"), "%s quotes the hash", r.res[i].name);
	}
	_cleanup_free_ char *locked = xasprintf("root:!%s:19000:0:99999:7:::\n", hash);
	set_file(&r, "/etc/shadow", locked);
	judge(&r);
	expect(&r, "root-password", SYSPREP_OK, "a password hash ships behind the lock");
	cr_expect_null(strstr(result(&r, "root-password")->detail, "saltsalt"));
	const char *ok[] = {"root:*:1::::::\n", "root:!:1::::::\n", "root:!*:1::::::\n", "root:*LK*:1::::::\n"};
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		set_file(&r, "/etc/shadow", ok[i]);
		judge(&r);
		expect(&r, "root-password", SYSPREP_OK, "locked");
	}
	set_file(&r, "/etc/shadow", "root::1::::::\n");
	judge(&r);
	expect(&r, "root-password", SYSPREP_FAIL, "empty: root logs in without a password");
	set_file(&r, "/etc/shadow", "rootless:*:1::::::\n");
	judge(&r);
	expect(&r, "root-password", SYSPREP_FAIL, "no root entry in /etc/shadow");
	/* No shadow: /etc/passwd decides. */
	set_file(&r, "/etc/shadow", NULL);
	judge(&r);
	expect(&r, "root-password", SYSPREP_OK, "defers to it");
	_cleanup_free_ char *pw = xasprintf("root:%s:0:0:root:/root:/bin/sh\n", hash);
	set_file(&r, "/etc/passwd", pw);
	judge(&r);
	expect(&r, "root-password", SYSPREP_FAIL, "root has a password in /etc/passwd");
	cr_expect_null(strstr(result(&r, "root-password")->detail, "saltsalt"));
	set_file(&r, "/etc/passwd", NULL);
	judge(&r);
	expect(&r, "root-password", SYSPREP_NA, "no /etc/shadow or /etc/passwd");
	clear(&r);
}

Test(sysprep, random_seed)
{
	struct recorded r;
	clean_debian(&r);
	char seed[512];
	memset(seed, 'x', sizeof(seed) - 1);
	seed[511] = 0;
	set_file(&r, "/var/lib/systemd/random-seed", seed);
	judge(&r);
	expect(&r, "random-seed", SYSPREP_FAIL, "present, 511 bytes");
	clear(&r);
}

/* ---- debugfs ls -p, as recorded from debugfs 1.47.0 on a test disk ---- */

static const char recorded_ls[] =
	"debugfs: ls -p \"/var/log\"\n"
	"/40/040755/0/0/.//\n"
	"/22/040755/0/0/..//\n"
	"/41/040755/0/0/journal//\n"
	"/44/100644/0/0/lastlog/0/\n"
	"/45/100644/0/0/nl\nname/1/\n"
	"/48/040755/0/0/sp ace//\n"
	"/49/120777/0/0/link/6/\n"
	"\n"
	"debugfs: ls -p \"/var/lib/cloud\"\n"
	"\n"
	"debugfs: ls -p \"/nonexistent\"\n"
	"debugfs: ls -p \"/etc/ssh\"\n"
	"/17/040755/0/0/.//\n"
	"/12/040755/0/0/..//\n"
	"/18/100600/0/0/ssh_host_ed25519_key/411/\n"
	"\n";

Test(sysprep, debugfs_ls_parse)
{
	const char *dirs[] = {"/var/log", "/var/lib/cloud", "/nonexistent", "/etc/ssh"};
	struct image_listing l[4] = {0};
	cr_assert_eq(image_debugfs_parse_ls(recorded_ls, dirs, 4, l), 0, "%s", err_msg());
	cr_expect(l[0].exists);
	cr_assert_eq(l[0].n, 5);
	struct {
		const char *path;
		char type;
		uint64_t size;
	} want[] = {{"/var/log/journal", 'd', 0}, {"/var/log/lastlog", 'f', 0}, {"/var/log/nl\nname", 'f', 1},
		    {"/var/log/sp ace", 'd', 0},  {"/var/log/link", 'l', 0}};
	for (size_t i = 0; i < 5; i++) {
		cr_expect_str_eq(l[0].entries[i].path, want[i].path);
		cr_expect_eq(l[0].entries[i].type, want[i].type, "%s", want[i].path);
		cr_expect_eq(l[0].entries[i].size, want[i].size, "%s", want[i].path);
	}
	cr_expect_not(l[1].exists, "a link (debugfs prints an empty listing) is not the directory");
	cr_expect_eq(l[1].n, 0);
	cr_expect_not(l[2].exists);
	cr_expect(l[3].exists);
	cr_assert_eq(l[3].n, 1);
	cr_expect_str_eq(l[3].entries[0].path, "/etc/ssh/ssh_host_ed25519_key");
	cr_expect_eq(l[3].entries[0].size, 411);
	for (size_t i = 0; i < 4; i++)
		image_listing_clear(&l[i]);

	/* Output it does not know is an error, never a guess. */
	const char *bad[] = {
		"debugfs: ls -p \"/a\"\n/1/040755/0/0/.//\n/2/10x644/0/0/f/1/\n",
		"debugfs: ls -p \"/a\"\n/1/040755/0/0/.//\nsomething else\n",
		"debugfs: stat /a\n",
		"/1/040755/0/0/.//\n",
		"debugfs: ls -p \"/a\"\n/1/040755/0/0/.//\n/3/100644/0/0/f/1/trailing\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct image_listing one = {0};
		const char *d[] = {"/a"};
		cr_expect_eq(image_debugfs_parse_ls(bad[i], d, 1, &one), -1, "case %zu accepted", i);
		image_listing_clear(&one);
		err_clear();
	}
	/* Fewer listings than commands. */
	struct image_listing two[2] = {0};
	const char *d2[] = {"/a", "/b"};
	cr_expect_eq(image_debugfs_parse_ls("debugfs: ls -p \"/a\"\n", d2, 2, two), -1);
	err_clear();
}

/* ---- the direct reader's listings on a disk made here ---- */

static void run(const char *const *argv)
{
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s", err_msg());
}

static void put(const char *root, const char *rel, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
	_cleanup_free_ char *d = fs_dirname(p);
	cr_assert_eq(fs_mkdir_p(d, 0755), 0);
	cr_assert_eq(fs_write_file_atomic(p, text, strlen(text), 0644), 0);
}

Test(sysprep, direct_reader_lists_directories)
{
	if (!proc_have("mke2fs") || !proc_have("debugfs") || !proc_have("qemu-img"))
		cr_skip_test("mke2fs, debugfs or qemu-img missing");
	_cleanup_free_ char *dir = fs_tmpdir_new("test-sysprep");
	_cleanup_free_ char *root = xasprintf("%s/root", dir);
	put(root, "etc/qvsa-release", "BOOTSTRAP_VERSION=1.0\n");
	put(root, "var/log/journal/abc/system.journal", "12345678");
	put(root, "var/log/lastlog", "");
	put(root, "var/log/sp ace/a b", "xy");
	_cleanup_free_ char *deep = xasprintf("%s/var/lib/apt/lists/partial", root);
	cr_assert_eq(fs_mkdir_p(deep, 0755), 0);
	_cleanup_free_ char *link = xasprintf("%s/var/lib/cloud", root);
	cr_assert_eq(symlink("/tmp", link), 0);
	_cleanup_free_ char *disk = xasprintf("%s/disk.raw", dir);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", root, disk, "16M", NULL};
	run(mk);
	const char *paths[] = {"/etc/qvsa-release", NULL};
	const char *dirs[] = {"/var/log", "/var/lib/apt/lists", "/var/lib/cloud", "/etc/ssh", NULL};
	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content c = {0};
	cr_assert_eq(image_read_direct_dirs(&d, paths, dirs, &c), 0, "declined: %s", err_msg() ? err_msg() : "?");
	cr_assert_eq(c.n_lists, 4);
	const struct image_listing *log = &c.lists[0];
	cr_expect(log->exists);
	const char *want[] = {"/var/log/journal", "/var/log/journal/abc", "/var/log/journal/abc/system.journal",
			      "/var/log/lastlog", "/var/log/sp ace", "/var/log/sp ace/a b"};
	cr_assert_eq(log->n, ELEMENTSOF(want));
	for (size_t i = 0; i < ELEMENTSOF(want); i++)
		cr_expect_str_eq(log->entries[i].path, want[i], "sorted, at every depth");
	cr_expect_eq(log->entries[2].size, 8);
	cr_expect_eq(log->entries[2].type, 'f');
	cr_expect_eq(log->entries[5].size, 2);
	cr_expect(c.lists[1].exists);
	cr_assert_eq(c.lists[1].n, 1);
	cr_expect_eq(c.lists[1].entries[0].type, 'd');
	cr_expect_not(c.lists[2].exists, "a link to a directory is not followed");
	cr_expect_not(c.lists[3].exists);
	image_content_clear(&c);

	/* A name debugfs cannot take quoted: declined, libguestfs reads the disk. */
	put(root, "var/log/q\"uote/x", "z");
	cr_assert_eq(unlink(disk), 0);
	run(mk);
	cr_expect_eq(image_read_direct_dirs(&d, paths, dirs, &c), 1);
	cr_expect(strstr(err_msg(), "cannot quote"), "%s", err_msg());
	err_clear();
	fs_tmpdir_release(TAKE_PTR(dir));
}
