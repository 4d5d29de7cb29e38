#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "json.h"
#include "proc.h"
#include "target.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

extern const struct writer_ops writer_qcow2_ops;
extern const struct writer_ops writer_raw_ops;
extern const struct writer_ops writer_vmdk_ops;
extern const struct writer_ops writer_ova_ops;
extern const struct writer_ops writer_vhd_ops;
extern const struct writer_ops writer_vhdx_ops;
extern const struct writer_ops writer_gce_ops;

static const struct writer_ops *const writers[] = {
	&writer_qcow2_ops,
	&writer_raw_ops,
	&writer_vmdk_ops,
	&writer_ova_ops,
	&writer_vhd_ops,
	&writer_vhdx_ops,
	&writer_gce_ops,
};

const struct writer_ops *writer_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(writers); i++)
		if (strcmp(writers[i]->name, name) == 0)
			return writers[i];
	return NULL;
}

int writer_img_info_parse(const char *json, const char *path, struct writer_img_info *ret)
{
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *o = json_parse(json, &why, &at);
	if (!o)
		return err_fail("qemu-img info '%s': output is not JSON (%s at byte %zu)", path, why, at);
	const char *format = json_member_str(o, "format");
	json_object *vsize = json_member(o, "virtual-size", json_type_int);
	if (!format)
		return err_fail("qemu-img info '%s': no \"format\" string in its output", path);
	/* json-c clamps a number out of range to INT64_MAX: no disk is that large. */
	if (!vsize || json_object_get_int64(vsize) <= 0 || json_object_get_int64(vsize) == INT64_MAX)
		return err_fail("qemu-img info '%s': no positive \"virtual-size\" in its output", path);
	json_object *data = json_member(json_member(o, "format-specific", json_type_object), "data", json_type_object);
	const char *compat = json_member_str(data, "compat"), *create_type = json_member_str(data, "create-type");
	*ret = (struct writer_img_info){.virtual_size = (uint64_t)json_object_get_int64(vsize)};
	snprintf(ret->format, sizeof(ret->format), "%s", format);
	snprintf(ret->compat, sizeof(ret->compat), "%s", compat ? compat : "");
	snprintf(ret->create_type, sizeof(ret->create_type), "%s", create_type ? create_type : "");
	return 0;
}

int writer_img_info(const char *path, const char *fmt, struct writer_img_info *ret)
{
	const char *with_f[] = {"qemu-img", "info", "--output=json", "-f", fmt, path, NULL};
	const char *probe[] = {"qemu-img", "info", "--output=json", path, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(fmt ? with_f : probe, NULL, &out) < 0)
		return -1;
	return writer_img_info_parse(out, path, ret);
}

int writer_qemu_img_check(const char *artifact, const char *format, uint64_t expect_size)
{
	return writer_qemu_img_check_info(artifact, format, expect_size, NULL);
}

int writer_qemu_img_check_info(const char *artifact, const char *format, uint64_t expect_size,
			       struct writer_img_info *ret_info)
{
	struct writer_img_info info;
	if (writer_img_info(artifact, NULL, &info) < 0) {
		err_prefix("artifact '%s'", artifact);
		return -1;
	}
	if (strcmp(info.format, format) != 0)
		return err_fail("artifact '%s': qemu-img does not identify it as %s (it says %s)", artifact, format,
				info.format);
	if (info.virtual_size != expect_size)
		return err_fail("artifact '%s': virtual size %" PRIu64 " bytes, expected %" PRIu64, artifact,
				info.virtual_size, expect_size);
	if (strcmp(format, "qcow2") == 0 || strcmp(format, "vmdk") == 0 || strcmp(format, "vhdx") == 0) {
		const char *check[] = {"qemu-img", "check", "-q", "-f", format, artifact, NULL};
		if (proc_run(check, NULL, NULL) < 0) {
			err_prefix("artifact '%s': qemu-img check", artifact);
			return -1;
		}
	}
	if (ret_info)
		*ret_info = info;
	return 0;
}
