/* Stream-optimized VMDK (VMware, AWS import). qemu-img writes the format
 * correctly, so it does the conversion; afterwards the two fields it makes
 * non-reproducible are set in the embedded descriptor: the CID (qemu-img
 * picks a random one) and the extent name (qemu-img writes the name of its
 * output, which is the caller's temporary file). */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define SECTOR 512
#define VMDK_MAGIC 0x564d444bu       /* "KDMV" little-endian */
#define VMDK_FLAG_COMPRESSED (1u << 16) /* grains are deflated */
#define VMDK_FLAG_MARKERS (1u << 17)    /* stream markers (streamOptimized) */
#define VMDK_DESC_MAX (1u << 20)        /* larger embedded descriptors are refused */

/* The fields of a VMDK4 sparse extent header that qvsa reads (little-endian on disk). */
struct vmdk_header {
	uint32_t version;     /* 3 for stream-optimized */
	uint32_t flags;       /* VMDK_FLAG_* */
	uint64_t capacity;    /* virtual size in sectors */
	uint64_t desc_offset; /* embedded descriptor, in sectors from the start */
	uint64_t desc_size;   /* its size in sectors */
};

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

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

/* Whether the n bytes at s contain needle (memmem, spelled out: GCC's
 * sanitizer build cannot prove s non-null through memmem). */
static bool span_has(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

/* Rewrite the descriptor text: CID and the extent's file name. */
static char *descriptor_fix(const char *text, uint32_t cid, const char *extent_name, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	bool saw_cid = false, saw_extent = false;
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		const char *q1 = memchr(line, '"', n);
		if (n >= 4 && strncmp(line, "CID=", 4) == 0) {
			fprintf(f, "CID=%08" PRIx32, cid);
			saw_cid = true;
		} else if (n > 3 && strncmp(line, "RW ", 3) == 0 && q1 && span_has(line, n, " SPARSE ")) {
			fprintf(f, "%.*s\"%s\"", (int)(q1 - line), line, extent_name);
			saw_extent = true;
		} else {
			fwrite(line, 1, n, f);
		}
		if (nl)
			fputc('\n', f);
		line += n + (nl ? 1 : 0);
	}
	fclose(f);
	if (!saw_cid || !saw_extent) {
		free(buf);
		err_fail("artifact '%s': qemu-img's VMDK descriptor has no %s line", what, saw_cid ? "extent" : "CID");
		return NULL;
	}
	return buf;
}

/* Set a deterministic CID and the final extent name in the file's embedded descriptor. */
static int descriptor_patch(const char *path, uint32_t cid, const char *extent_name)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "artifact '%s'", path);
	uint8_t head[SECTOR];
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return err_fail("artifact '%s': short VMDK header", path);
	struct vmdk_header h;
	_cleanup_free_ char *what = xasprintf("artifact '%s'", path);
	if (header_parse(head, sizeof(head), what, &h) < 0)
		return -1;
	size_t dsize = h.desc_size * SECTOR;
	_cleanup_free_ char *desc = calloc(1, dsize + 1);
	if (!desc)
		abort();
	if (pread(fd, desc, dsize, (off_t)(h.desc_offset * SECTOR)) != (ssize_t)dsize)
		return err_fail("artifact '%s': short VMDK descriptor", path);
	_cleanup_free_ char *fixed = descriptor_fix(desc, cid, extent_name, path);
	if (!fixed)
		return -1;
	size_t flen = strlen(fixed);
	if (flen >= dsize)
		return err_fail("artifact '%s': VMDK descriptor does not fit its %zu bytes after renaming the extent",
				path, dsize);
	memset(desc, 0, dsize);
	memcpy(desc, fixed, flen);
	if (pwrite(fd, desc, dsize, (off_t)(h.desc_offset * SECTOR)) != (ssize_t)dsize)
		return err_errno(errno, "artifact '%s': writing the VMDK descriptor", path);
	if (fsync(fd) < 0)
		return err_errno(errno, "artifact '%s'", path);
	return 0;
}

/* An option value that qemu-img may safely receive inside "-o k=v,...". */
static bool option_ok(const char *v)
{
	return v[0] && v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] == 0;
}

int writer_vmdk_stream(const struct writer_input *in, const char *out, const char *extent_name)
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
		return err_input("writing '%s': option adapter_type '%s': expected ide, lsilogic, buslogic or legacyESX",
				 out, adapter);
	if (hw && (!option_ok(hw) || hw[strspn(hw, "0123456789")] != 0))
		return err_input("writing '%s': option hw_version '%s': expected a number", out, hw);
	if (strchr(extent_name, '"') || strchr(extent_name, '\n') || strchr(extent_name, '/'))
		return err_input("writing '%s': extent name '%s' cannot go into a VMDK descriptor", out, extent_name);

	_cleanup_free_ char *opts = xasprintf("subformat=streamOptimized,adapter_type=%s%s%s", adapter,
					      hw ? ",hwversion=" : "", hw ? hw : "");
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", opts, in->raw, out, NULL};
	if (proc_run(argv, NULL, NULL) < 0) {
		err_prefix("writing '%s'", out);
		return -1;
	}
	return descriptor_patch(out, derive_cid(in, extent_name), extent_name);
}

static int vmdk_write(const struct writer_input *in, const char *out)
{
	_cleanup_free_ char *name = final_name(in);
	return writer_vmdk_stream(in, out, name);
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
	if (writer_vmdk_check_head(buf, len, expect_size, what) < 0)
		return -1;
	return writer_qemu_img_check(artifact, "vmdk", expect_size);
}

const struct writer_ops writer_vmdk_ops = {
	.name = "vmdk",
	.disk_format = "vmdk",
	.write = vmdk_write,
	.check = vmdk_check,
};
