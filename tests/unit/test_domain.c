/* Domain XML for verification: content checks, and libvirt's test:///default
 * driver (with schema validation) proving libvirt accepts it. No QEMU runs. */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "cleanup.h"
#include "domain.h"
#include "err.h"
#include "fs.h"

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
	cr_expect(strstr(xml, "<vcpu>1</vcpu>"));
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
	cr_expect(strstr(xml, "<interface type='user'>\n      <model type='virtio'/>\n      <rom enabled='no'/>"),
		  "no iPXE: verify boots from the disk");
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

/* An EC2-like identity: every SMBIOS string ds-identify reads. */
static const struct domain_smbios ec2_smbios = {
	.manufacturer = "Amazon EC2",
	.product = "m5.large",
	.uuid = "ec2e1916-9099-7caf-fd21-012345abcdef",
	.serial = "ec2e1916-9099-7caf-fd21-012345abcdef",
	.asset_tag = "Amazon EC2",
	.board_manufacturer = "Amazon EC2",
};

Test(domain, smbios_identity)
{
	const char *machines[] = {"pc", "q35"};
	for (size_t i = 0; i < ELEMENTSOF(machines); i++) {
		struct domain_spec s = virtio_spec();
		s.machine = machines[i];
		s.smbios = &ec2_smbios;
		_cleanup_free_ char *xml = xml_of(&s);
		cr_expect(strstr(xml, "<uuid>ec2e1916-9099-7caf-fd21-012345abcdef</uuid>"), "%s", xml);
		cr_expect(strstr(xml, "<sysinfo type='smbios'>\n    <system>\n"
				      "      <entry name='manufacturer'>Amazon EC2</entry>\n"
				      "      <entry name='product'>m5.large</entry>\n"
				      "      <entry name='serial'>ec2e1916-9099-7caf-fd21-012345abcdef</entry>\n"
				      "      <entry name='uuid'>ec2e1916-9099-7caf-fd21-012345abcdef</entry>\n"
				      "    </system>\n    <baseBoard>\n"
				      "      <entry name='manufacturer'>Amazon EC2</entry>\n    </baseBoard>\n"
				      "    <chassis>\n      <entry name='asset'>Amazon EC2</entry>\n    </chassis>\n"
				      "  </sysinfo>\n"), "%s", xml);
		cr_expect(strstr(xml, "<boot dev='hd'/>\n    <smbios mode='sysinfo'/>\n  </os>"));
		_cleanup_free_ char *back = libvirt_accepts(xml);
		cr_expect(strstr(back, "<entry name='asset'>Amazon EC2</entry>"), "libvirt keeps the chassis: %s", back);
		cr_expect(strstr(back, "<smbios mode='sysinfo'/>"));
		cr_expect(strstr(back, "<uuid>ec2e1916-9099-7caf-fd21-012345abcdef</uuid>"));
	}
}

Test(domain, smbios_partial_and_escaped)
{
	/* Azure: vendor, product and the asset tag; no UUID, so libvirt picks the domain's. */
	struct domain_smbios az = {
		.manufacturer = "Microsoft Corporation",
		.product = "Virtual Machine",
		.asset_tag = "7783-7084-3265-9085-8269-3286-77",
	};
	struct domain_spec s = virtio_spec();
	s.smbios = &az;
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(!strstr(xml, "<uuid>"));
	cr_expect(!strstr(xml, "baseBoard"));
	cr_expect(strstr(xml, "<entry name='asset'>7783-7084-3265-9085-8269-3286-77</entry>"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "<entry name='product'>Virtual Machine</entry>"));

	struct domain_smbios odd = {.manufacturer = "A&B <x>"};
	s.smbios = &odd;
	_cleanup_free_ char *x2 = xml_of(&s);
	cr_expect(strstr(x2, "<entry name='manufacturer'>A&amp;B &lt;x&gt;</entry>"));
	/* All-NULL identity: no sysinfo at all, as without one. */
	struct domain_smbios none = {0};
	s.smbios = &none;
	_cleanup_free_ char *x3 = xml_of(&s);
	cr_expect(!strstr(x3, "sysinfo") && !strstr(x3, "<smbios"));
}

Test(domain, guest_network_with_forwards)
{
	const struct domain_fwd fwds[] = {
		{"169.254.169.254", 80, "'/opt/q,v sa/qvsa' __relay 41234"},
		{"169.254.169.254", 8080, "/bin/relay 2"},
	};
	const char *nics_[][2] = {{"virtio", "virtio-net-pci"}, {"e1000", "e1000"}, {"e1000e", "e1000e"},
				  {"vmxnet3", "vmxnet3"},     {"rtl8139", "rtl8139"}};
	for (size_t i = 0; i < ELEMENTSOF(nics_); i++) {
		struct domain_spec s = virtio_spec();
		s.machine = i % 2 ? "pc" : "q35";
		s.nic_model = nics_[i][0];
		s.net_prefix = "169.254.169.0/24";
		s.net_host = "169.254.169.2";
		s.fwds = fwds;
		s.n_fwds = ELEMENTSOF(fwds);
		_cleanup_free_ char *xml = xml_of(&s);
		cr_expect(strstr(xml, "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"));
		cr_expect(!strstr(xml, "<interface"), "the NIC is QEMU's, not libvirt's");
		cr_expect(strstr(xml, "<qemu:arg value='-netdev'/>\n    <qemu:arg value='user,id=qvsa-net0,"
				      "net=169.254.169.0/24,host=169.254.169.2,"
				      "guestfwd=tcp:169.254.169.254:80-cmd:&apos;/opt/q,,v sa/qvsa&apos; __relay 41234,"
				      "guestfwd=tcp:169.254.169.254:8080-cmd:/bin/relay 2'/>\n"),
			  "%s", xml);
		_cleanup_free_ char *dev = xasprintf("<qemu:arg value='-device'/>\n    <qemu:arg value='%s,"
						     "netdev=qvsa-net0,addr=0x1c,romfile='/>\n", nics_[i][1]);
		cr_expect(strstr(xml, dev), "%s", xml);
		_cleanup_free_ char *back = libvirt_accepts(xml);
		(void)back;
	}
}

Test(domain, guest_network_beside_nvme)
{
	/* Both use qemu:commandline: one block, the NIC after the disks. */
	const struct domain_fwd fwd = {"168.63.129.16", 80, "relay"};
	struct domain_spec s = virtio_spec();
	s.disk_bus = "nvme";
	s.nic_model = "e1000";
	s.net_prefix = "168.63.129.0/24";
	s.fwds = &fwd;
	s.n_fwds = 1;
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect_eq(count(xml, "<qemu:commandline>"), 1);
	cr_expect(strstr(xml, "addr=0x1e'/>\n    <qemu:arg value='-netdev'/>"), "%s", xml);
	cr_expect(strstr(xml, "user,id=qvsa-net0,net=168.63.129.0/24,guestfwd=tcp:168.63.129.16:80-cmd:relay'"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	(void)back;
}

Test(domain, guest_network_rejects)
{
	struct domain_fwd fwd = {"169.254.169.254", 80, "relay"};
	struct domain_spec s = virtio_spec();
	char *xml = NULL;
	s.fwds = &fwd;
	s.n_fwds = 1;
	cr_expect_eq(domain_xml(&s, &xml), -1, "169.254.169.254 is outside QEMU's default 10.0.2.0/24");
	cr_expect(strstr(err_msg(), "forwarded address '169.254.169.254' is not an IPv4 address inside the guest "
				    "network 10.0.2.0/24"), "got %s", err_msg());
	s.net_prefix = "169.254.169.0/33";
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "guest network '169.254.169.0/33'"), "got %s", err_msg());
	s.net_prefix = "169.254.169.0/24";
	s.net_host = "10.0.2.2";
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "host address '10.0.2.2'"), "got %s", err_msg());
	s.net_host = NULL;
	fwd.port = 0;
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "forward 1 needs"), "got %s", err_msg());
	fwd.port = 80;
	s.nic_model = "ne2k_pci";
	cr_expect_eq(domain_xml(&s, &xml), -1);
	cr_expect(strstr(err_msg(), "NIC model 'ne2k_pci'"), "got %s", err_msg());
	/* A plain libvirt NIC may be any model libvirt knows. */
	s.fwds = NULL;
	s.n_fwds = 0;
	s.net_prefix = NULL;
	_cleanup_free_ char *ok = xml_of(&s);
	cr_expect(strstr(ok, "<model type='ne2k_pci'/>"));
	cr_expect_null(xml);
}

/* The media as a CD-ROM on each bus: target dev and whether it is one. */
Test(domain, media_as_cdrom)
{
	const struct {
		const char *bus, *machine, *controller, *want;
	} cases[] = {
		{"scsi", "q35", "vmpvscsi", "<disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
					    "      <source file='/var/tmp/qvsa-verify-x/seed.iso'/>\n"
					    "      <target dev='sdb' bus='scsi'/>\n      <readonly/>\n"
					    "      <address type='drive' controller='0' bus='0' target='1' unit='0'/>\n"},
		{"scsi", "pc", "virtio-scsi", "<target dev='sdb' bus='scsi'/>\n      <readonly/>\n"},
		{"sata", "q35", NULL, "device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
				      "      <source file='/var/tmp/qvsa-verify-x/seed.iso'/>\n"
				      "      <target dev='sdb' bus='sata'/>\n      <readonly/>\n"},
		{"sata", "pc", NULL, "<target dev='sdb' bus='sata'/>\n      <readonly/>\n"},
		{"ide", "pc", NULL, "device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
				    "      <source file='/var/tmp/qvsa-verify-x/seed.iso'/>\n"
				    "      <target dev='hdc' bus='ide'/>\n      <readonly/>\n"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct domain_spec s = virtio_spec();
		s.disk_bus = cases[i].bus;
		s.machine = cases[i].machine;
		s.disk_controller = cases[i].controller;
		s.seed_cdrom = true;
		_cleanup_free_ char *xml = xml_of(&s);
		cr_expect_eq(count(xml, "device='cdrom'"), 1, "%s", xml);
		cr_expect(strstr(xml, cases[i].want), "%s: %s", cases[i].bus, xml);
		_cleanup_free_ char *back = libvirt_accepts(xml);
		cr_expect(strstr(back, "<disk type='file' device='cdrom'>"), "%s", back);
	}
}

Test(domain, media_without_cdrom_bus_is_readonly_disk)
{
	struct domain_spec s = virtio_spec();
	s.seed_cdrom = true;
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(!strstr(xml, "cdrom"), "virtio-blk has no CD-ROM");
	cr_expect(strstr(xml, "<target dev='vdb' bus='virtio'/>\n      <readonly/>"));
	s.disk_bus = "nvme";
	_cleanup_free_ char *nv = xml_of(&s);
	cr_expect(!strstr(nv, "cdrom"));
	cr_expect(strstr(nv, "id=qvsa-nvme1,readonly=on'"));
}

Test(domain, console_socket)
{
	struct domain_spec s = virtio_spec();
	s.console_socket = "/var/tmp/qvsa-verify-x/console.sock";
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<serial type='unix'>\n      <source mode='bind' path='/var/tmp/qvsa-verify-x/console.sock'/>\n"
			      "      <log file='/var/tmp/qvsa-verify-x/console.log' append='off'/>\n"
			      "      <target port='0'/>\n    </serial>\n"), "%s", xml);
	cr_expect(strstr(xml, "<console type='unix'>\n      <source mode='bind' path='/var/tmp/qvsa-verify-x/console.sock'/>\n"
			      "      <log file='/var/tmp/qvsa-verify-x/console.log' append='off'/>\n"
			      "      <target type='serial' port='0'/>\n    </console>\n"), "%s", xml);
	cr_expect(!strstr(xml, "type='file'>\n      <source path"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "<log file='/var/tmp/qvsa-verify-x/console.log' append='off'/>"), "%s", back);

	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	s.console_socket = longpath;
	char *bad = NULL;
	cr_expect_eq(domain_xml(&s, &bad), -1);
	cr_expect(strstr(err_msg(), "console socket path"), "got %s", err_msg());
}

/* A libvirt that shares no files with us (remote.h): the disks are volumes
 * in a pool, the console a pty read through libvirt's console stream. */
static struct domain_spec pool_spec(void)
{
	struct domain_spec s = vmware_spec();
	s.no_relabel = false;
	s.backing_path = NULL; /* the overlay volume's header names its backing volume */
	s.pool = "qvsa-verify";
	s.disk_path = "/var/lib/libvirt/images/qvsa-verify/qvsa-verify-123-vmware-disk.qcow2";
	s.disk_volume = "qvsa-verify-123-vmware-disk.qcow2";
	s.seed_path = "/var/lib/libvirt/images/qvsa-verify/qvsa-verify-123-vmware-media";
	s.seed_volume = "qvsa-verify-123-vmware-media";
	s.seed_cdrom = true;
	s.console_stream = true;
	s.console_path = NULL;
	return s;
}

Test(domain, disk_and_cdrom_as_pool_volumes)
{
	struct domain_spec s = pool_spec();
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<disk type='volume' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
			      "      <source pool='qvsa-verify' volume='qvsa-verify-123-vmware-disk.qcow2'/>\n"
			      "      <target dev='sda' bus='scsi'/>\n"), "%s", xml);
	cr_expect(strstr(xml, "<disk type='volume' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
			      "      <source pool='qvsa-verify' volume='qvsa-verify-123-vmware-media'/>\n"
			      "      <target dev='sdb' bus='scsi'/>\n      <readonly/>\n"), "%s", xml);
	cr_expect(!strstr(xml, "<source file="), "no local path reaches the remote side: %s", xml);
	cr_expect(!strstr(xml, "backingStore"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect_eq(count(back, "<disk type='volume'"), 2, "%s", back);
	cr_expect(strstr(back, "<source pool='qvsa-verify' volume='qvsa-verify-123-vmware-media'/>"), "%s", back);

	/* Media as a read-only disk (virtio has no CD-ROM), still a volume. */
	s.disk_bus = "virtio";
	s.disk_controller = NULL;
	_cleanup_free_ char *v = xml_of(&s);
	cr_expect_eq(count(v, "<disk type='volume' device='disk'>"), 2, "%s", v);
	cr_expect(strstr(v, "volume='qvsa-verify-123-vmware-media'/>\n      <target dev='vdb' bus='virtio'/>\n"
			    "      <readonly/>"), "%s", v);

	/* libvirt has no NVMe disks: QEMU gets the volumes' paths on the libvirt host. */
	s.disk_bus = "nvme";
	_cleanup_free_ char *nv = xml_of(&s);
	cr_expect(strstr(nv, "file=/var/lib/libvirt/images/qvsa-verify/qvsa-verify-123-vmware-disk.qcow2,format=qcow2"),
		  "%s", nv);
	cr_expect(!strstr(nv, "<disk "));

	/* Without the volume names the pool cannot be named. */
	s = pool_spec();
	s.seed_volume = NULL;
	char *bad = NULL;
	cr_expect_eq(domain_xml(&s, &bad), -1);
	cr_expect(strstr(err_msg(), "volume names"), "got %s", err_msg());
	cr_expect_null(bad);
}

Test(domain, console_stream_is_a_pty)
{
	struct domain_spec s = pool_spec();
	_cleanup_free_ char *xml = xml_of(&s);
	cr_expect(strstr(xml, "<serial type='pty'>\n      <target port='0'/>\n    </serial>\n"), "%s", xml);
	cr_expect(strstr(xml, "<console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"), "%s",
		  xml);
	cr_expect(!strstr(xml, "<log "), "no log file on the remote side: %s", xml);
	s.console_socket = "/var/tmp/qvsa-verify-x/console.sock"; /* the stream wins: no socket to share */
	_cleanup_free_ char *x2 = xml_of(&s);
	cr_expect(!strstr(x2, "console.sock"));
	_cleanup_free_ char *back = libvirt_accepts(xml);
	cr_expect(strstr(back, "<serial type='pty'>"), "%s", back);
	cr_expect(strstr(back, "<console type='pty'>"), "%s", back);

	/* Without a stream a log file is required. */
	s.console_stream = false;
	s.console_socket = NULL;
	char *bad = NULL;
	cr_expect_eq(domain_xml(&s, &bad), -1);
	cr_expect(strstr(err_msg(), "missing console_path"), "got %s", err_msg());
}

/* Every VM runs under QEMU's seccomp sandbox, given last (after the driver's
 * own "-sandbox off"); process creation is allowed only where guestfwd must
 * spawn the relay. */
Test(domain, seccomp_sandbox_on_every_vm)
{
	struct domain_spec s = virtio_spec();
	_cleanup_free_ char *plain = xml_of(&s);
	cr_expect(strstr(plain, "<qemu:arg value='-sandbox'/>\n    <qemu:arg value='on,obsolete=deny,"
				"elevateprivileges=deny,spawn=deny,resourcecontrol=deny'/>\n  </qemu:commandline>"),
		  "%s", plain);
	const struct domain_fwd fwd = {.addr = "10.0.2.100", .port = 80, .command = "'/q' __relay 1"};
	s.fwds = &fwd;
	s.n_fwds = 1;
	_cleanup_free_ char *relay = xml_of(&s);
	cr_expect(strstr(relay, "<qemu:arg value='on,obsolete=deny,resourcecontrol=deny'/>\n  </qemu:commandline>"),
		  "%s", relay);
	cr_expect_eq(count(relay, "-sandbox"), 1);
}
