/* The platform table. Each row's emulation lives in its own file here. */
#include "platform.h"

#include <string.h>

/* Filled in per platform (media, services) by the emulators. */
static const struct platform_ops table[] = {
	{.name = "nocloud", .channel = "nocloud", .description = "cloud-init NoCloud seed (cidata)"},
	{.name = "configdrive", .channel = "configdrive", .description = "OpenStack config drive (config-2)"},
	{.name = "openstack", .channel = "openstack", .description = "OpenStack metadata service"},
	{.name = "ec2", .channel = "ec2", .description = "Amazon EC2 IMDSv2"},
	{.name = "gce", .channel = "gce", .description = "Google Compute Engine metadata server"},
	{.name = "oci", .channel = "oci", .description = "Oracle Cloud IMDSv2"},
	{.name = "azure", .channel = "azure", .description = "Azure provisioning DVD and wireserver"},
	{.name = "vmware", .channel = "vmware", .description = "vSphere OVF environment (ISO transport)"},
	{.name = "console", .channel = "console", .description = "the code typed at the console"},
};

const struct platform_ops *platform_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

const char *platform_names(void)
{
	return "nocloud, configdrive, openstack, ec2, gce, oci, azure, vmware, console";
}
