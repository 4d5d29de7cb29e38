/* Platform identity from SMBIOS, as cloud-init's ds-identify reads it: the
 * strings the hypervisor sets (libvirt's <sysinfo type='smbios'> in tests),
 * read before anything touches the network. */
#include "channel.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* One /sys/class/dmi/id file, trimmed; "" when absent (no DMI on this machine). */
static char *agent_dmi_field(const char *root, const char *name)
{
	char *path = agent_printf("%s/sys/class/dmi/id/%s", root, name), *text = NULL;
	if (access(path, R_OK) != 0 || agent_read_file(path, 4096, &text) < 0)
		text = agent_strdup("");
	free(path);
	size_t n = strlen(text), s = 0;
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		text[--n] = 0;
	while (isspace((unsigned char)text[s]))
		s++;
	memmove(text, text + s, n - s + 1);
	return text;
}

void agent_dmi_read(const char *root, struct agent_dmi *ret)
{
	ret->sys_vendor = agent_dmi_field(root, "sys_vendor");
	ret->product_name = agent_dmi_field(root, "product_name");
	ret->product_uuid = agent_dmi_field(root, "product_uuid");
	ret->product_serial = agent_dmi_field(root, "product_serial");
	ret->chassis_asset_tag = agent_dmi_field(root, "chassis_asset_tag");
	ret->board_vendor = agent_dmi_field(root, "board_vendor");
}

void agent_dmi_free(struct agent_dmi *d)
{
	if (!d)
		return;
	free(d->sys_vendor);
	free(d->product_name);
	free(d->product_uuid);
	free(d->product_serial);
	free(d->chassis_asset_tag);
	free(d->board_vendor);
	*d = (struct agent_dmi){ 0 };
}

static bool agent_eq(const char *s, const char *want) { return s && strcmp(s, want) == 0; }

bool agent_dmi_openstack(const struct agent_dmi *d)
{
	return agent_eq(d->product_name, "OpenStack Nova") || agent_eq(d->product_name, "OpenStack Compute") ||
	       agent_eq(d->chassis_asset_tag, "OpenStack Nova") ||
	       agent_eq(d->chassis_asset_tag, "OpenStack Compute");
}

/* EC2 is known by its UUID/serial (Xen and Nitro alike), not only its vendor. */
bool agent_dmi_ec2(const struct agent_dmi *d)
{
	return (d->product_uuid && strncasecmp(d->product_uuid, "ec2", 3) == 0) ||
	       (d->product_serial && strncasecmp(d->product_serial, "ec2", 3) == 0) ||
	       agent_eq(d->sys_vendor, "Amazon EC2");
}

bool agent_dmi_gce(const struct agent_dmi *d)
{
	return agent_eq(d->product_name, "Google Compute Engine") || agent_eq(d->sys_vendor, "Google");
}

bool agent_dmi_oci(const struct agent_dmi *d) { return agent_eq(d->chassis_asset_tag, "OracleCloud.com"); }

bool agent_dmi_azure(const struct agent_dmi *d)
{
	return agent_eq(d->chassis_asset_tag, "7783-7084-3265-9085-8269-3286-77");
}
