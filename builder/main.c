/* qvsa command line: one table of subcommands; the only place that prints
 * errors and chooses exit codes (0 ok, 1 build/verification failed, 2 bad
 * usage or input). */
#include "accel.h"
#include "build.h"
#include "cli.h"
#include "cloudinit_dump.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "recipe.h"
#include "release_cmd.h"
#include "sign.h"
#include "recipe_check.h"
#include "stamp.h"
#include "target.h"
#include "relay.h"
#include "runs.h"
#include "writer.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>

#ifndef QVSA_DATADIR
#define QVSA_DATADIR "/usr/local/share/qvsa"
#endif
#define QVSA_VERSION_STRING "0.1.0"
/* Every option qvsa knows: its getopt name and the value help shows. */
enum opt_id {
	O_QUIET = 'q', O_JOBS = 'j', O_HELP = 'h',
	O_TARGET = 256, O_OUT, O_ACCEL, O_CONNECT, O_PERSCODE, O_ACCEPT, O_TIMEOUT, O_JSON, O_ALL,
	O_OVA_DIGEST, O_WRONG_CA, O_SIGN, O_KEY, O_OFFLINE, O_MANIFEST, O_PUBKEY, O_SIGNATURE, O_FORMAT, O_POOL, O_REFRESH,
};
struct opt_def {
	const char *name; /* long name */
	int id;           /* enum opt_id (a short option's letter) */
	const char *arg;  /* the value's name in help; NULL: a flag */
};
static const struct opt_def opt_defs[] = {
	{"target", O_TARGET, "T"},       {"all", O_ALL, NULL},
	{"out", O_OUT, "DIR"},           {"jobs", O_JOBS, "N"},
	{"accel", O_ACCEL, "A"},         {"ova-digest", O_OVA_DIGEST, "D"},
	{"sign", O_SIGN, "KEY"},         {"key", O_KEY, "KEY"},
	{"offline", O_OFFLINE, NULL},    {"manifest", O_MANIFEST, "FILE"},
	{"pubkey", O_PUBKEY, "KEY.pub"}, {"signature", O_SIGNATURE, "FILE"},
	{"connect", O_CONNECT, "URI"},   {"perscode", O_PERSCODE, "CODE"},
	{"accept-code", O_ACCEPT, "C"},  {"timeout", O_TIMEOUT, "S"},
	{"wrong-ca", O_WRONG_CA, NULL},  {"format", O_FORMAT, "F"},
	{"json", O_JSON, NULL},          {"quiet", O_QUIET, NULL},
	{"help", O_HELP, NULL},          {"pool", O_POOL, "NAME"},
	{"refresh", O_REFRESH, NULL},
};

/* One option a command takes and what it means there. */
struct cmd_opt {
	int id;           /* enum opt_id; 0 ends a list */
	const char *help; /* for this command */
};

/* One subcommand: a row of the one command table (as virsh's). */
struct command {
	const char *name;              /* as typed */
	int (*run)(struct cli *c);     /* handler; returns 0 or -1 with an error recorded */
	const char *args;              /* positional arguments' synopsis */
	const char *help;              /* one line */
	int min_args, max_args;        /* positional argument count */
	const struct cmd_opt *opts;    /* the options it takes ({0}-ended); -q and --help go everywhere */
};

static int cmd_targets(struct cli *c)
{
	_cleanup_free_ char *dd = cli_datadir_find();
	_cleanup_strv_ char **names = NULL;
	if (target_list(dd, &names) < 0)
		return -1;
	_cleanup_json_ json_object *list = c->json ? json_object_new_array() : NULL;
	for (char **n = names; *n; n++) {
		struct target *t = NULL;
		if (target_find(dd, *n, &t) < 0)
			return -1;
		if (c->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(*n));
			json_object_object_add(o, "writer", json_object_new_string(target_writer(t)));
			json_object_object_add(o, "firmware", json_object_new_string(target_firmware(t)));
			json_object_array_add(list, o);
		} else {
			printf("%-12s %-6s %-5s %s\n", *n, target_writer(t), target_firmware(t), target_description(t));
		}
		target_free(t);
	}
	if (list)
		json_print_put(stdout, TAKE_PTR(list));
	return 0;
}

static int cmd_lint(struct cli *c)
{
	struct recipe *r = NULL;
	if (recipe_load(c->args[0], &r) < 0)
		return -1;
	_cleanup_free_ char *dd = cli_datadir_find();
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
	_cleanup_free_ char *dd = cli_datadir_find();
	_cleanup_free_ char *cache = fs_cache_dir();
	if (recipe_check(r, dd, cache) < 0) {
		recipe_free(r);
		return -1;
	}
	c->targets[c->n_targets] = NULL;
	struct build_opts o = {.datadir = dd, .cache_dir = cache, .out_dir = c->out_dir, .targets = c->targets,
			       .accel = c->accel, .jobs = c->jobs, .ova_digest = c->ova_digest,
			       .refresh = c->refresh};
	struct build_result res;
	/* The key is read before the build: a wrong path fails in a second, not after it. */
	struct sign_key *key = NULL;
	if (c->sign_key && sign_key_load_private(c->sign_key, &key) < 0) {
		recipe_free(r);
		return -1;
	}
	o.sign_key = key;
	double t0 = now_monotonic();
	int rc = build_run(r, &o, &res);
	const char *sig = res.signature;
	sign_key_free(key);
	if (rc == 0) {
		if (c->json) {
			json_object *doc = json_object_new_object(), *secs = json_object_new_object(),
				    *arts = json_object_new_array();
			json_object_object_add(doc, "out_dir", json_new_str_or_null(res.out_dir));
			json_object_object_add(doc, "manifest", json_new_str_or_null(res.manifest));
			json_object_object_add(doc, "signature", json_new_str_or_null(sig));
			json_object_object_add(doc, "build_id", json_object_new_string(res.build_id));
			json_object_object_add(secs, "prepare", json_new_seconds(res.t_prepare));
			json_object_object_add(secs, "assemble", json_new_seconds(res.t_assemble));
			json_object_object_add(secs, "write", json_new_seconds(res.t_write));
			json_object_object_add(doc, "seconds", secs);
			for (unsigned i = 0; i < res.n_artifacts; i++) {
				json_object *a = json_object_new_object();
				json_object_object_add(a, "target", json_new_str_or_null(res.artifacts[i].target));
				json_object_object_add(a, "path", json_new_str_or_null(res.artifacts[i].path));
				json_object_object_add(a, "size", json_object_new_uint64(res.artifacts[i].size));
				json_object_object_add(a, "sha256", json_object_new_string(res.artifacts[i].sha256));
				json_object_array_add(arts, a);
			}
			json_object_object_add(doc, "artifacts", arts);
			json_print_put(stdout, doc);
		} else {
			printf("built %s (%s) in %.1fs: prepare %.1fs, assemble %.1fs, write %.1fs\n", recipe_version(r),
			       res.build_id, now_monotonic() - t0, res.t_prepare, res.t_assemble, res.t_write);
			for (unsigned i = 0; i < res.n_artifacts; i++)
				printf("  %-10s %s (%llu bytes)\n", res.artifacts[i].target, res.artifacts[i].path,
				       (unsigned long long)res.artifacts[i].size);
			printf("  manifest   %s\n", res.manifest);
			if (sig)
				printf("  signature  %s\n", sig);
		}
	}
	build_result_free(&res);
	recipe_free(r);
	return rc;
}

static int cmd_keygen(struct cli *c) { return release_cmd_keygen(c->args[0]); }

static int cmd_sign(struct cli *c)
{
	if (!c->key)
		return err_input("sign: --key KEY is required (the private key from 'qvsa keygen')");
	return release_cmd_sign(c->args[0], c->key, c->signature);
}

static int cmd_manifest(struct cli *c)
{
	if (strcmp(c->args[0], "merge") != 0)
		return err_input("manifest: unknown subcommand '%s' (known: merge)", c->args[0]);
	if (c->nargs < 3)
		return err_input("manifest merge: expected OUT and at least one IN");
	return release_cmd_merge(c->args[1], c->args + 2, c->nargs - 2, c->json);
}

static int cmd_matrix(struct cli *c)
{
	_cleanup_free_ char *dd = cli_datadir_find();
	return release_cmd_matrix(c->args[0], dd, c->format);
}

static int cmd_help(struct cli *c);

/* Options some commands share, with one wording. */
#define OPT_TARGET(what) {O_TARGET, "a target from 'qvsa targets' (repeatable; default: " what ")"}
#define OPT_ACCEL {O_ACCEL, "auto (probe KVM, fall back to TCG), kvm or tcg (default: auto)"}
#define OPT_JSON {O_JSON, "machine-readable output on stdout"}

static const struct cmd_opt build_opts_doc[] = {
	OPT_TARGET("the recipe's"),
	{O_OUT, "artifacts folder (default: out); artifacts land in DIR/qVSA-X.Y/"},
	{O_JOBS, "write artifacts of N disks at once (default 1)"},
	{O_OVA_DIGEST, "OVA manifest digest, sha256 (default) or sha1 for older vSphere"},
	{O_SIGN, "sign manifest.json with the Ed25519 private key KEY ('qvsa keygen'): manifest.json.sig"},
	{O_REFRESH, "remake the base's cached root tree (kind debian: mmdebstrap again) instead of reusing it"},
	OPT_ACCEL, OPT_JSON, {0, NULL},
};
static const struct cmd_opt verify_opts_doc[] = {
	OPT_TARGET("the recipe's; for one artifact: its manifest entry, else its stamp"),
	{O_ALL, "with a recipe: every target qvsa knows (their artifacts must be built)"},
	{O_OUT, "with a recipe: the artifacts folder (default: out)"},
	{O_MANIFEST, "check ARTIFACT (any file name) against this signed release manifest first"},
	{O_PUBKEY, "the publisher's public key (KEY.pub from 'qvsa keygen'); required with --manifest"},
	{O_SIGNATURE, "the manifest's detached signature (default: FILE.sig beside the manifest)"},
	{O_OFFLINE, "with --manifest: check signature, checksum and stamp only; boot nothing"},
	{O_JOBS, "boot N artifacts at once (default: the number of CPUs)"},
	{O_CONNECT, "libvirt URI (default: embedded QEMU driver, no daemon)"},
	{O_POOL, "with --connect: the storage pool disks and media are uploaded to (default: qvsa-verify, made and removed)"},
	{O_PERSCODE, "personalization code handed over through the platform's channel (default " DEFAULT_TEST_CODE ")"},
	{O_ACCEPT, "code the platform stub accepts (default " DEFAULT_TEST_CODE ")"},
	{O_TIMEOUT, "seconds from boot to power-off (default 180)"},
	{O_WRONG_CA, "hand the guest a CA that did not sign the platform (must then fail)"},
	OPT_ACCEL, OPT_JSON, {0, NULL},
};
static const struct cmd_opt inspect_opts_doc[] = {OPT_ACCEL, OPT_JSON, {0, NULL}};
static const struct cmd_opt targets_opts_doc[] = {OPT_JSON, {0, NULL}};
static const struct cmd_opt sign_opts_doc[] = {
	{O_KEY, "the Ed25519 private key ('qvsa keygen'); required"},
	{O_SIGNATURE, "where the signature goes (default: MANIFEST.sig)"},
	{0, NULL},
};
static const struct cmd_opt manifest_opts_doc[] = {OPT_JSON, {0, NULL}};
static const struct cmd_opt matrix_opts_doc[] = {
	{O_FORMAT, "json (default: a list of jobs), github (one line for strategy.matrix via fromJSON) or gitlab "
		   "(parallel:matrix YAML)"},
	{0, NULL},
};
static const struct cmd_opt no_opts_doc[] = {{0, NULL}};

static const struct command commands[] = {
	{"build", cmd_build, "RECIPE", "assemble the disk, stamp it and write one artifact per target", 1, 1,
	 build_opts_doc},
	{"verify", cmd_verify, "RECIPE|ARTIFACT",
	 "check an artifact against a signed manifest, boot artifacts under libvirt and prove first-boot "
	 "personalization",
	 1, 1, verify_opts_doc},
	{"inspect", cmd_inspect, "ARTIFACT", "print the OS and the stamp read from inside an image, and its sysprep checks", 1, 1,
	 inspect_opts_doc},
	{"lint", cmd_lint, "RECIPE", "validate a recipe (and its targets) only", 1, 1, no_opts_doc},
	{"targets", cmd_targets, "", "list the targets qvsa can write", 0, 0, targets_opts_doc},
	{"keygen", cmd_keygen, "KEY", "make an Ed25519 signing key: KEY (private, mode 0600) and KEY.pub", 1, 1,
	 no_opts_doc},
	{"sign", cmd_sign, "MANIFEST", "sign a release manifest: a detached signature MANIFEST.sig", 1, 1,
	 sign_opts_doc},
	{"manifest", cmd_manifest, "merge OUT IN...",
	 "merge per-target manifests of one build (one CI job per target) into OUT, with SHA256SUMS beside it", 3,
	 256, manifest_opts_doc},
	{"matrix", cmd_matrix, "RECIPE", "print the per-target CI job matrix (docs/ci.md)", 1, 1, matrix_opts_doc},
	{"help", cmd_help, "[COMMAND]", "list the commands, or every option of one", 0, 1, no_opts_doc},
};

static const struct opt_def *opt_def_find(int id)
{
	for (size_t i = 0; i < ELEMENTSOF(opt_defs); i++)
		if (opt_defs[i].id == id)
			return &opt_defs[i];
	return NULL;
}

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static bool command_takes(const struct command *cmd, int id)
{
	if (id == O_QUIET || id == O_HELP)
		return true;
	for (const struct cmd_opt *o = cmd->opts; o->id; o++)
		if (o->id == id)
			return true;
	return false;
}

static void usage_line(FILE *f, const struct command *cmd)
{
	fprintf(f, "usage: qvsa %s%s%s%s\n", cmd->name, cmd->args[0] ? " " : "", cmd->args,
		cmd->opts[0].id ? " [OPTIONS]" : "");
}

/* Every option of one command (`qvsa help CMD`, `qvsa CMD --help`). */
static void command_help(FILE *f, const struct command *cmd)
{
	usage_line(f, cmd);
	fprintf(f, "  %s\n\noptions:\n", cmd->help);
	const struct cmd_opt common[] = {{O_QUIET, "no progress lines"}, {O_HELP, "this help"}, {0, NULL}};
	for (const struct cmd_opt *list = cmd->opts; list; list = list == cmd->opts ? common : NULL)
		for (const struct cmd_opt *o = list; o->id; o++) {
			const struct opt_def *d = opt_def_find(o->id);
			char left[40];
			if (o->id < 256)
				snprintf(left, sizeof(left), "-%c, --%s%s%s", o->id, d->name, d->arg ? " " : "",
					 d->arg ? d->arg : "");
			else
				snprintf(left, sizeof(left), "    --%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
			fprintf(f, "  %-24s %s\n", left, o->help);
		}
	fprintf(f, "\nexit status: 0 ok, 1 failed (a build, a check or a boot), 2 bad usage or bad input\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: qvsa COMMAND [ARGUMENTS] [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'qvsa help COMMAND' or 'qvsa COMMAND --help' lists every option of a command.\n"
		   "qvsa --version prints the version.\n\n"
		   "exit status: 0 ok, 1 build or verification failed, 2 bad usage or bad input\n"
		   "See docs/ (or %s) for recipes, targets, verification and releases.\n",
		QVSA_DATADIR);
}

static int cmd_help(struct cli *c)
{
	if (c->nargs == 0) {
		usage(stdout);
		return 0;
	}
	const struct command *cmd = command_find(c->args[0]);
	if (!cmd)
		return err_input("help: unknown command '%s'", c->args[0]);
	command_help(stdout, cmd);
	return 0;
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
	/* A run's guardian (runs.h): undoes the run's registry if the run dies. */
	if (strcmp(argv[1], "__guard") == 0)
		return argc == 3 && runs_guard_main(STDIN_FILENO, argv[2]) >= 0 ? 0 : 2;
	/* What qvsa hands cloud-init, written out for cloud-init's validator
	 * (cloudinit_dump.h, tests/integration/cloudinit-schema.sh). */
	if (strcmp(argv[1], "__seed") == 0 || strcmp(argv[1], "__datasource") == 0) {
		bool seed = argv[1][2] == 's';
		if (argc != (seed ? 4 : 3))
			return 2;
		_cleanup_free_ char *dd = seed ? NULL : cli_datadir_find();
		int rc = seed ? cloudinit_dump_seed(argv[2], argv[3]) : cloudinit_dump_datasource(dd, argv[2]);
		return rc < 0 ? exit_code() : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("qvsa %s\n", QVSA_VERSION_STRING);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	const struct command *cmd = command_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "qvsa: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}

	struct cli c = {.out_dir = "out", .accel = "auto"};
	bool quiet = false;
	/* getopt's table, from the one option table. */
	struct option opts[ELEMENTSOF(opt_defs) + 1];
	for (size_t i = 0; i < ELEMENTSOF(opt_defs); i++)
		opts[i] = (struct option){opt_defs[i].name, opt_defs[i].arg ? required_argument : no_argument, NULL,
					  opt_defs[i].id};
	opts[ELEMENTSOF(opt_defs)] = (struct option){NULL, 0, NULL, 0};
	optind = 2;
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, "qhj:", opts, NULL)) != -1) {
		if (o != '?' && o != ':' && !command_takes(cmd, o)) {
			fprintf(stderr, "qvsa %s: option '%s' does not apply to this command\n", cmd->name, argv[optind - 1]);
			usage_line(stderr, cmd);
			return 2;
		}
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
		case O_POOL: c.pool = optarg; break;
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
		case O_SIGN: c.sign_key = optarg; break;
		case O_REFRESH: c.refresh = true; break;
		case O_KEY: c.key = optarg; break;
		case O_OFFLINE: c.offline = true; break;
		case O_MANIFEST: c.manifest = optarg; break;
		case O_PUBKEY: c.pubkey = optarg; break;
		case O_SIGNATURE: c.signature = optarg; break;
		case O_FORMAT: c.format = optarg; break;
		case O_QUIET: quiet = true; break;
		case O_JOBS: {
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
			command_help(stdout, cmd);
			return 0;
		default:
			fprintf(stderr, "qvsa %s: unknown or incomplete option '%s'\n", cmd->name, argv[optind - 1]);
			usage_line(stderr, cmd);
			fprintf(stderr, "('qvsa help %s' lists its options)\n", cmd->name);
			return 2;
		}
	}
	c.targets[c.n_targets] = NULL;
	c.args = argv + optind;
	c.nargs = argc - optind;
	if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
		int want = c.nargs < cmd->min_args ? cmd->min_args : cmd->max_args;
		fprintf(stderr, "qvsa %s: expected %s%d argument%s\n", cmd->name,
			cmd->min_args == cmd->max_args ? "" : c.nargs < cmd->min_args ? "at least " : "at most ", want,
			want == 1 ? "" : "s");
		usage_line(stderr, cmd);
		return 2;
	}
	if (accel_check_arg(c.accel) < 0)
		return exit_code();

	log_init(quiet || c.json);
	runs_enable();
	int rc = cmd->run(&c);
	fs_tmp_cleanup_all();
	runs_finish(); /* nothing of this run is left to clean: its registry file goes */
	if (qvsa_interrupted) { /* as a shell reports a command killed by the signal: 130, 143 */
		fprintf(stderr, "qvsa: interrupted\n");
		return 128 + qvsa_interrupted;
	}
	if (rc < 0)
		return exit_code();
	return 0;
}
