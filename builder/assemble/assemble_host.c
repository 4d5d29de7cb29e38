/* Assembly with host tools on the image file: sfdisk writes the partition
 * table, mke2fs -d fills ext4 straight into the root partition's byte range,
 * GRUB's boot sector and core image go in for BIOS, mtools writes the ESP for
 * UEFI. No VM, no mount: seconds per disk. */
#include "assemble_host.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRUB_PC_DIR "/usr/lib/grub/i386-pc"

/* What GRUB needs built in: it reads no module from the disk. */
static const char *const grub_modules[] = {
	"biosdisk", "part_msdos", "part_gpt", "ext2", "search", "search_fs_uuid", "normal", "linux",
	"serial", "terminal", "configfile", "echo", "test",
};

/* A scratch tree removed on every exit path. */
static void rm_treep(char **dir)
{
	if (*dir) {
		fs_rm_rf(*dir);
		free(*dir);
	}
}
#define _cleanup_tree_ _cleanup_(rm_treep)

/* Every tool through asm_tool_argv: its clock is the build's epoch and the
 * caller's environment cannot change what it writes. input: its stdin, or NULL. */
static int run_tool(const struct assemble_params *p, const char *const *argv, const char *input)
{
	_cleanup_strv_ char **v = asm_tool_argv(p->epoch, argv);
	return proc_run_input((const char *const *)v, NULL, input, NULL);
}

/* run_tool for the steps where owners count (unpacking the tree, mke2fs -d
 * copying it). A non-root caller runs them in a user namespace that maps
 * its own uid and gid to root (`unshare --map-root-user`, as mkosi and
 * systemd-repart build rootless): the files tar makes are the caller's on
 * the host and root's inside, which is what mke2fs records. Only root is
 * mapped: a file owned by another user makes tar fail, with a hint. */
static int run_tool_as_root(const struct assemble_params *p, const char *const *argv)
{
	if (geteuid() == 0)
		return run_tool(p, argv, NULL);
	_cleanup_strv_ char **v = asm_tool_argv(p->epoch, argv);
	size_t n = 0;
	while (v[n])
		n++;
	_cleanup_free_ const char **ns = calloc(n + 3, sizeof(*ns));
	if (!ns)
		abort();
	ns[0] = "unshare";
	ns[1] = "--map-root-user";
	for (size_t i = 0; i < n; i++)
		ns[i + 2] = v[i];
	if (proc_run_input(ns, NULL, NULL, NULL) < 0) {
		if (err_msg() && strstr(err_msg(), "Cannot change ownership"))
			err_prefix("a non-root build maps only root into its user namespace, and an archive holds files "
				   "of other owners (build as root, or QVSA_ASSEMBLE=guestfs)");
		return -1;
	}
	return 0;
}

/* Unpack a deterministic tar into dir, keeping owners, modes, mtimes and
 * extended attributes (file capabilities); the clean environment also keeps
 * TAR_OPTIONS out. A file already in dir is replaced (GNU tar's default
 * unlinks it and makes a new one; --overwrite would write it in place):
 * dir may be a base's tree hard-linked to its cache. */
static int unpack(const struct assemble_params *p, const char *tar, const char *dir)
{
	if (fs_mkdir_p(dir, 0755) < 0)
		return -1;
	const char *argv[] = {"tar", "-x", "-p", "--same-owner", "--numeric-owner", "--xattrs",
			      "--xattrs-include=*", "-f", tar, "-C", dir, NULL};
	return run_tool_as_root(p, argv);
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off, const char *raw)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		return err_errno(errno, "writing '%s' at %" PRIu64, raw, off);
	return 0;
}

/* The debugfs script being written by times_entry (nftw passes no user pointer). */
static __thread FILE *times_script;
static __thread size_t times_prefix;
static __thread int64_t times_epoch;

static int times_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	const char *rel = path + times_prefix;
	if (strpbrk(rel, "\"\n"))
		return err_fail("'%s': a name debugfs cannot be told about", path), 1;
	/* A regular file's mtime is clamped to the epoch, not set to it: a
	 * base's files keep their packages' times, which Python's bytecode
	 * caches are checked against (and every file of qvsa's archive already
	 * has the epoch). Directories and links get the epoch: unpacking gave
	 * them the moment of the build, even before an epoch in the future. */
	int64_t mtime = S_ISREG(st->st_mode) && st->st_mtime < times_epoch ? (int64_t)st->st_mtime : times_epoch;
	fprintf(times_script, "sif \"%s\" ctime @%" PRId64 "\nsif \"%s\" atime @%" PRId64 "\n",
		*rel ? rel : "/", times_epoch, *rel ? rel : "/", times_epoch);
	if (mtime != (int64_t)st->st_mtime)
		fprintf(times_script, "sif \"%s\" mtime @%" PRId64 "\n", *rel ? rel : "/", mtime);
	return 0;
}

/* mke2fs -d copies each file's times from the unpacked tree: ctime and atime
 * are the moment of unpacking, and a directory tar made implicitly or filled
 * after restoring its time has that moment as mtime. So ctime and atime get
 * the build's epoch, and so do the mtimes of directories and links; a
 * regular file's mtime is clamped to it (as SOURCE_DATE_EPOCH clamping
 * does): every file of a qvsa archive has the epoch as mtime (pack.h), a
 * base puts the epoch on the files it writes, and a base tree's files keep
 * their older times (debugfs on the partition's byte range: no mount). The
 * superblock's "lifetime writes" counts what mke2fs wrote, which depends on
 * how the unpacked tree's file system reports holes (tmpfs and ext4
 * differ): zero (e2fsprogs then stops counting). */
static int fix_times(const struct assemble_params *p, const struct asm_layout *l, const char *tree)
{
	_cleanup_free_ char *script = NULL;
	size_t len = 0;
	times_script = open_memstream(&script, &len);
	if (!times_script)
		abort();
	fputs("ssv kbytes_written 0\n", times_script);
	times_prefix = strlen(tree);
	times_epoch = p->epoch;
	int rc = nftw(tree, times_entry, 16, FTW_PHYS);
	fclose(times_script);
	times_script = NULL;
	if (rc != 0)
		return rc < 0 ? err_errno(errno, "walking '%s'", tree) : -1;
	_cleanup_free_ char *path = xasprintf("%s/debugfs.txt", p->workdir);
	if (fs_write_file_atomic(path, script, len, 0644) < 0)
		return -1;
	_cleanup_free_ char *dev = xasprintf("%s?offset=%" PRIu64, p->raw_path, l->parts[l->root].start * ASM_SECTOR);
	/* Its clock, too, writes the superblock's last write time. */
	const char *argv[] = {"debugfs", "-w", "-f", path, dev, NULL};
	rc = run_tool(p, argv, NULL);
	unlink(path);
	return rc;
}

/* GRUB i386-pc: a core image holding every module it needs, in the MBR gap or
 * the BIOS boot partition, and boot.img in the first sector. */
static int install_grub(const struct assemble_params *p, const struct asm_layout *l)
{
	if (!fs_exists(GRUB_PC_DIR "/boot.img"))
		return err_fail("BIOS boot loader '%s' is missing (install grub-pc-bin)", GRUB_PC_DIR);
	_cleanup_free_ char *early = xasprintf("%s/grub-early.cfg", p->workdir);
	_cleanup_free_ char *core_path = xasprintf("%s/core.img", p->workdir);
	_cleanup_free_ char *cfg = asm_grub_early_cfg(p->fs_uuid);
	if (fs_write_file_atomic(early, cfg, strlen(cfg), 0644) < 0)
		return -1;
	const char *argv[8 + ELEMENTSOF(grub_modules) + 4] = {"grub-mkimage", "-O", "i386-pc", "-d", GRUB_PC_DIR,
							      "-c", early, "-p", "/boot/grub", "-o", core_path};
	size_t n = 11;
	for (size_t i = 0; i < ELEMENTSOF(grub_modules); i++)
		argv[n++] = grub_modules[i];
	argv[n] = NULL;
	int rc = run_tool(p, argv, NULL);
	unlink(early);
	_cleanup_free_ char *core = NULL, *boot = NULL;
	size_t core_len = 0, boot_len = 0;
	if (rc == 0)
		rc = fs_read_file(core_path, &core, &core_len);
	unlink(core_path);
	if (rc < 0 || fs_read_file(GRUB_PC_DIR "/boot.img", &boot, &boot_len) < 0)
		return -1;
	size_t padded = (core_len + ASM_SECTOR - 1) / ASM_SECTOR * ASM_SECTOR;
	if (padded / ASM_SECTOR > l->core_max)
		return err_fail("GRUB core image: %zu sectors, only %" PRIu64 " fit before the root partition",
				padded / ASM_SECTOR, l->core_max);
	char *grown = realloc(core, padded);
	if (!grown)
		abort();
	core = grown;
	memset(core + core_len, 0, padded - core_len);

	_cleanup_close_ int fd = open(p->raw_path, O_RDWR | O_CLOEXEC);
	unsigned char sector0[ASM_SECTOR];
	if (fd < 0 || pread(fd, sector0, sizeof(sector0), 0) != (ssize_t)sizeof(sector0))
		return err_errno(errno, "reading the boot sector of '%s'", p->raw_path);
	if (asm_grub_patch(sector0, (unsigned char *)boot, boot_len, (unsigned char *)core, padded, l->core_sector) < 0)
		return -1;
	if (write_at(fd, core, padded, l->core_sector * ASM_SECTOR, p->raw_path) < 0 ||
	    write_at(fd, sector0, sizeof(sector0), 0, p->raw_path) < 0)
		return -1;
	return 0;
}

/* A growing NULL-terminated argument vector of borrowed or owned strings. */
struct esp_argv {
	const char **v; /* the arguments */
	size_t n;       /* used, without the NULL */
	char **owned;   /* those to free */
	size_t n_owned; /* used entries of owned */
};

static void esp_argv_add(struct esp_argv *a, const char *s, bool own)
{
	a->v = realloc(a->v, (a->n + 2) * sizeof(*a->v));
	if (!a->v)
		abort();
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	if (own) {
		a->owned = realloc(a->owned, (a->n_owned + 1) * sizeof(*a->owned));
		if (!a->owned)
			abort();
		a->owned[a->n_owned++] = (char *)s;
	}
}

static void esp_argv_free(struct esp_argv *a)
{
	for (size_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
	free(a->owned);
	free(a->v);
}

/* One folder of the ESP tree (rel: "" or "/EFI/BOOT"): its subfolders made,
 * its files copied, then the subfolders filled, all in name order. mcopy -s
 * would copy in readdir order, which differs between file systems (tmpfs
 * lists newest first): that order is the FAT's entry and cluster order. */
static int esp_fill_dir(const struct assemble_params *p, const char *img, const char *tree, const char *rel)
{
	_cleanup_free_ char *dir = xasprintf("%s%s", tree, rel);
	struct dirent **ents = NULL;
	int ne = scandir(dir, &ents, NULL, alphasort);
	if (ne < 0)
		return err_errno(errno, "listing '%s'", dir);
	struct esp_argv mmd = {0}, mcopy = {0}, subs = {0};
	const char *const head[] = {"-i", img};
	esp_argv_add(&mmd, "mmd", false);
	esp_argv_add(&mcopy, "mcopy", false);
	esp_argv_add(&mcopy, "-m", false); /* the tar's mtimes (the epoch), not mcopy's clock */
	for (size_t i = 0; i < ELEMENTSOF(head); i++) {
		esp_argv_add(&mmd, head[i], false);
		esp_argv_add(&mcopy, head[i], false);
	}
	size_t n_head = mcopy.n;
	int rc = 0;
	for (int i = 0; i < ne; i++) {
		const char *name = ents[i]->d_name;
		struct stat st;
		char *path = xasprintf("%s/%s", dir, name);
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			free(path);
		} else if (rc == 0 && lstat(path, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
			if (S_ISDIR(st.st_mode)) {
				esp_argv_add(&mmd, xasprintf("::%s/%s", rel, name), true);
				esp_argv_add(&subs, xasprintf("%s/%s", rel, name), true);
				free(path);
			} else {
				esp_argv_add(&mcopy, path, true);
			}
		} else {
			if (rc == 0)
				rc = err_fail("'%s': the EFI system partition holds only folders and files", path);
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	_cleanup_free_ char *dest = xasprintf("::%s/", rel);
	esp_argv_add(&mcopy, dest, false);
	if (rc == 0 && subs.n > 0)
		rc = run_tool(p, mmd.v, NULL);
	if (rc == 0 && mcopy.n > n_head + 1)
		rc = run_tool(p, mcopy.v, NULL);
	for (size_t i = 0; rc == 0 && i < subs.n; i++)
		rc = esp_fill_dir(p, img, tree, subs.v[i]);
	esp_argv_free(&mmd);
	esp_argv_free(&mcopy);
	esp_argv_free(&subs);
	return rc;
}

/* The ESP: FAT made by mformat in its byte range, with a serial derived from
 * the build, filled by mmd and mcopy. */
static int fill_esp(const struct assemble_params *p, const struct asm_layout *l)
{
	const struct asm_part *esp = asm_layout_part(l, ASM_ROLE_ESP);
	_cleanup_tree_ char *tree = xasprintf("%s/esp-tree", p->workdir);
	if (unpack(p, p->esp_tar, tree) < 0)
		return -1;
	_cleanup_free_ char *img = xasprintf("%s@@%" PRIu64, p->raw_path, esp->start * ASM_SECTOR);
	_cleanup_free_ char *total = xasprintf("%" PRIu64, esp->sectors);
	_cleanup_free_ char *hidden = xasprintf("%" PRIu64, esp->start);
	char serial[37];
	asm_guid(p->guid_seed, "esp serial", serial);
	serial[8] = 0;
	/* The geometry is nominal (UEFI reads LBA); -H: sectors before the partition. */
	const char *fmt[] = {"mformat", "-i", img, "-T", total, "-h", "64", "-s", "32", "-H", hidden,
			     "-N", serial, "-v", "ESP", "::", NULL};
	if (run_tool(p, fmt, NULL) < 0)
		return -1;
	return esp_fill_dir(p, img, tree, "");
}

int assemble_disk_host(const struct assemble_params *p)
{
	const char *what = p->what ? p->what : p->raw_path;
	struct asm_layout l;
	if (asm_layout_make(p, &l) < 0)
		return -1;
	{
		_cleanup_close_ int fd = open(p->raw_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)p->size) < 0)
			return err_errno(errno, "creating disk '%s'", p->raw_path);
	}
	log_phase_status("%s: partitioning (%s%s)", what, l.gpt ? "gpt" : "mbr",
			 l.uefi && l.bios ? ", BIOS boot and EFI system partitions" : l.uefi ? ", EFI system partition" : "");
	_cleanup_free_ char *script = asm_sfdisk_script(p, &l);
	_cleanup_free_ char *script_path = xasprintf("%s/sfdisk.txt", p->workdir);
	if (fs_write_file_atomic(script_path, script, strlen(script), 0644) < 0)
		return -1;
	const char *sf[] = {"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", p->raw_path, NULL};
	int rc = run_tool(p, sf, script_path);
	unlink(script_path);
	if (rc < 0) {
		err_prefix("%s: partitioning", what);
		return -1;
	}

	log_phase_status("%s: making %s from the root filesystem archive", what, p->filesystem);
	{
		/* The base's tree, which its owner removes, or a scratch one. */
		_cleanup_tree_ char *scratch = p->rootfs_tree ? NULL : xasprintf("%s/root-tree", p->workdir);
		const char *tree = p->rootfs_tree ? p->rootfs_tree : scratch;
		if (unpack(p, p->rootfs_tar, tree) < 0) {
			err_prefix("%s: unpacking the root filesystem", what);
			return -1;
		}
		_cleanup_strv_ char **argv = asm_mke2fs_argv(p, &l, tree);
		if (run_tool_as_root(p, (const char *const *)argv) < 0 || fix_times(p, &l, tree) < 0) {
			err_prefix("%s: making %s", what, p->filesystem);
			return -1;
		}
	}
	if (l.uefi) {
		log_phase_status("%s: filling the EFI system partition", what);
		rc = fill_esp(p, &l);
	}
	if (rc == 0 && l.bios) {
		log_phase_status("%s: installing GRUB (i386-pc)", what);
		rc = install_grub(p, &l);
	}
	if (rc < 0)
		err_prefix("%s", what);
	return rc;
}
