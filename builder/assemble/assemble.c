#include "assemble.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "guestfs_util.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "runs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A libguestfs error after SIGINT/SIGTERM is the signal's doing (a
 * terminal's Ctrl-C reaches the appliance too, or the watch below killed
 * it): say "interrupted", not libguestfs's appliance-failure advice. */
static int asm_gfs_fail(guestfs_h *g, const char *what)
{
	if (qvsa_interrupted)
		return check_interrupted();
	return gfs_fail(g, what);
}

/* Our QEMU children (the appliance), found by parent pid in /proc: each
 * gets SIGTERM (kill) or has its command line searched for libguestfs's
 * socket folder, which goes to *ret_sockdir (root's is /tmp/libguestfsXXXXXX,
 * whatever the handle's tmpdir; libguestfs has no call that names it). */
static void appliance_each(bool kill_it, char **ret_sockdir)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	for (struct dirent *e; d && (e = readdir(d));) {
		char path[300], buf[512], comm[64];
		long pid = strtol(e->d_name, NULL, 10), ppid = 0;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			continue;
		buf[n] = 0;
		char *close_paren = strrchr(buf, ')');
		if (!close_paren || sscanf(buf, "%*d (%63[^)]", comm) != 1 || sscanf(close_paren + 1, " %*c %ld", &ppid) != 1)
			continue;
		if (ppid != (long)getpid() || strncmp(comm, "qemu", 4) != 0)
			continue;
		if (kill_it) {
			kill((pid_t)pid, SIGTERM);
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		_cleanup_free_ char *cmd = NULL;
		size_t len = 0;
		if (fs_read_file(path, &cmd, &len) < 0) {
			err_clear();
			continue;
		}
		for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
			char *p = strstr(cmd + i, "path=/");
			char *end = p ? strstr(p, "/guestfsd.sock") : NULL;
			if (end && !*ret_sockdir)
				*ret_sockdir = xasprintf("%.*s", (int)(end - p - 5), p + 5);
		}
	}
}

static void kill_appliance(void) { appliance_each(true, NULL); }

/* The socket folder, registered for the next run while the appliance runs. */
static void sockdir_forget(char **dir)
{
	if (*dir)
		runs_unregister_path(*dir);
	free(*dir);
	*dir = NULL;
}

/* While libguestfs works, a thread that stops the appliance on a signal:
 * launch otherwise waits out its own timeouts (13 s measured) first. */
struct gfs_watch {
	pthread_t th;       /* the watching thread */
	volatile int stop;  /* set by watch_end */
	int started;        /* th runs */
};

static void *watch_main(void *arg)
{
	struct gfs_watch *w = arg;
	while (!w->stop) {
		if (qvsa_interrupted) {
			kill_appliance();
			return NULL;
		}
		usleep(100 * 1000);
	}
	return NULL;
}

static void watch_end(struct gfs_watch *w)
{
	if (!w->started)
		return;
	w->stop = 1;
	pthread_join(w->th, NULL);
	w->started = 0;
}

/* Write the syslinux boot code into the first 440 bytes of the disk (the rest
 * of sector 0 is the partition table, which must stay). */
static int write_boot_code(const char *raw, const char *bin)
{
	_cleanup_free_ char *code = NULL;
	size_t len = 0;
	if (fs_read_file(bin, &code, &len) < 0)
		return -1;
	if (len == 0 || len > 440)
		return err_fail("boot code '%s': %zu bytes, expected at most 440", bin, len);
	_cleanup_close_ int fd = open(raw, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, code, len, 0) != (ssize_t)len)
		return err_errno(errno, "writing boot code to '%s'", raw);
	if (fsync(fd) < 0)
		return err_errno(errno, "writing boot code to '%s'", raw);
	return 0;
}

/* BIOS: one bootable partition, MBR or GPT (then marked legacy-BIOS-bootable for gptmbr.bin). */
static int partition_bios(guestfs_h *g, const struct assemble_params *p, const char *dev, const char *what)
{
	bool gpt = strcmp(p->partition_table, "gpt") == 0;
	log_phase_status("%s: partitioning (%s)", what, p->partition_table);
	if (guestfs_part_disk(g, dev, gpt ? "gpt" : "msdos") < 0)
		return asm_gfs_fail(g, what);
	if (gpt) {
		/* Legacy BIOS bootable: gptmbr.bin boots the partition carrying this attribute (bit 2). */
		if (guestfs_part_set_gpt_attributes(g, dev, 1, 1ULL << 2) < 0)
			return asm_gfs_fail(g, what);
	} else if (guestfs_part_set_bootable(g, dev, 1, 1) < 0) {
		return asm_gfs_fail(g, what);
	}
	return 0;
}

/* UEFI: GPT with an EFI system partition (FAT) first and the root filesystem after it. */
static int partition_uefi(guestfs_h *g, const char *dev, const char *esp, const char *what)
{
	const int64_t start = 2048, esp_end = start + ASSEMBLE_ESP_MIB * 2048 - 1;
	log_phase_status("%s: partitioning (gpt, EFI system partition)", what);
	if (guestfs_part_init(g, dev, "gpt") < 0 || guestfs_part_add(g, dev, "p", start, esp_end) < 0 ||
	    guestfs_part_add(g, dev, "p", esp_end + 1, -2048) < 0 ||
	    guestfs_part_set_gpt_type(g, dev, 1, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") < 0 ||
	    guestfs_part_set_name(g, dev, 1, "EFI system partition") < 0 ||
	    guestfs_mkfs_opts(g, "vfat", esp, GUESTFS_MKFS_OPTS_LABEL, "ESP", -1) < 0)
		return asm_gfs_fail(g, what);
	return 0;
}

/* Partition, format and fill one disk of a launched appliance (dev: "/dev/sdX"). */
static int assemble_one(guestfs_h *g, const struct assemble_params *p, const char *dev)
{
	const char *what = p->what ? p->what : p->raw_path;
	bool uefi = strcmp(p->firmware, "uefi") == 0;
	_cleanup_free_ char *part1 = xasprintf("%s1", dev), *part2 = xasprintf("%s2", dev);
	if (uefi ? partition_uefi(g, dev, part1, what) < 0 : partition_bios(g, p, dev, what) < 0)
		return -1;
	const char *root = uefi ? part2 : part1;

	log_phase_status("%s: making %s", what, p->filesystem);
	/* syslinux cannot read ext4's 64bit and metadata_csum features. */
	if (guestfs_mkfs_opts(g, p->filesystem, root, GUESTFS_MKFS_OPTS_FEATURES, "^64bit,^metadata_csum",
			      GUESTFS_MKFS_OPTS_LABEL, p->label, -1) < 0)
		return asm_gfs_fail(g, what);
	if (guestfs_set_uuid(g, root, p->fs_uuid) < 0 || guestfs_mount(g, root, "/") < 0)
		return asm_gfs_fail(g, what);

	log_phase_status("%s: copying the root filesystem", what);
	if (guestfs_tar_in_opts(g, p->rootfs_tar, "/", -1) < 0)
		return asm_gfs_fail(g, what);
	if (uefi) {
		log_phase_status("%s: filling the EFI system partition", what);
		if (guestfs_mkdir_p(g, "/boot/efi") < 0 || guestfs_mount(g, part1, "/boot/efi") < 0 ||
		    guestfs_tar_in_opts(g, p->esp_tar, "/boot/efi", -1) < 0)
			return asm_gfs_fail(g, what);
	} else {
		log_phase_status("%s: installing extlinux", what);
		if (guestfs_extlinux(g, p->bootloader_dir) < 0)
			return asm_gfs_fail(g, what);
	}
	if (guestfs_umount_all(g) < 0)
		return asm_gfs_fail(g, what);
	return 0;
}

bool assemble_userns_works(void)
{
	static int works = -1; /* not yet asked */
	if (works < 0) {
		const char *argv[] = {"unshare", "--map-root-user", "true", NULL};
		works = proc_have("unshare") && proc_run(argv, NULL, NULL) == 0;
		if (!works) {
			log_debug("assemble: no user namespace (%s): libguestfs assembles", err_msg() ? err_msg() : "no unshare");
			err_clear();
		}
	}
	return works;
}

int assemble_method(const char **ret)
{
	const char *m = getenv("QVSA_ASSEMBLE");
	/* The host path gives the unpacked tree root's owners (mke2fs -d copies
	 * them): as root, or as root of a user namespace (assemble_host.c). */
	if (!m || !*m)
		m = geteuid() == 0 || assemble_userns_works() ? "host" : "guestfs";
	if (strcmp(m, "host") != 0 && strcmp(m, "guestfs") != 0)
		return err_input("QVSA_ASSEMBLE '%s': expected 'host' or 'guestfs'", m);
	*ret = m;
	return 0;
}

int assemble_disks(const struct assemble_params *ps, size_t n)
{
	const char *m = NULL;
	if (assemble_method(&m) < 0)
		return -1;
	if (strcmp(m, "guestfs") == 0)
		return assemble_disks_guestfs(ps, n);
	for (size_t i = 0; i < n; i++)
		if (assemble_disk_host(&ps[i]) < 0 || check_interrupted() < 0)
			return -1;
	return 0;
}

int assemble_disks_guestfs(const struct assemble_params *ps, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].firmware, ASSEMBLE_HYBRID) == 0)
			return err_input("%s: one disk for BIOS and UEFI targets (disk.partition_table: gpt) is made "
					 "by the host-tool assembly only (as root, or in a user namespace; without QVSA_ASSEMBLE=guestfs); "
					 "with partition_table: mbr each firmware gets its own disk",
					 ps[i].what ? ps[i].what : ps[i].raw_path);
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].firmware, "bios") == 0 && !ps[i].bootloader_dir)
			return err_input("%s: the base boots BIOS through GRUB only, which the host-tool assembly "
					 "installs (without QVSA_ASSEMBLE=guestfs)", ps[i].what ? ps[i].what : ps[i].raw_path);
	for (size_t i = 0; i < n; i++)
		if (ps[i].rootfs_tree)
			return err_input("%s: a base that hands over a root tree (kind 'debian') is assembled with host "
					 "tools only (without QVSA_ASSEMBLE=guestfs)", ps[i].what ? ps[i].what : ps[i].raw_path);
	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int fd = open(ps[i].raw_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)ps[i].size) < 0)
			return err_errno(errno, "creating disk '%s'", ps[i].raw_path);
	}
	const char *what = n == 1 && ps[0].what ? ps[0].what : "assembling disks";
	_cleanup_(gfs_close) guestfs_h *g = gfs_open(what);
	if (!g)
		return -1;
	/* libguestfs's temp folder inside the build's registered work folder
	 * (runs.h): a kill -9 leaves nothing there the next run misses. */
	if (ps[0].workdir)
		guestfs_set_tmpdir(g, ps[0].workdir);
	_cleanup_(watch_end) struct gfs_watch watch = {0};
	watch.started = pthread_create(&watch.th, NULL, watch_main, &watch) == 0;
	for (size_t i = 0; i < n; i++)
		if (guestfs_add_drive_opts(g, ps[i].raw_path, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1) < 0)
			return asm_gfs_fail(g, ps[i].raw_path);
	log_phase_status("starting the libguestfs appliance%s", image_force_tcg() ? " (TCG)" : "");
	if (guestfs_launch(g) < 0)
		return asm_gfs_fail(g, what);
	_cleanup_(sockdir_forget) char *sockdir = NULL;
	appliance_each(false, &sockdir);
	if (sockdir)
		runs_register_path(sockdir);
	/* Devices come back in the order the drives were added. */
	_cleanup_strv_ char **devs = guestfs_list_devices(g);
	if (!devs)
		return asm_gfs_fail(g, what);
	for (size_t i = 0; i < n; i++) {
		if (!devs[i])
			return err_fail("%s: libguestfs shows fewer devices than disks added", what);
		if (assemble_one(g, &ps[i], devs[i]) < 0 || check_interrupted() < 0)
			return -1;
	}
	if (guestfs_shutdown(g) < 0)
		return asm_gfs_fail(g, what);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ps[i].firmware, "uefi") == 0)
			continue;
		bool gpt = strcmp(ps[i].partition_table, "gpt") == 0;
		_cleanup_free_ char *bin = xasprintf("%s/%s", ps[i].syslinux_dir, gpt ? "gptmbr.bin" : "mbr.bin");
		if (write_boot_code(ps[i].raw_path, bin) < 0)
			return -1;
	}
	return 0;
}
