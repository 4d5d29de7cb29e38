/* The out dir of one build: see build_out.h. */
#include "build_out.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME ".qvsa.lock"
#define STAGE_PREFIX ".qvsa-tmp-"

struct build_out {
	char *out;      /* OUT as given */
	char *version;  /* "qVSA-X.Y" */
	char *final;    /* OUT/VERSION: the published set */
	char *stage;    /* OUT/.qvsa-tmp-XXXXXX (registered temp folder); after an exchange, the old set */
	int lock_fd;    /* OUT/.qvsa.lock, flocked; -1 when not held */
	bool published; /* the stage took the version folder's place */
};

void build_test_pause(const char *phase)
{
	const char *at = getenv("QVSA_TEST_PAUSE_AT");
	if (!at || strcmp(at, phase) != 0)
		return;
	log_notice("test hook: paused at %s", phase);
	for (int i = 0; i < 600 && !qvsa_interrupted; i++)
		usleep(100 * 1000);
}

/* Lock OUT: held until the process ends (or build_out_free). */
static int lock_out(struct build_out *b)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", b->out, LOCK_NAME);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return err_input("out dir '%s' is not writable: cannot create its lock file '%s': %s", b->out,
				 LOCK_NAME, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return err_errno(errno, "locking the out dir '%s'", b->out);
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
		return err_fail("out dir '%s' is in use by another qvsa build (pid %ld); wait for it to finish or "
				"build into another --out",
				b->out, pid);
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		return err_errno(errno, "writing the lock file of '%s'", b->out);
	b->lock_fd = TAKE_FD(fd);
	return 0;
}

/* A temp name of an older qvsa (".qVSA-1.0-kvm.qcow2.tmp-PID",
 * "manifest.json.tmp-PID"): its pid, or 0 when name is not one. */
static long legacy_tmp_pid(const char *name)
{
	const char *t = strstr(name, ".tmp-");
	if (!t)
		return 0;
	char *end;
	long pid = strtol(t + 5, &end, 10);
	return *end == 0 && pid > 0 ? pid : 0;
}

/* What killed runs left in OUT: stage folders (all stale: we hold the
 * lock), and older temp names in version folders whose pid is gone. */
static void clean_out(const struct build_out *b, FILE *removed)
{
	_cleanup_closedir_ DIR *d = opendir(b->out);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, LOCK_NAME) == 0)
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", b->out, e->d_name);
		struct stat st;
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (strncmp(e->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0) {
			if (fs_rm_rf(path) == 0)
				fprintf(removed, "%s%s", ftell(removed) ? " " : "", path);
			continue;
		}
		_cleanup_closedir_ DIR *v = opendir(path);
		for (struct dirent *f; v && (f = readdir(v));) {
			long pid = legacy_tmp_pid(f->d_name);
			if (pid == 0 || runs_owner_alive(pid, 0))
				continue;
			_cleanup_free_ char *file = xasprintf("%s/%s", path, f->d_name);
			if (lstat(file, &st) == 0 && !S_ISDIR(st.st_mode) && unlink(file) == 0)
				fprintf(removed, "%s%s", ftell(removed) ? " " : "", file);
		}
	}
}

/* One line naming what was removed (the first few, then a count). */
static void say_removed(const char *list)
{
	if (!*list)
		return;
	size_t n = 1;
	const char *cut = NULL;
	for (const char *p = list; *p; p++)
		if (*p == ' ' && ++n == 6)
			cut = p;
	if (cut)
		log_notice("removed what killed runs left behind: %.*s and %zu more", (int)(cut - list), list, n - 5);
	else
		log_notice("removed what killed runs left behind: %s", list);
}

/* The recorded error, as bad input (a wrong --out): "out dir 'D' is not writable: ...". */
static void not_writable(const char *out_dir)
{
	_cleanup_free_ char *why = xstrdup(err_msg() ? err_msg() : "unknown error");
	err_input("out dir '%s' is not writable: %s", out_dir, why);
}

/* Everything killed runs left (the registry's, then the out dir's), in one notice. */
static void clean_stale(const struct build_out *b)
{
	char *list = NULL, *runs = NULL;
	size_t len = 0;
	FILE *removed = open_memstream(&list, &len);
	if (!removed)
		abort();
	runs_cleanup_stale(&runs);
	fputs(runs, removed);
	free(runs);
	clean_out(b, removed);
	fclose(removed);
	say_removed(list);
	free(list);
}

int build_out_open(const char *out_dir, const char *version, struct build_out **ret)
{
	struct build_out *b = calloc(1, sizeof(*b));
	if (!b)
		abort();
	b->lock_fd = -1;
	b->out = xstrdup(out_dir);
	b->version = xstrdup(version);
	b->final = xasprintf("%s/%s", out_dir, version);
	if (fs_mkdir_p(out_dir, 0755) < 0) {
		not_writable(out_dir);
		goto fail;
	}
	if (lock_out(b) < 0)
		goto fail;

	clean_stale(b);

	b->stage = fs_tmpdir_new_in(out_dir, STAGE_PREFIX);
	if (!b->stage) {
		not_writable(out_dir);
		goto fail;
	}
	*ret = b;
	return 0;
fail:
	build_out_free(b);
	return -1;
}

const char *build_out_stage(const struct build_out *b) { return b->stage; }

/* Keep old entry e: its file linked (or copied) into the stage, and still
 * the bytes its manifest entry names. */
static bool carry_one(const struct build_out *b, const struct manifest_artifact *e, struct build_artifact *ret)
{
	_cleanup_free_ char *src = xasprintf("%s/%s", b->final, e->file);
	_cleanup_free_ char *dst = xasprintf("%s/%s", b->stage, e->file);
	struct stat st;
	if (strchr(e->file, '/') || lstat(src, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size)
		return false;
	if (link(src, dst) < 0 && fs_copy_file(src, dst, 0644) < 0)
		return false;
	char hex[65];
	uint64_t size = 0;
	if (fs_sha256_file(dst, hex, &size) < 0 || strcmp(hex, e->sha256) != 0 || size != e->size) {
		unlink(dst);
		return false;
	}
	*ret = (struct build_artifact){.target = xstrdup(e->target), .file = xstrdup(e->file),
				       .path = xasprintf("%s/%s", b->final, e->file), .writer = xstrdup(e->format),
				       .size = e->size, .vsize = e->virtual_size};
	memcpy(ret->sha256, hex, sizeof(ret->sha256));
	snprintf(ret->build_id, sizeof(ret->build_id), "%s", e->build_id);
	return true;
}

int build_out_carry(struct build_out *b, struct build_result *res)
{
	_cleanup_free_ char *path = xasprintf("%s/manifest.json", b->final);
	if (!fs_exists(path))
		return 0;
	struct manifest *m = NULL;
	if (manifest_load(path, &m) < 0) {
		log_notice("%s: unreadable (%s): its artifacts are replaced", path, err_msg());
		err_clear();
		return 0;
	}
	const struct manifest_build *mb = manifest_build(m);
	if (strcmp(mb->build_id, res->build_id) != 0 || strcmp(mb->version, b->version) != 0) {
		manifest_free(m);
		return 0;
	}
	size_t no = manifest_n_artifacts(m), n = 0, dropped = 0;
	struct build_artifact *all = calloc(no + res->n_artifacts + 1, sizeof(*all));
	bool *used = calloc(res->n_artifacts + 1, sizeof(*used));
	if (!all || !used)
		abort();
	for (size_t i = 0; i < no; i++) {
		const struct manifest_artifact *e = manifest_artifact_at(m, i);
		size_t j = 0;
		while (j < res->n_artifacts && strcmp(res->artifacts[j].file, e->file) != 0)
			j++;
		if (j < res->n_artifacts) {
			all[n++] = res->artifacts[j];
			used[j] = true;
		} else if (carry_one(b, e, &all[n])) {
			n++;
		} else {
			dropped++;
			err_clear();
		}
	}
	for (size_t j = 0; j < res->n_artifacts; j++)
		if (!used[j])
			all[n++] = res->artifacts[j];
	size_t kept = n - res->n_artifacts;
	if (kept || dropped)
		log_notice("%s: kept %zu artifact%s of the same build%s", b->final, kept, kept == 1 ? "" : "s",
			   dropped ? "; dropped those that changed since" : "");
	free(used);
	free(res->artifacts);
	res->artifacts = all;
	res->n_artifacts = (unsigned)n;
	manifest_free(m);
	return 0;
}

/* Make the stage's work durable before it is published. */
static void sync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		fsync(fd);
}

int build_out_publish(struct build_out *b)
{
	mode_t um = umask(0);
	umask(um);
	if (chmod(b->stage, 0755 & ~um) < 0)
		return err_errno(errno, "publishing '%s'", b->final);
	sync_dir(b->stage);
	if (renameat2(AT_FDCWD, b->stage, AT_FDCWD, b->final, RENAME_EXCHANGE) == 0) {
		b->published = true; /* the stage now holds the old set: build_out_free removes it */
	} else if (errno == ENOENT) {
		if (rename(b->stage, b->final) < 0)
			return err_errno(errno, "publishing '%s'", b->final);
		b->published = true;
	} else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
		/* No exchange here (NFS, old kernels): the old set aside, then the new one in. */
		_cleanup_free_ char *aside = fs_tmpdir_new_in(b->out, STAGE_PREFIX);
		if (!aside)
			return -1;
		_cleanup_free_ char *old = xasprintf("%s/old", aside);
		if (rename(b->final, old) < 0) {
			int e = errno;
			fs_tmpdir_release(TAKE_PTR(aside));
			return err_errno(e, "publishing '%s'", b->final);
		}
		if (rename(b->stage, b->final) < 0) {
			int e = errno;
			rename(old, b->final);
			fs_tmpdir_release(TAKE_PTR(aside));
			return err_errno(e, "publishing '%s'", b->final);
		}
		fs_tmpdir_release(TAKE_PTR(aside));
		b->published = true;
	} else {
		return err_errno(errno, "publishing '%s'", b->final);
	}
	sync_dir(b->out);
	return 0;
}

void build_out_free(struct build_out *b)
{
	if (!b)
		return;
	fs_tmpdir_release(b->stage); /* rm -rf: the unpublished set, or the old one it replaced */
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	free(b->out);
	free(b->version);
	free(b->final);
	free(b);
}
