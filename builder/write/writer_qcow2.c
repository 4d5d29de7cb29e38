/* qcow2 v3 (compat 1.1) as a sink of the one reader, compressed (option
 * compress: true, what cloud images ship) or not. The layout is qemu-img's
 * order: header, L1 table, refcount table and blocks, L2 tables, then the
 * clusters. The metadata is sized from the extent map before the first
 * grain (an L2 table for each 512 MiB the data touches, refcount blocks for
 * the largest file the data could make); the payload is then appended grain
 * by grain, compressed clusters packed byte by byte as QEMU packs them, and
 * the metadata written into its place at the end. That place precedes the
 * data and its content depends on every compressed size, so this is the one
 * sink whose file is hashed by reading it back (from the page cache) rather
 * than as it is written. Compressed clusters are the reader's shared deflate,
 * whose 4 KiB window is what QEMU's inflate (windowBits -12) accepts.
 * Layout per QEMU's docs/interop/qcow2.txt. compat 0.10 (v2) is left to
 * qemu-img. */
#include "writer.h"
#include "bytes.h"
#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER_BITS 16
#define CLUSTER (1u << CLUSTER_BITS)
#define L2_ENTRIES (CLUSTER / 8)                      /* one L2 table maps 512 MiB */
#define L2_SPAN ((uint64_t)L2_ENTRIES * CLUSTER)
#define REFCOUNT_ORDER 4                              /* 16-bit refcounts, qemu-img's default */
#define RB_ENTRIES (CLUSTER * 8 / (1u << REFCOUNT_ORDER)) /* clusters one refcount block counts */
#define HEADER_LEN 104
#define OFLAG_COPIED (1ull << 63)                     /* refcount is exactly 1 */
#define OFLAG_COMPRESSED (1ull << 62)
#define CSIZE_SHIFT (62 - (CLUSTER_BITS - 8))         /* compressed descriptor: x = 62 - (cluster_bits - 8) */
#define SECTOR 512

_Static_assert(WRITER_GRAIN == CLUSTER, "a grain is a cluster");
_Static_assert(WRITER_DEFLATE_WINDOW <= 4096, "QEMU inflates compressed clusters with a 4 KiB window");

/* A qcow2 file being written. */
struct qcow2_sink {
	char *path;          /* the file (owned) */
	struct outfile *f;   /* its payload, appended (owned; its digest is not the file's) */
	bool compress;       /* compressed clusters */
	uint64_t size;       /* virtual size */
	uint32_t l1_size;    /* L1 entries */
	uint64_t l1_off;     /* L1 table */
	uint64_t rt_off;     /* refcount table */
	uint32_t rt_clusters; /* its clusters */
	uint64_t rb_off;     /* first refcount block (they follow one another) */
	uint64_t n_rb;       /* refcount blocks */
	uint64_t l2_off;     /* first L2 table (one per L1 entry that maps data, in order) */
	int64_t *l2_of;      /* per L1 entry: index of its L2 table, -1: none (owned) */
	uint64_t *l2;        /* the L2 tables' entries, host-endian (owned) */
	size_t n_l2;         /* L2 tables */
	uint64_t meta_end;   /* where the payload starts */
	uint16_t *refs;      /* refcount of every cluster of the file (owned) */
	uint64_t n_refs;     /* clusters counted */
	bool planned;        /* plan was called */
};

static bool option_true(const struct target_artifact *a, const char *key)
{
	const char *v = target_artifact_option(a, key);
	return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static bool qcow2_accepts(const struct target_artifact *a)
{
	const char *compat = target_artifact_option(a, "compat");
	return !compat || strcmp(compat, "1.1") == 0;
}

static int qcow2_open_sink(const struct writer_input *in, const char *out, void **ret)
{
	struct qcow2_sink *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	*ret = s;
	s->path = xstrdup(out);
	s->compress = option_true(in->artifact, "compress");
	s->size = in->size;
	return outfile_open(out, NULL, &s->f);
}

/* Count one more reference to every cluster of [off, off + len). */
static void refs_add(struct qcow2_sink *s, uint64_t off, uint64_t len)
{
	uint64_t first = off / CLUSTER, last = (off + len - 1) / CLUSTER;
	if (last >= s->n_refs) {
		uint64_t n = (last + 1) * 2;
		if (!(s->refs = realloc(s->refs, n * sizeof(*s->refs))))
			abort();
		memset(s->refs + s->n_refs, 0, (n - s->n_refs) * sizeof(*s->refs));
		s->n_refs = n;
	}
	for (uint64_t c = first; c <= last; c++)
		s->refs[c]++;
}

/* Size the metadata from the extents: L2 tables where data lies, refcount
 * blocks enough for the largest payload the data could make. */
static int qcow2_plan(void *p, const struct writer_extent *ext, size_t n)
{
	struct qcow2_sink *s = p;
	s->l1_size = (uint32_t)((s->size + L2_SPAN - 1) / L2_SPAN);
	if (!(s->l2_of = malloc((s->l1_size ? s->l1_size : 1) * sizeof(*s->l2_of))))
		abort();
	for (uint32_t i = 0; i < s->l1_size; i++)
		s->l2_of[i] = -1;
	uint64_t grains = 0;
	for (size_t i = 0; i < n; i++) {
		grains += (ext[i].len + CLUSTER - 1) / CLUSTER;
		for (uint64_t t = ext[i].offset / L2_SPAN; t <= (ext[i].offset + ext[i].len - 1) / L2_SPAN; t++)
			if (s->l2_of[t] < 0)
				s->l2_of[t] = (int64_t)s->n_l2++;
	}
	if (!(s->l2 = calloc(s->n_l2 ? s->n_l2 * L2_ENTRIES : 1, sizeof(*s->l2))))
		abort();
	uint64_t l1_clusters = ((uint64_t)s->l1_size * 8 + CLUSTER - 1) / CLUSTER;
	/* A grain takes at most two clusters (uncompressed, after padding); find the refcount blocks' fixed point. */
	uint64_t fixed = 1 + l1_clusters + s->n_l2, payload = 2 * grains + 1;
	uint64_t n_rb = 1, rt = 1;
	for (;;) {
		uint64_t total = fixed + rt + n_rb + payload;
		uint64_t need_rb = (total + RB_ENTRIES - 1) / RB_ENTRIES;
		uint64_t need_rt = (need_rb * 8 + CLUSTER - 1) / CLUSTER;
		if (need_rb <= n_rb && need_rt <= rt)
			break;
		n_rb = need_rb;
		rt = need_rt;
	}
	s->n_rb = n_rb;
	s->rt_clusters = (uint32_t)rt;
	s->l1_off = CLUSTER;
	s->rt_off = s->l1_off + l1_clusters * CLUSTER;
	s->rb_off = s->rt_off + rt * CLUSTER;
	s->l2_off = s->rb_off + n_rb * CLUSTER;
	s->meta_end = s->l2_off + s->n_l2 * CLUSTER;
	refs_add(s, 0, s->meta_end);
	s->planned = true;
	return outfile_zeros(s->f, s->meta_end);
}

static int qcow2_grain(void *p, const struct writer_grain *g)
{
	struct qcow2_sink *s = p;
	if (!s->planned)
		return err_fail("qcow2: a grain before the plan");
	if (g->zero)
		return 0; /* unallocated: reads as zeros (there is no backing file) */
	uint64_t *e = &s->l2[(uint64_t)s->l2_of[g->offset / L2_SPAN] * L2_ENTRIES + g->offset % L2_SPAN / CLUSTER];
	uint64_t at = outfile_offset(s->f);
	/* QEMU stores a cluster whose deflate does not fit in a cluster as is; a partial last one too. */
	if (s->compress && g->len == CLUSTER && g->deflated_len < CLUSTER) {
		uint64_t sectors = (at + g->deflated_len - 1) / SECTOR - at / SECTOR; /* beyond the first */
		*e = OFLAG_COMPRESSED | sectors << CSIZE_SHIFT | at;
		/* QEMU's check counts the sectors the descriptor spans, from the first one's start. */
		refs_add(s, at - at % SECTOR, (sectors + 1) * SECTOR);
		return outfile_write(s->f, g->deflated, g->deflated_len);
	}
	if (at % CLUSTER && outfile_zeros(s->f, CLUSTER - at % CLUSTER) < 0)
		return -1;
	at = outfile_offset(s->f);
	*e = OFLAG_COPIED | at;
	refs_add(s, at, CLUSTER);
	if (outfile_write(s->f, g->data, g->len) < 0)
		return -1;
	return g->len < CLUSTER ? outfile_zeros(s->f, CLUSTER - g->len) : 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off, const char *path)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		return err_errno(errno ? errno : EIO, "writing '%s'", path);
	return 0;
}

/* The metadata, into the clusters reserved before the payload. */
static int write_metadata(struct qcow2_sink *s, int fd)
{
	_cleanup_free_ uint8_t *buf = calloc(1, s->meta_end);
	if (!buf)
		abort();
	uint8_t *h = buf;
	memcpy(h, "QFI\xfb", 4);
	put_be32(h + 4, 3);
	put_be32(h + 20, CLUSTER_BITS);
	put_be64(h + 24, s->size);
	put_be32(h + 36, s->l1_size);
	put_be64(h + 40, s->l1_off);
	put_be64(h + 48, s->rt_off);
	put_be32(h + 56, s->rt_clusters);
	put_be32(h + 96, REFCOUNT_ORDER);
	put_be32(h + 100, HEADER_LEN);
	/* Then the end of the header extensions: type 0, length 0 (already zero). */
	for (uint32_t i = 0; i < s->l1_size; i++)
		if (s->l2_of[i] >= 0)
			put_be64(buf + s->l1_off + 8 * i, OFLAG_COPIED | (s->l2_off + (uint64_t)s->l2_of[i] * CLUSTER));
	for (uint64_t i = 0; i < s->n_rb; i++)
		put_be64(buf + s->rt_off + 8 * i, s->rb_off + i * CLUSTER);
	/* finish checked that every counted cluster lies within the refcount blocks. */
	for (uint64_t c = 0; c < s->n_refs && c < s->n_rb * RB_ENTRIES; c++) {
		buf[s->rb_off + 2 * c] = (uint8_t)(s->refs[c] >> 8);
		buf[s->rb_off + 2 * c + 1] = (uint8_t)s->refs[c];
	}
	for (size_t t = 0; t < s->n_l2; t++)
		for (size_t i = 0; i < L2_ENTRIES; i++)
			put_be64(buf + s->l2_off + t * CLUSTER + 8 * i, s->l2[t * L2_ENTRIES + i]);
	return pwrite_full(fd, buf, s->meta_end, 0, s->path);
}

static int qcow2_finish(void *p, char sha[65], uint64_t *ret_size)
{
	struct qcow2_sink *s = p;
	if (!s->planned)
		return err_fail("qcow2: finished without a plan");
	/* QEMU reads a compressed cluster's last sector whole. */
	uint64_t end = outfile_offset(s->f);
	if (end % SECTOR && outfile_write(s->f, (const uint8_t[SECTOR]){0}, SECTOR - end % SECTOR) < 0)
		return -1;
	if (outfile_offset(s->f) > s->n_rb * RB_ENTRIES * CLUSTER)
		return err_fail("qcow2: the payload outgrew its refcount blocks"); /* cannot happen: planned for the worst */
	char unused[65];
	uint64_t size = 0;
	if (outfile_finish(s->f, unused, &size) < 0)
		return -1;
	_cleanup_close_ int fd = open(s->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "writing '%s'", s->path);
	if (write_metadata(s, fd) < 0)
		return -1;
	if (fsync(fd) < 0)
		return err_errno(errno, "writing '%s'", s->path);
	return fs_sha256_file(s->path, sha, ret_size);
}

static void qcow2_free(void *p)
{
	struct qcow2_sink *s = p;
	if (!s)
		return;
	outfile_free(s->f);
	free(s->path);
	free(s->l2_of);
	free(s->l2);
	free(s->refs);
	free(s);
}

static const struct writer_sink_ops qcow2_sink = {
	.deflate = true, .accepts = qcow2_accepts, .open = qcow2_open_sink, .plan = qcow2_plan,
	.grain = qcow2_grain, .finish = qcow2_finish, .free = qcow2_free,
};

extern const struct writer_ops writer_qcow2_ops;

/* compat 1.1 is a pass of the sink; 0.10 (v2) is qemu-img's. */
static int qcow2_write(const struct writer_input *in, const char *out)
{
	if (qcow2_accepts(in->artifact))
		return writer_stream_one(&writer_qcow2_ops, in, out);
	const char *compat = target_artifact_option(in->artifact, "compat");
	_cleanup_free_ char *opts = xasprintf("compat=%s", compat);
	bool c = option_true(in->artifact, "compress");
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", opts,
			      c ? "-c" : in->raw, c ? in->raw : out, c ? out : NULL, NULL};
	if (proc_run(argv, NULL, NULL) < 0) {
		err_prefix("writing '%s'", out);
		return -1;
	}
	return 0;
}

static int qcow2_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	struct writer_img_info info;
	if (writer_qemu_img_check_info(artifact, "qcow2", expect_size, &info) < 0)
		return -1;
	const char *compat = target_artifact_option(a, "compat");
	if (strcmp(info.compat, compat ? compat : "1.1") != 0)
		return err_fail("artifact '%s': qcow2 is not compat %s", artifact, compat ? compat : "1.1");
	return 0;
}

const struct writer_ops writer_qcow2_ops = {
	.name = "qcow2",
	.disk_format = "qcow2",
	.write = qcow2_write,
	.sink = &qcow2_sink,
	.check = qcow2_check,
};
