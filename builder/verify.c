#include "verify.h"

#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "seed.h"
#include "stub.h"
#include "target.h"
#include "vm.h"
#include "writer.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* How often the console and the domain state are polled. */
#define VERIFY_POLL_MS 100
/* Console lines attached to a failure message. */
#define VERIFY_ERROR_CONSOLE_LINES 20

/* Everything one verification holds; released by run_cleanup on every path. */
struct run {
	const char *artifact;       /* as given; borrowed */
	const struct target *t;     /* borrowed */
	const struct verify_opts *o; /* borrowed */
	const char *tname;          /* target name; borrowed from t */
	struct stat art_st;         /* the artifact before we started, to prove it unchanged */
	bool art_known;             /* art_st is filled */
	char *tmpdir;               /* fs_tmpdir_new; owned */
	char *overlay;              /* tmpdir/overlay.qcow2; owned */
	char *seed;                 /* tmpdir/seed.iso; owned */
	char *console_path;         /* tmpdir/console.log; owned */
	char *backing;              /* the overlay's backing file: the artifact (absolute), or the disk
				     * unpacked from it into tmpdir; owned */
	char *name;                 /* domain name; owned */
	struct stub *stub;          /* owned; NULL before start */
	struct vm *vm;              /* owned; NULL before connect */
	struct console *con;        /* owned */
	bool booted;                /* the domain was started (console lines are worth showing) */
	char reason[1024];          /* judged failure; "" while none */
};

/* "qvsa-verify-<pid>-<target>" with anything unusual in the target name replaced. */
static char *domain_name(const char *tname)
{
	char *n = xasprintf("%s%d-%s", DOMAIN_NAME_PREFIX, (int)getpid(), tname);
	for (char *p = n; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			*p = '_';
	return n;
}

/* Deterministic instance-id from the artifact's file name. */
static char *instance_id(const char *artifact)
{
	const char *base = strrchr(artifact, '/');
	char *id = xasprintf("qvsa-verify-%s", base ? base + 1 : artifact);
	for (char *p = id; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
		      *p == '-' || *p == '.'))
			*p = '-';
	return id;
}

/* The writer of the target's artifact whose extension the file has (aws
 * ships .vmdk and .raw); the first artifact's when none matches. */
static const char *artifact_writer(const struct target *t, const char *path)
{
	size_t plen = strlen(path);
	for (size_t i = 0; i < target_n_artifacts(t); i++) {
		const struct target_artifact *a = target_artifact_at(t, i);
		size_t elen = strlen(a->extension);
		if (plen > elen + 1 && path[plen - elen - 1] == '.' && strcmp(path + plen - elen, a->extension) == 0)
			return a->writer;
	}
	return target_writer(t);
}

static int prepare(struct run *r)
{
	/* The writer table is the one place that knows each format's QEMU name ("vhd" is "vpc"). */
	const char *writer = artifact_writer(r->t, r->artifact);
	const struct writer_ops *w = writer_find(writer);
	if (!w || !w->disk_format)
		return err_input("writer '%s' is unknown or names no disk format", writer ? writer : "(none)");
	const char *fmt = w->disk_format;
	if (!domain_bus_supported(target_verify_disk_bus(r->t)))
		return err_input("disk bus '%s' cannot be emulated", target_verify_disk_bus(r->t));

	/* The artifact is only ever opened read-only: qemu-img and QEMU use it as a backing file. */
	_cleanup_close_ int fd = open(r->artifact, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? err_input("no such artifact") : err_errno(errno, "opening the artifact");
	if (fstat(fd, &r->art_st) < 0)
		return err_errno(errno, "opening the artifact");
	if (!S_ISREG(r->art_st.st_mode))
		return err_input("not a regular file");
	r->art_known = true;
	char real[PATH_MAX];
	_cleanup_free_ char *abs = realpath(r->artifact, real) ? xstrdup(real) : fs_abspath(r->artifact);

	r->tmpdir = fs_tmpdir_new("verify");
	if (!r->tmpdir)
		return -1;
	/* A daemon's QEMU may run as another user: it must reach the files inside. */
	if (r->o->connect_uri && chmod(r->tmpdir, 0711) < 0)
		return err_errno(errno, "making '%s' traversable", r->tmpdir);
	/* A container (OVA, tar.gz) is not a disk: boot the disk it carries. */
	if (w->unpack) {
		if (w->unpack(abs, r->tmpdir, &r->backing) < 0)
			return -1;
	} else {
		r->backing = TAKE_PTR(abs);
	}
	/* libvirt cannot name some formats in XML (vhdx): give it a qcow2 copy. */
	if (!domain_format_known(fmt)) {
		_cleanup_free_ char *copy = xasprintf("%s/base.qcow2", r->tmpdir);
		const char *conv[] = {"qemu-img", "convert", "-q", "-f", fmt, "-O", "qcow2", r->backing, copy, NULL};
		if (proc_run(conv, NULL, NULL) < 0)
			return -1;
		free(r->backing);
		r->backing = TAKE_PTR(copy);
		fmt = "qcow2";
	}
	r->overlay = xasprintf("%s/overlay.qcow2", r->tmpdir);
	r->seed = xasprintf("%s/seed.iso", r->tmpdir);
	r->console_path = xasprintf("%s/console.log", r->tmpdir);
	const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", r->backing, r->overlay, NULL};
	if (proc_run(argv, NULL, NULL) < 0)
		return -1;

	struct stub_config sc = {
		.bind_addr = "127.0.0.1",
		.expected_code = r->o->expected_code ? r->o->expected_code : r->o->perscode,
	};
	if (stub_start(&sc, &r->stub) < 0)
		return -1;

	/* QEMU's user networking shows the host's loopback to the guest as 10.0.2.2. */
	_cleanup_free_ char *url = xasprintf("http://10.0.2.2:%u/", (unsigned)stub_port(r->stub));
	_cleanup_free_ char *iid = instance_id(r->artifact);
	struct seed_params sp = {
		.instance_id = iid,
		.hostname = "qvsa-verify",
		.perscode = r->o->perscode,
		.platform_url = url,
		.poweroff = true,
	};
	if (seed_write_iso(&sp, r->seed) < 0)
		return -1;

	_cleanup_free_ char *nvram = xasprintf("%s/VARS.fd", r->tmpdir);
	const char *fw = target_firmware(r->t);
	struct domain_spec ds = {
		.name = r->name,
		.accel = r->o->accel,
		.machine = target_verify_machine(r->t),
		.uefi = fw && strcmp(fw, "uefi") == 0,
		.nvram_path = nvram,
		.disk_path = r->overlay,
		.disk_format = "qcow2",
		.backing_path = r->backing,
		.backing_format = fmt,
		.disk_bus = target_verify_disk_bus(r->t),
		.disk_controller = target_verify_disk_controller(r->t),
		.seed_path = r->seed,
		.nic_model = target_verify_nic_model(r->t),
		.console_path = r->console_path,
		.no_relabel = r->o->connect_uri == NULL,
	};
	_cleanup_free_ char *xml = NULL;
	if (domain_xml(&ds, &xml) < 0 || check_interrupted() < 0)
		return -1;
	return vm_open(r->o->connect_uri, r->o->state_dir, r->name, xml, &r->vm);
}

/* Why the appliance failed, judged from what the console, the stub and the
 * domain showed; writes r->reason and returns -1, or returns 0. */
static int judge_boot(struct run *r, enum vm_end end, unsigned timeout_s)
{
	const char *status = console_status(r->con);
	struct stub_report rep;
	stub_report(r->stub, &rep);
	char st[64] = "", why[512] = "";

	if (end == VM_END_INTERRUPTED) {
		snprintf(r->reason, sizeof(r->reason), "interrupted by signal");
		return -1;
	}
	/* A rejection by the platform explains a failure status best. */
	const char *want_code = r->o->expected_code ? r->o->expected_code : r->o->perscode;
	if (rep.requests > 0 && !rep.accepted) {
		bool wrong_code = rep.code && strcmp(rep.code, want_code) != 0;
		snprintf(r->reason, sizeof(r->reason), "platform rejected the personalization %s: %s",
			 wrong_code ? "code" : "request", rep.reason ? rep.reason : "no reason given");
		return -1;
	}
	if (!status) {
		/* Say how far the boot got: no agent, or not even a bootloader line. */
		const char *hint = console_agent_started(r->con) ? ""
				   : !console_last_line(r->con)[0]
					   ? (strcmp(r->o->accel, "kvm") == 0
						      ? "; the serial console stayed empty (do KVM guests run here? try --accel tcg)"
						      : "; the serial console stayed empty")
					   : "; the agent never started (no QVSA-AGENT line)";
		if (end == VM_END_TIMEOUT)
			snprintf(r->reason, sizeof(r->reason), "no QVSA-STATUS line within %u s (agent missing or hung?)%s",
				 timeout_s, hint);
		else
			snprintf(r->reason, sizeof(r->reason), "the VM stopped (%s) without a QVSA-STATUS line%s",
				 vm_end_describe(end), hint);
		return -1;
	}
	console_json_string(status, "status", st, sizeof(st));
	if (strcmp(st, "success") != 0) {
		if (!console_json_string(status, "reason", why, sizeof(why)))
			snprintf(why, sizeof(why), "%s", status);
		snprintf(r->reason, sizeof(r->reason), "agent reported status '%s': %s", st[0] ? st : "?", why);
		return -1;
	}
	if (rep.requests == 0) {
		snprintf(r->reason, sizeof(r->reason), "agent reported success but the platform stub received no request");
		return -1;
	}
	if (!rep.code || strcmp(rep.code, want_code) != 0) {
		snprintf(r->reason, sizeof(r->reason), "platform received code '%s', expected '%s'",
			 rep.code ? rep.code : "", want_code);
		return -1;
	}
	if (!rep.version || strcmp(rep.version, r->o->expected_version) != 0) {
		snprintf(r->reason, sizeof(r->reason), "appliance sent bootstrap version '%s', expected '%s'",
			 rep.version ? rep.version : "(none)", r->o->expected_version);
		return -1;
	}
	if (end == VM_END_TIMEOUT) {
		snprintf(r->reason, sizeof(r->reason), "the appliance reported success but did not power off within %u s",
			 timeout_s);
		return -1;
	}
	return 0;
}

/* The served version of name in a NULL-terminated "NAME=VERSION" list, or NULL. */
static const char *served_version(const char *const *list, const char *name, size_t nlen)
{
	for (; list && *list; list++)
		if (strncmp(*list, name, nlen) == 0 && (*list)[nlen] == '=')
			return *list + nlen + 1;
	return NULL;
}

/* Compare the overlay's /etc/qvsa/components with what the stub served. */
static int judge_components(struct run *r, const char *text, char *joined, size_t jlen)
{
	const char *const *served = stub_components(r->stub);
	size_t n_file = 0, n_served = 0, used = 0;
	joined[0] = 0;
	for (const char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		const char *eq = memchr(line, '=', len);
		if (len > 0 && line[0] != '#' && eq) {
			size_t nlen = (size_t)(eq - line);
			int vlen = (int)(len - nlen - 1);
			const char *want = served_version(served, line, nlen);
			if (!want || strlen(want) != (size_t)vlen || strncmp(want, eq + 1, (size_t)vlen) != 0) {
				snprintf(r->reason, sizeof(r->reason),
					 "overlay /etc/qvsa/components has %.*s, platform served %.*s=%s", (int)len, line,
					 (int)nlen, line, want ? want : "(nothing)");
				return -1;
			}
			used += (size_t)snprintf(joined + used, used < jlen ? jlen - used : 0, "%s%.*s",
						 n_file ? "," : "", (int)len, line);
			n_file++;
		}
		line += len + (line[len] == '\n');
	}
	for (const char *const *s = served; s && *s; s++)
		n_served++;
	if (n_file != n_served) {
		snprintf(r->reason, sizeof(r->reason),
			 "overlay /etc/qvsa/components lists %zu components, platform served %zu", n_file, n_served);
		return -1;
	}
	return 0;
}

static int check_overlay(struct run *r, struct verify_result *ret)
{
	const char *paths[] = {"/etc/qvsa/components", "/etc/qvsa/personalized", NULL};
	_cleanup_strv_ char **got = NULL;
	if (image_read_files(r->overlay, "qcow2", paths, &got) < 0)
		return -1;
	if (!got[0]) {
		snprintf(r->reason, sizeof(r->reason), "the overlay has no /etc/qvsa/components after the boot");
		free(got[1]);
		return -1;
	}
	if (!got[1]) {
		snprintf(r->reason, sizeof(r->reason), "the overlay has no /etc/qvsa/personalized marker after the boot");
		return -1;
	}
	return judge_components(r, got[0], ret->components, sizeof(ret->components));
}

/* Follow the console until the domain stops, the budget runs out or a signal
 * arrives. Phases: boot (until the agent's start marker), personalize (until
 * its status line), then check (power-off and the overlay; left open for
 * run_verify, its start time in *ret_tcheck). */
static int follow(struct run *r, struct verify_result *ret, unsigned timeout_s, enum vm_end *ret_end,
		  double *ret_tcheck)
{
	enum { PH_BOOT, PH_PERSONALIZE, PH_CHECK } ph = PH_BOOT;
	double t0 = now_monotonic(), deadline = t0 + timeout_s;
	double tph = log_phase_begin("boot", "%s (%s, %s, %s)", r->name, r->o->accel, target_verify_machine(r->t),
				     ret->devices);
	if (vm_start(r->vm) < 0) {
		ret->t_boot = log_phase_end("boot", tph, false);
		return -1;
	}
	r->booted = true;
	enum vm_end end = VM_END_RUNNING;
	for (bool last = false;; last = end != VM_END_RUNNING) {
		if (console_follow(r->con, r->console_path) < 0)
			return -1;
		if (ph == PH_BOOT && console_agent_started(r->con)) {
			ret->t_boot = log_phase_end("boot", tph, true);
			tph = log_phase_begin("personalize", "agent started; waiting for its status line");
			ph = PH_PERSONALIZE;
		}
		if (ph != PH_CHECK && console_status(r->con)) {
			if (ph == PH_BOOT)
				ret->t_boot = log_phase_end("boot", tph, true);
			else
				ret->t_personalize = log_phase_end("personalize", tph, true);
			tph = log_phase_begin("check", "status line seen; waiting for power-off, then reading the overlay");
			ph = PH_CHECK;
		}
		if (last) /* the console was read once more after the VM ended */
			break;
		if (vm_poll(r->vm, &end) < 0)
			return -1;
		if (end == VM_END_RUNNING && qvsa_interrupted)
			end = VM_END_INTERRUPTED;
		else if (end == VM_END_RUNNING && now_monotonic() >= deadline)
			end = VM_END_TIMEOUT;
		if (end == VM_END_RUNNING) {
			log_phase_status("%3.0fs  %.70s", now_monotonic() - t0, console_last_line(r->con));
			nanosleep(&(struct timespec){.tv_nsec = VERIFY_POLL_MS * 1000000L}, NULL);
		}
	}
	log_debug("verify: VM ended (%s) %.1fs after its start", vm_end_describe(end), now_monotonic() - t0);
	if (ph == PH_BOOT)
		ret->t_boot = log_phase_end("boot", tph, false);
	else if (ph == PH_PERSONALIZE)
		ret->t_personalize = log_phase_end("personalize", tph, false);
	if (ph != PH_CHECK)
		tph = log_phase_begin("check", "judging the run");
	*ret_end = end;
	*ret_tcheck = tph;
	return 0;
}

static int run_verify(struct run *r, struct verify_result *ret)
{
	unsigned timeout_s = r->o->timeout_s ? r->o->timeout_s : VERIFY_DEFAULT_TIMEOUT_S;
	domain_devices(target_verify_disk_bus(r->t), target_verify_disk_controller(r->t),
		       target_verify_nic_model(r->t), ret->devices, sizeof(ret->devices));

	double t = log_phase_begin("prepare", "overlay, seed, platform stub and VM for target %s", r->tname);
	int rc = prepare(r);
	ret->t_prepare = log_phase_end("prepare", t, rc == 0);
	if (rc < 0)
		return -1;

	enum vm_end end = VM_END_RUNNING;
	double tc = 0;
	if (follow(r, ret, timeout_s, &end, &tc) < 0)
		return -1;
	/* The domain is gone (or killed now): the overlay is no longer written. */
	vm_close(r->vm);
	r->vm = NULL;
	rc = judge_boot(r, end, timeout_s);
	if (rc == 0) {
		double t_read = now_monotonic();
		rc = check_overlay(r, ret);
		log_debug("verify: reading the overlay took %.1fs", now_monotonic() - t_read);
	}
	if (rc == 0 && qvsa_interrupted) { /* during the overlay check: not a verdict */
		snprintf(r->reason, sizeof(r->reason), "interrupted by signal");
		rc = -1;
	}
	ret->t_check = log_phase_end("check", tc, rc == 0);
	return rc;
}

/* Keep the console log: always at <state_dir>/last-console-<target>.log, and
 * with keep_console also next to the artifact (reported in ret->console_log).
 * Best effort: a failed copy records nothing (verify_artifact records the
 * final error after cleanup). */
static void keep_console(struct run *r, struct verify_result *ret)
{
	if (!r->console_path || !fs_exists(r->console_path))
		return;
	if (fs_mkdir_p(r->o->state_dir, 0755) == 0) {
		_cleanup_free_ char *last = xasprintf("%s/last-console-%s.log", r->o->state_dir, r->tname);
		if (fs_copy_file(r->console_path, last, 0644) == 0)
			snprintf(ret->console_log, sizeof(ret->console_log), "%s", last);
	}
	if (r->o->keep_console) {
		_cleanup_free_ char *near = xasprintf("%s.console-%s.log", r->artifact, r->tname);
		if (fs_copy_file(r->console_path, near, 0644) == 0)
			snprintf(ret->console_log, sizeof(ret->console_log), "%s", near);
	}
	err_clear();
}

static void run_cleanup(struct run *r, struct verify_result *ret)
{
	vm_close(r->vm); /* destroys the domain, closes the connection, stops the event thread */
	r->vm = NULL;
	stub_stop(r->stub);
	r->stub = NULL;
	keep_console(r, ret);
	fs_tmpdir_release(r->tmpdir);
	r->tmpdir = NULL;
	free(r->overlay);
	free(r->seed);
	free(r->console_path);
	free(r->backing);
	free(r->name);
	console_free(r->con);
}

/* True if the artifact's size or modification time changed since prepare. */
static bool artifact_changed(const struct run *r)
{
	struct stat st;
	if (!r->art_known)
		return false;
	if (stat(r->artifact, &st) < 0)
		return true;
	return st.st_size != r->art_st.st_size || st.st_mtim.tv_sec != r->art_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != r->art_st.st_mtim.tv_nsec;
}

int verify_artifact(const char *artifact, const struct target *t, const struct verify_opts *o,
		    struct verify_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!o->state_dir || !o->perscode || !o->expected_version || !o->accel)
		return err_input("verify '%s': state_dir, perscode, expected_version and accel are required", artifact);
	struct run r = {
		.artifact = artifact,
		.t = t,
		.o = o,
		.tname = target_name(t),
		.con = console_new(),
	};
	r.name = domain_name(r.tname);
	err_clear();

	int rc = run_verify(&r, ret);
	if (rc < 0 && !r.reason[0])
		snprintf(r.reason, sizeof(r.reason), "%s", err_msg() ? err_msg() : "unknown error");
	enum err_kind kind = err_kind() == ERR_INPUT ? ERR_INPUT : ERR_FAIL;
	_cleanup_free_ char *tail =
		r.booted ? console_tail(r.con, VERIFY_ERROR_CONSOLE_LINES, "  | ") : xstrdup("");
	run_cleanup(&r, ret);
	if (artifact_changed(&r)) {
		rc = -1;
		snprintf(r.reason, sizeof(r.reason), "the artifact changed during verification (it must stay read-only)");
	}
	if (rc == 0) {
		err_clear();
		ret->passed = true;
		return 0;
	}
	snprintf(ret->reason, sizeof(ret->reason), "%s", r.reason);
	_cleanup_free_ char *msg = NULL;
	if (tail[0])
		msg = xasprintf("verify '%s' (target %s): %s\nlast console lines%s%s%s:\n%s", artifact, r.tname,
				r.reason, ret->console_log[0] ? " (full log: " : "", ret->console_log,
				ret->console_log[0] ? ")" : "", tail);
	else
		msg = xasprintf("verify '%s' (target %s): %s", artifact, r.tname, r.reason);
	return kind == ERR_INPUT ? err_input("%s", msg) : err_fail("%s", msg);
}
