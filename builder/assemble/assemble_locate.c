/* Where a small file's bytes lie in an assembled raw disk, so an artifact can
 * carry other bytes there without assembling a disk of its own. debugfs
 * (e2fsprogs) reads the ext4 root on the partition's byte range, as the
 * host assembly and image_direct.c do; the bytes found there are compared
 * with what the file must hold, so a wrong answer cannot pass. */
#include "assemble.h"
#include "bytes.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "proc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXT_MAGIC 0xEF53
#define EXT4_INLINE_DATA_FL 0x10000000u /* the file's bytes live in its inode, not in a block */
#define MAX_PARTS 8                     /* more than any assembled disk has */

/* One debugfs request on dev; its stdout. */
static int debugfs_req(const char *dev, const char *req, char **ret_out)
{
	const char *argv[] = {"debugfs", "-c", "-R", req, dev, NULL};
	return proc_run(argv, NULL, ret_out);
}

/* The value after "key" in debugfs's stat output, or -1 when absent. */
static long long stat_field(const char *out, const char *key, int base)
{
	const char *p = strstr(out, key);
	if (!p)
		return -1;
	return strtoll(p + strlen(key), NULL, base);
}

/* The file's first block on the ext file system at off: 0 found (*ret_off
 * its byte offset in the disk), 1 not there, -1 an error. */
static int locate_in(int fd, const char *raw, uint64_t off, const char *path, size_t len, uint64_t *ret_off)
{
	unsigned char sb[1024];
	if (pread(fd, sb, sizeof(sb), (off_t)(off + 1024)) != (ssize_t)sizeof(sb) || (sb[56] | sb[57] << 8) != EXT_MAGIC)
		return 1;
	uint64_t bsize = 1024ULL << le32(sb + 24);
	_cleanup_free_ char *dev = xasprintf("%s?offset=%" PRIu64, raw, off);
	_cleanup_free_ char *st_req = xasprintf("stat \"%s\"", path);
	_cleanup_free_ char *st = NULL;
	if (debugfs_req(dev, st_req, &st) < 0)
		return -1;
	if (!strstr(st, "Type: regular"))
		return 1;
	long long flags = stat_field(st, "Flags: ", 16), size = stat_field(st, "  Size: ", 10);
	if (flags < 0 || size < 0)
		return err_fail("debugfs: no flags or size in the stat of '%s'", path);
	if ((uint64_t)flags & EXT4_INLINE_DATA_FL)
		return err_fail("'%s' is inline data (in its inode): no block of its own to patch", path);
	if ((uint64_t)size != len || len > bsize)
		return err_fail("'%s' holds %lld bytes, expected %zu in one block of %" PRIu64, path, size, len, bsize);
	_cleanup_free_ char *bm_req = xasprintf("bmap \"%s\" 0", path);
	_cleanup_free_ char *bm = NULL;
	if (debugfs_req(dev, bm_req, &bm) < 0)
		return -1;
	char *end = NULL;
	unsigned long long blk = strtoull(bm, &end, 10);
	if (end == bm || blk == 0)
		return err_fail("debugfs: no block for '%s' (%s)", path, bm);
	*ret_off = off + blk * bsize;
	return 0;
}

int assemble_file_offset(const char *raw, const char *path, const void *expect, size_t len, uint64_t *ret_off)
{
	if (strpbrk(path, "\"\n\\"))
		return err_fail("'%s': a name debugfs cannot be told about", path);
	_cleanup_close_ int fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "opening '%s'", raw);
	uint64_t offs[MAX_PARTS], sizes[MAX_PARTS];
	size_t n = 0;
	if (image_partitions(fd, offs, sizes, MAX_PARTS, &n) < 0)
		return err_fail("disk '%s': unreadable partition table", raw);
	for (size_t i = 0; i < n; i++) {
		uint64_t off = 0;
		int rc = locate_in(fd, raw, offs[i], path, len, &off);
		if (rc < 0) {
			err_prefix("disk '%s'", raw);
			return -1;
		}
		if (rc > 0)
			continue;
		_cleanup_free_ unsigned char *got = malloc(len ? len : 1);
		if (!got)
			abort();
		if (pread(fd, got, len, (off_t)off) != (ssize_t)len)
			return err_errno(errno, "reading '%s' at %" PRIu64, raw, off);
		if (memcmp(got, expect, len) != 0)
			return err_fail("disk '%s': the bytes at %" PRIu64 " are not those of '%s'", raw, off, path);
		*ret_off = off;
		return 0;
	}
	return err_fail("disk '%s': no ext partition holds '%s'", raw, path);
}
