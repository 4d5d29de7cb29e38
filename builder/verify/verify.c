#include "verify.h"
#include "verify_run.h"

#include "audit.h"
#include "base.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "log.h"
#include "platform.h"
#include "proc.h"
#include "relay.h"
#include "remote.h"
#include "runs.h"
#include "seed.h"
#include "stamp.h"
#include "stub.h"
#include "target.h"
#include "tlsca.h"
#include "vm.h"
#include "writer.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Console lines attached to a failure message. */
#define VERIFY_ERROR_CONSOLE_LINES 20

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


const char *verify_handed_ca(const struct run *r)
{
	return r->foreign_ca ? tlsca_cert_pem(r->foreign_ca) : tlsca_cert_pem(r->ca);
}

/* Everything on disk before the driver audit: overlay (of the disk unpacked
 * or converted when need be), the platform (HTTPS stub, its media and
 * metadata services) and domain XML. The libvirt connection is opened once,
 * for every boot (verify_boot.c). */
static int prepare(struct run *r)
{
	r->pops = platform_find(target_verify_platform(r->t));
	if (!r->pops)
		return err_input("target '%s' names verify platform '%s', which qvsa cannot play (known: %s)", r->tname,
				 target_verify_platform(r->t) ? target_verify_platform(r->t) : "(none)", platform_names());
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
	r->fmt = fmt;
	r->overlay = xasprintf("%s/overlay.qcow2", r->tmpdir);
	r->console_path = xasprintf("%s/console.log", r->tmpdir);
	const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", r->backing, r->overlay, NULL};
	if (proc_run(argv, NULL, NULL) < 0)
		return -1;

	/* The platform over HTTPS: a CA made for this run signs the stub's
	 * certificate for the address the guest reaches it at. */
	const char *host = platform_host_addr(r->pops);
	_cleanup_free_ char *san = xasprintf("IP:%s", host);
	const char *sans[] = {san, NULL};
	_cleanup_free_ char *cert = NULL, *key = NULL;
	if (tlsca_new("qvsa verify CA", &r->ca) < 0 || tlsca_issue(r->ca, sans, &cert, &key) < 0)
		return -1;
	struct stub_config sc = {
		.bind_addr = "127.0.0.1",
		.expected_code = r->o->expected_code ? r->o->expected_code : r->o->perscode,
		.cert_pem = cert,
		.key_pem = key,
	};
	int src = stub_start(&sc, &r->stub);
	explicit_bzero(key, strlen(key));
	if (src < 0)
		return -1;
	/* QEMU's user networking shows the host's loopback to the guest at the network's host address. */
	r->platform_url = xasprintf("https://%s:%u/", host, (unsigned)stub_port(r->stub));
	if (r->o->wrong_ca && tlsca_new("qvsa verify foreign CA", &r->foreign_ca) < 0)
		return -1;

	_cleanup_free_ char *iid = instance_id(r->artifact);
	struct seed_params sp = {
		.instance_id = iid,
		.hostname = "qvsa-verify",
		.perscode = r->o->perscode,
		.platform_url = r->platform_url,
		.poweroff = true,
		.ca_pem = verify_handed_ca(r),
	};
	_cleanup_free_ char *user_data = NULL;
	if (seed_user_data(&sp, &user_data) < 0)
		return -1;
	struct platform_env env = {
		.tmpdir = r->tmpdir,
		.instance_id = iid,
		.hostname = "qvsa-verify",
		.user_data = user_data,
		.perscode = r->o->perscode,
		.platform_url = r->platform_url,
	};
	int prc = platform_start(r->pops, &env, &r->plat);
	explicit_bzero(user_data, strlen(user_data));
	if (prc < 0)
		return -1;
	/* A remote libvirt's console is a stream (vm_start_console), not a socket here. */
	if (r->pops->console && !r->remote)
		r->console_sock = xasprintf("%s/console.sock", r->tmpdir);

	/* Each metadata address the guest uses is forwarded to its emulator through `qvsa __relay`. */
	const struct platform_fwd *pf = NULL;
	size_t nf = platform_fwds(r->plat, &pf);
	if (nf > VERIFY_MAX_FWDS)
		return err_fail("platform '%s': %zu forwarded services, at most %d", r->pops->name, nf, VERIFY_MAX_FWDS);
	for (size_t i = 0; i < nf; i++) {
		r->fwd_cmds[i] = relay_command(pf[i].local_port);
		if (!r->fwd_cmds[i])
			return -1;
		r->fwds[i] = (struct domain_fwd){.addr = pf[i].addr, .port = pf[i].port, .command = r->fwd_cmds[i]};
		r->n_fwds = i + 1;
	}
	/* Made here for the local files (so a bad spec fails before any boot); a remote run remakes it
	 * once its volumes exist (verify_remote_stage). */
	if (verify_make_domain(r, NULL) < 0)
		return -1;
	return check_interrupted();
}

/* The run's own SMBIOS UUID: the platform's (EC2's starts with "ec2", which
 * is what identifies it) with its last 12 hex digits taken from the domain
 * name. libvirt runs one domain per UUID, so boots running at once need
 * their own. */
static void run_uuid(const char *platform_uuid, const char *name, char out[37])
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(out, 37, "%.24s%012llx", platform_uuid, (unsigned long long)(h & 0xffffffffffffULL));
}

int verify_make_domain(struct run *r, const struct run_remote *rr)
{
	const struct platform_smbios *id = &r->pops->smbios;
	char uuid[37] = "";
	if (id->uuid && strlen(id->uuid) == 36)
		run_uuid(id->uuid, r->name, uuid);
	struct domain_smbios smbios = {
		.manufacturer = id->manufacturer,
		.product = id->product,
		.uuid = uuid[0] ? uuid : id->uuid,
		.serial = id->serial,
		.asset_tag = id->asset_tag,
		.board_manufacturer = id->board_manufacturer,
	};
	bool any_id = id->manufacturer || id->product || id->uuid || id->serial || id->asset_tag ||
		      id->board_manufacturer;
	_cleanup_free_ char *nvram = rr ? xstrdup(rr->nvram_path) : xasprintf("%s/VARS.fd", r->tmpdir);
	const char *fw = target_firmware(r->t);
	struct domain_spec ds = {
		.name = r->name,
		.accel = r->o->accel,
		/* Before the audit knows the base: the defaults (the XML is remade once it does). */
		.memory_mib = r->base ? r->base->verify_memory_mib : 0,
		.vcpus = r->base ? r->base->verify_vcpus : 0,
		.machine = target_verify_machine(r->t),
		.uefi = fw && strcmp(fw, "uefi") == 0,
		.nvram_path = nvram,
		.disk_path = rr ? rr->disk_path : r->overlay,
		.disk_format = "qcow2",
		/* On a remote libvirt the overlay volume's header names its backing volume. */
		.backing_path = rr ? NULL : r->backing,
		.backing_format = r->fmt,
		.disk_bus = target_verify_disk_bus(r->t),
		.disk_controller = target_verify_disk_controller(r->t),
		.seed_path = rr ? rr->seed_path : platform_media(r->plat),
		.seed_cdrom = r->pops->media_cdrom,
		.smbios = any_id ? &smbios : NULL,
		.net_prefix = r->pops->net_prefix ? platform_net_prefix(r->pops) : NULL,
		.net_host = r->pops->net_prefix ? platform_host_addr(r->pops) : NULL,
		.fwds = r->fwds,
		.n_fwds = r->n_fwds,
		.console_socket = r->console_sock,
		.nic_model = target_verify_nic_model(r->t),
		.console_path = r->console_path,
		/* The embedded driver of an ordinary user has no DAC driver to turn off. */
		.no_relabel = r->o->connect_uri == NULL && geteuid() == 0,
		.pool = rr ? rr->pool : NULL,
		.disk_volume = rr ? rr->disk_vol : NULL,
		.seed_volume = rr ? rr->seed_vol : NULL,
		.console_stream = r->remote,
	};
	free(r->xml);
	r->xml = NULL;
	return domain_xml(&ds, &r->xml);
}

/* The runs still in the race (no failure yet), as pointers into runs; caller frees. */
static size_t runs_alive(struct run *runs, size_t n, struct run ***ret)
{
	struct run **alive = calloc(n ? n : 1, sizeof(*alive));
	if (!alive)
		abort();
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!runs[i].failed)
			alive[m++] = &runs[i];
	*ret = alive;
	return m;
}

/* One of the two reads over every run still alive (direct where exact, the rest in one libguestfs launch). */
struct read_stage {
	const char *phase;        /* progress line tag */
	const char *what;         /* what is read, for the progress line */
	/* The run's paths (NULL-terminated, in the order judge expects them):
	 * each run has its own, as runs of different bases read different files. */
	const char *const *(*paths)(const struct run *r);
	int (*judge)(struct run *r, const struct image_content *c); /* run_fail or 0 */
	bool audit;               /* the launch's time counts in t_audit (else in t_check) */
};

static const char *const *audit_paths(const struct run *r) { return r->image_paths; }
static const char *const *check_paths(const struct run *r) { return r->overlay_paths; }
static const struct read_stage audit_stage = {"audit", "initramfs modules and stamp", audit_paths, judge_image, true};
static const struct read_stage check_stage = {"check", "personalization in the overlays", check_paths, judge_overlay,
					      false};

/* Read the stage's paths from the overlay of every run still alive (each
 * directly where image_read_direct is exact, the others together in ONE
 * libguestfs launch) and judge each run. Each run's share is the stage's
 * time split evenly. */
static void read_stage_run(const struct read_stage *st, struct run *runs, size_t n)
{
	_cleanup_free_ struct run **alive = NULL;
	size_t m = runs_alive(runs, n, &alive);
	if (m == 0 || qvsa_interrupted)
		return;
	_cleanup_free_ struct image_disk *disks = calloc(m, sizeof(*disks));
	if (!disks)
		abort();
	for (size_t k = 0; k < m; k++)
		disks[k] = (struct image_disk){.path = alive[k]->overlay, .format = "qcow2", .name = alive[k]->artifact,
					       .paths = st->paths(alive[k])};
	double t = log_phase_begin(st->phase, "%s: %zu image%s", st->what, m, m == 1 ? "" : "s");
	struct image_content *c = NULL;
	size_t launched = 0;
	int rc = image_read_auto(disks, m, NULL, &c, &launched);
	if (rc == 0 && launched > 0)
		log_phase_begin(st->phase, "%zu of %zu image%s read through one libguestfs launch (see QVSA_DEBUG=1 for why)",
				launched, m, m == 1 ? "" : "s");
	size_t nfail = 0;
	if (rc < 0) {
		/* Nothing was read: every run in this launch fails with the one error. */
		_cleanup_free_ char *msg = xstrdup(err_msg() ? err_msg() : "unknown error");
		enum err_kind kind = err_kind() == ERR_INPUT ? ERR_INPUT : ERR_FAIL;
		err_clear();
		for (size_t k = 0; k < m; k++) {
			run_fail(alive[k], "%s", qvsa_interrupted ? "interrupted by signal" : msg);
			alive[k]->kind = kind;
		}
		nfail = m;
	} else {
		for (size_t k = 0; k < m; k++) {
			if (st->judge(alive[k], &c[k]) == 0 && qvsa_interrupted)
				run_fail(alive[k], "interrupted by signal"); /* not a verdict */
			if (alive[k]->failed) {
				nfail++;
				log_phase_begin(st->phase, "%s: %s", alive[k]->tname, alive[k]->reason);
			}
		}
		image_contents_free(c, m);
	}
	double dt = log_phase_end(st->phase, t, nfail == 0);
	for (size_t k = 0; k < m; k++)
		*(st->audit ? &alive[k]->res->t_audit : &alive[k]->res->t_check) += dt / (double)m;
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
	vm_close(r->vm); /* destroys the domain (verify_boot_all closes it already; kept for safety) */
	r->vm = NULL;
	stub_stop(r->stub);
	r->stub = NULL;
	platform_stop(r->plat);
	r->plat = NULL;
	keep_console(r, ret);
	fs_tmpdir_release(r->tmpdir);
	r->tmpdir = NULL;
	free(r->overlay);
	free(r->platform_url);
	free(r->console_sock);
	for (size_t i = 0; i < r->n_fwds; i++)
		free(r->fwd_cmds[i]);
	tlsca_free(r->ca);
	tlsca_free(r->foreign_ca);
	free(r->console_path);
	free(r->backing);
	free(r->name);
	free(r->xml);
	free(r->stamp);
	free(r->image_paths);
	free(r->overlay_paths);
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

/* Release the run and write its verdict into its result (message included). */
static void finish(struct run *r)
{
	struct verify_result *ret = r->res;
	if (!r->failed && !r->checked)
		run_fail(r, "interrupted by signal"); /* a stage stopped before reaching it */
	_cleanup_free_ char *tail = r->booted ? console_tail(r->con, VERIFY_ERROR_CONSOLE_LINES, "  | ") : xstrdup("");
	run_cleanup(r, ret);
	if (artifact_changed(r)) {
		r->failed = false; /* this verdict overrides any other */
		run_fail(r, "the artifact changed during verification (it must stay read-only)");
	}
	if (!r->failed) {
		ret->passed = true;
		return;
	}
	snprintf(ret->reason, sizeof(ret->reason), "%s", r->reason);
	ret->error_kind = r->kind;
	if (tail[0])
		ret->message = xasprintf("verify '%s' (target %s): %s\nlast console lines%s%s%s:\n%s", r->artifact,
					 r->tname, r->reason, ret->console_log[0] ? " (full log: " : "", ret->console_log,
					 ret->console_log[0] ? ")" : "", tail);
	else
		ret->message = xasprintf("verify '%s' (target %s): %s", r->artifact, r->tname, r->reason);
}

/* Before anything of this run exists: what killed runs left (their QEMUs,
 * embedded domains, folders with seed media) goes, in one line; then the
 * guardian watches this run, so that its QEMUs die with it (runs.h). */
static int verify_guard(void)
{
	_cleanup_free_ char *removed = NULL;
	runs_cleanup_stale(&removed);
	if (removed && removed[0])
		log_notice("removed what killed runs left behind: %s", removed);
	return runs_guard_start();
}

void verify_result_clear(struct verify_result *r)
{
	if (!r)
		return;
	free(r->message);
	r->message = NULL;
}

int verify_artifacts(struct verify_job *jobs, size_t n, const struct verify_opts *o)
{
	for (size_t i = 0; i < n; i++)
		memset(&jobs[i].result, 0, sizeof(jobs[i].result));
	for (size_t i = 0; i < n; i++)
		if (!o->state_dir || !o->perscode || !o->accel || !jobs[i].target ||
		    !(jobs[i].expected_version || o->expected_version))
			return err_input("verify '%s': target, state_dir, perscode, expected version and accel are required",
					 jobs[i].artifact);
	/* The guest reaches the stub and the platform's emulators on the libvirt host's loopback. */
	if (o->connect_uri && remote_uri_is_other_host(o->connect_uri))
		return err_input("--connect '%s' names a libvirt on another host, which verify cannot use: the guest "
				 "reaches the HTTPS platform stub and the metadata services through QEMU's user network "
				 "on the libvirt host's loopback (its guestfwd runs 'qvsa __relay PORT' there), and they "
				 "run on this machine. Run qvsa verify on the libvirt host (qemu:///system), see "
				 "docs/verify.md \"Remote libvirt\"",
				 o->connect_uri);
	if (verify_guard() < 0)
		return -1;
	struct run *runs = calloc(n ? n : 1, sizeof(*runs));
	if (!runs)
		abort();
	err_clear();
	for (size_t i = 0; i < n; i++) {
		struct run *r = &runs[i];
		*r = (struct run){
			.artifact = jobs[i].artifact,
			.t = jobs[i].target,
			.o = o,
			.tname = target_name(jobs[i].target),
			.version = jobs[i].expected_version ? jobs[i].expected_version : o->expected_version,
			.res = &jobs[i].result,
			.con = console_new(),
			.remote = o->connect_uri && remote_uri_uses_pool(o->connect_uri),
			.image_paths = judge_image_paths(),
		};
		r->name = domain_name(r->tname);
		/* A target with two artifacts (aws: .vmdk and .raw) may boot both at once: names must differ. */
		for (size_t k = 0; k < i; k++)
			if (strcmp(runs[k].name, r->name) == 0) {
				char *u = xasprintf("%s-%zu", r->name, i + 1);
				free(r->name);
				r->name = u;
				break;
			}
		domain_devices(target_verify_disk_bus(r->t), target_verify_disk_controller(r->t),
			       target_verify_nic_model(r->t), r->res->devices, sizeof(r->res->devices));
	}

	/* 1. Every overlay, seed and stub. */
	for (size_t i = 0; i < n && !qvsa_interrupted; i++) {
		struct run *r = &runs[i];
		double t = log_phase_begin("prepare", "overlay, platform and HTTPS stub for target %s", r->tname);
		int rc = prepare(r);
		r->res->t_prepare = log_phase_end("prepare", t, rc == 0);
		if (rc < 0)
			run_fail_recorded(r);
	}
	/* 2. The driver audit of every image: no boot is spent on one that cannot find its disk or NIC. */
	read_stage_run(&audit_stage, runs, n);
	/* Now that each image's base is known: its vCPUs and memory. */
	for (size_t i = 0; i < n; i++)
		if (!runs[i].failed && verify_make_domain(&runs[i], NULL) < 0)
			run_fail_recorded(&runs[i]);
	/* 3. Up to verify_jobs(o) boots at once (verify_boot.c). */
	verify_boot_all(runs, n, verify_jobs(o));
	/* 4. Every booted overlay. */
	read_stage_run(&check_stage, runs, n);

	unsigned failed = 0;
	const struct verify_result *last = NULL;
	for (size_t i = 0; i < n; i++) {
		finish(&runs[i]);
		if (!jobs[i].result.passed) {
			failed++;
			last = &jobs[i].result;
		}
	}
	free(runs);
	if (!failed)
		return 0;
	if (n == 1)
		return last->error_kind == ERR_INPUT ? err_input("%s", last->message) : err_fail("%s", last->message);
	return err_fail("verification failed for %u of %zu artifacts", failed, n);
}

int verify_artifact(const char *artifact, const struct target *t, const struct verify_opts *o,
		    struct verify_result *ret)
{
	struct verify_job job = {.artifact = artifact, .target = t, .expected_version = o->expected_version};
	int rc = verify_artifacts(&job, 1, o);
	*ret = job.result;
	ret->message = NULL; /* recorded as the error; ret carries no owned memory */
	verify_result_clear(&job.result);
	return rc;
}
