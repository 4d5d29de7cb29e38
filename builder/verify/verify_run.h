/* The inside of one verification run, shared by the run's stages
 * (verify.c) and its judges (judge.c). Not part of verify.h's API. */
#ifndef QVSA_VERIFY_RUN_H
#define QVSA_VERIFY_RUN_H

#include "domain.h"
#include "err.h"
#include "vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct base_ops;
struct console;
struct image_content;
struct platform;
struct platform_ops;
struct remote_pool;
struct stub;
struct target;
struct tlsca;
struct verify_opts;
struct verify_result;
struct vm;

/* Forwarded metadata addresses a platform may have. */
#define VERIFY_MAX_FWDS 8

/* Where a run's disks are on a libvirt that shares no files with us
 * (verify_remote.c): volumes in a pool, named by the domain XML. */
struct run_remote {
	const char *pool;       /* the pool's name */
	const char *disk_vol;   /* the overlay's volume */
	const char *disk_path;  /* its path on the libvirt host */
	const char *seed_vol;   /* the media's volume; NULL without media */
	const char *seed_path;  /* its path there; NULL without media */
	const char *nvram_path; /* the UEFI variable store the daemon makes, in the pool's directory */
};

/* Everything one verification holds; released by run_cleanup on every path. */
struct run {
	const char *artifact;       /* as given; borrowed */
	const struct target *t;     /* borrowed */
	const struct verify_opts *o; /* borrowed */
	const char *tname;          /* target name; borrowed from t */
	const char *version;        /* expected bootstrap version; borrowed from the job or o */
	struct verify_result *res;  /* the job's result; borrowed */
	struct stat art_st;         /* the artifact before we started, to prove it unchanged */
	bool art_known;             /* art_st is filled */
	char *tmpdir;               /* fs_tmpdir_new; owned */
	char *overlay;              /* tmpdir/overlay.qcow2; owned */
	const struct platform_ops *pops; /* the platform verify plays (target's verify.platform); static */
	struct platform *plat;      /* its running emulation (media, metadata services); owned; NULL before start */
	struct tlsca *ca;           /* the run's CA, which signs the stub's certificate; owned */
	struct tlsca *foreign_ca;   /* with verify_opts.wrong_ca: the CA handed to the guest instead; owned */
	char *platform_url;         /* https://<host address>:<stub port>/ as the guest reaches the stub; owned */
	char *console_sock;         /* tmpdir/console.sock when verify types at the console; owned; else NULL */
	char *console_path;         /* tmpdir/console.log; owned */
	char *backing;              /* the overlay's backing file: the artifact (absolute), or the disk
				     * unpacked from it into tmpdir; owned */
	const char *fmt;            /* backing's QEMU format (the writer table's, or "qcow2"); static */
	bool remote;                /* the libvirt shares no files with us: disks and media go through a
				     * storage pool, the console through a stream (remote.h) */
	struct domain_fwd fwds[VERIFY_MAX_FWDS]; /* guest addresses forwarded to the platform's emulators */
	char *fwd_cmds[VERIFY_MAX_FWDS]; /* their relay commands (fwds[i].command); owned */
	size_t n_fwds;              /* entries in fwds */
	char *name;                 /* domain name; owned */
	char *xml;                  /* the domain's XML, made in prepare and again with the base's vCPUs and
				     * memory after the audit, used at boot; owned */
	char *stamp;                /* /etc/qvsa-release as the audit read it, before the boot; owned */
	const struct base_ops *base; /* the base the stamp names (judge_image): its initramfs, boot
				     * budget, vCPUs, memory and check; static; NULL before the audit */
	const char **image_paths;   /* what the audit reads (judge_image_paths); array owned, strings static */
	const char **overlay_paths; /* what the check reads (judge_overlay_paths of base); array owned,
				     * strings static; NULL before the audit */
	struct stub *stub;          /* owned; NULL before start */
	struct vm *vm;              /* owned; its domain on the shared host while it boots; else NULL */
	struct console *con;        /* owned */
	bool booted;                /* the domain was started (console lines are worth showing) */
	bool failed;                /* a verdict against the run is in reason; later stages skip it */
	bool checked;               /* the overlay check passed: every stage is done (else finish fails the run) */
	enum err_kind kind;         /* ERR_INPUT when the failure is bad input, else ERR_FAIL */
	char reason[1024];          /* why it failed; "" while it has not */
};

/* The run failed: reason from fmt (the first verdict stays). Returns -1. */
int run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The run failed with the recorded error (a step's own message), which is
 * taken over and cleared so that the other runs go on. Returns -1. */
int run_fail_recorded(struct run *r);

/* The CA the guest is told to trust: the run's own, or (wrong_ca) one that
 * signed nothing, to prove the appliance refuses a platform it cannot verify. */
const char *verify_handed_ca(const struct run *r);

/* The run's domain XML into r->xml (replacing any): its files by local
 * path, or with rr its volumes on a remote libvirt. */
int verify_make_domain(struct run *r, const struct run_remote *rr);
/* A remote run's boot disk, media and XML (verify_remote.c): upload the
 * backing disk and the media into pool p, create the overlay volume on the
 * uploaded disk, and remake r->xml to name them. -1: recorded error. */
int verify_remote_stage(struct remote_pool *p, struct run *r);
/* After a remote run's boot: unless the run failed, download its overlay
 * over r->overlay (rebased onto the local backing file) for the check
 * read; then delete every volume of the run. -1: the run failed. */
int verify_remote_finish(struct remote_pool *p, struct run *r);

/* Boot every run still alive, up to jobs at once, over one libvirt
 * connection (verify_boot.c); each is judged (judge_boot) as it ends, and a
 * failure stays the run's. Destroys every domain before it returns, also on
 * an interrupt. */
void verify_boot_all(struct run *runs, size_t n, unsigned jobs);
/* The run's boot budget in seconds: o->timeout_s, else its base's
 * verify_boot_s, else VERIFY_DEFAULT_TIMEOUT_S. */
unsigned verify_run_timeout(const struct run *r);
/* o->jobs, or the number of online CPUs when it is 0. */
unsigned verify_jobs(const struct verify_opts *o);
/* How long a boot takes, relatively (UEFI firmware, the console channel):
 * verify_boot_all starts the heaviest boots first. */
unsigned verify_boot_weight(bool uefi, bool console);

/* Judges (judge.c): each returns 0, or run_fail with the verdict. */
/* What the console, the stub and the platform showed of a boot that ended as end. */
int judge_boot(struct run *r, enum vm_end end, unsigned timeout_s);
/* The image before any boot, read at r->image_paths: the base its stamp
 * names (BASE=, "tiny" when absent; an unknown one fails as bad input) goes
 * into r->base, that base's initramfs is audited, the stamped version
 * checked, and r->overlay_paths made for the check. */
int judge_image(struct run *r, const struct image_content *c);
/* The overlay after the boot, read at r->overlay_paths: components, the
 * personalized marker, the stamp, then the base's own check (its summary
 * into the result's base_check). */
int judge_overlay(struct run *r, const struct image_content *c);
/* What the audit reads from every image: /etc/qvsa-release, then each
 * base's initrd_path once (one read serves images of any base).
 * NULL-terminated; caller frees the array only. */
const char **judge_image_paths(void) __attribute__((returns_nonnull));
/* What the check reads from an overlay of base (NULL: none): qvsa's own
 * files, then the base's check_paths. NULL-terminated; caller frees the array only. */
const char **judge_overlay_paths(const struct base_ops *base) __attribute__((returns_nonnull));

#endif
