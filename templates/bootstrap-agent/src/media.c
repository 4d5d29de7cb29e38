/* Media a platform attaches: NoCloud's cidata, OpenStack's config-2, Azure's
 * provisioning DVD, vSphere's OVF environment CD. Block devices are recognised
 * by the label in their first sectors (ISO9660 volume id, UDF volume id, FAT
 * label) without mounting anything; a medium is mounted read-only only when
 * its channel reads it. */
#include "channel.h"

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

#define AGENT_MAX_MEDIA_FILE (1u << 20)
#define AGENT_CD_SECTOR 2048

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

/* A UDF volume recognition sequence (ECMA-167 2/9) follows sector 16. */
static bool agent_udf_present(int fd)
{
	unsigned char d[8];
	for (int i = 0; i < 16; i++) {
		if (pread(fd, d, sizeof(d), 32768 + (off_t)i * AGENT_CD_SECTOR) != (ssize_t)sizeof(d))
			return false;
		if (memcmp(d + 1, "NSR02", 5) == 0 || memcmp(d + 1, "NSR03", 5) == 0)
			return true;
		if (memcmp(d + 1, "BEA01", 5) && memcmp(d + 1, "CD001", 5) && memcmp(d + 1, "CDW02", 5) &&
		    memcmp(d + 1, "BOOT2", 5) && memcmp(d + 1, "TEA01", 5))
			return false;
	}
	return false;
}

static uint32_t agent_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The UDF primary volume descriptor's volume identifier, found through the
 * anchor at sector 256 and the main volume descriptor sequence. */
static void agent_udf_label(int fd, char label[33])
{
	unsigned char s[AGENT_CD_SECTOR];
	label[0] = 0;
	if (pread(fd, s, sizeof(s), 256 * AGENT_CD_SECTOR) != (ssize_t)sizeof(s) || s[0] != 2 || s[1] != 0)
		return;
	uint32_t len = agent_le32(s + 16), loc = agent_le32(s + 20);
	for (uint32_t i = 0; i < len / AGENT_CD_SECTOR && i < 64; i++) {
		if (pread(fd, s, sizeof(s), (off_t)(loc + i) * AGENT_CD_SECTOR) != (ssize_t)sizeof(s))
			return;
		unsigned tag = s[0] | s[1] << 8;
		if (tag == 8)
			return; /* terminating descriptor */
		if (tag != 1)
			continue;
		/* dstring: compression id 8 (bytes) or 16 (UCS-2BE), used length last */
		const unsigned char *id = s + 24;
		size_t used = id[31], o = 0;
		if (used > 31)
			used = 31;
		for (size_t k = 1; k < used && o < 32; k += id[0] == 16 ? 2 : 1) {
			unsigned c = id[0] == 16 ? (unsigned)(id[k] << 8 | (k + 1 < used ? id[k + 1] : 0)) : id[k];
			label[o++] = c < 0x80 && c >= 0x20 ? (char)c : '?';
		}
		label[o] = 0;
		return;
	}
}

int agent_fs_probe(int fd, struct agent_medium *ret)
{
	char label[33];
	ret->udf = agent_udf_present(fd);
	if (agent_fs_label(fd, label) == 0) {
		unsigned char sig[6];
		bool iso = pread(fd, sig, sizeof(sig), 32768) == (ssize_t)sizeof(sig) && memcmp(sig + 1, "CD001", 5) == 0;
		ret->fs = iso ? AGENT_FS_ISO9660 : AGENT_FS_VFAT;
		snprintf(ret->label, sizeof(ret->label), "%s", label);
		return 0;
	}
	if (ret->udf) {
		ret->fs = AGENT_FS_UDF;
		agent_udf_label(fd, ret->label);
		return 0;
	}
	ret->fs = AGENT_FS_NONE;
	return agent_fail("no ISO9660, UDF or FAT filesystem");
}

static struct agent_medium *agent_media_next(struct agent_media *media)
{
	if (media->n == sizeof(media->m) / sizeof(media->m[0]))
		return NULL;
	struct agent_medium *m = &media->m[media->n++];
	*m = (struct agent_medium){ 0 };
	return m;
}

void agent_media_add_dir(struct agent_media *media, const char *dir, const char *label)
{
	struct agent_medium *m = agent_media_next(media);
	if (!m)
		return;
	m->fs = AGENT_FS_DIR;
	snprintf(m->label, sizeof(m->label), "%s", label);
	snprintf(m->name, sizeof(m->name), "dir");
	snprintf(m->source, sizeof(m->source), "%s", dir);
}

int agent_media_add_dirs(struct agent_media *media, const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return agent_fail_errno(errno, "listing '%s'", dir);
	for (int i = 0; i < n; i++) {
		struct stat st;
		char *path = agent_printf("%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			agent_media_add_dir(media, path, names[i]->d_name);
		free(path);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* /dev/NAME, or a private node made from /sys/class/block/NAME/dev when
 * devtmpfs has none. Returns 1 if ret_path is a node we created. */
static int agent_block_node(const char *name, const char *scratch, char *ret_path, size_t size)
{
	snprintf(ret_path, size, "/dev/%.200s", name);
	if (access(ret_path, F_OK) == 0)
		return 0;
	char sys[1024], *devno = NULL;
	unsigned maj, min;
	snprintf(sys, sizeof(sys), "/sys/class/block/%.200s/dev", name);
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

int agent_media_scan(struct agent_media *media)
{
	struct dirent **names = NULL;
	int n = scandir("/sys/class/block", &names, NULL, alphasort);
	if (n < 0)
		return agent_fail_errno(errno, "listing '/sys/class/block'");
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char dev[512];
		struct agent_medium found = { 0 };
		if (name[0] == '.' || agent_block_empty(name))
			goto next;
		int made = agent_block_node(name, "/run/qvsa-probe.dev", dev, sizeof(dev));
		if (made < 0)
			goto next;
		int fd = open(dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		bool hit = fd >= 0 && agent_fs_probe(fd, &found) == 0;
		if (fd >= 0)
			close(fd);
		if (made == 1)
			unlink(dev);
		struct agent_medium *m = hit ? agent_media_next(media) : NULL;
		if (m) {
			*m = found;
			snprintf(m->name, sizeof(m->name), "%.63s", name);
			snprintf(m->source, sizeof(m->source), "%s", name);
		}
	next:
		free(names[i]);
	}
	free(names);
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

int agent_medium_open(const struct agent_medium *m, const char *mountpoint, char *ret_dir, size_t size)
{
	if (m->fs == AGENT_FS_DIR) {
		snprintf(ret_dir, size, "%s", m->source);
		return 0;
	}
	/* { mount type, module }: the order in which the medium's kind is tried */
	static const char *const udf_first[][2] = { { "udf", "udf" }, { "iso9660", "isofs" }, { NULL, NULL } };
	static const char *const iso_first[][2] = { { "iso9660", "isofs" }, { "udf", "udf" }, { NULL, NULL } };
	static const char *const fat[][2] = { { "vfat", "vfat" }, { NULL, NULL } };
	const char *const(*types)[2] = m->udf ? udf_first : m->fs == AGENT_FS_VFAT ? fat : iso_first;
	char *scratch = agent_printf("%s.dev", mountpoint), dev[512];
	int made = agent_block_node(m->source, scratch, dev, sizeof(dev));
	free(scratch);
	if (made < 0)
		return agent_fail("no device node for %s", m->name);
	unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	mkdir("/run", 0755);
	int e = 0;
	if (mkdir(mountpoint, 0700) < 0 && errno != EEXIST) {
		e = errno;
		goto fail;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; types[i][0]; i++) {
			if (mount(dev, mountpoint, types[i][0], flags, NULL) == 0) {
				if (made == 1)
					unlink(dev);
				snprintf(ret_dir, size, "%s", mountpoint);
				return 0;
			}
			if (e == 0 || errno != ENODEV)
				e = errno;
			if (pass == 0 && errno == ENODEV)
				agent_modprobe(types[i][1]);
		}
	}
	rmdir(mountpoint);
fail:
	if (made == 1)
		unlink(dev);
	return agent_fail_errno(e, "mounting /dev/%s (%s%s)", m->name, types[0][0], types[1][0] ? ", ..." : "");
}

void agent_medium_close(const struct agent_medium *m, const char *mountpoint)
{
	if (m->fs == AGENT_FS_DIR)
		return;
	umount2(mountpoint, MNT_DETACH);
	rmdir(mountpoint);
}

int agent_medium_read(const char *dir, const char *rel, bool missing_ok, char **ret_text)
{
	char *path = agent_printf("%s/%s", dir, rel);
	int r;
	if (missing_ok && access(path, F_OK) != 0 && errno == ENOENT)
		r = 1;
	else
		r = agent_read_file(path, AGENT_MAX_MEDIA_FILE, ret_text);
	free(path);
	return r;
}

int agent_seed_read_dir(const char *dir, char **ret_user_data, char **ret_meta_data)
{
	char *ud = NULL, *md = NULL;
	if (agent_medium_read(dir, "user-data", false, &ud) < 0)
		return -1;
	if (agent_medium_read(dir, "meta-data", true, &md) < 0) {
		free(ud);
		return -1;
	}
	*ret_user_data = ud;
	*ret_meta_data = md;
	return 0;
}
