/* Target data files: defaults, every key, lookup by name, listing, and the
 * exact "file:line:column: message" of bad files. The fixture folder
 * tests/fixtures/targets is laid out as a datadir's targets/ folder. */
#include "target.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "platform.h"

#include <criterion/criterion.h>
#include <string.h>

#define DATADIR QVSA_SRCDIR "/tests/fixtures"
#define TARGETS DATADIR "/targets"
#define BAD TARGETS "/bad"

static char sentinel;
#define UNTOUCHED ((struct target *)&sentinel)

static void target_freep(struct target **t) { target_free(*t); }

static void expect_strv(char *const *got, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		cr_assert_not_null(got[i], "missing entry %zu ('%s')", i, want[i]);
		cr_assert_str_eq(got[i], want[i]);
	}
	cr_assert_null(got[i], "extra entry '%s'", got[i]);
}

static void expect_error(const char *name, const char *where_and_message)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", BAD, name);
	_cleanup_free_ char *want = xasprintf("%s:%s", path, where_and_message);
	struct target *t = UNTOUCHED;
	err_clear();
	cr_assert_eq(target_load(path, &t), -1, "target_load(%s) succeeded", path);
	cr_assert_eq(t, UNTOUCHED, "*ret written on error");
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), want);
}

Test(target, kvm_shipped)
{
	/* The data file the product ships, not a fixture copy. */
	_cleanup_(target_freep) struct target *t = NULL;
	static const char *const modules[] = { "virtio_pci", "virtio_blk", "virtio_net", NULL };
	static const char *const datasources[] = { "NoCloud", "ConfigDrive", "None", NULL };

	cr_assert_eq(target_load(QVSA_SRCDIR "/targets/kvm.yaml", &t), 0, "%s", err_msg());
	cr_assert_str_eq(target_name(t), "kvm");
	cr_assert_str_eq(target_description(t), "KVM / libvirt / Proxmox (qcow2)");
	cr_assert_str_eq(target_writer(t), "qcow2");
	cr_assert_str_eq(target_extension(t), "qcow2");
	cr_assert_eq(target_n_options(t), 2);
	cr_assert_str_eq(target_option_at(t, 0)->key, "compat");
	cr_assert_str_eq(target_option_at(t, 0)->value, "1.1");
	cr_assert_str_eq(target_option(t, "compat"), "1.1");
	cr_assert_str_eq(target_option(t, "compress"), "true");
	cr_assert_null(target_option(t, "subformat"));
	cr_assert_null(target_option_at(t, 2));
	cr_assert_str_eq(target_firmware(t), "bios");
	cr_assert_eq(target_size_alignment(t), UINT64_C(1) << 20);
	expect_strv(target_modules(t), modules);
	expect_strv(target_datasources(t), datasources);
	cr_assert_str_eq(target_verify_machine(t), "pc");
	cr_assert_str_eq(target_verify_disk_bus(t), "virtio");
	cr_assert_null(target_verify_disk_controller(t));
	cr_assert_str_eq(target_verify_nic_model(t), "virtio");
	cr_assert_str_eq(target_verify_platform(t), "nocloud");
}

Test(target, every_key_set)
{
	_cleanup_(target_freep) struct target *t = NULL;
	static const char *const modules[] = { "vmw_pvscsi", "vmxnet3", NULL };
	static const char *const datasources[] = { "VMware", "OVF", "None", NULL };

	cr_assert_eq(target_find(DATADIR, "vmware", &t), 0, "%s", err_msg());
	cr_assert_str_eq(target_name(t), "vmware");
	cr_assert_str_eq(target_writer(t), "vmdk");
	cr_assert_str_eq(target_extension(t), "vmdk");
	/* Options keep the file's order; numbers stay text. */
	cr_assert_eq(target_n_options(t), 3);
	cr_assert_str_eq(target_option_at(t, 0)->key, "subformat");
	cr_assert_str_eq(target_option_at(t, 1)->key, "adapter_type");
	cr_assert_str_eq(target_option_at(t, 2)->key, "hw_version");
	cr_assert_str_eq(target_option(t, "hw_version"), "14");
	cr_assert_str_eq(target_firmware(t), "uefi");
	cr_assert_eq(target_size_alignment(t), 64 * 1024);
	expect_strv(target_modules(t), modules);
	expect_strv(target_datasources(t), datasources);
	cr_assert_str_eq(target_verify_machine(t), "q35");
	cr_assert_str_eq(target_verify_disk_bus(t), "scsi");
	cr_assert_str_eq(target_verify_disk_controller(t), "vmpvscsi");
	cr_assert_str_eq(target_verify_nic_model(t), "vmxnet3");
}

Test(target, defaults)
{
	_cleanup_(target_freep) struct target *t = NULL;
	static const char *const none[] = { NULL };

	cr_assert_eq(target_find(DATADIR, "minimal", &t), 0, "%s", err_msg());
	cr_assert_eq(target_n_options(t), 0);
	cr_assert_null(target_option(t, "compat"));
	cr_assert_str_eq(target_firmware(t), "bios");
	cr_assert_eq(target_size_alignment(t), 512);
	expect_strv(target_modules(t), none);
	cr_assert_str_eq(target_verify_machine(t), "pc");
	cr_assert_str_eq(target_verify_disk_bus(t), "virtio");
	cr_assert_null(target_verify_disk_controller(t));
	cr_assert_str_eq(target_verify_nic_model(t), "virtio");
}

Test(target, list_sorted)
{
	_cleanup_strv_ char **names = NULL;
	static const char *const want[] = { "kvm", "minimal", "vmware", NULL };
	/* README and the bad/ folder are not targets. */
	cr_assert_eq(target_list(DATADIR, &names), 0, "%s", err_msg());
	expect_strv(names, want);
}

Test(target, list_missing_folder)
{
	char **names = NULL;
	err_clear();
	cr_assert_eq(target_list(QVSA_SRCDIR "/tests/fixtures/recipes", &names), -1);
	cr_assert_null(names);
	cr_assert_str_eq(err_msg(), "listing targets in '" QVSA_SRCDIR "/tests/fixtures/recipes/targets': "
				    "No such file or directory");
}

static void expect_unknown(const char *name, const char *message)
{
	struct target *t = UNTOUCHED;
	err_clear();
	cr_assert_eq(target_find(DATADIR, name, &t), -1);
	cr_assert_eq(t, UNTOUCHED);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_str_eq(err_msg(), message);
}

Test(target, find_unknown_suggests)
{
	expect_unknown("kwm", "unknown target 'kwm'; did you mean 'kvm'? (qvsa targets lists them)");
	expect_unknown("vmwrae", "unknown target 'vmwrae'; did you mean 'vmware'? (qvsa targets lists them)");
	expect_unknown("xen", "unknown target 'xen' (qvsa targets lists them)");
	/* Names are never paths. */
	expect_unknown("bad/controller", "unknown target 'bad/controller' (qvsa targets lists them)");
	expect_unknown("../targets/kvm", "unknown target '../targets/kvm' (qvsa targets lists them)");
}

Test(target, bad_files)
{
	expect_error("name-mismatch.yaml",
		     "1:7: expected 'name-mismatch' (the file's name without .yaml) for 'name', got 'kvm'");
	expect_error("unknown-key.yaml", "4:1: unknown key 'firmwre' at the top level; did you mean 'firmware'?");
	expect_error("firmware.yaml", "4:11: expected one of 'bios', 'uefi' for 'firmware', got 'efi'");
	expect_error("alignment.yaml", "4:17: expected a power of two of at least 512 for 'size_alignment', got '1000'");
	expect_error("alignment-word.yaml",
		     "4:17: expected a size like 512M or 2G for 'size_alignment', got 'one-meg'");
	expect_error("controller.yaml", "7:20: 'verify.disk_controller' needs disk_bus scsi, but disk_bus is 'virtio'");
	expect_error("nic.yaml", "6:14: expected one of 'virtio', 'vmxnet3', 'e1000', 'e1000e', 'rtl8139' "
				 "for 'verify.nic_model', got 'pcnet'");
	expect_error("writer-missing.yaml", "4:3: missing required key 'writer' in artifact");
	expect_error("options-sequence.yaml", "6:12: expected a mapping for 'artifact.options', got a sequence");
	expect_error("option-value.yaml", "7:13: expected a string for 'artifact.options.compat', got a mapping");
	expect_error("datasources-empty.yaml", "4:14: expected at least one entry for 'datasources'");
	expect_error("extension.yaml", "3:36: expected an extension without the leading dot ([a-z0-9]+ parts joined by dots) for "
				       "'artifact.extension', got '.img'");
	expect_error("module.yaml", "4:23: expected a module name ([a-z0-9_-]+) for 'modules[1]', got 'virtio blk'");
	expect_error("duplicate-key.yaml", "3:1: duplicate key 'description' (first at line 2, column 1)");
	expect_error("syntax.yaml", "4:1: YAML syntax error: found unexpected end of stream "
				    "(while scanning a quoted scalar at line 2, column 14)");
}

Test(target, bad_platform_and_datasources)
{
	expect_error("datasource-unknown.yaml",
		     "4:24: unknown cloud-init datasource 'Openstack' in 'datasources'; did you mean 'OpenStack'?");
	_cleanup_free_ char *unknown = xasprintf("6:13: unknown platform 'esxi' for 'verify.platform' (one of: %s)",
						 platform_names());
	expect_error("platform-unknown.yaml", unknown);
	expect_error("platform-unreachable.yaml",
		     "6:13: platform 'vmware' delivers the code through the 'vmware' channel, which the agent uses only "
		     "when 'datasources' lists OVF or VMware");
	expect_error("platform-missing.yaml", "6:3: missing required key 'platform' in verify");
	expect_error("verify-missing.yaml", "1:1: missing required key 'verify' at the top level");
}

/* Every shipped target plays the platform of the place it ships to, through
 * a channel its datasources enable (the load checks the latter). */
Test(target, shipped_platforms)
{
	static const char *const want[][2] = {
		{ "kvm", "nocloud" },   { "openstack", "openstack" }, { "nutanix", "configdrive" }, { "oci", "oci" },
		{ "vmware", "vmware" }, { "azure", "azure" },         { "azure-gen2", "azure" },    { "hyperv", "console" },
		{ "hyperv-gen2", "console" }, { "gcp", "gce" },       { "aws", "ec2" },             { "xen", "console" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		_cleanup_(target_freep) struct target *t = NULL;
		cr_assert_eq(target_find(QVSA_SRCDIR, want[i][0], &t), 0, "%s", err_msg());
		cr_assert_str_eq(target_verify_platform(t), want[i][1], "target %s", want[i][0]);
		/* None stays last where it is listed. */
		char *const *d = target_datasources(t);
		for (size_t k = 0; d[k]; k++)
			cr_assert(strcmp(d[k], "None") != 0 || !d[k + 1], "target %s: None is not last", want[i][0]);
	}
	_cleanup_(target_freep) struct target *os = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "openstack", &os), 0);
	cr_assert_str_eq(target_datasources(os)[0], "OpenStack");
	_cleanup_(target_freep) struct target *vm = NULL;
	cr_assert_eq(target_find(QVSA_SRCDIR, "vmware", &vm), 0);
	cr_assert_str_eq(target_datasources(vm)[0], "OVF");
}
