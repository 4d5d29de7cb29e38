/* verify asks the image's base (base.h) instead of assuming the tiny one:
 * which initramfs the audit reads (the stamp's BASE=), the domain's vCPUs
 * and memory, the boot budget, and the base's own check of the overlay
 * (cloud-init's result on the debian base). Recorded data only: the
 * initramfs archives are made here in memory, nothing is booted. */
#include <criterion/criterion.h>
#include <string.h>

#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "image.h"
#include "initrd_test.h"
#include "platform_test.h"
#include "stub.h"
#include "target.h"
#include "verify.h"
#include "verify_run.h"

/* A newc cpio holding a .ko for each of modules ("a\nb\n"), zstd-compressed
 * as Debian's mkinitramfs writes it (COMPRESS=zstd), or gzip as the tiny base's. */
static char *make_initrd(const char *modules, bool zstd, size_t *ret_len)
{
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	_cleanup_free_ char *list = strdup(modules);
	char *paths[64] = {NULL}, *save = NULL;
	size_t n = 0;
	for (char *m = strtok_r(list, "\n", &save); m && n + 1 < 64; m = strtok_r(NULL, "\n", &save))
		paths[n++] = xasprintf("usr/lib/modules/6.1.0-28-amd64/kernel/drivers/%s.ko", m);
	*ret_len = make_cpio(buf, cap, zstd ? ARCHIVE_FILTER_ZSTD : ARCHIVE_FILTER_GZIP, (const char *const *)paths);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return buf;
}

#define KVM_MODULES "virtio_pci\nvirtio_blk\nvirtio_net\next4\n"

/* What the audit read from an image: each of paths set in files (path,
 * bytes, length; a NULL-path-ended list), the others absent. */
struct file {
	const char *path;
	const char *data;
	size_t len; /* 0: strlen(data) */
};

static struct image_content content_of(const char *const *paths, const struct file *files)
{
	size_t n = 0;
	while (paths[n])
		n++;
	struct image_content c = {.n_files = n, .files = calloc(n + 1, sizeof(char *)), .lens = calloc(n + 1, sizeof(size_t))};
	for (const struct file *f = files; f->path; f++) {
		size_t i = 0;
		while (paths[i] && strcmp(paths[i], f->path) != 0)
			i++;
		cr_assert_lt(i, n, "%s is not read", f->path);
		size_t len = f->len ? f->len : strlen(f->data);
		c.files[i] = malloc(len + 1);
		memcpy(c.files[i], f->data, len);
		c.files[i][len] = 0;
		c.lens[i] = len;
	}
	return c;
}

static void target_freep(struct target **t) { target_free(*t); }

/* A run of target kvm expecting qVSA-1.0, as verify_artifacts makes it. */
static struct run new_run(const struct target *t, struct verify_result *res)
{
	return (struct run){.t = t, .tname = "kvm", .version = "qVSA-1.0", .res = res, .image_paths = judge_image_paths()};
}

static void run_clear(struct run *r)
{
	free(r->image_paths);
	free(r->overlay_paths);
	free(r->stamp);
}

Test(verify_base, audit_reads_the_stamp_and_every_base_initrd_once)
{
	const char **p = judge_image_paths();
	cr_expect_str_eq(p[0], "/etc/qvsa-release");
	const struct base_ops *const *all = NULL;
	size_t n = base_all(&all), k = 0;
	while (p[k])
		k++;
	for (size_t i = 0; i < n; i++) {
		size_t hits = 0;
		for (size_t j = 1; j < k; j++)
			hits += strcmp(p[j], all[i]->initrd_path) == 0;
		cr_expect_eq(hits, 1, "base %s's %s is read once", all[i]->name, all[i]->initrd_path);
	}
	cr_expect_leq(k, n + 1);
	free(p);
}

Test(verify_base, the_stamp_names_the_initramfs_to_audit)
{
	struct target *t = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "kvm", &t), 0, "%s", err_msg());
	_cleanup_(target_freep) struct target *tp = t;
	size_t zlen = 0, glen = 0;
	_cleanup_free_ char *zst = make_initrd(KVM_MODULES, true, &zlen);
	_cleanup_free_ char *gz = make_initrd(KVM_MODULES, false, &glen);
	const struct base_ops *debian = base_find("debian"), *tiny = base_find("tiny");
	cr_assert(debian && tiny);

	/* debian: its /initrd.img (the direct reader followed the symlink), zstd as mkinitramfs makes it. */
	struct verify_result res = {0};
	struct run r = new_run(t, &res);
	const char *stamp = "APPLIANCE=\"x\"\nBOOTSTRAP_VERSION=\"qVSA-1.0\"\nBASE=\"debian\"\n";
	struct image_content c = content_of(r.image_paths, (struct file[]){{"/etc/qvsa-release", stamp, 0},
									  {debian->initrd_path, zst, zlen},
									  {NULL, NULL, 0}});
	cr_expect_eq(judge_image(&r, &c), 0, "%s", r.reason);
	cr_expect_eq(r.base, debian);
	cr_expect_str_eq(res.base, "debian");
	cr_expect_str_eq(r.stamp, stamp);
	cr_assert_not_null(r.overlay_paths);
	cr_expect_str_eq(r.overlay_paths[3], debian->check_paths[0], "the check reads the base's files too");
	image_content_clear(&c);
	run_clear(&r);

	/* No BASE= (built before the stamp named it): the tiny base's /boot/initrd.img. */
	memset(&res, 0, sizeof(res));
	r = new_run(t, &res);
	c = content_of(r.image_paths, (struct file[]){{"/etc/qvsa-release", "BOOTSTRAP_VERSION=qVSA-1.0\n", 0},
						      {tiny->initrd_path, gz, glen},
						      {NULL, NULL, 0}});
	cr_expect_eq(judge_image(&r, &c), 0, "%s", r.reason);
	cr_expect_eq(r.base, tiny);
	cr_expect_str_eq(res.base, "tiny");
	cr_expect_null(r.overlay_paths[3], "the tiny base checks nothing of its own");
	image_content_clear(&c);
	run_clear(&r);

	/* A debian image whose initramfs is not where its base says: named, with the base. */
	memset(&res, 0, sizeof(res));
	r = new_run(t, &res);
	c = content_of(r.image_paths, (struct file[]){{"/etc/qvsa-release", "BOOTSTRAP_VERSION=qVSA-1.0\nBASE=debian\n", 0},
						      {tiny->initrd_path, gz, glen},
						      {NULL, NULL, 0}});
	cr_expect_eq(judge_image(&r, &c), -1);
	cr_expect_str_eq(r.reason, "driver audit: the image has no /initrd.img (its base, debian, keeps the initramfs there)");
	cr_expect_null(r.overlay_paths, "no check is planned for a failed audit");
	image_content_clear(&c);
	run_clear(&r);
}

Test(verify_base, a_missing_module_or_an_unknown_base_fails_before_any_boot)
{
	struct target *t = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "kvm", &t), 0, "%s", err_msg());
	_cleanup_(target_freep) struct target *tp = t;
	size_t zlen = 0;
	_cleanup_free_ char *zst = make_initrd("virtio_pci\nvirtio_blk\next4\n", true, &zlen);
	struct verify_result res = {0};
	struct run r = new_run(t, &res);
	struct image_content c = content_of(r.image_paths,
					    (struct file[]){{"/etc/qvsa-release", "BOOTSTRAP_VERSION=qVSA-1.0\nBASE=debian\n", 0},
							    {"/initrd.img", zst, zlen},
							    {NULL, NULL, 0}});
	cr_expect_eq(judge_image(&r, &c), -1);
	cr_expect(strstr(r.reason, "driver audit '/initrd.img' (target kvm): initramfs lacks module virtio_net"), "%s",
		  r.reason);
	cr_expect_null(err_msg(), "the run took the error over");
	image_content_clear(&c);
	run_clear(&r);

	memset(&res, 0, sizeof(res));
	r = new_run(t, &res);
	c = content_of(r.image_paths, (struct file[]){{"/etc/qvsa-release", "BOOTSTRAP_VERSION=qVSA-1.0\nBASE=plan9\n", 0},
						      {"/initrd.img", zst, zlen},
						      {NULL, NULL, 0}});
	cr_expect_eq(judge_image(&r, &c), -1);
	cr_expect(strstr(r.reason, "stamped BASE 'plan9', a base this qvsa does not know (known: tiny, debian"), "%s",
		  r.reason);
	cr_expect_eq(r.kind, ERR_INPUT, "an image from another qvsa is not a failed appliance");
	cr_expect_null(r.base);
	cr_expect_str_empty(res.base);
	image_content_clear(&c);
	run_clear(&r);
}

/* judge_overlay of a run on base b, playing platform, whose overlay holds
 * qvsa's files and result (cloud-init's, or NULL). */
static int judge_overlay_on(const struct base_ops *b, const char *platform, const char *result,
			    struct verify_result *res, char *why, size_t wlen)
{
	struct stub_config cfg = {.expected_code = "12345678"};
	struct stub *s = NULL;
	cr_assert_eq(stub_start(&cfg, &s), 0, "%s", err_msg());
	const char *stamp = "BOOTSTRAP_VERSION=qVSA-1.0\nBASE=debian\n";
	struct run r = {.tname = "kvm", .version = "qVSA-1.0", .res = res, .stub = s, .base = b,
			.pops = platform_find(platform), .stamp = xstrdup(stamp), .overlay_paths = judge_overlay_paths(b)};
	cr_assert_not_null(r.pops);
	struct file files[] = {
		{"/etc/qvsa/components", "ML=3.1.0\nVULNSIGS=2.6.18-1\nTAGGER=1.4.2\nSCAND=12.9.5\n", 0},
		{"/etc/qvsa/personalized", "1\n", 0},
		{"/etc/qvsa-release", stamp, 0},
		{result ? "/var/lib/cloud/data/result.json" : NULL, result, 0},
		{NULL, NULL, 0},
	};
	struct image_content c = content_of(r.overlay_paths, files);
	int rc = judge_overlay(&r, &c);
	cr_expect_eq(rc == 0, r.checked);
	snprintf(why, wlen, "%s", r.reason);
	image_content_clear(&c);
	free(r.stamp);
	free(r.overlay_paths);
	stub_stop(s);
	return rc;
}

static int judge_overlay_of(const struct base_ops *b, const char *result, struct verify_result *res, char *why,
			    size_t wlen)
{
	return judge_overlay_on(b, "nocloud", result, res, why, wlen);
}

Test(verify_base, the_base_judges_its_own_files_after_the_boot)
{
	const struct base_ops *debian = base_find("debian"), *tiny = base_find("tiny");
	char why[1024];
	struct verify_result res = {0};
	/* cloud-init's result.json as 22.4 writes it after its last stage. */
	cr_expect_eq(judge_overlay_of(debian,
				      "{\n \"v1\": {\n  \"datasource\": \"DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\",\n"
				      "  \"errors\": []\n }\n}",
				      &res, why, sizeof(why)),
		     0, "%s", why);
	cr_expect_str_eq(res.base_check, "cloud-init done, no errors: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]");
	cr_expect_str_eq(res.components, "ML=3.1.0,VULNSIGS=2.6.18-1,TAGGER=1.4.2,SCAND=12.9.5", "qvsa's own check still runs");

	memset(&res, 0, sizeof(res));
	cr_expect_eq(judge_overlay_of(debian,
				      "{\"v1\": {\"datasource\": \"DataSourceNoCloud\", \"errors\": "
				      "[\"('init-network', RuntimeError('no network'))\"]}}",
				      &res, why, sizeof(why)),
		     -1);
	cr_expect_str_eq(why, "cloud-init finished with 1 error: ('init-network', RuntimeError('no network'))");
	cr_expect_str_empty(res.base_check);
	cr_expect_null(err_msg(), "the run took the error over");

	memset(&res, 0, sizeof(res));
	cr_expect_eq(judge_overlay_of(debian, NULL, &res, why, sizeof(why)), -1);
	cr_expect(strstr(why, "cloud-init did not finish"), "%s", why);

	/* Where the code comes at the console, no datasource: cloud-init stays off, which is its verdict. */
	memset(&res, 0, sizeof(res));
	cr_expect_eq(judge_overlay_on(debian, "console", NULL, &res, why, sizeof(why)), 0, "%s", why);
	cr_expect(strstr(res.base_check, "cloud-init found no datasource"), "%s", res.base_check);
	memset(&res, 0, sizeof(res));
	cr_expect_eq(judge_overlay_on(debian, "console", "{\"v1\": {\"datasource\": null, \"errors\": [\"boom\"]}}", &res,
				      why, sizeof(why)),
		     -1, "where cloud-init did run, its errors still count");
	cr_expect_str_eq(why, "cloud-init finished with 1 error: boom");

	/* The tiny base has no check: qvsa's own files decide. */
	memset(&res, 0, sizeof(res));
	cr_expect_eq(judge_overlay_of(tiny, NULL, &res, why, sizeof(why)), 0, "%s", why);
	cr_expect_str_empty(res.base_check);
}

Test(verify_base, the_domain_gets_the_base_vcpus_and_memory, .init = pt_setup, .fini = pt_teardown)
{
	struct target *t = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "kvm", &t), 0, "%s", err_msg());
	_cleanup_(target_freep) struct target *tp = t;
	struct platform *p = pt_prepare("nocloud");
	struct verify_opts o = {.accel = "tcg", .state_dir = pt_dir};
	struct run r = {.t = t, .o = &o, .tname = "kvm", .name = "qvsa-verify-1-kvm", .tmpdir = pt_dir,
			.overlay = "/tmp/x/overlay.qcow2", .backing = "/tmp/x/disk.qcow2", .fmt = "qcow2",
			.console_path = "/tmp/x/console.log", .pops = platform_find("nocloud"), .plat = p};
	/* Before the audit (prepare): domain.h's defaults. */
	cr_assert_eq(verify_make_domain(&r, NULL), 0, "%s", err_msg());
	_cleanup_free_ char *before = xasprintf("<memory unit='MiB'>%u</memory>\n  <vcpu>%u</vcpu>", DOMAIN_MEMORY_MIB,
						DOMAIN_VCPUS);
	cr_expect(strstr(r.xml, before), "%s", r.xml);
	const struct base_ops *debian = base_find("debian");
	r.base = debian;
	cr_assert_eq(verify_make_domain(&r, NULL), 0, "%s", err_msg());
	_cleanup_free_ char *after = xasprintf("<memory unit='MiB'>%u</memory>\n  <vcpu>%u</vcpu>",
					       debian->verify_memory_mib, debian->verify_vcpus);
	cr_expect(strstr(r.xml, after), "%s", r.xml);
	cr_expect_geq(debian->verify_vcpus, 2, "systemd and cloud-init take ~30 s longer on one vCPU under TCG");
	free(r.xml);
	platform_stop(p);
}

Test(verify_base, the_boot_budget_is_the_users_then_the_bases)
{
	struct verify_opts o = {0};
	struct run r = {.o = &o};
	cr_expect_eq(verify_run_timeout(&r), VERIFY_DEFAULT_TIMEOUT_S, "before the audit knows the base");
	r.base = base_find("tiny");
	cr_expect_eq(verify_run_timeout(&r), r.base->verify_boot_s ? r.base->verify_boot_s : VERIFY_DEFAULT_TIMEOUT_S);
	r.base = base_find("debian");
	cr_expect_eq(verify_run_timeout(&r), r.base->verify_boot_s);
	cr_expect_gt(verify_run_timeout(&r), VERIFY_DEFAULT_TIMEOUT_S);
	o.timeout_s = 90;
	cr_expect_eq(verify_run_timeout(&r), 90, "--timeout wins");
}
