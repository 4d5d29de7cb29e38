/* Google Compute Engine image: a gzip'd tar in GNU format holding exactly
 * one member, disk.raw, whose size is a whole number of GiB, stored sparse
 * as GCE's import docs make it (`tar --format=oldgnu -Sczf`). A sink of the
 * one reader: the tar header from libarchive (one entry, owner root, the
 * build's epoch as mtime, no pax headers or extended attributes) made a GNU
 * sparse header from the extent map, then the data extents' grains as gzip
 * members made of the reader's shared deflate; no time in any gzip header. */
#include "writer.h"
#include "deflate.h"
#include "outfile.h"
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

#define TAR_BLOCK 512
#define TAR_RECORD 10240 /* GNU tar pads the archive to records of 20 blocks */

/* Collects what libarchive writes: the member's header. */
struct capture {
	uint8_t head[TAR_BLOCK]; /* the first block written */
	size_t len;              /* bytes of it so far */
};

static la_ssize_t capture_write(struct archive *a, void *p, const void *buf, size_t len)
{
	(void)a;
	struct capture *c = p;
	size_t n = len < TAR_BLOCK - c->len ? len : TAR_BLOCK - c->len;
	memcpy(c->head + c->len, buf, n);
	c->len += n;
	return (la_ssize_t)len;
}

/* A 12-byte numeric field as GNU tar writes it: 11 octal digits and a NUL,
 * or base-256 in all 12 bytes from 8 GiB on. */
static void tar_number(uint8_t *field, uint64_t v)
{
	if (v < (1ull << 33)) {
		snprintf((char *)field, 12, "%011llo", (unsigned long long)v);
		return;
	}
	field[0] = 0x80;
	for (int i = 0; i < 11; i++)
		field[11 - i] = (uint8_t)(v >> (8 * i));
}

/* Store a header block's checksum as GNU tar does. */
static void tar_checksum(uint8_t head[TAR_BLOCK])
{
	memset(head + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += head[i];
	snprintf((char *)head + 148, 7, "%06o", sum);
	head[155] = ' ';
}

/* The GNU tar header of disk.raw, as libarchive writes it (owner root, the
 * epoch as mtime); libarchive is given size 0, so that closing it writes no
 * data. As `tar --format=oldgnu -S` writes a sparse file, it then becomes
 * type 'S': size the bytes stored, realsize the file's, the first four
 * regions of the sparse map in the header, the rest in extension blocks. */
static int tar_header(const struct writer_input *in, const char *out, uint8_t head[TAR_BLOCK])
{
	struct capture c = {.len = 0};
	_cleanup_(archive_freep) struct archive *a = archive_write_new();
	if (archive_write_set_format_gnutar(a) != ARCHIVE_OK || archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, &c, NULL, capture_write, NULL) != ARCHIVE_OK)
		return gce_err(a, out, "open");
	struct archive_entry *e = pack_entry_new(MEMBER, AE_IFREG, 0644, in->epoch > 0 ? in->epoch : 0, 0);
	int r = archive_write_header(a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK || archive_write_close(a) != ARCHIVE_OK || c.len != TAR_BLOCK)
		return gce_err(a, out, MEMBER);
	memcpy(head, c.head, TAR_BLOCK);
	return 0;
}

/* A GCE image being written: one gzip member per grain (RFC 1952 allows a
 * file of several; gzip, GNU tar, libarchive and Go read them as one stream),
 * each the reader's shared deflate, so nothing here compresses the disk. */
struct gce_sink {
	struct outfile *f;                  /* the file (owned) */
	struct deflater *c;                 /* for the tar header and trailer (owned) */
	uint64_t tar_len;                   /* tar bytes so far */
	uint8_t head[TAR_BLOCK];            /* disk.raw's header, until plan completes it */
	uint64_t size;                      /* disk.raw's size */
	struct writer_extent *map;          /* the regions stored (owned) */
	size_t n_map;                       /* entries in map */
	size_t cur;                         /* the region the grains have reached */
	bool planned;                       /* the header is out */
};

/* One gzip member holding len bytes whose raw deflate is z. */
static int gz_member(struct outfile *f, const uint8_t *z, size_t zlen, uint32_t crc, uint32_t len)
{
	/* No name, no time, OS Unix (as libarchive writes it without a timestamp). */
	static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
	uint8_t tail[8];
	for (int i = 0; i < 4; i++) {
		tail[i] = (uint8_t)(crc >> (8 * i));
		tail[4 + i] = (uint8_t)(len >> (8 * i));
	}
	if (outfile_write(f, head, sizeof(head)) < 0 || outfile_write(f, z, zlen) < 0)
		return -1;
	return outfile_write(f, tail, sizeof(tail));
}

/* Deflate buf here (the few tar blocks that are not the disk) as one member. */
static int gz_small(struct gce_sink *s, const uint8_t *buf, size_t len)
{
	_cleanup_free_ uint8_t *z = malloc(DEFLATE_BOUND(len));
	if (!z)
		abort();
	size_t n = deflater_run(s->c, buf, len, z, DEFLATE_BOUND(len));
	s->tar_len += len;
	return gz_member(s->f, z, n, deflate_crc32(buf, len), (uint32_t)len);
}

static int gce_open_sink(const struct writer_input *in, const char *out, void **ret)
{
	if (in->size % GIB != 0)
		return err_input("GCE needs a disk of whole GiB, this one is %" PRIu64
				 " bytes (set size_alignment: 1G in the target)", in->size);
	struct gce_sink *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->c = deflater_new();
	*ret = s;
	s->size = in->size;
	if (tar_header(in, out, s->head) < 0)
		return -1;
	return outfile_open(out, NULL, &s->f);
}

enum { SPARSE_IN_HEADER = 4, SPARSE_IN_EXT = 21, SPARSE_AT = 386, EXTENDED_AT = 482, REALSIZE_AT = 483 };

/* The sparse map (the data extents; GNU tar ends a file that ends in a hole
 * with an empty region at its size), the header and its extension blocks. */
static int gce_plan(void *p, const struct writer_extent *ext, size_t n)
{
	struct gce_sink *s = p;
	bool tail = n == 0 || ext[n - 1].offset + ext[n - 1].len < s->size;
	s->n_map = n + (tail ? 1 : 0);
	if (!(s->map = calloc(s->n_map, sizeof(*s->map))))
		abort();
	memcpy(s->map, ext, n * sizeof(*ext));
	if (tail)
		s->map[n] = (struct writer_extent){s->size, 0};
	uint64_t stored = 0;
	for (size_t i = 0; i < s->n_map; i++)
		stored += s->map[i].len; /* whole grains, or up to the size (whole GiB): whole blocks */
	size_t n_ext = s->n_map > SPARSE_IN_HEADER ? (s->n_map - SPARSE_IN_HEADER + SPARSE_IN_EXT - 1) / SPARSE_IN_EXT : 0;
	_cleanup_free_ uint8_t *blocks = calloc(1 + n_ext, TAR_BLOCK);
	if (!blocks)
		abort();
	uint8_t *h = blocks;
	memcpy(h, s->head, TAR_BLOCK);
	h[156] = 'S';
	tar_number(h + 124, stored);
	tar_number(h + REALSIZE_AT, s->size);
	for (size_t i = 0; i < s->n_map; i++) {
		uint8_t *e = i < SPARSE_IN_HEADER
				     ? h + SPARSE_AT + 24 * i
				     : blocks + TAR_BLOCK * (1 + (i - SPARSE_IN_HEADER) / SPARSE_IN_EXT) +
					       24 * ((i - SPARSE_IN_HEADER) % SPARSE_IN_EXT);
		tar_number(e, s->map[i].offset);
		tar_number(e + 12, s->map[i].len);
	}
	h[EXTENDED_AT] = n_ext > 0;
	for (size_t k = 0; k + 1 < n_ext; k++)
		blocks[TAR_BLOCK * (1 + k) + 504] = 1; /* another extension block follows */
	tar_checksum(h);
	s->planned = true;
	return gz_small(s, blocks, TAR_BLOCK * (1 + n_ext));
}

static int gce_grain(void *p, const struct writer_grain *g)
{
	struct gce_sink *s = p;
	if (!s->planned)
		return err_fail("GCE: a grain before the plan");
	while (s->cur < s->n_map && s->map[s->cur].offset + s->map[s->cur].len <= g->offset)
		s->cur++;
	if (s->cur == s->n_map || s->map[s->cur].offset > g->offset)
		return 0; /* in a hole of the sparse map: not stored */
	s->tar_len += g->len;
	return gz_member(s->f, g->deflated, g->deflated_len, g->crc32, g->len);
}

static int gce_finish(void *p, char sha[65], uint64_t *size)
{
	struct gce_sink *s = p;
	/* The member's padding (none: whole GiB), the two end blocks, and the record's padding. */
	size_t end = (size_t)((s->tar_len + 2 * TAR_BLOCK + TAR_RECORD - 1) / TAR_RECORD * TAR_RECORD - s->tar_len);
	_cleanup_free_ uint8_t *zero = calloc(1, end);
	if (!zero)
		abort();
	if (gz_small(s, zero, end) < 0)
		return -1;
	return outfile_finish(s->f, sha, size);
}

static void gce_free(void *p)
{
	struct gce_sink *s = p;
	if (!s)
		return;
	outfile_free(s->f);
	deflater_free(s->c);
	free(s->map);
	free(s);
}

static const struct writer_sink_ops gce_sink = {
	.deflate = true, .open = gce_open_sink, .plan = gce_plan, .grain = gce_grain, .finish = gce_finish, .free = gce_free,
};

extern const struct writer_ops writer_gce_ops;
static int gce_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_gce_ops, in, out);
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
	.sink = &gce_sink,
	.check = gce_check,
	.unpack = gce_unpack,
};
