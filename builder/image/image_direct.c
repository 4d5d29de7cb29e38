/* Reading a few files from a disk image without starting an appliance:
 * qemu-img turns the image (any format, backing chain included) into a
 * private sparse raw copy, the partition table is parsed here, and
 * e2fsprogs' debugfs reads the ext2/3/4 root. A journal left unreplayed by
 * a guest that powered off is replayed on the copy first, as the kernel
 * would on mount. A symlink with a relative target is followed, as the
 * guest would. Whatever this reader cannot do exactly (XFS, an external
 * journal, a missing tool, a root it cannot find, an absolute or escaping
 * symlink) it declines, and the caller reads that disk through libguestfs
 * instead. */
#include "image.h"
#include "image_private.h"
#include "bytes.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Sector size of every disk qvsa writes and QEMU presents. */
#define SECTOR 512
/* More partitions than any qvsa image has: a table claiming more is not ours. */
#define MAX_PARTS 128

#define EXT_MAGIC 0xEF53
#define EXT_INCOMPAT_RECOVER 0x0004     /* the journal holds transactions not yet written home */
#define EXT_INCOMPAT_JOURNAL_DEV 0x0008 /* an external journal device */

/* Paths read in one go (the check reads qvsa's 3 and its base's). */
#define MAX_PATHS 16

/* Where a file system may start, in bytes, and its length (0: to the end). */
struct part {
	uint64_t off;  /* byte offset in the raw disk */
	uint64_t size; /* bytes; 0 when unknown (whole disk) */
};

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t r = pread(fd, buf, len, (off_t)off);
	return r == (ssize_t)len ? 0 : -1;
}

int image_partitions(int fd, uint64_t *offs, uint64_t *sizes, size_t max, size_t *ret_n)
{
	unsigned char mbr[SECTOR];
	size_t n = 0;
	if (pread_all(fd, mbr, sizeof(mbr), 0) < 0 || mbr[510] != 0x55 || mbr[511] != 0xAA) {
		*ret_n = 0; /* no table: a file system on the whole disk, if any */
		return 0;
	}
	bool gpt = false;
	for (int i = 0; i < 4; i++)
		gpt |= mbr[446 + 16 * i + 4] == 0xEE;
	if (!gpt) {
		for (int i = 0; i < 4; i++) {
			const unsigned char *e = mbr + 446 + 16 * i;
			uint8_t type = e[4];
			/* Logical partitions are not followed: the caller declines if the root is not found. */
			if (type == 0 || type == 0x05 || type == 0x0f || type == 0x85 || le32(e + 8) == 0)
				continue;
			if (n < max) {
				offs[n] = (uint64_t)le32(e + 8) * SECTOR;
				sizes[n] = (uint64_t)le32(e + 12) * SECTOR;
			}
			n++;
		}
		*ret_n = n;
		return n <= max ? 0 : -1;
	}
	unsigned char hdr[SECTOR];
	if (pread_all(fd, hdr, sizeof(hdr), SECTOR) < 0 || memcmp(hdr, "EFI PART", 8) != 0)
		return -1;
	uint64_t lba = le64(hdr + 72);
	uint32_t count = le32(hdr + 80), esize = le32(hdr + 84);
	if (esize < 128 || esize > 4096 || count > 1024)
		return -1;
	_cleanup_free_ unsigned char *ents = malloc((size_t)count * esize);
	if (!ents)
		abort();
	if (pread_all(fd, ents, (size_t)count * esize, lba * SECTOR) < 0)
		return -1;
	static const unsigned char unused[16];
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *e = ents + (size_t)i * esize;
		if (memcmp(e, unused, 16) == 0)
			continue;
		uint64_t first = le64(e + 32), last = le64(e + 40);
		if (last < first)
			return -1;
		if (n < max) {
			offs[n] = first * SECTOR;
			sizes[n] = (last - first + 1) * SECTOR;
		}
		n++;
	}
	*ret_n = n;
	return n <= max ? 0 : -1;
}

/* What lies at off: 1 ext2/3/4 (its incompat features in *ret_incompat), 2
 * a file system this reader cannot read but a root may be (XFS), 0 other. */
static int probe_fs(int fd, uint64_t off, uint32_t *ret_incompat)
{
	unsigned char sb[1024];
	if (pread_all(fd, sb, sizeof(sb), off + 1024) == 0 && (sb[56] | sb[57] << 8) == EXT_MAGIC) {
		*ret_incompat = le32(sb + 0x60);
		return 1;
	}
	unsigned char x[4];
	if (pread_all(fd, x, sizeof(x), off) == 0 && memcmp(x, "XFSB", 4) == 0)
		return 2;
	return 0;
}

/* image-opts values double their commas. */
static char *opts_escape(const char *s)
{
	size_t n = strlen(s), extra = 0;
	for (size_t i = 0; i < n; i++)
		extra += s[i] == ',';
	char *o = malloc(n + extra + 1), *q = o;
	if (!o)
		abort();
	for (size_t i = 0; i < n; i++) {
		*q++ = s[i];
		if (s[i] == ',')
			*q++ = ',';
	}
	*q = 0;
	return o;
}

/* Copy bytes [off, off+size) of raw disk into its own raw file and replay its
 * journal there (debugfs and e2fsck cannot reopen "file?offset=" after a replay). */
static int replay_slice(const char *raw, const struct part *p, const char *slice)
{
	_cleanup_free_ char *esc = opts_escape(raw);
	_cleanup_free_ char *opts = p->size ? xasprintf("driver=raw,offset=%llu,size=%llu,file.driver=file,file.filename=%s",
						      (unsigned long long)p->off, (unsigned long long)p->size, esc)
					    : xasprintf("driver=raw,offset=%llu,file.driver=file,file.filename=%s",
							(unsigned long long)p->off, esc);
	const char *conv[] = {"qemu-img", "convert", "-q", "--image-opts", opts, "-O", "raw", slice, NULL};
	if (proc_run(conv, NULL, NULL) < 0)
		return -1;
	const char *jr[] = {"debugfs", "-w", "-R", "journal_run", slice, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(jr, NULL, &out) < 0)
		return -1;
	/* debugfs reports a failed command on stderr and still exits 0: check the result. */
	int fd = open(slice, O_RDONLY | O_CLOEXEC);
	uint32_t incompat = 0;
	int kind = fd >= 0 ? probe_fs(fd, 0, &incompat) : 0;
	if (fd >= 0)
		close(fd);
	if (kind != 1 || (incompat & EXT_INCOMPAT_RECOVER))
		return err_fail("replaying the journal of '%s' left it unreplayed", slice);
	return 0;
}

/* Symlinks followed from one path before the reader declines (Debian's
 * /initrd.img is one hop; the kernel allows 40, libguestfs reads deeper chains). */
#define MAX_LINK_HOPS 4

/* Characters a path or link target must not hold to be given to debugfs literally. */
#define NOT_LITERAL " \t\n\"'\\"

/* What one debugfs stat showed of a path. */
struct seen {
	bool regular;   /* a regular file: dumped into the pass's dir/f<index> */
	bool link;      /* a symlink */
	char dest[256]; /* a fast symlink's target as debugfs quotes it; "" for a slow one (target in a block) */
};

/* One debugfs run over the ext file system at dev ("FILE" or "FILE?offset=N"):
 * stat /etc/qvsa-release when root_check (its result first in seen), then
 * stat each of the n paths and dump it into dir/f<idx[i]>. */
static int debugfs_pass(const char *dev, const char *dir, bool root_check, char *const *paths, const size_t *idx,
			size_t n, struct seen *seen)
{
	_cleanup_free_ char *cmds = NULL;
	size_t clen = 0;
	FILE *f = open_memstream(&cmds, &clen);
	if (!f)
		abort();
	if (root_check)
		fputs("stat /etc/qvsa-release\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "stat %s\ndump %s %s/f%zu\n", paths[i], paths[i], dir, idx[i]);
	if (fclose(f) != 0)
		abort();
	_cleanup_free_ char *cmdfile = xasprintf("%s/cmds", dir);
	if (fs_write_file_atomic(cmdfile, cmds, clen, 0600) < 0)
		return -1;
	const char *argv[] = {"debugfs", "-c", "-f", cmdfile, dev, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(argv, NULL, &out) < 0)
		return -1;
	/* debugfs echoes each command as "debugfs: CMD"; a stat's output follows
	 * its echo, a missing file's error goes to stderr. */
	size_t want = n + root_check, k = 0;
	bool in_stat = false;
	for (char *line = out; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (strncmp(line, "debugfs: ", 9) == 0) {
			in_stat = strncmp(line + 9, "stat ", 5) == 0;
			if (in_stat) {
				if (k >= want)
					return err_fail("debugfs: unexpected output");
				seen[k++] = (struct seen){0};
			}
		} else if (in_stat && strstr(line, "Type: regular")) {
			seen[k - 1].regular = true;
		} else if (in_stat && strstr(line, "Type: symlink")) {
			seen[k - 1].link = true;
		} else if (in_stat && strncmp(line, "Fast link dest: \"", 17) == 0) {
			/* Printed as "%.*s" between quotes: the target is up to the last quote. */
			const char *d = line + 17, *q = strrchr(d, '"');
			if (q && (size_t)(q - d) < sizeof(seen[k - 1].dest))
				snprintf(seen[k - 1].dest, sizeof(seen[k - 1].dest), "%.*s", (int)(q - d), d);
			else
				return err_fail("debugfs: a symlink target it shows unquoted or longer than %zu bytes",
						sizeof(seen[k - 1].dest) - 1);
		}
		line = nl ? nl + 1 : NULL;
	}
	if (k != want)
		return err_fail("debugfs: %zu of %zu stat results", k, want);
	return 0;
}

/* The path symlink path (absolute) points to: its relative target dest
 * resolved against the link's directory, left for debugfs to walk as the
 * kernel would. Whatever this reader cannot follow exactly is refused
 * (recorded), and libguestfs, which reads the guest's root as the guest
 * does, reads the disk instead: a slow symlink, an absolute target, a
 * target that '..' takes above the root or debugfs cannot be given. */
static char *link_target(const char *path, const char *dest)
{
	if (!dest[0]) {
		err_fail("symlink '%s': its target is in a block (a slow symlink)", path);
		return NULL;
	}
	if (dest[0] == '/' || strpbrk(dest, NOT_LITERAL)) {
		err_fail("symlink '%s' -> '%s': %s", path, dest,
			 dest[0] == '/' ? "an absolute target" : "a target debugfs cannot be given literally");
		return NULL;
	}
	size_t dlen = (size_t)(strrchr(path, '/') - path); /* the link's directory: path[0, dlen) */
	_cleanup_free_ char *joined = xasprintf("%.*s/%s", (int)dlen, path, dest);
	/* Count depth lexically over the directory and the target: below 0 is above the root. */
	long depth = 0;
	for (const char *p = joined; *p;) {
		p += strspn(p, "/");
		size_t len = strcspn(p, "/");
		if (len == 2 && strncmp(p, "..", 2) == 0)
			depth--;
		else if (len > 0 && !(len == 1 && p[0] == '.'))
			depth++;
		if (depth < 0) {
			err_fail("symlink '%s' -> '%s': '..' leads above the root", path, dest);
			return NULL;
		}
		p += len;
	}
	return TAKE_PTR(joined);
}

/* Read each of paths from the ext file system at dev into c, following a
 * symlink with a relative target (at most MAX_LINK_HOPS) as the guest's
 * kernel would; a path absent or neither a regular file nor a symlink to
 * one is NULL. *ret_root is whether /etc/qvsa-release is a regular file
 * there (else nothing is read). -1 with the reason recorded: the caller
 * declines the disk. */
static int debugfs_read(const char *dev, const char *dir, const char *const *paths, bool *ret_root,
			struct image_content *c)
{
	size_t n = 0;
	while (paths[n])
		n++;
	if (n > MAX_PATHS)
		return err_fail("debugfs: more than %d paths", MAX_PATHS);
	/* The paths still to read (cur[i] for paths[idx[i]]): every one at first, then the symlinks' targets. */
	char *cur[MAX_PATHS];
	size_t idx[MAX_PATHS], m = n;
	struct seen seen[MAX_PATHS + 1];
	for (size_t i = 0; i < n; i++) {
		cur[i] = xstrdup(paths[i]);
		idx[i] = i;
	}
	int rc = debugfs_pass(dev, dir, true, cur, idx, m, seen);
	*ret_root = rc == 0 && seen[0].regular;
	if (rc < 0 || !*ret_root)
		goto out;
	c->files = calloc(n + 1, sizeof(*c->files));
	c->lens = calloc(n + 1, sizeof(*c->lens));
	if (!c->files || !c->lens)
		abort();
	c->n_files = n;
	const struct seen *s = seen + 1; /* the paths' results follow the root's */
	for (unsigned hop = 0; rc == 0 && m > 0; hop++) {
		size_t next = 0;
		for (size_t k = 0; k < m; k++) {
			char *p = cur[k];
			cur[k] = NULL;
			if (rc == 0 && s[k].regular) {
				_cleanup_free_ char *f = xasprintf("%s/f%zu", dir, idx[k]);
				if (fs_read_file(f, &c->files[idx[k]], &c->lens[idx[k]]) < 0) /* adds the NUL */
					rc = -1; /* caller frees what c holds */
			} else if (rc == 0 && s[k].link) {
				char *t = NULL;
				if (hop >= MAX_LINK_HOPS)
					err_fail("'%s': more than %d symlinks", paths[idx[k]], MAX_LINK_HOPS);
				else
					t = link_target(p, s[k].dest);
				if (!t) {
					rc = -1;
				} else {
					cur[next] = t;
					idx[next++] = idx[k];
				}
			}
			free(p);
		}
		m = next; /* cur[0, next) are owned again */
		if (rc == 0 && m > 0) {
			rc = debugfs_pass(dev, dir, false, cur, idx, m, seen);
			s = seen;
		}
	}
out:
	for (size_t k = 0; k < m; k++)
		free(cur[k]);
	return rc;
}

int image_decline(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	err_fail("%s", buf);
	return 1;
}

static void tmpdir_releasep(char **dir)
{
	if (*dir)
		fs_tmpdir_release(*dir);
}

int image_read_direct(const struct image_disk *d, const char *const *paths, struct image_content *c)
{
	return image_read_direct_dirs(d, paths, NULL, c);
}

/* 0 read into c; 1 declined (with the reason recorded for the debug log); -1 interrupted. */
int image_read_direct_dirs(const struct image_disk *d, const char *const *paths, const char *const *dirs,
			   struct image_content *c)
{
	for (size_t i = 0; paths[i]; i++)
		if (paths[i][0] != '/' || strpbrk(paths[i], NOT_LITERAL))
			return image_decline("path '%s' is not one debugfs reads literally", paths[i]);
	if (!proc_have("debugfs") || !proc_have("qemu-img"))
		return image_decline("debugfs or qemu-img is not installed");
	_cleanup_(tmpdir_releasep) char *dir = fs_tmpdir_new("read");
	if (!dir)
		return 1;
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir);
	const char *conv_fmt[] = {"qemu-img", "convert", "-q", "-f", d->format, "-O", "raw", d->path, raw, NULL};
	const char *conv_probe[] = {"qemu-img", "convert", "-q", "-O", "raw", d->path, raw, NULL};
	if (proc_run(d->format ? conv_fmt : conv_probe, NULL, NULL) < 0)
		return 1;
	if (check_interrupted() < 0)
		return -1;
	_cleanup_close_ int fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return image_decline("opening '%s': %s", raw, strerror(errno));
	uint64_t offs[MAX_PARTS], sizes[MAX_PARTS];
	size_t np = 0;
	if (image_partitions(fd, offs, sizes, MAX_PARTS, &np) < 0)
		return image_decline("a partition table this reader does not know");
	struct part parts[MAX_PARTS + 1];
	for (size_t i = 0; i < np; i++)
		parts[i] = (struct part){offs[i], sizes[i]};
	if (np == 0)
		parts[np++] = (struct part){0, 0};
	for (size_t i = 0; i < np; i++) {
		uint32_t incompat = 0;
		int kind = probe_fs(fd, parts[i].off, &incompat);
		if (kind == 2)
			return image_decline("a partition holds XFS");
		if (kind != 1)
			continue;
		if (incompat & EXT_INCOMPAT_JOURNAL_DEV)
			return image_decline("an external journal");
		_cleanup_free_ char *dev = NULL;
		if (incompat & EXT_INCOMPAT_RECOVER) {
			/* A guest that powered off without unmounting: replay as a mount would. */
			dev = xasprintf("%s/part%zu.raw", dir, i);
			if (replay_slice(raw, &parts[i], dev) < 0)
				return 1;
		} else {
			dev = xasprintf("%s?offset=%llu", raw, (unsigned long long)parts[i].off);
		}
		bool root = false;
		struct image_content got = {0};
		if (debugfs_read(dev, dir, paths, &root, &got) < 0) {
			image_content_clear(&got);
			return 1;
		}
		if (root && dirs) {
			int lrc = image_debugfs_list(dev, dir, dirs, &got);
			if (lrc != 0) {
				image_content_clear(&got);
				return 1;
			}
		}
		if (root) {
			*c = got;
			return 0;
		}
		if (check_interrupted() < 0)
			return -1;
	}
	/* libguestfs says it best (and the same way as ever): "not a qvsa image?". */
	return image_decline("no ext2/3/4 partition holding /etc/qvsa-release");
}

bool image_direct_read_enabled(void)
{
	const char *env = getenv("QVSA_DIRECT_READ");
	return !env || strcmp(env, "0") != 0;
}

int image_read_auto(const struct image_disk *disks, size_t n, const char *const *paths, struct image_content **ret,
		    size_t *ret_launched)
{
	return image_read_auto_dirs(disks, n, paths, NULL, ret, ret_launched);
}

int image_read_auto_dirs(const struct image_disk *disks, size_t n, const char *const *paths, const char *const *dirs,
			 struct image_content **ret, size_t *ret_launched)
{
	struct image_content *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		abort();
	_cleanup_free_ struct image_disk *rest = calloc(n ? n : 1, sizeof(*rest));
	_cleanup_free_ size_t *rest_of = calloc(n ? n : 1, sizeof(*rest_of));
	if (!rest || !rest_of)
		abort();
	bool direct = image_direct_read_enabled();
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const char *const *p = disks[i].paths ? disks[i].paths : paths;
		if (!p) {
			image_contents_free(out, n);
			return err_fail("image '%s': no paths to read", disks[i].name ? disks[i].name : disks[i].path);
		}
		int rc = direct ? image_read_direct_dirs(&disks[i], p, dirs, &out[i]) : 1;
		if (rc < 0) {
			image_contents_free(out, n);
			return -1;
		}
		if (rc == 1) {
			if (direct)
				log_debug("image '%s': read through libguestfs: %s", disks[i].name ? disks[i].name : disks[i].path,
					  err_msg() ? err_msg() : "?");
			err_clear();
			rest_of[m] = i;
			rest[m++] = disks[i];
		}
	}
	if (m > 0) {
		struct image_content *c = NULL;
		if (image_read_many_dirs(rest, m, paths, dirs, &c) < 0) {
			image_contents_free(out, n);
			return -1;
		}
		for (size_t k = 0; k < m; k++)
			out[rest_of[k]] = c[k];
		free(c);
	}
	*ret = out;
	*ret_launched = m;
	return 0;
}
