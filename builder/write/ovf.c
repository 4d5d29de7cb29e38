/* OVF 1.0 descriptor: the text qvsa writes (ovf_read.c reads it back). */
#include "ovf.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

/* Write s XML-escaped (valid in text and in double-quoted attributes). */
static void put_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* <rasd:NAME>value</rasd:NAME> on its own line. */
static void rasd(FILE *f, const char *name, const char *value)
{
	fprintf(f, "        <rasd:%s>", name);
	put_esc(f, value);
	fprintf(f, "</rasd:%s>\n", name);
}

static void rasd_u(FILE *f, const char *name, uint64_t value)
{
	fprintf(f, "        <rasd:%s>%" PRIu64 "</rasd:%s>\n", name, value, name);
}

static void hardware(FILE *f, const struct ovf_params *p)
{
	/* iso: vSphere attaches ovf-env.xml on a CD, which the image reads with
	 * no VMware Tools; com.vmware.guestInfo also serves those who have them. */
	fprintf(f, "    <VirtualHardwareSection ovf:transport=\"iso com.vmware.guestInfo\">\n"
		   "      <Info>Virtual hardware requirements</Info>\n"
		   "      <System>\n"
		   "        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n"
		   "        <vssd:InstanceID>0</vssd:InstanceID>\n"
		   "        <vssd:VirtualSystemIdentifier>");
	put_esc(f, p->version);
	fprintf(f, "</vssd:VirtualSystemIdentifier>\n        <vssd:VirtualSystemType>vmx-");
	put_esc(f, p->hw_version);
	fprintf(f, "</vssd:VirtualSystemType>\n      </System>\n");
	/* rasd elements in the schema's (alphabetical) order. */
	_cleanup_free_ char *cpus = xasprintf("%u virtual CPU(s)", p->cpus);
	fprintf(f, "      <Item>\n");
	rasd(f, "AllocationUnits", "hertz * 10^6");
	rasd(f, "Description", "Number of Virtual CPUs");
	rasd(f, "ElementName", cpus);
	rasd_u(f, "InstanceID", 1);
	rasd_u(f, "ResourceType", 3);
	rasd_u(f, "VirtualQuantity", p->cpus);
	fprintf(f, "      </Item>\n      <Item>\n");
	_cleanup_free_ char *mem = xasprintf("%uMB of memory", p->memory_mib);
	rasd(f, "AllocationUnits", "byte * 2^20");
	rasd(f, "Description", "Memory Size");
	rasd(f, "ElementName", mem);
	rasd_u(f, "InstanceID", 2);
	rasd_u(f, "ResourceType", 4);
	rasd_u(f, "VirtualQuantity", p->memory_mib);
	fprintf(f, "      </Item>\n      <Item>\n");
	rasd_u(f, "Address", 0);
	rasd(f, "Description", "SCSI Controller");
	rasd(f, "ElementName", "SCSI controller 0");
	rasd_u(f, "InstanceID", 3);
	rasd(f, "ResourceSubType", "VirtualSCSI"); /* VMware paravirtual SCSI (pvscsi) */
	rasd_u(f, "ResourceType", 6);
	fprintf(f, "      </Item>\n      <Item>\n");
	rasd_u(f, "AddressOnParent", 0);
	rasd(f, "ElementName", "Hard disk 1");
	rasd(f, "HostResource", "ovf:/disk/vmdisk1");
	rasd_u(f, "InstanceID", 4);
	rasd_u(f, "Parent", 3);
	rasd_u(f, "ResourceType", 17);
	fprintf(f, "      </Item>\n      <Item>\n");
	_cleanup_free_ char *nic = xasprintf("VmxNet3 ethernet adapter on \"%s\"", p->network);
	rasd_u(f, "AddressOnParent", 7);
	rasd(f, "AutomaticAllocation", "true");
	rasd(f, "Connection", p->network);
	rasd(f, "Description", nic);
	rasd(f, "ElementName", "Network adapter 1");
	rasd_u(f, "InstanceID", 5);
	rasd(f, "ResourceSubType", "VmxNet3");
	rasd_u(f, "ResourceType", 10);
	fprintf(f, "      </Item>\n");
	if (p->uefi)
		fprintf(f, "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>\n");
	fprintf(f, "    </VirtualHardwareSection>\n");
}

char *ovf_write(const struct ovf_params *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	/* "qVSA-X.Y" -> "X.Y" */
	const char *dash = strrchr(p->version, '-');
	const char *short_version = dash ? dash + 1 : p->version;

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""
		   " xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\""
		   " xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
		   " xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\""
		   " xmlns:vmw=\"http://www.vmware.com/schema/ovf\""
		   " xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\""
		   " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
		   "  <References>\n    <File ovf:href=\"");
	put_esc(f, p->disk_file);
	fprintf(f, "\" ovf:id=\"file1\" ovf:size=\"%" PRIu64 "\"/>\n  </References>\n", p->disk_file_size);
	fprintf(f, "  <DiskSection>\n"
		   "    <Info>Virtual disk information</Info>\n"
		   "    <Disk ovf:capacity=\"%" PRIu64 "\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk1\""
		   " ovf:fileRef=\"file1\""
		   " ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n"
		   "  </DiskSection>\n", p->capacity);
	fprintf(f, "  <NetworkSection>\n    <Info>The list of logical networks</Info>\n    <Network ovf:name=\"");
	put_esc(f, p->network);
	fprintf(f, "\">\n      <Description>The network the appliance scans and reaches its platform on</Description>\n"
		   "    </Network>\n  </NetworkSection>\n");
	fprintf(f, "  <VirtualSystem ovf:id=\"");
	put_esc(f, p->version);
	fprintf(f, "\">\n    <Info>A qVSA virtual scanner appliance</Info>\n    <Name>");
	put_esc(f, p->version);
	fprintf(f, "</Name>\n    <OperatingSystemSection ovf:id=\"%u\" vmw:osType=\"", p->os_id);
	put_esc(f, p->os_type);
	fprintf(f, "\">\n      <Info>The kind of installed guest operating system</Info>\n      <Description>");
	put_esc(f, p->os_description);
	fprintf(f, "</Description>\n    </OperatingSystemSection>\n");
	/* Two ProductSections: the product, with cloud-init's classless
	 * user-data property; then class "qvsa" with the appliance's own. */
	fprintf(f, "    <ProductSection>\n      <Info>The appliance and its first-boot settings</Info>\n"
		   "      <Product>qVSA virtual scanner appliance</Product>\n      <Vendor>");
	put_esc(f, p->vendor);
	fprintf(f, "</Vendor>\n      <Version>");
	put_esc(f, short_version);
	fprintf(f, "</Version>\n      <FullVersion>");
	put_esc(f, p->version);
	fprintf(f, "</FullVersion>\n"
		   "      <Property ovf:key=\"" OVF_USER_DATA_KEY "\" ovf:type=\"string\" ovf:userConfigurable=\"true\""
		   " ovf:value=\"\">\n"
		   "        <Label>User data (optional)</Label>\n"
		   "        <Description>A base64-encoded cloud-config for the first boot (cloud-init's OVF convention);"
		   " its qvsa: section may carry the personalization code instead</Description>\n"
		   "      </Property>\n    </ProductSection>\n"
		   "    <ProductSection ovf:class=\"" OVF_CLASS "\">\n"
		   "      <Info>qVSA first-boot personalization</Info>\n"
		   "      <Property ovf:key=\"perscode\" ovf:password=\"true\" ovf:qualifiers=\"MinLen(6) MaxLen(32)\""
		   " ovf:type=\"string\" ovf:userConfigurable=\"true\" ovf:value=\"\">\n"
		   "        <Label>Personalization code</Label>\n"
		   "        <Description>The code (6 to 32 digits) from the qVSA platform that personalizes this"
		   " appliance on its first boot</Description>\n"
		   "      </Property>\n"
		   "      <Property ovf:key=\"platform_url\" ovf:type=\"string\" ovf:userConfigurable=\"true\""
		   " ovf:value=\"\">\n"
		   "        <Label>Platform URL (optional)</Label>\n"
		   "        <Description>The qVSA platform to personalize with; empty keeps the one built into the"
		   " image</Description>\n"
		   "      </Property>\n    </ProductSection>\n");
	hardware(f, p);
	fprintf(f, "  </VirtualSystem>\n</Envelope>\n");
	fclose(f);
	return buf;
}
