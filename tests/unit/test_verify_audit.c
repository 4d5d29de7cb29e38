/* The driver audit as verify runs it: which filesystem belongs to which
 * disk, the initramfs check naming module and target, and (only with
 * QVSA_TEST_GUESTFS=1, since it launches the libguestfs appliance) the
 * multi-disk reader and verify_artifacts failing bad images before any boot.
 * The images are made here at run time with mke2fs -d: no VM is needed to
 * make them, and libvirt never starts a domain (every job fails its audit). */
#include "audit.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "log.h"
#include "pack.h"
#include "proc.h"
#include "target.h"
#include "verify.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static void target_freep(struct target **t) { target_free(*t); }

static struct target *kvm_target(void)
{
	struct target *t = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "kvm", &t), 0, "%s", err_msg());
	return t;
}

/* A gzip'd newc initramfs at path holding a .ko file for each of modules
 * (one name per line), as any base's initramfs holds them. */
static void make_initrd(const char *path, const char *modules)
{
	struct pack *p = NULL;
	cr_assert_eq(pack_open(path, PACK_CPIO_GZ, 0, &p), 0, "%s", err_msg());
	cr_assert_eq(pack_data(p, "/init", 0755, "#!/bin/sh\n", 10), 0);
	_cleanup_free_ char *list = strdup(modules);
	char *save = NULL;
	for (char *m = strtok_r(list, "\n", &save); m; m = strtok_r(NULL, "\n", &save)) {
		_cleanup_free_ char *ko = xasprintf("/lib/modules/6.1.0-test-amd64/kernel/drivers/%s.ko", m);
		cr_assert_eq(pack_data(p, ko, 0644, "\177ELF", 4), 0);
	}
	cr_assert_eq(pack_close(p), 0, "%s", err_msg());
}

Test(verify_audit, filesystem_belongs_to_its_disk_only)
{
	cr_expect(image_fs_on_device("/dev/sda1", "/dev/sda"));
	cr_expect(image_fs_on_device("/dev/sda", "/dev/sda"), "a filesystem on the whole disk");
	cr_expect(image_fs_on_device("/dev/sdb12", "/dev/sdb"));
	cr_expect(!image_fs_on_device("/dev/sdaa1", "/dev/sda"), "the 27th disk is not the first");
	cr_expect(!image_fs_on_device("/dev/sdb1", "/dev/sda"));
	cr_expect(!image_fs_on_device("/dev/sd", "/dev/sda"));
	cr_expect(image_fs_on_device("/dev/nvme0n1p2", "/dev/nvme0n1"));
	cr_expect(!image_fs_on_device("/dev/nvme0n1p", "/dev/nvme0n1"));
	cr_expect(!image_fs_on_device("/dev/nvme0n10", "/dev/nvme0n1"));
	cr_expect(!image_fs_on_device("/dev/VG/root", "/dev/sda"));
}

Test(verify_audit, missing_module_names_module_and_target)
{
	_cleanup_(target_freep) struct target *t = kvm_target();
	_cleanup_free_ char *dir = fs_tmpdir_new("test-audit");
	cr_assert_not_null(dir);
	_cleanup_free_ char *good = xasprintf("%s/good.img", dir), *bad = xasprintf("%s/bad.img", dir);
	make_initrd(good, "virtio_pci\nvirtio_blk\nvirtio_net\next4\n");
	make_initrd(bad, "virtio_pci\nvirtio_blk\next4\n");
	_cleanup_free_ char *g = NULL, *b = NULL;
	size_t glen = 0, blen = 0;
	cr_assert_eq(fs_read_file(good, &g, &glen), 0);
	cr_assert_eq(fs_read_file(bad, &b, &blen), 0);

	err_clear();
	cr_expect_eq(audit_initramfs(g, glen, t, "/boot/initrd.img"), 0, "%s", err_msg());
	cr_assert_eq(audit_initramfs(b, blen, t, "/boot/initrd.img"), -1);
	cr_expect_eq(err_kind(), ERR_FAIL);
	cr_expect(strstr(err_msg(), "(target kvm)"), "%s", err_msg());
	cr_expect(strstr(err_msg(), "lacks module virtio_net needed"), "%s", err_msg());
	err_clear();
	fs_tmpdir_release(TAKE_PTR(dir));
}

/* The slow tier: skip unless asked. */
static void need_guestfs(void)
{
	const char *e = getenv("QVSA_TEST_GUESTFS");
	if (!e || strcmp(e, "1") != 0)
		cr_skip_test("launches the libguestfs appliance (~30 s under TCG); set QVSA_TEST_GUESTFS=1");
	if (!proc_have("mke2fs") || !proc_have("qemu-img"))
		cr_skip_test("mke2fs or qemu-img missing");
	image_set_force_tcg(true);
	log_init(true); /* no progress lines in the test's output */
}

/* A root filesystem tree under dir/NAME-root: the stamp (if version) and an initramfs (if modules). */
static char *make_tree(const char *dir, const char *name, const char *version, const char *modules)
{
	char *root = xasprintf("%s/%s-root", dir, name);
	_cleanup_free_ char *boot = xasprintf("%s/boot", root), *etc = xasprintf("%s/etc", root);
	cr_assert_eq(fs_mkdir_p(boot, 0755), 0);
	cr_assert_eq(fs_mkdir_p(etc, 0755), 0);
	if (version) {
		_cleanup_free_ char *rel = xasprintf("%s/qvsa-release", etc);
		_cleanup_free_ char *text = xasprintf("APPLIANCE=\"test\"\nBOOTSTRAP_VERSION=\"%s\"\n", version);
		cr_assert_eq(fs_write_file_atomic(rel, text, strlen(text), 0644), 0);
	}
	if (modules) {
		_cleanup_free_ char *initrd = xasprintf("%s/initrd.img", boot);
		make_initrd(initrd, modules);
	}
	return root;
}

/* dir/NAME.qcow2 holding tree as ext4: on the whole disk, or in partition 1 of an MBR disk. */
static char *make_disk(const char *dir, const char *name, const char *tree, bool partitioned)
{
	_cleanup_free_ char *raw = xasprintf("%s/%s.raw", dir, name);
	char *qcow2 = xasprintf("%s/%s.qcow2", dir, name);
	const off_t size = 32 << 20, start = 1 << 20;
	int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	if (partitioned) {
		/* One Linux partition from 1 MiB to the end. */
		unsigned char mbr[512] = {0};
		unsigned char *e = mbr + 446;
		uint32_t lba = (uint32_t)(start / 512), count = (uint32_t)((size - start) / 512);
		e[4] = 0x83;
		memcpy(e + 8, &lba, 4);
		memcpy(e + 12, &count, 4);
		mbr[510] = 0x55;
		mbr[511] = 0xaa;
		cr_assert_eq(pwrite(fd, mbr, sizeof(mbr), 0), (ssize_t)sizeof(mbr));
	}
	close(fd);
	_cleanup_free_ char *offset = xasprintf("offset=%lld", (long long)(partitioned ? start : 0));
	_cleanup_free_ char *blocks = xasprintf("%lldk", (long long)((size - (partitioned ? start : 0)) / 1024));
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-E", offset, "-d", tree, raw, blocks, NULL};
	cr_assert_eq(proc_run(mk, NULL, NULL), 0, "%s", err_msg());
	const char *conv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2, NULL};
	cr_assert_eq(proc_run(conv, NULL, NULL), 0, "%s", err_msg());
	unlink(raw);
	return qcow2;
}

#define KVM_MODULES "virtio_pci\nvirtio_blk\nvirtio_net\n"

Test(verify_audit, many_disks_in_one_launch, .timeout = 600)
{
	need_guestfs();
	_cleanup_free_ char *dir = fs_tmpdir_new("test-audit");
	cr_assert_not_null(dir);
	_cleanup_free_ char *t1 = make_tree(dir, "a", "qVSA-1.0", KVM_MODULES);
	_cleanup_free_ char *t2 = make_tree(dir, "b", "qVSA-2.0", "virtio_pci\n");
	_cleanup_free_ char *t3 = make_tree(dir, "c", NULL, KVM_MODULES);
	_cleanup_free_ char *d1 = make_disk(dir, "a", t1, true);
	_cleanup_free_ char *d2 = make_disk(dir, "b", t2, false);
	_cleanup_free_ char *d3 = make_disk(dir, "c", t3, true);
	struct image_disk disks[] = {{.path = d1, .format = "qcow2"}, {.path = d2}, {.path = d3, .format = "qcow2", .name = "disk three"}};
	const char *const paths[] = {"/etc/qvsa-release", "/boot/initrd.img", "/etc/qvsa/components", NULL};
	struct image_content *c = NULL;
	err_clear();
	cr_assert_eq(image_read_many(disks, 3, paths, &c), 0, "%s", err_msg());

	cr_expect_null(c[0].error, "%s", c[0].error);
	cr_expect(strstr(c[0].files[0], "qVSA-1.0"), "each disk shows its own root");
	cr_expect_gt(c[0].lens[1], 0);
	cr_expect_eq(memcmp(c[0].files[1], "\x1f\x8b", 2), 0, "the initramfs comes whole (gzip)");
	cr_expect_null(c[0].files[2], "an absent file is NULL");
	cr_expect_null(c[1].error, "%s", c[1].error);
	cr_expect(strstr(c[1].files[0], "qVSA-2.0"));
	cr_assert_not_null(c[2].error, "disk 3 has no stamp");
	cr_expect(strstr(c[2].error, "image 'disk three': no filesystem holding /etc/qvsa-release"), "%s", c[2].error);
	cr_expect_eq(c[2].error_kind, ERR_INPUT);
	image_contents_free(c, 3);
	fs_tmpdir_release(TAKE_PTR(dir));
}

Test(verify_audit, bad_images_fail_before_any_boot, .timeout = 600)
{
	need_guestfs();
	_cleanup_(target_freep) struct target *t = kvm_target();
	_cleanup_free_ char *dir = fs_tmpdir_new("test-audit");
	cr_assert_not_null(dir);
	_cleanup_free_ char *t1 = make_tree(dir, "lacks", "qVSA-1.0", "virtio_pci\nvirtio_blk\n");
	_cleanup_free_ char *t2 = make_tree(dir, "stamp", "qVSA-0.9", KVM_MODULES);
	_cleanup_free_ char *t3 = make_tree(dir, "noinitrd", "qVSA-1.0", NULL);
	_cleanup_free_ char *d1 = make_disk(dir, "lacks", t1, true);
	_cleanup_free_ char *d2 = make_disk(dir, "stamp", t2, false);
	_cleanup_free_ char *d3 = make_disk(dir, "noinitrd", t3, true);
	struct stat before;
	cr_assert_eq(stat(d1, &before), 0);

	_cleanup_free_ char *state = xasprintf("%s/state", dir);
	struct verify_opts o = {.state_dir = state, .accel = "tcg", .perscode = "4242424242",
				.expected_version = "qVSA-1.0"};
	struct verify_job jobs[] = {{.artifact = d1, .target = t}, {.artifact = d2, .target = t},
				    {.artifact = d3, .target = t}};
	err_clear();
	cr_assert_eq(verify_artifacts(jobs, 3, &o), -1);
	cr_expect(strstr(err_msg(), "verification failed for 3 of 3 artifacts"), "%s", err_msg());
	for (size_t i = 0; i < 3; i++) {
		struct verify_result *r = &jobs[i].result;
		cr_expect(!r->passed);
		cr_expect_eq(r->t_boot, 0, "job %zu was booted", i);
		cr_expect_str_empty(r->console_log, "job %zu has a console log", i);
		cr_assert_not_null(r->message);
		cr_expect(strstr(r->message, "(target kvm)"), "%s", r->message);
		cr_expect(!strstr(r->message, "last console lines"), "%s", r->message);
		cr_expect_gt(r->t_audit, 0);
	}
	cr_expect(strstr(jobs[0].result.reason, "initramfs lacks module virtio_net needed"), "%s", jobs[0].result.reason);
	cr_expect(strstr(jobs[1].result.reason, "stamped BOOTSTRAP_VERSION 'qVSA-0.9', expected 'qVSA-1.0'"), "%s",
		  jobs[1].result.reason);
	cr_expect(strstr(jobs[2].result.reason, "the image has no /boot/initrd.img"), "%s", jobs[2].result.reason);
	struct stat after;
	cr_assert_eq(stat(d1, &after), 0);
	cr_expect(after.st_size == before.st_size && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
		  after.st_mtim.tv_sec == before.st_mtim.tv_sec, "the artifact was modified");
	for (size_t i = 0; i < 3; i++)
		verify_result_clear(&jobs[i].result);
	err_clear();
	fs_tmpdir_release(TAKE_PTR(dir));
}
