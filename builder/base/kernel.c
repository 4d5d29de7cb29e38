#include "kernel.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

/* An unpacked kernel package in the cache. */
struct kernel {
	char *release;    /* uname -r */
	char *image;      /* absolute path of boot/vmlinuz-RELEASE */
	char *moddir;     /* absolute path of lib/modules/RELEASE */
	char *package_id; /* "package_version" */
};

void kernel_free(struct kernel *k)
{
	if (!k)
		return;
	free(k->release);
	free(k->image);
	free(k->moddir);
	free(k->package_id);
	free(k);
}

const char *kernel_release(const struct kernel *k) { return k->release; }
const char *kernel_image(const struct kernel *k) { return k->image; }
const char *kernel_moddir(const struct kernel *k) { return k->moddir; }
const char *kernel_package_id(const struct kernel *k) { return k->package_id; }

/* Value of "Field: value" in an apt-cache show record, newly allocated, or NULL. */
static char *control_field(const char *text, const char *field)
{
	size_t flen = strlen(field);
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			const char *v = line + flen + 1;
			while (*v == ' ')
				v++;
			size_t n = strcspn(v, "\n");
			return xasprintf("%.*s", (int)n, v);
		}
	}
	return NULL;
}

/* Follow a metapackage (Depends: linux-image-RELEASE (= V)) to the package
 * that holds the kernel; returns its name and version. */
static int resolve_package(const char *package, char **ret_name, char **ret_version)
{
	_cleanup_free_ char *name = xstrdup(package);
	for (int depth = 0; depth < 3; depth++) {
		const char *argv[] = {"apt-cache", "show", "--no-all-versions", name, NULL};
		_cleanup_free_ char *out = NULL;
		if (proc_run(argv, NULL, &out) < 0 || !*out) {
			err_clear();
			return err_fail("kernel package '%s': not known to apt (run 'apt-get update' "
					"or set QVSA_KERNEL_DEB to a downloaded .deb)", name);
		}
		_cleanup_free_ char *version = control_field(out, "Version");
		_cleanup_free_ char *depends = control_field(out, "Depends");
		if (!version)
			return err_fail("kernel package '%s': apt-cache shows no Version", name);
		/* A real image package ships /boot/vmlinuz; its Depends do not start with linux-image-. */
		if (depends && strncmp(depends, "linux-image-", 12) == 0) {
			size_t n = strcspn(depends, " ,(|");
			free(name);
			name = xasprintf("%.*s", (int)n, depends);
			continue;
		}
		*ret_name = TAKE_PTR(name);
		*ret_version = TAKE_PTR(version);
		return 0;
	}
	return err_fail("kernel package '%s': metapackage chain too deep", package);
}

/* The single RELEASE under DIR/lib/modules. */
static int find_release(const char *dir, char **ret)
{
	_cleanup_free_ char *mods = xasprintf("%s/lib/modules", dir);
	_cleanup_closedir_ DIR *d = opendir(mods);
	if (!d)
		return err_errno(errno, "kernel package: no lib/modules in '%s'", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		*ret = xstrdup(de->d_name);
		return 0;
	}
	return err_fail("kernel package: lib/modules in '%s' is empty", dir);
}

int kernel_from_tree(const char *dir, const char *package_id, struct kernel **ret)
{
	_cleanup_free_ char *release = NULL;
	if (find_release(dir, &release) < 0)
		return -1;
	struct kernel *k = calloc(1, sizeof(*k));
	if (!k)
		return err_errno(ENOMEM, "kernel");
	k->image = xasprintf("%s/boot/vmlinuz-%s", dir, release);
	k->moddir = xasprintf("%s/lib/modules/%s", dir, release);
	k->release = TAKE_PTR(release);
	k->package_id = xstrdup(package_id);
	if (!fs_exists(k->image)) {
		err_fail("kernel package '%s': no %s", package_id, k->image);
		kernel_free(k);
		return -1;
	}
	/* Debian makes modules.dep in the package's postinst, so the unpacked tree lacks it. */
	_cleanup_free_ char *dep = xasprintf("%s/modules.dep", k->moddir);
	if (!fs_exists(dep)) {
		const char *argv[] = {"depmod", "-b", dir, k->release, NULL};
		if (proc_run(argv, NULL, NULL) < 0) {
			err_prefix("kernel package '%s'", package_id);
			kernel_free(k);
			return -1;
		}
	}
	*ret = k;
	return 0;
}

/* Unpack deb into dest (atomically: dest.tmp then rename). */
static int unpack_deb(const char *deb, const char *dest)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp-%d", dest, (int)getpid());
	fs_rm_rf(tmp);
	const char *argv[] = {"dpkg-deb", "-x", deb, tmp, NULL};
	if (proc_run(argv, NULL, NULL) < 0) {
		fs_rm_rf(tmp);
		return -1;
	}
	if (rename(tmp, dest) < 0) {
		int e = errno;
		fs_rm_rf(tmp);
		return err_errno(e, "kernel cache: renaming into '%s'", dest);
	}
	return 0;
}

int kernel_fetch(const char *cache_dir, const char *package, struct kernel **ret)
{
	_cleanup_free_ char *kdir = xasprintf("%s/kernels", cache_dir);
	if (fs_mkdir_p(kdir, 0755) < 0)
		return -1;

	const char *local = getenv("QVSA_KERNEL_DEB");
	if (local && *local) {
		_cleanup_free_ char *base = xstrdup(strrchr(local, '/') ? strrchr(local, '/') + 1 : local);
		char *dot = strstr(base, ".deb");
		if (dot)
			*dot = 0;
		_cleanup_free_ char *dest = xasprintf("%s/%s", kdir, base);
		if (!fs_exists(dest) && unpack_deb(local, dest) < 0)
			return -1;
		return kernel_from_tree(dest, base, ret);
	}

	_cleanup_free_ char *name = NULL, *version = NULL;
	if (resolve_package(package, &name, &version) < 0)
		return -1;
	_cleanup_free_ char *id = xasprintf("%s_%s", name, version);
	_cleanup_free_ char *dest = xasprintf("%s/%s", kdir, id);
	if (fs_exists(dest))
		return kernel_from_tree(dest, id, ret);

	double t0 = log_phase_begin("kernel", "downloading %s %s (once; cached in %s)", name, version, kdir);
	_cleanup_free_ char *dl = xasprintf("%s/download-%d", kdir, (int)getpid());
	if (fs_mkdir_p(dl, 0755) < 0)
		return -1;
	_cleanup_free_ char *spec = xasprintf("%s=%s", name, version);
	const char *argv[] = {"apt-get", "download", "-q", spec, NULL};
	int r = proc_run(argv, dl, NULL);
	if (r == 0) {
		_cleanup_free_ char *deb = NULL;
		_cleanup_closedir_ DIR *d = opendir(dl);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (strstr(de->d_name, ".deb"))
				deb = xasprintf("%s/%s", dl, de->d_name);
		r = deb ? unpack_deb(deb, dest) : err_fail("kernel package '%s': apt-get download produced no .deb", spec);
	}
	fs_rm_rf(dl);
	log_phase_end("kernel", t0, r == 0);
	if (r < 0)
		return -1;
	return kernel_from_tree(dest, id, ret);
}

int kernel_find_cached(const char *cache_dir, const char *package, struct kernel **ret)
{
	_cleanup_free_ char *kdir = xasprintf("%s/kernels", cache_dir);
	_cleanup_free_ char *dest = NULL, *id = NULL;
	const char *local = getenv("QVSA_KERNEL_DEB");
	if (local && *local) {
		id = xstrdup(strrchr(local, '/') ? strrchr(local, '/') + 1 : local);
		char *dot = strstr(id, ".deb");
		if (dot)
			*dot = 0;
	} else {
		_cleanup_free_ char *name = NULL, *version = NULL;
		if (resolve_package(package, &name, &version) < 0)
			return -1;
		id = xasprintf("%s_%s", name, version);
	}
	dest = xasprintf("%s/%s", kdir, id);
	*ret = NULL;
	return fs_exists(dest) ? kernel_from_tree(dest, id, ret) : 0;
}
