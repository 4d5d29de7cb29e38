/* Verification: boot a copy-on-write overlay of an artifact under libvirt
 * with the target's device models, serve the platform stub, follow the
 * serial console, and prove first-boot personalization. */
#ifndef QVSA_VERIFY_H
#define QVSA_VERIFY_H

#include <stdbool.h>

struct target;

/* Budget from domain start to power-off when verify_opts.timeout_s is 0. */
#define VERIFY_DEFAULT_TIMEOUT_S 180

/* How to verify. */
struct verify_opts {
	const char *connect_uri;      /* libvirt URI; NULL: embedded driver under state_dir */
	const char *state_dir;        /* qvsa's state/cache dir (embedded root lives below); required */
	const char *accel;            /* resolved accelerator: "kvm" or "tcg" (never "auto") */
	const char *perscode;         /* code written into the seed; required */
	const char *expected_code;    /* code the stub accepts; NULL: same as perscode */
	const char *expected_version; /* bootstrap version the stub must receive; required */
	unsigned timeout_s;           /* budget from domain start to power-off; 0: default 180 */
	bool keep_console;            /* keep the console log next to the artifact's work dir */
};

/* Outcome of one verification, with phase timings (seconds). */
struct verify_result {
	bool passed;
	double t_prepare;     /* overlay, seed, stub, domain definition */
	double t_boot;        /* domain start until the agent starts personalizing */
	double t_personalize; /* agent start until its status line */
	double t_check;       /* shutdown + reading the overlay */
	char reason[1024];    /* why it failed (empty on pass) */
	char components[512]; /* "ML=..,VULNSIGS=..,..." found in the overlay on pass */
	char devices[128];    /* e.g. "virtio-blk + virtio-net" */
	char console_log[512]; /* kept copy of the serial console log ("" if none) */
};

/* Verify artifact (an existing file; format from the target's writer). Fills
 * *ret in every case where the boot ran. Returns 0 if it passed, -1 with an
 * error recorded (and ret->reason set) if not. Cleans up domain, overlay and
 * stub on every path, including an interrupt. */
int verify_artifact(const char *artifact, const struct target *t, const struct verify_opts *o,
		    struct verify_result *ret);

#endif
