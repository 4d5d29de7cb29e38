/* The debian base's root tree: mmdebstrap once per package set, sysprep,
 * then kept under the cache as CACHE/debian/KEY/{tree,packages.txt}, where
 * KEY hashes the suite, mirror, snapshot, package list and this code's own
 * recipe for the tree. A folder appears under its final name only complete
 * (made beside it, renamed), so a killed build leaves no half tree behind. */
#include "debian.h"

#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"
#include "recipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bump when what the tree holds changes for the same package list. */
#define DEBIAN_TREE_RECIPE "qvsa-debian-tree 1"

const char *const debian_packages[] = {
	"systemd", "systemd-sysv", "systemd-resolved", "udev", "dbus", /* init, devices, DNS (networkd's leases) */
	"cloud-init", "isc-dhcp-client",  /* first boot; cloud-init's own DHCP for metadata datasources */
	"open-vm-tools",                  /* vSphere's guestInfo transport */
	"initramfs-tools", "zstd",        /* the distribution's initramfs, zstd-compressed */
	"grub-pc", "e2fsprogs",           /* what importers (virt-v2v) expect: GRUB, fsck of the root */
	"ca-certificates",
	NULL,
};

/* Paths dpkg need not install: the image carries no manuals or translations. */
static const char *const dpkg_excludes[] = {
	"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
	"path-include=/usr/share/locale/locale.alias", NULL,
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted, unique package list: the base's, the kernel, base.packages. */
static char **package_list(const struct recipe *r)
{
	size_t n = 0;
	for (const char *const *p = debian_packages; *p; p++)
		n++;
	for (char *const *p = recipe_base_packages(r); *p; p++)
		n++;
	char **v = calloc(n + 2, sizeof(*v));
	if (!v)
		abort();
	size_t k = 0;
	v[k++] = xstrdup(recipe_kernel_package(r));
	for (const char *const *p = debian_packages; *p; p++)
		v[k++] = xstrdup(*p);
	for (char *const *p = recipe_base_packages(r); *p; p++)
		v[k++] = xstrdup(*p);
	qsort(v, k, sizeof(*v), cmp_str);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && strcmp(v[m - 1], v[i]) == 0)
			free(v[i]);
		else
			v[m++] = v[i];
	}
	v[m] = NULL;
	return v;
}

static char *archive_url(const struct recipe *r)
{
	if (recipe_base_snapshot(r))
		return xasprintf("http://snapshot.debian.org/archive/debian/%s", recipe_base_snapshot(r));
	return xstrdup(recipe_base_mirror(r));
}

/* Whether mmdebstrap's unshare mode can work here: a user namespace mapping root. */
static bool unshare_works(void)
{
	const char *argv[] = {"unshare", "--user", "--map-root-user", "--fork", "true", NULL};
	if (proc_run(argv, NULL, NULL) < 0) {
		err_clear();
		return false;
	}
	return true;
}

/* mmdebstrap into dir/rootfs.tar, then unpacked as root into dir/tree. */
static int make_tree(const struct recipe *r, char *const *pkgs, const char *dir)
{
	bool unshare = unshare_works();
	size_t npkgs = 0;
	while (pkgs[npkgs])
		npkgs++;
	log_notice("base debian: mmdebstrap in %s mode (%s), %s, %zu packages and their dependencies",
		   unshare ? "unshare" : "root", unshare ? "rootless, in a user namespace" : "user namespaces unavailable",
		   recipe_base_suite(r), npkgs);
	_cleanup_free_ char *include = NULL;
	size_t ilen = 0;
	FILE *f = open_memstream(&include, &ilen);
	fputs("--include=", f);
	for (char *const *p = pkgs; *p; p++)
		fprintf(f, "%s%s", p == pkgs ? "" : ",", *p);
	fclose(f);
	_cleanup_free_ char *tar = xasprintf("%s/rootfs.tar", dir);
	_cleanup_free_ char *url = archive_url(r);
	_cleanup_free_ char *mode = xasprintf("--mode=%s", unshare ? "unshare" : "root");
	const char *argv[32] = {"mmdebstrap", mode, "--variant=minbase", include,
				"--aptopt=Acquire::Languages \"none\"", "--quiet"};
	size_t n = 6;
	_cleanup_strv_ char **dpkgopts = calloc(ELEMENTSOF(dpkg_excludes), sizeof(char *));
	if (!dpkgopts)
		abort();
	for (size_t i = 0; dpkg_excludes[i]; i++) {
		dpkgopts[i] = xasprintf("--dpkgopt=%s", dpkg_excludes[i]);
		argv[n++] = dpkgopts[i];
	}
	argv[n++] = recipe_base_suite(r);
	argv[n++] = tar;
	argv[n++] = url;
	argv[n] = NULL;
	double t0 = log_phase_begin("base", "mmdebstrap %s from %s", recipe_base_suite(r), url);
	int rc = proc_run(argv, NULL, NULL);
	if (rc < 0)
		err_prefix("base debian: mmdebstrap");
	_cleanup_free_ char *tree = xasprintf("%s/tree", dir);
	if (rc == 0) {
		log_phase_status("unpacking the root tree");
		rc = fs_mkdir_p(tree, 0755);
	}
	if (rc == 0) {
		const char *x[] = {"tar", "-x", "-p", "--same-owner", "--numeric-owner", "--xattrs",
				   "--xattrs-include=*", "-f", tar, "-C", tree, NULL};
		rc = proc_run(x, NULL, NULL);
	}
	unlink(tar);
	if (rc == 0)
		rc = debian_sysprep(tree);
	log_phase_end("base", t0, rc == 0);
	return rc;
}

/* "name version\n" for every installed package, from the tree's dpkg database. */
static int list_packages(const char *tree, char **ret)
{
	_cleanup_free_ char *admin = xasprintf("--admindir=%s/var/lib/dpkg", tree);
	const char *argv[] = {"dpkg-query", admin, "-W", "-f=${Package} ${Version}\\n", NULL};
	return proc_run(argv, NULL, ret);
}

int debian_tree_get(const struct base_open_params *p, struct base_state *ret)
{
	const struct recipe *r = p->recipe;
	if (geteuid() != 0)
		return err_input("%s: base 'debian' builds as root: its files belong to several users and groups, "
				 "which a rootless build cannot keep", recipe_path(r));
	if (!proc_have("mmdebstrap"))
		return err_input("base 'debian' needs mmdebstrap (apt-get install mmdebstrap)");
	_cleanup_strv_ char **pkgs = package_list(r);
	_cleanup_free_ char *keytext = NULL;
	size_t klen = 0;
	FILE *f = open_memstream(&keytext, &klen);
	fprintf(f, "%s\nsuite %s\nmirror %s\nsnapshot %s\n", DEBIAN_TREE_RECIPE, recipe_base_suite(r),
		recipe_base_mirror(r), recipe_base_snapshot(r) ? recipe_base_snapshot(r) : "-");
	for (const char *const *x = dpkg_excludes; *x; x++)
		fprintf(f, "dpkg %s\n", *x);
	for (char *const *x = pkgs; *x; x++)
		fprintf(f, "package %s\n", *x);
	fclose(f);
	char key[65];
	sha256_hex(keytext, klen, key);
	key[16] = 0;
	_cleanup_free_ char *top = xasprintf("%s/debian", p->cache_dir);
	if (fs_mkdir_p(top, 0755) < 0)
		return -1;
	/* One maker at a time; the others then find its tree. */
	_cleanup_free_ char *lockpath = xasprintf("%s/.lock", top);
	_cleanup_close_ int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return err_errno(errno, "locking '%s'", lockpath);
	_cleanup_free_ char *dir = xasprintf("%s/%s", top, key);
	_cleanup_free_ char *tree = xasprintf("%s/tree", dir);
	if (p->refresh && fs_exists(dir)) {
		log_notice("base debian: --refresh: remaking the cached root tree %s", key);
		_cleanup_free_ char *old = xasprintf("%s/.old-%s", top, key);
		fs_rm_rf(old);
		if (rename(dir, old) < 0)
			return err_errno(errno, "moving '%s' aside", dir);
		fs_rm_rf(old);
	}
	ret->reused = fs_exists(tree);
	if (!ret->reused) {
		/* Leftovers of a killed maker first. */
		_cleanup_closedir_ DIR *d = opendir(top);
		for (struct dirent *de; d && (de = readdir(d));)
			if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".old-", 5) == 0) {
				_cleanup_free_ char *junk = xasprintf("%s/%s", top, de->d_name);
				fs_rm_rf(junk);
			}
		char *tmp = fs_tmpdir_new_in(top, ".tmp-");
		if (!tmp)
			return -1;
		int rc = make_tree(r, pkgs, tmp);
		if (rc == 0 && rename(tmp, dir) < 0)
			rc = err_errno(errno, "renaming '%s'", tmp);
		fs_tmpdir_release(tmp);
		if (rc < 0)
			return -1;
	} else {
		log_notice("base debian: reusing the cached root tree %s (nothing downloaded; --refresh remakes it)", key);
	}
	if (list_packages(tree, &ret->packages) < 0)
		return -1;
	ret->tree = TAKE_PTR(tree);
	ret->key = xstrdup(key);
	return 0;
}

int debian_replace_file(const char *path, const char *data, unsigned mode)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return err_errno(errno, "replacing '%s'", path);
	return fs_write_file_atomic(path, data, strlen(data), mode);
}

/* Remove what dir holds (not dir itself); files only when files_only. */
static int empty_dir(const char *dir, bool files_only)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : err_errno(errno, "reading '%s'", dir);
	for (struct dirent *de; (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (files_only ? empty_dir(p, true) < 0 : fs_rm_rf(p) < 0)
				return -1;
		} else if (unlink(p) < 0) {
			return err_errno(errno, "removing '%s'", p);
		}
	}
	return 0;
}

/* root's password field set to "*" (no password can match), the rest kept. */
static int lock_root(const char *tree)
{
	_cleanup_free_ char *path = xasprintf("%s/etc/shadow", tree);
	_cleanup_free_ char *text = NULL;
	if (fs_read_file(path, &text, NULL) < 0)
		return -1;
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "root:", 5) == 0) {
			const char *rest = strchr(line + 5, ':');
			fprintf(f, "root:*%s\n", rest ? rest : ":::::::");
		} else {
			fprintf(f, "%s\n", line);
		}
	}
	fclose(f);
	if (unlink(path) < 0)
		return err_errno(errno, "replacing '%s'", path);
	return fs_write_file_atomic(path, out, len, 0640);
}

int debian_sysprep(const char *tree)
{
	static const char *const gone[] = {
		"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub", "/etc/ssh/ssh_host_ecdsa_key",
		"/etc/ssh/ssh_host_ecdsa_key.pub", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
		"/var/lib/systemd/random-seed", "/var/lib/systemd/credential.secret", "/var/lib/dbus/machine-id",
		"/var/cache/debconf/config.dat-old", "/var/cache/debconf/templates.dat-old", "/etc/resolv.conf",
		NULL,
	};
	for (const char *const *g = gone; *g; g++) {
		_cleanup_free_ char *p = xasprintf("%s%s", tree, *g);
		if (unlink(p) < 0 && errno != ENOENT)
			return err_errno(errno, "sysprep: removing '%s'", p);
	}
	static const char *const emptied[] = {"/var/lib/apt/lists", "/var/cache/apt", "/var/lib/cloud", "/tmp",
					      "/var/tmp", NULL};
	for (const char *const *e = emptied; *e; e++) {
		_cleanup_free_ char *p = xasprintf("%s%s", tree, *e);
		if (empty_dir(p, false) < 0)
			return -1;
	}
	_cleanup_free_ char *log = xasprintf("%s/var/log", tree);
	if (empty_dir(log, true) < 0)
		return -1;
	_cleanup_free_ char *mid = xasprintf("%s/etc/machine-id", tree);
	_cleanup_free_ char *host = xasprintf("%s/etc/hostname", tree);
	if (debian_replace_file(mid, "", 0444) < 0 || debian_replace_file(host, "localhost\n", 0644) < 0)
		return -1;
	/* systemd-resolved's stub: DNS from DHCP leases, as Debian's cloud images. */
	_cleanup_free_ char *resolv = xasprintf("%s/etc/resolv.conf", tree);
	if (symlink("../run/systemd/resolve/stub-resolv.conf", resolv) < 0)
		return err_errno(errno, "sysprep: linking '%s'", resolv);
	return lock_root(tree);
}
