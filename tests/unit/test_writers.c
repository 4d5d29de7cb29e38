/* Artifact writers, run on a small raw disk made at test time: each writes,
 * passes its own check, is read correctly by tools qvsa did not write
 * (qemu-img, libarchive, OpenSSL, zlib), comes out byte-identical when
 * written twice, and each check refuses a damaged or non-conforming file
 * with a message naming the artifact. Also: every shipped target file. */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)
#define EPOCH 1700000000
#define VHD_EPOCH 946684800

static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-writers-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(writers, .init = setup, .fini = teardown, .timeout = 120);

/* A sparse raw disk of size bytes with a few blocks of deterministic, partly incompressible data. */
static char *make_raw(const char *name, uint64_t size)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	static uint8_t block[192 * 1024];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(block); i++) {
		x = x * 1103515245 + 12345;
		block[i] = i < 65536 ? (uint8_t)(x >> 24) : (uint8_t)(i / 512);
	}
	const uint64_t at[] = {0, 1 * MIB, 5 * MIB + 4096, size / 2, size - sizeof(block)};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		cr_assert_eq(pwrite(fd, block, sizeof(block), (off_t)at[i]), (ssize_t)sizeof(block));
	close(fd);
	return path;
}

static struct target_artifact artifact(const char *writer, const char *ext, const struct target_option *o, size_t n)
{
	return (struct target_artifact){.writer = writer, .extension = ext, .options = o, .n_options = n};
}

static struct writer_input input(const char *raw, uint64_t size, const struct target_artifact *a, const char *name)
{
	return (struct writer_input){.raw = raw, .size = size, .artifact = a, .version = "qVSA-1.0", .workdir = dir,
				     .epoch = EPOCH, .build_id = "0123456789abcdef", .name = name};
}

/* Write twice (under different temporary names) and insist on the same bytes; returns the first path. */
static char *write_twice(const char *writer, const struct writer_input *in, const char *tmpname)
{
	const struct writer_ops *w = writer_find(writer);
	cr_assert_not_null(w, "no writer %s", writer);
	char *a = xasprintf("%s/.%s.tmp-1", dir, tmpname);
	_cleanup_free_ char *b = xasprintf("%s/again-%s", dir, tmpname);
	cr_assert_eq(w->write(in, a), 0, "%s", err_msg());
	cr_assert_eq(w->write(in, b), 0, "%s", err_msg());
	char ha[65], hb[65];
	cr_assert_eq(fs_sha256_file(a, ha, NULL), 0);
	cr_assert_eq(fs_sha256_file(b, hb, NULL), 0);
	cr_assert_str_eq(ha, hb, "%s: two writes differ", writer);
	unlink(b);
	return a;
}

/* qemu-img, which qvsa did not write, identifies format and virtual size. */
static void qemu_img_sees(const char *path, const char *probe_fmt, const char *format, uint64_t vsize)
{
	struct writer_img_info info;
	cr_assert_eq(writer_img_info(path, probe_fmt, &info), 0, "%s", err_msg());
	cr_assert_str_eq(info.format, format, "%s", path);
	cr_assert_eq(info.virtual_size, vsize, "%s: qemu-img says %" PRIu64, path, info.virtual_size);
}

/* qemu-img compare: the artifact holds exactly the raw disk's content. */
static void same_content(const char *raw, const char *path, const char *fmt)
{
	const char *argv[] = {"qemu-img", "compare", "-q", "-f", "raw", "-F", fmt, raw, path, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s differs from the raw disk: %s", path, err_msg());
}

static void expect_check_fails(const char *writer, const char *path, uint64_t size, const struct target_artifact *a,
			       const char *reason)
{
	err_clear();
	cr_assert_eq(writer_find(writer)->check(path, size, a), -1, "%s: check passed", path);
	_cleanup_free_ char *named = xasprintf("artifact '%s'", path);
	cr_assert(strstr(err_msg(), named), "message does not name the artifact: %s", err_msg());
	cr_assert(strstr(err_msg(), reason), "expected '%s' in: %s", reason, err_msg());
}

static void flip(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* ---- qemu-img info ---- */

/* Recorded from qemu-img 7.2 (`qemu-img info --output=json` of a new qcow2 and a streamOptimized VMDK);
 * the VMDK extent's own virtual-size set to 1 so that a nested match would show. */
static const char qemu_img_qcow2[] =
	"{\n    \"virtual-size\": 67108864,\n    \"filename\": \"a.qcow2\",\n    \"cluster-size\": 65536,\n"
	"    \"format\": \"qcow2\",\n    \"actual-size\": 200704,\n    \"format-specific\": {\n"
	"        \"type\": \"qcow2\",\n        \"data\": {\n            \"compat\": \"1.1\",\n"
	"            \"compression-type\": \"zlib\",\n            \"lazy-refcounts\": false,\n"
	"            \"refcount-bits\": 16,\n            \"corrupt\": false,\n            \"extended-l2\": false\n"
	"        }\n    },\n    \"dirty-flag\": false\n}\n";
static const char qemu_img_vmdk[] =
	"{\n    \"virtual-size\": 67108864,\n    \"filename\": \"a.vmdk\",\n    \"cluster-size\": 65536,\n"
	"    \"format\": \"vmdk\",\n    \"actual-size\": 12288,\n    \"format-specific\": {\n"
	"        \"type\": \"vmdk\",\n        \"data\": {\n            \"cid\": 2484191682,\n"
	"            \"parent-cid\": 4294967295,\n            \"create-type\": \"streamOptimized\",\n"
	"            \"extents\": [\n                {\n                    \"compressed\": true,\n"
	"                    \"virtual-size\": 1,\n                    \"filename\": \"a.vmdk\",\n"
	"                    \"cluster-size\": 65536,\n                    \"format\": \"\"\n                }\n"
	"            ]\n        }\n    },\n    \"dirty-flag\": false\n}\n";

Test(writers, qemu_img_info_parses_recorded_output)
{
	struct writer_img_info info;
	cr_assert_eq(writer_img_info_parse(qemu_img_qcow2, "a.qcow2", &info), 0, "%s", err_msg());
	cr_expect_str_eq(info.format, "qcow2");
	cr_expect_eq(info.virtual_size, 64 * MIB);
	cr_expect_str_eq(info.compat, "1.1");
	cr_expect_str_eq(info.create_type, "");
	cr_assert_eq(writer_img_info_parse(qemu_img_vmdk, "a.vmdk", &info), 0, "%s", err_msg());
	cr_expect_str_eq(info.format, "vmdk", "the extent's own \"format\" is not the image's");
	cr_expect_eq(info.virtual_size, 64 * MIB, "the extent's own \"virtual-size\" is not the image's");
	cr_expect_str_eq(info.create_type, "streamOptimized");
	cr_expect_str_eq(info.compat, "");
}

/* qemu-img printing something else: an error naming the file, never a crash or a size of 0. */
Test(writers, qemu_img_info_refuses_garbage)
{
	static const struct {
		const char *out, *why;
	} bad[] = {
		{"", "output is not JSON (unexpected end of input at byte 0)"},
		{"qemu-img: Could not open 'x': No such file", "output is not JSON"},
		{"{\"virtual-size\": 67108864, \"format\": \"qcow2\"", "output is not JSON (unexpected end of input"},
		{"{\"virtual-size\": 1} {\"format\": \"raw\"}", "output is not JSON"},
		{"[{\"virtual-size\": 1, \"format\": \"raw\"}]", "no \"format\" string"},
		{"{\"virtual-size\": 67108864}", "no \"format\" string"},
		{"{\"virtual-size\": 67108864, \"format\": 7}", "no \"format\" string"},
		{"{\"format\": \"raw\"}", "no positive \"virtual-size\""},
		{"{\"format\": \"raw\", \"virtual-size\": \"67108864\"}", "no positive \"virtual-size\""},
		{"{\"format\": \"raw\", \"virtual-size\": -1}", "no positive \"virtual-size\""},
		{"{\"format\": \"raw\", \"virtual-size\": 1.5e9}", "no positive \"virtual-size\""},
		{"{\"format\": \"raw\", \"virtual-size\": 99999999999999999999999}", "no positive \"virtual-size\""},
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct writer_img_info info;
		err_clear();
		cr_assert_eq(writer_img_info_parse(bad[i].out, "d.img", &info), -1, "accepted: %s", bad[i].out);
		cr_expect(strstr(err_msg(), "qemu-img info 'd.img': "), "%s", err_msg());
		cr_expect(strstr(err_msg(), bad[i].why), "%s: expected '%s' in: %s", bad[i].out, bad[i].why, err_msg());
	}
	err_clear();
}

/* ---- VMDK ---- */

Test(writers, vmdk_is_stream_optimized_reproducible_and_complete)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	static const struct target_option o[] = {{"adapter_type", "lsilogic"}, {"hw_version", "14"}};
	struct target_artifact a = artifact("vmdk", "vmdk", o, 2);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-aws.vmdk");
	_cleanup_free_ char *out = write_twice("vmdk", &in, "qVSA-1.0-aws.vmdk");
	cr_assert_eq(writer_find("vmdk")->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	qemu_img_sees(out, NULL, "vmdk", 64 * MIB);
	struct writer_img_info info;
	cr_assert_eq(writer_img_info(out, "vmdk", &info), 0, "%s", err_msg());
	cr_assert_str_eq(info.create_type, "streamOptimized");
	same_content(raw, out, "vmdk");
	/* The embedded descriptor names the final file, not the temporary one, and keeps the options. */
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	cr_assert_eq(fs_read_file(out, &text, &len), 0);
	cr_assert(memmem(text, len, "RW 131072 SPARSE \"qVSA-1.0-aws.vmdk\"\n", 37));
	cr_assert(memmem(text, len, "ddb.adapterType = \"lsilogic\"", 28));
	cr_assert(memmem(text, len, "ddb.virtualHWVersion = \"14\"", 27));
	cr_assert(!memmem(text, len, ".tmp-", 5));
}

Test(writers, vmdk_check_refuses_wrong_capacity_and_other_subformats)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("vmdk", "vmdk", NULL, 0);
	struct writer_input in = input(raw, 64 * MIB, &a, "x.vmdk");
	_cleanup_free_ char *out = xasprintf("%s/x.vmdk", dir);
	cr_assert_eq(writer_find("vmdk")->write(&in, out), 0, "%s", err_msg());
	expect_check_fails("vmdk", out, 65 * MIB, &a, "capacity 67108864 bytes, expected 68157440");
	_cleanup_free_ char *sparse = xasprintf("%s/sparse.vmdk", dir);
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", raw, sparse, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0);
	expect_check_fails("vmdk", sparse, 64 * MIB, &a, "is not stream-optimized");
	static const struct target_option bad[] = {{"adapter_type", "pvscsi,x=y"}};
	struct target_artifact b = artifact("vmdk", "vmdk", bad, 1);
	in.artifact = &b;
	err_clear();
	cr_assert_eq(writer_find("vmdk")->write(&in, out), -1);
	cr_assert(strstr(err_msg(), "option adapter_type"), "%s", err_msg());
}

/* ---- VHD ---- */

static const struct target_option fixed_opt[] = {{"subformat", "fixed"}};
static const struct target_option dynamic_opt[] = {{"subformat", "dynamic"}};

static uint32_t be32_at(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

Test(writers, vhd_fixed_meets_azure_rules)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("vhd", "vhd", fixed_opt, 1);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-azure.vhd");
	const struct writer_ops *w = writer_find("vhd");
	cr_assert_str_eq(w->disk_format, "vpc");
	_cleanup_free_ char *out = xasprintf("%s/first.vhd", dir);
	cr_assert_eq(w->write(&in, out), 0, "%s", err_msg());
	sleep(1); /* a clock-derived footer timestamp would now differ */
	_cleanup_free_ char *again = write_twice("vhd", &in, "qVSA-1.0-azure.vhd");
	char h1[65], h2[65];
	cr_assert_eq(fs_sha256_file(out, h1, NULL), 0);
	cr_assert_eq(fs_sha256_file(again, h2, NULL), 0);
	cr_assert_str_eq(h1, h2, "fixed VHD written a second later differs");

	cr_assert_eq(w->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	cr_assert_eq(file_size(out), 64 * MIB + 512);
	/* A fixed VHD has its footer only at the end, so qemu-img needs -f vpc to see it. */
	qemu_img_sees(out, "vpc", "vpc", 64 * MIB);
	same_content(raw, out, "vpc");
	uint8_t f[512];
	int fd = open(out, O_RDONLY);
	cr_assert_eq(pread(fd, f, 512, 64 * MIB), 512);
	close(fd);
	cr_assert_eq(memcmp(f, "conectix", 8), 0);
	cr_assert_eq(be32_at(f + 24), EPOCH - VHD_EPOCH, "footer timestamp is not the build's epoch");
	cr_assert_eq(be32_at(f + 60), 2);
	cr_assert_eq(f[68 + 6] >> 4, 8, "footer id is not a derived (version 8) UUID");
}

Test(writers, vhd_check_refuses_bad_checksum_and_unaligned_size)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("vhd", "vhd", fixed_opt, 1);
	struct writer_input in = input(raw, 64 * MIB, &a, "x.vhd");
	_cleanup_free_ char *out = xasprintf("%s/x.vhd", dir);
	cr_assert_eq(writer_find("vhd")->write(&in, out), 0, "%s", err_msg());
	flip(out, (off_t)(64 * MIB + 100)); /* a reserved footer byte: only the checksum notices */
	expect_check_fails("vhd", out, 64 * MIB, &a, "VHD footer checksum is 0x");
	flip(out, (off_t)(64 * MIB + 100));
	cr_assert_eq(writer_find("vhd")->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	flip(out, (off_t)(64 * MIB + 66)); /* the checksum field itself */
	expect_check_fails("vhd", out, 64 * MIB, &a, "checksum");
	flip(out, (off_t)(64 * MIB + 66));

	_cleanup_free_ char *odd = make_raw("odd.raw", 64 * MIB + 512);
	struct writer_input oin = input(odd, 64 * MIB + 512, &a, "odd.vhd");
	_cleanup_free_ char *oout = xasprintf("%s/odd.vhd", dir);
	cr_assert_eq(writer_find("vhd")->write(&oin, oout), 0, "%s", err_msg());
	expect_check_fails("vhd", oout, 64 * MIB + 512, &a, "is not a whole number of MiB");
	expect_check_fails("vhd", out, 32 * MIB, &a, "expected 33554432");
}

Test(writers, vhd_dynamic_has_a_bat_covering_the_disk)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("vhd", "vhd", dynamic_opt, 1);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-xen.vhd");
	_cleanup_free_ char *out = write_twice("vhd", &in, "qVSA-1.0-xen.vhd");
	cr_assert_eq(writer_find("vhd")->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	qemu_img_sees(out, NULL, "vpc", 64 * MIB);
	same_content(raw, out, "vpc");
	cr_assert_lt(file_size(out), 16 * MIB, "dynamic VHD is not sparse");
	struct target_artifact fixed = artifact("vhd", "vhd", fixed_opt, 1);
	expect_check_fails("vhd", out, 64 * MIB, &fixed, "VHD disk type 3, expected 2 (fixed)");

	/* A BAT one entry short (header checksum kept valid) is refused. */
	int fd = open(out, O_RDWR);
	uint8_t h[1024];
	cr_assert_eq(pread(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
	cr_assert_eq(be32_at(h + 28), 32);
	h[31] = 31;
	memset(h + 36, 0, 4);
	uint32_t sum = 0;
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	sum = ~sum;
	uint8_t cs[4] = {(uint8_t)(sum >> 24), (uint8_t)(sum >> 16), (uint8_t)(sum >> 8), (uint8_t)sum};
	memcpy(h + 36, cs, 4);
	cr_assert_eq(pwrite(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
	close(fd);
	expect_check_fails("vhd", out, 64 * MIB, &a, "BAT has 31 entries, 32 blocks of 2 MiB cover");
}

/* ---- VHDX ---- */

Test(writers, vhdx_is_read_by_qemu_img_and_reproducible)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("vhdx", "vhdx", NULL, 0);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-hyperv.vhdx");
	_cleanup_free_ char *out = write_twice("vhdx", &in, "qVSA-1.0-hyperv.vhdx");
	cr_assert_eq(writer_find("vhdx")->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	qemu_img_sees(out, NULL, "vhdx", 64 * MIB);
	same_content(raw, out, "vhdx");
	expect_check_fails("vhdx", out, 128 * MIB, &a, "virtual size 67108864 bytes, expected 134217728");
	/* A different build id gives different GUIDs (they are derived, not constant). */
	struct writer_input other = in;
	other.build_id = "fedcba9876543210";
	_cleanup_free_ char *out2 = xasprintf("%s/other.vhdx", dir);
	cr_assert_eq(writer_find("vhdx")->write(&other, out2), 0, "%s", err_msg());
	char h1[65], h2[65];
	cr_assert_eq(fs_sha256_file(out, h1, NULL), 0);
	cr_assert_eq(fs_sha256_file(out2, h2, NULL), 0);
	cr_assert_str_neq(h1, h2);
	cr_assert_eq(writer_find("vhdx")->check(out2, 64 * MIB, &a), 0, "%s", err_msg());
}

/* ---- OVA ---- */

/* One member of an archive read back with libarchive. */
struct member {
	char name[128];   /* path in the archive */
	int format;       /* libarchive's format code */
	int64_t mtime;    /* entry mtime */
	int64_t uid;      /* owner */
	char sha256[65];  /* digest, OpenSSL */
	char *text;       /* data, if small */
	size_t size;      /* bytes */
};

static size_t read_members(const char *path, struct member *m, size_t max)
{
	struct archive *r = archive_read_new();
	archive_read_support_filter_all(r);
	archive_read_support_format_all(r);
	cr_assert_eq(archive_read_open_filename(r, path, 65536), ARCHIVE_OK);
	struct archive_entry *e;
	size_t n = 0;
	while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
		cr_assert_lt(n, max);
		struct member *x = &m[n++];
		snprintf(x->name, sizeof(x->name), "%s", archive_entry_pathname(e));
		x->format = archive_format(r);
		x->mtime = archive_entry_mtime(e);
		x->uid = archive_entry_uid(e);
		x->size = (size_t)archive_entry_size(e);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		x->text = x->size < MIB ? calloc(1, x->size + 1) : NULL;
		static char buf[65536];
		size_t got = 0;
		la_ssize_t k;
		while ((k = archive_read_data(r, buf, sizeof(buf))) > 0) {
			EVP_DigestUpdate(ctx, buf, (size_t)k);
			if (x->text)
				memcpy(x->text + got, buf, (size_t)k);
			got += (size_t)k;
		}
		cr_assert_eq(got, x->size);
		unsigned char md[32];
		EVP_DigestFinal_ex(ctx, md, NULL);
		EVP_MD_CTX_free(ctx);
		for (int i = 0; i < 32; i++)
			sprintf(x->sha256 + 2 * i, "%02x", md[i]);
	}
	archive_read_free(r);
	return n;
}

static void free_members(struct member *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].text);
}

static const struct target_option ova_opt[] = {{"digest", "sha256"}, {"hw_version", "14"}};

Test(writers, ova_has_descriptor_manifest_disk_in_order)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("ova", "ova", ova_opt, 2);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-vmware.ova");
	_cleanup_free_ char *out = write_twice("ova", &in, "qVSA-1.0-vmware.ova");
	cr_assert_eq(writer_find("ova")->check(out, 64 * MIB, &a), 0, "%s", err_msg());

	struct member m[4] = {0};
	size_t n = read_members(out, m, 4);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(m[0].name, "qVSA-1.0-vmware.ovf");
	cr_assert_str_eq(m[1].name, "qVSA-1.0-vmware.mf");
	cr_assert_str_eq(m[2].name, "qVSA-1.0-vmware-disk1.vmdk");
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(m[i].format, ARCHIVE_FORMAT_TAR_USTAR, "%s is not ustar", m[i].name);
		cr_assert_eq(m[i].mtime, EPOCH);
		cr_assert_eq(m[i].uid, 0);
	}
	_cleanup_free_ char *mf = xasprintf("SHA256(qVSA-1.0-vmware.ovf)= %s\nSHA256(qVSA-1.0-vmware-disk1.vmdk)= %s\n",
					    m[0].sha256, m[2].sha256);
	cr_assert_str_eq(m[1].text, mf);
	_cleanup_free_ char *cap = xasprintf("ovf:capacity=\"%llu\"", 64 * MIB);
	_cleanup_free_ char *fsize = xasprintf("ovf:href=\"qVSA-1.0-vmware-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"%zu\"",
					       m[2].size);
	cr_assert(strstr(m[0].text, cap), "%s", m[0].text);
	cr_assert(strstr(m[0].text, fsize), "%s", m[0].text);
	cr_assert(strstr(m[0].text, "<FullVersion>qVSA-1.0</FullVersion>"));

	if (proc_have("xmllint")) {
		_cleanup_free_ char *ovf = xasprintf("%s/extracted.ovf", dir);
		cr_assert_eq(fs_write_file_atomic(ovf, m[0].text, m[0].size, 0644), 0);
		const char *argv[] = {"xmllint", "--noout", ovf, NULL};
		cr_assert_eq(proc_run(argv, NULL, NULL), 0, "xmllint: %s", err_msg());
	} else {
		cr_log_warn("xmllint not installed (package libxml2-utils): OVF well-formedness checked by qvsa only");
	}

	/* The disk inside, extracted by the writer's unpack, is the raw disk as a stream-optimized VMDK. */
	_cleanup_free_ char *disk = NULL;
	cr_assert_eq(writer_find("ova")->unpack(out, dir, &disk), 0, "%s", err_msg());
	qemu_img_sees(disk, NULL, "vmdk", 64 * MIB);
	same_content(raw, disk, "vmdk");
	free_members(m, n);
}

Test(writers, ova_sha1_manifest_and_digest_mismatch)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	static const struct target_option sha1[] = {{"digest", "sha1"}};
	struct target_artifact a = artifact("ova", "ova", sha1, 1), dflt = artifact("ova", "ova", NULL, 0);
	struct writer_input in = input(raw, 64 * MIB, &a, "qVSA-1.0-old.ova");
	_cleanup_free_ char *out = xasprintf("%s/qVSA-1.0-old.ova", dir);
	cr_assert_eq(writer_find("ova")->write(&in, out), 0, "%s", err_msg());
	cr_assert_eq(writer_find("ova")->check(out, 64 * MIB, &a), 0, "%s", err_msg());
	struct member m[4] = {0};
	size_t n = read_members(out, m, 4);
	cr_assert_eq(n, 3);
	char ovf_sha1[41];
	unsigned char md[20];
	EVP_Digest(m[0].text, m[0].size, md, NULL, EVP_sha1(), NULL);
	for (int i = 0; i < 20; i++)
		sprintf(ovf_sha1 + 2 * i, "%02x", md[i]);
	_cleanup_free_ char *line = xasprintf("SHA1(qVSA-1.0-old.ovf)= %s\nSHA1(qVSA-1.0-old-disk1.vmdk)= ", ovf_sha1);
	cr_assert_eq(strncmp(m[1].text, line, strlen(line)), 0, "%s", m[1].text);
	expect_check_fails("ova", out, 64 * MIB, &dflt, "uses SHA1, expected SHA256");
	free_members(m, n);
}

Test(writers, ova_check_refuses_damage_and_wrong_order)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("ova", "ova", ova_opt, 2);
	struct writer_input in = input(raw, 64 * MIB, &a, "x.ova");
	_cleanup_free_ char *out = xasprintf("%s/x.ova", dir);
	cr_assert_eq(writer_find("ova")->write(&in, out), 0, "%s", err_msg());
	expect_check_fails("ova", out, 128 * MIB, &a, "capacity");

	/* The same members, manifest first. */
	struct member m[4] = {0};
	size_t n = read_members(out, m, 4);
	_cleanup_free_ char *swapped = xasprintf("%s/swapped.ova", dir);
	struct archive *w = archive_write_new();
	archive_write_set_format_ustar(w);
	cr_assert_eq(archive_write_open_filename(w, swapped), ARCHIVE_OK);
	const size_t order[] = {1, 0};
	for (size_t k = 0; k < 2; k++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[order[k]].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)m[order[k]].size);
		cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK);
		archive_write_data(w, m[order[k]].text, m[order[k]].size);
		archive_entry_free(e);
	}
	archive_write_close(w);
	archive_write_free(w);
	expect_check_fails("ova", swapped, 64 * MIB, &a, "first member is 'x.mf', expected the OVF descriptor");

	/* One flipped byte late in the VMDK: the manifest digest no longer matches. */
	size_t disk_data = 512 + (m[0].size + 511) / 512 * 512 + 512 + (m[1].size + 511) / 512 * 512 + 512;
	flip(out, (off_t)(disk_data + m[2].size / 2));
	expect_check_fails("ova", out, 64 * MIB, &a, "manifest digest of 'x-disk1.vmdk'");
	free_members(m, n);
}

/* ---- GCE ---- */

Test(writers, gce_tar_gz_holds_disk_raw_alone, .timeout = 300)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", GIB);
	struct target_artifact a = artifact("gce", "tar.gz", NULL, 0);
	struct writer_input in = input(raw, GIB, &a, "qVSA-1.0-gcp.tar.gz");
	_cleanup_free_ char *out = write_twice("gce", &in, "qVSA-1.0-gcp.tar.gz");
	cr_assert_eq(writer_find("gce")->check(out, GIB, &a), 0, "%s", err_msg());
	expect_check_fails("gce", out, 2 * GIB, &a, "expected 2147483648");

	/* gzip header: no file name, no time (RFC 1952: FLG at 3, MTIME at 4..7). */
	uint8_t gz[10];
	int fd = open(out, O_RDONLY);
	cr_assert_eq(read(fd, gz, sizeof(gz)), (ssize_t)sizeof(gz));
	close(fd);
	cr_assert(gz[0] == 0x1f && gz[1] == 0x8b && gz[2] == 8);
	cr_assert_eq(gz[3], 0, "gzip header flags 0x%x", gz[3]);
	cr_assert(gz[4] == 0 && gz[5] == 0 && gz[6] == 0 && gz[7] == 0, "gzip header has a time");
	/* First tar header, read through zlib: GNU magic "ustar  \0", name disk.raw. */
	gzFile g = gzopen(out, "rb");
	char hdr[512];
	cr_assert_eq(gzread(g, hdr, sizeof(hdr)), (int)sizeof(hdr));
	gzclose(g);
	cr_assert_str_eq(hdr, "disk.raw");
	cr_assert_eq(memcmp(hdr + 257, "ustar  \0", 8), 0, "not a GNU tar header");

	struct archive *r = archive_read_new();
	archive_read_support_filter_all(r);
	archive_read_support_format_all(r);
	cr_assert_eq(archive_read_open_filename(r, out, 65536), ARCHIVE_OK);
	struct archive_entry *e;
	cr_assert_eq(archive_read_next_header(r, &e), ARCHIVE_OK);
	cr_assert_eq(archive_format(r), ARCHIVE_FORMAT_TAR_GNUTAR);
	cr_assert_eq(archive_filter_code(r, 0), ARCHIVE_FILTER_GZIP);
	cr_assert_str_eq(archive_entry_pathname(e), "disk.raw");
	cr_assert_eq(archive_entry_size(e), (la_int64_t)GIB);
	cr_assert_eq(archive_entry_mtime(e), EPOCH);
	cr_assert_eq(archive_entry_uid(e), 0);
	cr_assert_str_eq(archive_entry_uname(e), "root");
	cr_assert_eq(archive_read_data_skip(r), ARCHIVE_OK);
	cr_assert_eq(archive_read_next_header(r, &e), ARCHIVE_EOF, "more than one member");
	archive_read_free(r);

	_cleanup_free_ char *sub = xasprintf("%s/unpacked", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	_cleanup_free_ char *disk = NULL;
	cr_assert_eq(writer_find("gce")->unpack(out, sub, &disk), 0, "%s", err_msg());
	cr_assert_eq(file_size(disk), GIB);
	same_content(raw, disk, "raw");
	struct stat st;
	cr_assert_eq(stat(disk, &st), 0);
	cr_assert_lt((uint64_t)st.st_blocks * 512, 64 * MIB, "extracted disk.raw is not sparse");
}

Test(writers, gce_refuses_disks_not_whole_gib_and_pax_archives)
{
	_cleanup_free_ char *raw = make_raw("disk.raw", 64 * MIB);
	struct target_artifact a = artifact("gce", "tar.gz", NULL, 0);
	struct writer_input in = input(raw, 64 * MIB, &a, "x.tar.gz");
	_cleanup_free_ char *out = xasprintf("%s/x.tar.gz", dir);
	err_clear();
	cr_assert_eq(writer_find("gce")->write(&in, out), -1);
	cr_assert(strstr(err_msg(), "whole GiB"), "%s", err_msg());

	/* A pax tar.gz with a 1 GiB disk.raw: GCE's format is GNU tar. */
	_cleanup_free_ char *pax = xasprintf("%s/pax.tar.gz", dir);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax(w);
	archive_write_add_filter_gzip(w);
	cr_assert_eq(archive_write_open_filename(w, pax), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "disk.raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 1024);
	cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK);
	static const char zeros[1024];
	archive_write_data(w, zeros, sizeof(zeros));
	archive_entry_free(e);
	archive_write_close(w);
	archive_write_free(w);
	expect_check_fails("gce", pax, 1024, &a, "not in GNU tar format");
}
