/* The OVF descriptor: what ovf_write produces (well-formed per xmllint when
 * installed, sections and ProductSection order vSphere expects, escaping),
 * and that ovf_read refuses XML that is not well-formed, with the line. */
#include "ovf.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const struct ovf_params params = {
	.version = "qVSA-1.0", .vendor = "qVSA", .disk_file = "qVSA-1.0-vmware-disk1.vmdk",
	.disk_file_size = 123456, .capacity = 268435456, .uefi = false, .hw_version = "14", .cpus = 2,
	.memory_mib = 2048, .os_id = 96, .os_type = "debian10_64Guest", .os_description = "qVSA 1.0",
	.network = "VM Network",
};

static void info_clearp(struct ovf_info *i) { ovf_info_clear(i); }

Test(ovf, written_descriptor_reads_back)
{
	_cleanup_free_ char *xml = ovf_write(&params);
	_cleanup_(info_clearp) struct ovf_info i = {0};
	cr_assert_eq(ovf_read(xml, strlen(xml), "x.ovf", &i), 0, "%s", err_msg());
	cr_assert_eq(i.n_files, 1);
	cr_assert_str_eq(i.files[0].href, "qVSA-1.0-vmware-disk1.vmdk");
	cr_assert_str_eq(i.files[0].id, "file1");
	cr_assert_eq(i.files[0].size, 123456);
	cr_assert_eq(i.capacity, 268435456);
	cr_assert_str_eq(i.disk_file_ref, "file1");
	cr_assert(strstr(i.disk_format, "#streamOptimized"));
	cr_assert_str_eq(i.version, "1.0");
	cr_assert_str_eq(i.full_version, "qVSA-1.0");
	cr_assert(i.has_perscode && i.has_user_data && i.has_pvscsi && i.has_vmxnet3);
	cr_assert(i.iso_transport);
	cr_assert_eq(i.os_id, 96);
	cr_assert_str_eq(i.os_description, "qVSA 1.0");
}

Test(ovf, descriptor_has_the_platform_facts)
{
	_cleanup_free_ char *xml = ovf_write(&params);
	static const char *const want[] = {
		"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"",
		"<DiskSection>", "<NetworkSection>", "<Network ovf:name=\"VM Network\">",
		"<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>\n        <rasd:ResourceType>6</rasd:ResourceType>",
		"<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>\n        <rasd:ResourceType>10</rasd:ResourceType>",
		"<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>",
		"<vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType>",
		"<ProductSection ovf:class=\"qvsa\">",
		"<Property ovf:key=\"perscode\" ovf:password=\"true\" ovf:qualifiers=\"MinLen(6) MaxLen(32)\" "
		"ovf:type=\"string\" ovf:userConfigurable=\"true\" ovf:value=\"\">",
		"<Property ovf:key=\"platform_url\" ovf:type=\"string\" ovf:userConfigurable=\"true\"",
		"<Property ovf:key=\"user-data\" ovf:type=\"string\" ovf:userConfigurable=\"true\"",
		"<VirtualHardwareSection ovf:transport=\"iso com.vmware.guestInfo\">",
		"<OperatingSystemSection ovf:id=\"96\" vmw:osType=\"debian10_64Guest\">",
		"<Description>qVSA 1.0</Description>\n    </OperatingSystemSection>",
	};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
		cr_assert(strstr(xml, want[k]), "descriptor lacks %s", want[k]);
	/* ProductSection children in the order Info, Product, Vendor, Version, FullVersion. */
	const char *ps = strstr(xml, "<ProductSection>");
	cr_assert_not_null(ps);
	/* OVF 1.0's ProductSection_Type: Info, Product, Vendor, Version,
	 * FullVersion, then Property (Label, Description); the classed section
	 * comes after and holds Info then its properties. */
	const char *order[] = {"<Info>", "<Product>", "<Vendor>qVSA</Vendor>", "<Version>1.0</Version>",
			       "<FullVersion>qVSA-1.0</FullVersion>", "<Property ovf:key=\"user-data\"", "<Label>",
			       "<Description>", "</ProductSection>", "<ProductSection ovf:class=\"qvsa\">", "<Info>",
			       "<Property ovf:key=\"perscode\"", "<Label>", "<Description>", "</Property>",
			       "<Property ovf:key=\"platform_url\"", "<Label>", "<Description>", "</ProductSection>",
			       "<VirtualHardwareSection"};
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		const char *hit = strstr(ps, order[k]);
		cr_assert_not_null(hit, "no %s after ProductSection", order[k]);
		ps = hit;
	}
	/* BIOS: no firmware override; UEFI: efi. */
	cr_assert_null(strstr(xml, "firmware"));
	struct ovf_params u = params;
	u.uefi = true;
	_cleanup_free_ char *uxml = ovf_write(&u);
	cr_assert(strstr(uxml, "<vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>"));
	/* Deterministic. */
	_cleanup_free_ char *again = ovf_write(&params);
	cr_assert_str_eq(xml, again);
}

Test(ovf, xmllint_finds_it_well_formed)
{
	if (!proc_have("xmllint"))
		cr_skip_test("xmllint not installed (package libxml2-utils): well-formedness checked by ovf_read only");
	char dir[] = "/tmp/qvsa-test-ovf-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct ovf_params p = params;
	p.network = "Lab & \"DMZ\" <1>";
	p.vendor = "O'Brien & Sons";
	_cleanup_free_ char *xml = ovf_write(&p);
	_cleanup_free_ char *path = xasprintf("%s/x.ovf", dir);
	cr_assert_eq(fs_write_file_atomic(path, xml, strlen(xml), 0644), 0);
	const char *argv[] = {"xmllint", "--noout", path, NULL};
	int rc = proc_run(argv, NULL, NULL);
	fs_rm_rf(dir);
	cr_assert_eq(rc, 0, "%s", err_msg());
}

Test(ovf, escaping_round_trips)
{
	struct ovf_params p = params;
	p.disk_file = "a&b<c>\"d'.vmdk";
	_cleanup_free_ char *xml = ovf_write(&p);
	_cleanup_(info_clearp) struct ovf_info i = {0};
	cr_assert_eq(ovf_read(xml, strlen(xml), "x.ovf", &i), 0, "%s", err_msg());
	cr_assert_str_eq(i.files[0].href, "a&b<c>\"d'.vmdk");
}

static void expect_bad(const char *xml, const char *message)
{
	struct ovf_info i;
	err_clear();
	cr_assert_eq(ovf_read(xml, strlen(xml), "bad.ovf", &i), -1, "accepted: %s", xml);
	cr_assert_str_eq(err_msg(), message);
}

Test(ovf, refuses_xml_that_is_not_well_formed)
{
	expect_bad("<Envelope><References></Envelope>", "OVF descriptor 'bad.ovf': line 1: end tag does not match its start tag");
	expect_bad("<?xml version=\"1.0\"?>\n<Envelope a=b/>", "OVF descriptor 'bad.ovf': line 2: attribute value is not quoted");
	expect_bad("<Envelope a=\"1\" a=\"2\"/>", "OVF descriptor 'bad.ovf': line 1: duplicate attribute");
	expect_bad("<Envelope>\n\n&nbsp;</Envelope>",
		   "OVF descriptor 'bad.ovf': line 3: '&' that starts no character or predefined entity reference");
	expect_bad("<Envelope/><Envelope/>", "OVF descriptor 'bad.ovf': line 1: content after the root element");
	expect_bad("<Envelope><!-- open </Envelope>", "OVF descriptor 'bad.ovf': line 1: unterminated comment");
	expect_bad("<Envelope>", "OVF descriptor 'bad.ovf': line 1: document ends inside an element");
	expect_bad("<!DOCTYPE x><Envelope/>", "OVF descriptor 'bad.ovf': line 1: expected the root element");
	expect_bad("", "OVF descriptor 'bad.ovf': line 1: no root element");
	expect_bad("<Envelope a=\"<\"/>", "OVF descriptor 'bad.ovf': line 1: '<' or end of document inside an attribute value");
}

Test(ovf, refuses_missing_sections_and_wrong_order)
{
	expect_bad("<Foo/>", "OVF descriptor 'bad.ovf': root element is Foo, not Envelope");
	expect_bad("<Envelope><References/></Envelope>", "OVF descriptor 'bad.ovf': no DiskSection");
	/* Swap Vendor and Product in a written descriptor. */
	_cleanup_free_ char *xml = ovf_write(&params);
	char *prod = strstr(xml, "      <Product>"), *vend = strstr(xml, "      <Vendor>");
	char *vend_end = strchr(vend, '\n') + 1;
	_cleanup_free_ char *p = strndup(prod, (size_t)(vend - prod)), *v = strndup(vend, (size_t)(vend_end - vend));
	_cleanup_free_ char *swapped = xasprintf("%.*s%s%s%s", (int)(prod - xml), xml, v, p, vend_end);
	expect_bad(swapped, "OVF descriptor 'bad.ovf': ProductSection element 2 is Vendor, expected Product");
}

Test(ovf, reads_entities_cdata_and_comments)
{
	const char *xml = "<?xml version=\"1.0\"?>\n<!-- c -->\n<Envelope><References>"
			  "<File ovf:href=\"a&#x26;b&#38;c\" ovf:id=\"f\" ovf:size=\"1\"/></References>"
			  "<DiskSection><Disk ovf:capacity=\"512\" ovf:fileRef=\"f\"/></DiskSection><NetworkSection/>"
			  "<VirtualSystem><ProductSection><Info/><Product/><Vendor/><Version><![CDATA[1.<0>]]></Version>"
			  "<FullVersion>qVSA-1.&lt;0&gt;</FullVersion></ProductSection><VirtualHardwareSection/>"
			  "</VirtualSystem></Envelope>\n<?pi after?>\n";
	_cleanup_(info_clearp) struct ovf_info i = {0};
	cr_assert_eq(ovf_read(xml, strlen(xml), "x.ovf", &i), 0, "%s", err_msg());
	cr_assert_str_eq(i.files[0].href, "a&b&c");
	cr_assert_str_eq(i.version, "1.<0>");
	cr_assert_str_eq(i.full_version, "qVSA-1.<0>");
	cr_assert_eq(i.capacity, 512);
	cr_assert(!i.has_perscode && !i.has_pvscsi && !i.has_vmxnet3);
}

Test(ovf, finds_properties_by_class_dot_key)
{
	const char *head = "<Envelope><References/><DiskSection><Disk ovf:capacity=\"512\" ovf:fileRef=\"f\"/>"
			   "</DiskSection><NetworkSection/><VirtualSystem><ProductSection><Info/><Product/><Vendor/>"
			   "<Version/><FullVersion/></ProductSection>";
	const char *tail = "<VirtualHardwareSection ovf:transport=\"com.vmware.guestInfo\"/></VirtualSystem></Envelope>";
	/* A classless key spelled qvsa.perscode is the same key in the environment. */
	_cleanup_free_ char *plain = xasprintf("%s<ProductSection><Info/><Property ovf:key=\"qvsa.perscode\" ovf:type="
					       "\"string\" ovf:userConfigurable=\"true\"/></ProductSection>%s", head, tail);
	_cleanup_(info_clearp) struct ovf_info a = {0};
	cr_assert_eq(ovf_read(plain, strlen(plain), "x.ovf", &a), 0, "%s", err_msg());
	cr_assert(a.has_perscode && !a.has_user_data && !a.iso_transport);
	/* Another class, or a property the user cannot set, is not it. */
	_cleanup_free_ char *other = xasprintf("%s<ProductSection ovf:class=\"x\"><Info/><Property ovf:key=\"perscode\" "
					       "ovf:type=\"string\" ovf:userConfigurable=\"true\"/></ProductSection>"
					       "<ProductSection ovf:class=\"qvsa\"><Info/><Property ovf:key=\"perscode\" "
					       "ovf:type=\"string\"/></ProductSection>%s", head, tail);
	_cleanup_(info_clearp) struct ovf_info b = {0};
	cr_assert_eq(ovf_read(other, strlen(other), "x.ovf", &b), 0, "%s", err_msg());
	cr_assert(!b.has_perscode);
	cr_assert_eq(b.os_id, 0);
	cr_assert_null(b.os_description);
}
