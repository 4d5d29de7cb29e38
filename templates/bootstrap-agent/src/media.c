/* Finding the cloud-init NoCloud seed: a seed directory, or a block device
 * (CD-ROM or disk) whose ISO9660 volume id or FAT label is "cidata". */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define AGENT_MAX_SEED_FILE (1u << 20)

/* Copy a fixed-width, space-padded label field and trim it. */
static void agent_trim_label(const unsigned char *src, size_t n, char label[33])
{
	memcpy(label, src, n);
	label[n] = 0;
	while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == 0))
		label[--n] = 0;
}

int agent_fs_label(int fd, char label[33])
{
	unsigned char buf[2048];
	/* ISO9660: the primary volume descriptor sits in sector 16 */
	if (pread(fd, buf, sizeof(buf), 32768) == (ssize_t)sizeof(buf) && buf[0] == 1 &&
	    memcmp(buf + 1, "CD001", 5) == 0) {
		agent_trim_label(buf + 40, 32, label);
		return 0;
	}
	/* FAT: the label is in the extended BIOS parameter block of sector 0 */
	if (pread(fd, buf, 512, 0) == 512 && buf[510] == 0x55 && buf[511] == 0xaa) {
		if (memcmp(buf + 82, "FAT32   ", 8) == 0 && buf[66] == 0x29) {
			agent_trim_label(buf + 71, 11, label);
			return 0;
		}
		if (memcmp(buf + 54, "FAT", 3) == 0 && buf[38] == 0x29) {
			agent_trim_label(buf + 43, 11, label);
			return 0;
		}
	}
	return agent_fail("no ISO9660 or FAT filesystem");
}

bool agent_label_is_cidata(const char *label) { return strcasecmp(label, "cidata") == 0; }

int agent_seed_read_dir(const char *dir, char **ret_user_data, char **ret_meta_data)
{
	char path[4096];
	char *ud = NULL, *md = NULL;
	snprintf(path, sizeof(path), "%s/user-data", dir);
	if (agent_read_file(path, AGENT_MAX_SEED_FILE, &ud) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/meta-data", dir);
	if (access(path, F_OK) == 0 && agent_read_file(path, AGENT_MAX_SEED_FILE, &md) < 0) {
		free(ud);
		return -1;
	}
	*ret_user_data = ud;
	*ret_meta_data = md;
	return 0;
}

/* Load a filesystem module when the kernel lacks it (best effort). */
static void agent_modprobe(const char *module)
{
	if (access("/sbin/modprobe", X_OK) == 0) {
		char *const argv[] = { "/sbin/modprobe", "-q", (char *)module, NULL };
		agent_run(argv, true);
	}
}

static int agent_mount_seed(const char *dev, const char *mountpoint)
{
	static const char *const types[][2] = { { "iso9660", "isofs" }, { "vfat", "vfat" } };
	unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	mkdir("/run", 0755);
	if (mkdir(mountpoint, 0700) < 0 && errno != EEXIST)
		return agent_fail_errno(errno, "creating '%s'", mountpoint);
	int e = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			if (mount(dev, mountpoint, types[i][0], flags, NULL) == 0)
				return 0;
			if (e == 0 || errno != ENODEV)
				e = errno;
			if (pass == 0 && errno == ENODEV)
				agent_modprobe(types[i][1]);
		}
	}
	rmdir(mountpoint);
	return agent_fail_errno(e, "mounting '%s' (iso9660, vfat)", dev);
}

/* /dev/NAME, or a private node made from /sys/class/block/NAME/dev when
 * devtmpfs has none. Returns 1 if ret_path is a node we created. */
static int agent_block_node(const char *name, const char *scratch, char *ret_path, size_t size)
{
	snprintf(ret_path, size, "/dev/%s", name);
	if (access(ret_path, F_OK) == 0)
		return 0;
	char sys[512], *devno = NULL;
	unsigned maj, min;
	snprintf(sys, sizeof(sys), "/sys/class/block/%s/dev", name);
	if (agent_read_file(sys, 64, &devno) < 0 || sscanf(devno, "%u:%u", &maj, &min) != 2) {
		free(devno);
		return -1;
	}
	free(devno);
	snprintf(ret_path, size, "%s", scratch);
	unlink(ret_path);
	if (mknod(ret_path, S_IFBLK | 0600, makedev(maj, min)) < 0)
		return -1;
	return 1;
}

/* Unattached loop devices and CD drives without a disc have size 0. */
static bool agent_block_empty(const char *name)
{
	char *path = agent_printf("/sys/class/block/%s/size", name), *size = NULL;
	bool empty = agent_read_file(path, 64, &size) == 0 && strtoull(size, NULL, 10) == 0;
	free(path);
	free(size);
	return empty;
}

/* Scan once; 0 and the seed when found, 1 when no cidata device, -1 on a
 * device that is labelled cidata but cannot be read. */
static int agent_seed_scan(const char *mountpoint, char **ret_ud, char **ret_md, unsigned *ret_seen)
{
	struct dirent **names = NULL;
	int n = scandir("/sys/class/block", &names, NULL, alphasort);
	if (n < 0)
		return agent_fail_errno(errno, "listing '/sys/class/block'");
	int rc = 1;
	char scratch[512];
	snprintf(scratch, sizeof(scratch), "%s.dev", mountpoint);
	*ret_seen = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char dev[512], label[33];
		if (rc != 1 || name[0] == '.' || agent_block_empty(name))
			continue;
		int made = agent_block_node(name, scratch, dev, sizeof(dev));
		if (made < 0)
			continue;
		(*ret_seen)++;
		int fd = open(dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		bool hit = fd >= 0 && agent_fs_label(fd, label) == 0 && agent_label_is_cidata(label);
		if (fd >= 0)
			close(fd);
		if (hit) {
			fprintf(stderr, "qvsa-agent: seed found on /dev/%s (label %s)\n", name, label);
			rc = agent_mount_seed(dev, mountpoint);
			if (rc == 0) {
				rc = agent_seed_read_dir(mountpoint, ret_ud, ret_md);
				umount2(mountpoint, MNT_DETACH);
				rmdir(mountpoint);
			}
		}
		if (made == 1)
			unlink(dev);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int agent_seed_from_devices(const char *mountpoint, unsigned wait_s, char **ret_user_data,
			    char **ret_meta_data)
{
	unsigned seen = 0;
	for (unsigned t = 0;; t++) {
		/* CD-ROM and disk drivers may still be probing early in boot */
		int r = agent_seed_scan(mountpoint, ret_user_data, ret_meta_data, &seen);
		if (r <= 0)
			return r;
		if (t >= wait_s)
			break;
		sleep(1);
	}
	return agent_fail("no block device labelled cidata (%u devices checked over %u s)", seen,
			  wait_s);
}
