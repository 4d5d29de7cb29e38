/* The tiny base: a Debian kernel, busybox-static userland and an initramfs
 * made here holding exactly the modules the targets need. Boots in seconds. */
#include "base.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "kernel.h"
#include "modules.h"
#include "pack.h"
#include "proc.h"
#include "recipe.h"

#include <elf.h>
#include <string.h>

#define BUSYBOX "/bin/busybox"

/* busybox must be static: the image has no C library. */
static int check_static(const char *path)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(path, &buf, &len) < 0) {
		err_prefix("base 'tiny' needs busybox-static");
		return -1;
	}
	const Elf64_Ehdr *eh = (const void *)buf;
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return err_fail("base 'tiny': '%s' is not a 64-bit ELF program", path);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		size_t off = eh->e_phoff + (size_t)i * eh->e_phentsize;
		if (off + sizeof(Elf64_Phdr) > len)
			break;
		const Elf64_Phdr *ph = (const void *)(buf + off);
		if (ph->p_type == PT_INTERP)
			return err_fail("base 'tiny': '%s' is dynamically linked; install busybox-static", path);
	}
	return 0;
}

static int write_initramfs(const struct base_ctx *ctx, const char *out)
{
	struct pack *p = NULL;
	if (pack_open(out, PACK_CPIO_GZ, ctx->epoch, &p) < 0)
		return -1;
	_cleanup_free_ char *init = xasprintf("%s/templates/tiny-base/initramfs/init", ctx->datadir);
	int rc = pack_file(p, "/init", 0755, init);
	if (rc == 0)
		rc = pack_file(p, "/bin/busybox", 0755, BUSYBOX);
	if (rc == 0)
		rc = pack_chardev(p, "/dev/console", 0600, 5, 1);
	for (const char *d = "proc\0sys\0newroot\0"; rc == 0 && *d; d += strlen(d) + 1) {
		_cleanup_free_ char *dir = xasprintf("/%s", d);
		rc = pack_dir(p, dir, 0755);
	}
	/* The load order (the init script insmods in it; the driver audit reads the .ko files). */
	char *order = NULL;
	size_t olen = 0;
	FILE *of = open_memstream(&order, &olen);
	for (char *const *m = ctx->module_paths; rc == 0 && *m; m++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", kernel_moddir(ctx->kernel), *m);
		_cleanup_free_ char *dst = xasprintf("/lib/modules/%s/%s", kernel_release(ctx->kernel), *m);
		rc = pack_file(p, dst, 0644, src);
		fprintf(of, "%s\n", dst);
	}
	fclose(of);
	if (rc == 0)
		rc = pack_data(p, "/etc/qvsa-modules.order", 0644, order, olen);
	free(order);
	if (rc < 0) {
		pack_abort(p);
		return -1;
	}
	return pack_close(p);
}

/* Symlinks for every applet busybox has, as `busybox --list-full` names them. */
static int add_applets(struct pack *rootfs)
{
	const char *argv[] = {BUSYBOX, "--list-full", NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(argv, NULL, &out) < 0)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "bin/busybox") == 0)
			continue;
		_cleanup_free_ char *path = xasprintf("/%s", line);
		if (pack_symlink(rootfs, path, BUSYBOX) < 0)
			return -1;
	}
	return 0;
}

#define DEBIAN_VERSION "/etc/debian_version"

/* The image's kernel (apt-get download) and busybox come from the build
 * host's Debian release, so, as Debian derivatives do (ID_LIKE=debian in
 * os-release), the image names that release in /etc/debian_version. It is
 * also what image inspectors (libguestfs, hence virt-v2v) read to know the
 * family: they ignore ID_LIKE and know no ID=qvsa. A host without the file
 * gives none. */
static int add_debian_version(struct pack *rootfs)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (!fs_exists(DEBIAN_VERSION))
		return 0;
	if (fs_read_file(DEBIAN_VERSION, &buf, &len) < 0)
		return -1;
	size_t line = strcspn(buf, "\n");
	if (line == 0 || line > 64)
		return 0;
	buf[line] = '\n';
	/* dpkg's database, empty: nothing here was installed through dpkg. Who
	 * reads /etc/debian_version expects it (libguestfs's inspection fails
	 * without it; package scanners read it); empty, it says so truthfully. */
	if (pack_data(rootfs, DEBIAN_VERSION, 0644, buf, line + 1) < 0 || pack_dir(rootfs, "/var/lib/dpkg", 0755) < 0)
		return -1;
	return pack_data(rootfs, "/var/lib/dpkg/status", 0644, "", 0);
}

static int tiny_open(const struct base_open_params *p, struct base_state *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (kernel_fetch(p->cache_dir, recipe_kernel_package(p->recipe), &ret->kernel) < 0)
		return -1;
	/* Its userland is the host's busybox-static (the manifest lists it). */
	_cleanup_free_ char *version = NULL;
	const char *argv[] = {"dpkg-query", "-W", "-f=${Version}", "busybox-static", NULL};
	if (proc_run(argv, NULL, &version) == 0 && version && *version)
		ret->packages = xasprintf("busybox-static %s\n", version);
	return 0;
}

static int tiny_populate(const struct base_ctx *ctx, struct pack *rootfs, char **ret_tree)
{
	*ret_tree = NULL;
	if (check_static(BUSYBOX) < 0)
		return -1;
	_cleanup_free_ char *initrd = xasprintf("%s/" BASE_INITRD_FILE, ctx->workdir);
	if (write_initramfs(ctx, initrd) < 0)
		return -1;
	for (const char *d = "proc\0sys\0dev\0run\0tmp\0mnt\0var/log\0boot/extlinux\0boot/grub\0"; *d;
	     d += strlen(d) + 1) {
		_cleanup_free_ char *dir = xasprintf("/%s", d);
		if (pack_dir(rootfs, dir, strcmp(d, "tmp") == 0 ? 01777 : 0755) < 0)
			return -1;
	}
	if (pack_file(rootfs, BUSYBOX, 0755, BUSYBOX) < 0 || add_applets(rootfs) < 0)
		return -1;
	if (pack_symlink(rootfs, "/sbin/init", BUSYBOX) < 0 || add_debian_version(rootfs) < 0)
		return -1;
	if (pack_file(rootfs, "/boot/vmlinuz", 0644, kernel_image(ctx->kernel)) < 0 ||
	    pack_file(rootfs, "/boot/initrd.img", 0644, initrd) < 0)
		return -1;
	if (strcmp(ctx->firmware, "uefi") == 0)
		return 0; /* the boot loader lives on the EFI system partition (a hybrid disk has both) */
	_cleanup_free_ char *cmdline = base_kernel_cmdline(ctx->root_uuid);
	_cleanup_free_ char *conf = xasprintf("DEFAULT qvsa\n"
					      "PROMPT 0\n"
					      "TIMEOUT 0\n"
					      "SERIAL 0 115200\n"
					      "LABEL qvsa\n"
					      "  LINUX /boot/vmlinuz\n"
					      "  INITRD /boot/initrd.img\n"
					      "  APPEND %s\n",
					      cmdline);
	if (pack_data(rootfs, "/boot/extlinux/extlinux.conf", 0644, conf, strlen(conf)) < 0)
		return -1;
	/* GRUB (the host-tool assembly's BIOS loader; extlinux serves QVSA_ASSEMBLE=guestfs):
	 * no menu, serial and screen both, as extlinux above. */
	_cleanup_free_ char *grub = xasprintf("serial --unit=0 --speed=115200\n"
					      "terminal_input serial console\n"
					      "terminal_output serial console\n"
					      "set timeout=0\n"
					      "menuentry 'qVSA' {\n"
					      "\tlinux /boot/vmlinuz %s\n"
					      "\tinitrd /boot/initrd.img\n"
					      "}\n",
					      cmdline);
	return pack_data(rootfs, "/boot/grub/grub.cfg", 0644, grub, strlen(grub));
}

#define SYSTEMD_BOOT "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

/* systemd-boot as the removable-media loader (no NVRAM entry needed), with one entry. */
static int tiny_populate_esp(const struct base_ctx *ctx, struct pack *esp)
{
	if (!fs_exists(SYSTEMD_BOOT))
		return err_fail("UEFI boot loader '%s' is missing (install systemd-boot-efi)", SYSTEMD_BOOT);
	_cleanup_free_ char *initrd = xasprintf("%s/" BASE_INITRD_FILE, ctx->workdir);
	_cleanup_free_ char *cmdline = base_kernel_cmdline(ctx->root_uuid);
	_cleanup_free_ char *entry = xasprintf("title qVSA\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n", cmdline);
	static const char loader[] = "default qvsa.conf\ntimeout 0\nconsole-mode keep\n";
	if (pack_file(esp, "/EFI/BOOT/BOOTX64.EFI", 0644, SYSTEMD_BOOT) < 0 ||
	    pack_data(esp, "/loader/loader.conf", 0644, loader, strlen(loader)) < 0 ||
	    pack_data(esp, "/loader/entries/qvsa.conf", 0644, entry, strlen(entry)) < 0 ||
	    pack_file(esp, "/vmlinuz", 0644, kernel_image(ctx->kernel)) < 0 ||
	    pack_file(esp, "/initrd.img", 0644, initrd) < 0)
		return -1;
	return 0;
}

static const char *const tiny_modules[] = {
	"ext4", "crc32c_generic", /* root filesystem (ext4 checksums need crc32c) */
	"isofs", "vfat", "nls_cp437", "nls_utf8", /* NoCloud seed: iso9660 or vfat "cidata" */
	"sr_mod", "cdrom",        /* CD-ROM drives: vSphere's OVF environment, config-2, Azure's DVD */
	"udf",                    /* Azure's provisioning DVD is UDF */
	"af_packet",              /* DHCP client raw sockets (built in on most kernels) */
	NULL,
};

static const char *const tiny_templates[] = {"tiny-base", "bootstrap-agent", NULL};

const struct base_ops base_tiny_ops = {
	.name = "tiny",
	.kernel_package = "linux-image-amd64",
	.templates = tiny_templates,
	.modules = tiny_modules,
	.extlinux_dir = "/boot/extlinux",
	.initrd_path = "/boot/initrd.img",
	.verify_vcpus = 1,
	.verify_memory_mib = 1024,
	.verify_boot_s = 0,
	.open = tiny_open,
	.populate = tiny_populate,
	.populate_esp = tiny_populate_esp,
};
