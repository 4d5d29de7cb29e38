/* The debian base's row: the cached root tree (debian_tree.c) gives the
 * kernel; each disk starts from a hard-linked copy of the tree, gets an
 * initramfs made by the tree's own mkinitramfs with the disk's drivers
 * forced in (cached by tree and module list), and boots through GRUB on
 * BIOS and UEFI alike. After the boot, verify judges cloud-init's own
 * result file. */
#include "debian.h"

#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "json.h"
#include "kernel.h"
#include "log.h"
#include "pack.h"
#include "proc.h"
#include "recipe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How the tree's mkinitramfs builds: only the listed modules (and their
 * dependencies), so that the image is small and GRUB reads it fast; the
 * root is ext4 and never resumes from swap. */
static const char initramfs_conf[] = "# qvsa: the modules listed in ../modules (the targets' drivers), nothing probed\n"
				     "MODULES=list\nBUSYBOX=auto\nCOMPRESS=zstd\nFSTYPE=ext4\nRESUME=none\n";

static int debian_open(const struct base_open_params *p, struct base_state *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (debian_tree_get(p, ret) < 0) {
		base_state_clear(ret);
		return -1;
	}
	/* The kernel package's version, as dpkg recorded it in the tree. */
	const char *pkg = recipe_kernel_package(p->recipe);
	_cleanup_free_ char *id = NULL;
	size_t plen = strlen(pkg);
	for (const char *line = ret->packages; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, pkg, plen) == 0 && line[plen] == ' ')
			id = xasprintf("%s_%.*s", pkg, (int)strcspn(line + plen + 1, "\n"), line + plen + 1);
	if (kernel_from_tree(ret->tree, id ? id : pkg, &ret->kernel) < 0) {
		base_state_clear(ret);
		return -1;
	}
	return 0;
}

/* Run argv (argv[0] a path inside tree) chrooted into tree, with a clean
 * environment whose SOURCE_DATE_EPOCH is epoch (mkinitramfs then clamps
 * times and compresses reproducibly). */
static int run_in_tree(const char *tree, int64_t epoch, const char *const *argv)
{
	char sde[48];
	snprintf(sde, sizeof(sde), "SOURCE_DATE_EPOCH=%lld", (long long)epoch);
	const char *v[24] = {"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=/tmp", "LC_ALL=C.UTF-8",
			     sde, "chroot", tree};
	size_t n = 8;
	for (size_t i = 0; argv[i] && n + 1 < ELEMENTSOF(v); i++)
		v[n++] = argv[i];
	v[n] = NULL;
	return proc_run(v, NULL, NULL);
}

/* The build's epoch as the times of a file written for this disk (never a
 * shared inode): the assembly keeps a regular file's older mtime. */
static int stamp_time(const char *path, int64_t epoch)
{
	struct timespec ts[2] = {{.tv_sec = (time_t)epoch}, {.tv_sec = (time_t)epoch}};
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_errno(errno, "setting the times of '%s'", path);
	return 0;
}

/* The disk's initramfs at tree/boot/initrd.img-R: the cached one for this
 * tree, configuration, module list and epoch, else made by mkinitramfs in
 * the tree (reproducibly: the same inputs give the same bytes). */
static int make_initramfs(const struct base_ctx *ctx, const char *tree)
{
	const char *rel = kernel_release(ctx->kernel);
	_cleanup_free_ char *mods = NULL;
	size_t mlen = 0;
	FILE *f = open_memstream(&mods, &mlen);
	fputs("# qvsa: the drivers of every target this disk serves, and the base's own\n", f);
	for (char *const *m = ctx->modules; *m; m++)
		fprintf(f, "%s\n", *m);
	fclose(f);
	_cleanup_free_ char *conf = xasprintf("%s/etc/initramfs-tools/conf.d/qvsa.conf", tree);
	_cleanup_free_ char *modfile = xasprintf("%s/etc/initramfs-tools/modules", tree);
	if (debian_replace_file(conf, initramfs_conf, 0644) < 0 || debian_replace_file(modfile, mods, 0644) < 0 ||
	    stamp_time(conf, ctx->epoch) < 0 || stamp_time(modfile, ctx->epoch) < 0)
		return -1;
	/* The initramfs holds the tree's programs (udev, busybox, libc) too: every package version counts. */
	_cleanup_free_ char *keytext = xasprintf("%s\n%s\n%s\n%s\n%lld\n%s", ctx->st->key, rel, initramfs_conf, mods,
						 (long long)ctx->epoch, ctx->st->packages ? ctx->st->packages : "");
	char key[65];
	sha256_hex(keytext, strlen(keytext), key);
	key[16] = 0;
	_cleanup_free_ char *cdir = xasprintf("%s/debian/initrd", ctx->cache_dir);
	_cleanup_free_ char *cached = xasprintf("%s/%s.img", cdir, key);
	_cleanup_free_ char *img = xasprintf("%s/boot/initrd.img-%s", tree, rel);
	if (unlink(img) < 0 && errno != ENOENT)
		return err_errno(errno, "replacing '%s'", img);
	if (fs_exists(cached)) {
		log_debug("base debian: initramfs %s from the cache", key);
		return fs_copy_file(cached, img, 0644) < 0 ? -1 : stamp_time(img, ctx->epoch);
	}
	log_phase_status("mkinitramfs %s in the root tree", rel);
	_cleanup_free_ char *out = xasprintf("/boot/initrd.img-%s", rel);
	const char *argv[] = {"mkinitramfs", "-o", out, rel, NULL};
	if (run_in_tree(tree, ctx->epoch, argv) < 0) {
		err_prefix("base debian: mkinitramfs");
		return -1;
	}
	if (fs_mkdir_p(cdir, 0755) < 0)
		return -1;
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", cached);
	if (fs_copy_file(img, tmp, 0644) < 0 || rename(tmp, cached) < 0) {
		unlink(tmp);
		return err_errno(errno, "caching the initramfs as '%s'", cached);
	}
	return stamp_time(img, ctx->epoch);
}

/* GRUB's menu, the same for BIOS and UEFI: no menu delay, serial and screen. */
static char *grub_cfg(const struct base_ctx *ctx)
{
	_cleanup_free_ char *cmdline = base_kernel_cmdline(ctx->root_uuid);
	const char *rel = kernel_release(ctx->kernel);
	return xasprintf("# qvsa: written at build time; update-grub rewrites it from /etc/default/grub\n"
			 "serial --unit=0 --speed=115200\n"
			 "terminal_input serial console\n"
			 "terminal_output serial console\n"
			 "set timeout=0\n"
			 "menuentry 'Debian GNU/Linux (qVSA)' {\n"
			 "\tsearch --no-floppy --fs-uuid --set=root %s\n"
			 "\tlinux /boot/vmlinuz-%s %s\n"
			 "\tinitrd /boot/initrd.img-%s\n"
			 "}\n",
			 ctx->root_uuid, rel, cmdline, rel);
}

/* /etc/default/grub for update-grub (a kernel upgrade, virt-v2v): the same boot. */
static const char default_grub[] = "# qvsa: the appliance boots at once, on the serial console and the screen\n"
				   "GRUB_DEFAULT=0\n"
				   "GRUB_TIMEOUT=0\n"
				   "GRUB_TIMEOUT_STYLE=hidden\n"
				   "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n"
				   "GRUB_CMDLINE_LINUX_DEFAULT=\"loglevel=4\"\n"
				   "GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8 panic=10\"\n"
				   "GRUB_TERMINAL=\"serial console\"\n"
				   "GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n"
				   "GRUB_DISABLE_OS_PROBER=true\n";

/* The disk's own files in the copied tree and the archive. */
static int populate_tree(const struct base_ctx *ctx, struct pack *rootfs, const char *tree)
{
	if (make_initramfs(ctx, tree) < 0)
		return -1;
	_cleanup_free_ char *img = xasprintf("%s/boot/initrd.img-%s", tree, kernel_release(ctx->kernel));
	_cleanup_free_ char *initrd = xasprintf("%s/" BASE_INITRD_FILE, ctx->workdir);
	if (link(img, initrd) < 0)
		return err_errno(errno, "linking '%s'", initrd);
	_cleanup_free_ char *cfg = grub_cfg(ctx);
	if (pack_data(rootfs, "/boot/grub/grub.cfg", 0644, cfg, strlen(cfg)) < 0 ||
	    pack_data(rootfs, "/etc/default/grub", 0644, default_grub, strlen(default_grub)) < 0)
		return -1;
	return 0;
}

static int debian_populate(const struct base_ctx *ctx, struct pack *rootfs, char **ret_tree)
{
	*ret_tree = NULL;
	/* Hard links: a copy of ~20000 files in a fraction of a second (a real
	 * copy across file systems). Every later change replaces a file (unlink
	 * first), never writes a shared inode. */
	_cleanup_free_ char *tree = xasprintf("%s/tree", ctx->workdir);
	struct stat a, b;
	bool same_fs = stat(ctx->st->tree, &a) == 0 && stat(ctx->workdir, &b) == 0 && a.st_dev == b.st_dev;
	if (!same_fs)
		log_notice("base debian: the cache and the work folder are on different file systems: copying the "
			   "root tree instead of linking it (slower; put TMPDIR beside the cache)");
	const char *cp[] = {"cp", "-a", same_fs ? "-l" : "--reflink=auto", ctx->st->tree, tree, NULL};
	if (proc_run(cp, NULL, NULL) < 0) {
		err_prefix("base debian: copying the root tree");
		return -1;
	}
	if (populate_tree(ctx, rootfs, tree) < 0) {
		fs_rm_rf(tree);
		return -1;
	}
	*ret_tree = TAKE_PTR(tree);
	return 0;
}

#define GRUB_EFI_DIR "/usr/lib/grub/x86_64-efi"

/* GRUB for UEFI as the removable-media loader: a core image that finds the
 * root by UUID and reads the same grub.cfg as BIOS. */
static int debian_populate_esp(const struct base_ctx *ctx, struct pack *esp)
{
	if (!fs_exists(GRUB_EFI_DIR "/linux.mod"))
		return err_fail("UEFI boot loader '%s' is missing (install grub-efi-amd64-bin)", GRUB_EFI_DIR);
	_cleanup_free_ char *early = xasprintf("%s/grub-efi-early.cfg", ctx->workdir);
	_cleanup_free_ char *core = xasprintf("%s/BOOTX64.EFI", ctx->workdir);
	_cleanup_free_ char *cfg = xasprintf("search --no-floppy --fs-uuid --set=root %s\n"
					     "set prefix=($root)/boot/grub\n", ctx->root_uuid);
	if (fs_write_file_atomic(early, cfg, strlen(cfg), 0644) < 0)
		return -1;
	const char *argv[] = {"grub-mkimage", "-O", "x86_64-efi", "-d", GRUB_EFI_DIR, "-c", early, "-p", "/boot/grub",
			      "-o", core, "part_gpt", "part_msdos", "ext2", "search", "search_fs_uuid", "normal",
			      "linux", "serial", "terminal", "configfile", "echo", "test", "efi_gop", "all_video",
			      NULL};
	if (proc_run(argv, NULL, NULL) < 0)
		return -1;
	return pack_file(esp, "/EFI/BOOT/BOOTX64.EFI", 0644, core);
}

/* cloud-init's own verdict on the first boot: /var/lib/cloud/data/result.json
 * ({"v1": {"datasource": "...", "errors": [...]}}), written when its last
 * stage ends. On a platform without a datasource, ds-identify disables
 * cloud-init (no state at all, contents[1] absent): that is its verdict. */
static int debian_check(char *const *contents, const size_t *lens, bool datasource, char **ret_summary)
{
	(void)lens;
	if (!contents[0] && !datasource && !contents[1]) {
		*ret_summary = xstrdup("cloud-init found no datasource and stayed off, as ds-identify decides "
				       "where the platform hands none");
		return 0;
	}
	if (!contents[0])
		return err_fail("cloud-init did not finish: the overlay has no /var/lib/cloud/data/result.json");
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *doc = json_parse(contents[0], &why, &at);
	json_object *v1 = doc ? json_member(doc, "v1", json_type_object) : NULL;
	if (!v1)
		return err_fail("cloud-init's result.json is not what cloud-init writes (%s at byte %zu)",
				why ? why : "no v1 object", at);
	json_object *errors = json_member(v1, "errors", json_type_array);
	const char *ds = json_member_str(v1, "datasource");
	if (!errors)
		return err_fail("cloud-init's result.json has no errors list");
	size_t n = json_object_array_length(errors);
	if (n > 0) {
		json_object *e0 = json_object_array_get_idx(errors, 0);
		return err_fail("cloud-init finished with %zu error%s: %.200s", n, n == 1 ? "" : "s",
				json_object_get_type(e0) == json_type_string ? json_object_get_string(e0) : "?");
	}
	if (!ds || !*ds)
		return err_fail("cloud-init finished without a datasource");
	*ret_summary = xasprintf("cloud-init done, no errors: %.120s", ds);
	return 0;
}

static const char *const debian_templates[] = {"debian-base", "bootstrap-agent", NULL};

static const char *const debian_modules[] = {
	"ext4", "crc32c_generic",        /* root filesystem (ext4 checksums need crc32c) */
	"sr_mod", "cdrom", "isofs", "udf", /* cloud-init reads NoCloud, OVF, config-2 and Azure media */
	"vfat", "nls_cp437", "nls_utf8",  /* NoCloud/config-2 on FAT */
	NULL,
};

/* result.json, then a file every cloud-init run leaves (whether it ran at all). */
static const char *const debian_check_paths[] = {"/var/lib/cloud/data/result.json", "/var/lib/cloud/data/instance-id",
						 NULL};

const struct base_ops base_debian_ops = {
	.name = "debian",
	.kernel_package = "linux-image-amd64",
	.takes_packages = true,
	.templates = debian_templates,
	.modules = debian_modules,
	.initrd_path = "/initrd.img",
	.verify_vcpus = 2,
	.verify_memory_mib = 1536,
	.verify_boot_s = 300,
	.check_paths = debian_check_paths,
	.check = debian_check,
	.open = debian_open,
	.populate = debian_populate,
	.populate_esp = debian_populate_esp,
};
