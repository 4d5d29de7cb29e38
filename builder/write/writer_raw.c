/* raw: a sink that copies the grains, holes left as holes. */
#include "writer.h"
#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "target.h"

#include <string.h>

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
