/* The build: recipe -> assembled disk(s) -> one artifact per target, plus
 * manifest.json and SHA256SUMS under OUT/qVSA-X.Y/. */
#ifndef QVSA_BUILD_H
#define QVSA_BUILD_H

#include <stdbool.h>
#include <stdint.h>

struct recipe;
struct sign_key;

/* How to build. */
struct build_opts {
	const char *datadir;        /* folder holding templates/ and targets/ */
	const char *cache_dir;      /* kernel cache, accel probe verdict */
	const char *out_dir;        /* artifacts go to out_dir/<version>/ */
	char *const *targets;       /* targets to build; NULL: the recipe's list */
	const char *accel;          /* "auto" | "kvm" | "tcg" */
	unsigned jobs;              /* writers running at once (-j); 0 or 1: one after another */
	const char *ova_digest;     /* overrides the ova writer's digest option (sha256|sha1); NULL: the target's */
	const struct sign_key *sign_key; /* signs manifest.json before the set is published; NULL: unsigned */
	bool refresh;               /* remake the base's cached root tree (--refresh) */
};

/* One written artifact. */
struct build_artifact {
	char *target;       /* target name */
	char *path;         /* absolute path */
	char *file;         /* file name (qVSA-X.Y-target.ext) */
	char *writer;       /* writer name */
	uint64_t size;      /* file size */
	uint64_t vsize;     /* virtual disk size */
	char sha256[65];    /* hex */
	char build_id[17];  /* build id stamped in this artifact's disk */
};

/* What a build produced, with phase timings (seconds). */
struct build_result {
	struct build_artifact *artifacts; /* one per target, in build order */
	unsigned n_artifacts;             /* entries in artifacts */
	char *out_dir;                    /* out_dir/<version> */
	char *manifest;                   /* path of manifest.json */
	char *signature;                  /* path of manifest.json.sig; NULL when unsigned */
	char build_id[17];                /* the whole build's id (all its targets) */
	double t_prepare;                 /* kernel, modules, initramfs, root filesystem archive */
	double t_assemble;                /* libguestfs */
	double t_write;                   /* writers + checks + checksums */
};

int build_run(const struct recipe *r, const struct build_opts *o, struct build_result *ret);
void build_result_free(struct build_result *res);

struct pack;
struct stamp;
struct target;

/* Where the recipe's CA bundle (personalization.ca) lands in the image. */
#define BUILD_CA_PATH "/etc/qvsa/ca.pem"

/* /etc/qvsa/platform.conf for r: PLATFORM_URL, PROXY if set, ALLOW_HTTP=yes
 * if allowed. Caller frees. */
char *build_platform_conf(const struct recipe *r);
/* Everything laid on the base, for target t: the templates under datadir,
 * the stamp, /etc/os-release, platform.conf, the CA bundle, t's cloud-init
 * datasource list (BUILD_DS_SIZE bytes: the disk's default, which other
 * targets of the disk patch), fstab, the recipe's files. */
int build_add_layers(const struct recipe *r, const char *datadir, const struct stamp *st, const struct target *t,
		     struct pack *p);

#endif
