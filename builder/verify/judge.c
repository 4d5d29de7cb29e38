/* The verdicts of a verification run: what the image was before the boot,
 * what the console, the qVSA platform stub and the cloud's emulators saw
 * during it, and what the overlay holds after it (docs/verify.md, "The
 * verdict"). */
#include "verify_run.h"

#include "audit.h"
#include "base.h"
#include "cleanup.h"
#include "console.h"
#include "fs.h"
#include "image.h"
#include "platform.h"
#include "stamp.h"
#include "stub.h"
#include "verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The run failed: reason from fmt (the first verdict stays). Returns -1. */
int run_fail(struct run *r, const char *fmt, ...)
{
	if (!r->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
		va_end(ap);
		r->kind = ERR_FAIL;
		r->failed = true;
	}
	return -1;
}

/* The run failed with the recorded error (a step's own message), which is
 * taken over and cleared so that the other runs go on. Returns -1. */
int run_fail_recorded(struct run *r)
{
	enum err_kind kind = err_kind() == ERR_INPUT ? ERR_INPUT : ERR_FAIL;
	run_fail(r, "%s", err_msg() ? err_msg() : "unknown error");
	r->kind = kind;
	err_clear();
	return -1;
}

/* Why the appliance failed, judged from what the console, the stub and the
 * domain showed: run_fail, or 0. */
int judge_boot(struct run *r, enum vm_end end, unsigned timeout_s)
{
	const char *status = console_status(r->con);
	struct stub_report rep;
	stub_report(r->stub, &rep);

	if (end == VM_END_INTERRUPTED)
		return run_fail(r, "interrupted by signal");
	/* A rejection by the platform explains a failure status best. */
	const char *want_code = r->o->expected_code ? r->o->expected_code : r->o->perscode;
	if (rep.requests > 0 && !rep.accepted) {
		bool wrong_code = rep.code && strcmp(rep.code, want_code) != 0;
		return run_fail(r, "platform rejected the personalization %s: %s", wrong_code ? "code" : "request",
				rep.reason ? rep.reason : "no reason given");
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
			return run_fail(r, "no QVSA-STATUS line within %u s (agent missing or hung?)%s", timeout_s, hint);
		return run_fail(r, "the VM stopped (%s) without a QVSA-STATUS line%s", vm_end_describe(end), hint);
	}
	struct console_status_fields sf;
	if (console_status_parse(status, &sf) < 0)
		return run_fail_recorded(r);
	snprintf(r->res->channel, sizeof(r->res->channel), "%s", sf.channel);
	struct platform_report pr;
	platform_report(r->plat, &pr);
	r->res->ready = pr.ready;
	if (strcmp(sf.status, "success") != 0) {
		/* Without a reason, the whole line is the best explanation there is. */
		const char *why = sf.reason[0] ? sf.reason : status;
		/* The guest hung up during the handshake: it did not trust the platform. */
		if (rep.requests == 0 && rep.tls_failures > 0)
			return run_fail(r, "the appliance refused the platform's certificate (%s): %s",
					rep.tls_error ? rep.tls_error : "handshake failed", why);
		return run_fail(r, "agent reported status '%s': %s", sf.status, why);
	}
	/* The platform's own channel, by its own rules, and nothing else. */
	if (strcmp(r->res->channel, r->pops->channel) != 0)
		return run_fail(r, "the appliance took its code from channel '%s', but platform '%s' delivers it through '%s'",
				r->res->channel[0] ? r->res->channel : "(none)", r->pops->name, r->pops->channel);
	if (pr.refused > 0)
		return run_fail(r, "the appliance broke %s's rules (%u request%s refused): %s", r->pops->name, pr.refused,
				pr.refused == 1 ? "" : "s", pr.refused_why);
	const struct platform_fwd *pf = NULL;
	if (!platform_media(r->plat) && platform_fwds(r->plat, &pf) > 0 && !pr.delivered)
		return run_fail(r, "the %s metadata service never served the user-data", r->pops->name);
	if (r->pops->needs_ready && !pr.ready)
		return run_fail(r, "no Ready report reached %s's wireserver%s%s", r->pops->name, pr.ready_detail[0] ? ": " : "",
				pr.ready_detail);
	if (rep.requests == 0)
		return run_fail(r, "agent reported success but the platform stub received no request");
	if (!rep.code || strcmp(rep.code, want_code) != 0)
		/* Codes are credentials: say that they differ, never what they are. */
		return run_fail(r, "the platform received %s than the one verify handed over",
				rep.code ? "another personalization code" : "no personalization code");
	if (!rep.version || strcmp(rep.version, r->version) != 0)
		return run_fail(r, "appliance sent bootstrap version '%s', expected '%s'",
				rep.version ? rep.version : "(none)", r->version);
	if (end == VM_END_TIMEOUT)
		return run_fail(r, "the appliance reported success but did not power off within %u s", timeout_s);
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
			if (!want || strlen(want) != (size_t)vlen || strncmp(want, eq + 1, (size_t)vlen) != 0)
				return run_fail(r, "overlay /etc/qvsa/components has %.*s, platform served %.*s=%s",
						(int)len, line, (int)nlen, line, want ? want : "(nothing)");
			used += (size_t)snprintf(joined + used, used < jlen ? jlen - used : 0, "%s%.*s",
						 n_file ? "," : "", (int)len, line);
			n_file++;
		}
		line += len + (line[len] == '\n');
	}
	for (const char *const *s = served; s && *s; s++)
		n_served++;
	if (n_file != n_served)
		return run_fail(r, "overlay /etc/qvsa/components lists %zu components, platform served %zu", n_file,
				n_served);
	return 0;
}

/* qvsa's own files in the overlay after the boot; the base's check_paths follow them. */
static const char *const overlay_own[] = {"/etc/qvsa/components", "/etc/qvsa/personalized", "/etc/qvsa-release"};

const char **judge_overlay_paths(const struct base_ops *base)
{
	size_t n = 0;
	while (base && base->check_paths && base->check_paths[n])
		n++;
	const char **v = calloc(ELEMENTSOF(overlay_own) + n + 1, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < ELEMENTSOF(overlay_own); i++)
		v[i] = overlay_own[i];
	for (size_t i = 0; i < n; i++)
		v[ELEMENTSOF(overlay_own) + i] = base->check_paths[i];
	return v;
}

/* The base's own verdict on the boot, from its check_paths (after qvsa's
 * files in c): its summary into the result, or run_fail with its reason. */
static int judge_base(struct run *r, const struct image_content *c)
{
	if (!r->base->check)
		return 0;
	if (c->n_files <= ELEMENTSOF(overlay_own))
		return run_fail(r, "base %s: its check read nothing", r->base->name);
	_cleanup_free_ char *summary = NULL;
	if (r->base->check(c->files + ELEMENTSOF(overlay_own), c->lens + ELEMENTSOF(overlay_own), !r->pops->console,
			   &summary) < 0)
		return run_fail_recorded(r);
	snprintf(r->res->base_check, sizeof(r->res->base_check), "%s", summary ? summary : "");
	return 0;
}

/* The overlay after the boot: files[0] /etc/qvsa/components, files[1]
 * /etc/qvsa/personalized, files[2] /etc/qvsa-release, then the base's
 * check_paths (judge_overlay_paths). */
int judge_overlay(struct run *r, const struct image_content *c)
{
	if (c->error)
		return run_fail(r, "reading the overlay: %s", c->error);
	if (!c->files[0])
		return run_fail(r, "the overlay has no /etc/qvsa/components after the boot");
	if (!c->files[1])
		return run_fail(r, "the overlay has no /etc/qvsa/personalized marker after the boot");
	/* First boot personalizes; the build's identity stays as built. */
	if (!c->files[2] || !r->stamp || strcmp(c->files[2], r->stamp) != 0)
		return run_fail(r, "the appliance changed its /etc/qvsa-release during the boot");
	if (judge_components(r, c->files[0], r->res->components, sizeof(r->res->components)) < 0)
		return -1;
	if (r->base && judge_base(r, c) < 0)
		return -1;
	r->checked = true;
	return 0;
}

/* Images stamped before the stamp named its base (no BASE=) were all made on this one. */
#define JUDGE_BASE_UNSTAMPED "tiny"

const char **judge_image_paths(void)
{
	const struct base_ops *const *all = NULL;
	size_t n = base_all(&all), k = 0;
	const char **v = calloc(n + 2, sizeof(*v));
	if (!v)
		abort();
	v[k++] = "/etc/qvsa-release";
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 1; j < k && !seen; j++)
			seen = strcmp(v[j], all[i]->initrd_path) == 0;
		if (!seen)
			v[k++] = all[i]->initrd_path;
	}
	return v;
}

/* The row of the base the stamp names into r->base (JUDGE_BASE_UNSTAMPED
 * when it names none), or run_fail. */
static int judge_stamped_base(struct run *r, const char *stamp)
{
	_cleanup_free_ char *name = stamp ? stamp_get(stamp, "BASE") : NULL;
	r->base = base_find(name ? name : JUDGE_BASE_UNSTAMPED);
	if (r->base) {
		snprintf(r->res->base, sizeof(r->res->base), "%s", r->base->name);
		return 0;
	}
	const struct base_ops *const *all = NULL;
	size_t n = base_all(&all);
	char known[256] = "";
	for (size_t i = 0, used = 0; i < n && used < sizeof(known); i++)
		used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", all[i]->name);
	/* An image from another qvsa: it cannot be judged here, which is no verdict on it. */
	run_fail(r, "the image is stamped BASE '%.64s', a base this qvsa does not know (known: %s)", name, known);
	r->kind = ERR_INPUT;
	return -1;
}

/* The image before any boot: the stamp and every base's initramfs path
 * (r->image_paths, judge_image_paths), of which the stamp's base's is audited. */
int judge_image(struct run *r, const struct image_content *c)
{
	if (c->error) {
		run_fail(r, "driver audit: %s", c->error);
		r->kind = c->error_kind;
		return -1;
	}
	const char *stamp = NULL, *initrd = NULL;
	size_t initrd_len = 0;
	for (size_t i = 0; i < c->n_files && r->image_paths[i]; i++)
		if (strcmp(r->image_paths[i], "/etc/qvsa-release") == 0)
			stamp = c->files[i];
	if (judge_stamped_base(r, stamp) < 0)
		return -1;
	for (size_t i = 0; i < c->n_files && r->image_paths[i]; i++)
		if (strcmp(r->image_paths[i], r->base->initrd_path) == 0) {
			initrd = c->files[i];
			initrd_len = c->lens[i];
		}
	if (!initrd)
		return run_fail(r, "driver audit: the image has no %s (its base, %s, keeps the initramfs there)",
				r->base->initrd_path, r->base->name);
	if (audit_initramfs(initrd, initrd_len, r->t, r->base->initrd_path) < 0)
		return run_fail_recorded(r);
	/* The agent sends the stamped version: a wrong stamp cannot pass, so spend no boot on it. */
	_cleanup_free_ char *stamped = stamp ? stamp_get(stamp, "BOOTSTRAP_VERSION") : NULL;
	if (!stamped || strcmp(stamped, r->version) != 0)
		return run_fail(r, "the image is stamped BOOTSTRAP_VERSION '%s', expected '%s'",
				stamped ? stamped : "(none)", r->version);
	r->stamp = xstrdup(stamp);
	free(r->overlay_paths);
	r->overlay_paths = judge_overlay_paths(r->base);
	return 0;
}
