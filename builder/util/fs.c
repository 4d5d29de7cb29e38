#include "fs.h"

#include "cleanup.h"
#include "err.h"
#include "runs.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile int qvsa_interrupted;

int check_interrupted(void)
{
	if (qvsa_interrupted)
		return err_fail("interrupted by signal");
	return 0;
}

char *xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return s;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

int fs_mkdir_p(const char *path, unsigned mode)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return err_errno(errno, "creating directory '%s'", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return err_errno(errno, "creating directory '%s'", p);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int fs_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return access(path, F_OK) == 0 ? -1 : 0;
}

int fs_read_file(const char *path, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "reading '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_errno(errno, "reading '%s'", path);
	size_t cap = (size_t)st.st_size + 1, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return err_errno(ENOMEM, "reading '%s'", path);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			char *n = realloc(buf, cap);
			if (!n)
				return err_errno(ENOMEM, "reading '%s'", path);
			buf = n;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(errno, "reading '%s'", path);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	if (ret_len)
		*ret_len = len;
	*ret_buf = TAKE_PTR(buf);
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int fs_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	/* A fresh name created with O_EXCL (mkostemp): a planted file or symlink
	 * at a guessable name is never opened, let alone followed. */
	_cleanup_free_ char *dir = fs_dirname(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.XXXXXX", dir, base);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "writing '%s'", path);
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return err_errno(e, "writing '%s'", path);
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return err_errno(e, "writing '%s'", path);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return err_errno(e, "renaming into '%s'", path);
	}
	return 0;
}

int fs_copy_file(const char *src, const char *dst, unsigned mode)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_errno(errno, "reading '%s'", src);
	_cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0)
		return err_errno(errno, "writing '%s'", dst);
	static const char zero[65536];
	_cleanup_free_ char *buf = malloc(sizeof(zero));
	if (!buf)
		return err_errno(ENOMEM, "copying '%s'", src);
	off_t total = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(zero));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(errno, "reading '%s'", src);
		}
		if (r == 0)
			break;
		if ((size_t)r == sizeof(zero) && memcmp(buf, zero, sizeof(zero)) == 0) {
			if (lseek(out, r, SEEK_CUR) < 0)
				return err_errno(errno, "writing '%s'", dst);
		} else if (write_all(out, buf, (size_t)r) < 0) {
			return err_errno(errno, "writing '%s'", dst);
		}
		total += r;
	}
	if (ftruncate(out, total) < 0)
		return err_errno(errno, "writing '%s'", dst);
	return 0;
}

bool fs_exists(const char *path) { return access(path, F_OK) == 0; }

char *fs_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xasprintf("%.*s", (int)(slash - path), path);
}

char *fs_abspath(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	return xasprintf("%s/%s", cwd, path);
}

static void hex_encode(const unsigned char *md, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = 0;
}

void sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, hex);
}

int fs_sha256_file(const char *path, char hex[65], uint64_t *ret_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno, "reading '%s'", path);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return err_fail("hashing '%s': out of memory", path);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	_cleanup_free_ unsigned char *buf = malloc(1 << 20);
	uint64_t total = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = buf ? read(fd, buf, 1 << 20) : -1;
		if (r < 0) {
			if (buf && errno == EINTR)
				continue;
			rc = err_errno(buf ? errno : ENOMEM, "reading '%s'", path);
			break;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		total += (uint64_t)r;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		return rc;
	hex_encode(md, 32, hex);
	if (ret_size)
		*ret_size = total;
	return 0;
}

char *fs_cache_dir(void)
{
	const char *e = getenv("QVSA_CACHE_DIR");
	if (e && *e)
		return fs_abspath(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && *e)
		return xasprintf("%s/qvsa", e);
	e = getenv("HOME");
	return xasprintf("%s/.cache/qvsa", e && *e ? e : "/tmp");
}

/* Registered temporary directories (few at a time; a fixed table is enough). */
static char *tmp_dirs[256];

/* Record dir (newly made, owned by the table) for fs_tmp_cleanup_all and the run registry. */
static char *tmpdir_register(char *dir)
{
	runs_register_path(dir);
	for (size_t i = 0; i < ELEMENTSOF(tmp_dirs); i++) {
		if (!tmp_dirs[i]) {
			tmp_dirs[i] = dir;
			return xstrdup(dir);
		}
	}
	return dir; /* table full: caller still releases it */
}

char *fs_tmpdir_new(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/qvsa-%s-XXXXXX", base && *base ? base : "/var/tmp", tag);
	if (!mkdtemp(tmpl)) {
		err_errno(errno, "creating temporary directory '%s'", tmpl);
		free(tmpl);
		return NULL;
	}
	return tmpdir_register(tmpl);
}

char *fs_tmpdir_new_in(const char *parent, const char *prefix)
{
	char *tmpl = xasprintf("%s/%sXXXXXX", parent, prefix);
	if (!mkdtemp(tmpl)) { /* mode 0700, a name nobody could guess */
		err_errno(errno, "creating a folder in '%s'", parent);
		free(tmpl);
		return NULL;
	}
	return tmpdir_register(tmpl);
}

void fs_tmpdir_release(char *dir)
{
	if (!dir)
		return;
	const char *keep = getenv("QVSA_KEEP_TMP");
	if (!(keep && *keep && strcmp(keep, "0") != 0))
		fs_rm_rf(dir);
	runs_unregister_path(dir);
	for (size_t i = 0; i < ELEMENTSOF(tmp_dirs); i++) {
		if (tmp_dirs[i] && strcmp(tmp_dirs[i], dir) == 0) {
			free(tmp_dirs[i]);
			tmp_dirs[i] = NULL;
			break;
		}
	}
	free(dir);
}

void fs_tmp_cleanup_all(void)
{
	for (size_t i = 0; i < ELEMENTSOF(tmp_dirs); i++) {
		if (tmp_dirs[i]) {
			if (fs_rm_rf(tmp_dirs[i]) == 0)
				runs_unregister_path(tmp_dirs[i]);
			free(tmp_dirs[i]);
			tmp_dirs[i] = NULL;
		}
	}
}
