/* Stream-optimized VMDK (VMware, AWS import), written as VMware's own tools
 * write it and ESXi expects it: header with gdOffset = GD_AT_END, embedded
 * descriptor, each non-zero grain behind a grain marker, each grain table
 * behind its marker after its grains, the grain directory, then a footer
 * marker, the footer (the header with the real gdOffset) and an
 * end-of-stream marker. Grains are the reader's shared deflate in a zlib
 * wrapper. The CID derives from the build id, so the file is reproducible. */
#include "writer.h"
#include "bytes.h"
#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define SECTOR 512
#define VMDK_MAGIC 0x564d444bu       /* "KDMV" little-endian */
#define VMDK_FLAG_COMPRESSED (1u << 16) /* grains are deflated */
#define VMDK_FLAG_MARKERS (1u << 17)    /* stream markers (streamOptimized) */
#define VMDK_DESC_MAX (1u << 20)        /* larger embedded descriptors are refused */
#define GRAIN_SECTORS (WRITER_GRAIN / SECTOR)
#define DESC_SECTORS 20                 /* descriptor room, as qemu-img leaves */
#define GT_ENTRIES 512                  /* grains per grain table (32 MiB) */
#define GD_AT_END UINT64_MAX            /* header: the directory's place is in the footer */
#define MARKER_EOS 0
#define MARKER_GT 1
#define MARKER_GD 2
#define MARKER_FOOTER 3

/* The fields of a VMDK4 sparse extent header that qvsa reads (little-endian on disk). */
struct vmdk_header {
	uint32_t version;     /* 3 for stream-optimized */
	uint32_t flags;       /* VMDK_FLAG_* */
	uint64_t capacity;    /* virtual size in sectors */
	uint64_t desc_offset; /* embedded descriptor, in sectors from the start */
	uint64_t desc_size;   /* its size in sectors */
};

/* what prefixes messages, e.g. "artifact 'x.vmdk'". */
static int header_parse(const uint8_t *p, size_t len, const char *what, struct vmdk_header *ret)
{
	if (len < SECTOR || le32(p) != VMDK_MAGIC)
		return err_fail("%s: not a sparse VMDK (no KDMV header)", what);
	struct vmdk_header h = {
		.version = le32(p + 4), .flags = le32(p + 8), .capacity = le64(p + 12),
		.desc_offset = le64(p + 28), .desc_size = le64(p + 36),
	};
	if (h.desc_offset == 0 || h.desc_size == 0 || h.desc_size > VMDK_DESC_MAX / SECTOR)
		return err_fail("%s: VMDK has no usable embedded descriptor", what);
	*ret = h;
	return 0;
}

int writer_vmdk_check_head(const void *head, size_t len, uint64_t expect_size, const char *what)
{
	const uint8_t *p = head;
	struct vmdk_header h;
	if (header_parse(p, len, what, &h) < 0)
		return -1;
	if (h.version != 3 || !(h.flags & VMDK_FLAG_COMPRESSED) || !(h.flags & VMDK_FLAG_MARKERS))
		return err_fail("%s: VMDK is not stream-optimized (version %" PRIu32 ", flags 0x%" PRIx32 ")",
				what, h.version, h.flags);
	if (h.capacity * SECTOR != expect_size)
		return err_fail("%s: VMDK capacity %" PRIu64 " bytes, expected %" PRIu64, what,
				h.capacity * SECTOR, expect_size);
	uint64_t end = (h.desc_offset + h.desc_size) * SECTOR;
	if (end > len)
		return err_fail("%s: VMDK descriptor lies beyond the first %zu bytes", what, len);
	const char *desc = (const char *)p + h.desc_offset * SECTOR;
	size_t dlen = strnlen(desc, h.desc_size * SECTOR);
	if (!memmem(desc, dlen, "# Disk DescriptorFile", 21))
		return err_fail("%s: VMDK embedded descriptor is missing", what);
	if (!memmem(desc, dlen, "createType=\"streamOptimized\"", 28))
		return err_fail("%s: VMDK descriptor does not say createType=\"streamOptimized\"", what);
	return 0;
}

/* The artifact's final file name (what build.c renames the output to). */
static char *final_name(const struct writer_input *in)
{
	if (in->name)
		return xstrdup(in->name);
	return xasprintf("%s-%s.%s", in->version, target_name(in->target), in->artifact->extension);
}

/* A 32-bit content id from the build's identity, the extent name and the
 * size: same inputs, same CID; 0xffffffff means "no parent" and is avoided. */
static uint32_t derive_cid(const struct writer_input *in, const char *extent_name)
{
	_cleanup_free_ char *seed = xasprintf("qvsa vmdk cid\n%s\n%s\n%" PRIu64, in->build_id ? in->build_id : "",
					      extent_name, in->size);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)seed, strlen(seed), md);
	uint32_t cid = le32(md);
	return cid == UINT32_MAX ? 0xfffffffe : cid;
}

/* An option value that may go into the descriptor between quotes. */
static bool option_ok(const char *v)
{
	return v[0] && v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] == 0;
}

/* The embedded descriptor, as VMware and qemu-img write it. */
static int descriptor_text(const struct writer_input *in, const char *extent_name, char **ret)
{
	const char *adapter = target_artifact_option(in->artifact, "adapter_type");
	const char *hw = target_artifact_option(in->artifact, "hw_version");
	if (!adapter)
		adapter = "lsilogic";
	static const char *const adapters[] = {"ide", "lsilogic", "buslogic", "legacyESX"};
	bool known = false;
	for (size_t i = 0; i < ELEMENTSOF(adapters); i++)
		known = known || strcmp(adapter, adapters[i]) == 0;
	if (!known)
		return err_input("option adapter_type '%s': expected ide, lsilogic, buslogic or legacyESX", adapter);
	if (hw && (!option_ok(hw) || hw[strspn(hw, "0123456789")] != 0))
		return err_input("option hw_version '%s': expected a number", hw);
	if (strchr(extent_name, '"') || strchr(extent_name, '\n') || strchr(extent_name, '/'))
		return err_input("extent name '%s' cannot go into a VMDK descriptor", extent_name);
	uint64_t sectors = in->size / SECTOR;
	unsigned heads = strcmp(adapter, "ide") == 0 ? 16 : 255;
	uint64_t cyl = sectors / (heads * 63);
	*ret = xasprintf("# Disk DescriptorFile\nversion=1\nCID=%08" PRIx32 "\nparentCID=ffffffff\n"
			 "createType=\"streamOptimized\"\n\n# Extent description\nRW %" PRIu64 " SPARSE \"%s\"\n\n"
			 "# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"%s\"\n"
			 "ddb.geometry.cylinders = \"%" PRIu64 "\"\nddb.geometry.heads = \"%u\"\n"
			 "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"%s\"\n",
			 derive_cid(in, extent_name), sectors, extent_name, hw ? hw : "4", cyl > 65535 ? 65535 : cyl,
			 heads, adapter);
	return 0;
}

/* The sparse extent header (also the footer, which holds the real gd_offset). */
static void header_fill(uint8_t h[SECTOR], uint64_t capacity_sectors, uint64_t gd_offset)
{
	memset(h, 0, SECTOR);
	put_le32(h, VMDK_MAGIC);
	put_le32(h + 4, 3);
	put_le32(h + 8, 1u | VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS); /* bit 0: newline test is valid */
	put_le64(h + 12, capacity_sectors);
	put_le64(h + 20, GRAIN_SECTORS);
	put_le64(h + 28, 1);            /* descriptor right after the header */
	put_le64(h + 36, DESC_SECTORS);
	put_le32(h + 44, GT_ENTRIES);
	put_le64(h + 56, gd_offset);
	put_le64(h + 64, GRAIN_SECTORS); /* overhead: the grains start at 64 KiB */
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	h[77] = 1; /* compressAlgorithm: deflate */
}

/* A stream-optimized VMDK being written (see writer.h). */
struct vmdk_stream {
	struct outfile *f;     /* the file (owned) */
	uint64_t capacity;     /* virtual size in sectors */
	uint32_t *gd;          /* grain directory: sector of each grain table, 0: none (owned) */
	size_t n_gd;           /* entries in gd */
	uint32_t gt[GT_ENTRIES]; /* the grain table being filled: sector of each grain's marker, 0: zero grain */
	size_t gt_index;       /* which table gt is */
	bool gt_used;          /* gt has an entry */
};

/* Pad the file to a sector boundary. */
static int pad_sector(struct outfile *f)
{
	static const uint8_t zero[SECTOR];
	uint64_t r = outfile_offset(f) % SECTOR;
	return r ? outfile_write(f, zero, SECTOR - r) : 0;
}

/* A metadata marker (one sector) announcing sectors of type. */
static int put_marker(struct outfile *f, uint64_t sectors, uint32_t type)
{
	uint8_t m[SECTOR] = {0};
	put_le64(m, sectors);
	put_le32(m + 12, type);
	return outfile_write(f, m, sizeof(m));
}

/* Write the current grain table after its grains, and note it in the directory. */
static int gt_flush(struct vmdk_stream *v)
{
	if (!v->gt_used)
		return 0;
	uint8_t t[GT_ENTRIES * 4];
	for (size_t i = 0; i < GT_ENTRIES; i++)
		put_le32(t + 4 * i, v->gt[i]);
	if (put_marker(v->f, sizeof(t) / SECTOR, MARKER_GT) < 0)
		return -1;
	v->gd[v->gt_index] = (uint32_t)(outfile_offset(v->f) / SECTOR);
	memset(v->gt, 0, sizeof(v->gt));
	v->gt_used = false;
	return outfile_write(v->f, t, sizeof(t));
}

int vmdk_stream_open(const struct writer_input *in, const char *extent_name, const char *path, const EVP_MD *md,
		     struct vmdk_stream **ret)
{
	_cleanup_free_ char *desc = NULL;
	if (descriptor_text(in, extent_name, &desc) < 0)
		return -1;
	if (strlen(desc) >= DESC_SECTORS * SECTOR)
		return err_input("extent name '%s' makes the VMDK descriptor too long", extent_name);
	if (in->size % SECTOR != 0 || in->size / WRITER_GRAIN / GT_ENTRIES >= UINT32_MAX)
		return err_input("virtual size %" PRIu64 " cannot be a stream-optimized VMDK", in->size);
	struct vmdk_stream *v = calloc(1, sizeof(*v));
	if (!v)
		abort();
	v->capacity = in->size / SECTOR;
	v->n_gd = (in->size + (uint64_t)WRITER_GRAIN * GT_ENTRIES - 1) / ((uint64_t)WRITER_GRAIN * GT_ENTRIES);
	if (!(v->gd = calloc(v->n_gd ? v->n_gd : 1, sizeof(*v->gd))))
		abort();
	if (outfile_open(path, md, &v->f) < 0) {
		vmdk_stream_free(v);
		return -1;
	}
	*ret = v;
	uint8_t head[GRAIN_SECTORS * SECTOR] = {0};
	header_fill(head, v->capacity, GD_AT_END);
	memcpy(head + SECTOR, desc, strlen(desc));
	return outfile_write(v->f, head, sizeof(head));
}

int vmdk_stream_grain(struct vmdk_stream *v, const struct writer_grain *g)
{
	size_t t = g->offset / WRITER_GRAIN / GT_ENTRIES;
	if (t != v->gt_index) {
		if (gt_flush(v) < 0)
			return -1;
		v->gt_index = t;
	}
	if (g->zero)
		return 0; /* an unallocated grain reads as zeros */
	/* Grain marker (LBA, size), then a zlib stream: header, the shared deflate, Adler-32. */
	uint8_t m[12 + 2];
	uint32_t zlen = 2 + g->deflated_len + 4;
	put_le64(m, g->offset / SECTOR);
	put_le32(m + 8, zlen);
	m[12] = 0x78; /* deflate, 32 KiB window */
	m[13] = 0x9c; /* default level; header check bits */
	uint8_t adler[4] = {(uint8_t)(g->adler32 >> 24), (uint8_t)(g->adler32 >> 16), (uint8_t)(g->adler32 >> 8),
			    (uint8_t)g->adler32};
	v->gt[g->offset / WRITER_GRAIN % GT_ENTRIES] = (uint32_t)(outfile_offset(v->f) / SECTOR);
	v->gt_used = true;
	if (outfile_write(v->f, m, sizeof(m)) < 0 || outfile_write(v->f, g->deflated, g->deflated_len) < 0 ||
	    outfile_write(v->f, adler, sizeof(adler)) < 0)
		return -1;
	return pad_sector(v->f);
}

int vmdk_stream_finish(struct vmdk_stream *v, char *ret_hex, uint64_t *ret_size)
{
	if (gt_flush(v) < 0)
		return -1;
	size_t gd_bytes = (v->n_gd * 4 + SECTOR - 1) / SECTOR * SECTOR;
	_cleanup_free_ uint8_t *gd = calloc(1, gd_bytes ? gd_bytes : 1);
	if (!gd)
		abort();
	for (size_t i = 0; i < v->n_gd; i++)
		put_le32(gd + 4 * i, v->gd[i]);
	if (put_marker(v->f, gd_bytes / SECTOR, MARKER_GD) < 0)
		return -1;
	uint64_t gd_sector = outfile_offset(v->f) / SECTOR;
	uint8_t footer[SECTOR], eos[SECTOR] = {0};
	header_fill(footer, v->capacity, gd_sector);
	if (outfile_write(v->f, gd, gd_bytes) < 0 || put_marker(v->f, 1, MARKER_FOOTER) < 0 ||
	    outfile_write(v->f, footer, sizeof(footer)) < 0 || outfile_write(v->f, eos, sizeof(eos)) < 0)
		return -1;
	return outfile_finish(v->f, ret_hex, ret_size);
}

void vmdk_stream_free(struct vmdk_stream *v)
{
	if (!v)
		return;
	outfile_free(v->f);
	free(v->gd);
	free(v);
}

static int sink_open(const struct writer_input *in, const char *out, void **ret)
{
	_cleanup_free_ char *name = final_name(in);
	return vmdk_stream_open(in, name, out, NULL, (struct vmdk_stream **)ret);
}

static int sink_grain(void *v, const struct writer_grain *g) { return vmdk_stream_grain(v, g); }
static int sink_finish(void *v, char sha[65], uint64_t *size) { return vmdk_stream_finish(v, sha, size); }
static void sink_free(void *v) { vmdk_stream_free(v); }

static const struct writer_sink_ops vmdk_sink = {
	.deflate = true, .open = sink_open, .grain = sink_grain, .finish = sink_finish, .free = sink_free,
};

extern const struct writer_ops writer_vmdk_ops;
static int vmdk_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_vmdk_ops, in, out);
}

/* What ESXi requires of a stream's end: gdOffset = GD_AT_END in the header,
 * then footer marker, footer (a header with the real gdOffset) and an
 * end-of-stream marker, in the last three sectors. */
static int check_tail(int fd, const char *what, const uint8_t *head)
{
	struct stat st;
	uint8_t t[3 * SECTOR];
	static const uint8_t zero[SECTOR];
	if (le64(head + 56) != GD_AT_END)
		return err_fail("%s: VMDK header's gdOffset is not GD_AT_END (a stream keeps its directory at the end)",
				what);
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)(5 * SECTOR) ||
	    pread(fd, t, sizeof(t), st.st_size - (off_t)sizeof(t)) != (ssize_t)sizeof(t))
		return err_fail("%s: VMDK too short for a footer", what);
	if (le64(t) != 1 || le32(t + 8) != 0 || le32(t + 12) != MARKER_FOOTER)
		return err_fail("%s: VMDK has no footer marker before its last two sectors", what);
	if (le32(t + SECTOR) != VMDK_MAGIC || le64(t + SECTOR + 56) == GD_AT_END ||
	    le64(t + SECTOR + 56) * SECTOR >= (uint64_t)st.st_size)
		return err_fail("%s: VMDK footer is not a header holding the grain directory's place", what);
	if (memcmp(t + 2 * SECTOR, zero, SECTOR) != 0)
		return err_fail("%s: VMDK does not end with an end-of-stream marker", what);
	return 0;
}

static int vmdk_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	(void)a;
	_cleanup_close_ int fd = open(artifact, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "artifact '%s'", artifact);
	uint8_t head[SECTOR];
	struct vmdk_header h;
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return err_fail("artifact '%s': shorter than a VMDK header", artifact);
	_cleanup_free_ char *what = xasprintf("artifact '%s'", artifact);
	if (header_parse(head, sizeof(head), what, &h) < 0)
		return -1;
	size_t len = (size_t)(h.desc_offset + h.desc_size) * SECTOR;
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf)
		abort();
	if (pread(fd, buf, len, 0) != (ssize_t)len)
		return err_fail("artifact '%s': VMDK descriptor is truncated", artifact);
	if (writer_vmdk_check_head(buf, len, expect_size, what) < 0 || check_tail(fd, what, buf) < 0)
		return -1;
	return writer_qemu_img_check(artifact, "vmdk", expect_size);
}

const struct writer_ops writer_vmdk_ops = {
	.name = "vmdk",
	.disk_format = "vmdk",
	.write = vmdk_write,
	.sink = &vmdk_sink,
	.check = vmdk_check,
};
