/* The release manifest (manifest.json): what a build published, written,
 * read, merged and looked up in this one module, through json-c. Its
 * fields are listed in docs/release.md. A manifest is deterministic: the
 * same build gives the same bytes (no clock, fixed key order), so its
 * detached signature (sign.h) is reproducible too. */
#ifndef QVSA_MANIFEST_H
#define QVSA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct manifest;

/* The "manifest_version" this qvsa writes and the only one it reads. */
#define MANIFEST_VERSION 1

/* One published artifact. Read from a manifest, every string is borrowed
 * from it (valid until manifest_free); added, every string is copied. */
struct manifest_artifact {
	const char *target;    /* target name ("aws"); required */
	const char *file;      /* file name as published ("qVSA-1.0-aws.raw"); required, unique */
	const char *format;    /* its writer ("raw", "ova", ...); required */
	const char *firmware;  /* "bios" | "uefi"; required */
	const char *build_id;  /* the build id stamped in its disk (16 hex); required */
	const char *sha256;    /* SHA-256 of the file (64 lowercase hex); required */
	uint64_t size;         /* file size in bytes */
	uint64_t virtual_size; /* disk size in bytes */
};

/* The build a manifest describes. Same ownership rules as manifest_artifact. */
struct manifest_build {
	const char *appliance;     /* recipe name; required */
	const char *version;       /* bootstrap version "qVSA-X.Y"; required */
	const char *build_id;      /* the whole build's id (16 hex); required */
	const char *recipe_sha256; /* recipe checksum (64 hex); required */
	int64_t epoch;             /* build date, SOURCE_DATE_EPOCH seconds (>= 0) */
	const char *kernel;        /* kernel release ("6.1.0-57-amd64"); required */
	const char *base_kind;     /* recipe base kind ("tiny"); required */
	const char *base_version;  /* the Debian release the base comes from ("12.9"); "" when unknown */
};

/* A new manifest for build b (copied); no packages, no artifacts yet.
 * Records ERR_INPUT and returns -1 when a field is missing or malformed. */
int manifest_new(const struct manifest_build *b, struct manifest **ret) __attribute__((nonnull));
void manifest_free(struct manifest *m); /* accepts NULL */

/* Add a package of the base (name and version copied); sorted by name on output. */
void manifest_add_package(struct manifest *m, const char *name, const char *version) __attribute__((nonnull));
/* Add an artifact (copied). ERR_INPUT if a field is malformed or its file
 * name is already listed. */
int manifest_add_artifact(struct manifest *m, const struct manifest_artifact *a) __attribute__((nonnull));

/* Facts of the build host that a base takes its files from (the tiny
 * base's busybox and /etc/debian_version come from it): the installed
 * version of Debian package name, added as a package (nothing added when
 * dpkg does not know it); and the Debian release (first line of
 * /etc/debian_version, newly allocated; "" when absent). */
void manifest_add_host_package(struct manifest *m, const char *name) __attribute__((nonnull));
char *manifest_host_debian_version(void);

/* The JSON text (pretty, "key": value, two-space indent, final newline).
 * Caller frees; *ret_len may be NULL. */
char *manifest_to_json(const struct manifest *m, size_t *ret_len) __attribute__((nonnull(1)));
/* Write manifest_to_json atomically to path, removing a stale "path.sig"
 * first: a signature never outlives the bytes it signed. */
int manifest_write(const struct manifest *m, const char *path) __attribute__((nonnull));

/* Parse a manifest from len bytes; what names it in errors (a path).
 * Every field is validated; ERR_INPUT naming the field on any error. */
int manifest_parse(const char *buf, size_t len, const char *what, struct manifest **ret) __attribute__((nonnull));
/* manifest_parse of a file. */
int manifest_load(const char *path, struct manifest **ret) __attribute__((nonnull));

/* The build fields (borrowed). */
const struct manifest_build *manifest_build(const struct manifest *m) __attribute__((nonnull));
/* "2026-11-29T23:12:34Z" (borrowed). */
const char *manifest_build_date(const struct manifest *m) __attribute__((nonnull));
size_t manifest_n_packages(const struct manifest *m) __attribute__((nonnull));
/* Package i of the base, sorted by name (borrowed). */
void manifest_package_at(const struct manifest *m, size_t i, const char **ret_name, const char **ret_version)
	__attribute__((nonnull));
size_t manifest_n_artifacts(const struct manifest *m) __attribute__((nonnull));
/* Artifact i (0 <= i < manifest_n_artifacts), borrowed. */
const struct manifest_artifact *manifest_artifact_at(const struct manifest *m, size_t i) __attribute__((nonnull));
/* Index of the first artifact at or after *pos whose SHA-256 is sha256
 * (hex); *pos is then one past it. -1 when there is none. */
long manifest_find_sha256(const struct manifest *m, const char *sha256, size_t *pos) __attribute__((nonnull));

/* Merge the per-target manifests ins[0..n) of one build into one: same
 * appliance, version, recipe checksum, build date, kernel and base (else
 * ERR_INPUT naming the field and both values); artifacts listed once each,
 * by file name (the same file twice must be the same entry, else ERR_INPUT
 * naming it); sorted by target then file, so the order of ins does not
 * matter. The build id is the inputs' when they agree, else one derived
 * from their sorted distinct ids. names[i] names ins[i] in errors. */
int manifest_merge(struct manifest *const *ins, const char *const *names, size_t n, struct manifest **ret)
	__attribute__((nonnull));

#endif
