/* The direct reader (image_direct.c) against small disks this test makes in
 * its temp dir with mke2fs -d, sfdisk and debugfs: MBR and GPT, qcow2, a
 * journal left dirty, and disks it must decline. No appliance starts. */
#include <criterion/criterion.h>

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "proc.h"

#include <fcntl.h>
#include <string.h>

static const char *const paths[] = {"/etc/qvsa-release", "/boot/initrd.img", "/etc/link", "/etc/none", NULL};

static bool have_tools(void)
{
	return proc_have("mke2fs") && proc_have("sfdisk") && proc_have("debugfs") && proc_have("qemu-img");
}

static void run(const char *const *argv)
{
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s", err_msg());
}

/* dir/root: the tree mke2fs copies in. */
static void make_tree(const char *dir)
{
	_cleanup_free_ char *etc = xasprintf("%s/root/etc", dir), *boot = xasprintf("%s/root/boot", dir);
	cr_assert_eq(fs_mkdir_p(etc, 0755), 0);
	cr_assert_eq(fs_mkdir_p(boot, 0755), 0);
	_cleanup_free_ char *rel = xasprintf("%s/qvsa-release", etc), *initrd = xasprintf("%s/initrd.img", boot);
	_cleanup_free_ char *link = xasprintf("%s/link", etc);
	cr_assert_eq(fs_write_file_atomic(rel, "BOOTSTRAP_VERSION=1.0\n", 22, 0644), 0);
	char bin[5000];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 7); /* binary, NULs included */
	cr_assert_eq(fs_write_file_atomic(initrd, bin, sizeof(bin), 0644), 0);
	cr_assert_eq(symlink("qvsa-release", link), 0);
}

/* A 40 MiB disk with label ("dos" or "gpt"): a small empty first partition
 * and the ext4 root as the second, at 8 MiB. */
static char *make_disk(const char *dir, const char *label)
{
	make_tree(dir);
	char *disk = xasprintf("%s/disk.raw", dir);
	const char *trunc[] = {"truncate", "-s", "40M", disk, NULL};
	run(trunc);
	_cleanup_free_ char *script = xasprintf("label: %s\nstart=2048, size=4096\nstart=16384\n", label);
	_cleanup_free_ char *sf = xasprintf("%s/sfdisk.in", dir);
	cr_assert_eq(fs_write_file_atomic(sf, script, strlen(script), 0644), 0);
	_cleanup_free_ char *root = xasprintf("%s/root", dir);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-E", "offset=8388608", "-d", root, disk, "30M", NULL};
	run(mk);
	/* The table last: mke2fs -E offset leaves the first MiBs alone. sfdisk
	 * reads its script only on stdin, which proc_run ties to /dev/null. */
	const char *sh[] = {"sh", "-c", "sfdisk -q --no-reread --no-tell-kernel \"$1\" < \"$2\"", "sh", disk, sf, NULL};
	run(sh);
	return disk;
}

static void expect_files(const struct image_content *c)
{
	cr_assert_eq(c->n_files, 4);
	cr_expect_str_eq(c->files[0], "BOOTSTRAP_VERSION=1.0\n");
	cr_assert_not_null(c->files[1]);
	cr_expect_eq(c->lens[1], 5000);
	cr_expect_eq((unsigned char)c->files[1][4999], (unsigned char)(4999 * 7));
	cr_expect_str_eq(c->files[2], "BOOTSTRAP_VERSION=1.0\n", "a symlink is followed, as through libguestfs");
	cr_expect_null(c->files[3]);
}

static void read_expect(const char *disk, const char *fmt)
{
	struct image_disk d = {.path = disk, .format = fmt};
	struct image_content c = {0};
	int rc = image_read_direct(&d, paths, &c);
	cr_assert_eq(rc, 0, "declined: %s", err_msg() ? err_msg() : "?");
	expect_files(&c);
	image_content_clear(&c);
}

Test(image_direct, mbr_and_gpt_partitions)
{
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	const char *labels[] = {"dos", "gpt"};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
		_cleanup_free_ char *disk = make_disk(dir, labels[i]);
		int fd = open(disk, O_RDONLY);
		uint64_t offs[8], sizes[8];
		size_t n = 0;
		cr_assert_eq(image_partitions(fd, offs, sizes, 8, &n), 0);
		close(fd);
		cr_expect_eq(n, 2, "%s", labels[i]);
		cr_expect_eq(offs[0], 2048 * 512);
		cr_expect_eq(sizes[0], 4096 * 512);
		cr_expect_eq(offs[1], 16384 * 512);
		read_expect(disk, "raw");
		/* Any format qemu-img reads, through a qcow2 overlay as verify makes them. */
		_cleanup_free_ char *q = xasprintf("%s/disk.qcow2", dir), *ov = xasprintf("%s/overlay.qcow2", dir);
		const char *conv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", disk, q, NULL};
		run(conv);
		const char *mkov[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", q, ov, NULL};
		run(mkov);
		read_expect(ov, "qcow2");
		fs_tmpdir_release(TAKE_PTR(dir));
	}
}

Test(image_direct, dirty_journal_is_replayed)
{
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
	_cleanup_free_ char *disk = make_disk(dir, "dos");
	/* A transaction in the journal that rewrites /etc/qvsa-release's block,
	 * not yet written home: what a guest powered off without unmounting leaves. */
	_cleanup_free_ char *dev = xasprintf("%s?offset=8388608", disk);
	const char *bl[] = {"debugfs", "-R", "blocks /etc/qvsa-release", dev, NULL};
	_cleanup_free_ char *blk = NULL;
	cr_assert_eq(proc_run(bl, NULL, &blk), 0, "%s", err_msg());
	blk[strcspn(blk, " \n")] = 0;
	_cleanup_free_ char *newblk = xasprintf("%s/newblk", dir);
	char buf[4096] = "BOOTSTRAP_VERSION=2.0\n";
	cr_assert_eq(fs_write_file_atomic(newblk, buf, sizeof(buf), 0644), 0);
	/* debugfs cannot reopen "file?offset=" after a journal write either: work on the partition alone. */
	_cleanup_free_ char *part = xasprintf("%s/part.raw", dir);
	_cleanup_free_ char *ifa = xasprintf("if=%s", disk), *ofa = xasprintf("of=%s", part);
	const char *dd1[] = {"dd", "status=none", "bs=1M", "skip=8", "count=30", ifa, ofa, NULL};
	run(dd1);
	_cleanup_free_ char *cmds = xasprintf("jo\njw -b %s %s\njc\n", blk, newblk);
	_cleanup_free_ char *cf = xasprintf("%s/jcmds", dir);
	cr_assert_eq(fs_write_file_atomic(cf, cmds, strlen(cmds), 0644), 0);
	const char *jw[] = {"debugfs", "-w", "-f", cf, part, NULL};
	run(jw);
	_cleanup_free_ char *ofb = xasprintf("of=%s", disk), *ifb = xasprintf("if=%s", part);
	const char *dd2[] = {"dd", "status=none", "bs=1M", "seek=8", "conv=notrunc", ifb, ofb, NULL};
	run(dd2);

	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content c = {0};
	cr_assert_eq(image_read_direct(&d, paths, &c), 0, "declined: %s", err_msg() ? err_msg() : "?");
	cr_expect_str_eq(c.files[0], "BOOTSTRAP_VERSION=2.0\n", "the journal's version of the file, as a mount shows it");
	image_content_clear(&c);
	/* The artifact itself is never written. */
	const char *cat[] = {"debugfs", "-R", "cat /etc/qvsa-release", dev, NULL};
	_cleanup_free_ char *still = NULL;
	cr_assert_eq(proc_run(cat, NULL, &still), 0);
	cr_expect_str_eq(still, "BOOTSTRAP_VERSION=1.0\n");
	fs_tmpdir_release(TAKE_PTR(dir));
}

Test(image_direct, declines_what_it_cannot_read)
{
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
	/* An ext4 disk without /etc/qvsa-release: libguestfs gives the verdict. */
	_cleanup_free_ char *empty = xasprintf("%s/empty", dir), *disk = xasprintf("%s/plain.raw", dir);
	cr_assert_eq(fs_mkdir_p(empty, 0755), 0);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", empty, disk, "8M", NULL};
	run(mk);
	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content c = {0};
	cr_expect_eq(image_read_direct(&d, paths, &c), 1);
	cr_expect_not_null(err_msg(), "the reason is recorded for the debug log");
	err_clear();
	/* Not a disk image at all. */
	_cleanup_free_ char *junk = xasprintf("%s/junk", dir);
	cr_assert_eq(fs_write_file_atomic(junk, "junk", 4, 0644), 0);
	d.path = junk;
	cr_expect_eq(image_read_direct(&d, paths, &c), 1);
	err_clear();
	fs_tmpdir_release(TAKE_PTR(dir));
}

/* A whole-disk ext4 at dir/NAME.raw from a tree holding the stamp, Debian's
 * /initrd.img (a relative symlink into /boot) and the symlinks in links
 * ("path\ttarget" per line). */
static char *make_linked_disk(const char *dir, const char *name, const char *links)
{
	_cleanup_free_ char *root = xasprintf("%s/%s-root", dir, name);
	_cleanup_free_ char *etc = xasprintf("%s/etc", root), *boot = xasprintf("%s/boot", root);
	cr_assert_eq(fs_mkdir_p(etc, 0755), 0);
	cr_assert_eq(fs_mkdir_p(boot, 0755), 0);
	_cleanup_free_ char *rel = xasprintf("%s/qvsa-release", etc);
	cr_assert_eq(fs_write_file_atomic(rel, "BASE=\"debian\"\n", 14, 0644), 0);
	_cleanup_free_ char *img = xasprintf("%s/initrd.img-6.1.0-28-amd64", boot), *top = xasprintf("%s/initrd.img", root);
	cr_assert_eq(fs_write_file_atomic(img, "initramfs", 9, 0644), 0);
	cr_assert_eq(symlink("boot/initrd.img-6.1.0-28-amd64", top), 0);
	_cleanup_free_ char *list = xstrdup(links);
	char *save = NULL;
	for (char *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(l, '\t');
		*tab = 0;
		_cleanup_free_ char *at = xasprintf("%s%s", root, l);
		cr_assert_eq(symlink(tab + 1, at), 0, "%s", at);
	}
	char *disk = xasprintf("%s/%s.raw", dir, name);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", root, disk, "8M", NULL};
	run(mk);
	return disk;
}

Test(image_direct, relative_symlinks_are_followed)
{
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
	_cleanup_free_ char *disk = make_linked_disk(dir, "ok",
						     "/boot/chain\t../initrd.img\n"         /* two hops, up and back */
						     "/etc/dangling\tnowhere\n"             /* a target that is absent */
						     "/etc/todir\t../boot\n"                /* a directory */
						     "/etc/dot\t./qvsa-release\n");
	const char *const want[] = {"/initrd.img", "/boot/chain", "/etc/dangling", "/etc/todir", "/etc/dot",
				    "/boot/initrd.img-6.1.0-28-amd64", NULL};
	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content c = {0};
	cr_assert_eq(image_read_direct(&d, want, &c), 0, "declined: %s", err_msg() ? err_msg() : "?");
	cr_assert_eq(c.n_files, 6);
	cr_expect_str_eq(c.files[0], "initramfs", "Debian's /initrd.img, resolved against /");
	cr_expect_eq(c.lens[0], 9);
	cr_expect_str_eq(c.files[1], "initramfs", "a link to a link");
	cr_expect_null(c.files[2], "a dangling symlink is an absent file");
	cr_expect_null(c.files[3], "a symlink to a directory is not a file");
	cr_expect_str_eq(c.files[4], "BASE=\"debian\"\n");
	cr_expect_str_eq(c.files[5], "initramfs", "the target itself, in the same pass");
	image_content_clear(&c);
	fs_tmpdir_release(TAKE_PTR(dir));
}

Test(image_direct, symlinks_it_cannot_follow_exactly_are_declined)
{
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	/* Each disk holds one link the reader leaves to libguestfs (which reads
	 * the guest's root as the guest does), with why in the debug log. */
	static const struct {
		const char *links, *why;
	} cases[] = {
		{"/etc/abs\t/boot/initrd.img-6.1.0-28-amd64\n", "an absolute target"},
		{"/etc/abs\t../../../boot/initrd.img-6.1.0-28-amd64\n", "'..' leads above the root"},
		{"/etc/abs\tl1\n/etc/l1\tl2\n/etc/l2\tl3\n/etc/l3\tl4\n/etc/l4\tqvsa-release\n", "more than 4 symlinks"},
		{"/etc/abs\t"
		 "../boot/../boot/../boot/../boot/../boot/../boot/../boot/../boot/../boot/initrd.img-6.1.0-28-amd64\n",
		 "a slow symlink"},
	};
	const char *const want[] = {"/etc/qvsa-release", "/etc/abs", NULL};
	_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_free_ char *name = xasprintf("case%zu", i);
		_cleanup_free_ char *disk = make_linked_disk(dir, name, cases[i].links);
		struct image_disk d = {.path = disk, .format = "raw"};
		struct image_content c = {0};
		err_clear();
		cr_expect_eq(image_read_direct(&d, want, &c), 1, "case %zu read", i);
		cr_expect(err_msg() && strstr(err_msg(), cases[i].why), "case %zu: %s", i, err_msg() ? err_msg() : "?");
		cr_expect_null(c.files, "nothing is handed back from a declined disk");
		err_clear();
	}
	/* Four hops are followed. */
	_cleanup_free_ char *disk = make_linked_disk(dir, "four", "/etc/abs\tl1\n/etc/l1\tl2\n/etc/l2\tl3\n/etc/l3\tqvsa-release\n");
	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content c = {0};
	cr_assert_eq(image_read_direct(&d, want, &c), 0, "declined: %s", err_msg() ? err_msg() : "?");
	cr_expect_str_eq(c.files[1], "BASE=\"debian\"\n");
	image_content_clear(&c);
	fs_tmpdir_release(TAKE_PTR(dir));
}

/* The slow tier (QVSA_TEST_GUESTFS=1, one appliance launch): libguestfs
 * reads the same symlinks the same way, and those the direct reader leaves
 * to it (an absolute target, '..' above the root) as the guest's kernel does. */
Test(image_direct, libguestfs_follows_symlinks_alike, .timeout = 600)
{
	const char *e = getenv("QVSA_TEST_GUESTFS");
	if (!e || strcmp(e, "1") != 0)
		cr_skip_test("launches the libguestfs appliance (~30 s under TCG); set QVSA_TEST_GUESTFS=1");
	if (!have_tools())
		cr_skip_test("mke2fs, sfdisk, debugfs or qemu-img missing");
	image_set_force_tcg(true);
	_cleanup_free_ char *dir = fs_tmpdir_new("test-direct");
	_cleanup_free_ char *disk = make_linked_disk(dir, "gfs",
						     "/boot/chain\t../initrd.img\n"
						     "/etc/dangling\tnowhere\n"
						     "/etc/todir\t../boot\n"
						     "/etc/abs\t/boot/initrd.img-6.1.0-28-amd64\n"
						     "/etc/esc\t../../../etc/qvsa-release\n");
	const char *const want[] = {"/initrd.img", "/boot/chain", "/etc/dangling", "/etc/todir", "/etc/abs", "/etc/esc", NULL};
	struct image_disk d = {.path = disk, .format = "raw"};
	struct image_content *c = NULL;
	cr_assert_eq(image_read_many(&d, 1, want, &c), 0, "%s", err_msg());
	cr_assert_null(c[0].error, "%s", c[0].error);
	cr_expect_str_eq(c[0].files[0], "initramfs");
	cr_expect_str_eq(c[0].files[1], "initramfs");
	cr_expect_null(c[0].files[2]);
	cr_expect_null(c[0].files[3]);
	cr_expect_str_eq(c[0].files[4], "initramfs", "an absolute target resolves inside the image");
	cr_expect_str_eq(c[0].files[5], "BASE=\"debian\"\n", "'..' stops at the image's root");
	/* The direct reader agrees on what it reads itself. */
	const char *const mine[] = {"/initrd.img", "/boot/chain", "/etc/dangling", "/etc/todir", NULL};
	struct image_content dc = {0};
	cr_assert_eq(image_read_direct(&d, mine, &dc), 0, "declined: %s", err_msg() ? err_msg() : "?");
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(!dc.files[i], !c[0].files[i], "%s", mine[i]);
		if (dc.files[i] && c[0].files[i])
			cr_expect_str_eq(dc.files[i], c[0].files[i], "%s", mine[i]);
	}
	image_content_clear(&dc);
	image_contents_free(c, 1);
	fs_tmpdir_release(TAKE_PTR(dir));
}
