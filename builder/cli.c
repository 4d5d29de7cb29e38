/* Command handlers outside main.c: the data folder, and `qvsa verify`:
 * which artifacts, with which target and expected version (a signed
 * manifest's entry, a recipe's build, or the stamp inside the artifact;
 * never its file name alone), and their summaries. `qvsa inspect` is in
 * inspect.c. */
#include "accel.h"
#include "artifact_id.h"
#include "cleanup.h"
#include "cli.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "kernel.h"
#include "recipe.h"
#include "target.h"
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef QVSA_DATADIR
#define QVSA_DATADIR "/usr/local/share/qvsa"
#endif

char *cli_datadir_find(void)
{
	const char *e = getenv("QVSA_DATADIR");
	if (e && *e)
		return xstrdup(e);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		_cleanup_free_ char *bindir = fs_dirname(exe);
		_cleanup_free_ char *up = fs_dirname(bindir);
		/* A source tree (build/qvsa) or an installed prefix (bin/qvsa, share/qvsa), relocatable. */
		_cleanup_free_ char *probe = xasprintf("%s/targets/kvm.yaml", up);
		if (fs_exists(probe))
			return TAKE_PTR(up);
		_cleanup_free_ char *share = xasprintf("%s/share/qvsa", up);
		_cleanup_free_ char *probe2 = xasprintf("%s/targets/kvm.yaml", share);
		if (fs_exists(probe2))
			return TAKE_PTR(share);
	}
	return xstrdup(QVSA_DATADIR);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* What cmd_verify owns for one artifact (verify_job borrows from it). */
struct verify_item {
	char *artifact;    /* path handed to verify (the user's, or a link under the published name); owned */
	char *display;     /* the path the user named, for the summary; owned */
	char *version;     /* expected bootstrap version: the manifest's or the stamp's; owned */
	struct target *t;  /* the artifact's target; owned */
};

/* verify picks an artifact's writer by its file's extension (builder/verify/
 * verify.c): a renamed artifact is handed over as a link under the name it
 * was published with, in a temporary folder. */
static char *boot_path(const char *arg, const char *file)
{
	const char *base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
	if (strcmp(base, file) == 0)
		return xstrdup(arg);
	_cleanup_free_ char *dir = fs_tmpdir_new("verify-name"); /* removed on exit */
	if (!dir)
		return NULL;
	char *link = xasprintf("%s/%s", dir, file);
	_cleanup_free_ char *abs = fs_abspath(arg);
	if (symlink(abs, link) < 0) {
		err_errno(errno, "linking '%s' as '%s'", arg, link);
		free(link);
		return NULL;
	}
	return link;
}

/* One artifact's target and version: checked against a signed manifest
 * (--manifest), else read from its stamp; never from its file name. With
 * --offline the check is all: its verdict is printed here. */
static int verify_identify(struct cli *c, const char *dd, const char *arg, struct artifact_identity *ret)
{
	if (!c->manifest)
		return artifact_identify(arg, dd, c->n_targets ? c->targets[0] : NULL, ret);
	struct artifact_check_opts co = {.manifest = c->manifest, .signature = c->signature, .pubkey = c->pubkey};
	if (artifact_check(arg, &co, ret) < 0)
		return -1;
	if (c->n_targets && strcmp(c->targets[0], ret->target) != 0) {
		err_input("artifact '%s': --target %s, but its manifest entry '%s' is for target '%s'", arg,
			  c->targets[0], ret->file, ret->target);
		artifact_identity_clear(ret);
		return -1;
	}
	if (c->json && c->offline) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "artifact", json_object_new_string(arg));
		json_object_object_add(o, "verified", json_object_new_boolean(1));
		json_object_object_add(o, "file", json_new_str_or_null(ret->file));
		json_object_object_add(o, "target", json_new_str_or_null(ret->target));
		json_object_object_add(o, "version", json_new_str_or_null(ret->version));
		json_object_object_add(o, "manifest", json_object_new_string(c->manifest));
		json_print_put(stdout, o);
	} else if (!c->json) {
		printf("%s: OK: %s of %s (target %s): signature, SHA-256 and stamp match %s\n", arg, ret->file,
		       ret->version, ret->target, c->manifest);
	}
	return 0;
}

/* The summary table on stdout: one row per artifact, a failure's reason after FAIL. */
static void verify_print_table(const struct verify_job *jobs, size_t nj)
{
	printf("%-11s %-28s %-4s %-25s %-17s %6s %12s  %s\n", "TARGET", "ARTIFACT", "FW", "DEVICES", "CHANNEL", "BOOT",
	       "PERSONALIZE", "RESULT");
	for (size_t i = 0; i < nj; i++) {
		const struct verify_result *r = &jobs[i].result;
		const char *base = strrchr(jobs[i].artifact, '/') ? strrchr(jobs[i].artifact, '/') + 1 : jobs[i].artifact;
		/* The channel that delivered the code, over HTTPS; Azure's Ready report when seen. */
		char chan[64];
		snprintf(chan, sizeof(chan), "%s%s%s", r->channel[0] ? r->channel : "-", r->channel[0] ? "/https" : "",
			 r->ready ? "+ready" : "");
		printf("%-11s %-28s %-4s %-25s %-17s %5.1fs %11.1fs  ", target_name(jobs[i].target), base,
		       target_firmware(jobs[i].target), r->devices, chan, r->t_boot, r->t_personalize);
		if (r->passed)
			printf("PASS\n");
		else
			printf("FAIL  %.*s\n", (int)strcspn(r->reason, "\n"), r->reason);
	}
	/* The base's own verdict (cloud-init's on the debian base), under the table: its rows stay as they are. */
	for (size_t i = 0; i < nj; i++)
		if (jobs[i].result.base_check[0])
			printf("%s (base %s): %s\n", target_name(jobs[i].target), jobs[i].result.base,
			       jobs[i].result.base_check);
}

/* One object per artifact, in a list: keys as docs/verify.md names them. */
static void verify_print_json(const struct verify_job *jobs, size_t nj)
{
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < nj; i++) {
		const struct verify_result *r = &jobs[i].result;
		json_object *o = json_object_new_object(), *secs = json_object_new_object();
		json_object_object_add(o, "target", json_object_new_string(target_name(jobs[i].target)));
		json_object_object_add(o, "artifact", json_new_str_or_null(jobs[i].artifact));
		json_object_object_add(o, "passed", json_object_new_boolean(r->passed));
		json_object_object_add(o, "devices", json_object_new_string(r->devices));
		json_object_object_add(o, "channel", json_object_new_string(r->channel));
		json_object_object_add(o, "ready", json_object_new_boolean(r->ready));
		json_object_object_add(secs, "prepare", json_new_seconds(r->t_prepare));
		json_object_object_add(secs, "audit", json_new_seconds(r->t_audit));
		json_object_object_add(secs, "boot", json_new_seconds(r->t_boot));
		json_object_object_add(secs, "personalize", json_new_seconds(r->t_personalize));
		json_object_object_add(secs, "check", json_new_seconds(r->t_check));
		json_object_object_add(o, "seconds", secs);
		json_object_object_add(o, "reason", json_object_new_string(r->reason));
		json_object_object_add(o, "components", json_object_new_string(r->components));
		json_object_object_add(o, "base", json_new_str_or_null(r->base[0] ? r->base : NULL));
		json_object_object_add(o, "base_check", json_new_str_or_null(r->base_check[0] ? r->base_check : NULL));
		json_object_array_add(list, o);
	}
	json_print_put(stdout, list);
}

/* The artifacts to verify: the recipe's (or --target's, or --all) in --out, or the one named. */
static int verify_collect(struct cli *c, const char *dd, struct verify_item *items, size_t max, size_t *ret_n)
{
	const char *arg = c->args[0];
	size_t n = 0;
	int rc = 0;
	if (ends_with(arg, ".yaml") || ends_with(arg, ".yml")) {
		struct recipe *r = NULL;
		if (recipe_load(arg, &r) < 0)
			return -1;
		_cleanup_strv_ char **all = NULL;
		if (c->all && target_list(dd, &all) < 0) {
			recipe_free(r);
			return -1;
		}
		char *const *names = c->all ? all : c->n_targets ? c->targets : recipe_targets(r);
		/* Every file of every target: aws ships a VMDK and a raw disk, both are booted. */
		for (size_t i = 0; names[i] && rc == 0; i++) {
			struct target *t = NULL;
			if (target_find(dd, names[i], &t) < 0) {
				rc = -1;
				break;
			}
			size_t na = target_n_artifacts(t);
			for (size_t j = 0; j < na && rc == 0; j++) {
				if (j > 0 && target_find(dd, names[i], &t) < 0) { /* each item owns its target */
					rc = -1;
					break;
				}
				char *path = xasprintf("%s/%s/%s-%s.%s", c->out_dir, recipe_version(r), recipe_version(r),
						       names[i], target_artifact_at(t, j)->extension);
				if (n >= max)
					rc = err_input("more than %zu artifacts to verify", max);
				else if (!fs_exists(path))
					rc = err_input("artifact '%s' (target '%s') does not exist; run 'qvsa build %s' first",
						       path, names[i], arg);
				if (rc < 0) {
					free(path);
					target_free(t);
					break;
				}
				items[n++] = (struct verify_item){.artifact = path, .display = xstrdup(path),
								  .version = xstrdup(recipe_version(r)), .t = t};
			}
		}
		recipe_free(r);
	} else {
		if (c->all)
			return err_input("--all goes with a recipe, not with one artifact ('%s')", arg);
		if (!fs_exists(arg))
			return err_input("artifact '%s': no such file", arg);
		struct artifact_identity id = {0};
		if (verify_identify(c, dd, arg, &id) < 0)
			return -1;
		struct target *t = NULL;
		char *path = NULL;
		if (!c->offline && (target_find(dd, id.target, &t) < 0 || !(path = boot_path(arg, id.file))))
			rc = -1;
		if (rc == 0 && !c->offline)
			items[n++] = (struct verify_item){.artifact = path, .display = xstrdup(arg),
							  .version = TAKE_PTR(id.version), .t = t};
		else
			target_free(t);
		artifact_identity_clear(&id);
	}
	*ret_n = n;
	return rc;
}

int cmd_verify(struct cli *c)
{
	_cleanup_free_ char *dd = cli_datadir_find();
	_cleanup_free_ char *cache = fs_cache_dir();
	struct verify_item items[64];
	size_t nj = 0;
	bool recipe = ends_with(c->args[0], ".yaml") || ends_with(c->args[0], ".yml");
	if (c->offline && !c->manifest)
		return err_input("verify: --offline goes with --manifest FILE and --pubkey KEY.pub");
	if (c->manifest && !c->pubkey)
		return err_input("verify: --manifest needs --pubkey KEY.pub (the publisher's public key)");
	if (!c->manifest && (c->pubkey || c->signature))
		return err_input("verify: --pubkey and --signature go with --manifest FILE");
	if (c->manifest && recipe)
		return err_input("verify: --manifest checks one artifact, not a recipe ('%s')", c->args[0]);
	/* The offline check needs no accelerator: the direct reader opens the image without a VM. */
	image_set_force_tcg(strcmp(c->accel, "kvm") != 0);
	int rc = verify_collect(c, dd, items, ELEMENTSOF(items), &nj);

	const char *accel = "tcg";
	if (rc == 0 && nj > 0) {
		/* The probe boots the appliance kernel; any cached one will do. */
		struct kernel *k = NULL;
		if (strcmp(c->accel, "auto") == 0) {
			if (kernel_fetch(cache, "linux-image-amd64", &k) < 0)
				rc = -1;
		}
		if (rc == 0)
			rc = accel_resolve(c->accel, cache, k ? kernel_image(k) : "/nonexistent", &accel);
		kernel_free(k);
	}
	image_set_force_tcg(accel && strcmp(accel, "tcg") == 0);

	struct verify_job jobs[ELEMENTSOF(items)];
	for (size_t i = 0; i < nj; i++)
		jobs[i] = (struct verify_job){.artifact = items[i].artifact, .target = items[i].t,
					      .expected_version = items[i].version};
	struct verify_opts o = {
		.connect_uri = c->connect, .pool = c->pool, .state_dir = cache, .accel = accel,
		.perscode = c->perscode ? c->perscode : DEFAULT_TEST_CODE,
		.expected_code = c->accept_code ? c->accept_code : DEFAULT_TEST_CODE,
		.timeout_s = c->timeout_s,
		.jobs = c->jobs, /* 0 (no -j): one boot per online CPU */
		.wrong_ca = c->wrong_ca,
	};
	/* Every artifact in one run: the reads before and after batched, up to -j boots at once. */
	int vrc = rc == 0 && nj > 0 ? verify_artifacts(jobs, nj, &o) : 0;

	if (rc == 0 && nj > 1) /* one artifact: its message is the recorded error */
		for (size_t i = 0; i < nj; i++)
			if (jobs[i].result.message)
				fprintf(stderr, "qvsa: %s\n", jobs[i].result.message);
	for (size_t i = 0; i < nj; i++) /* the summary names the files as the user did */
		jobs[i].artifact = items[i].display;
	if (rc == 0 && c->offline)
		; /* verify_identify printed the verdict */
	else if (rc == 0 && c->json)
		verify_print_json(jobs, nj);
	else if (rc == 0 && nj > 0)
		verify_print_table(jobs, nj);
	for (size_t i = 0; i < nj; i++) {
		verify_result_clear(&jobs[i].result);
		free(items[i].artifact);
		free(items[i].display);
		free(items[i].version);
		target_free(items[i].t);
	}
	return rc < 0 || vrc < 0 ? -1 : 0;
}
