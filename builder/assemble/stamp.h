/* The stamp: /etc/qvsa-release inside every image (os-release style), and
 * the build identity derived from the inputs only (never from the clock). */
#ifndef QVSA_STAMP_H
#define QVSA_STAMP_H

#include <stddef.h>
#include <stdint.h>

/* What is stamped into an image. */
struct stamp {
	const char *appliance;     /* recipe name */
	const char *version;       /* "qVSA-X.Y" */
	const char *recipe_sha256; /* recipe checksum (hex) */
	const char *targets;       /* space-separated targets this disk serves */
	const char *kernel;        /* kernel release */
	const char *base;          /* base kind ("tiny", "debian"): verify asks the base table by it */
	int64_t epoch;             /* build date, seconds since 1970 (SOURCE_DATE_EPOCH) */
	char build_id[17];         /* filled by stamp_init: 16 hex chars */
};

/* The build date: $SOURCE_DATE_EPOCH if set (must be a non-negative integer,
 * else ERR_INPUT), otherwise the newest mtime among paths (NULL-terminated). */
int stamp_epoch(const char *const *paths, int64_t *ret);
/* Compute build_id = first 16 hex of SHA-256 over version, recipe checksum, targets, kernel and epoch. */
void stamp_init(struct stamp *s);
/* The /etc/qvsa-release text. Caller frees. */
char *stamp_release_text(const struct stamp *s);

/* What the image says it is, in os-release terms: derived from the
 * bootstrap version alone, in this one place, so /etc/os-release, the
 * stamp, the OVF's OperatingSystemSection and `qvsa inspect` agree. */
struct os_facts {
	const char *id;          /* ID: "qvsa" */
	const char *id_like;     /* ID_LIKE: "debian" (its kernel and busybox are Debian's packages) */
	const char *name;        /* NAME: "qVSA" */
	char version_id[24];     /* VERSION_ID: "1.0" (the X.Y of qVSA-X.Y) */
	char pretty_name[40];    /* PRETTY_NAME: "qVSA 1.0" */
	unsigned ovf_os_id;      /* OVF OperatingSystemSection ovf:id (CIM OSType): 96, "Debian 64-Bit" */
	const char *ovf_os_type; /* vmw:osType unless a target overrides it: "debian10_64Guest" */
};
/* Fill *ret for version ("qVSA-X.Y"). */
void stamp_os_facts(const char *version, struct os_facts *ret);
/* The /etc/os-release text (os-release(5)): the facts plus the image's
 * identity (IMAGE_ID, IMAGE_VERSION, BUILD_ID). Caller frees. */
char *stamp_os_release_text(const struct stamp *s);
/* UTC ISO-8601 for epoch ("2026-11-23T10:00:00Z") into buf[21]. */
void stamp_format_date(int64_t epoch, char buf[21]);

/* Parse os-release style text: value of key (unquoted, newly allocated) or NULL. */
char *stamp_get(const char *text, const char *key);

#endif
