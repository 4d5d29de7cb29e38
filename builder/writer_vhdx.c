/* VHDX (Hyper-V). qemu-img writes the format; what it makes unreproducible
 * is then replaced: the random GUIDs (FileWriteGuid and DataWriteGuid in
 * both headers, the virtual disk id in the Page83Data metadata item), the
 * random base of the header sequence numbers, and the log entries qemu-img
 * left behind with a random log GUID. The headers' LogGuid is zero after a
 * clean close, which per the VHDX specification means the log is empty, so
 * the log region is cleared. Header checksums (CRC-32C) are recomputed;
 * qemu-img check then reads the result. */
#include "writer.h"
#include "bytes.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <string.h>

#define KIB 1024
#define HEADER_SIZE (4 * KIB)
#define REGION_TABLE_OFF (192 * KIB)
#define REGION_TABLE_SIZE (64 * KIB)

static const uint64_t header_off[2] = {64 * KIB, 128 * KIB};

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

static int rw(int fd, bool write, void *buf, size_t len, uint64_t off, const char *path)
{
	ssize_t n = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
	if (n != (ssize_t)len)
		return n < 0 ? err_errno(errno, "artifact '%s'", path)
			     : err_fail("artifact '%s': short %s at %" PRIu64, path, write ? "write" : "read", off);
	return 0;
}

/* A header's signature and stored checksum are right. */
static bool header_ok(const uint8_t *h)
{
	uint8_t copy[HEADER_SIZE];
	memcpy(copy, h, HEADER_SIZE);
	put_le32(copy + HD_CHECKSUM, 0);
	return memcmp(h, "head", 4) == 0 && crc32c(copy, HEADER_SIZE) == le32(h + HD_CHECKSUM);
}

/* Both headers: derived GUIDs, sequence numbers from 1 (order kept), checksums. Returns the log's place. */
static int headers_patch(int fd, const struct writer_input *in, const char *path, uint64_t *ret_log_off,
			 uint32_t *ret_log_len)
{
	uint8_t h[2][HEADER_SIZE];
	for (int i = 0; i < 2; i++) {
		if (rw(fd, false, h[i], HEADER_SIZE, header_off[i], path) < 0)
			return -1;
		if (!header_ok(h[i]))
			return err_fail("artifact '%s': VHDX header %d from qemu-img is not valid", path, i + 1);
		static const uint8_t zero[16];
		if (memcmp(h[i] + HD_LOG_GUID, zero, 16) != 0)
			return err_fail("artifact '%s': VHDX header %d has a log to replay (not closed cleanly)", path, i + 1);
	}
	uint64_t s0 = le64(h[0] + HD_SEQUENCE), s1 = le64(h[1] + HD_SEQUENCE);
	uint64_t base = (s0 < s1 ? s0 : s1) - 1;
	uint8_t fw[16], dw[16];
	derive_guid(in, "file write", fw);
	derive_guid(in, "data write", dw);
	for (int i = 0; i < 2; i++) {
		put_le64(h[i] + HD_SEQUENCE, le64(h[i] + HD_SEQUENCE) - base);
		memcpy(h[i] + HD_FILE_WRITE_GUID, fw, 16);
		memcpy(h[i] + HD_DATA_WRITE_GUID, dw, 16);
		put_le32(h[i] + HD_CHECKSUM, 0);
		put_le32(h[i] + HD_CHECKSUM, crc32c(h[i], HEADER_SIZE));
		if (rw(fd, true, h[i], HEADER_SIZE, header_off[i], path) < 0)
			return -1;
	}
	uint8_t *cur = s0 > s1 ? h[0] : h[1];
	*ret_log_off = le64(cur + HD_LOG_OFFSET);
	*ret_log_len = le32(cur + HD_LOG_LENGTH);
	return 0;
}

/* Set the virtual disk id (Page83Data) in the metadata region. */
static int page83_patch(int fd, const struct writer_input *in, const char *path)
{
	uint8_t rt[REGION_TABLE_SIZE];
	if (rw(fd, false, rt, sizeof(rt), REGION_TABLE_OFF, path) < 0)
		return -1;
	uint32_t n = le32(rt + 8);
	uint64_t meta = 0;
	for (uint32_t i = 0; i < n && 16 + 32 * (i + 1) <= sizeof(rt); i++)
		if (memcmp(rt + 16 + 32 * i, metadata_region_guid, 16) == 0)
			meta = le64(rt + 16 + 32 * i + 16);
	if (!meta)
		return err_fail("artifact '%s': VHDX region table has no metadata region", path);
	uint8_t mt[64 * KIB];
	if (rw(fd, false, mt, sizeof(mt), meta, path) < 0)
		return -1;
	if (memcmp(mt, "metadata", 8) != 0)
		return err_fail("artifact '%s': no VHDX metadata table at %" PRIu64, path, meta);
	uint16_t entries = (uint16_t)(mt[10] | mt[11] << 8);
	for (uint32_t i = 0; i < entries && 32 + 32 * (i + 1) <= sizeof(mt); i++) {
		const uint8_t *e = mt + 32 + 32 * i;
		if (memcmp(e, page83_guid, 16) != 0)
			continue;
		if (le32(e + 20) != 16)
			return err_fail("artifact '%s': VHDX Page83Data item is not 16 bytes", path);
		uint8_t id[16];
		derive_guid(in, "virtual disk id", id);
		return rw(fd, true, id, sizeof(id), meta + le32(e + 16), path);
	}
	return err_fail("artifact '%s': VHDX metadata has no Page83Data item", path);
}

static int vhdx_write(const struct writer_input *in, const char *out)
{
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic",
			      in->raw, out, NULL};
	if (proc_run(argv, NULL, NULL) < 0) {
		err_prefix("writing '%s'", out);
		return -1;
	}
	_cleanup_close_ int fd = open(out, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "artifact '%s'", out);
	uint64_t log_off = 0;
	uint32_t log_len = 0;
	if (headers_patch(fd, in, out, &log_off, &log_len) < 0 || page83_patch(fd, in, out) < 0)
		return -1;
	if (log_len > 0) {
		if (log_off < 1024 * KIB || log_len > 256 * 1024 * KIB)
			return err_fail("artifact '%s': VHDX log at %" PRIu64 " (%" PRIu32 " bytes) is implausible", out,
					log_off, log_len);
		_cleanup_free_ uint8_t *zero = calloc(1, log_len);
		if (!zero)
			abort();
		if (rw(fd, true, zero, log_len, log_off, out) < 0)
			return -1;
	}
	if (fsync(fd) < 0)
		return err_errno(errno, "artifact '%s'", out);
	return 0;
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
	.check = vhdx_check,
};
