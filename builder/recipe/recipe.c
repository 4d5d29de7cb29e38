/* Recipe loading: read the top file and its includes, merge them, then
 * validate the merged tree against the schema (docs/recipe.md) into a
 * complete struct recipe, or record one "file:line:column: ..." error. */
#include "recipe.h"

#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "recipe_files.h"
#include "recipe_include.h"
#include "recipe_personalization.h"
#include "version.h"
#include "yamltree.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

struct recipe {
	char *path;                  /* absolute path of the top file */
	char *name;                  /* appliance name */
	char *version;               /* "qVSA-X.Y" */
	char sha256[65];             /* hex over the bytes of every file read */
	const struct base_ops *base; /* row of the base table (base.h); never NULL */
	char *kernel_package;        /* Debian package with the kernel */
	char **packages;             /* base.packages: more Debian packages (bases that take them); strv, never NULL */
	char *suite;                 /* base.suite: Debian suite the packages come from ("bookworm") */
	char *mirror;                /* base.mirror: Debian archive URL */
	char *snapshot;              /* base.snapshot: snapshot.debian.org time stamp, or NULL */
	char **modules_add;          /* strv, never NULL */
	char **modules_omit;         /* strv, never NULL */
	uint64_t disk_size;          /* bytes, multiple of 1 MiB */
	const char *partition_table; /* static: "mbr" | "gpt" */
	const char *filesystem;      /* static: "ext4" */
	char *label;                 /* filesystem label */
	char **templates;            /* strv, never NULL */
	struct recipe_files files;   /* files: entries */
	struct recipe_personalization pers; /* platform URL, proxy, CA bundle, allow_http */
	char **targets;              /* strv, at least one */
	/* "FILE:LINE:COLUMN" of each entry as written, for checks after loading (recipe_where). */
	char *at_top;                /* the top file's 1:1, for values taken by default */
	char *at_kernel_package;     /* base.kernel_package, or at_top's text */
	char **at_templates;         /* one per templates entry */
	char **at_modules_add;       /* one per modules_add entry */
	char **at_modules_omit;      /* one per modules_omit entry */
	char **at_targets;           /* one per targets entry */
};

void recipe_free(struct recipe *r)
{
	if (!r)
		return;
	recipe_files_clear(&r->files);
	cleanup_strvp(&r->at_templates);
	cleanup_strvp(&r->at_modules_add);
	cleanup_strvp(&r->at_modules_omit);
	cleanup_strvp(&r->at_targets);
	free(r->at_top);
	free(r->at_kernel_package);
	cleanup_strvp(&r->modules_add);
	cleanup_strvp(&r->modules_omit);
	cleanup_strvp(&r->packages);
	free(r->suite);
	free(r->mirror);
	free(r->snapshot);
	cleanup_strvp(&r->templates);
	cleanup_strvp(&r->targets);
	free(r->path);
	free(r->name);
	free(r->version);
	free(r->kernel_package);
	free(r->label);
	recipe_personalization_clear(&r->pers);
	free(r);
}

static void recipe_freep(struct recipe **r) { recipe_free(*r); }

/* Every key a recipe file may have at its top level. */
const char *const recipe_top_keys[] = { "include", "name", "version", "base", "disk", "templates",
					"files", "personalization", "targets", NULL };

/* "FILE:LINE:COLUMN" of n, for errors found after loading. */
static char *where_of(const struct yamltree *n)
{
	return xasprintf("%s:%u:%u", yamltree_file(n), yamltree_line(n), yamltree_column(n));
}

/* where_of for each item of a sequence (one per strv entry); for a default, at_top each. */
static char **where_each(const struct yamltree *seq, size_t n_default, const char *at_top)
{
	size_t n = seq ? yamltree_count(seq) : n_default;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < n; i++)
		v[i] = seq ? where_of(yamltree_item(seq, i)) : xstrdup(at_top);
	return v;
}

static bool is_name(const char *s) /* [a-z0-9][a-z0-9-]*, like a host name label */
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-");
	return s[0] && s[0] != '-' && s[n] == 0 && n <= 63;
}

static bool is_word(const char *s) /* [a-z0-9-]+ */
{
	return s[0] && s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-")] == 0;
}

static bool is_module(const char *s) /* [a-z0-9_-]+ */
{
	return s[0] && s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-")] == 0;
}

static bool is_package(const char *s) /* Debian package name */
{
	return s[0] && strchr("abcdefghijklmnopqrstuvwxyz0123456789", s[0]) && s[1] &&
	       s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-")] == 0;
}

static bool is_label(const char *s) /* ext4 labels hold 16 bytes; keep them shell-safe */
{
	size_t n = strlen(s);
	return n >= 1 && n <= 16 && s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")] == 0;
}

static int parse_version(struct recipe *r, const struct yamltree *root, bool no_fs)
{
	const struct yamltree *v = yamltree_get(root, "version");
	const char *s;
	if (v) {
		if (yamltree_string(v, "version", &s) < 0)
			return -1;
		if (version_parse(s, NULL, NULL) < 0) {
			err_prefix("%s:%u:%u", yamltree_file(v), yamltree_line(v), yamltree_column(v));
			return -1;
		}
		r->version = xstrdup(s);
		return 0;
	}
	if (no_fs) { /* recipe_load_memory: no VERSION file is looked for */
		r->version = xstrdup("qVSA-0.0");
		return 0;
	}
	_cleanup_free_ char *top_dir = fs_dirname(r->path);
	_cleanup_free_ char *dir = realpath(top_dir, NULL);
	if (!dir)
		dir = xstrdup(top_dir);
	for (;;) {
		_cleanup_free_ char *file = xasprintf("%s/VERSION", strcmp(dir, "/") == 0 ? "" : dir);
		if (fs_exists(file))
			return version_read_file(file, &r->version);
		if (strcmp(dir, "/") == 0)
			break;
		char *up = fs_dirname(dir);
		free(dir);
		dir = up;
	}
	return yamltree_error(root, "no 'version' key and no VERSION file in '%s' or any folder above it", top_dir);
}

/* snapshot.debian.org's time stamp form: YYYYMMDDTHHMMSSZ. */
static bool is_snapshot(const char *s)
{
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return false;
	for (size_t i = 0; i < 15; i++)
		if (i != 8 && (s[i] < '0' || s[i] > '9'))
			return false;
	return true;
}

/* An http(s) archive URL without blanks or shell metacharacters. */
static bool is_mirror(const char *s)
{
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return false;
	return strcspn(s, " \t\n'\"`$\\;|&<>()") == strlen(s) && strlen(s) < 256;
}

/* base.suite, base.mirror, base.snapshot, base.packages: only a base that
 * installs packages (base_ops.takes_packages) takes them. */
static int parse_base_packages(struct recipe *r, const struct yamltree *base)
{
	static const struct yamltree_strv_rules pkg_rules = {
		.valid = is_package, .expected = "a Debian package name", .unique = true,
	};
	static const char *const suites[] = { "bookworm", NULL };
	const struct yamltree *n;
	const char *s = NULL;
	char got[256];
	if (!r->base->takes_packages) {
		for (const char *k = "packages\0suite\0mirror\0snapshot\0"; *k; k += strlen(k) + 1)
			if (base && (n = yamltree_get(base, k)))
				return yamltree_error(n, "'base.%s' applies only to a base that installs packages "
						      "(kind 'debian'), not to kind '%s'", k, r->base->name);
		r->packages = calloc(1, sizeof(char *));
		if (!r->packages)
			abort();
		return 0;
	}
	s = "bookworm";
	if (base && (n = yamltree_get(base, "suite")) && yamltree_enum(n, "base.suite", suites, &s) < 0)
		return -1;
	r->suite = xstrdup(s);
	s = "http://deb.debian.org/debian";
	if (base && (n = yamltree_get(base, "mirror"))) {
		if (yamltree_string(n, "base.mirror", &s) < 0)
			return -1;
		if (!is_mirror(s))
			return yamltree_error(n, "expected an http:// or https:// Debian archive URL for 'base.mirror', got %s",
					      yamltree_describe(n, got, sizeof(got)));
	}
	r->mirror = xstrdup(s);
	if (base && (n = yamltree_get(base, "snapshot"))) {
		if (yamltree_string(n, "base.snapshot", &s) < 0)
			return -1;
		if (!is_snapshot(s))
			return yamltree_error(n, "expected a snapshot.debian.org time stamp (YYYYMMDDTHHMMSSZ) for "
					      "'base.snapshot', got %s", yamltree_describe(n, got, sizeof(got)));
		r->snapshot = xstrdup(s);
	}
	if (base && (n = yamltree_get(base, "packages"))) {
		if (yamltree_strv(n, "base.packages", &pkg_rules, &r->packages) < 0)
			return -1;
	} else {
		r->packages = calloc(1, sizeof(char *));
		if (!r->packages)
			abort();
	}
	return 0;
}

static int parse_base(struct recipe *r, const struct yamltree *base)
{
	static const char *const keys[] = { "kind", "kernel_package", "modules", "packages", "suite", "mirror",
					    "snapshot", NULL };
	static const char *const mod_keys[] = { "add", "omit", NULL };
	static const struct yamltree_strv_rules mod_rules = {
		.valid = is_module, .expected = "a module name ([a-z0-9_-]+)", .unique = true,
	};
	const struct base_ops *const *rows = NULL;
	size_t nrows = base_all(&rows);
	const char *kinds[8] = { NULL };
	const struct yamltree *n, *mods;
	const char *s;

	for (size_t i = 0; i < nrows && i + 1 < ELEMENTSOF(kinds); i++)
		kinds[i] = rows[i]->name;
	r->base = rows[0];
	if (base && (yamltree_expect(base, YAMLTREE_MAPPING, "base") < 0 || yamltree_check_keys(base, "base", keys) < 0))
		return -1;
	if (base && (n = yamltree_get(base, "kind"))) {
		if (yamltree_enum(n, "base.kind", kinds, &s) < 0)
			return -1;
		r->base = base_find(s);
	}
	s = r->base->kernel_package;
	if (base && (n = yamltree_get(base, "kernel_package"))) {
		if (yamltree_string(n, "base.kernel_package", &s) < 0)
			return -1;
		if (!is_package(s)) {
			char got[256];
			return yamltree_error(n, "expected a Debian package name for 'base.kernel_package', got %s",
					      yamltree_describe(n, got, sizeof(got)));
		}
		r->at_kernel_package = where_of(n);
	}
	r->kernel_package = xstrdup(s);
	if (parse_base_packages(r, base) < 0)
		return -1;

	mods = base ? yamltree_get(base, "modules") : NULL;
	if (mods && (yamltree_expect(mods, YAMLTREE_MAPPING, "base.modules") < 0 ||
		     yamltree_check_keys(mods, "base.modules", mod_keys) < 0))
		return -1;
	if (mods && (n = yamltree_get(mods, "add"))) {
		if (yamltree_strv(n, "base.modules.add", &mod_rules, &r->modules_add) < 0)
			return -1;
		r->at_modules_add = where_each(n, 0, NULL);
	}
	if (mods && (n = yamltree_get(mods, "omit"))) {
		if (yamltree_strv(n, "base.modules.omit", &mod_rules, &r->modules_omit) < 0)
			return -1;
		r->at_modules_omit = where_each(n, 0, NULL);
	}
	return 0;
}

static int parse_disk(struct recipe *r, const struct yamltree *disk)
{
	static const char *const keys[] = { "size", "partition_table", "filesystem", "label", NULL };
	static const char *const tables[] = { "mbr", "gpt", NULL };
	static const char *const filesystems[] = { "ext4", NULL };
	const uint64_t mib = UINT64_C(1) << 20;
	const struct yamltree *n;
	char got[256];
	const char *s;

	if (yamltree_expect(disk, YAMLTREE_MAPPING, "disk") < 0 || yamltree_check_keys(disk, "disk", keys) < 0 ||
	    yamltree_require(disk, "disk", "size", &n) < 0 || yamltree_size(n, "disk.size", &r->disk_size) < 0)
		return -1;
	if (r->disk_size % mib)
		return yamltree_error(n, "expected a multiple of 1M for 'disk.size', got %s",
				      yamltree_describe(n, got, sizeof(got)));
	if (r->disk_size < 64 * mib || r->disk_size > (UINT64_C(2) << 40))
		return yamltree_error(n, "expected a size between 64M and 2T for 'disk.size', got %s",
				      yamltree_describe(n, got, sizeof(got)));
	r->partition_table = tables[0];
	if ((n = yamltree_get(disk, "partition_table")) && yamltree_enum(n, "disk.partition_table", tables, &r->partition_table) < 0)
		return -1;
	r->filesystem = filesystems[0];
	if ((n = yamltree_get(disk, "filesystem")) && yamltree_enum(n, "disk.filesystem", filesystems, &r->filesystem) < 0)
		return -1;
	s = "qvsa-root";
	if ((n = yamltree_get(disk, "label"))) {
		if (yamltree_string(n, "disk.label", &s) < 0)
			return -1;
		if (!is_label(s))
			return yamltree_error(n, "expected a label of 1 to 16 characters from A-Z a-z 0-9 . _ - "
					      "for 'disk.label', got %s", yamltree_describe(n, got, sizeof(got)));
	}
	r->label = xstrdup(s);
	return 0;
}

static char **strv_of(const char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **c = calloc(n + 1, sizeof(*c));
	if (!c)
		abort();
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

/* Before any other check (whose message might quote it): nothing in a
 * recipe looks like a personalization code, neither a key nor a value. */
static int scan_tree(const struct yamltree *n)
{
	unsigned line;
	switch (yamltree_kind(n)) {
	case YAMLTREE_SCALAR: {
		const char *t = yamltree_text(n);
		if (recipe_find_perscode(t, strlen(t), &line))
			return yamltree_error(n, "this value looks like it holds a personalization code (not shown); "
					      "a code must never be in a recipe: it would be baked into every image");
		return 0;
	}
	case YAMLTREE_SEQUENCE:
		for (size_t i = 0; i < yamltree_count(n); i++)
			if (scan_tree(yamltree_item(n, i)) < 0)
				return -1;
		return 0;
	case YAMLTREE_MAPPING:
		for (size_t i = 0; i < yamltree_count(n); i++) {
			const struct yamltree *k = yamltree_key(n, i);
			if (strcasestr(yamltree_text(k), "perscode"))
				return yamltree_error(k, "a personalization code does not belong in a recipe (it would be baked "
						      "into every image); the platform hands one to each appliance");
			if (scan_tree(k) < 0 || scan_tree(yamltree_value(n, i)) < 0)
				return -1;
		}
		return 0;
	case YAMLTREE_NULL:
		break;
	}
	return 0;
}

static int parse_recipe(struct recipe *r, const struct yamltree *root, bool no_fs)
{
	static const struct yamltree_strv_rules template_rules = {
		.valid = is_word, .expected = "a template name ([a-z0-9-]+)", .unique = true,
	};
	static const struct yamltree_strv_rules target_rules = {
		.valid = is_word, .expected = "a target name ([a-z0-9-]+)", .unique = true, .nonempty = true,
	};
	const struct yamltree *n;
	char got[YAMLTREE_QUOTE_MAX + 32];
	const char *s;

	if (scan_tree(root) < 0 || yamltree_check_keys(root, "", recipe_top_keys) < 0 ||
	    yamltree_require(root, "", "name", &n) < 0 || yamltree_string(n, "name", &s) < 0)
		return -1;
	if (!is_name(s))
		return yamltree_error(n, "expected a name of lowercase letters, digits and '-' (not first), "
				      "at most 63 characters, for 'name', got %s", yamltree_describe(n, got, sizeof(got)));
	r->name = xstrdup(s);
	if (parse_version(r, root, no_fs) < 0 || parse_base(r, yamltree_get(root, "base")) < 0 ||
	    yamltree_require(root, "", "disk", &n) < 0 || parse_disk(r, n) < 0)
		return -1;
	if ((n = yamltree_get(root, "templates"))) {
		if (yamltree_strv(n, "templates", &template_rules, &r->templates) < 0)
			return -1;
	} else {
		r->templates = strv_of(r->base->templates);
	}
	size_t ndefault = 0;
	while (r->base->templates[ndefault])
		ndefault++;
	r->at_templates = where_each(n, ndefault, r->at_top);
	if (recipe_files_parse(yamltree_get(root, "files"), no_fs, &r->files) < 0 ||
	    yamltree_require(root, "", "personalization", &n) < 0 ||
	    recipe_personalization_parse(n, no_fs, &r->pers) < 0 ||
	    yamltree_require(root, "", "targets", &n) < 0 || yamltree_strv(n, "targets", &target_rules, &r->targets) < 0)
		return -1;
	r->at_targets = where_each(n, 0, r->at_top);
	return 0;
}

static int load(const char *path, const char *mem, size_t mem_len, struct recipe **ret)
{
	static const char *const none[] = { NULL };
	_cleanup_(recipe_freep) struct recipe *r = calloc(1, sizeof(*r));
	_cleanup_yamltree_ struct yamltree *root = NULL;

	if (!r)
		abort();
	r->path = mem ? xstrdup(path) : fs_abspath(path);
	r->at_top = xasprintf("%s:1:1", path);
	if (recipe_include_load(path, mem, mem_len, &root, r->sha256) < 0 || parse_recipe(r, root, mem != NULL) < 0)
		return -1;
	if (!r->modules_add)
		r->modules_add = strv_of(none);
	if (!r->modules_omit)
		r->modules_omit = strv_of(none);
	if (!r->at_modules_add)
		r->at_modules_add = strv_of(none);
	if (!r->at_modules_omit)
		r->at_modules_omit = strv_of(none);
	if (!r->at_kernel_package)
		r->at_kernel_package = xstrdup(r->at_top);
	*ret = TAKE_PTR(r);
	return 0;
}

int recipe_load(const char *path, struct recipe **ret)
{
	return load(path, NULL, 0, ret);
}

int recipe_load_memory(const char *name, const char *buf, size_t len, struct recipe **ret)
{
	return load(name, buf, len, ret);
}

const char *recipe_where(const struct recipe *r, enum recipe_field field, size_t i)
{
	char *const *v = NULL;
	switch (field) {
	case RECIPE_AT_KERNEL_PACKAGE:
		return r->at_kernel_package;
	case RECIPE_AT_TEMPLATE:
		v = r->at_templates;
		break;
	case RECIPE_AT_MODULE_ADD:
		v = r->at_modules_add;
		break;
	case RECIPE_AT_MODULE_OMIT:
		v = r->at_modules_omit;
		break;
	case RECIPE_AT_TARGET:
		v = r->at_targets;
		break;
	}
	for (size_t k = 0; v && v[k]; k++)
		if (k == i)
			return v[k];
	return r->at_top;
}

const char *recipe_path(const struct recipe *r) { return r->path; }
const char *recipe_name(const struct recipe *r) { return r->name; }
const char *recipe_version(const struct recipe *r) { return r->version; }
const char *recipe_sha256(const struct recipe *r) { return r->sha256; }
const char *recipe_base_kind(const struct recipe *r) { return r->base->name; }
const char *recipe_kernel_package(const struct recipe *r) { return r->kernel_package; }
const struct base_ops *recipe_base(const struct recipe *r) { return r->base; }
char *const *recipe_base_packages(const struct recipe *r) { return r->packages; }
const char *recipe_base_suite(const struct recipe *r) { return r->suite; }
const char *recipe_base_mirror(const struct recipe *r) { return r->mirror; }
const char *recipe_base_snapshot(const struct recipe *r) { return r->snapshot; }
char *const *recipe_modules_add(const struct recipe *r) { return r->modules_add; }
char *const *recipe_modules_omit(const struct recipe *r) { return r->modules_omit; }
uint64_t recipe_disk_size(const struct recipe *r) { return r->disk_size; }
const char *recipe_disk_partition_table(const struct recipe *r) { return r->partition_table; }
const char *recipe_disk_filesystem(const struct recipe *r) { return r->filesystem; }
const char *recipe_disk_label(const struct recipe *r) { return r->label; }
char *const *recipe_templates(const struct recipe *r) { return r->templates; }
size_t recipe_n_files(const struct recipe *r) { return r->files.n; }
const struct recipe_file *recipe_file_at(const struct recipe *r, size_t i)
{
	return i < r->files.n ? &r->files.v[i] : NULL;
}
const char *recipe_platform_url(const struct recipe *r) { return r->pers.platform_url; }
const char *recipe_proxy(const struct recipe *r) { return r->pers.proxy; }
const char *recipe_ca(const struct recipe *r) { return r->pers.ca; }
bool recipe_allow_http(const struct recipe *r) { return r->pers.allow_http; }
char *const *recipe_targets(const struct recipe *r) { return r->targets; }
