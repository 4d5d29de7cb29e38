/* Google Compute Engine image: a gzip'd tar in GNU format (what GCE's
 * importer documents: `tar --format=oldgnu -czf`) holding exactly one
 * member, disk.raw, whose size is a whole number of GiB. Written natively
 * with libarchive: one entry, owner root, the build's epoch as mtime, no
 * time in the gzip header, no pax headers or extended attributes. */
#include "writer.h"
#include "pack.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define GIB (1024ull * 1024 * 1024)
#define CHUNK (1u << 20)
#define MEMBER "disk.raw"

static void archive_freep(struct archive **a) { archive_free(*a); }

static int gce_err(struct archive *a, const char *path, const char *what)
{
	return err_fail("writing '%s': %s: %s", path, what, archive_error_string(a));
}

/* Feed len bytes of zeros (a hole of the raw disk) to the archive. */
static int put_zeros(struct archive *a, const char *out, const char *zero, uint64_t len)
{
	while (len > 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		if (archive_write_data(a, zero, n) != (la_ssize_t)n)
			return gce_err(a, out, MEMBER);
		len -= n;
		if (check_interrupted() < 0)
			return -1;
	}
	return 0;
}

/* Copy the raw disk's bytes; holes are not read, only written as zeros. */
static int put_disk(struct archive *a, const char *out, int fd, const char *raw, uint64_t size)
{
	_cleanup_free_ char *buf = malloc(CHUNK), *zero = calloc(1, CHUNK);
	if (!buf || !zero)
		abort();
	uint64_t pos = 0;
	while (pos < size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		uint64_t next = data < 0 ? size : (uint64_t)data; /* ENXIO: only a hole remains */
		if (data < 0 && errno != ENXIO)
			next = pos; /* no SEEK_DATA here: read everything */
		if (next > size)
			next = size;
		if (put_zeros(a, out, zero, next - pos) < 0)
			return -1;
		pos = next;
		off_t hole = lseek(fd, (off_t)pos, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
		if (end == pos)
			end = size;
		while (pos < end) {
			size_t want = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;
			ssize_t r = pread(fd, buf, want, (off_t)pos);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? err_errno(errno, "reading '%s'", raw)
					     : err_fail("reading '%s': ends before %" PRIu64 " bytes", raw, size);
			if (archive_write_data(a, buf, (size_t)r) != r)
				return gce_err(a, out, MEMBER);
			pos += (uint64_t)r;
			if (check_interrupted() < 0)
				return -1;
		}
	}
	return 0;
}

static int gce_write(const struct writer_input *in, const char *out)
{
	if (in->size % GIB != 0)
		return err_input("writing '%s': GCE needs a disk of whole GiB, this one is %" PRIu64
				 " bytes (set size_alignment: 1G in the target)", out, in->size);
	_cleanup_close_ int fd = open(in->raw, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(errno, "reading '%s'", in->raw);
	if ((uint64_t)st.st_size != in->size)
		return err_fail("writing '%s': '%s' is %jd bytes, expected %" PRIu64, out, in->raw, (intmax_t)st.st_size,
				in->size);

	_cleanup_(archive_freep) struct archive *a = archive_write_new();
	/* GNU tar headers (magic "ustar  "), as GNU tar --format=oldgnu writes them for one plain file. */
	if (archive_write_set_format_gnutar(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
	    archive_write_open_filename(a, out) != ARCHIVE_OK)
		return gce_err(a, out, "open");
	struct archive_entry *e = pack_entry_new(MEMBER, AE_IFREG, 0644, in->epoch > 0 ? in->epoch : 0, in->size);
	int r = archive_write_header(a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return gce_err(a, out, MEMBER);
	if (put_disk(a, out, fd, in->raw, in->size) < 0)
		return -1;
	if (archive_write_close(a) != ARCHIVE_OK)
		return gce_err(a, out, "close");
	return 0;
}

/* Open the artifact and read its one member's header; *ret_archive is positioned at its data. */
static int gce_open(const char *artifact, struct archive **ret_archive, struct archive_entry **ret_entry)
{
	struct archive *r = archive_read_new();
	archive_read_support_filter_gzip(r);
	archive_read_support_format_tar(r);
	struct archive_entry *e;
	if (archive_read_open_filename(r, artifact, CHUNK) != ARCHIVE_OK ||
	    archive_read_next_header(r, &e) != ARCHIVE_OK) {
		err_fail("artifact '%s': not a readable tar.gz: %s", artifact, archive_error_string(r));
		archive_read_free(r);
		return -1;
	}
	*ret_archive = r;
	*ret_entry = e;
	return 0;
}

static int gce_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	(void)a;
	_cleanup_(archive_freep) struct archive *r = NULL;
	struct archive_entry *e;
	if (gce_open(artifact, &r, &e) < 0)
		return -1;
	if (archive_filter_code(r, 0) != ARCHIVE_FILTER_GZIP || archive_filter_count(r) != 2)
		return err_fail("artifact '%s': not gzip-compressed (%s)", artifact, archive_filter_name(r, 0));
	const char *name = archive_entry_pathname(e);
	if (archive_format(r) != ARCHIVE_FORMAT_TAR_GNUTAR)
		return err_fail("artifact '%s': member '%s' is not in GNU tar format (%s)", artifact, name,
				archive_format_name(r));
	if (strcmp(name, MEMBER) != 0 || archive_entry_filetype(e) != AE_IFREG)
		return err_fail("artifact '%s': first member is '%s', expected the regular file " MEMBER, artifact, name);
	uint64_t size = (uint64_t)archive_entry_size(e);
	if (size % GIB != 0)
		return err_fail("artifact '%s': " MEMBER " is %" PRIu64 " bytes, not a whole number of GiB", artifact, size);
	if (size != expect_size)
		return err_fail("artifact '%s': " MEMBER " is %" PRIu64 " bytes, expected %" PRIu64, artifact, size,
				expect_size);
	if (archive_entry_xattr_count(e) != 0 || archive_entry_acl_count(e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS) != 0)
		return err_fail("artifact '%s': " MEMBER " carries extended attributes or ACLs", artifact);
	/* Decompress to the end: the gzip trailer's CRC and length are verified on the way. */
	if (archive_read_data_skip(r) != ARCHIVE_OK)
		return err_fail("artifact '%s': reading " MEMBER ": %s", artifact, archive_error_string(r));
	int rc = archive_read_next_header(r, &e);
	if (rc == ARCHIVE_OK)
		return err_fail("artifact '%s': holds a second member '%s'; GCE wants " MEMBER " alone", artifact,
				archive_entry_pathname(e));
	if (rc != ARCHIVE_EOF)
		return err_fail("artifact '%s': %s", artifact, archive_error_string(r));
	return 0;
}

/* Write the current member's data to fd, leaving all-zero 64 KiB blocks as holes. */
static int copy_sparse(struct archive *r, int fd, const char *path)
{
	enum { BLOCK = 64 * 1024 };
	static const char zero[BLOCK];
	_cleanup_free_ char *buf = malloc(CHUNK);
	if (!buf)
		abort();
	uint64_t total = 0;
	la_ssize_t n;
	while ((n = archive_read_data(r, buf, CHUNK)) > 0) {
		for (size_t off = 0; off < (size_t)n; off += BLOCK) {
			size_t len = (size_t)n - off < BLOCK ? (size_t)n - off : BLOCK;
			bool hole = len == BLOCK && memcmp(buf + off, zero, BLOCK) == 0;
			if (hole ? lseek(fd, BLOCK, SEEK_CUR) < 0 : write(fd, buf + off, len) != (ssize_t)len)
				return err_errno(errno, "writing '%s'", path);
		}
		total += (uint64_t)n;
		if (check_interrupted() < 0)
			return -1;
	}
	if (n < 0)
		return err_fail("reading: %s", archive_error_string(r));
	if (ftruncate(fd, (off_t)total) < 0)
		return err_errno(errno, "writing '%s'", path);
	return 0;
}

/* Extract disk.raw sparsely (all-zero blocks become holes). */
static int gce_unpack(const char *artifact, const char *dir, char **ret_disk)
{
	_cleanup_(archive_freep) struct archive *r = NULL;
	struct archive_entry *e;
	if (gce_open(artifact, &r, &e) < 0)
		return -1;
	if (strcmp(archive_entry_pathname(e), MEMBER) != 0)
		return err_fail("artifact '%s': first member is not " MEMBER, artifact);
	_cleanup_free_ char *path = xasprintf("%s/" MEMBER, dir);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(errno, "extracting '%s'", path);
	if (copy_sparse(r, fd, path) < 0) {
		unlink(path);
		err_prefix("extracting " MEMBER " from '%s'", artifact);
		return -1;
	}
	*ret_disk = TAKE_PTR(path);
	return 0;
}

const struct writer_ops writer_gce_ops = {
	.name = "gce",
	.disk_format = "raw",
	.write = gce_write,
	.check = gce_check,
	.unpack = gce_unpack,
};
