/* The write stage of a build: see build_write.h. */
#include "build_write.h"

#include "base.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "proc.h"
#include "recipe.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fill p and *a for one of a target's artifacts. */
void pending_init(const struct recipe *r, const struct build_opts *o, const struct stamp *st,
			 const struct target *t, const struct target_artifact *ta_in, uint64_t size,
			 const char *outdir, const char *stage, struct build_artifact *a, struct pending *p)
{
	p->w = writer_find(ta_in->writer);
	p->t = t;
	p->ta = ta_in;
	p->size = size;
	p->a = a;
	/* Command-line overrides of writer options: a copy of the artifact with them applied. */
	if (o->ova_digest && strcmp(p->w->name, "ova") == 0 && ta_in->n_options < ELEMENTSOF(p->opts)) {
		size_t n = 0;
		p->copy = *ta_in;
		for (size_t i = 0; i < ta_in->n_options; i++)
			if (strcmp(ta_in->options[i].key, "digest") != 0)
				p->opts[n++] = ta_in->options[i];
		p->opts[n++] = (struct target_option){"digest", o->ova_digest};
		p->copy.options = p->opts;
		p->copy.n_options = n;
		p->ta = &p->copy;
	}
	a->target = xstrdup(target_name(t));
	a->writer = xstrdup(p->w->name);
	a->file = xasprintf("%s-%s.%s", recipe_version(r), target_name(t), p->ta->extension);
	a->path = xasprintf("%s/%s", outdir, a->file);
	a->vsize = size;
	memcpy(a->build_id, st->build_id, sizeof(a->build_id));
	/* Its final name, in the private folder: published with the whole set (build_out_publish). */
	p->tmp = xasprintf("%s/%s", stage, a->file);
}

struct writer_input pending_input(const struct recipe *r, const struct stamp *st, const char *raw,
					 const char *workdir, const struct pending *p)
{
	return (struct writer_input){.raw = raw, .size = p->size, .target = p->t, .artifact = p->ta,
				     .version = recipe_version(r), .workdir = workdir, .epoch = st->epoch,
				     .build_id = st->build_id, .name = p->a->file, .patches = p->patches,
				     .n_patches = p->n_patches};
}

/* Whether p's writer takes it as a sink of the group's one reader. */
bool pending_streams(const struct pending *p)
{
	return p->w->sink && (!p->w->sink->accepts || p->w->sink->accepts(p->ta));
}

/* Check a written artifact in the private folder; sha256 set means the
 * writer hashed it while writing, else it is hashed here. */
int pending_finish(struct pending *p, int rc)
{
	struct build_artifact *a = p->a;
	if (rc == 0)
		rc = p->w->check(p->tmp, p->size, p->ta);
	if (rc == 0 && !a->sha256[0])
		rc = fs_sha256_file(p->tmp, a->sha256, &a->size);
	if (rc < 0) {
		unlink(p->tmp);
		err_prefix("target '%s'", target_name(p->t));
	}
	return rc;
}

/* Every streamed artifact of the group in one pass over its disk. */
int write_streamed(const struct recipe *r, const struct stamp *st, const char *raw, const char *workdir,
			  struct pending *ps, size_t n)
{
	_cleanup_free_ struct writer_job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	_cleanup_free_ size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	if (!jobs || !idx)
		abort();
	size_t nj = 0;
	char *names = NULL;
	size_t nlen = 0;
	FILE *f = open_memstream(&names, &nlen);
	for (size_t i = 0; i < n; i++)
		if (pending_streams(&ps[i])) {
			jobs[nj] = (struct writer_job){.w = ps[i].w, .in = pending_input(r, st, raw, workdir, &ps[i]),
						       .out = ps[i].tmp};
			fprintf(f, "%s%s", nj ? ", " : "", ps[i].a->file);
			idx[nj++] = i;
		}
	fclose(f);
	_cleanup_free_ char *list = names;
	if (nj == 0)
		return 0;
	double t0 = log_phase_begin("write", "one pass over the disk: %s", list);
	int rc = writer_stream(jobs, nj, 0);
	log_phase_end("write", t0, rc == 0);
	if (rc < 0) {
		for (size_t j = 0; j < nj; j++)
			unlink(jobs[j].out);
		return -1;
	}
	for (size_t j = 0; j < nj; j++) {
		struct pending *p = &ps[idx[j]];
		memcpy(p->a->sha256, jobs[j].sha256, sizeof(p->a->sha256));
		p->a->size = jobs[j].size;
		if (pending_finish(p, 0) < 0)
			return -1;
	}
	return 0;
}

/* raw grown (never shrunk) to size bytes: the zeros a larger virtual disk adds. */
static int grow(const char *raw, uint64_t size)
{
	struct stat st;
	if (stat(raw, &st) < 0 || ((uint64_t)st.st_size < size && truncate(raw, (off_t)size) < 0))
		return err_errno(errno, "growing '%s'", raw);
	return 0;
}

/* A private copy of raw (holes kept) with p's patches written over it. */
static int patched_copy(const char *raw, const struct pending *p, const char *copy)
{
	const char *argv[] = {"cp", "--sparse=always", raw, copy, NULL};
	if (proc_run(argv, NULL, NULL) < 0 || grow(copy, p->size) < 0)
		return -1;
	_cleanup_close_ int fd = open(copy, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "opening '%s'", copy);
	for (size_t i = 0; i < p->n_patches; i++) {
		const struct writer_patch *w = &p->patches[i];
		if (pwrite(fd, w->data, w->len, (off_t)w->offset) != (ssize_t)w->len)
			return err_errno(errno, "patching '%s' at %" PRIu64, copy, w->offset);
	}
	return 0;
}

int write_whole(const struct recipe *r, const struct stamp *st, const char *raw, const char *workdir,
		struct pending *ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pending *p = &ps[i];
		if (pending_streams(p))
			continue;
		/* Without patches the shared raw file grows to each one's size (callers
		 * order by size: zeros only ever added at the end). */
		_cleanup_free_ char *copy = p->n_patches ? xasprintf("%s/patched-%zu.raw", workdir, i) : NULL;
		int rc = copy ? patched_copy(raw, p, copy) : grow(raw, p->size);
		if (rc == 0) {
			struct writer_input in = pending_input(r, st, copy ? copy : raw, workdir, p);
			in.patches = NULL; /* already in the copy */
			in.n_patches = 0;
			double t0 = log_phase_begin("write", "%s: %s (%s)", target_name(p->t), p->a->file, p->w->name);
			rc = pending_finish(p, p->w->write(&in, p->tmp));
			log_phase_end("write", t0, rc == 0);
		}
		if (copy)
			unlink(copy);
		if (rc < 0 || check_interrupted() < 0)
			return -1;
	}
	return 0;
}

/* The Debian release the base comes from: the tree's, else (a base made
 * from the host's packages) the host's. */
static char *base_debian_version(const struct base_state *bs)
{
	_cleanup_free_ char *path = bs->tree ? xasprintf("%s/etc/debian_version", bs->tree) : NULL;
	char *buf = NULL;
	if (!path)
		return manifest_host_debian_version();
	if (fs_read_file(path, &buf, NULL) < 0) {
		err_clear();
		return xstrdup("");
	}
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

int build_write_manifest(const struct recipe *r, const struct build_opts *o, const struct stamp *st,
			 const struct base_state *bs, const char *stage, struct build_result *res)
{
	/* The release manifest (builder/release/manifest.h), then SHA256SUMS for `sha256sum -c`. */
	_cleanup_free_ char *debian = base_debian_version(bs);
	struct manifest_build b = {.appliance = recipe_name(r), .version = recipe_version(r),
				   .build_id = st->build_id, .recipe_sha256 = st->recipe_sha256, .epoch = st->epoch,
				   .kernel = st->kernel, .base_kind = recipe_base_kind(r), .base_version = debian};
	struct manifest *m = NULL;
	if (manifest_new(&b, &m) < 0)
		return -1;
	/* What the base says its image holds ("name version" lines). */
	_cleanup_free_ char *pkgs = bs->packages ? xstrdup(bs->packages) : NULL;
	for (char *save = NULL, *line = pkgs ? strtok_r(pkgs, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (sp && sp[1]) {
			*sp = 0;
			manifest_add_package(m, line, sp + 1);
		}
	}
	int rc = 0;
	for (unsigned i = 0; i < res->n_artifacts && rc == 0; i++) {
		const struct build_artifact *a = &res->artifacts[i];
		struct target *t = NULL;
		rc = target_find(o->datadir, a->target, &t);
		if (rc == 0)
			rc = manifest_add_artifact(m, &(struct manifest_artifact){
				.target = a->target, .file = a->file, .format = a->writer, .firmware = target_firmware(t),
				.build_id = a->build_id, .sha256 = a->sha256, .size = a->size, .virtual_size = a->vsize});
		target_free(t);
	}
	res->manifest = xasprintf("%s/manifest.json", res->out_dir);
	_cleanup_free_ char *staged = xasprintf("%s/manifest.json", stage);
	if (rc == 0)
		rc = manifest_write(m, staged);
	manifest_free(m);
	if (rc < 0)
		return -1;
	/* Signed before anything is published: the set goes out with its signature or not at all. */
	if (o->sign_key) {
		_cleanup_free_ char *sig = xasprintf("%s.sig", staged);
		if (sign_file(o->sign_key, staged, sig) < 0)
			return -1;
		res->signature = xasprintf("%s.sig", res->manifest);
	}

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	for (unsigned i = 0; i < res->n_artifacts; i++)
		fprintf(f, "%s  %s\n", res->artifacts[i].sha256, res->artifacts[i].file);
	fclose(f);
	_cleanup_free_ char *sums = xasprintf("%s/SHA256SUMS", stage);
	rc = fs_write_file_atomic(sums, buf, len, 0644);
	free(buf);
	return rc;
}
