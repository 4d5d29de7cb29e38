/* vSphere's OVF environment with the ISO transport: a CD-ROM labelled
 * "OVF ENV" holding ovf-env.xml, in the shape ESXi writes it (namespaces,
 * PlatformSection, PropertySection of oe:key/oe:value). The properties are
 * the ones the appliance's OVF declares: qvsa.perscode, qvsa.platform_url,
 * and user-data (base64 cloud-config, cloud-init's OVF convention), which
 * also carries the run's CA. No services. */
#include "platform_impl.h"

#include "cleanup.h"
#include "fs.h"
#include "media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMWARE_LABEL "OVF ENV"
#define VMWARE_OVF_ENV_NS "http://schemas.dmtf.org/ovf/environment/1"

static void vmware_property(struct platform_xml *x, const char *key, const char *value)
{
	platform_xml_open(x, "Property");
	platform_xml_attr(x, "oe:key", key);
	platform_xml_attr(x, "oe:value", value);
	platform_xml_close(x);
}

/* ovf-env.xml for env. Caller frees; NULL with an error recorded. */
static char *vmware_ovf_env(const struct platform_env *env)
{
	char vm[8];
	platform_derive_hex(env->instance_id, "vmware-moid", 4, vm);
	_cleanup_free_ char *moid = xasprintf("vm-%lu", 1000 + strtoul(vm, NULL, 16));
	_cleanup_free_ char *ud = platform_base64(env->user_data, strlen(env->user_data));
	struct platform_xml x;
	platform_xml_start(&x);
	platform_xml_open(&x, "Environment");
	platform_xml_attr(&x, "xmlns", VMWARE_OVF_ENV_NS);
	platform_xml_attr(&x, "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
	platform_xml_attr(&x, "xmlns:oe", VMWARE_OVF_ENV_NS);
	platform_xml_attr(&x, "xmlns:ve", "http://www.vmware.com/schema/ovfenv");
	platform_xml_attr(&x, "oe:id", "");
	platform_xml_attr(&x, "ve:vCenterId", moid);
	platform_xml_open(&x, "PlatformSection");
	platform_xml_leaf(&x, "Kind", "VMware ESXi");
	platform_xml_leaf(&x, "Version", "7.0.3");
	platform_xml_leaf(&x, "Vendor", "VMware, Inc.");
	platform_xml_leaf(&x, "Locale", "en");
	platform_xml_close(&x);
	platform_xml_open(&x, "PropertySection");
	vmware_property(&x, "qvsa.perscode", env->perscode);
	if (env->platform_url)
		vmware_property(&x, "qvsa.platform_url", env->platform_url);
	vmware_property(&x, "user-data", ud);
	platform_xml_close(&x);
	platform_xml_close(&x);
	return platform_xml_finish(&x, "ovf-env.xml");
}

int vmware_make_media(const struct platform_env *env, const char *path)
{
	_cleanup_free_ char *xml = vmware_ovf_env(env);
	if (!xml)
		return -1;
	const struct media_file files[] = { { .path = "ovf-env.xml", .data = xml, .len = strlen(xml) } };
	return media_write_iso(VMWARE_LABEL, files, ELEMENTSOF(files), path);
}
