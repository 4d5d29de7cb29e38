/* Writers that hand the conversion to qemu-img, which writes these formats
 * correctly already: qcow2 and raw. */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <string.h>

static int qcow2_write(const struct writer_input *in, const char *out)
{
	const char *compat = target_artifact_option(in->artifact, "compat");
	const char *compress = target_artifact_option(in->artifact, "compress");
	_cleanup_free_ char *opts = xasprintf("compat=%s", compat ? compat : "1.1");
	bool c = compress && (strcmp(compress, "true") == 0 || strcmp(compress, "yes") == 0);
	const char *argv[16];
	size_t n = 0;
	argv[n++] = "qemu-img";
	argv[n++] = "convert";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "raw";
	argv[n++] = "-O";
	argv[n++] = "qcow2";
	argv[n++] = "-o";
	argv[n++] = opts;
	if (c)
		argv[n++] = "-c";
	argv[n++] = in->raw;
	argv[n++] = out;
	argv[n] = NULL;
	if (proc_run(argv, NULL, NULL) < 0) {
		err_prefix("writing '%s'", out);
		return -1;
	}
	return 0;
}

static int qcow2_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	if (writer_qemu_img_check(artifact, "qcow2", expect_size) < 0)
		return -1;
	const char *compat = target_artifact_option(a, "compat");
	const char *info[] = {"qemu-img", "info", "--output=json", artifact, NULL};
	_cleanup_free_ char *out = NULL;
	if (proc_run(info, NULL, &out) < 0)
		return -1;
	_cleanup_free_ char *want = xasprintf("\"compat\": \"%s\"", compat ? compat : "1.1");
	if (!strstr(out, want))
		return err_fail("artifact '%s': qcow2 is not compat %s", artifact, compat ? compat : "1.1");
	return 0;
}

const struct writer_ops writer_qcow2_ops = {
	.name = "qcow2",
	.disk_format = "qcow2",
	.write = qcow2_write,
	.check = qcow2_check,
};

static int raw_write(const struct writer_input *in, const char *out)
{
	return fs_copy_file(in->raw, out, 0644);
}

static int raw_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	(void)a;
	return writer_qemu_img_check(artifact, "raw", expect_size);
}

const struct writer_ops writer_raw_ops = {
	.name = "raw",
	.disk_format = "raw",
	.write = raw_write,
	.check = raw_check,
};
