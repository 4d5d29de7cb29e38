/* The CI job matrix: see matrix.h. */
#include "matrix.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "recipe.h"
#include "target.h"

#include <json-c/json.h>
#include <string.h>

/* One job: what every format prints. */
struct job {
	const char *target;   /* target name (the recipe's) */
	char *artifacts;      /* file names, space-separated; owned */
	const char *firmware; /* bios | uefi (the target's) */
	const char *platform; /* the platform verify plays (the target's) */
};

/* A JSON list, one job per line (each serialized by json-c). */
static void print_json(const struct job *jobs, size_t n, FILE *out)
{
	fprintf(out, "[");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object(), *arts = json_object_new_array();
		json_object_object_add(o, "target", json_object_new_string(jobs[i].target));
		_cleanup_free_ char *copy = xstrdup(jobs[i].artifacts);
		char *save = NULL;
		for (char *a = strtok_r(copy, " ", &save); a; a = strtok_r(NULL, " ", &save))
			json_object_array_add(arts, json_object_new_string(a));
		json_object_object_add(o, "artifacts", arts);
		json_object_object_add(o, "firmware", json_object_new_string(jobs[i].firmware));
		json_object_object_add(o, "platform", json_object_new_string(jobs[i].platform));
		fprintf(out, "%s\n  %s", i ? "," : "",
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	fprintf(out, "\n]\n");
}

/* One line (for $GITHUB_OUTPUT), an object fromJSON() turns into strategy.matrix. */
static void print_github(const struct job *jobs, size_t n, FILE *out)
{
	json_object *o = json_object_new_object(), *inc = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "target", json_object_new_string(jobs[i].target));
		json_object_object_add(j, "artifacts", json_object_new_string(jobs[i].artifacts));
		json_object_object_add(j, "firmware", json_object_new_string(jobs[i].firmware));
		json_object_object_add(j, "platform", json_object_new_string(jobs[i].platform));
		json_object_array_add(inc, j);
	}
	json_object_object_add(o, "include", inc);
	fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* parallel:matrix: one entry per target (values are plain names: no quoting needed). */
static void print_gitlab(const struct job *jobs, size_t n, FILE *out)
{
	fprintf(out, "parallel:\n  matrix:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "    - TARGET: %s\n      ARTIFACTS: \"%s\"\n      FIRMWARE: %s\n      PLATFORM: %s\n",
			jobs[i].target, jobs[i].artifacts, jobs[i].firmware, jobs[i].platform);
}

int matrix_print(const struct recipe *r, const char *datadir, const char *format, FILE *out)
{
	static const struct {
		const char *name;
		void (*print)(const struct job *, size_t, FILE *);
	} formats[] = {{"json", print_json}, {"github", print_github}, {"gitlab", print_gitlab}};
	void (*print)(const struct job *, size_t, FILE *) = NULL;
	for (size_t i = 0; i < ELEMENTSOF(formats); i++)
		if (strcmp(formats[i].name, format ? format : "json") == 0)
			print = formats[i].print;
	if (!print)
		return err_input("matrix format '%s': expected %s", format, MATRIX_FORMATS);

	size_t n = 0;
	while (recipe_targets(r)[n])
		n++;
	struct job *jobs = calloc(n, sizeof(*jobs));
	struct target **ts = calloc(n, sizeof(*ts));
	if (!jobs || !ts)
		abort();
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (target_find(datadir, recipe_targets(r)[i], &ts[i]) < 0) {
			rc = -1;
			break;
		}
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		/* The names build writes (VERSION-TARGET.EXT), every file the target ships. */
		for (size_t a = 0; a < target_n_artifacts(ts[i]); a++)
			fprintf(f, "%s%s-%s.%s", a ? " " : "", recipe_version(r), target_name(ts[i]),
				target_artifact_at(ts[i], a)->extension);
		fclose(f);
		jobs[i] = (struct job){.target = target_name(ts[i]), .artifacts = buf,
				       .firmware = target_firmware(ts[i]), .platform = target_verify_platform(ts[i])};
	}
	if (rc == 0)
		print(jobs, n, out);
	for (size_t i = 0; i < n; i++) {
		free(jobs[i].artifacts);
		target_free(ts[i]);
	}
	free(jobs);
	free(ts);
	return rc;
}
