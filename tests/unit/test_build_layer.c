/* One disk for many targets: which targets share a disk, the union of their
 * modules, the fixed-size datasource file, and the patch that gives each
 * artifact its own list: found in a disk really assembled with the host
 * tools, applied to a copy, read back with debugfs. */
#include "assemble.h"
#include "build.h"
#include "build_layer.h"
#include "build_write.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "pack.h"
#include "proc.h"
#include "recipe.h"
#include "target.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define FIXTURES QVSA_SRCDIR "/tests/fixtures/recipes"
#define MIB (1024ULL * 1024)

static void recipe_freep(struct recipe **r) { recipe_free(*r); }

static struct target *load(const char *name)
{
	struct target *t = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, name, &t), 0, "%s", err_msg());
	return t;
}

static char *ds_of(const char *name)
{
	struct target *t = load(name);
	char *buf = calloc(1, BUILD_DS_SIZE + 1);
	cr_assert_eq(build_datasource_cfg(t, buf), 0, "%s", err_msg());
	target_free(t);
	return buf;
}

Test(build_layer, datasource_file_has_a_fixed_size_and_no_target_name)
{
	_cleanup_free_ char *kvm = ds_of("kvm"), *hyperv = ds_of("hyperv"), *openstack = ds_of("openstack");
	cr_assert_eq(strlen(kvm), BUILD_DS_SIZE, "no NUL inside, exactly the fixed size");
	cr_assert_not_null(strstr(kvm, "\ndatasource_list: [ NoCloud, ConfigDrive, None ]\n#"), "%s", kvm);
	cr_assert_eq(kvm[BUILD_DS_SIZE - 1], '\n');
	cr_assert_null(strstr(kvm, "kvm"), "names no target: %s", kvm);
	/* kvm and hyperv list the same datasources: the same bytes, so no patch between them. */
	cr_assert_eq(memcmp(kvm, hyperv, BUILD_DS_SIZE), 0);
	cr_assert_neq(memcmp(kvm, openstack, BUILD_DS_SIZE), 0);
	cr_assert_eq(strlen(openstack), BUILD_DS_SIZE);
	cr_assert_not_null(strstr(openstack, "datasource_list: [ OpenStack, ConfigDrive, NoCloud, None ]\n"));
	/* Every line after the list is a comment: YAML and the agent read only the list. */
	for (const char *l = strstr(openstack, "None ]\n") + 7; *l; l = strchr(l, '\n') + 1)
		cr_assert_eq(*l, '#', "a line that is not a comment: %s", l);
}

Test(build_layer, mbr_groups_by_firmware_gpt_puts_every_target_on_one_disk)
{
	_cleanup_(recipe_freep) struct recipe *mbr = NULL, *gpt = NULL;
	cr_assert_eq(recipe_load(FIXTURES "/minimal.yaml", &mbr), 0, "%s", err_msg());
	cr_assert_eq(recipe_load(FIXTURES "/full.yaml", &gpt), 0, "%s", err_msg());
	cr_assert_str_eq(recipe_disk_partition_table(mbr), "mbr");
	cr_assert_str_eq(recipe_disk_partition_table(gpt), "gpt");
	struct target *ts[] = {load("kvm"), load("vmware"), load("azure-gen2"), load("hyperv-gen2"), load("gcp")};
	char *keys[ELEMENTSOF(ts)];
	for (size_t i = 0; i < ELEMENTSOF(ts); i++)
		keys[i] = build_group_key(mbr, ts[i]);
	/* Different modules and datasources no longer split a firmware's disk. */
	cr_assert_str_eq(keys[0], keys[1]);
	cr_assert_str_eq(keys[0], keys[4]);
	cr_assert_str_eq(keys[2], keys[3]);
	cr_assert_str_neq(keys[0], keys[2]);
	for (size_t i = 0; i < ELEMENTSOF(ts); i++) {
		free(keys[i]);
		keys[i] = build_group_key(gpt, ts[i]);
	}
	for (size_t i = 1; i < ELEMENTSOF(ts); i++)
		cr_assert_str_eq(keys[0], keys[i]);

	cr_assert_str_eq(build_group_firmware(ts, 2), "bios");
	cr_assert_str_eq(build_group_firmware(ts + 2, 2), "uefi");
	cr_assert_str_eq(build_group_firmware(ts, 3), ASSEMBLE_HYBRID);
	cr_assert_str_eq(build_group_firmware(ts + 2, 3), ASSEMBLE_HYBRID);
	for (size_t i = 0; i < ELEMENTSOF(ts); i++) {
		free(keys[i]);
		target_free(ts[i]);
	}
}

Test(build_layer, module_union_keeps_order_drops_repeats_and_omissions)
{
	_cleanup_(recipe_freep) struct recipe *r = NULL;
	cr_assert_eq(recipe_load(FIXTURES "/full.yaml", &r), 0, "%s", err_msg()); /* add nvme, virtio_scsi; omit e1000 */
	static const char *const base[] = {"ext4", "sd_mod", NULL};
	struct target *ts[] = {load("kvm"), load("hyperv")};
	_cleanup_strv_ char **u = build_module_union(r, base, ts, ELEMENTSOF(ts));
	static const char *const want[] = {"ext4", "sd_mod", "nvme", "virtio_scsi", "virtio_pci", "virtio_blk",
					   "virtio_net", "hv_vmbus", "hv_utils", "hv_storvsc", "hv_netvsc", "ata_piix",
					   NULL};
	for (size_t i = 0; want[i]; i++) {
		cr_assert_not_null(u[i], "union ends before %s", want[i]);
		cr_assert_str_eq(u[i], want[i], "position %zu", i);
	}
	cr_assert_null(u[ELEMENTSOF(want) - 1], "more than expected: %s", u[ELEMENTSOF(want) - 1]);
	/* One target: its own list, what the driver audit checks it against. */
	_cleanup_strv_ char **one = build_module_union(r, base, ts, 1);
	cr_assert_str_eq(one[4], "virtio_pci");
	cr_assert_null(one[7]);
	target_free(ts[0]);
	target_free(ts[1]);
}

/* Real disks: made with the host tools, read back with debugfs. */
static char dir[64];
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/qvsa-test-layer-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}
static void teardown(void) { fs_rm_rf(dir); }
TestSuite(build_patch, .init = setup, .fini = teardown, .timeout = 60);

static void need_tools(void)
{
	if (geteuid() != 0)
		cr_skip_test("the host path unpacks the tree with root's owners: run as root");
	const char *tools[] = {"sfdisk", "mke2fs", "debugfs", "mformat", "mcopy", "qemu-img"};
	for (size_t i = 0; i < ELEMENTSOF(tools); i++)
		if (!proc_have(tools[i]))
			cr_skip_test("%s is not installed", tools[i]);
}

/* A UEFI disk (the root is its second partition) holding ds as the datasource file. */
static char *make_disk(const char *ds)
{
	_cleanup_free_ char *tar = xasprintf("%s/root.tar", dir), *esp = xasprintf("%s/esp.tar", dir);
	char *raw = xasprintf("%s/disk.raw", dir);
	struct pack *p = NULL;
	cr_assert_eq(pack_open(tar, PACK_TAR, 1700000000, &p), 0);
	cr_assert_eq(pack_data(p, "/etc/motd", 0644, "hello\n", 6), 0);
	cr_assert_eq(pack_data(p, BUILD_DS_PATH, 0644, ds, BUILD_DS_SIZE), 0);
	cr_assert_eq(pack_close(p), 0);
	cr_assert_eq(pack_open(esp, PACK_TAR, 1700000000, &p), 0);
	cr_assert_eq(pack_data(p, "/EFI/BOOT/BOOTX64.EFI", 0644, "x", 1), 0);
	cr_assert_eq(pack_close(p), 0);
	struct assemble_params ap = {
		.raw_path = raw, .size = 96 * MIB, .partition_table = "gpt", .filesystem = "ext4", .label = "qvsa-root",
		.fs_uuid = "11111111-2222-4333-8444-555555555555", .rootfs_tar = tar, .firmware = "uefi",
		.esp_tar = esp, .what = "test", .workdir = dir, .guid_seed = "0123456789abcdef", .epoch = 1700000000,
	};
	cr_assert_eq(assemble_disk_host(&ap), 0, "%s", err_msg());
	return raw;
}

static char *debugfs_cat(const char *raw, uint64_t part_off, const char *path)
{
	_cleanup_free_ char *dev = xasprintf("%s?offset=%llu", raw, (unsigned long long)part_off);
	_cleanup_free_ char *req = xasprintf("cat %s", path);
	const char *argv[] = {"debugfs", "-c", "-R", req, dev, NULL};
	char *out = NULL;
	cr_assert_eq(proc_run(argv, NULL, &out), 0, "%s", err_msg());
	return out;
}

Test(build_patch, offset_found_in_the_root_and_a_patched_copy_reads_the_other_list)
{
	need_tools();
	_cleanup_free_ char *kvm = ds_of("kvm"), *oci = ds_of("oci");
	_cleanup_free_ char *raw = make_disk(kvm);
	uint64_t off = 0;
	cr_assert_eq(assemble_file_offset(raw, BUILD_DS_PATH, kvm, BUILD_DS_SIZE, &off), 0, "%s", err_msg());
	const uint64_t root = (1 + ASSEMBLE_ESP_MIB) * MIB;
	cr_assert_geq(off, root, "in the root partition, not the ESP: %llu", (unsigned long long)off);
	cr_assert_eq(off % 4096, 0, "a block boundary: %llu", (unsigned long long)off);

	/* The patch an artifact of oci gets, applied by hand to a copy (as a reader would). */
	_cleanup_free_ char *copy = xasprintf("%s/copy.raw", dir);
	const char *cp[] = {"cp", "--sparse=always", raw, copy, NULL};
	cr_assert_eq(proc_run(cp, NULL, NULL), 0);
	int fd = open(copy, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, oci, BUILD_DS_SIZE, (off_t)off), BUILD_DS_SIZE);
	close(fd);
	_cleanup_free_ char *got = debugfs_cat(copy, root, BUILD_DS_PATH);
	cr_assert_str_eq(got, oci);
	_cleanup_free_ char *motd = debugfs_cat(copy, root, "/etc/motd");
	cr_assert_str_eq(motd, "hello\n", "nothing else changed");
	_cleanup_free_ char *orig = debugfs_cat(raw, root, BUILD_DS_PATH);
	cr_assert_str_eq(orig, kvm, "the shared disk keeps its own list");
}

Test(build_patch, offset_refuses_bytes_that_are_not_the_file)
{
	need_tools();
	_cleanup_free_ char *kvm = ds_of("kvm"), *oci = ds_of("oci");
	_cleanup_free_ char *raw = make_disk(kvm);
	uint64_t off = 0;
	cr_assert_eq(assemble_file_offset(raw, BUILD_DS_PATH, oci, BUILD_DS_SIZE, &off), -1);
	cr_assert(strstr(err_msg(), "are not those of"), "%s", err_msg());
	cr_assert_eq(assemble_file_offset(raw, BUILD_DS_PATH, kvm, 100, &off), -1, "size must match");
	cr_assert(strstr(err_msg(), "expected 100"), "%s", err_msg());
	cr_assert_eq(assemble_file_offset(raw, "/etc/none.cfg", kvm, BUILD_DS_SIZE, &off), -1);
	cr_assert(strstr(err_msg(), "no ext partition holds"), "%s", err_msg());
}

/* Writers that read the raw file whole (qemu-img) get a patched copy; the shared file stays as it is. */
Test(build_patch, whole_file_writers_read_a_patched_copy_grown_to_their_size)
{
	need_tools();
	_cleanup_(recipe_freep) struct recipe *r = NULL;
	cr_assert_eq(recipe_load(FIXTURES "/minimal.yaml", &r), 0, "%s", err_msg());
	/* qcow2 v2 (compat 0.10) is the one shipped writer that still reads the file whole (qemu-img). */
	_cleanup_free_ char *tdir = xasprintf("%s/data/targets", dir), *tpath = xasprintf("%s/kvm.yaml", tdir);
	_cleanup_free_ char *kvm_yaml = NULL, *src = xasprintf("%s/targets/kvm.yaml", QVSA_SRCDIR);
	size_t ylen = 0;
	cr_assert_eq(fs_read_file(src, &kvm_yaml, &ylen), 0);
	char *c = strstr(kvm_yaml, "compat: \"1.1\"");
	cr_assert(c, "targets/kvm.yaml sets compat 1.1");
	*c = '\0';
	_cleanup_free_ char *v2 = xasprintf("%scompat: \"0.10\"%s", kvm_yaml, c + strlen("compat: \"1.1\""));
	cr_assert_eq(fs_mkdir_p(tdir, 0755), 0);
	cr_assert_eq(fs_write_file_atomic(tpath, v2, strlen(v2), 0644), 0);
	struct target *t = NULL;
	_cleanup_free_ char *ddir = xasprintf("%s/data", dir);
	cr_assert_eq(target_find(ddir, "kvm", &t), 0, "%s", err_msg());
	_cleanup_free_ char *raw = xasprintf("%s/disk.raw", dir), *out = xasprintf("%s/out", dir);
	cr_assert_eq(fs_mkdir_p(out, 0755), 0);
	static const char own[] = "the disk's own bytes";
	int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, own, sizeof(own), (off_t)MIB), (ssize_t)sizeof(own));
	cr_assert_eq(ftruncate(fd, (off_t)(2 * MIB)), 0);
	close(fd);

	struct build_opts o = {.datadir = QVSA_SRCDIR};
	struct stamp st = {.appliance = "t", .version = "qVSA-2.5", .recipe_sha256 = "ab", .targets = "kvm",
			   .kernel = "k", .epoch = 1700000000};
	stamp_init(&st);
	struct build_artifact a = {0};
	struct pending p = {0};
	pending_init(r, &o, &st, t, target_artifact_at(t, 0), 4 * MIB, out, out, &a, &p);
	static const uint8_t mine[] = "this artifact's bytes";
	struct writer_patch patch = {.offset = MIB, .data = mine, .len = sizeof(mine)};
	p.patches = &patch;
	p.n_patches = 1;
	cr_assert_eq(write_whole(r, &st, raw, dir, &p, 1), 0, "%s", err_msg());

	_cleanup_free_ char *back = xasprintf("%s/back.raw", dir);
	const char *conv[] = {"qemu-img", "convert", "-q", "-O", "raw", a.path, back, NULL};
	cr_assert_eq(proc_run(conv, NULL, NULL), 0, "%s", err_msg());
	_cleanup_free_ char *buf = NULL, *orig = NULL;
	size_t len = 0, olen = 0;
	cr_assert_eq(fs_read_file(back, &buf, &len), 0);
	cr_assert_eq(len, 4 * MIB, "the artifact's own size");
	cr_assert_eq(memcmp(buf + MIB, mine, sizeof(mine)), 0, "patched");
	cr_assert_eq(fs_read_file(raw, &orig, &olen), 0);
	cr_assert_eq(olen, 2 * MIB, "the shared disk was neither grown nor patched");
	cr_assert_eq(memcmp(orig + MIB, own, sizeof(own)), 0);
	_cleanup_free_ char *copy = xasprintf("%s/patched-0.raw", dir);
	cr_assert(!fs_exists(copy), "the copy is removed");
	free(p.tmp);
	free(a.target);
	free(a.path);
	free(a.file);
	free(a.writer);
	target_free(t);
}
