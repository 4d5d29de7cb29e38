/* files: in a recipe (see recipe_files.h). A recipe is edited by many
 * hands and built as root: what it adds must not replace what qvsa or the
 * base system owns, and must not bake a personalization code into every
 * image. */
#include "recipe_files.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "strset.h"
#include "yamltree.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

void recipe_files_clear(struct recipe_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->v[i].source);
		free((char *)f->v[i].dest);
		free((char *)f->v[i].at);
	}
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* One reserved place: the path itself, and with tree everything under it;
 * with prefix every path starting with it (/etc/qvsa, /etc/qvsa-release, ...). */
struct reserved {
	const char *path; /* absolute, normalised */
	enum { EXACT, TREE, PREFIX } how;
	const char *why;  /* for the message */
};

static const struct reserved reserved[] = {
	{ "/etc/qvsa", PREFIX, "qvsa writes its own configuration and stamps there" },
	{ "/etc/cloud", TREE, "cloud-init's configuration comes from the target (it picks the datasources)" },
	{ "/var/lib/cloud", TREE, "cloud-init's state and seeds: a seed there is read before the platform's" },
	{ "/boot", TREE, "the kernel, initramfs and boot loader belong to the base system" },
	{ "/lib/modules", TREE, "the kernel modules belong to the base system" },
	{ "/usr/lib/modules", TREE, "the kernel modules belong to the base system" },
	{ "/var/lib/dpkg", TREE, "the package database belongs to the base system" },
	{ "/proc", TREE, "a kernel file system, mounted at boot" },
	{ "/sys", TREE, "a kernel file system, mounted at boot" },
	{ "/dev", TREE, "device nodes belong to the base system" },
	{ "/run", TREE, "a tmpfs at boot: anything written there is hidden" },
	{ "/etc/shadow", EXACT, "the base system's accounts" },
	{ "/etc/gshadow", EXACT, "the base system's accounts" },
	{ "/etc/passwd", EXACT, "the base system's accounts" },
	{ "/etc/group", EXACT, "the base system's accounts" },
	{ "/etc/fstab", EXACT, "qvsa writes it for the disk's label" },
	{ "/etc/os-release", EXACT, "qvsa stamps it with the bootstrap version" },
	{ "/etc/debian_version", EXACT, "the base system stamps it" },
	{ "/usr/sbin/qvsa-agent", EXACT, "the bootstrap agent's binary" },
	{ "/sbin/qvsa-agent", EXACT, "the bootstrap agent's binary" },
	{ "/sbin/init", EXACT, "the base system's init" },
	{ "/bin/busybox", EXACT, "the base system's userland" },
	{ "/init", EXACT, "the base system's init" },
};

/* Directories every image has: a file there would replace the directory. */
static const char *const base_dirs[] = {
	"/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64",
	"/usr/share", "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/etc", "/etc/init.d", "/etc/rc.d",
	"/var", "/var/lib", "/var/log", "/var/tmp", "/root", "/home", "/tmp", "/mnt", "/opt", "/srv", "/media",
};

const char *recipe_reserved_dest(const char *dest)
{
	for (size_t i = 0; i < ELEMENTSOF(base_dirs); i++)
		if (strcmp(dest, base_dirs[i]) == 0)
			return "it is a directory of the base system; name a file inside it";
	for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
		const struct reserved *rs = &reserved[i];
		size_t n = strlen(rs->path);
		if (strncmp(dest, rs->path, n) != 0)
			continue;
		if (dest[n] == 0 || rs->how == PREFIX || (rs->how == TREE && dest[n] == '/'))
			return rs->why;
	}
	return NULL;
}

/* "perscode" matched at p (case ignored)? */
static bool at_word(const char *p, const char *end)
{
	static const char w[] = "perscode";
	if ((size_t)(end - p) < sizeof(w) - 1)
		return false;
	for (size_t i = 0; i < sizeof(w) - 1; i++)
		if (tolower((unsigned char)p[i]) != w[i])
			return false;
	return true;
}

static const char *skip(const char *p, const char *end, const char *chars)
{
	while (p < end && *p && strchr(chars, *p))
		p++;
	return p;
}

/* After "perscode": a separator and a value ("=123", "\": \"123", ": 123"),
 * or, on the same line, an XML value="123" (OVF properties). */
static bool has_value(const char *p, const char *end)
{
	const char *q = skip(p, end, "\"' \t");
	if (q < end && (*q == '=' || *q == ':')) {
		q = skip(q + 1, end, "\"' \t");
		return q < end && isalnum((unsigned char)*q);
	}
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	const char *stop = eol ? eol : end;
	if (stop - p > 256)
		stop = p + 256;
	for (q = p; q + 6 < stop; q++) {
		if (strncasecmp(q, "value=", 6) == 0) {
			const char *v = skip(q + 6, stop, "\"'");
			return v < stop && isalnum((unsigned char)*v);
		}
	}
	return false;
}

bool recipe_find_perscode(const char *buf, size_t len, unsigned *ret_line)
{
	const char *end = buf + len;
	unsigned line = 1;
	for (const char *p = buf; p < end; p++) {
		if (*p == '\n')
			line++;
		else if ((*p == 'p' || *p == 'P') && at_word(p, end) && has_value(p + 8, end)) {
			*ret_line = line;
			return true;
		}
	}
	return false;
}

/* Where a relative source really is, refusing anything outside the folder of
 * the file that names it (by '..' or by a symbolic link). With no_fs only
 * the name is checked. */
static int resolve_source(const struct yamltree *n, const char *path, bool no_fs, char **ret)
{
	const char *s = yamltree_text(n);
	_cleanup_free_ char *dir = fs_dirname(yamltree_file(n));
	char got[YAMLTREE_QUOTE_MAX + 32];
	long depth = 0;

	yamltree_describe(n, got, sizeof(got));
	if (s[0] == '/' || s[0] == 0)
		return yamltree_error(n, "expected a path relative to the recipe's folder for '%s', got %s", path, got);
	for (const char *c = s; *c;) {
		size_t len = strcspn(c, "/");
		if (len == 2 && c[0] == '.' && c[1] == '.')
			depth--;
		else if (len > 0 && !(len == 1 && c[0] == '.'))
			depth++;
		if (depth < 0)
			return yamltree_error(n, "'%s' %s leads outside the recipe's folder '%s'", path, got, dir);
		c += len + (c[len] == '/');
	}
	if (no_fs) {
		*ret = xasprintf("%s/%s", dir, s);
		return 0;
	}
	_cleanup_free_ char *real_dir = realpath(dir, NULL);
	_cleanup_free_ char *full = xasprintf("%s/%s", real_dir ? real_dir : dir, s);
	_cleanup_free_ char *real = realpath(full, NULL);
	struct stat st;
	if (!real_dir || !real || stat(real, &st) < 0)
		return yamltree_error(n, "'%s' %s not found in the recipe's folder '%s'", path, got, dir);
	size_t dl = strcmp(real_dir, "/") == 0 ? 0 : strlen(real_dir);
	if (strncmp(real, real_dir, dl) != 0 || (real[dl] != '/' && real[dl] != 0))
		return yamltree_error(n, "'%s' %s resolves to a file outside the recipe's folder '%s'", path, got, dir);
	if (!S_ISREG(st.st_mode))
		return yamltree_error(n, "'%s' %s is not a regular file", path, got);
	*ret = TAKE_PTR(real);
	return 0;
}

/* The first RECIPE_SCAN_BYTES of a source must hold no personalization code. */
static int scan_source(const struct yamltree *n, const char *path, const char *source)
{
	_cleanup_close_ int fd = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_free_ char *buf = malloc(RECIPE_SCAN_BYTES);
	size_t len = 0;
	char got[YAMLTREE_QUOTE_MAX + 32];
	if (!buf)
		abort();
	if (fd < 0)
		return yamltree_error(n, "'%s' %s cannot be read: %s", path, yamltree_describe(n, got, sizeof(got)),
				      strerror(errno));
	while (len < RECIPE_SCAN_BYTES) {
		if (qvsa_interrupted)
			return err_fail("interrupted");
		ssize_t r = read(fd, buf + len, RECIPE_SCAN_BYTES - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return yamltree_error(n, "'%s' %s cannot be read: %s", path, yamltree_describe(n, got, sizeof(got)),
					      strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	unsigned line;
	if (recipe_find_perscode(buf, len, &line))
		return yamltree_error(n, "'%s' %s holds what looks like a personalization code (line %u of that file); "
				      "a code must never be baked into an image: the platform hands it to each appliance",
				      path, yamltree_describe(n, got, sizeof(got)), line);
	return 0;
}

/* dest as it will be written: absolute, no '.' or '..' components, no
 * trailing '/', repeated '/' collapsed. NULL (and *ret_why) if unusable. */
static char *normalise_dest(const char *s, const char **ret_why)
{
	if (s[0] != '/') {
		*ret_why = "expected an absolute path (starting with '/')";
		return NULL;
	}
	if (s[strlen(s) - 1] == '/') {
		*ret_why = "it ends with '/': name a file, not a directory";
		return NULL;
	}
	_cleanup_free_ char *out = malloc(strlen(s) + 1);
	size_t o = 0;
	if (!out)
		abort();
	for (const char *c = s; *c;) {
		c += strspn(c, "/");
		size_t len = strcspn(c, "/");
		if (len == 0)
			break;
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			*ret_why = "it has a '.' or '..' component: write the path plainly";
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, c, len);
		o += len;
		c += len;
	}
	out[o] = 0;
	return TAKE_PTR(out);
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

static int parse_file(struct recipe_files *fs, struct strset *dests, const struct yamltree *item, size_t i, bool no_fs)
{
	static const char *const keys[] = { "source", "dest", "mode", NULL };
	_cleanup_free_ char *path = xasprintf("files[%zu]", i);
	_cleanup_free_ char *spath = xasprintf("files[%zu].source", i);
	_cleanup_free_ char *dpath = xasprintf("files[%zu].dest", i);
	_cleanup_free_ char *mpath = xasprintf("files[%zu].mode", i);
	struct recipe_file *f = &fs->v[i];
	const struct yamltree *src, *dest, *mode;
	char got[YAMLTREE_QUOTE_MAX + 32];
	const char *s, *why = NULL;

	f->mode = 0644;
	if (yamltree_expect(item, YAMLTREE_MAPPING, path) < 0 || yamltree_check_keys(item, path, keys) < 0 ||
	    yamltree_require(item, path, "source", &src) < 0 || yamltree_require(item, path, "dest", &dest) < 0 ||
	    yamltree_string(src, spath, &s) < 0 || yamltree_string(dest, dpath, &s) < 0)
		return -1;
	/* Where it goes first: a reserved dest is the error to fix, whatever the source holds. */
	_cleanup_free_ char *norm = normalise_dest(s, &why);
	yamltree_describe(dest, got, sizeof(got));
	if (!norm)
		return yamltree_error(dest, "'%s' %s: %s", dpath, got, why);
	if ((why = recipe_reserved_dest(norm)))
		return yamltree_error(dest, "'%s' %s is reserved: %s", dpath, got, why);
	_cleanup_free_ char *source = NULL;
	if (resolve_source(src, spath, no_fs, &source) < 0 || (!no_fs && scan_source(src, spath, source) < 0))
		return -1;
	size_t first = strset_find(dests, norm);
	if (first != SIZE_MAX)
		return yamltree_error(dest, "'%s' %s is already the dest of files[%zu]", dpath, got, first);
	if ((mode = yamltree_get(item, "mode"))) {
		if (yamltree_string(mode, mpath, &s) < 0)
			return -1;
		if (!parse_mode(s, &f->mode) || f->mode > 07777)
			return yamltree_error(mode, "expected an octal mode like 0644 or \"0755\" for '%s', got %s", mpath,
					      yamltree_describe(mode, got, sizeof(got)));
	}
	f->dest = TAKE_PTR(norm);
	f->at = xasprintf("%s:%u:%u", yamltree_file(dest), yamltree_line(dest), yamltree_column(dest));
	f->source = TAKE_PTR(source);
	strset_put(dests, f->dest, i);
	return 0;
}

int recipe_files_parse(const struct yamltree *files, bool no_fs, struct recipe_files *ret)
{
	size_t n = files ? yamltree_count(files) : 0;
	ret->v = calloc(n + 1, sizeof(*ret->v));
	if (!ret->v)
		abort();
	if (!files)
		return 0;
	if (yamltree_expect(files, YAMLTREE_SEQUENCE, "files") < 0)
		return -1;
	_cleanup_strset_ struct strset *dests = strset_new();
	for (size_t i = 0; i < n; i++) {
		int rc = parse_file(ret, dests, yamltree_item(files, i), i, no_fs);
		if (ret->v[i].source) /* counted once complete, so clear frees it */
			ret->n = i + 1;
		if (rc < 0)
			return -1;
	}
	return 0;
}
