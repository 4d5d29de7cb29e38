/* VHDX (Hyper-V), dynamic, as a sink of the one reader, laid out as
 * qemu-img lays it out (MS-VHDX): file identifier, two headers (CRC-32C),
 * two region tables, an empty 1 MiB log (LogGuid zero: nothing to replay),
 * the BAT, the metadata region (file parameters, virtual size, Page83 disk
 * id, 512-byte logical and physical sectors), then the present blocks. The
 * GUIDs derive from the build (same inputs, same file). qemu-img check and
 * info read the result. */
#include "writer.h"
#include "bytes.h"
#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <string.h>

#define KIB 1024
#define HEADER_SIZE (4 * KIB)
#define REGION_TABLE_OFF (192 * KIB)
#define REGION_TABLE_SIZE (64 * KIB)

/* Header field offsets (little-endian). */
enum {
	HD_CHECKSUM = 4,
	HD_SEQUENCE = 8,
	HD_FILE_WRITE_GUID = 16,
	HD_DATA_WRITE_GUID = 32,
	HD_LOG_GUID = 48,
	HD_LOG_LENGTH = 68,
	HD_LOG_OFFSET = 72,
};

/* Region and metadata item GUIDs as stored on disk (mixed-endian). */
static const uint8_t metadata_region_guid[16] = {0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
						 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e};
static const uint8_t page83_guid[16] = {0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
					0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46};

/* CRC-32C (Castagnoli), as VHDX checksums its headers and region tables. */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffff;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
	}
	return ~crc;
}

/* A GUID from the build's identity, the file's name and size, and its purpose (same inputs, same GUID). */
static void derive_guid(const struct writer_input *in, const char *purpose, uint8_t guid[16])
{
	_cleanup_free_ char *name = in->name ? xstrdup(in->name)
					     : xasprintf("%s-%s.%s", in->version, target_name(in->target),
							 in->artifact->extension);
	_cleanup_free_ char *seed = xasprintf("qvsa vhdx %s\n%s\n%s\n%" PRIu64, purpose,
					      in->build_id ? in->build_id : "", name, in->size);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)seed, strlen(seed), md);
	memcpy(guid, md, 16);
	guid[7] = (uint8_t)((guid[7] & 0x0f) | 0x80); /* version 8 (derived), little-endian third field */
	guid[8] = (uint8_t)((guid[8] & 0x3f) | 0x80);
}

/* Sizes and places in the file, as qemu-img lays a dynamic VHDX out. */
#define MIB (1024 * KIB)
#define LOG_OFF (1 * MIB)   /* a 1 MiB log, empty (LogGuid zero: nothing to replay) */
#define LOG_LEN (1 * MIB)
#define BAT_OFF (2 * MIB)
#define META_LEN (1 * MIB)  /* the metadata region: table, then the items at 64 KiB */
#define SECTOR 512
#define BAT_ZERO 2          /* PAYLOAD_BLOCK_ZERO: reads as zeros (what qemu-img writes for empty blocks) */
#define BAT_PRESENT 6       /* PAYLOAD_BLOCK_FULLY_PRESENT */

static const uint8_t bat_region_guid[16] = {0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
					    0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08};
static const uint8_t file_params_guid[16] = {0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
					     0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b};
static const uint8_t vdisk_size_guid[16] = {0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
					    0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8};
static const uint8_t logical_sector_guid[16] = {0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
						0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f};
static const uint8_t physical_sector_guid[16] = {0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
						 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56};

/* qemu-img's block size for a disk of this size. */
static uint32_t block_size_for(uint64_t size)
{
	if (size > (32ull << 40))
		return 64 * MIB;
	if (size > (100ull << 30))
		return 32 * MIB;
	if (size > (1ull << 30))
		return 16 * MIB;
	return 8 * MIB;
}

/* A VHDX being written: everything up to the BAT and metadata is known once
 * the extent map says which blocks hold data (a block is present iff data
 * touches it), so the file is written front to back and hashed as written. */
struct vhdx_sink {
	struct outfile *f;     /* the file (owned) */
	struct writer_input in; /* for the derived GUIDs (pointers are the caller's) */
	uint32_t block;        /* block size */
	uint64_t n_blocks;     /* payload blocks covering the size */
	bool *present;         /* per block (owned) */
};

static int vhdx_open_sink(const struct writer_input *in, const char *out, void **ret)
{
	struct vhdx_sink *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	*ret = s;
	s->in = *in;
	s->block = block_size_for(in->size);
	if (in->size % SECTOR != 0 || in->size > (64ull << 40))
		return err_input("virtual size %" PRIu64 " cannot be a VHDX", in->size);
	return outfile_open(out, NULL, &s->f);
}

static void header_make(const struct vhdx_sink *s, uint64_t seq, uint8_t h[HEADER_SIZE])
{
	memset(h, 0, HEADER_SIZE);
	memcpy(h, "head", 4);
	put_le64(h + HD_SEQUENCE, seq);
	derive_guid(&s->in, "file write", h + HD_FILE_WRITE_GUID);
	derive_guid(&s->in, "data write", h + HD_DATA_WRITE_GUID);
	h[66] = 1; /* version 1 (16-bit LE); log version (at 64) 0 */
	put_le32(h + HD_LOG_LENGTH, LOG_LEN);
	put_le64(h + HD_LOG_OFFSET, LOG_OFF);
	put_le32(h + HD_CHECKSUM, crc32c(h, HEADER_SIZE));
}

static void region_table_make(uint64_t meta_off, uint64_t bat_len, uint8_t *rt)
{
	memset(rt, 0, REGION_TABLE_SIZE);
	memcpy(rt, "regi", 4);
	put_le32(rt + 8, 2);
	memcpy(rt + 16, bat_region_guid, 16);
	put_le64(rt + 32, BAT_OFF);
	put_le32(rt + 40, (uint32_t)bat_len);
	put_le32(rt + 44, 1); /* required */
	memcpy(rt + 48, metadata_region_guid, 16);
	put_le64(rt + 64, meta_off);
	put_le32(rt + 72, META_LEN);
	put_le32(rt + 76, 1);
	put_le32(rt + 4, crc32c(rt, REGION_TABLE_SIZE));
}

static void meta_entry(uint8_t *table, int i, const uint8_t guid[16], uint32_t off, uint32_t len, uint32_t flags)
{
	uint8_t *e = table + 32 + 32 * i;
	memcpy(e, guid, 16);
	put_le32(e + 16, off);
	put_le32(e + 20, len);
	put_le32(e + 24, flags);
}

/* The metadata region: file parameters, virtual size, disk id, sector sizes. */
static void metadata_make(const struct vhdx_sink *s, uint8_t *m)
{
	enum { IS_VIRTUAL_DISK = 2, IS_REQUIRED = 4, ITEMS = 64 * KIB };
	memset(m, 0, META_LEN);
	memcpy(m, "metadata", 8);
	m[10] = 5; /* entries (16-bit LE) */
	meta_entry(m, 0, file_params_guid, ITEMS, 8, IS_REQUIRED);
	meta_entry(m, 1, vdisk_size_guid, ITEMS + 8, 8, IS_VIRTUAL_DISK | IS_REQUIRED);
	meta_entry(m, 2, page83_guid, ITEMS + 16, 16, IS_VIRTUAL_DISK | IS_REQUIRED);
	meta_entry(m, 3, logical_sector_guid, ITEMS + 32, 4, IS_VIRTUAL_DISK | IS_REQUIRED);
	meta_entry(m, 4, physical_sector_guid, ITEMS + 36, 4, IS_VIRTUAL_DISK | IS_REQUIRED);
	put_le32(m + ITEMS, s->block); /* flags: blocks not kept allocated, no parent */
	put_le64(m + ITEMS + 8, s->in.size);
	derive_guid(&s->in, "virtual disk id", m + ITEMS + 16);
	put_le32(m + ITEMS + 32, SECTOR);
	put_le32(m + ITEMS + 36, SECTOR);
}

/* Everything before the payload: identifier, headers, region tables, log, BAT, metadata. */
static int vhdx_plan(void *p, const struct writer_extent *ext, size_t n)
{
	struct vhdx_sink *s = p;
	s->n_blocks = (s->in.size + s->block - 1) / s->block;
	if (!(s->present = calloc(s->n_blocks ? s->n_blocks : 1, sizeof(bool))))
		abort();
	for (size_t i = 0; i < n; i++)
		for (uint64_t b = ext[i].offset / s->block; b <= (ext[i].offset + ext[i].len - 1) / s->block; b++)
			s->present[b] = true;
	/* A sector bitmap entry follows every chunk_ratio payload entries (unused without a parent). */
	uint64_t chunk_ratio = ((uint64_t)1 << 23) * SECTOR / s->block;
	uint64_t entries = s->n_blocks ? s->n_blocks + (s->n_blocks - 1) / chunk_ratio : 0;
	uint64_t bat_len = (entries * 8 + MIB - 1) / MIB * MIB;
	if (bat_len == 0)
		bat_len = MIB;
	uint64_t meta_off = BAT_OFF + bat_len, at = meta_off + META_LEN;
	_cleanup_free_ uint8_t *buf = calloc(1, bat_len > META_LEN ? bat_len : META_LEN);
	if (!buf)
		abort();
	/* File identifier, then the two headers, then the two region tables. */
	uint8_t id[64 * KIB] = {0};
	memcpy(id, "vhdxfile", 8);
	static const char creator[] = "qvsa";
	for (size_t i = 0; i < sizeof(creator) - 1; i++)
		id[8 + 2 * i] = (uint8_t)creator[i];
	if (outfile_write(s->f, id, sizeof(id)) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		uint8_t h[HEADER_SIZE];
		header_make(s, (uint64_t)i + 1, h);
		if (outfile_write(s->f, h, sizeof(h)) < 0 || outfile_zeros(s->f, 64 * KIB - HEADER_SIZE) < 0)
			return -1;
	}
	region_table_make(meta_off, bat_len, buf);
	if (outfile_write(s->f, buf, REGION_TABLE_SIZE) < 0 || outfile_write(s->f, buf, REGION_TABLE_SIZE) < 0)
		return -1;
	if (outfile_zeros(s->f, LOG_OFF - outfile_offset(s->f)) < 0 || outfile_zeros(s->f, LOG_LEN) < 0)
		return -1;
	memset(buf, 0, bat_len);
	for (uint64_t b = 0; b < s->n_blocks; b++) {
		uint64_t e = BAT_ZERO;
		if (s->present[b]) {
			e = BAT_PRESENT | (at / MIB) << 20;
			at += s->block;
		}
		put_le64(buf + 8 * (b + b / chunk_ratio), e);
	}
	if (outfile_write(s->f, buf, bat_len) < 0)
		return -1;
	metadata_make(s, buf);
	return outfile_write(s->f, buf, META_LEN);
}

static int vhdx_grain(void *p, const struct writer_grain *g)
{
	struct vhdx_sink *s = p;
	if (!s->present)
		return err_fail("VHDX: a grain before the plan");
	if (!s->present[g->offset / s->block])
		return 0;
	return g->zero ? outfile_zeros(s->f, g->len) : outfile_write(s->f, g->data, g->len);
}

static int vhdx_finish(void *p, char sha[65], uint64_t *size)
{
	struct vhdx_sink *s = p;
	/* A last block the disk ends inside is still whole in the file. */
	if (s->in.size % s->block && s->present && s->present[s->n_blocks - 1] &&
	    outfile_zeros(s->f, s->block - s->in.size % s->block) < 0)
		return -1;
	return outfile_finish(s->f, sha, size);
}

static void vhdx_free(void *p)
{
	struct vhdx_sink *s = p;
	if (s) {
		outfile_free(s->f);
		free(s->present);
	}
	free(s);
}

static const struct writer_sink_ops vhdx_sink = {
	.open = vhdx_open_sink, .plan = vhdx_plan, .grain = vhdx_grain, .finish = vhdx_finish, .free = vhdx_free,
};

extern const struct writer_ops writer_vhdx_ops;
static int vhdx_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_vhdx_ops, in, out);
}

static int vhdx_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	(void)a;
	return writer_qemu_img_check(artifact, "vhdx", expect_size);
}

const struct writer_ops writer_vhdx_ops = {
	.name = "vhdx",
	.disk_format = "vhdx",
	.write = vhdx_write,
	.sink = &vhdx_sink,
	.check = vhdx_check,
};
