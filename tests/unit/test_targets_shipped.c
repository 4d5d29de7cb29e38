/* The shipped targets (the data files under targets/): each loads, names writers qvsa has,
 * states its platform's facts, and lists modules that exist and cover the
 * devices verify gives it. Split from test_writers.c: target data, not writers. */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "modules.h"
#include "target.h"

#include <criterion/criterion.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static void target_freep(struct target **t) { target_free(*t); }

static struct target *load(const char *name)
{
	_cleanup_free_ char *path = xasprintf("%s/targets/%s.yaml", QVSA_SRCDIR, name);
	struct target *t = NULL;
	cr_assert_eq(target_load(path, &t), 0, "%s", err_msg());
	return t;
}

static const char *const shipped[] = {"aws", "azure", "azure-gen2", "gcp", "hyperv", "hyperv-gen2", "kvm",
				      "nutanix", "oci", "openstack", "vmware", "xen", NULL};

Test(targets, every_shipped_target_loads_with_known_writers)
{
	_cleanup_strv_ char **names = NULL;
	cr_assert_eq(target_list(QVSA_SRCDIR, &names), 0, "%s", err_msg());
	for (size_t i = 0; shipped[i]; i++) {
		cr_assert_not_null(names[i], "missing target %s", shipped[i]);
		cr_assert_str_eq(names[i], shipped[i]);
		_cleanup_(target_freep) struct target *t = load(shipped[i]);
		for (size_t k = 0; k < target_n_artifacts(t); k++) {
			const char *w = target_artifact_at(t, k)->writer;
			cr_assert_not_null(writer_find(w), "%s: unknown writer %s", shipped[i], w);
		}
		bool uefi = strcmp(target_firmware(t), "uefi") == 0;
		cr_assert_eq(uefi, strcmp(target_verify_machine(t), "q35") == 0, "%s: uefi targets verify on q35 only",
			     shipped[i]);
		cr_assert_not_null(target_modules(t)[0], "%s: no modules", shipped[i]);
	}
	cr_assert_null(names[12], "unexpected target %s", names[12]);
}

Test(targets, platform_facts)
{
	_cleanup_(target_freep) struct target *vmware = load("vmware"), *azure = load("azure"), *gen2 = load("azure-gen2"),
					      *xen = load("xen"), *gcp = load("gcp"), *aws = load("aws"),
					      *hv2 = load("hyperv-gen2");
	cr_assert_str_eq(target_writer(vmware), "ova");
	cr_assert_str_eq(target_verify_disk_controller(vmware), "vmpvscsi");
	cr_assert_str_eq(target_verify_nic_model(vmware), "vmxnet3");
	cr_assert_str_eq(target_option(azure, "subformat"), "fixed");
	cr_assert_str_eq(target_firmware(azure), "bios");
	cr_assert_str_eq(target_firmware(gen2), "uefi");
	cr_assert_eq(target_size_alignment(azure), MIB);
	cr_assert_str_eq(target_datasources(azure)[0], "Azure");
	cr_assert_str_eq(target_option(xen, "subformat"), "dynamic");
	cr_assert_str_eq(target_writer(gcp), "gce");
	cr_assert_str_eq(target_extension(gcp), "tar.gz");
	cr_assert_eq(target_size_alignment(gcp), GIB);
	cr_assert_str_eq(target_verify_disk_controller(gcp), "virtio-scsi");
	cr_assert_eq(target_n_artifacts(aws), 2);
	cr_assert_str_eq(target_artifact_at(aws, 0)->writer, "vmdk");
	cr_assert_str_eq(target_artifact_at(aws, 1)->writer, "raw");
	cr_assert_str_eq(target_verify_disk_bus(aws), "nvme");
	cr_assert_str_eq(target_writer(hv2), "vhdx");
	cr_assert_str_eq(target_firmware(hv2), "uefi");
}

/* The modules a target names exist in Debian 6.1's kernel, and cover the devices verify emulates. */
Test(targets, modules_exist_and_cover_the_verify_devices)
{
	_cleanup_free_ char *cache = fs_cache_dir();
	_cleanup_free_ char *pattern = xasprintf("%s/kernels/*/lib/modules/*/modules.dep", cache);
	glob_t g;
	if (glob(pattern, 0, NULL, &g) != 0)
		cr_skip_test("no cached kernel under %s/kernels (a build fetches one)", cache);
	_cleanup_free_ char *moddir = fs_dirname(g.gl_pathv[0]);
	globfree(&g);
	struct modindex *mi = NULL;
	cr_assert_eq(modindex_load(moddir, &mi), 0, "%s", err_msg());
	static const struct { const char *what, *module; } need[] = {
		{"virtio", "virtio_blk"}, {"scsi", "sd_mod"}, {"sata", "ahci"}, {"sata", "sd_mod"}, {"ide", "ata_piix"},
		{"ide", "sd_mod"}, {"nvme", "nvme"}, {"vmpvscsi", "vmw_pvscsi"}, {"virtio-scsi", "virtio_scsi"},
		{"nic:virtio", "virtio_net"}, {"nic:e1000", "e1000"}, {"nic:vmxnet3", "vmxnet3"},
	};
	for (size_t i = 0; shipped[i]; i++) {
		_cleanup_(target_freep) struct target *t = load(shipped[i]);
		_cleanup_strv_ char **paths = NULL;
		cr_assert_eq(modindex_resolve(mi, target_modules(t), shipped[i], &paths), 0, "%s", err_msg());
		const char *ctl = target_verify_disk_controller(t);
		_cleanup_free_ char *nic = xasprintf("nic:%s", target_verify_nic_model(t));
		for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++) {
			if (strcmp(need[k].what, target_verify_disk_bus(t)) != 0 && !(ctl && strcmp(need[k].what, ctl) == 0) &&
			    strcmp(need[k].what, nic) != 0)
				continue;
			bool found = false;
			for (char *const *m = target_modules(t); *m && !found; m++)
				found = strcmp(*m, need[k].module) == 0;
			cr_assert(found, "%s: verify uses %s, which needs module %s", shipped[i], need[k].what,
				  need[k].module);
		}
	}
	modindex_free(mi);
}
