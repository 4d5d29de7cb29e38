/* qcow2, which qemu-img still writes (its metadata precedes the data, so it
 * is not yet a sink), and raw, a sink that copies the grains. */
#include "writer.h"
#include "outfile.h"

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

/* The disk as it is: data written, holes left as holes. */
static int raw_open(const struct writer_input *in, const char *out, void **ret)
{
	(void)in;
	return outfile_open(out, NULL, (struct outfile **)ret);
}

static int raw_grain(void *f, const struct writer_grain *g)
{
	return g->zero ? outfile_zeros(f, g->len) : outfile_write(f, g->data, g->len);
}

static int raw_finish(void *f, char sha[65], uint64_t *size) { return outfile_finish(f, sha, size); }
static void raw_free(void *f) { outfile_free(f); }

static const struct writer_sink_ops raw_sink = {
	.open = raw_open, .grain = raw_grain, .finish = raw_finish, .free = raw_free,
};

extern const struct writer_ops writer_raw_ops;
static int raw_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_raw_ops, in, out);
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
	.sink = &raw_sink,
	.check = raw_check,
};
