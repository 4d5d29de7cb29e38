/* Stage 3 of verification: boot the prepared runs, up to N at once, over ONE
 * libvirt connection and event loop (the embedded driver lives in this
 * process and locks its root). One thread drives every boot: each turn of
 * the loop reads each running boot's console, answers its prompts, moves its
 * phase on and polls its domain, so console, judge and log need no locks.
 * The event thread only marks domains ended (vm.c). */
#include "verify_run.h"

#include "base.h"
#include "cleanup.h"
#include "console.h"
#include "fs.h"
#include "log.h"
#include "platform.h"
#include "remote.h"
#include "target.h"
#include "verify.h"
#include "vm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often the consoles and the domain states are polled. */
#define VERIFY_POLL_MS 100
/* Seconds a console-personalized guest keeps running after its status line:
 * its records are synced before the line, so this only lets the console
 * catch the agent's last words. */
#define VERIFY_CONSOLE_SETTLE_S 0.2

/* One boot in flight: where it is and since when. */
struct boot {
	struct run *r;      /* the run booted; borrowed */
	enum { PH_BOOT, PH_PERSONALIZE, PH_CHECK } ph; /* boot: until the agent's start marker;
							 * personalize: until its status line;
							 * check: until the power-off, then judged */
	double t0;          /* domain start (monotonic s) */
	double deadline;    /* t0 + the run's budget */
	double t_status;    /* when the status line was seen (0: not yet) */
	double tph;         /* start of the current phase, for log_phase_end */
	enum vm_end end;    /* VM_END_RUNNING until the domain ended (or verify ended it) */
	unsigned timeout_s; /* the run's budget, for the verdict */
	char tag[3][48];    /* progress tags per phase: "boot" or, with several boots at once, "boot aws" */
};

/* The run's budget: --timeout, else its base's (a Debian with cloud-init
 * needs minutes under TCG), else verify's default. */
unsigned verify_run_timeout(const struct run *r)
{
	if (r->o->timeout_s)
		return r->o->timeout_s;
	return r->base && r->base->verify_boot_s ? r->base->verify_boot_s : VERIFY_DEFAULT_TIMEOUT_S;
}

/* At the console channel's prompts, type what a person would: the code,
 * the platform URL, the CA (docs/channels.md "Console prompt"). */
static int answer_prompt(struct run *r)
{
	const char *what = console_prompt(r->con);
	if (!what)
		return 0;
	_cleanup_free_ char *line = NULL;
	if (strcmp(what, "perscode") == 0)
		line = xasprintf("%s\n", r->o->perscode);
	else if (strcmp(what, "platform_url") == 0)
		line = xasprintf("%s\n", r->platform_url);
	else if (strcmp(what, "ca") == 0)
		line = xstrdup(verify_handed_ca(r)); /* PEM lines, the last one "-----END CERTIFICATE-----\n" */
	else
		line = xstrdup("\n");
	console_prompt_answered(r->con);
	log_debug("verify: %s: answering the console prompt '%s'", r->tname, what);
	int rc = r->remote ? vm_console_send(r->vm, line, 5000) : console_type(r->console_sock, line, 5000);
	explicit_bzero(line, strlen(line));
	return rc;
}

/* Create the domain of b->r on host h (its disks first uploaded into pool
 * for a remote libvirt) and start following it. -1: the run failed
 * (recorded in it). */
static int boot_start(struct vm_host *h, struct remote_pool *pool, struct boot *b, bool tagged)
{
	struct run *r = b->r;
	static const char *const phases[] = {"boot", "personalize", "check"};
	for (size_t i = 0; i < ELEMENTSOF(phases); i++)
		snprintf(b->tag[i], sizeof(b->tag[i]), tagged ? "%s %s" : "%s", phases[i], r->tname);
	b->ph = PH_BOOT;
	b->end = VM_END_RUNNING;
	b->timeout_s = verify_run_timeout(r);
	b->tph = log_phase_begin(b->tag[PH_BOOT], "%s (%s, %s, %s)", r->name, r->o->accel, target_verify_machine(r->t),
				 r->res->devices);
	if ((r->remote && verify_remote_stage(pool, r) < 0) || vm_new(h, r->name, r->xml, &r->vm) < 0 ||
	    (r->remote ? vm_start_console(r->vm, r->console_path) : vm_start(r->vm)) < 0) {
		r->res->t_boot = log_phase_end(b->tag[PH_BOOT], b->tph, false);
		run_fail_recorded(r);
		vm_close(r->vm);
		r->vm = NULL;
		if (r->remote)
			verify_remote_finish(pool, r);
		return -1;
	}
	r->booted = true;
	b->t0 = now_monotonic();
	b->deadline = b->t0 + b->timeout_s;
	return 0;
}

/* One turn for a running boot: console, prompts, phases, domain state.
 * Returns 1 once the boot is over (the console was read once more after
 * the VM ended), 0 while it runs, -1 on a failure (recorded in the run). */
static int boot_step(struct boot *b)
{
	struct run *r = b->r;
	bool last = b->end != VM_END_RUNNING;
	if ((r->remote && vm_console_pump(r->vm) < 0) || console_follow(r->con, r->console_path) < 0)
		return run_fail_recorded(r);
	if (r->pops->console && !last && answer_prompt(r) < 0)
		return run_fail_recorded(r);
	if (b->ph == PH_BOOT && console_agent_started(r->con)) {
		r->res->t_boot = log_phase_end(b->tag[PH_BOOT], b->tph, true);
		b->tph = log_phase_begin(b->tag[PH_PERSONALIZE], "agent started; waiting for its status line");
		b->ph = PH_PERSONALIZE;
	}
	if (b->ph != PH_CHECK && console_status(r->con)) {
		if (b->ph == PH_BOOT)
			r->res->t_boot = log_phase_end(b->tag[PH_BOOT], b->tph, true);
		else
			r->res->t_personalize = log_phase_end(b->tag[PH_PERSONALIZE], b->tph, true);
		b->tph = log_phase_begin(b->tag[PH_CHECK], r->pops->console ? "status line seen; ending the VM"
									     : "status line seen; waiting for power-off");
		b->t_status = now_monotonic();
		b->ph = PH_CHECK;
	}
	if (last)
		return 1;
	if (vm_poll(r->vm, &b->end) < 0)
		return run_fail_recorded(r);
	double now = now_monotonic();
	if (b->end == VM_END_RUNNING && qvsa_interrupted)
		b->end = VM_END_INTERRUPTED;
	/* Nothing asks an appliance personalized at its console to power off
	 * (that comes with user-data): its records are synced before the status
	 * line, so once the line is in, verify ends the guest itself. */
	else if (b->end == VM_END_RUNNING && r->pops->console && b->ph == PH_CHECK &&
		 now >= b->t_status + VERIFY_CONSOLE_SETTLE_S)
		b->end = VM_END_DONE;
	else if (b->end == VM_END_RUNNING && now >= b->deadline)
		b->end = VM_END_TIMEOUT;
	return 0;
}

/* The boot is over (rc from boot_step): end the domain and judge what it
 * showed; a remote run's overlay comes down and its volumes go. */
static void boot_finish(struct remote_pool *pool, struct boot *b, int rc)
{
	struct run *r = b->r;
	if (rc >= 0) {
		log_debug("verify: %s: VM ended (%s) %.1fs after its start", r->tname, vm_end_describe(b->end),
			  now_monotonic() - b->t0);
		if (b->ph == PH_BOOT)
			r->res->t_boot = log_phase_end(b->tag[PH_BOOT], b->tph, false);
		else if (b->ph == PH_PERSONALIZE)
			r->res->t_personalize = log_phase_end(b->tag[PH_PERSONALIZE], b->tph, false);
		if (b->ph != PH_CHECK)
			b->tph = log_phase_begin(b->tag[PH_CHECK], "judging the run");
	}
	/* The domain is gone (or killed now): the overlay is no longer written. */
	vm_close(r->vm);
	r->vm = NULL;
	if (rc < 0) {
		if (r->remote)
			verify_remote_finish(pool, r);
		return;
	}
	rc = judge_boot(r, b->end, b->timeout_s);
	if (r->remote && verify_remote_finish(pool, r) < 0)
		rc = -1;
	r->res->t_check = log_phase_end(b->tag[PH_CHECK], b->tph, rc == 0);
}

/* The live status line: one boot as ever (seconds and its last console
 * line), several as "target seconds" each. */
static void show_status(const struct boot *bs, size_t n)
{
	char line[256] = "";
	size_t used = 0, nrun = 0;
	const struct boot *one = NULL;
	double now = now_monotonic();
	for (size_t i = 0; i < n; i++) {
		if (!bs[i].r || bs[i].end != VM_END_RUNNING)
			continue;
		one = &bs[i];
		nrun++;
		if (used < sizeof(line))
			used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s %.0fs", nrun > 1 ? "  " : "",
						 bs[i].r->tname, now - bs[i].t0);
	}
	if (nrun == 1)
		log_phase_status("%3.0fs  %.70s", now - one->t0, console_last_line(one->r->con));
	else if (nrun > 1)
		log_phase_status("%.100s", line);
}

unsigned verify_boot_weight(bool uefi, bool console)
{
	/* Measured under TCG: OVMF adds ~4 s to a boot, the console channel's
	 * prompts ~1 s over a medium's or a metadata service's code. */
	return 1 + 4 * uefi + console;
}

/* How long a run's boot is expected to take, relatively: its base's
 * budget first (Debian's minute against the tiny base's seconds outweighs
 * firmware and channel), then verify_boot_weight. */
static void boot_cost(const struct run *r, unsigned ret[2])
{
	const char *fw = r->t ? target_firmware(r->t) : NULL;
	ret[0] = r->base && r->base->verify_boot_s ? r->base->verify_boot_s : VERIFY_DEFAULT_TIMEOUT_S;
	ret[1] = verify_boot_weight(fw && strcmp(fw, "uefi") == 0, r->pops && r->pops->console);
}

/* The runs in the order their boots start: longest first (as far as known),
 * so that the last boots to end are short ones and the slots stay full;
 * job order among equals. The results table keeps the job order. */
static void boot_order(const struct run *runs, size_t n, size_t *order)
{
	unsigned (*w)[2] = calloc(n ? n : 1, sizeof(*w));
	if (!w)
		abort();
	for (size_t i = 0; i < n; i++)
		boot_cost(&runs[i], w[i]);
	/* A stable insertion sort: a few dozen runs at most. */
	for (size_t i = 0; i < n; i++) {
		size_t k = i;
		for (; k > 0 && (w[order[k - 1]][0] < w[i][0] ||
				 (w[order[k - 1]][0] == w[i][0] && w[order[k - 1]][1] < w[i][1]));
		     k--)
			order[k] = order[k - 1];
		order[k] = i;
	}
	free(w);
}

unsigned verify_jobs(const struct verify_opts *o)
{
	if (o->jobs)
		return o->jobs;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

void verify_boot_all(struct run *runs, size_t n, unsigned jobs)
{
	size_t alive = 0;
	for (size_t i = 0; i < n; i++)
		alive += !runs[i].failed;
	if (alive == 0 || qvsa_interrupted)
		return;
	if (jobs == 0)
		jobs = 1;
	/* One connection for every boot; its cost is shared like a launch's. */
	double t = now_monotonic();
	struct vm_host *h = NULL;
	struct remote_pool *pool = NULL;
	int rc = vm_host_open(runs[0].o->connect_uri, runs[0].o->state_dir, &h);
	if (rc == 0 && runs[0].remote && (rc = remote_pool_open(h, runs[0].o->pool, &pool)) < 0) {
		vm_host_close(h);
		h = NULL;
	}
	double dt = now_monotonic() - t;
	_cleanup_free_ char *msg = rc < 0 ? xstrdup(err_msg() ? err_msg() : "unknown error") : NULL;
	for (size_t i = 0; i < n; i++) {
		if (runs[i].failed)
			continue;
		runs[i].res->t_prepare += dt / (double)alive;
		if (rc < 0) {
			run_fail(&runs[i], "%s", msg);
			runs[i].kind = err_kind() == ERR_INPUT ? ERR_INPUT : ERR_FAIL;
		}
	}
	err_clear();
	if (rc < 0)
		return;

	size_t slots = jobs < alive ? jobs : alive;
	struct boot *bs = calloc(slots, sizeof(*bs)); /* bs[k].r == NULL: a free slot */
	if (!bs)
		abort();
	bool *started = calloc(n, sizeof(*started));
	size_t *order = calloc(n, sizeof(*order));
	if (!started || !order)
		abort();
	boot_order(runs, n, order);
	size_t running = 0;
	for (;;) {
		/* Fill free slots in boot order (boot_order). */
		for (size_t k = 0; k < slots && !qvsa_interrupted; k++) {
			for (size_t j = 0; !bs[k].r && j < n; j++) {
				size_t i = order[j];
				struct run *r = &runs[i];
				if (started[i] || r->failed)
					continue;
				started[i] = true;
				bs[k] = (struct boot){.r = r};
				if (boot_start(h, pool, &bs[k], jobs > 1) < 0)
					bs[k].r = NULL;
				else
					running++;
			}
		}
		if (running == 0)
			break;
		for (size_t k = 0; k < slots; k++) {
			if (!bs[k].r)
				continue;
			int src = boot_step(&bs[k]);
			if (src != 0) {
				boot_finish(pool, &bs[k], src);
				bs[k].r = NULL;
				running--;
			}
		}
		show_status(bs, slots);
		if (running > 0)
			nanosleep(&(struct timespec){.tv_nsec = VERIFY_POLL_MS * 1000000L}, NULL);
	}
	free(bs);
	free(started);
	free(order);
	remote_pool_close(pool); /* any volume a run left (it deletes its own), and the pool if made here */
	vm_host_close(h);
}
