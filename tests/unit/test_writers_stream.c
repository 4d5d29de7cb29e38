/* The one reader and its sinks: one pass feeds every streamed format, each
 * file's SHA-256 (taken while writing) is sha256sum's, a pass of several
 * sinks writes the same bytes as each sink alone and whatever the thread
 * count, and the stream-optimized VMDK has the structure ESXi reads:
 * grain markers, grain tables and directory behind their markers, footer
 * marker, footer and end-of-stream marker. */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)
#define SECTOR 512

static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-stream-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(stream, .init = setup, .fini = teardown, .timeout = 300);

/* A sparse disk: random and text-like data in a few places, one grain of
 * written zeros (data to SEEK_DATA, zero to the reader), holes elsewhere. */
static char *make_disk(uint64_t size)
{
	char *path = xasprintf("%s/disk.raw", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	static uint8_t block[200 * 1024];
	uint32_t x = 777;
	for (size_t i = 0; i < sizeof(block); i++) {
		x = x * 1103515245 + 12345;
		block[i] = i < 70000 ? (uint8_t)(x >> 24) : (uint8_t)("qvsa stream "[i % 12]);
	}
	static const uint8_t zero[64 * 1024];
	const uint64_t at[] = {0, 3 * MIB + 4096, 40 * MIB - 1000 * 1000, size / 2 + 512, size - sizeof(block)};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		cr_assert_eq(pwrite(fd, block, sizeof(block), (off_t)at[i]), (ssize_t)sizeof(block));
	cr_assert_eq(pwrite(fd, zero, sizeof(zero), 8 * MIB), (ssize_t)sizeof(zero));
	close(fd);
	return path;
}

static const struct target_option fixed_opt[] = {{"subformat", "fixed"}};
static const struct target_option dynamic_opt[] = {{"subformat", "dynamic"}};
static const struct target_option ova_opt[] = {{"digest", "sha1"}};
static const struct target_option qcow2_opt[] = {{"compat", "1.1"}, {"compress", "true"}};

struct sinkcase {
	const char *writer, *ext, *qemu_fmt; /* qemu_fmt: compare with qemu-img, NULL: not a disk image */
	const struct target_option *o;
	size_t n_o;
};
static const struct sinkcase cases[] = {
	{"vmdk", "vmdk", "vmdk", NULL, 0}, {"ova", "ova", NULL, ova_opt, 1}, {"raw", "raw", "raw", NULL, 0},
	{"vhd", "vhd", "vpc", fixed_opt, 1}, {"gce", "tar.gz", NULL, NULL, 0},
	{"qcow2", "qcow2", "qcow2", qcow2_opt, 2}, {"qcow2", "qcow2", "qcow2", NULL, 0},
	{"vhd", "vhd", "vpc", dynamic_opt, 1}, {"vhdx", "vhdx", "vhdx", NULL, 0},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static void jobs_fill(const char *raw, uint64_t size, const char *tag, struct target_artifact *arts,
		      struct writer_job *jobs)
{
	for (size_t i = 0; i < N_CASES; i++) {
		arts[i] = (struct target_artifact){.writer = cases[i].writer, .extension = cases[i].ext,
						   .options = cases[i].o, .n_options = cases[i].n_o};
		char *name = xasprintf("qVSA-1.0-x%zu.%s", i, cases[i].ext);
		jobs[i] = (struct writer_job){.w = writer_find(cases[i].writer), .out = xasprintf("%s/%s-%s", dir, tag, name)};
		jobs[i].in = (struct writer_input){.raw = raw, .size = size, .artifact = &arts[i], .version = "qVSA-1.0",
						   .workdir = dir, .epoch = 1700000000, .build_id = "0123456789abcdef",
						   .name = name};
	}
}

static void jobs_clear(struct writer_job *jobs)
{
	for (size_t i = 0; i < N_CASES; i++) {
		free((char *)jobs[i].out);
		free((char *)jobs[i].in.name);
	}
}

Test(stream, one_pass_feeds_every_sink_and_hashes_what_it_writes)
{
	_cleanup_free_ char *raw = make_disk(GIB);
	struct target_artifact arts[N_CASES], arts1[N_CASES];
	struct writer_job jobs[N_CASES], one[N_CASES], seq[N_CASES];
	jobs_fill(raw, GIB, "pass", arts, jobs);
	jobs_fill(raw, GIB, "one", arts1, one);
	jobs_fill(raw, GIB, "seq", arts1, seq);
	cr_assert_eq(writer_stream(jobs, N_CASES, 0), 0, "%s", err_msg());
	cr_assert_eq(writer_stream(seq, N_CASES, 1), 0, "%s", err_msg());
	for (size_t i = 0; i < N_CASES; i++) {
		const char *out = jobs[i].out;
		char hex[65];
		uint64_t size = 0;
		cr_assert_eq(fs_sha256_file(out, hex, &size), 0);
		cr_assert_str_eq(jobs[i].sha256, hex, "%s: digest taken while writing is not the file's", out);
		cr_assert_eq(jobs[i].size, size, "%s", out);
		cr_assert_eq(jobs[i].w->check(out, GIB, &arts[i]), 0, "%s", err_msg());
		if (cases[i].qemu_fmt) {
			const char *argv[] = {"qemu-img", "compare", "-q", "-f", "raw", "-F", cases[i].qemu_fmt, raw, out, NULL};
			cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s differs from the disk: %s", out, err_msg());
		}
		/* The same bytes from a pass of this sink alone, and from a pass on one thread. */
		cr_assert_eq(one[i].w->write(&one[i].in, one[i].out), 0, "%s", err_msg());
		cr_assert_eq(fs_sha256_file(one[i].out, hex, NULL), 0);
		cr_assert_str_eq(jobs[i].sha256, hex, "%s: a pass of several sinks wrote other bytes", one[i].out);
		cr_assert_str_eq(jobs[i].sha256, seq[i].sha256, "%s: one thread wrote other bytes", seq[i].out);
	}
	/* The raw copy keeps the disk's holes. */
	struct stat st;
	cr_assert_eq(stat(jobs[2].out, &st), 0);
	cr_assert_lt((uint64_t)st.st_blocks * 512, 16 * MIB, "raw artifact is not sparse");
	jobs_clear(jobs);
	jobs_clear(one);
	jobs_clear(seq);
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

Test(stream, vmdk_has_markers_tables_footer_and_end_of_stream)
{
	const uint64_t size = 64 * MIB;
	_cleanup_free_ char *raw = make_disk(size);
	struct target_artifact a = {.writer = "vmdk", .extension = "vmdk"};
	struct writer_input in = {.raw = raw, .size = size, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
				  .build_id = "0123456789abcdef", .name = "qVSA-1.0-aws.vmdk"};
	_cleanup_free_ char *out = xasprintf("%s/s.vmdk", dir);
	cr_assert_eq(writer_find("vmdk")->write(&in, out), 0, "%s", err_msg());
	_cleanup_free_ uint8_t *f = NULL;
	size_t len = 0;
	cr_assert_eq(fs_read_file(out, (char **)&f, &len), 0);
	_cleanup_free_ uint8_t *disk = NULL;
	size_t dlen = 0;
	cr_assert_eq(fs_read_file(raw, (char **)&disk, &dlen), 0);
	cr_assert_eq(len % SECTOR, 0);
	cr_assert_eq(le32(f), 0x564d444b);
	cr_assert_eq(le32(f + 8), 0x30001, "flags");
	cr_assert_eq(le64(f + 56), UINT64_MAX, "header gdOffset is not GD_AT_END");
	uint64_t overhead = le64(f + 64);
	/* Walk the stream: grain markers, then after them their table, then the directory. */
	uint64_t pos = overhead * SECTOR, gd_at = 0, grains = 0, tables = 0, last_lba = 0;
	uint32_t gt_sectors[64] = {0};
	uint8_t *buf = malloc(64 * 1024);
	for (;;) {
		cr_assert_leq(pos + SECTOR, len);
		uint64_t val = le64(f + pos);
		uint32_t sz = le32(f + pos + 8);
		if (sz > 0) { /* a grain: inflates to the disk's bytes at its LBA, which is not all zero */
			cr_assert(grains == 0 || val > last_lba, "grains out of order");
			uLongf blen = 64 * 1024;
			cr_assert_eq(uncompress(buf, &blen, f + pos + 12, sz), Z_OK, "grain at %llu", (unsigned long long)pos);
			cr_assert_eq(blen, 64 * 1024);
			cr_assert_eq(memcmp(buf, disk + val * SECTOR, blen), 0, "grain at LBA %llu", (unsigned long long)val);
			cr_assert_neq(val * SECTOR, 8 * MIB, "an all-zero grain was stored");
			last_lba = val;
			grains++;
			pos += (12 + sz + SECTOR - 1) / SECTOR * SECTOR;
			continue;
		}
		uint32_t type = le32(f + pos + 12);
		if (type == 1) { /* grain table: its entries point at grain markers of its range */
			cr_assert_eq(val, 4);
			const uint8_t *gt = f + pos + SECTOR;
			for (size_t i = 0; i < 512; i++)
				if (le32(gt + 4 * i)) {
					uint64_t m = le32(gt + 4 * i) * (uint64_t)SECTOR;
					cr_assert_eq(le64(f + m) * SECTOR / (64 * 1024) % 512, i);
					gt_sectors[le64(f + m) * SECTOR / (32 * MIB)] = (uint32_t)(pos / SECTOR + 1);
				}
			tables++;
			pos += SECTOR + 4 * SECTOR;
			continue;
		}
		cr_assert_eq(type, 2, "unexpected marker type %u at %llu", type, (unsigned long long)pos);
		gd_at = pos / SECTOR + 1;
		for (size_t i = 0; i < 2; i++) /* 64 MiB: two tables */
			cr_assert_eq(le32(f + gd_at * SECTOR + 4 * i), gt_sectors[i], "directory entry %zu", i);
		pos += SECTOR + val * SECTOR;
		break;
	}
	free(buf);
	cr_assert_geq(grains, 5);
	cr_assert_eq(tables, 2);
	/* Footer marker, footer (the header with the directory's place), end-of-stream. */
	cr_assert_eq(pos + 3 * SECTOR, len, "the stream does not end after its directory");
	cr_assert_eq(le64(f + pos), 1);
	cr_assert_eq(le32(f + pos + 12), 3, "no footer marker");
	cr_assert_eq(le32(f + pos + SECTOR), 0x564d444b);
	cr_assert_eq(le64(f + pos + SECTOR + 56), gd_at, "footer gdOffset");
	cr_assert_eq(memcmp(f + pos + SECTOR, f, 56), 0, "footer differs from the header");
	static const uint8_t zero[SECTOR];
	cr_assert_eq(memcmp(f + pos + 2 * SECTOR, zero, SECTOR), 0, "no end-of-stream marker");
	const char *argv[] = {"qemu-img", "check", "-q", "-f", "vmdk", out, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s", err_msg());
}

Test(stream, vmdk_check_refuses_a_stream_without_its_end)
{
	const uint64_t size = 64 * MIB;
	_cleanup_free_ char *raw = make_disk(size);
	struct target_artifact a = {.writer = "vmdk", .extension = "vmdk"};
	struct writer_input in = {.raw = raw, .size = size, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
				  .build_id = "0123456789abcdef", .name = "x.vmdk"};
	_cleanup_free_ char *out = xasprintf("%s/x.vmdk", dir);
	cr_assert_eq(writer_find("vmdk")->write(&in, out), 0, "%s", err_msg());
	struct stat st;
	cr_assert_eq(stat(out, &st), 0);
	cr_assert_eq(truncate(out, st.st_size - SECTOR), 0);
	err_clear();
	cr_assert_eq(writer_find("vmdk")->check(out, size, &a), -1);
	cr_assert(strstr(err_msg(), "artifact '") && strstr(err_msg(), "footer"), "%s", err_msg());
}

/* The fixed VHD's footer is qemu-img's (force_size=on) but for the clock and the random id. */
Test(stream, vhd_fixed_footer_is_qemu_imgs)
{
	const uint64_t size = 64 * MIB;
	_cleanup_free_ char *raw = make_disk(size);
	struct target_artifact a = {.writer = "vhd", .extension = "vhd", .options = fixed_opt, .n_options = 1};
	struct writer_input in = {.raw = raw, .size = size, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
				  .build_id = "0123456789abcdef", .name = "x.vhd"};
	_cleanup_free_ char *out = xasprintf("%s/x.vhd", dir), *ref = xasprintf("%s/ref.vhd", dir);
	cr_assert_eq(writer_find("vhd")->write(&in, out), 0, "%s", err_msg());
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on",
			      raw, ref, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s", err_msg());
	uint8_t f[SECTOR], r[SECTOR];
	int fd = open(out, O_RDONLY), rfd = open(ref, O_RDONLY);
	cr_assert_eq(pread(fd, f, SECTOR, (off_t)size), SECTOR);
	cr_assert_eq(pread(rfd, r, SECTOR, (off_t)size), SECTOR);
	close(fd);
	close(rfd);
	cr_assert_eq(memcmp(f, r, 24), 0, "cookie, features, version, data offset");
	cr_assert_eq(memcmp(f + 28, r + 28, 64 - 28), 0, "creator, sizes, geometry, type");
	cr_assert_eq(memcmp(f + 84, r + 84, SECTOR - 84), 0, "saved state, reserved");
	const char *cmp[] = {"qemu-img", "compare", "-q", "-f", "vpc", "-F", "vpc", out, ref, NULL};
	cr_assert_eq(proc_run(cmp, NULL, NULL), 0, "%s", err_msg());
}

/* The dynamic VHD is qemu-img's (force_size=on) byte for byte, but for the
 * footer's clock, random id and checksum (given a disk without written
 * zeros: the sink allocates the blocks data extents touch, qemu-img the
 * blocks holding a non-zero byte). */
Test(stream, vhd_dynamic_is_qemu_imgs)
{
	const uint64_t size = 64 * MIB;
	_cleanup_free_ char *raw = make_disk(size);
	int dfd = open(raw, O_RDWR);
	cr_assert_eq(fallocate(dfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8 * MIB, 64 * 1024), 0);
	close(dfd);
	struct target_artifact a = {.writer = "vhd", .extension = "vhd", .options = dynamic_opt, .n_options = 1};
	struct writer_input in = {.raw = raw, .size = size, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
				  .build_id = "0123456789abcdef", .name = "x.vhd"};
	_cleanup_free_ char *out = xasprintf("%s/x.vhd", dir), *ref = xasprintf("%s/ref.vhd", dir);
	cr_assert_eq(writer_find("vhd")->write(&in, out), 0, "%s", err_msg());
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
			      raw, ref, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "%s", err_msg());
	_cleanup_free_ uint8_t *f = NULL, *r = NULL;
	size_t lf = 0, lr = 0;
	cr_assert_eq(fs_read_file(out, (char **)&f, &lf), 0);
	cr_assert_eq(fs_read_file(ref, (char **)&r, &lr), 0);
	cr_assert_eq(lf, lr, "size %zu, qemu-img's %zu", lf, lr);
	for (size_t at = 0; at < lf; at += SECTOR) {
		bool footer = at == 0 || at == lf - SECTOR;
		for (size_t i = 0; i < SECTOR; i++)
			if (!footer || (i < 24 || (i >= 28 && i < 64) || i >= 84))
				cr_assert_eq(f[at + i], r[at + i], "byte %zu differs from qemu-img's", at + i);
	}
}

/* GCE's tar.gz stores disk.raw sparse, as `tar --format=oldgnu -S` does:
 * GNU tar lists it at its full size and extracts the identical disk, with
 * more regions than the header holds (extension blocks). */
Test(stream, gce_is_a_sparse_tar_gnu_tar_reads)
{
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir);
	int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)GIB), 0);
	for (unsigned i = 0; i < 60; i++) {
		char text[64];
		int n = snprintf(text, sizeof(text), "region %u", i);
		cr_assert_eq(pwrite(fd, text, (size_t)n, (off_t)(i * 7 * MIB + i * 4096)), n);
	}
	close(fd);
	struct target_artifact a = {.writer = "gce", .extension = "tar.gz"};
	struct writer_input in = {.raw = raw, .size = GIB, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
				  .epoch = 1700000000, .build_id = "0123456789abcdef", .name = "x.tar.gz"};
	_cleanup_free_ char *out = xasprintf("%s/x.tar.gz", dir), *x = xasprintf("%s/x", dir);
	cr_assert_eq(writer_find("gce")->write(&in, out), 0, "%s", err_msg());
	cr_assert_eq(writer_find("gce")->check(out, GIB, &a), 0, "%s", err_msg());
	struct stat st;
	cr_assert_eq(stat(out, &st), 0);
	cr_assert_lt(st.st_size, 1 * MIB, "the holes were stored");
	const char *list[] = {"tar", "-tvzf", out, NULL};
	_cleanup_free_ char *listing = NULL;
	cr_assert_eq(proc_run(list, NULL, &listing), 0, "%s", err_msg());
	cr_assert(strstr(listing, " 1073741824 ") && strstr(listing, "disk.raw"), "%s", listing);
	cr_assert_eq(fs_mkdir_p(x, 0755), 0);
	const char *extract[] = {"tar", "-xSzf", out, "-C", x, NULL};
	cr_assert_eq(proc_run(extract, NULL, NULL), 0, "%s", err_msg());
	_cleanup_free_ char *got = xasprintf("%s/disk.raw", x);
	const char *cmp[] = {"cmp", raw, got, NULL};
	cr_assert_eq(proc_run(cmp, NULL, NULL), 0, "GNU tar extracted another disk: %s", err_msg());
}
