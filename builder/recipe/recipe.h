/* Image recipes: YAML files (with include:) validated against the schema in
 * docs/recipe.md. Every error is recorded as ERR_INPUT with "file:line:column: ...". */
#ifndef QVSA_RECIPE_H
#define QVSA_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct recipe;

/* One extra file copied into the image. */
struct recipe_file {
	const char *source; /* absolute host path, inside the recipe's folder; owned by the recipe */
	const char *dest;   /* absolute path inside the image; owned by the recipe */
	unsigned mode;      /* permission bits (default 0644) */
	const char *at;     /* "FILE:LINE:COLUMN" of dest as written, for later checks; owned by the recipe */
};

/* Load and validate path (and everything it includes). The bootstrap version
 * defaults to the VERSION file found by walking up from the recipe's folder.
 * On error records ERR_INPUT and returns -1; *ret is written only on success. */
int recipe_load(const char *path, struct recipe **ret);
/* Load a recipe held in memory (len bytes of buf; name is what messages
 * call it) touching no file: includes stand for empty fragments, file
 * sources and the CA bundle are checked as names only, and without a
 * version: key the version is qVSA-0.0. For the fuzzer and for tests. */
int recipe_load_memory(const char *name, const char *buf, size_t len, struct recipe **ret);
void recipe_free(struct recipe *r); /* accepts NULL */

/* Entries whose place recipe_where reports. */
enum recipe_field {
	RECIPE_AT_KERNEL_PACKAGE, /* base.kernel_package (i ignored) */
	RECIPE_AT_TEMPLATE,       /* templates[i] */
	RECIPE_AT_MODULE_ADD,     /* base.modules.add[i] */
	RECIPE_AT_MODULE_OMIT,    /* base.modules.omit[i] */
	RECIPE_AT_TARGET,         /* targets[i] */
};
/* "FILE:LINE:COLUMN" where entry i of field was written (for a value taken
 * by default, the top file's 1:1), so checks made after loading (unknown
 * target, template, module, kernel package) report a place. Never NULL. */
const char *recipe_where(const struct recipe *r, enum recipe_field field, size_t i);

const char *recipe_path(const struct recipe *r);     /* absolute path of the top file */
const char *recipe_name(const struct recipe *r);     /* appliance name, e.g. "qvsa-scanner" */
const char *recipe_version(const struct recipe *r);  /* "qVSA-X.Y" */
/* SHA-256 hex over the bytes of every file read (top file then includes, in load order). */
const char *recipe_sha256(const struct recipe *r);

const char *recipe_base_kind(const struct recipe *r);      /* "tiny" (default) */
const char *recipe_kernel_package(const struct recipe *r); /* default: the base's (linux-image-amd64) */
struct base_ops;
const struct base_ops *recipe_base(const struct recipe *r); /* the base table's row for base.kind */
char *const *recipe_base_packages(const struct recipe *r);  /* base.packages (strv, may be empty) */
const char *recipe_base_suite(const struct recipe *r);      /* base.suite, or NULL for a base without packages */
const char *recipe_base_mirror(const struct recipe *r);     /* base.mirror, or NULL as above */
const char *recipe_base_snapshot(const struct recipe *r);   /* base.snapshot, or NULL */
/* Extra modules for the initramfs (added to every target's list); NULL-terminated, never NULL. */
char *const *recipe_modules_add(const struct recipe *r);
/* Modules removed from every target's list (to test the driver audit); NULL-terminated. */
char *const *recipe_modules_omit(const struct recipe *r);

uint64_t recipe_disk_size(const struct recipe *r);           /* bytes, a multiple of 1 MiB */
const char *recipe_disk_partition_table(const struct recipe *r); /* "mbr" | "gpt" */
const char *recipe_disk_filesystem(const struct recipe *r);   /* "ext4" */
const char *recipe_disk_label(const struct recipe *r);        /* filesystem label, default "qvsa-root" */

/* Template names (folders under templates/), NULL-terminated, never NULL. */
char *const *recipe_templates(const struct recipe *r);
size_t recipe_n_files(const struct recipe *r);
const struct recipe_file *recipe_file_at(const struct recipe *r, size_t i);

const char *recipe_platform_url(const struct recipe *r); /* required; http:// only with allow_http */
const char *recipe_proxy(const struct recipe *r);        /* may be NULL */
/* Absolute path of the PEM CA bundle the image trusts (/etc/qvsa/ca.pem), or NULL. */
const char *recipe_ca(const struct recipe *r);
/* personalization.allow_http: plain HTTP to the platform accepted on purpose. */
bool recipe_allow_http(const struct recipe *r);

/* Target names from the recipe, NULL-terminated, at least one. */
char *const *recipe_targets(const struct recipe *r);

#endif
