/* The reader's per-artifact layer: each job's patches reach its sink and no
 * other's, in data and in holes, across grain boundaries; jobs with equal
 * patches (equal content, other memory) get the same bytes; a compressed
 * format carries the patched bytes too. */
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
#include <unistd.h>

#define MIB (1024ull * 1024)

static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-patch-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(patch, .init = setup, .fini = teardown, .timeout = 120);

static const uint64_t size = 16 * MIB;

/* 16 MiB: data in the first 2 MiB and at 9 MiB, holes elsewhere. */
static char *make_disk(uint8_t **ret_bytes)
{
	char *path = xasprintf("%s/disk.raw", dir);
	uint8_t *d = calloc(1, size);
	cr_assert_not_null(d);
	uint32_t x = 99;
	for (uint64_t i = 0; i < 2 * MIB; i++) {
		x = x * 1103515245 + 12345;
		d[i] = (uint8_t)(x >> 24);
		d[9 * MIB + i % MIB] = (uint8_t)"patched disk "[i % 13];
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(pwrite(fd, d, 2 * MIB, 0), (ssize_t)(2 * MIB));
	cr_assert_eq(pwrite(fd, d + 9 * MIB, MIB, 9 * MIB), (ssize_t)MIB);
	close(fd);
	*ret_bytes = d;
	return path;
}

/* The disk with the patches applied, as a file to compare with. */
static char *expected(const uint8_t *disk, const struct writer_patch *p, size_t n, const char *name)
{
	_cleanup_free_ uint8_t *d = malloc(size);
	memcpy(d, disk, size);
	for (size_t i = 0; i < n; i++)
		memcpy(d + p[i].offset, p[i].data, p[i].len);
	char *path = xasprintf("%s/%s", dir, name);
	cr_assert_eq(fs_write_file_atomic(path, d, size, 0644), 0);
	return path;
}

static void assert_same_file(const char *a, const char *b)
{
	_cleanup_free_ char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	cr_assert_eq(fs_read_file(a, &x, &lx), 0);
	cr_assert_eq(fs_read_file(b, &y, &ly), 0);
	cr_assert_eq(lx, ly, "%s and %s differ in size", a, b);
	cr_assert_eq(memcmp(x, y, lx), 0, "%s and %s differ", a, b);
}

Test(patch, each_job_gets_its_own_layer_and_equal_layers_agree)
{
	_cleanup_free_ uint8_t *disk = NULL;
	_cleanup_free_ char *raw = make_disk(&disk);
	static const char a1[] = "datasource_list: [ NoCloud ]\n", a2[] = "in a hole", b1[] = "Ec2";
	static uint8_t span[200000]; /* crosses grains, and the data's end at 2 MiB into the hole */
	memset(span, 0xa5, sizeof(span));
	const struct writer_patch pa[] = {
		{4096 + 100, (const uint8_t *)a1, sizeof(a1) - 1},
		{2 * MIB - 100000, span, sizeof(span)},
		{12 * MIB + 7, (const uint8_t *)a2, sizeof(a2) - 1},
	};
	const struct writer_patch pb[] = {{4096 + 100, (const uint8_t *)b1, sizeof(b1) - 1},
					  {size - 3, (const uint8_t *)b1, 3}};
	/* a's patches again, from other memory: the same layer. */
	_cleanup_free_ char *c1 = xstrdup(a1), *c2 = xstrdup(a2);
	_cleanup_free_ uint8_t *cspan = malloc(sizeof(span));
	memcpy(cspan, span, sizeof(span));
	const struct writer_patch pc[] = {
		{4096 + 100, (const uint8_t *)c1, sizeof(a1) - 1},
		{2 * MIB - 100000, cspan, sizeof(span)},
		{12 * MIB + 7, (const uint8_t *)c2, sizeof(a2) - 1},
	};
	struct target_artifact raw_a = {.writer = "raw", .extension = "raw"};
	struct target_artifact vmdk_a = {.writer = "vmdk", .extension = "vmdk"};
	const char *names[] = {"a.raw", "b.raw", "none.raw", "c.raw", "a.vmdk"};
	const struct writer_patch *ps[] = {pa, pb, NULL, pc, pa};
	size_t ns[] = {3, 2, 0, 3, 3};
	struct writer_job jobs[5];
	for (size_t i = 0; i < 5; i++) {
		jobs[i] = (struct writer_job){.w = writer_find(i == 4 ? "vmdk" : "raw"), .out = xasprintf("%s/%s", dir, names[i])};
		jobs[i].in = (struct writer_input){.raw = raw, .size = size, .artifact = i == 4 ? &vmdk_a : &raw_a,
						   .version = "qVSA-1.0", .workdir = dir, .build_id = "0123456789abcdef",
						   .name = names[i], .patches = ps[i], .n_patches = ns[i]};
	}
	cr_assert_eq(writer_stream(jobs, 5, 2), 0, "%s", err_msg());
	_cleanup_free_ char *ea = expected(disk, pa, 3, "expect-a"), *eb = expected(disk, pb, 2, "expect-b");
	assert_same_file(jobs[0].out, ea);
	assert_same_file(jobs[1].out, eb);
	assert_same_file(jobs[2].out, raw);
	assert_same_file(jobs[3].out, ea);
	cr_assert_str_eq(jobs[0].sha256, jobs[3].sha256);
	const char *argv[] = {"qemu-img", "compare", "-q", "-f", "raw", "-F", "vmdk", ea, jobs[4].out, NULL};
	cr_assert_eq(proc_run(argv, NULL, NULL), 0, "the patched VMDK is not the patched disk: %s", err_msg());
	for (size_t i = 0; i < 5; i++)
		free((char *)jobs[i].out);
}

Test(patch, a_patch_outside_the_disk_is_refused)
{
	_cleanup_free_ uint8_t *disk = NULL;
	_cleanup_free_ char *raw = make_disk(&disk);
	const struct writer_patch p = {size - 2, (const uint8_t *)"abc", 3};
	struct target_artifact a = {.writer = "raw", .extension = "raw"};
	_cleanup_free_ char *out = xasprintf("%s/x.raw", dir);
	struct writer_job job = {.w = writer_find("raw"), .out = out,
				 .in = {.raw = raw, .size = size, .artifact = &a, .version = "qVSA-1.0", .workdir = dir,
					.patches = &p, .n_patches = 1}};
	err_clear();
	cr_assert_eq(writer_stream(&job, 1, 1), -1);
	cr_assert(strstr(err_msg(), "patch 0"), "%s", err_msg());
}
