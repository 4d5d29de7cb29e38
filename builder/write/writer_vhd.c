/* VHD (Microsoft Virtual Hard Disk, "vpc" to QEMU): fixed for Azure, dynamic
 * for Xen, both sinks of the one reader (vhd_sink below). Footer and header
 * are what `qemu-img convert -O vpc -o force_size=on` writes (the virtual
 * size exact, not rounded to CHS geometry), except the two fields qemu-img
 * takes from the clock and the random generator: the timestamp is the
 * build's epoch and the unique id derives from the build. The check reads
 * the 512-byte footer (and a dynamic disk's header and BAT) itself. */
#include "writer.h"
#include "bytes.h"
#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/stat.h>

#define FOOTER_SIZE 512
#define DYN_HEADER_SIZE 1024
#define MIB (1024 * 1024)
#define DYN_BLOCK (2 * MIB)            /* block size of a dynamic disk (qemu-img's, and the spec's default) */
#define VHD_EPOCH 946684800            /* 2000-01-01T00:00:00Z: VHD timestamps count from here */
#define DISK_FIXED 2
#define DISK_DYNAMIC 3

/* Footer field offsets (all big-endian). */
enum {
	F_COOKIE = 0,       /* "conectix" */
	F_DATA_OFFSET = 16, /* dynamic header offset; all ones for fixed disks */
	F_TIMESTAMP = 24,   /* seconds since VHD_EPOCH */
	F_ORIG_SIZE = 40,
	F_CUR_SIZE = 48,    /* virtual size in bytes */
	F_DISK_TYPE = 60,
	F_CHECKSUM = 64,
	F_UUID = 68,
};
/* Dynamic disk header field offsets. */
enum {
	H_COOKIE = 0,         /* "cxsparse" */
	H_TABLE_OFFSET = 16,  /* the BAT */
	H_MAX_ENTRIES = 28,
	H_BLOCK_SIZE = 32,
	H_CHECKSUM = 36,
};

/* One's complement of the byte sum, the checksum field itself excluded. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t field)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < field || i >= field + 4)
			sum += p[i];
	return ~sum;
}

/* "fixed" or "dynamic" from the option subformat (default fixed: what Azure needs). */
static int subformat(const struct target_artifact *a, const char *what, int *ret_type)
{
	const char *s = target_artifact_option(a, "subformat");
	if (!s || strcmp(s, "fixed") == 0)
		*ret_type = DISK_FIXED;
	else if (strcmp(s, "dynamic") == 0)
		*ret_type = DISK_DYNAMIC;
	else
		return err_input("%s: option subformat '%s': expected fixed or dynamic", what, s);
	return 0;
}

/* The unique id: derived from the build's identity, the file's name and size (same inputs, same id). */
static void derive_uuid(const struct writer_input *in, uint8_t uuid[16])
{
	_cleanup_free_ char *name = in->name ? xstrdup(in->name)
					     : xasprintf("%s-%s.%s", in->version, target_name(in->target),
							 in->artifact->extension);
	_cleanup_free_ char *seed = xasprintf("qvsa vhd uuid\n%s\n%s\n%" PRIu64, in->build_id ? in->build_id : "",
					      name, in->size);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)seed, strlen(seed), md);
	memcpy(uuid, md, 16);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80); /* RFC 9562 version 8: derived, not random */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

/* A disk's footer, as qemu-img writes it with force_size=on: creator "qem2"
 * and the largest CHS geometry (65535/16/255) tell QEMU and other readers
 * that the current size, not the geometry, is the disk's size. A dynamic
 * disk's points at its header (data offset 512). */
static void footer_make(const struct writer_input *in, int type, uint8_t f[FOOTER_SIZE])
{
	memset(f, 0, FOOTER_SIZE);
	memcpy(f + F_COOKIE, "conectix", 8);
	put_be32(f + 8, 2);           /* features: reserved bit, always set */
	put_be32(f + 12, 0x00010000); /* format version 1.0 */
	put_be64(f + F_DATA_OFFSET, type == DISK_FIXED ? UINT64_MAX : FOOTER_SIZE);
	put_be32(f + F_TIMESTAMP, in->epoch > VHD_EPOCH ? (uint32_t)(in->epoch - VHD_EPOCH) : 0);
	memcpy(f + 28, "qem2", 4);
	put_be32(f + 32, 0x00050003); /* creator version, as qemu-img writes it */
	memcpy(f + 36, "Wi2k", 4);    /* creator host OS */
	put_be64(f + F_ORIG_SIZE, in->size);
	put_be64(f + F_CUR_SIZE, in->size);
	static const uint8_t max_chs[4] = {0xff, 0xff, 16, 255};
	memcpy(f + 56, max_chs, sizeof(max_chs));
	put_be32(f + F_DISK_TYPE, (uint32_t)type);
	derive_uuid(in, f + F_UUID);
	put_be32(f + F_CHECKSUM, vhd_checksum(f, FOOTER_SIZE, F_CHECKSUM));
}

/* A VHD as a sink. Fixed: the disk's bytes (holes stay holes), then the
 * footer. Dynamic, laid out as qemu-img lays it out: a footer copy, the
 * dynamic header, the BAT, then each allocated 2 MiB block as a sector
 * bitmap (all set) and its data, then the footer. Which blocks are
 * allocated is decided from the extent map (plan: a block is allocated iff
 * data touches it), so the BAT precedes the data and the file is written
 * front to back, hashed as written. */
struct vhd_sink {
	struct outfile *f;           /* the file (owned) */
	int type;                    /* DISK_FIXED or DISK_DYNAMIC */
	uint64_t size;               /* virtual size */
	uint8_t footer[FOOTER_SIZE]; /* written last (and first, for a dynamic disk) */
	bool *present;               /* dynamic: per block, allocated (owned) */
	uint64_t n_blocks;           /* dynamic: blocks covering the size */
};

static int vhd_open(const struct writer_input *in, const char *out, void **ret)
{
	struct vhd_sink *v = calloc(1, sizeof(*v));
	if (!v)
		abort();
	*ret = v;
	_cleanup_free_ char *what = xasprintf("writing '%s'", out);
	if (subformat(in->artifact, what, &v->type) < 0)
		return -1;
	if (v->type == DISK_DYNAMIC && in->size % 512 != 0)
		return err_input("%s: virtual size %" PRIu64 " is not a whole number of sectors", what, in->size);
	v->size = in->size;
	footer_make(in, v->type, v->footer);
	return outfile_open(out, NULL, &v->f);
}

/* Dynamic: decide the allocated blocks, write footer copy, header and BAT. */
static int vhd_plan(void *p, const struct writer_extent *ext, size_t n)
{
	struct vhd_sink *v = p;
	if (v->type != DISK_DYNAMIC)
		return 0;
	v->n_blocks = (v->size + DYN_BLOCK - 1) / DYN_BLOCK;
	if (v->n_blocks > UINT32_MAX / 2 || !(v->present = calloc(v->n_blocks ? v->n_blocks : 1, sizeof(bool))))
		return err_input("virtual size %" PRIu64 " is too large for a dynamic VHD", v->size);
	for (size_t i = 0; i < n; i++)
		for (uint64_t b = ext[i].offset / DYN_BLOCK; b <= (ext[i].offset + ext[i].len - 1) / DYN_BLOCK; b++)
			v->present[b] = true;
	uint64_t bat_bytes = (v->n_blocks * 4 + 511) / 512 * 512;
	uint64_t bat_off = FOOTER_SIZE + DYN_HEADER_SIZE;
	uint64_t at = bat_off + bat_bytes;
	_cleanup_free_ uint8_t *bat = malloc(bat_bytes ? bat_bytes : 1);
	if (!bat)
		abort();
	memset(bat, 0xff, bat_bytes);
	for (uint64_t b = 0; b < v->n_blocks; b++)
		if (v->present[b]) {
			put_be32(bat + 4 * b, (uint32_t)(at / 512));
			at += 512 + DYN_BLOCK;
		}
	if ((at + FOOTER_SIZE) / 512 > UINT32_MAX)
		return err_input("virtual size %" PRIu64 " is too large for a dynamic VHD", v->size);
	uint8_t h[DYN_HEADER_SIZE] = {0};
	memcpy(h + H_COOKIE, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX); /* next data: none */
	put_be64(h + H_TABLE_OFFSET, bat_off);
	put_be32(h + 24, 0x00010000); /* header version */
	put_be32(h + H_MAX_ENTRIES, (uint32_t)v->n_blocks);
	put_be32(h + H_BLOCK_SIZE, DYN_BLOCK);
	put_be32(h + H_CHECKSUM, vhd_checksum(h, sizeof(h), H_CHECKSUM));
	if (outfile_write(v->f, v->footer, FOOTER_SIZE) < 0 || outfile_write(v->f, h, sizeof(h)) < 0)
		return -1;
	return outfile_write(v->f, bat, bat_bytes);
}

static int vhd_grain(void *p, const struct writer_grain *g)
{
	struct vhd_sink *v = p;
	if (v->type == DISK_DYNAMIC) {
		uint64_t b = g->offset / DYN_BLOCK;
		if (!v->present || !v->present[b])
			return v->present ? 0 : err_fail("dynamic VHD: a grain before the plan");
		if (g->offset % DYN_BLOCK == 0) {
			uint8_t bitmap[512];
			memset(bitmap, 0xff, sizeof(bitmap));
			if (outfile_write(v->f, bitmap, sizeof(bitmap)) < 0)
				return -1;
		}
	}
	return g->zero ? outfile_zeros(v->f, g->len) : outfile_write(v->f, g->data, g->len);
}

static int vhd_finish(void *p, char sha[65], uint64_t *size)
{
	struct vhd_sink *v = p;
	/* A last block the disk ends inside is still whole in the file. */
	if (v->type == DISK_DYNAMIC && v->size % DYN_BLOCK && v->present && v->present[v->n_blocks - 1] &&
	    outfile_zeros(v->f, DYN_BLOCK - v->size % DYN_BLOCK) < 0)
		return -1;
	if (outfile_write(v->f, v->footer, FOOTER_SIZE) < 0)
		return -1;
	return outfile_finish(v->f, sha, size);
}

static void vhd_free(void *p)
{
	struct vhd_sink *v = p;
	if (v) {
		outfile_free(v->f);
		free(v->present);
	}
	free(v);
}

static const struct writer_sink_ops vhd_sink = {
	.open = vhd_open, .plan = vhd_plan, .grain = vhd_grain, .finish = vhd_finish, .free = vhd_free,
};

extern const struct writer_ops writer_vhd_ops;

static int vhd_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_vhd_ops, in, out);
}

static int check_dynamic(int fd, const char *artifact, const uint8_t *footer, uint64_t file_size, uint64_t vsize)
{
	uint8_t head[FOOTER_SIZE], h[DYN_HEADER_SIZE];
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) || memcmp(head, footer, FOOTER_SIZE) != 0)
		return err_fail("artifact '%s': the footer copy at the start of the dynamic VHD differs from its footer",
				artifact);
	uint64_t hoff = be64(footer + F_DATA_OFFSET);
	if (hoff < FOOTER_SIZE || hoff > file_size - FOOTER_SIZE - DYN_HEADER_SIZE ||
	    pread(fd, h, sizeof(h), (off_t)hoff) != (ssize_t)sizeof(h) || memcmp(h + H_COOKIE, "cxsparse", 8) != 0)
		return err_fail("artifact '%s': no dynamic disk header (cxsparse) at %" PRIu64, artifact, hoff);
	if (be32(h + H_CHECKSUM) != vhd_checksum(h, sizeof(h), H_CHECKSUM))
		return err_fail("artifact '%s': dynamic disk header checksum is wrong", artifact);
	uint32_t block = be32(h + H_BLOCK_SIZE), entries = be32(h + H_MAX_ENTRIES);
	if (block != DYN_BLOCK)
		return err_fail("artifact '%s': dynamic VHD block size %" PRIu32 ", expected %d", artifact, block, DYN_BLOCK);
	uint64_t need = (vsize + DYN_BLOCK - 1) / DYN_BLOCK;
	if (entries != need)
		return err_fail("artifact '%s': dynamic VHD BAT has %" PRIu32 " entries, %" PRIu64
				" blocks of 2 MiB cover the virtual size", artifact, entries, need);
	uint64_t bat = be64(h + H_TABLE_OFFSET);
	uint64_t bat_len = (uint64_t)entries * 4;
	if (bat < FOOTER_SIZE + DYN_HEADER_SIZE || bat + bat_len > file_size - FOOTER_SIZE)
		return err_fail("artifact '%s': dynamic VHD BAT at %" PRIu64 " lies outside the file", artifact, bat);
	_cleanup_free_ uint8_t *t = malloc(bat_len ? bat_len : 1);
	if (!t)
		abort();
	if (pread(fd, t, bat_len, (off_t)bat) != (ssize_t)bat_len)
		return err_fail("artifact '%s': short dynamic VHD BAT", artifact);
	/* Each allocated block: a sector bitmap (one sector for 2 MiB) then the data. */
	for (uint32_t i = 0; i < entries; i++) {
		uint32_t s = be32(t + 4 * i);
		if (s != UINT32_MAX && (uint64_t)s * 512 + 512 + DYN_BLOCK > file_size - FOOTER_SIZE)
			return err_fail("artifact '%s': dynamic VHD block %" PRIu32 " points past the end of the file",
					artifact, i);
	}
	return 0;
}

static int vhd_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	int type;
	_cleanup_free_ char *what = xasprintf("artifact '%s'", artifact);
	if (subformat(a, what, &type) < 0)
		return -1;
	_cleanup_close_ int fd = open(artifact, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(errno, "artifact '%s'", artifact);
	uint64_t file_size = (uint64_t)st.st_size;
	uint8_t f[FOOTER_SIZE];
	if (file_size < FOOTER_SIZE ||
	    pread(fd, f, sizeof(f), (off_t)(file_size - FOOTER_SIZE)) != (ssize_t)sizeof(f))
		return err_fail("artifact '%s': too small for a VHD footer", artifact);
	if (memcmp(f + F_COOKIE, "conectix", 8) != 0)
		return err_fail("artifact '%s': no VHD footer (cookie 'conectix') in the last 512 bytes", artifact);
	uint32_t sum = vhd_checksum(f, sizeof(f), F_CHECKSUM);
	if (be32(f + F_CHECKSUM) != sum)
		return err_fail("artifact '%s': VHD footer checksum is 0x%08" PRIx32 ", the footer sums to 0x%08" PRIx32,
				artifact, be32(f + F_CHECKSUM), sum);
	uint32_t dtype = be32(f + F_DISK_TYPE);
	if (dtype != (uint32_t)type)
		return err_fail("artifact '%s': VHD disk type %" PRIu32 ", expected %d (%s)", artifact, dtype, type,
				type == DISK_FIXED ? "fixed" : "dynamic");
	uint64_t vsize = be64(f + F_CUR_SIZE);
	if (vsize != expect_size)
		return err_fail("artifact '%s': VHD current size %" PRIu64 " bytes, expected %" PRIu64, artifact, vsize,
				expect_size);
	if (type == DISK_DYNAMIC)
		return check_dynamic(fd, artifact, f, file_size, vsize);
	if (be64(f + F_DATA_OFFSET) != UINT64_MAX)
		return err_fail("artifact '%s': fixed VHD footer has a data offset", artifact);
	if (file_size - FOOTER_SIZE != vsize)
		return err_fail("artifact '%s': fixed VHD holds %" PRIu64 " bytes of data, its footer says %" PRIu64,
				artifact, file_size - FOOTER_SIZE, vsize);
	if (vsize % MIB != 0)
		return err_fail("artifact '%s': fixed VHD virtual size %" PRIu64 " is not a whole number of MiB", artifact,
				vsize);
	return 0;
}

const struct writer_ops writer_vhd_ops = {
	.name = "vhd",
	.disk_format = "vpc",
	.write = vhd_write,
	.sink = &vhd_sink,
	.check = vhd_check,
};
