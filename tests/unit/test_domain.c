/* Domain XML for verification: content checks, and libvirt's test:///default
 * driver (with schema validation) proving libvirt accepts it. No QEMU runs. */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "cleanup.h"
#include "domain.h"
#include "err.h"

static void quiet_libvirt(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

/* A spec for the kvm target: virtio disk and NIC on q35. */
static struct domain_spec virtio_spec(void)
{
	return (struct domain_spec){
		.name = "qvsa-verify-123-kvm",
		.accel = "tcg",
		.machine = "q35",
		.disk_path = "/var/tmp/qvsa-verify-x/overlay.qcow2",
		.disk_format = "qcow2",
		.backing_path = "/work/out/qVSA-1.0/qVSA-1.0-kvm.qcow2",
		.backing_format = "qcow2",
		.disk_bus = "virtio",
		.seed_path = "/var/tmp/qvsa-verify-x/seed.iso",
		.nic_model = "virtio",
		.console_path = "/var/tmp/qvsa-verify-x/console.log",
	};
}

/* The vmware target: pvscsi controller and vmxnet3 on i440fx. */
static struct domain_spec vmware_spec(void)
{
	struct domain_spec s = virtio_spec();
	s.name = "qvsa-verify-123-vmware";
	s.accel = "kvm";
	s.machine = "pc";
	s.disk_bus = "scsi";
	s.disk_controller = "vmpvscsi";
	s.nic_model = "vmxnet3";
	s.no_relabel = true;
	return s;
}

static char *xml_of(const struct domain_spec *s)
{
	char *xml = NULL;
	int r = domain_xml(s, &xml);
	cr_assert_eq(r, 0, "domain_xml failed: %s", err_msg() ? err_msg() : "?");
	cr_assert_not_null(xml);
	return xml;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Define xml on the test driver with schema validation; returns libvirt's own
 * rendering of the definition (caller frees), failing the test if rejected. */
static char *libvirt_accepts(const char *xml)
{
	virSetErrorFunc(NULL, quiet_libvirt);
	virConnectPtr c = virConnectOpen("test:///default");
	cr_assert_not_null(c, "test:///default: %s", virGetLastErrorMessage());
	virDomainPtr d = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	cr_assert_not_null(d, "libvirt rejected the XML: %s\n%s", virGetLastErrorMessage(), xml);
	char *back = virDomainGetXMLDesc(d, 0);
	cr_assert_not_null(back);
	virDomainUndefine(d);
	virDomainFree(d);
	virConnectClose(c);
	return back;
}

Test(domain, virtio_target)
{
	struct domain_spec s = virtio_spec();
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<domain type='qemu'"), "tcg must give type qemu");
	cr_expect(strstr(xml, "<name>qvsa-verify-123-kvm</name>"));
	cr_expect(strstr(xml, "<memory unit='MiB'>1024</memory>"));
	cr_expect(strstr(xml, "<vcpu>2</vcpu>"));
	cr_expect(strstr(xml, "machine='q35'>hvm</type>"));
	cr_expect(strstr(xml, "<boot dev='hd'/>"));
	cr_expect(!strstr(xml, "<kernel"), "must boot through the image's bootloader");
	cr_expect(!strstr(xml, "<initrd"));
	cr_expect(strstr(xml, "<acpi/>"));
	cr_expect_eq(count(xml, ">destroy</on_"), 3);
	cr_expect(strstr(xml, "<target dev='vda' bus='virtio'/>"));
	cr_expect(strstr(xml, "<target dev='vdb' bus='virtio'/>"));
	cr_expect_eq(count(xml, "<readonly/>"), 1, "only the seed is read-only");
	cr_expect(strstr(xml, "<driver name='qemu' type='qcow2'/>"));
	cr_expect(strstr(xml, "<driver name='qemu' type='raw'/>"));
	cr_expect(strstr(xml, "<interface type='user'>\n      <model type='virtio'/>"));
	cr_expect(strstr(xml, "<serial type='file'>"));
	cr_expect(strstr(xml, "<console type='file'>"));
	cr_expect(strstr(xml, "<memballoon model='none'/>"));
	cr_expect(!strstr(xml, "graphics"));
	cr_expect(!strstr(xml, "floppy"));
	cr_expect(!strstr(xml, "controller type='scsi'"));
	cr_expect(!strstr(xml, "<seclabel type="), "relabelling stays on unless asked");
	/* The artifact is the stated backing image, never relabelled by a system libvirt. */
	cr_expect(strstr(xml, "<backingStore type='file'>\n        <format type='qcow2'/>\n"
			      "        <source file='/work/out/qVSA-1.0/qVSA-1.0-kvm.qcow2'>\n"
			      "          <seclabel model='dac' relabel='no'/>\n        </source>\n"
			      "        <backingStore/>\n      </backingStore>\n"), "%s", xml);

	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "<source file='/var/tmp/qvsa-verify-x/overlay.qcow2'/>"));
	cr_expect(strstr(back, "<source path='/var/tmp/qvsa-verify-x/console.log'/>"));
	cr_expect(strstr(back, "<on_reboot>destroy</on_reboot>"));
	cr_expect_eq(count(back, "<disk type='file' device='disk'>"), 2);
	cr_expect(strstr(back, "<source file='/work/out/qVSA-1.0/qVSA-1.0-kvm.qcow2'>"), "%s", back);
	cr_expect(strstr(back, "relabel='no'"));
}

Test(domain, scsi_pvscsi_vmxnet3_target)
{
	struct domain_spec s = vmware_spec();
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<domain type='kvm'"));
	cr_expect(strstr(xml, "machine='pc'>hvm</type>"));
	cr_expect(strstr(xml, "<controller type='scsi' index='0' model='vmpvscsi'/>"));
	cr_expect(strstr(xml, "<target dev='sda' bus='scsi'/>"));
	cr_expect(strstr(xml, "<target dev='sdb' bus='scsi'/>"));
	cr_expect_eq(count(xml, "<readonly/>"), 1);
	cr_expect(strstr(xml, "<model type='vmxnet3'/>"));
	cr_expect(strstr(xml, "<seclabel type='none' model='dac'/>"));
	cr_expect(!strstr(xml, "relabel='no'"), "nothing to say per disk when nothing is relabelled");
	cr_expect(strstr(xml, "<source file='/work/out/qVSA-1.0/qVSA-1.0-kvm.qcow2'/>"));

	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "model='vmpvscsi'"));
	cr_expect(strstr(back, "<model type='vmxnet3'/>"));
	/* Both disks sit on the one pvscsi controller. */
	cr_expect_eq(count(back, "<address type='drive' controller='0'"), 2);
}

Test(domain, escaping)
{
	struct domain_spec s = virtio_spec();
	s.disk_path = "/tmp/a&b<c>'d\"/overlay.qcow2";
	s.console_path = "/tmp/x'y/console.log";
	s.name = "qvsa-verify-1-a&b";
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "/tmp/a&amp;b&lt;c&gt;&apos;d&quot;/overlay.qcow2"));
	cr_expect(strstr(xml, "/tmp/x&apos;y/console.log"));
	cr_expect(strstr(xml, "<name>qvsa-verify-1-a&amp;b</name>"));
	cr_expect(!strstr(xml, "a&b"));

	/* libvirt reads back exactly the original path. */
	virSetErrorFunc(NULL, quiet_libvirt);
	virConnectPtr c = virConnectOpen("test:///default");
	cr_assert_not_null(c);
	virDomainPtr d = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	cr_assert_not_null(d, "%s", virGetLastErrorMessage());
	cr_expect_str_eq(virDomainGetName(d), "qvsa-verify-1-a&b");
	virDomainUndefine(d);
	virDomainFree(d);
	virConnectClose(c);

	_cleanup_free_ char *e = domain_xml_escape("&<>'\"plain");
	cr_expect_str_eq(e, "&amp;&lt;&gt;&apos;&quot;plain");
}

Test(domain, sata_seed_is_writable_copy)
{
	struct domain_spec s = virtio_spec();
	s.disk_bus = "sata";
	s.nic_model = "e1000";
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<target dev='sda' bus='sata'/>"));
	cr_expect(strstr(xml, "<target dev='sdb' bus='sata'/>"));
	cr_expect_eq(count(xml, "<readonly/>"), 0, "QEMU's ide-hd refuses read-only drives");
	_cleanup_free_ char *back = libvirt_accepts(xml);
	(void)back;
}

Test(domain, ide_needs_pc)
{
	struct domain_spec s = virtio_spec();
	s.disk_bus = "ide";
	char *xml = NULL;
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect_null(xml);
	cr_expect(strstr(err_msg(), "needs machine 'pc'"), "got: %s", err_msg());
	s.machine = "pc";
	_cleanup_free_ char *ok = xml_of(&s);
	cr_expect(strstr(ok, "<target dev='hda' bus='ide'/>"));
	_cleanup_free_ char *back = libvirt_accepts(ok);
	(void)back;
}

Test(domain, nvme_through_qemu_arguments)
{
	struct domain_spec s = virtio_spec();
	s.disk_bus = "nvme";
	s.disk_path = "/tmp/a,b/overlay.qcow2";
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"));
	cr_expect(strstr(xml, "file=/tmp/a,,b/overlay.qcow2,format=qcow2,if=none,id=qvsa-nvme0'"));
	cr_expect(strstr(xml, "'nvme,drive=qvsa-nvme0,serial=qvsa0,addr=0x1d,bootindex=1'"));
	cr_expect(strstr(xml, "format=raw,if=none,id=qvsa-nvme1,readonly=on'"));
	cr_expect(!strstr(xml, "<disk "));
	/* The schema accepts qemu:commandline; the test driver drops it (only the QEMU driver keeps it). */
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "<serial type='file'>"));
}

Test(domain, uefi)
{
	struct domain_spec s = virtio_spec();
	s.uefi = true;
	char *bad = NULL;
	cr_expect_eq(domain_xml(&s, &bad), -1, "UEFI without nvram path");
	s.nvram_path = "/var/tmp/qvsa-verify-x/VARS.fd";
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<os firmware='efi'>"));
	cr_expect(strstr(xml, "<nvram>/var/tmp/qvsa-verify-x/VARS.fd</nvram>"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "firmware='efi'"), "%s", back);
}

Test(domain, rejects_bad_input)
{
	struct domain_spec s = virtio_spec();
	char *xml = NULL;
	s.accel = "auto";
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "accelerator 'auto'"));
	s = virtio_spec();
	s.disk_bus = "floppy";
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "disk bus 'floppy'"));
	s = virtio_spec();
	s.backing_format = NULL;
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "backing image needs its format"));
	s = virtio_spec();
	s.console_path = NULL;
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "missing console_path"));
	cr_expect_null(xml, "ret_xml is written only on success");
}

Test(domain, devices_summary)
{
	char buf[128];
	domain_devices("virtio", NULL, "virtio", buf, sizeof(buf));
	cr_expect_str_eq(buf, "virtio-blk + virtio-net");
	domain_devices("scsi", "vmpvscsi", "vmxnet3", buf, sizeof(buf));
	cr_expect_str_eq(buf, "pvscsi + vmxnet3");
	domain_devices("scsi", "virtio-scsi", "virtio", buf, sizeof(buf));
	cr_expect_str_eq(buf, "virtio-scsi + virtio-net");
	domain_devices("nvme", NULL, "e1000", buf, sizeof(buf));
	cr_expect_str_eq(buf, "nvme + e1000");
	domain_devices("sata", NULL, "e1000e", buf, sizeof(buf));
	cr_expect_str_eq(buf, "ahci + e1000e");
	cr_expect(domain_format_known("vpc"));
	cr_expect(domain_format_known("vmdk"));
	cr_expect(!domain_format_known("vhdx"), "libvirt 9.0 has no vhdx storage format");
	cr_expect(domain_bus_supported("ide"));
	cr_expect(!domain_bus_supported("xen"));
}
