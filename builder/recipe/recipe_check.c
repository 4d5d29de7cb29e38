/* What a recipe names, checked against the data directory and the
 * machine (see recipe_check.h). Errors carry the place recipe_where gives. */
#include "recipe_check.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "kernel.h"
#include "modules.h"
#include "proc.h"
#include "recipe.h"
#include "target.h"
#include "writer.h"
#include "yamltree.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool in_strv(char *const *v, const char *s)
{
	for (; *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static int check_targets(const struct recipe *r, const char *datadir)
{
	_cleanup_strv_ char **names = NULL;
	char esc[YAMLTREE_QUOTE_MAX + 8];
	if (target_list(datadir, &names) < 0)
		return -1;
	for (size_t i = 0; recipe_targets(r)[i]; i++) {
		const char *t = recipe_targets(r)[i];
		const char *at = recipe_where(r, RECIPE_AT_TARGET, i);
		if (!in_strv(names, t)) {
			const char *hint = yamltree_suggest(t, (const char *const *)names);
			yamltree_escape(t, esc, sizeof(esc));
			if (hint)
				return err_input("%s: unknown target '%s'; did you mean '%s'? (qvsa targets lists them)", at,
						 esc, hint);
			return err_input("%s: unknown target '%s' (qvsa targets lists them)", at, esc);
		}
		/* A bad data file reports its own place. */
		struct target *tg = NULL;
		if (target_find(datadir, t, &tg) < 0)
			return -1;
		int rc = 0;
		for (size_t k = 0; rc == 0 && k < target_n_artifacts(tg); k++) {
			const char *w = target_artifact_at(tg, k)->writer;
			if (!writer_find(w))
				rc = err_input("%s: target '%s': writer '%s' is not known to this qvsa", at, t, w);
		}
		target_free(tg);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* A template's rootfs directory would be replaced by a file of the same name. */
static int check_dest_dirs(const struct recipe *r, const char *rootfs, const char *tpl)
{
	for (size_t i = 0; i < recipe_n_files(r); i++) {
		const struct recipe_file *f = recipe_file_at(r, i);
		_cleanup_free_ char *p = xasprintf("%s%s", rootfs, f->dest);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			return err_input("%s: 'files[%zu].dest' is reserved: template '%s' makes it a directory; "
					 "name a file inside it", f->at, i, tpl);
	}
	return 0;
}

static int check_templates(const struct recipe *r, const char *datadir)
{
	char esc[YAMLTREE_QUOTE_MAX + 8];
	for (size_t i = 0; recipe_templates(r)[i]; i++) {
		const char *t = recipe_templates(r)[i];
		_cleanup_free_ char *dir = xasprintf("%s/templates/%s", datadir, t);
		_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
		struct stat st;
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			return err_input("%s: unknown template '%s' (no folder %s/templates/%s)",
					 recipe_where(r, RECIPE_AT_TEMPLATE, i), yamltree_escape(t, esc, sizeof(esc)), datadir,
					 esc);
		if (check_dest_dirs(r, rootfs, t) < 0)
			return -1;
	}
	return 0;
}

static int check_modules(const struct recipe *r, const struct kernel *k, const struct modindex *mi,
			 enum recipe_field field, char *const *mods, const char *key)
{
	for (size_t i = 0; mods[i]; i++) {
		char *const one[] = { mods[i], NULL };
		_cleanup_strv_ char **paths = NULL;
		if (qvsa_interrupted)
			return err_fail("interrupted");
		if (modindex_resolve(mi, one, key, &paths) < 0) {
			err_clear();
			return err_input("%s: unknown kernel module '%s' in '%s[%zu]': kernel %s (package %s) has no such "
					 "module", recipe_where(r, field, i), mods[i], key, i, kernel_release(k),
					 kernel_package_id(k));
		}
	}
	return 0;
}

/* Offline: apt's package lists say whether the package exists; the
 * modules can be checked only once the kernel is in the cache. */
static int check_kernel(const struct recipe *r, const char *cache_dir)
{
	struct kernel *k = NULL;
	const char *pkg = recipe_kernel_package(r);
	/* Asking apt costs about a second: only when there is something to learn. */
	bool modules = recipe_modules_add(r)[0] || recipe_modules_omit(r)[0];
	if (!modules && strcmp(pkg, "linux-image-amd64") == 0)
		return 0;
	if (!getenv("QVSA_KERNEL_DEB") && !proc_have("apt-cache"))
		return 0;
	if (kernel_find_cached(cache_dir, pkg, &k) < 0) {
		if (qvsa_interrupted)
			return -1;
		err_clear();
		/* Without package lists apt knows nothing at all: then it cannot be checked here. */
		struct kernel *probe = NULL;
		if (kernel_find_cached(cache_dir, "linux-image-amd64", &probe) < 0) {
			err_clear();
			return 0;
		}
		kernel_free(probe);
		return err_input("%s: unknown kernel package '%s' for 'base.kernel_package': apt does not know it "
				 "(a Debian package name such as linux-image-amd64 or linux-image-cloud-amd64)",
				 recipe_where(r, RECIPE_AT_KERNEL_PACKAGE, 0), pkg);
	}
	if (!k)
		return 0;
	struct modindex *mi = NULL;
	int rc = modindex_load(kernel_moddir(k), &mi);
	if (rc == 0)
		rc = check_modules(r, k, mi, RECIPE_AT_MODULE_ADD, recipe_modules_add(r), "base.modules.add");
	if (rc == 0)
		rc = check_modules(r, k, mi, RECIPE_AT_MODULE_OMIT, recipe_modules_omit(r), "base.modules.omit");
	modindex_free(mi);
	kernel_free(k);
	return rc;
}

int recipe_check(const struct recipe *r, const char *datadir, const char *cache_dir)
{
	if (check_targets(r, datadir) < 0 || check_templates(r, datadir) < 0 || check_interrupted() < 0)
		return -1;
	if (cache_dir && check_kernel(r, cache_dir) < 0)
		return -1;
	return check_interrupted();
}
