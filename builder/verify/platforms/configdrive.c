/* The OpenStack config drive as Nutanix AHV attaches it: an ISO9660 CD-ROM
 * labelled "config-2" holding openstack/latest/{meta_data.json,user_data}.
 * No services. */
#include "platform_impl.h"

#include "cleanup.h"
#include "media.h"

#include <string.h>

/* The volume id cloud-init's ConfigDrive (and the agent) look for. */
#define CONFIGDRIVE_LABEL "config-2"

int configdrive_make_media(const struct platform_env *env, const char *path)
{
	_cleanup_free_ char *meta = openstack_meta_data_json(env);
	const struct media_file files[] = {
		{ .path = "openstack/latest/meta_data.json", .data = meta, .len = strlen(meta) },
		{ .path = "openstack/latest/user_data", .data = env->user_data, .len = strlen(env->user_data) },
	};
	return media_write_iso(CONFIGDRIVE_LABEL, files, ELEMENTSOF(files), path);
}
