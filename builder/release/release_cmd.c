/* The release commands: see release_cmd.h. */
#include "release_cmd.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "json.h"
#include "manifest.h"
#include "matrix.h"
#include "recipe.h"
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int release_cmd_keygen(const char *key)
{
	if (sign_keygen(key) < 0)
		return -1;
	printf("wrote %s (Ed25519 private key, mode 0600: keep it secret) and %s.pub (public key: publish it)\n", key,
	       key);
	return 0;
}

int release_cmd_sign(const char *manifest, const char *key, const char *sig)
{
	struct manifest *m = NULL;
	if (manifest_load(manifest, &m) < 0) /* a manifest this qvsa reads, not any file */
		return -1;
	manifest_free(m);
	struct sign_key *k = NULL;
	if (sign_key_load_private(key, &k) < 0)
		return -1;
	int rc = sign_file(k, manifest, sig);
	sign_key_free(k);
	if (rc == 0)
		printf("signed %s: %s%s\n", manifest, sig ? sig : manifest, sig ? "" : ".sig");
	return rc;
}

int release_cmd_merge(const char *out, char *const *ins, int n, bool json)
{
	struct manifest **ms = calloc((size_t)n, sizeof(*ms));
	if (!ms)
		abort();
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		rc = manifest_load(ins[i], &ms[i]);
	struct manifest *merged = NULL;
	if (rc == 0)
		rc = manifest_merge(ms, (const char *const *)ins, (size_t)n, &merged);
	if (rc == 0)
		rc = manifest_write(merged, out);
	/* SHA256SUMS beside it, as a build writes, for `sha256sum -c`. */
	if (rc == 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		for (size_t i = 0; i < manifest_n_artifacts(merged); i++)
			fprintf(f, "%s  %s\n", manifest_artifact_at(merged, i)->sha256, manifest_artifact_at(merged, i)->file);
		fclose(f);
		_cleanup_free_ char *dir = fs_dirname(out);
		_cleanup_free_ char *sums = xasprintf("%s/SHA256SUMS", dir);
		rc = fs_write_file_atomic(sums, buf, len, 0644);
		free(buf);
	}
	if (rc == 0 && json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "manifest", json_object_new_string(out));
		json_object_object_add(o, "build_id", json_object_new_string(manifest_build(merged)->build_id));
		json_object_object_add(o, "inputs", json_object_new_int(n));
		json_object_object_add(o, "artifacts", json_object_new_uint64(manifest_n_artifacts(merged)));
		json_print_put(stdout, o);
	} else if (rc == 0) {
		printf("merged %d manifest%s into %s: %zu artifacts, build %s\n", n, n > 1 ? "s" : "", out,
		       manifest_n_artifacts(merged), manifest_build(merged)->build_id);
	}
	manifest_free(merged);
	for (int i = 0; i < n; i++)
		manifest_free(ms[i]);
	free(ms);
	return rc;
}

int release_cmd_matrix(const char *recipe, const char *datadir, const char *format)
{
	struct recipe *r = NULL;
	if (recipe_load(recipe, &r) < 0)
		return -1;
	int rc = matrix_print(r, datadir, format, stdout);
	recipe_free(r);
	return rc;
}
