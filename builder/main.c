/* qvsa command line: one table of subcommands; the only place that prints
 * errors and chooses exit codes (0 ok, 1 build/verification failed, 2 bad
 * usage or input). */
#include "accel.h"
#include "build.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "kernel.h"
#include "log.h"
#include "recipe.h"
#include "recipe_check.h"
#include "stamp.h"
#include "target.h"
#include "relay.h"
#include "verify.h"
#include "writer.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>

#ifndef QVSA_DATADIR
#define QVSA_DATADIR "/usr/local/share/qvsa"
#endif
#define QVSA_VERSION_STRING "0.1.0"
/* The personalization code the verification stub accepts unless told otherwise. */
#define DEFAULT_TEST_CODE "4242424242"

/* Options shared by the subcommands (each uses the ones it documents). */
struct cli {
	char *targets[64];        /* --target, repeated */
	size_t n_targets;         /* entries in targets */
	const char *out_dir;      /* --out */
	const char *accel;        /* --accel */
	const char *connect;      /* --connect */
	const char *perscode;     /* --perscode */
	const char *accept_code;  /* --accept-code */
	unsigned timeout_s;       /* --timeout */
	bool json;                /* --json */
	unsigned jobs;            /* -j N: writers at once */
	const char *ova_digest;   /* --ova-digest sha256|sha1 */
	bool all;                 /* --all */
	bool wrong_ca;            /* --wrong-ca */
	char *const *args;        /* positional arguments */
	int nargs;                /* entries in args */
};

/* One subcommand. */
struct command {
	const char *name;                   /* as typed */
	int (*run)(struct cli *c);          /* handler; returns 0 or -1 with an error recorded */
	const char *usage;                  /* synopsis */
	const char *help;                   /* one line */
	int min_args, max_args;             /* positional argument count */
};

static char *datadir_find(void)
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

static int cmd_targets(struct cli *c)
{
	_cleanup_free_ char *dd = datadir_find();
	_cleanup_strv_ char **names = NULL;
	if (target_list(dd, &names) < 0)
		return -1;
	for (char **n = names; *n; n++) {
		struct target *t = NULL;
		if (target_find(dd, *n, &t) < 0)
			return -1;
		if (c->json)
			printf("%s{\"name\": \"%s\", \"writer\": \"%s\", \"firmware\": \"%s\"}", n == names ? "[" : ", ",
			       *n, target_writer(t), target_firmware(t));
		else
			printf("%-12s %-6s %-5s %s\n", *n, target_writer(t), target_firmware(t), target_description(t));
		target_free(t);
	}
	if (c->json)
		printf("%s]\n", names[0] ? "" : "[");
	return 0;
}

static int cmd_lint(struct cli *c)
{
	struct recipe *r = NULL;
	if (recipe_load(c->args[0], &r) < 0)
		return -1;
	_cleanup_free_ char *dd = datadir_find();
	_cleanup_free_ char *cache = fs_cache_dir();
	int rc = recipe_check(r, dd, cache);
	if (rc == 0)
		printf("%s: ok (%s, %s)\n", c->args[0], recipe_name(r), recipe_version(r));
	recipe_free(r);
	return rc;
}

static int cmd_build(struct cli *c)
{
	struct recipe *r = NULL;
	if (recipe_load(c->args[0], &r) < 0)
		return -1;
	_cleanup_free_ char *dd = datadir_find();
	_cleanup_free_ char *cache = fs_cache_dir();
	if (recipe_check(r, dd, cache) < 0) {
		recipe_free(r);
		return -1;
	}
	c->targets[c->n_targets] = NULL;
	struct build_opts o = {.datadir = dd, .cache_dir = cache, .out_dir = c->out_dir, .targets = c->targets,
			       .accel = c->accel, .jobs = c->jobs, .ova_digest = c->ova_digest};
	struct build_result res;
	double t0 = now_monotonic();
	int rc = build_run(r, &o, &res);
	if (rc == 0) {
		if (c->json) {
			printf("{\"out_dir\": ");
			json_write_str(stdout, res.out_dir);
			printf(", \"manifest\": ");
			json_write_str(stdout, res.manifest);
			printf(", \"build_id\": \"%s\", \"seconds\": {\"prepare\": %.1f, \"assemble\": %.1f, \"write\": %.1f}, \"artifacts\": [",
			       res.build_id, res.t_prepare, res.t_assemble, res.t_write);
			for (unsigned i = 0; i < res.n_artifacts; i++) {
				printf("%s{\"target\": \"%s\", \"path\": ", i ? ", " : "", res.artifacts[i].target);
				json_write_str(stdout, res.artifacts[i].path);
				printf(", \"size\": %llu, \"sha256\": \"%s\"}", (unsigned long long)res.artifacts[i].size,
				       res.artifacts[i].sha256);
			}
			printf("]}\n");
		} else {
			printf("built %s (%s) in %.1fs: prepare %.1fs, assemble %.1fs, write %.1fs\n", recipe_version(r),
			       res.build_id, now_monotonic() - t0, res.t_prepare, res.t_assemble, res.t_write);
			for (unsigned i = 0; i < res.n_artifacts; i++)
				printf("  %-10s %s (%llu bytes)\n", res.artifacts[i].target, res.artifacts[i].path,
				       (unsigned long long)res.artifacts[i].size);
			printf("  manifest   %s\n", res.manifest);
		}
	}
	build_result_free(&res);
	recipe_free(r);
	return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "DIR/qVSA-1.0-kvm.qcow2" -> "kvm" (NULL if the name is not ours). */
static char *target_from_filename(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (strncmp(base, "qVSA-", 5) != 0)
		return NULL;
	const char *dash = strchr(base + 5, '-');
	const char *dot = dash ? strchr(dash, '.') : NULL;
	if (!dot)
		return NULL;
	return xasprintf("%.*s", (int)(dot - dash - 1), dash + 1);
}

/* "qVSA-1.0-kvm.qcow2" -> "qVSA-1.0". */
static char *version_from_filename(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *dash = strncmp(base, "qVSA-", 5) == 0 ? strchr(base + 5, '-') : NULL;
	return dash ? xasprintf("%.*s", (int)(dash - base), base) : NULL;
}

/* What cmd_verify owns for one artifact (verify_job borrows from it). */
struct verify_item {
	char *artifact;    /* path; owned */
	char *version;     /* expected bootstrap version; owned; NULL when the name does not tell */
	struct target *t;  /* the artifact's target; owned */
};

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
}

static void verify_print_json(const struct verify_job *jobs, size_t nj)
{
	printf("[");
	for (size_t i = 0; i < nj; i++) {
		const struct verify_result *r = &jobs[i].result;
		printf("%s{\"target\": \"%s\", \"artifact\": ", i ? ", " : "", target_name(jobs[i].target));
		json_write_str(stdout, jobs[i].artifact);
		printf(", \"passed\": %s, \"devices\": ", r->passed ? "true" : "false");
		json_write_str(stdout, r->devices);
		printf(", \"channel\": ");
		json_write_str(stdout, r->channel);
		printf(", \"ready\": %s", r->ready ? "true" : "false");
		printf(", \"seconds\": {\"prepare\": %.1f, \"audit\": %.1f, \"boot\": %.1f, \"personalize\": %.1f, "
		       "\"check\": %.1f}, \"reason\": ",
		       r->t_prepare, r->t_audit, r->t_boot, r->t_personalize, r->t_check);
		json_write_str(stdout, r->reason);
		printf(", \"components\": ");
		json_write_str(stdout, r->components);
		printf("}");
	}
	printf("]\n");
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
				items[n++] = (struct verify_item){.artifact = path, .version = xstrdup(recipe_version(r)),
								  .t = t};
			}
		}
		recipe_free(r);
	} else {
		if (c->all)
			return err_input("--all goes with a recipe, not with one artifact ('%s')", arg);
		if (!fs_exists(arg))
			return err_input("artifact '%s': no such file", arg);
		_cleanup_free_ char *tname = c->n_targets ? xstrdup(c->targets[0]) : target_from_filename(arg);
		if (!tname)
			return err_input("artifact '%s': cannot tell its target from the name; pass --target", arg);
		struct target *t = NULL;
		if (target_find(dd, tname, &t) < 0)
			return -1;
		items[n++] = (struct verify_item){.artifact = xstrdup(arg), .version = version_from_filename(arg), .t = t};
	}
	*ret_n = n;
	return rc;
}

static int cmd_verify(struct cli *c)
{
	_cleanup_free_ char *dd = datadir_find();
	_cleanup_free_ char *cache = fs_cache_dir();
	struct verify_item items[64];
	size_t nj = 0;
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
		.connect_uri = c->connect, .state_dir = cache, .accel = accel,
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
	if (rc == 0 && c->json)
		verify_print_json(jobs, nj);
	else if (rc == 0 && nj > 0)
		verify_print_table(jobs, nj);
	for (size_t i = 0; i < nj; i++) {
		verify_result_clear(&jobs[i].result);
		free(items[i].artifact);
		free(items[i].version);
		target_free(items[i].t);
	}
	return rc < 0 || vrc < 0 ? -1 : 0;
}

static int cmd_inspect(struct cli *c)
{
	const char *art = c->args[0];
	if (!fs_exists(art))
		return err_input("artifact '%s': no such file", art);
	_cleanup_free_ char *cache = fs_cache_dir();
	const char *accel = "tcg";
	if (strcmp(c->accel, "tcg") != 0) {
		struct kernel *k = NULL;
		int rc = strcmp(c->accel, "auto") == 0 ? kernel_fetch(cache, "linux-image-amd64", &k) : 0;
		if (rc == 0)
			rc = accel_resolve(c->accel, cache, k ? kernel_image(k) : "/nonexistent", &accel);
		kernel_free(k);
		if (rc < 0)
			return -1;
	}
	image_set_force_tcg(strcmp(accel, "tcg") == 0);

	/* A container (OVA, GCE tarball) is opened through its writer's unpack; the
	 * writer is found from the target named in the artifact's file name. */
	const char *disk = art, *format = NULL;
	_cleanup_free_ char *unpacked = NULL, *dd = datadir_find();
	_cleanup_free_ char *tname = target_from_filename(art);
	struct target *t = NULL;
	if (tname && target_find(dd, tname, &t) == 0) {
		for (size_t i = 0; i < target_n_artifacts(t); i++) {
			const struct target_artifact *ta = target_artifact_at(t, i);
			_cleanup_free_ char *suffix = xasprintf(".%s", ta->extension);
			const struct writer_ops *w = writer_find(ta->writer);
			if (!w || !ends_with(art, suffix))
				continue;
			format = w->disk_format;
			if (w->unpack) {
				char *tmp = fs_tmpdir_new("inspect");
				if (!tmp || w->unpack(art, tmp, &unpacked) < 0) {
					target_free(t);
					return -1;
				}
				free(tmp); /* still registered: removed on exit */
				disk = unpacked;
			}
			break;
		}
	}
	target_free(t);
	err_clear();
	const char *paths[] = {"/etc/qvsa-release", "/etc/qvsa/components", "/etc/os-release", NULL};
	/* What the image says it is (os-release, as importers read it), beside the stamp. */
	static const char *const os_keys[] = {"NAME", "VERSION", "ID", "ID_LIKE", "PRETTY_NAME"};
	char **contents = NULL;
	if (image_read_files(disk, format, paths, &contents) < 0)
		return -1;
	int rc = 0;
	if (!contents[0]) {
		rc = err_input("artifact '%s': no /etc/qvsa-release inside", art);
	} else if (c->json) {
		printf("{\"artifact\": ");
		json_write_str(stdout, art);
		printf(", \"os\": ");
		if (!contents[2])
			printf("null");
		for (size_t i = 0; contents[2] && i < ELEMENTSOF(os_keys); i++) {
			_cleanup_free_ char *v = stamp_get(contents[2], os_keys[i]);
			printf("%s\"%s\": ", i ? ", " : "{", os_keys[i]);
			json_write_str(stdout, v);
		}
		printf("%s", contents[2] ? "}" : "");
		const char *keys[] = {"APPLIANCE", "BOOTSTRAP_VERSION", "BUILD_ID", "BUILD_DATE", "RECIPE_SHA256",
				      "TARGETS", "KERNEL"};
		for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
			_cleanup_free_ char *v = stamp_get(contents[0], keys[i]);
			printf(", \"%s\": ", keys[i]);
			json_write_str(stdout, v);
		}
		printf(", \"personalized\": %s}\n", contents[1] ? "true" : "false");
	} else {
		printf("# os (/etc/os-release)%s\n", contents[2] ? "" : ": none");
		for (size_t i = 0; contents[2] && i < ELEMENTSOF(os_keys); i++) {
			_cleanup_free_ char *v = stamp_get(contents[2], os_keys[i]);
			printf("OS_%s=\"%s\"\n", os_keys[i], v ? v : "");
		}
		printf("# stamp (/etc/qvsa-release)\n%s", contents[0]);
		if (contents[1])
			printf("# personalized; components:\n%s", contents[1]);
	}
	for (size_t i = 0; paths[i]; i++)
		free(contents[i]);
	free(contents);
	return rc;
}

static const struct command commands[] = {
	{"build", cmd_build, "build RECIPE [--target T]... [--out DIR] [-j N] [--ova-digest sha1] [--accel A] [--json]",
	 "assemble the disk, stamp it and write one artifact per target", 1, 1},
	{"verify", cmd_verify, "verify RECIPE|ARTIFACT [--target T]... [--all] [-j N] [--connect URI] [--accel A] [--json]",
	 "boot artifacts under libvirt and prove first-boot personalization", 1, 1},
	{"inspect", cmd_inspect, "inspect ARTIFACT [--json]", "print the OS and the stamp read from inside an image", 1, 1},
	{"lint", cmd_lint, "lint RECIPE", "validate a recipe (and its targets) only", 1, 1},
	{"targets", cmd_targets, "targets [--json]", "list the targets qvsa can write", 0, 0},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: qvsa COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\noptions:\n"
		   "  --target T       a target from 'qvsa targets' (repeatable; default: the recipe's)\n"
		   "  --all            verify: every target qvsa knows (their artifacts must be built)\n"
		   "  --out DIR        artifacts folder (default: out); artifacts land in DIR/qVSA-X.Y/\n"
		   "  --accel A        auto (probe KVM, fall back to TCG), kvm or tcg (default: auto)\n"
		   "  -j, --jobs N     build: write artifacts of N disks at once (default 1);\n"
		   "                   verify: boot N artifacts at once (default: the number of CPUs)\n"
		   "  --ova-digest D   build: OVA manifest digest, sha256 (default) or sha1 for older vSphere\n"
		   "  --connect URI    libvirt URI for verify (default: embedded QEMU driver, no daemon)\n"
		   "  --perscode CODE  personalization code verify hands over through the platform's channel\n"
		   "  --accept-code C  code verify's platform stub accepts (default %s)\n"
		   "  --timeout S      verify: seconds from boot to power-off (default 180)\n"
		   "  --wrong-ca       verify: hand the guest a CA that did not sign the platform (must then fail)\n"
		   "  --json           machine-readable output on stdout\n"
		   "  -q, --quiet      no progress lines\n"
		   "  --version, --help\n\n"
		   "exit status: 0 ok, 1 build or verification failed, 2 bad usage or bad input\n"
		   "See docs/ (or %s) for recipes, targets and verification.\n",
		DEFAULT_TEST_CODE, QVSA_DATADIR);
}

static void on_signal(int sig)
{
	qvsa_interrupted = sig; /* which one, for the exit status 128 + sig */
}

static int exit_code(void)
{
	const char *m = err_msg();
	if (m)
		fprintf(stderr, "qvsa: %s\n", m);
	return err_kind() == ERR_INPUT ? 2 : 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	/* QEMU runs `qvsa __relay PORT` per guest connection to a platform's
	 * metadata address (relay.h). Its stdio is the guest's connection: it
	 * must print nothing. */
	if (strcmp(argv[1], "__relay") == 0) {
		char *end;
		long port = argc == 3 ? strtol(argv[2], &end, 10) : 0;
		if (argc != 3 || *end || port < 1 || port > 65535)
			return 2;
		return relay_run("127.0.0.1", (uint16_t)port) < 0 ? 1 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("qvsa %s\n", QVSA_VERSION_STRING);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, argv[1]) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "qvsa: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}

	struct cli c = {.out_dir = "out", .accel = "auto"};
	bool quiet = false;
	enum { O_TARGET = 256, O_OUT, O_ACCEL, O_CONNECT, O_PERSCODE, O_ACCEPT, O_TIMEOUT, O_JSON, O_ALL, O_HELP,
	       O_OVA_DIGEST, O_WRONG_CA };
	static const struct option opts[] = {
		{"target", required_argument, NULL, O_TARGET}, {"out", required_argument, NULL, O_OUT},
		{"accel", required_argument, NULL, O_ACCEL},   {"connect", required_argument, NULL, O_CONNECT},
		{"perscode", required_argument, NULL, O_PERSCODE}, {"accept-code", required_argument, NULL, O_ACCEPT},
		{"timeout", required_argument, NULL, O_TIMEOUT}, {"json", no_argument, NULL, O_JSON},
		{"all", no_argument, NULL, O_ALL},             {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, O_HELP},           {"ova-digest", required_argument, NULL, O_OVA_DIGEST},
		{"jobs", required_argument, NULL, 'j'},        {"wrong-ca", no_argument, NULL, O_WRONG_CA},
		{NULL, 0, NULL, 0},
	};
	optind = 2;
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, "qj:", opts, NULL)) != -1) {
		switch (o) {
		case O_TARGET:
			if (c.n_targets + 1 >= ELEMENTSOF(c.targets)) {
				fprintf(stderr, "qvsa: too many --target options\n");
				return 2;
			}
			c.targets[c.n_targets++] = optarg;
			break;
		case O_OUT: c.out_dir = optarg; break;
		case O_ACCEL: c.accel = optarg; break;
		case O_CONNECT: c.connect = optarg; break;
		case O_PERSCODE: c.perscode = optarg; break;
		case O_ACCEPT: c.accept_code = optarg; break;
		case O_TIMEOUT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 86400) {
				fprintf(stderr, "qvsa: --timeout '%s': expected seconds (1-86400)\n", optarg);
				return 2;
			}
			c.timeout_s = (unsigned)v;
			break;
		}
		case O_JSON: c.json = true; break;
		case O_ALL: c.all = true; break;
		case O_WRONG_CA: c.wrong_ca = true; break;
		case 'q': quiet = true; break;
		case 'j': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 16) {
				fprintf(stderr, "qvsa: -j '%s': expected a number of jobs from 1 to 16\n", optarg);
				return 2;
			}
			c.jobs = (unsigned)v;
			break;
		}
		case O_OVA_DIGEST:
			if (strcmp(optarg, "sha256") != 0 && strcmp(optarg, "sha1") != 0) {
				fprintf(stderr, "qvsa: --ova-digest '%s': expected sha256 or sha1\n", optarg);
				return 2;
			}
			c.ova_digest = optarg;
			break;
		case O_HELP:
			printf("usage: qvsa %s\n  %s\n", cmd->usage, cmd->help);
			return 0;
		default:
			fprintf(stderr, "qvsa %s: unknown or incomplete option '%s'\nusage: qvsa %s\n", cmd->name,
				argv[optind - 1], cmd->usage);
			return 2;
		}
	}
	c.targets[c.n_targets] = NULL;
	c.args = argv + optind;
	c.nargs = argc - optind;
	if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
		fprintf(stderr, "qvsa %s: expected %d argument(s)\nusage: qvsa %s\n", cmd->name, cmd->min_args, cmd->usage);
		return 2;
	}
	if (accel_check_arg(c.accel) < 0)
		return exit_code();

	log_init(quiet || c.json);
	int rc = cmd->run(&c);
	fs_tmp_cleanup_all();
	if (qvsa_interrupted) { /* as a shell reports a command killed by the signal: 130, 143 */
		fprintf(stderr, "qvsa: interrupted\n");
		return 128 + qvsa_interrupted;
	}
	if (rc < 0)
		return exit_code();
	return 0;
}
