/* Merging the per-target manifests of one build (one CI job per target)
 * into the release's one manifest: see manifest_merge in manifest.h. */
#include "manifest.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int art_cmp(const void *a, const void *b)
{
	const struct manifest_artifact *x = *(const struct manifest_artifact *const *)a;
	const struct manifest_artifact *y = *(const struct manifest_artifact *const *)b;
	int c = strcmp(x->target, y->target);
	return c ? c : strcmp(x->file, y->file);
}

/* One build field that every input must agree on. */
static int same(const char *field, const char *a, const char *name_a, const char *b, const char *name_b)
{
	if (strcmp(a, b) == 0)
		return 0;
	return err_input("manifest merge: %s differs: '%s' in '%s', '%s' in '%s' (not one build)", field, a, name_a, b,
			 name_b);
}

static int same_build(const struct manifest *a, const char *na, const struct manifest *b, const char *nb)
{
	const struct manifest_build *x = manifest_build(a), *y = manifest_build(b);
	if (same("bootstrap_version", x->version, na, y->version, nb) < 0 ||
	    same("recipe_sha256", x->recipe_sha256, na, y->recipe_sha256, nb) < 0 ||
	    same("appliance", x->appliance, na, y->appliance, nb) < 0 ||
	    same("build_date", manifest_build_date(a), na, manifest_build_date(b), nb) < 0 ||
	    same("kernel", x->kernel, na, y->kernel, nb) < 0 || same("base.kind", x->base_kind, na, y->base_kind, nb) < 0 ||
	    same("base.version", x->base_version, na, y->base_version, nb) < 0)
		return -1;
	/* Packages are sorted by name in both. */
	size_t n = manifest_n_packages(a);
	if (n != manifest_n_packages(b))
		return err_input("manifest merge: base.packages differ between '%s' (%zu) and '%s' (%zu) (not one build)",
				 na, n, nb, manifest_n_packages(b));
	for (size_t i = 0; i < n; i++) {
		const char *pa, *va, *pb, *vb;
		manifest_package_at(a, i, &pa, &va);
		manifest_package_at(b, i, &pb, &vb);
		_cleanup_free_ char *x1 = xasprintf("%s %s", pa, va), *y1 = xasprintf("%s %s", pb, vb);
		if (same("base package", x1, na, y1, nb) < 0)
			return -1;
	}
	return 0;
}

static bool same_entry(const struct manifest_artifact *x, const struct manifest_artifact *y)
{
	return strcmp(x->target, y->target) == 0 && strcmp(x->format, y->format) == 0 &&
	       strcmp(x->firmware, y->firmware) == 0 && strcmp(x->build_id, y->build_id) == 0 &&
	       strcmp(x->sha256, y->sha256) == 0 && x->size == y->size && x->virtual_size == y->virtual_size;
}

int manifest_merge(struct manifest *const *ins, const char *const *names, size_t n, struct manifest **ret)
{
	if (n == 0)
		return err_input("manifest merge: no input manifest");
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && same_build(ins[0], names[0], ins[i], names[i]) < 0)
			return -1;
		total += manifest_n_artifacts(ins[i]);
	}
	/* Every entry, with the input it came from, sorted; duplicates then sit side by side. */
	_cleanup_free_ const struct manifest_artifact **arts = calloc(total ? total : 1, sizeof(*arts));
	_cleanup_free_ const char **from = calloc(total ? total : 1, sizeof(*from));
	_cleanup_free_ char **ids = calloc(n, sizeof(*ids));
	if (!arts || !from || !ids)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		ids[i] = (char *)manifest_build(ins[i])->build_id;
		for (size_t j = 0; j < manifest_n_artifacts(ins[i]); j++)
			arts[k++] = manifest_artifact_at(ins[i], j);
	}
	/* Conflicts first, by file name across all inputs (a quadratic scan: a release has tens of files). */
	for (size_t a = 0; a < total; a++)
		for (size_t b = a + 1; b < total; b++)
			if (strcmp(arts[a]->file, arts[b]->file) == 0 && !same_entry(arts[a], arts[b])) {
				size_t ia = 0, ib = 0;
				for (size_t i = 0, c = 0; i < n; c += manifest_n_artifacts(ins[i]), i++) {
					if (a >= c && a < c + manifest_n_artifacts(ins[i]))
						ia = i;
					if (b >= c && b < c + manifest_n_artifacts(ins[i]))
						ib = i;
				}
				return err_input("manifest merge: artifact '%s' conflicts: sha256 %.12s… (build %s) in '%s', "
						 "sha256 %.12s… (build %s) in '%s'",
						 arts[a]->file, arts[a]->sha256, arts[a]->build_id, names[ia], arts[b]->sha256,
						 arts[b]->build_id, names[ib]);
			}
	qsort(arts, total, sizeof(*arts), art_cmp);

	/* One id for the set: the inputs' when they agree, else derived from all of them. */
	qsort(ids, n, sizeof(*ids), str_cmp);
	char id[17];
	snprintf(id, sizeof(id), "%s", ids[0]);
	if (strcmp(ids[0], ids[n - 1]) != 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		fprintf(f, "qvsa-merge\n");
		for (size_t i = 0; i < n; i++)
			if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
				fprintf(f, "%s\n", ids[i]);
		fclose(f);
		char hex[65];
		sha256_hex(buf, len, hex);
		free(buf);
		snprintf(id, sizeof(id), "%.16s", hex);
	}

	struct manifest_build b = *manifest_build(ins[0]);
	b.build_id = id;
	struct manifest *m = NULL;
	if (manifest_new(&b, &m) < 0)
		return -1;
	for (size_t i = 0; i < manifest_n_packages(ins[0]); i++) {
		const char *p, *v;
		manifest_package_at(ins[0], i, &p, &v);
		manifest_add_package(m, p, v);
	}
	for (size_t i = 0; i < total; i++)
		if ((i == 0 || strcmp(arts[i]->file, arts[i - 1]->file) != 0) && manifest_add_artifact(m, arts[i]) < 0) {
			manifest_free(m);
			return -1;
		}
	*ret = m;
	return 0;
}
