/* Verification: boot a copy-on-write overlay of an artifact under libvirt
 * with the target's device models, serve the platform stub, follow the
 * serial console, and prove first-boot personalization. */
#ifndef QVSA_VERIFY_H
#define QVSA_VERIFY_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>

struct target;

/* Budget from domain start to power-off when neither verify_opts.timeout_s
 * nor the image's base (base_ops.verify_boot_s) sets one. */
#define VERIFY_DEFAULT_TIMEOUT_S 180

/* How to verify. */
struct verify_opts {
	const char *connect_uri;      /* libvirt URI; NULL: embedded driver under state_dir */
	const char *pool;             /* storage pool for a non-embedded URI (remote.h); NULL: REMOTE_POOL_DEFAULT */
	const char *state_dir;        /* qvsa's state/cache dir (embedded root lives below); required */
	const char *accel;            /* resolved accelerator: "kvm" or "tcg" (never "auto") */
	const char *perscode;         /* code written into the seed; required */
	const char *expected_code;    /* code the stub accepts; NULL: same as perscode */
	const char *expected_version; /* bootstrap version the stub must receive; required unless
				       * every verify_job names its own */
	unsigned timeout_s;           /* budget from domain start to power-off; 0: the image's base's
				       * (base_ops.verify_boot_s), else VERIFY_DEFAULT_TIMEOUT_S */
	unsigned jobs;                /* boots at once; 0: the number of online CPUs */
	bool keep_console;            /* keep the console log next to the artifact's work dir */
	bool wrong_ca;                /* hand the guest a CA that did not sign the platform's certificate
				       * (a negative check: the appliance must refuse the platform) */
};

/* Outcome of one verification, with phase timings (seconds). */
struct verify_result {
	bool passed;
	double t_prepare;     /* overlay, seed, stub, domain definition, libvirt connection */
	double t_audit;       /* this artifact's even share of the one driver-audit launch */
	double t_boot;        /* domain start until the agent starts personalizing */
	double t_personalize; /* agent start until its status line */
	double t_check;       /* power-off + this artifact's even share of the one overlay-reading launch */
	char reason[1024];    /* why it failed (empty on pass) */
	char components[512]; /* "ML=..,VULNSIGS=..,..." found in the overlay on pass */
	char devices[128];    /* e.g. "virtio-blk + virtio-net" */
	char channel[32];     /* the channel the appliance named in its status line ("ec2"), or "" */
	char base[16];        /* the base the image's stamp names ("tiny", "debian"), or "" before the audit */
	char base_check[256]; /* the base's own verdict on the boot on pass (base_ops.check's summary, e.g.
			       * cloud-init's), or "" when the base has no check */
	bool ready;           /* the platform's wireserver accepted a Ready report (Azure) */
	char console_log[512]; /* kept copy of the serial console log ("" if none) */
	char *message;        /* on failure, the full message to print ("verify 'A' (target T): reason"
			       * and the last console lines); owned, NULL on pass; verify_result_clear frees */
	enum err_kind error_kind; /* on failure: ERR_INPUT (bad input: exit 2) or ERR_FAIL */
};

/* One artifact to verify, and what became of it. */
struct verify_job {
	const char *artifact;         /* an existing file; borrowed, required */
	const struct target *target;  /* its target (devices, writer, modules); borrowed, required */
	const char *expected_version; /* bootstrap version the stub must receive; borrowed; NULL: the opts' */
	struct verify_result result;  /* written by verify_artifacts in every case; verify_result_clear frees */
};

/* Verify n artifacts: prepare every overlay; read the stamp and the
 * initramfs of every image (the base the stamp names says where it is) for
 * the driver audit (audit_initramfs) and the stamped version, and a job
 * that fails it is not booted; boot the others with their base's vCPUs,
 * memory and time budget, up to o->jobs at once over one libvirt
 * connection; read every booted overlay (qvsa's files and the base's) for
 * the verdict. Both reads go
 * without an appliance where image_read_direct is exact, and the rest of
 * each in ONE libguestfs launch. Fills each
 * jobs[i].result. Returns 0 if all passed; otherwise -1 with an error
 * recorded: for n == 1 the job's message, else "verification failed for K of
 * N artifacts" (each job's own message is in its result). Cleans up domains,
 * overlays and stubs on every path, including an interrupt. */
int verify_artifacts(struct verify_job *jobs, size_t n, const struct verify_opts *o);

/* Free what a result owns (its message); accepts NULL. */
void verify_result_clear(struct verify_result *r);

/* verify_artifacts for one artifact with o->expected_version (required).
 * Fills *ret (its message stays NULL: it is the recorded error). */
int verify_artifact(const char *artifact, const struct target *t, const struct verify_opts *o,
		    struct verify_result *ret);

#endif
