/* The run registry: see runs.h. */
#include "runs.h"

#include "cleanup.h"
#include "fs.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One kind of entry and how a stale one is undone. */
struct runs_kind {
	const char *name;                 /* first word of the line */
	int (*undo)(const char *value);   /* 0: undone (or already gone); -1: left in place */
};

/* rm -rf, only of an absolute path that is not "/" (a damaged file must not empty the disk). */
static int undo_path(const char *value)
{
	if (value[0] != '/' || strlen(value) < 2 || strstr(value, "/../") || strstr(value, "/./"))
		return -1;
	struct stat st;
	if (lstat(value, &st) < 0)
		return errno == ENOENT ? 1 : -1; /* 1: nothing was there */
	return fs_rm_rf(value);
}

static const struct runs_kind kinds[] = {
	{"path", undo_path},
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled;        /* runs_enable or runs_set_dir called: registering writes files */
static char *dir_override;  /* runs_set_dir's */
static char **entries;      /* this run's lines "KIND VALUE", owned */
static size_t n_entries, cap_entries;
static char *own_file;      /* STATE/runs/PID-START once written */

void runs_enable(void)
{
	pthread_mutex_lock(&lock);
	enabled = true;
	pthread_mutex_unlock(&lock);
}

void runs_set_dir(const char *dir)
{
	pthread_mutex_lock(&lock);
	enabled = dir != NULL;
	free(dir_override);
	dir_override = dir ? xstrdup(dir) : NULL;
	free(own_file);
	own_file = NULL;
	pthread_mutex_unlock(&lock);
}

static char *runs_dir(void)
{
	if (dir_override)
		return xstrdup(dir_override);
	_cleanup_free_ char *cache = fs_cache_dir();
	return xasprintf("%s/runs", cache);
}

/* Field 22 (starttime) of /proc/PID/stat; 0 when the process does not exist. */
static unsigned long long start_ticks_of(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name (field 2) may hold spaces and ')': fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

unsigned long long runs_self_start(void) { return start_ticks_of((long)getpid()); }

bool runs_owner_alive(long pid, unsigned long long start_ticks)
{
	if (pid <= 0)
		return false;
	unsigned long long t = start_ticks_of(pid);
	if (t == 0)
		return false;
	return start_ticks == 0 || t == start_ticks;
}

/* Rewrite this run's file from entries (under lock). Raw calls, no error
 * recorded: a registry that cannot be written must not change a build's
 * outcome or its message. */
static int save_locked(void)
{
	if (!enabled)
		return 0;
	if (!own_file) {
		_cleanup_free_ char *dir = runs_dir();
		if (fs_mkdir_p(dir, 0700) < 0) {
			log_debug("run registry: cannot create '%s'", dir);
			return -1;
		}
		own_file = xasprintf("%s/%ld-%llu", dir, (long)getpid(), runs_self_start());
	}
	if (n_entries == 0) {
		unlink(own_file);
		return 0;
	}
	_cleanup_free_ char *tmp = xasprintf("%s.XXXXXX", own_file);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		log_debug("run registry: cannot write '%s': %s", own_file, strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	for (size_t i = 0; i < n_entries; i++)
		fprintf(f, "%s\n", entries[i]);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, own_file) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int runs_register(const char *kind, const char *value)
{
	if (strchr(value, '\n'))
		return -1;
	char *line = xasprintf("%s %s", kind, value);
	pthread_mutex_lock(&lock);
	if (n_entries == cap_entries) {
		size_t cap = cap_entries ? 2 * cap_entries : 8;
		char **n = realloc(entries, cap * sizeof(*n));
		if (!n)
			abort();
		entries = n;
		cap_entries = cap;
	}
	entries[n_entries++] = line;
	int rc = save_locked();
	pthread_mutex_unlock(&lock);
	return rc;
}

int runs_unregister(const char *kind, const char *value)
{
	_cleanup_free_ char *line = xasprintf("%s %s", kind, value);
	pthread_mutex_lock(&lock);
	int rc = 0;
	for (size_t i = 0; i < n_entries; i++)
		if (strcmp(entries[i], line) == 0) {
			free(entries[i]);
			entries[i] = entries[--n_entries];
			rc = save_locked();
			break;
		}
	pthread_mutex_unlock(&lock);
	return rc;
}

int runs_register_path(const char *path)
{
	_cleanup_free_ char *abs = fs_abspath(path);
	return runs_register("path", abs);
}

int runs_unregister_path(const char *path)
{
	_cleanup_free_ char *abs = fs_abspath(path);
	return runs_unregister("path", abs);
}

void runs_finish(void)
{
	pthread_mutex_lock(&lock);
	if (own_file)
		unlink(own_file);
	for (size_t i = 0; i < n_entries; i++)
		free(entries[i]);
	free(entries);
	entries = NULL;
	n_entries = cap_entries = 0;
	free(own_file);
	own_file = NULL;
	free(dir_override);
	dir_override = NULL;
	enabled = false;
	pthread_mutex_unlock(&lock);
}

/* Undo each line of one stale run file; lines that cannot be undone are kept. */
static int cleanup_file(const char *file, FILE *removed)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
		return 0;
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
		return 0;
	int n = 0;
	bool kept = false;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = 0;
		const struct runs_kind *k = NULL;
		for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
			if (strcmp(kinds[i].name, line) == 0)
				k = &kinds[i];
		int rc = k ? k->undo(sp + 1) : -1;
		if (rc == 0) {
			fprintf(removed, "%s%s", ftell(removed) ? " " : "", sp + 1);
			n++;
		} else if (rc < 0) {
			kept = true;
			log_debug("run registry: %s: cannot undo '%s %s'", file, line, sp + 1);
		}
	}
	/* Kept lines stay for a later, perhaps better placed, run (another user's files). */
	if (!kept)
		unlink(file);
	return n;
}

int runs_cleanup_stale(char **ret_removed)
{
	char *list = NULL;
	size_t len = 0;
	FILE *removed = open_memstream(&list, &len);
	if (!removed)
		abort();
	_cleanup_free_ char *dir = NULL;
	pthread_mutex_lock(&lock);
	dir = enabled ? runs_dir() : NULL;
	pthread_mutex_unlock(&lock);
	int n = 0;
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	for (struct dirent *e; d && (e = readdir(d));) {
		long pid;
		unsigned long long start;
		char extra;
		/* Only "PID-START" files; "PID-START.XXXXXX" is a half-written one (its owner's). */
		int got = sscanf(e->d_name, "%ld-%llu%c", &pid, &start, &extra);
		if ((got != 2 && !(got == 3 && extra == '.')) || runs_owner_alive(pid, start))
			continue;
		_cleanup_free_ char *file = xasprintf("%s/%s", dir, e->d_name);
		if (got == 3) /* "PID-START.XXXXXX": its owner died while rewriting it */
			unlink(file);
		else
			n += cleanup_file(file, removed);
	}
	fclose(removed);
	if (ret_removed)
		*ret_removed = list;
	else
		free(list);
	return n;
}
