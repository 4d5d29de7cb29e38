/* Target data files (targets/NAME.yaml, schema in docs/targets.md), read with
 * the same yamltree and error style as recipes. */
#include "target.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "platform.h"
#include "yamltree.h"

#include <dirent.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

struct target {
	char *name;                    /* file's basename without .yaml */
	char *description;             /* one line for humans */
	struct target_artifact artifacts[TARGET_MAX_ARTIFACTS]; /* n_artifacts; strings owned */
	size_t n_artifacts;            /* entries in artifacts, at least 1 once loaded */
	const char *firmware;          /* static: "bios" | "uefi" */
	uint64_t size_alignment;       /* bytes, a power of two >= 512 */
	char **modules;                /* strv, never NULL */
	char **datasources;            /* strv, never NULL */
	const char *machine;           /* static: "pc" | "q35" */
	const char *disk_bus;          /* static: libvirt disk bus */
	char *disk_controller;         /* scsi controller model, or NULL */
	const char *nic_model;         /* static: libvirt NIC model */
	const char *platform;          /* static (the platform table's): verify.platform */
};

void target_free(struct target *t)
{
	if (!t)
		return;
	for (size_t a = 0; a < t->n_artifacts; a++) {
		struct target_artifact *art = &t->artifacts[a];
		for (size_t i = 0; i < art->n_options; i++) {
			free((char *)art->options[i].key);
			free((char *)art->options[i].value);
		}
		free((void *)art->options);
		free((char *)art->writer);
		free((char *)art->extension);
	}
	cleanup_strvp(&t->modules);
	cleanup_strvp(&t->datasources);
	free(t->name);
	free(t->description);
	free(t->disk_controller);
	free(t);
}

static void target_freep(struct target **t) { target_free(*t); }

static bool only(const char *s, const char *chars) { return s[0] && s[strspn(s, chars)] == 0; }
static bool is_word(const char *s) { return only(s, "abcdefghijklmnopqrstuvwxyz0123456789-"); }
static bool is_module(const char *s) { return only(s, "abcdefghijklmnopqrstuvwxyz0123456789_-"); }
/* [a-z0-9]+ parts joined by single dots: "qcow2", "tar.gz". */
static bool is_extension(const char *s)
{
	return only(s, "abcdefghijklmnopqrstuvwxyz0123456789.") && s[0] != '.' && s[strlen(s) - 1] != '.' &&
	       !strstr(s, "..");
}

/* cloud-init's datasources an image may list (datasource_list), spelled as
 * cloud-init spells them. */
static const char *const datasource_names[] = {
	"NoCloud", "ConfigDrive", "OpenStack", "Ec2", "GCE", "Oracle", "Azure", "OVF", "VMware", "None", NULL,
};

/* Which datasources let the agent use a channel (docs/channels.md): a
 * channel is used only when one of them is listed. "console" needs none. */
static const struct {
	const char *channel;        /* agent channel, as in platform_ops.channel */
	const char *datasources[3]; /* any one of these enables it; NULL-terminated */
} channel_datasources[] = {
	{ "nocloud", { "NoCloud" } },   { "configdrive", { "ConfigDrive" } }, { "openstack", { "OpenStack" } },
	{ "ec2", { "Ec2" } },           { "gce", { "GCE" } },                 { "oci", { "Oracle" } },
	{ "azure", { "Azure" } },       { "vmware", { "OVF", "VMware" } },    { "console", { NULL } },
};

static bool is_datasource(const char *s)
{
	for (const char *const *d = datasource_names; *d; d++)
		if (strcmp(*d, s) == 0)
			return true;
	return false;
}

/* Every datasources: entry must be one cloud-init knows: suggest the closest. */
static int check_datasources(const struct yamltree *list)
{
	for (size_t i = 0; i < yamltree_count(list); i++) {
		const struct yamltree *n = yamltree_item(list, i);
		const char *s = yamltree_text(n);
		if (!s || is_datasource(s))
			continue;
		char got[256];
		const char *hint = yamltree_suggest(s, datasource_names);
		yamltree_describe(n, got, sizeof(got));
		if (hint)
			return yamltree_error(n, "unknown cloud-init datasource %s in 'datasources'; did you mean '%s'?", got,
					      hint);
		return yamltree_error(n, "unknown cloud-init datasource %s in 'datasources' (known: NoCloud, ConfigDrive, "
				      "OpenStack, Ec2, GCE, Oracle, Azure, OVF, VMware, None)", got);
	}
	return 0;
}

static bool strv_has(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* verify.platform: a row of the platform table whose channel the target's
 * datasources enable, so lint refuses what verify would fail. */
static int parse_platform(struct target *t, const struct yamltree *n)
{
	const char *s;
	char got[256];
	if (yamltree_string(n, "verify.platform", &s) < 0)
		return -1;
	const struct platform_ops *ops = platform_find(s);
	if (!ops)
		return yamltree_error(n, "unknown platform %s for 'verify.platform' (one of: %s)",
				      yamltree_describe(n, got, sizeof(got)), platform_names());
	for (size_t i = 0; i < ELEMENTSOF(channel_datasources); i++) {
		if (strcmp(channel_datasources[i].channel, ops->channel) != 0)
			continue;
		const char *const *need = channel_datasources[i].datasources;
		if (!need[0])
			break;
		for (size_t k = 0; need[k]; k++)
			if (strv_has(t->datasources, need[k]))
				goto ok;
		return yamltree_error(n, "platform '%s' delivers the code through the '%s' channel, which the agent uses "
				      "only when 'datasources' lists %s%s%s", ops->name, ops->channel, need[0],
				      need[1] ? " or " : "", need[1] ? need[1] : "");
	}
ok:
	t->platform = ops->name;
	return 0;
}

/* A non-null scalar matching valid, copied into *ret. */
static int get_word(const struct yamltree *n, const char *path, bool (*valid)(const char *), const char *expected,
		    char **ret)
{
	const char *s;
	char got[256];
	if (yamltree_string(n, path, &s) < 0)
		return -1;
	if (valid && !valid(s))
		return yamltree_error(n, "expected %s for '%s', got %s", expected, path, yamltree_describe(n, got, sizeof(got)));
	*ret = xstrdup(s);
	return 0;
}

static int parse_one_artifact(struct target_artifact *art, const struct yamltree *a, const char *where)
{
	static const char *const keys[] = { "writer", "extension", "options", NULL };
	const struct yamltree *n, *opts;
	char *writer = NULL, *extension = NULL;
	_cleanup_free_ char *wpath = xasprintf("%s.writer", where), *epath = xasprintf("%s.extension", where);

	if (yamltree_expect(a, YAMLTREE_MAPPING, where) < 0 || yamltree_check_keys(a, where, keys) < 0 ||
	    yamltree_require(a, where, "writer", &n) < 0 ||
	    get_word(n, wpath, is_module, "a writer name ([a-z0-9_-]+)", &writer) < 0)
		return -1;
	art->writer = writer;
	if (yamltree_require(a, where, "extension", &n) < 0 ||
	    get_word(n, epath, is_extension, "an extension without the leading dot ([a-z0-9]+ parts joined by dots)", &extension) < 0)
		return -1;
	art->extension = extension;
	struct target_option *options = NULL;
	if (!(opts = yamltree_get(a, "options"))) {
		art->options = calloc(1, sizeof(*art->options));
		if (!art->options)
			abort();
		return 0;
	}
	_cleanup_free_ char *opath = xasprintf("%s.options", where);
	if (yamltree_expect(opts, YAMLTREE_MAPPING, opath) < 0)
		return -1;
	options = calloc(yamltree_count(opts) + 1, sizeof(*options));
	if (!options)
		abort();
	art->options = options;
	for (size_t i = 0; i < yamltree_count(opts); i++) {
		const char *key = yamltree_text(yamltree_key(opts, i)), *value;
		_cleanup_free_ char *path = xasprintf("%s.options.%s", where, key);
		if (yamltree_string(yamltree_value(opts, i), path, &value) < 0)
			return -1;
		options[i].key = xstrdup(key);
		options[i].value = xstrdup(value);
		art->n_options = i + 1;
	}
	return 0;
}

/* artifact: one mapping, or a list of them (a target shipping several files, e.g. aws). */
static int parse_artifact(struct target *t, const struct yamltree *a)
{
	if (yamltree_kind(a) != YAMLTREE_SEQUENCE) {
		t->n_artifacts = 1;
		return parse_one_artifact(&t->artifacts[0], a, "artifact");
	}
	size_t n = yamltree_count(a);
	if (n == 0 || n > TARGET_MAX_ARTIFACTS)
		return yamltree_error(a, "expected 1 to %d artifacts for 'artifact', got %zu", TARGET_MAX_ARTIFACTS, n);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *where = xasprintf("artifact[%zu]", i);
		t->n_artifacts = i + 1;
		if (parse_one_artifact(&t->artifacts[i], yamltree_item(a, i), where) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->artifacts[j].extension, t->artifacts[i].extension) == 0)
				return yamltree_error(yamltree_item(a, i),
						      "duplicate extension '%s' in 'artifact' (each file needs its own)",
						      t->artifacts[i].extension);
	}
	return 0;
}

static int parse_verify(struct target *t, const struct yamltree *v)
{
	static const char *const keys[] = { "platform", "machine", "disk_bus", "disk_controller", "nic_model", NULL };
	static const char *const machines[] = { "pc", "q35", NULL };
	static const char *const buses[] = { "virtio", "scsi", "sata", "ide", "nvme", NULL };
	static const char *const nics[] = { "virtio", "vmxnet3", "e1000", "e1000e", "rtl8139", NULL };
	const struct yamltree *n;

	t->machine = machines[0];
	t->disk_bus = buses[0];
	t->nic_model = nics[0];
	if (yamltree_expect(v, YAMLTREE_MAPPING, "verify") < 0 || yamltree_check_keys(v, "verify", keys) < 0 ||
	    yamltree_require(v, "verify", "platform", &n) < 0 || parse_platform(t, n) < 0)
		return -1;
	if ((n = yamltree_get(v, "machine")) && yamltree_enum(n, "verify.machine", machines, &t->machine) < 0)
		return -1;
	if ((n = yamltree_get(v, "disk_bus")) && yamltree_enum(n, "verify.disk_bus", buses, &t->disk_bus) < 0)
		return -1;
	if ((n = yamltree_get(v, "nic_model")) && yamltree_enum(n, "verify.nic_model", nics, &t->nic_model) < 0)
		return -1;
	if (!(n = yamltree_get(v, "disk_controller")))
		return 0;
	/* libvirt only takes a controller model for the SCSI bus. */
	if (strcmp(t->disk_bus, "scsi") != 0)
		return yamltree_error(n, "'verify.disk_controller' needs disk_bus scsi, but disk_bus is '%s'", t->disk_bus);
	return get_word(n, "verify.disk_controller", is_word, "a controller model ([a-z0-9-]+)", &t->disk_controller);
}

static int parse_target(struct target *t, const struct yamltree *root, const char *stem)
{
	static const char *const keys[] = { "name", "description", "artifact", "firmware", "size_alignment",
					    "modules", "datasources", "verify", NULL };
	static const char *const firmwares[] = { "bios", "uefi", NULL };
	static const struct yamltree_strv_rules module_rules = {
		.valid = is_module, .expected = "a module name ([a-z0-9_-]+)", .unique = true,
	};
	static const struct yamltree_strv_rules datasource_rules = {
		.valid = NULL, .expected = NULL, .unique = true, .nonempty = true, /* names: check_datasources */
	};
	const struct yamltree *n;
	char got[256];

	if (yamltree_expect(root, YAMLTREE_MAPPING, "") < 0 || yamltree_check_keys(root, "", keys) < 0 ||
	    yamltree_require(root, "", "name", &n) < 0 || get_word(n, "name", NULL, NULL, &t->name) < 0)
		return -1;
	if (strcmp(t->name, stem) != 0)
		return yamltree_error(n, "expected '%s' (the file's name without .yaml) for 'name', got %s", stem,
				      yamltree_describe(n, got, sizeof(got)));
	if (yamltree_require(root, "", "description", &n) < 0 ||
	    get_word(n, "description", NULL, NULL, &t->description) < 0 ||
	    yamltree_require(root, "", "artifact", &n) < 0 || parse_artifact(t, n) < 0)
		return -1;
	t->firmware = firmwares[0];
	if ((n = yamltree_get(root, "firmware")) && yamltree_enum(n, "firmware", firmwares, &t->firmware) < 0)
		return -1;
	t->size_alignment = 512;
	if ((n = yamltree_get(root, "size_alignment"))) {
		if (yamltree_size(n, "size_alignment", &t->size_alignment) < 0)
			return -1;
		if (t->size_alignment < 512 || (t->size_alignment & (t->size_alignment - 1)))
			return yamltree_error(n, "expected a power of two of at least 512 for 'size_alignment', got %s",
					      yamltree_describe(n, got, sizeof(got)));
	}
	if ((n = yamltree_get(root, "modules")) && yamltree_strv(n, "modules", &module_rules, &t->modules) < 0)
		return -1;
	if (yamltree_require(root, "", "datasources", &n) < 0 ||
	    yamltree_strv(n, "datasources", &datasource_rules, &t->datasources) < 0 || check_datasources(n) < 0 ||
	    yamltree_require(root, "", "verify", &n) < 0)
		return -1;
	return parse_verify(t, n);
}

int target_load(const char *path, struct target **ret)
{
	_cleanup_(target_freep) struct target *t = calloc(1, sizeof(*t));
	_cleanup_yamltree_ struct yamltree *root = NULL;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t len = strlen(base);
	_cleanup_free_ char *stem = len > 5 && strcmp(base + len - 5, ".yaml") == 0 ? xasprintf("%.*s", (int)(len - 5), base)
										    : xstrdup(base);

	if (!t)
		abort();
	if (yamltree_load_file(path, &root) < 0 || parse_target(t, root, stem) < 0)
		return -1;
	if (!t->modules)
		t->modules = calloc(1, sizeof(*t->modules));
	if (!t->modules)
		abort();
	*ret = TAKE_PTR(t);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int target_list(const char *datadir, char ***ret_names)
{
	_cleanup_free_ char *dir = xasprintf("%s/targets", datadir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_strv_ char **names = calloc(1, sizeof(*names));
	size_t n = 0;
	struct dirent *de;

	if (!names)
		abort();
	if (!d)
		return err_errno(errno, "listing targets in '%s'", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		_cleanup_free_ char *stem = xasprintf("%.*s", (int)(len - 5), de->d_name);
		_cleanup_free_ char *file = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		/* Only files target_find could load: regular, with a valid name. */
		if (!is_word(stem) || stat(file, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		char **grown = realloc(names, (n + 2) * sizeof(*names));
		if (!grown)
			abort();
		names = grown;
		names[n++] = TAKE_PTR(stem);
		names[n] = NULL;
	}
	qsort(names, n, sizeof(*names), compare_names);
	*ret_names = TAKE_PTR(names);
	return 0;
}

int target_find(const char *datadir, const char *name, struct target **ret)
{
	_cleanup_free_ char *path = xasprintf("%s/targets/%s.yaml", datadir, name);
	_cleanup_strv_ char **names = NULL;
	char esc[128];

	/* The name check also keeps "../x" from reaching outside targets/. */
	if (is_word(name) && fs_exists(path))
		return target_load(path, ret);
	if (target_list(datadir, &names) < 0)
		return -1;
	yamltree_escape(name, esc, sizeof(esc));
	const char *hint = yamltree_suggest(name, (const char *const *)names);
	if (hint)
		return err_input("unknown target '%s'; did you mean '%s'? (qvsa targets lists them)", esc, hint);
	return err_input("unknown target '%s' (qvsa targets lists them)", esc);
}

const char *target_name(const struct target *t) { return t->name; }
const char *target_description(const struct target *t) { return t->description; }
const char *target_writer(const struct target *t) { return t->artifacts[0].writer; }
const char *target_extension(const struct target *t) { return t->artifacts[0].extension; }
size_t target_n_options(const struct target *t) { return t->artifacts[0].n_options; }
size_t target_n_artifacts(const struct target *t) { return t->n_artifacts; }
const struct target_artifact *target_artifact_at(const struct target *t, size_t i)
{
	return i < t->n_artifacts ? &t->artifacts[i] : NULL;
}

const char *target_artifact_option(const struct target_artifact *a, const char *key)
{
	for (size_t i = 0; i < a->n_options; i++)
		if (strcmp(a->options[i].key, key) == 0)
			return a->options[i].value;
	return NULL;
}

const struct target_option *target_option_at(const struct target *t, size_t i)
{
	return i < t->artifacts[0].n_options ? &t->artifacts[0].options[i] : NULL;
}

const char *target_option(const struct target *t, const char *key)
{
	return target_artifact_option(&t->artifacts[0], key);
}

const char *target_firmware(const struct target *t) { return t->firmware; }
uint64_t target_size_alignment(const struct target *t) { return t->size_alignment; }
char *const *target_modules(const struct target *t) { return t->modules; }
char *const *target_datasources(const struct target *t) { return t->datasources; }
const char *target_verify_machine(const struct target *t) { return t->machine; }
const char *target_verify_disk_bus(const struct target *t) { return t->disk_bus; }
const char *target_verify_disk_controller(const struct target *t) { return t->disk_controller; }
const char *target_verify_nic_model(const struct target *t) { return t->nic_model; }
const char *target_verify_platform(const struct target *t) { return t->platform; }
