/* The release manifest: see manifest.h. */
#include "manifest.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"
#include "stamp.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct package {
	char *name;    /* owned */
	char *version; /* owned */
};

/* Every string below is owned by the manifest. */
struct manifest {
	struct manifest_build b;        /* build fields (strings owned, cast from const) */
	char date[21];                  /* build date, ISO-8601 UTC */
	struct package *pkgs;           /* base packages */
	size_t n_pkgs;                  /* entries in pkgs */
	struct manifest_artifact *arts; /* artifacts (strings owned) */
	size_t n_arts;                  /* entries in arts */
};

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static bool is_hex(const char *s, size_t len)
{
	if (!s || strlen(s) != len)
		return false;
	for (; *s; s++)
		if (!(('0' <= *s && *s <= '9') || ('a' <= *s && *s <= 'f')))
			return false;
	return true;
}

/* A non-empty single-line string without '/' (a file or target name). */
static bool is_name(const char *s)
{
	return s && *s && !strpbrk(s, "/\n\r");
}

static int check_build(const struct manifest_build *b, const char *what)
{
	if (!b->appliance || !*b->appliance)
		return err_input("%s: field 'appliance': missing", what);
	if (!b->version || !*b->version)
		return err_input("%s: field 'bootstrap_version': missing", what);
	if (!is_hex(b->build_id, 16))
		return err_input("%s: field 'build_id': expected 16 lowercase hex digits", what);
	if (!is_hex(b->recipe_sha256, 64))
		return err_input("%s: field 'recipe_sha256': expected 64 lowercase hex digits", what);
	if (b->epoch < 0 || b->epoch > 253402300799LL)
		return err_input("%s: field 'source_date_epoch': out of range", what);
	if (!b->kernel || !*b->kernel)
		return err_input("%s: field 'kernel': missing", what);
	if (!b->base_kind || !*b->base_kind)
		return err_input("%s: field 'base.kind': missing", what);
	return 0;
}

static int check_artifact(const struct manifest_artifact *a, const char *what)
{
	if (!is_name(a->target))
		return err_input("%s: field 'target': missing or not a name", what);
	if (!is_name(a->file))
		return err_input("%s: field 'file': missing or not a file name", what);
	if (!is_name(a->format))
		return err_input("%s: field 'format': missing", what);
	if (!a->firmware || (strcmp(a->firmware, "bios") != 0 && strcmp(a->firmware, "uefi") != 0))
		return err_input("%s: field 'firmware': expected bios or uefi", what);
	if (!is_hex(a->build_id, 16))
		return err_input("%s: field 'build_id': expected 16 lowercase hex digits", what);
	if (!is_hex(a->sha256, 64))
		return err_input("%s: field 'sha256': expected 64 lowercase hex digits", what);
	return 0;
}

static char *dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

int manifest_new(const struct manifest_build *b, struct manifest **ret)
{
	if (check_build(b, "manifest") < 0)
		return -1;
	struct manifest *m = calloc(1, sizeof(*m));
	if (!m)
		abort();
	m->b = (struct manifest_build){
		.appliance = xstrdup(b->appliance), .version = xstrdup(b->version), .build_id = xstrdup(b->build_id),
		.recipe_sha256 = xstrdup(b->recipe_sha256), .epoch = b->epoch, .kernel = xstrdup(b->kernel),
		.base_kind = xstrdup(b->base_kind), .base_version = dup_or_empty(b->base_version),
	};
	stamp_format_date(b->epoch, m->date);
	*ret = m;
	return 0;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free((char *)m->b.appliance);
	free((char *)m->b.version);
	free((char *)m->b.build_id);
	free((char *)m->b.recipe_sha256);
	free((char *)m->b.kernel);
	free((char *)m->b.base_kind);
	free((char *)m->b.base_version);
	for (size_t i = 0; i < m->n_pkgs; i++) {
		free(m->pkgs[i].name);
		free(m->pkgs[i].version);
	}
	free(m->pkgs);
	for (size_t i = 0; i < m->n_arts; i++) {
		struct manifest_artifact *a = &m->arts[i];
		free((char *)a->target);
		free((char *)a->file);
		free((char *)a->format);
		free((char *)a->firmware);
		free((char *)a->build_id);
		free((char *)a->sha256);
	}
	free(m->arts);
	free(m);
}

static int package_cmp(const void *a, const void *b)
{
	const struct package *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->version, y->version);
}

void manifest_add_package(struct manifest *m, const char *name, const char *version)
{
	struct package *p = realloc(m->pkgs, (m->n_pkgs + 1) * sizeof(*p));
	if (!p)
		abort();
	m->pkgs = p;
	m->pkgs[m->n_pkgs++] = (struct package){xstrdup(name), xstrdup(version)};
	qsort(m->pkgs, m->n_pkgs, sizeof(*m->pkgs), package_cmp);
}

void manifest_add_host_package(struct manifest *m, const char *name)
{
	const char *argv[] = {"dpkg-query", "-W", "-f=${Version}", name, NULL};
	_cleanup_free_ char *out = NULL;
	if (!proc_have("dpkg-query") || proc_run(argv, NULL, &out) < 0 || !out[0]) {
		err_clear(); /* not a Debian host, or not installed: nothing to record */
		return;
	}
	manifest_add_package(m, name, out);
}

char *manifest_host_debian_version(void)
{
	_cleanup_free_ char *buf = NULL;
	if (!fs_exists("/etc/debian_version") || fs_read_file("/etc/debian_version", &buf, NULL) < 0) {
		err_clear();
		return xstrdup("");
	}
	buf[strcspn(buf, "\n")] = 0;
	return TAKE_PTR(buf);
}

int manifest_add_artifact(struct manifest *m, const struct manifest_artifact *a)
{
	_cleanup_free_ char *what = xasprintf("manifest: artifact '%s'", a->file ? a->file : "?");
	if (check_artifact(a, what) < 0)
		return -1;
	for (size_t i = 0; i < m->n_arts; i++)
		if (strcmp(m->arts[i].file, a->file) == 0)
			return err_input("manifest: artifact '%s' is listed twice", a->file);
	struct manifest_artifact *arts = realloc(m->arts, (m->n_arts + 1) * sizeof(*arts));
	if (!arts)
		abort();
	m->arts = arts;
	m->arts[m->n_arts++] = (struct manifest_artifact){
		.target = xstrdup(a->target), .file = xstrdup(a->file), .format = xstrdup(a->format),
		.firmware = xstrdup(a->firmware), .build_id = xstrdup(a->build_id), .sha256 = xstrdup(a->sha256),
		.size = a->size, .virtual_size = a->virtual_size,
	};
	return 0;
}

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void add_u64(json_object *o, const char *key, uint64_t v)
{
	/* json-c's int64 holds every size qvsa writes (< 2 TiB). */
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

char *manifest_to_json(const struct manifest *m, size_t *ret_len)
{
	/* Key order is insertion order: it is part of the signed bytes. The
	 * first keys are the ones the printf version wrote, in its order. */
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object_object_add(o, "manifest_version", json_object_new_int(MANIFEST_VERSION));
	add_str(o, "appliance", m->b.appliance);
	add_str(o, "bootstrap_version", m->b.version);
	add_str(o, "build_id", m->b.build_id);
	add_str(o, "build_date", m->date);
	json_object_object_add(o, "source_date_epoch", json_object_new_int64(m->b.epoch));
	add_str(o, "recipe_sha256", m->b.recipe_sha256);
	add_str(o, "kernel", m->b.kernel);
	json_object *base = json_object_new_object();
	add_str(base, "kind", m->b.base_kind);
	add_str(base, "version", m->b.base_version);
	json_object *pkgs = json_object_new_array();
	for (size_t i = 0; i < m->n_pkgs; i++) {
		json_object *p = json_object_new_object();
		add_str(p, "name", m->pkgs[i].name);
		add_str(p, "version", m->pkgs[i].version);
		json_object_array_add(pkgs, p);
	}
	json_object_object_add(base, "packages", pkgs);
	json_object_object_add(o, "base", base);
	json_object *arts = json_object_new_array();
	for (size_t i = 0; i < m->n_arts; i++) {
		const struct manifest_artifact *a = &m->arts[i];
		json_object *e = json_object_new_object();
		add_str(e, "target", a->target);
		add_str(e, "file", a->file);
		add_str(e, "format", a->format);
		add_str(e, "firmware", a->firmware);
		add_str(e, "build_id", a->build_id);
		add_u64(e, "size", a->size);
		add_u64(e, "virtual_size", a->virtual_size);
		add_str(e, "sha256", a->sha256);
		json_object_array_add(arts, e);
	}
	json_object_object_add(o, "artifacts", arts);
	const char *s = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *text = xasprintf("%s\n", s);
	if (ret_len)
		*ret_len = strlen(text);
	return text;
}

int manifest_write(const struct manifest *m, const char *path)
{
	size_t len = 0;
	_cleanup_free_ char *text = manifest_to_json(m, &len);
	_cleanup_free_ char *sig = xasprintf("%s.sig", path);
	/* Signature first: a crash in between leaves an unsigned manifest, never a mismatched pair. */
	if (unlink(sig) < 0 && errno != ENOENT)
		return err_errno(errno, "removing the stale signature '%s'", sig);
	return fs_write_file_atomic(path, text, len, 0644);
}

/* Reading: every accessor names the field it could not read. */
static int get_str(json_object *o, const char *key, const char *what, const char **ret)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return err_input("%s: field '%s': missing or not a string", what, key);
	*ret = json_object_get_string(v);
	return 0;
}

static int get_u64(json_object *o, const char *key, const char *what, uint64_t *ret)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return err_input("%s: field '%s': missing or not an integer", what, key);
	errno = 0;
	int64_t n = json_object_get_int64(v);
	if (n < 0 || errno)
		return err_input("%s: field '%s': out of range", what, key);
	*ret = (uint64_t)n;
	return 0;
}

static int parse_artifacts(struct manifest *m, json_object *arts, const char *what)
{
	if (!arts || !json_object_is_type(arts, json_type_array))
		return err_input("%s: field 'artifacts': missing or not a list", what);
	for (size_t i = 0; i < json_object_array_length(arts); i++) {
		json_object *e = json_object_array_get_idx(arts, i);
		_cleanup_free_ char *w = xasprintf("%s: artifacts[%zu]", what, i);
		if (!json_object_is_type(e, json_type_object))
			return err_input("%s: not an object", w);
		struct manifest_artifact a = {0};
		if (get_str(e, "target", w, &a.target) < 0 || get_str(e, "file", w, &a.file) < 0 ||
		    get_str(e, "format", w, &a.format) < 0 || get_str(e, "firmware", w, &a.firmware) < 0 ||
		    get_str(e, "build_id", w, &a.build_id) < 0 || get_u64(e, "size", w, &a.size) < 0 ||
		    get_u64(e, "virtual_size", w, &a.virtual_size) < 0 || get_str(e, "sha256", w, &a.sha256) < 0 ||
		    check_artifact(&a, w) < 0)
			return -1;
		if (manifest_add_artifact(m, &a) < 0) {
			err_prefix("%s", what);
			return -1;
		}
	}
	return 0;
}

static int parse_base(struct manifest *m, json_object *base, const char *what)
{
	json_object *pkgs = NULL;
	if (!json_object_object_get_ex(base, "packages", &pkgs) || !json_object_is_type(pkgs, json_type_array))
		return err_input("%s: field 'base.packages': missing or not a list", what);
	for (size_t i = 0; i < json_object_array_length(pkgs); i++) {
		json_object *p = json_object_array_get_idx(pkgs, i);
		_cleanup_free_ char *w = xasprintf("%s: base.packages[%zu]", what, i);
		const char *name = NULL, *version = NULL;
		if (!json_object_is_type(p, json_type_object))
			return err_input("%s: not an object", w);
		if (get_str(p, "name", w, &name) < 0 || get_str(p, "version", w, &version) < 0)
			return -1;
		manifest_add_package(m, name, version);
	}
	return 0;
}

int manifest_parse(const char *buf, size_t len, const char *what, struct manifest **ret)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	_cleanup_json_ json_object *o = len <= INT32_MAX ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success)
		return err_input("%s: not JSON: %s", what,
				 jerr == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(jerr));
	for (; end < len; end++) /* only white space may follow */
		if (!strchr(" \t\r\n", buf[end]))
			return err_input("%s: not JSON: text after the object", what);
	if (!json_object_is_type(o, json_type_object))
		return err_input("%s: not a qvsa manifest (expected a JSON object)", what);

	json_object *v = NULL;
	if (!json_object_object_get_ex(o, "manifest_version", &v) || !json_object_is_type(v, json_type_int))
		return err_input("%s: not a qvsa manifest (no manifest_version)", what);
	if (json_object_get_int64(v) != MANIFEST_VERSION)
		return err_input("%s: manifest_version %" PRId64 ": this qvsa reads version %d", what,
				 json_object_get_int64(v), MANIFEST_VERSION);
	struct manifest_build b = {0};
	uint64_t epoch = 0;
	const char *date = NULL;
	json_object *base = NULL, *arts = NULL;
	if (get_str(o, "appliance", what, &b.appliance) < 0 || get_str(o, "bootstrap_version", what, &b.version) < 0 ||
	    get_str(o, "build_id", what, &b.build_id) < 0 || get_str(o, "build_date", what, &date) < 0 ||
	    get_u64(o, "source_date_epoch", what, &epoch) < 0 ||
	    get_str(o, "recipe_sha256", what, &b.recipe_sha256) < 0 || get_str(o, "kernel", what, &b.kernel) < 0)
		return -1;
	if (!json_object_object_get_ex(o, "base", &base) || !json_object_is_type(base, json_type_object))
		return err_input("%s: field 'base': missing or not an object", what);
	if (get_str(base, "kind", what, &b.base_kind) < 0 || get_str(base, "version", what, &b.base_version) < 0)
		return -1;
	b.epoch = epoch > INT64_MAX ? -1 : (int64_t)epoch;
	struct manifest *m = NULL;
	if (check_build(&b, what) < 0 || manifest_new(&b, &m) < 0)
		return -1;
	if (strcmp(m->date, date) != 0) {
		err_input("%s: field 'build_date': '%s' is not source_date_epoch %" PRId64 " ('%s')", what, date, b.epoch,
			  m->date);
		manifest_free(m);
		return -1;
	}
	json_object_object_get_ex(o, "artifacts", &arts);
	if (parse_base(m, base, what) < 0 || parse_artifacts(m, arts, what) < 0) {
		manifest_free(m);
		return -1;
	}
	*ret = m;
	return 0;
}

int manifest_load(const char *path, struct manifest **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(path, &buf, &len) < 0)
		return -1;
	_cleanup_free_ char *what = xasprintf("manifest '%s'", path);
	return manifest_parse(buf, len, what, ret);
}

const struct manifest_build *manifest_build(const struct manifest *m) { return &m->b; }
const char *manifest_build_date(const struct manifest *m) { return m->date; }
size_t manifest_n_packages(const struct manifest *m) { return m->n_pkgs; }
size_t manifest_n_artifacts(const struct manifest *m) { return m->n_arts; }

void manifest_package_at(const struct manifest *m, size_t i, const char **ret_name, const char **ret_version)
{
	*ret_name = m->pkgs[i].name;
	*ret_version = m->pkgs[i].version;
}
const struct manifest_artifact *manifest_artifact_at(const struct manifest *m, size_t i) { return &m->arts[i]; }

long manifest_find_sha256(const struct manifest *m, const char *sha256, size_t *pos)
{
	for (size_t i = *pos; i < m->n_arts; i++)
		if (strcasecmp(m->arts[i].sha256, sha256) == 0) {
			*pos = i + 1;
			return (long)i;
		}
	*pos = m->n_arts;
	return -1;
}
