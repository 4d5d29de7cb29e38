#include "pack.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* An archive being written. */
struct pack {
	struct archive *a;  /* libarchive writer */
	char *path;         /* final path */
	char *tmp;          /* temporary path written until pack_close */
	int64_t mtime;      /* mtime of every entry */
	int64_t next_ino;   /* inode numbers for cpio, assigned in order */
	char **dirs;        /* directories already emitted (no leading '/') */
	size_t ndirs;       /* entries in dirs */
};

static int pack_err(struct pack *p, const char *what)
{
	return err_fail("writing archive '%s': %s: %s", p->path, what, archive_error_string(p->a));
}

int pack_open(const char *path, enum pack_format fmt, int64_t mtime, struct pack **ret)
{
	struct pack *p = calloc(1, sizeof(*p));
	if (!p)
		return err_errno(ENOMEM, "writing archive '%s'", path);
	p->path = xstrdup(path);
	p->tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
	p->mtime = mtime;
	p->next_ino = 1;
	p->a = archive_write_new();
	int r;
	if (fmt == PACK_CPIO_GZ) {
		r = archive_write_set_format_cpio_newc(p->a);
		if (r == ARCHIVE_OK)
			r = archive_write_add_filter_gzip(p->a);
		/* No wall-clock time in the gzip header. */
		if (r == ARCHIVE_OK)
			r = archive_write_set_filter_option(p->a, "gzip", "timestamp", NULL);
	} else {
		r = archive_write_set_format_pax_restricted(p->a);
	}
	if (r == ARCHIVE_OK)
		r = archive_write_open_filename(p->a, p->tmp);
	if (r != ARCHIVE_OK) {
		pack_err(p, "open");
		pack_abort(p);
		return -1;
	}
	*ret = p;
	return 0;
}

static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return path;
}

struct archive_entry *pack_entry_new(const char *path, unsigned type, unsigned mode, int64_t mtime, uint64_t size)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		abort();
	archive_entry_set_pathname(e, rel(path));
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode & 07777);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_size(e, (la_int64_t)size);
	return e;
}

static struct archive_entry *entry_new(struct pack *p, const char *path, mode_t type, unsigned mode)
{
	struct archive_entry *e = pack_entry_new(path, type, mode, p->mtime, 0);
	archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
	archive_entry_set_ino64(e, p->next_ino++);
	return e;
}

static int write_entry(struct pack *p, struct archive_entry *e, const void *data, size_t len)
{
	int r = archive_write_header(p->a, e);
	if (r == ARCHIVE_OK && len > 0 && archive_write_data(p->a, data, len) != (la_ssize_t)len)
		r = ARCHIVE_FATAL;
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : pack_err(p, "entry");
}

static int dir_seen(struct pack *p, const char *r)
{
	for (size_t i = 0; i < p->ndirs; i++)
		if (strcmp(p->dirs[i], r) == 0)
			return 1;
	return 0;
}

static int emit_dir(struct pack *p, const char *r, unsigned mode)
{
	if (!*r || dir_seen(p, r))
		return 0;
	char **nd = realloc(p->dirs, (p->ndirs + 1) * sizeof(*nd));
	if (!nd)
		abort();
	p->dirs = nd;
	p->dirs[p->ndirs++] = xstrdup(r);
	return write_entry(p, entry_new(p, r, AE_IFDIR, mode), NULL, 0);
}

/* Emit every missing parent directory of path (mode 0755). */
static int parents(struct pack *p, const char *path)
{
	_cleanup_free_ char *r = xstrdup(rel(path));
	for (char *s = strchr(r, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		int rc = emit_dir(p, r, 0755);
		*s = '/';
		if (rc < 0)
			return -1;
	}
	return 0;
}

int pack_dir(struct pack *p, const char *path, unsigned mode)
{
	if (parents(p, path) < 0)
		return -1;
	return emit_dir(p, rel(path), mode);
}

int pack_data(struct pack *p, const char *path, unsigned mode, const void *data, size_t len)
{
	if (parents(p, path) < 0)
		return -1;
	struct archive_entry *e = entry_new(p, path, AE_IFREG, mode);
	archive_entry_set_size(e, (la_int64_t)len);
	return write_entry(p, e, data, len);
}

/* A host file into the archive in 1 MiB pieces: memory stays flat whatever
 * the file's size (a recipe may ship a payload of gigabytes). */
int pack_file(struct pack *p, const char *path, unsigned mode, const char *host_src)
{
	_cleanup_close_ int fd = open(host_src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(errno, "reading '%s'", host_src);
	if (!S_ISREG(st.st_mode))
		return err_input("'%s' is not a regular file", host_src);
	if (parents(p, path) < 0)
		return -1;
	struct archive_entry *e = entry_new(p, path, AE_IFREG, mode);
	archive_entry_set_size(e, (la_int64_t)st.st_size);
	int r = archive_write_header(p->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return pack_err(p, "entry");
	enum { PIECE = 1 << 20 };
	_cleanup_free_ char *buf = malloc(PIECE);
	if (!buf)
		abort();
	uint64_t left = (uint64_t)st.st_size;
	while (left > 0) {
		ssize_t n = read(fd, buf, left < PIECE ? (size_t)left : PIECE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(errno, "reading '%s'", host_src);
		if (n == 0)
			return err_fail("reading '%s': it shrank while being archived", host_src);
		if (archive_write_data(p->a, buf, (size_t)n) != n)
			return pack_err(p, "entry");
		left -= (uint64_t)n;
	}
	return 0;
}

int pack_symlink(struct pack *p, const char *path, const char *target)
{
	if (parents(p, path) < 0)
		return -1;
	struct archive_entry *e = entry_new(p, path, AE_IFLNK, 0777);
	archive_entry_set_symlink(e, target);
	return write_entry(p, e, NULL, 0);
}

int pack_chardev(struct pack *p, const char *path, unsigned mode, unsigned major, unsigned minor)
{
	if (parents(p, path) < 0)
		return -1;
	struct archive_entry *e = entry_new(p, path, AE_IFCHR, mode);
	archive_entry_set_rdev(e, makedev(major, minor));
	return write_entry(p, e, NULL, 0);
}

static int no_dots(const struct dirent *de) { return de->d_name[0] != '.' || (de->d_name[1] && strcmp(de->d_name, "..") != 0); }

int pack_tree(struct pack *p, const char *dest, const char *host_dir)
{
	struct dirent **names = NULL;
	int n = scandir(host_dir, &names, no_dots, alphasort);
	if (n < 0)
		return err_errno(errno, "reading template directory '%s'", host_dir);
	int rc = 0;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", host_dir, names[i]->d_name);
		_cleanup_free_ char *dst = xasprintf("%s/%s", strcmp(dest, "/") == 0 ? "" : dest, names[i]->d_name);
		struct stat st;
		if (rc == 0 && lstat(src, &st) < 0)
			rc = err_errno(errno, "reading '%s'", src);
		if (rc == 0) {
			if (S_ISDIR(st.st_mode)) {
				rc = pack_dir(p, dst, st.st_mode & 07777);
				if (rc == 0)
					rc = pack_tree(p, dst, src);
			} else if (S_ISLNK(st.st_mode)) {
				char target[4096];
				ssize_t l = readlink(src, target, sizeof(target) - 1);
				if (l < 0)
					rc = err_errno(errno, "reading link '%s'", src);
				else {
					target[l] = 0;
					rc = pack_symlink(p, dst, target);
				}
			} else if (S_ISREG(st.st_mode)) {
				rc = pack_file(p, dst, st.st_mode & 07777, src);
			} else {
				rc = err_fail("template '%s': unsupported file type", src);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static void pack_free(struct pack *p)
{
	for (size_t i = 0; i < p->ndirs; i++)
		free(p->dirs[i]);
	free(p->dirs);
	free(p->path);
	free(p->tmp);
	free(p);
}

int pack_close(struct pack *p)
{
	int rc = 0;
	if (archive_write_close(p->a) != ARCHIVE_OK)
		rc = pack_err(p, "close");
	archive_write_free(p->a);
	if (rc == 0 && rename(p->tmp, p->path) < 0)
		rc = err_errno(errno, "renaming into '%s'", p->path);
	if (rc < 0)
		unlink(p->tmp);
	pack_free(p);
	return rc;
}

void pack_abort(struct pack *p)
{
	if (!p)
		return;
	archive_write_free(p->a);
	unlink(p->tmp);
	pack_free(p);
}
