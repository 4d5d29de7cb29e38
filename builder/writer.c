#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <inttypes.h>
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

/* A JSON number field "key": N from qemu-img's output. */
static int json_u64(const char *json, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *pat = xasprintf("\"%s\":", key);
	const char *p = strstr(json, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	*ret = strtoull(p, NULL, 10);
	return 0;
}

int writer_qemu_img_check(const char *artifact, const char *format, uint64_t expect_size)
{
	const char *info[] = {"qemu-img", "info", "--output=json", artifact, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(info, NULL, &out) < 0) {
		err_prefix("artifact '%s'", artifact);
		return -1;
	}
	_cleanup_free_ char *fmt_pat = xasprintf("\"format\": \"%s\"", format);
	if (!strstr(out, fmt_pat))
		return err_fail("artifact '%s': qemu-img does not identify it as %s", artifact, format);
	uint64_t vsize = 0;
	if (json_u64(out, "virtual-size", &vsize) < 0 || vsize != expect_size)
		return err_fail("artifact '%s': virtual size %" PRIu64 " bytes, expected %" PRIu64, artifact, vsize,
				expect_size);
	if (strcmp(format, "qcow2") == 0 || strcmp(format, "vmdk") == 0 || strcmp(format, "vhdx") == 0) {
		const char *check[] = {"qemu-img", "check", "-q", "-f", format, artifact, NULL};
		if (proc_run(check, NULL, NULL) < 0) {
			err_prefix("artifact '%s': qemu-img check", artifact);
			return -1;
		}
	}
	return 0;
}
