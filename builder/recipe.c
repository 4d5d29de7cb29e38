/* Recipe loading: read the top file and its includes, merge them, then
 * validate the merged tree against the schema (docs/recipe.md) into a
 * complete struct recipe, or record one "file:line:column: ..." error. */
#include "recipe.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "recipe_personalization.h"
#include "version.h"
#include "yamltree.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* A base system the builder knows how to assemble. Adding "debian" is one row. */
struct base_kind {
	const char *name;           /* value of base.kind */
	const char *kernel_package; /* default for base.kernel_package */
};

static const struct base_kind base_kinds[] = {
	{ .name = "tiny", .kernel_package = "linux-image-amd64" },
};

struct recipe {
	char *path;                  /* absolute path of the top file */
	char *name;                  /* appliance name */
	char *version;               /* "qVSA-X.Y" */
	char sha256[65];             /* hex over the bytes of every file read */
	const struct base_kind *base; /* row of base_kinds; never NULL */
	char *kernel_package;        /* Debian package with the kernel */
	char **modules_add;          /* strv, never NULL */
	char **modules_omit;         /* strv, never NULL */
	uint64_t disk_size;          /* bytes, multiple of 1 MiB */
	const char *partition_table; /* static: "mbr" | "gpt" */
	const char *filesystem;      /* static: "ext4" */
	char *label;                 /* filesystem label */
	char **templates;            /* strv, never NULL */
	struct recipe_file *files;   /* n_files entries; strings owned by the recipe */
	size_t n_files;              /* entries in files */
	struct recipe_personalization pers; /* platform URL, proxy, CA bundle, allow_http */
	char **targets;              /* strv, at least one */
};

void recipe_free(struct recipe *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_files; i++) {
		free((char *)r->files[i].source);
		free((char *)r->files[i].dest);
	}
	free(r->files);
	cleanup_strvp(&r->modules_add);
	cleanup_strvp(&r->modules_omit);
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

/* State while reading the top file and its includes. */
struct loader {
	char *bytes;   /* every file read so far, concatenated, for recipe_sha256 */
	size_t len;    /* bytes used in bytes */
	char *chain[32]; /* display paths of the include chain being loaded */
	char *real[32];  /* realpath of each chain entry, to detect cycles */
	size_t depth;    /* entries used in chain/real */
};

static int load_tree(struct loader *l, const char *display, const struct yamltree *from, struct yamltree **ret);

/* Path of an include as the user would write it from the current directory. */
static char *include_display(const char *includer, const char *inc)
{
	if (inc[0] == '/')
		return xstrdup(inc);
	_cleanup_free_ char *dir = fs_dirname(includer);
	if (strcmp(dir, ".") == 0)
		return xstrdup(inc);
	return xasprintf("%s/%s", dir, inc);
}

static int cycle_error(const struct loader *l, const struct yamltree *from, const char *display, size_t start)
{
	char chain[2048] = "";
	for (size_t i = start; i < l->depth; i++) {
		size_t o = strlen(chain);
		snprintf(chain + o, sizeof(chain) - o, "%s -> ", l->chain[i]);
	}
	size_t o = strlen(chain);
	snprintf(chain + o, sizeof(chain) - o, "%s", display);
	return yamltree_error(from, "include cycle: %s", chain);
}

/* Load every file named by the top mapping's include: into one merged tree. */
static int load_includes(struct loader *l, const char *display, struct yamltree *inc, struct yamltree **ret)
{
	_cleanup_yamltree_ struct yamltree *acc = NULL;
	size_t n = yamltree_kind(inc) == YAMLTREE_SEQUENCE ? yamltree_count(inc) : 1;
	if (yamltree_kind(inc) == YAMLTREE_MAPPING)
		return yamltree_error(inc, "expected a file name or a sequence of file names for 'include', got a mapping");
	for (size_t i = 0; i < n; i++) {
		const struct yamltree *item = yamltree_kind(inc) == YAMLTREE_SEQUENCE ? yamltree_item(inc, i) : inc;
		_cleanup_free_ char *ipath = xasprintf("include[%zu]", i);
		struct yamltree *child = NULL;
		const char *name;
		if (yamltree_string(item, yamltree_kind(inc) == YAMLTREE_SEQUENCE ? ipath : "include", &name) < 0)
			return -1;
		_cleanup_free_ char *child_display = include_display(display, name);
		if (load_tree(l, child_display, item, &child) < 0)
			return -1;
		acc = yamltree_merge(TAKE_PTR(acc), child);
	}
	*ret = TAKE_PTR(acc);
	return 0;
}

/* Read display (top file if from is NULL, else the include named by from),
 * its includes first, and return the merged tree. */
static int load_tree(struct loader *l, const char *display, const struct yamltree *from, struct yamltree **ret)
{
	_cleanup_free_ char *real = realpath(display, NULL);
	_cleanup_free_ char *buf = NULL;
	_cleanup_yamltree_ struct yamltree *root = NULL;
	_cleanup_yamltree_ struct yamltree *inc = NULL;
	_cleanup_yamltree_ struct yamltree *base = NULL;
	struct stat st;
	size_t len;

	if (!from) {
		if (yamltree_read_input(display, &buf, &len) < 0)
			return -1;
	} else {
		if (!real || stat(real, &st) < 0)
			return yamltree_error(from, "include file '%s' not found (looked for '%s')", yamltree_text(from),
					      display);
		if (!S_ISREG(st.st_mode))
			return yamltree_error(from, "include file '%s' is not a regular file", display);
		for (size_t i = 0; i < l->depth; i++)
			if (strcmp(l->real[i], real) == 0)
				return cycle_error(l, from, display, i);
		if (l->depth == ELEMENTSOF(l->chain))
			return yamltree_error(from, "includes nested deeper than %zu files", ELEMENTSOF(l->chain));
		if (fs_read_file(display, &buf, &len) < 0)
			return -1;
	}
	l->bytes = realloc(l->bytes, l->len + len + 1);
	if (!l->bytes)
		abort();
	memcpy(l->bytes + l->len, buf, len);
	l->len += len;

	if (yamltree_parse(display, buf, len, &root) < 0 || yamltree_expect(root, YAMLTREE_MAPPING, "") < 0)
		return -1;
	inc = yamltree_take(root, "include");
	if (inc && yamltree_kind(inc) != YAMLTREE_NULL) {
		l->chain[l->depth] = xstrdup(display);
		l->real[l->depth] = real ? xstrdup(real) : fs_abspath(display);
		l->depth++;
		int r = load_includes(l, display, inc, &base);
		l->depth--;
		free(l->chain[l->depth]);
		free(l->real[l->depth]);
		if (r < 0)
			return -1;
	}
	*ret = yamltree_merge(TAKE_PTR(base), TAKE_PTR(root));
	return 0;
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

static int parse_version(struct recipe *r, const struct yamltree *root)
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

static int parse_base(struct recipe *r, const struct yamltree *base)
{
	static const char *const keys[] = { "kind", "kernel_package", "modules", NULL };
	static const char *const mod_keys[] = { "add", "omit", NULL };
	static const struct yamltree_strv_rules mod_rules = {
		.valid = is_module, .expected = "a module name ([a-z0-9_-]+)", .unique = true,
	};
	const char *kinds[ELEMENTSOF(base_kinds) + 1] = { NULL };
	const struct yamltree *n, *mods;
	const char *s;

	for (size_t i = 0; i < ELEMENTSOF(base_kinds); i++)
		kinds[i] = base_kinds[i].name;
	r->base = &base_kinds[0];
	if (base && (yamltree_expect(base, YAMLTREE_MAPPING, "base") < 0 || yamltree_check_keys(base, "base", keys) < 0))
		return -1;
	if (base && (n = yamltree_get(base, "kind"))) {
		if (yamltree_enum(n, "base.kind", kinds, &s) < 0)
			return -1;
		for (size_t i = 0; i < ELEMENTSOF(base_kinds); i++)
			if (strcmp(base_kinds[i].name, s) == 0)
				r->base = &base_kinds[i];
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
	}
	r->kernel_package = xstrdup(s);

	mods = base ? yamltree_get(base, "modules") : NULL;
	if (mods && (yamltree_expect(mods, YAMLTREE_MAPPING, "base.modules") < 0 ||
		     yamltree_check_keys(mods, "base.modules", mod_keys) < 0))
		return -1;
	if (mods && (n = yamltree_get(mods, "add")) && yamltree_strv(n, "base.modules.add", &mod_rules, &r->modules_add) < 0)
		return -1;
	if (mods && (n = yamltree_get(mods, "omit")) && yamltree_strv(n, "base.modules.omit", &mod_rules, &r->modules_omit) < 0)
		return -1;
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

/* Where a relative source really is, refusing anything outside the folder of
 * the file that names it (by '..' or by a symbolic link). */
static int resolve_source(const struct yamltree *n, const char *path, char **ret)
{
	const char *s = yamltree_text(n);
	_cleanup_free_ char *dir = fs_dirname(yamltree_file(n));
	_cleanup_free_ char *real_dir = realpath(dir, NULL);
	char esc[256];
	long depth = 0;

	yamltree_escape(s, esc, sizeof(esc));
	if (s[0] == '/' || s[0] == 0)
		return yamltree_error(n, "expected a path relative to the recipe's folder for '%s', got '%s'", path, esc);
	for (const char *c = s; *c;) {
		size_t len = strcspn(c, "/");
		if (len == 2 && c[0] == '.' && c[1] == '.')
			depth--;
		else if (len > 0 && !(len == 1 && c[0] == '.'))
			depth++;
		if (depth < 0)
			return yamltree_error(n, "'%s' '%s' leads outside the recipe's folder '%s'", path, esc, dir);
		c += len + (c[len] == '/');
	}
	_cleanup_free_ char *full = xasprintf("%s/%s", real_dir ? real_dir : dir, s);
	_cleanup_free_ char *real = realpath(full, NULL);
	struct stat st;
	if (!real_dir || !real || stat(real, &st) < 0)
		return yamltree_error(n, "'%s' '%s' not found in the recipe's folder '%s'", path, esc, dir);
	size_t dl = strcmp(real_dir, "/") == 0 ? 0 : strlen(real_dir);
	if (strncmp(real, real_dir, dl) != 0 || (real[dl] != '/' && real[dl] != 0))
		return yamltree_error(n, "'%s' '%s' resolves to '%s', outside the recipe's folder '%s'", path, esc, real, dir);
	if (!S_ISREG(st.st_mode))
		return yamltree_error(n, "'%s' '%s' is not a regular file", path, esc);
	*ret = TAKE_PTR(real);
	return 0;
}

static bool is_dest(const char *s) /* absolute, names a file, no ".." component */
{
	if (s[0] != '/' || s[1] == 0 || s[strlen(s) - 1] == '/')
		return false;
	for (const char *c = s; (c = strstr(c, "/..")); c += 3)
		if (c[3] == '/' || c[3] == 0)
			return false;
	return true;
}

/* "0755" (string) or 755 (a YAML int read as decimal): 1-4 octal digits either way. */
static bool parse_mode(const char *s, unsigned *ret)
{
	size_t n = strspn(s, "01234567");
	if (n == 0 || s[n] != 0 || n > 5 || (n == 5 && s[0] != '0'))
		return false;
	*ret = (unsigned)strtoul(s, NULL, 8);
	return true;
}

static int parse_file(struct recipe *r, const struct yamltree *item, size_t i)
{
	static const char *const keys[] = { "source", "dest", "mode", NULL };
	_cleanup_free_ char *path = xasprintf("files[%zu]", i);
	_cleanup_free_ char *spath = xasprintf("files[%zu].source", i);
	_cleanup_free_ char *dpath = xasprintf("files[%zu].dest", i);
	_cleanup_free_ char *mpath = xasprintf("files[%zu].mode", i);
	struct recipe_file *f = &r->files[i];
	const struct yamltree *src, *dest, *mode;
	char got[256];
	const char *s;

	f->mode = 0644;
	if (yamltree_expect(item, YAMLTREE_MAPPING, path) < 0 || yamltree_check_keys(item, path, keys) < 0 ||
	    yamltree_require(item, path, "source", &src) < 0 || yamltree_require(item, path, "dest", &dest) < 0 ||
	    yamltree_string(src, spath, &s) < 0)
		return -1;
	_cleanup_free_ char *source = NULL;
	if (resolve_source(src, spath, &source) < 0 || yamltree_string(dest, dpath, &s) < 0)
		return -1;
	if (!is_dest(s))
		return yamltree_error(dest, "expected an absolute file path without '..' for '%s', got %s", dpath,
				      yamltree_describe(dest, got, sizeof(got)));
	for (size_t j = 0; j < i; j++)
		if (strcmp(r->files[j].dest, s) == 0)
			return yamltree_error(dest, "'%s' %s is already the dest of files[%zu]", dpath,
					      yamltree_describe(dest, got, sizeof(got)), j);
	if ((mode = yamltree_get(item, "mode"))) {
		if (yamltree_string(mode, mpath, &s) < 0)
			return -1;
		if (!parse_mode(s, &f->mode) || f->mode > 07777)
			return yamltree_error(mode, "expected an octal mode like 0644 or \"0755\" for '%s', got %s", mpath,
					      yamltree_describe(mode, got, sizeof(got)));
	}
	f->dest = xstrdup(yamltree_text(dest));
	f->source = TAKE_PTR(source);
	return 0;
}

static int parse_files(struct recipe *r, const struct yamltree *files)
{
	if (!files)
		return 0;
	if (yamltree_expect(files, YAMLTREE_SEQUENCE, "files") < 0)
		return -1;
	r->files = calloc(yamltree_count(files) + 1, sizeof(*r->files));
	if (!r->files)
		abort();
	for (size_t i = 0; i < yamltree_count(files); i++) {
		int rc = parse_file(r, yamltree_item(files, i), i);
		if (r->files[i].source) /* counted once complete, so recipe_free frees it */
			r->n_files = i + 1;
		if (rc < 0)
			return -1;
	}
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

static int parse_recipe(struct recipe *r, const struct yamltree *root)
{
	static const char *const keys[] = { "include", "name", "version", "base", "disk", "templates",
					    "files", "personalization", "targets", NULL };
	static const char *const default_templates[] = { "tiny-base", "bootstrap-agent", NULL };
	static const struct yamltree_strv_rules template_rules = {
		.valid = is_word, .expected = "a template name ([a-z0-9-]+)", .unique = true,
	};
	static const struct yamltree_strv_rules target_rules = {
		.valid = is_word, .expected = "a target name ([a-z0-9-]+)", .unique = true, .nonempty = true,
	};
	const struct yamltree *n;
	char got[256];
	const char *s;

	if (yamltree_check_keys(root, "", keys) < 0 || yamltree_require(root, "", "name", &n) < 0 ||
	    yamltree_string(n, "name", &s) < 0)
		return -1;
	if (!is_name(s))
		return yamltree_error(n, "expected a name of lowercase letters, digits and '-' (not first), "
				      "at most 63 characters, for 'name', got %s", yamltree_describe(n, got, sizeof(got)));
	r->name = xstrdup(s);
	if (parse_version(r, root) < 0 || parse_base(r, yamltree_get(root, "base")) < 0 ||
	    yamltree_require(root, "", "disk", &n) < 0 || parse_disk(r, n) < 0)
		return -1;
	if ((n = yamltree_get(root, "templates"))) {
		if (yamltree_strv(n, "templates", &template_rules, &r->templates) < 0)
			return -1;
	} else {
		r->templates = strv_of(default_templates);
	}
	if (parse_files(r, yamltree_get(root, "files")) < 0 ||
	    yamltree_require(root, "", "personalization", &n) < 0 ||
	    recipe_personalization_parse(n, &r->pers) < 0 ||
	    yamltree_require(root, "", "targets", &n) < 0 || yamltree_strv(n, "targets", &target_rules, &r->targets) < 0)
		return -1;
	return 0;
}

int recipe_load(const char *path, struct recipe **ret)
{
	static const char *const none[] = { NULL };
	_cleanup_(recipe_freep) struct recipe *r = calloc(1, sizeof(*r));
	_cleanup_yamltree_ struct yamltree *root = NULL;
	struct loader l = { 0 };

	if (!r)
		abort();
	r->path = fs_abspath(path);
	int rc = load_tree(&l, path, NULL, &root);
	if (rc == 0)
		sha256_hex(l.bytes, l.len, r->sha256);
	free(l.bytes);
	if (rc < 0 || parse_recipe(r, root) < 0)
		return -1;
	if (!r->modules_add)
		r->modules_add = strv_of(none);
	if (!r->modules_omit)
		r->modules_omit = strv_of(none);
	if (!r->files)
		r->files = calloc(1, sizeof(*r->files));
	*ret = TAKE_PTR(r);
	return 0;
}

const char *recipe_path(const struct recipe *r) { return r->path; }
const char *recipe_name(const struct recipe *r) { return r->name; }
const char *recipe_version(const struct recipe *r) { return r->version; }
const char *recipe_sha256(const struct recipe *r) { return r->sha256; }
const char *recipe_base_kind(const struct recipe *r) { return r->base->name; }
const char *recipe_kernel_package(const struct recipe *r) { return r->kernel_package; }
char *const *recipe_modules_add(const struct recipe *r) { return r->modules_add; }
char *const *recipe_modules_omit(const struct recipe *r) { return r->modules_omit; }
uint64_t recipe_disk_size(const struct recipe *r) { return r->disk_size; }
const char *recipe_disk_partition_table(const struct recipe *r) { return r->partition_table; }
const char *recipe_disk_filesystem(const struct recipe *r) { return r->filesystem; }
const char *recipe_disk_label(const struct recipe *r) { return r->label; }
char *const *recipe_templates(const struct recipe *r) { return r->templates; }
size_t recipe_n_files(const struct recipe *r) { return r->n_files; }
const struct recipe_file *recipe_file_at(const struct recipe *r, size_t i) { return i < r->n_files ? &r->files[i] : NULL; }
const char *recipe_platform_url(const struct recipe *r) { return r->pers.platform_url; }
const char *recipe_proxy(const struct recipe *r) { return r->pers.proxy; }
const char *recipe_ca(const struct recipe *r) { return r->pers.ca; }
bool recipe_allow_http(const struct recipe *r) { return r->pers.allow_http; }
char *const *recipe_targets(const struct recipe *r) { return r->targets; }
