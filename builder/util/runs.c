/* The run registry: see runs.h. */
#include "runs.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "runs_undo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* One kind of entry and how a stale one is undone. */
struct runs_kind {
	const char *name;               /* first word of the line */
	int (*undo)(const char *value); /* 0: undone; 1: nothing was there; -1: left in place */
	const char *prefix;             /* in the "removed" list, before the value */
	bool first_word;                /* the list shows only the value's first word (a pid, a name) */
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

/* In the order a stale file is undone: processes first (they hold the
 * files), then the domains' state, then folders (the seed ISO among them). */
static const struct runs_kind kinds[] = {
	{"qemu", runs_undo_qemu, "QEMU pid ", true},
	{"domain", runs_undo_domain, "domain ", true},
	{"path", undo_path, "", false},
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled;        /* runs_enable or runs_set_dir called: registering writes files */
static char *dir_override;  /* runs_set_dir's */
static char **entries;      /* this run's lines "KIND VALUE", owned */
static size_t n_entries, cap_entries;
static char *own_file;      /* STATE/runs/PID-START once written */
static pid_t guard_pid;     /* runs_guard_start's child, or 0 */
static int guard_fd = -1;   /* the write end of its pipe: closed by our death (or by runs_finish after "q") */

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

const char *runs_proc_stat(long pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || len < 2)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	/* The command name (field 2) may hold spaces and ')': fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Field 22 (starttime) of /proc/PID/stat; 0 when the process does not exist. */
static unsigned long long start_ticks_of(long pid)
{
	char buf[1024];
	const char *p = runs_proc_stat(pid, buf, sizeof(buf));
	/* p is field 3; field 22 is 19 spaces on. */
	for (int field = 3; field < 22 && p; field++)
		if ((p = strchr(p, ' ')))
			p++;
	return p ? strtoull(p, NULL, 10) : 0;
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

/* Name this run's file (and make its folder) once. */
static int own_file_locked(void)
{
	if (own_file)
		return 0;
	_cleanup_free_ char *dir = runs_dir();
	if (fs_mkdir_p(dir, 0700) < 0) {
		log_debug("run registry: cannot create '%s'", dir);
		return -1;
	}
	own_file = xasprintf("%s/%ld-%llu", dir, (long)getpid(), runs_self_start());
	return 0;
}

/* Rewrite this run's file from entries (under lock). Raw calls, no error
 * recorded: a registry that cannot be written must not change a build's
 * outcome or its message. */
static int save_locked(void)
{
	if (!enabled)
		return 0;
	if (own_file_locked() < 0)
		return -1;
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

static int cleanup_file(const char *file, FILE *removed);

/* The guardian (runs.h): qvsa __guard FILE, its stdin the read end of a
 * pipe whose only write end is ours (close-on-exec, so no QEMU or helper
 * we start holds it). */
int runs_guard_start(void)
{
	pthread_mutex_lock(&lock);
	if (guard_pid > 0 || !enabled || own_file_locked() < 0) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	/* Everything the child needs is made before fork: it only calls
	 * async-signal-safe functions. The binary by its path, so that ps
	 * names the guardian "qvsa" (through /proc/self/exe it would be "exe"). */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1 || strstr(exe, " (deleted)"))
		snprintf(exe, sizeof(exe), "/proc/self/exe");
	else
		exe[n] = 0;
	char *const argv[] = {"qvsa", "__guard", own_file, NULL};
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		pthread_mutex_unlock(&lock);
		return err_errno(errno, "starting the guardian");
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid = fork();
	if (pid == 0) {
		/* stdin: the pipe; stdout, stderr: nothing (no one reads a dead run's output). */
		if (dup2(p[0], 0) < 0 || (devnull >= 0 && (dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)))
			_exit(127);
		/* No inherited descriptor (an out dir's lock) may outlive us in the guardian. */
		close_range(3, ~0U, 0);
		execv(exe, argv);
		_exit(127);
	}
	int e = errno;
	close(p[0]);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		close(p[1]);
		pthread_mutex_unlock(&lock);
		return err_errno(e, "starting the guardian");
	}
	guard_pid = pid;
	guard_fd = p[1];
	pthread_mutex_unlock(&lock);
	log_debug("run registry: guardian %ld watches this run", (long)pid);
	return 0;
}

/* A normal end: tell the guardian so ("q"), then wait for it. */
static void guard_stop(void)
{
	pthread_mutex_lock(&lock);
	pid_t pid = guard_pid;
	int fd = guard_fd;
	guard_pid = 0;
	guard_fd = -1;
	pthread_mutex_unlock(&lock);
	if (pid <= 0)
		return;
	if (write(fd, "q", 1) != 1)
		log_debug("run registry: cannot tell the guardian: %s", strerror(errno));
	close(fd);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int runs_guard_main(int fd, const char *file)
{
	/* The terminal's ^C and a group's SIGTERM reach us too: outlive the owner. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	char c;
	ssize_t n;
	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		return 0; /* "q": the owner ends normally and cleans up itself */
	/* End of file without "q": the owner died (its last descriptor closed with it). */
	char *list = NULL;
	size_t len = 0;
	FILE *removed = open_memstream(&list, &len);
	if (!removed)
		abort();
	int undone = cleanup_file(file, removed);
	fclose(removed);
	log_debug("run registry: guardian removed %s", list);
	free(list);
	return undone;
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

char *runs_process_value(long pid)
{
	unsigned long long start = start_ticks_of(pid);
	return start ? xasprintf("%ld %llu", pid, start) : NULL;
}

void runs_finish(void)
{
	guard_stop();
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
	/* Split "KIND VALUE" lines in place; unknown kinds are kept for a newer qvsa. */
	size_t n_lines = 0;
	for (char *p = buf; *p; p++)
		n_lines += *p == '\n';
	_cleanup_free_ char **values = calloc(n_lines + 1, sizeof(*values));
	_cleanup_free_ const struct runs_kind **lk = calloc(n_lines + 1, sizeof(*lk));
	if (!values || !lk)
		abort();
	bool kept = false;
	size_t m = 0;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = 0;
		for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
			if (strcmp(kinds[i].name, line) == 0)
				lk[m] = &kinds[i];
		if (!lk[m]) {
			kept = true;
			log_debug("run registry: %s: unknown entry kind '%s'", file, line);
			continue;
		}
		values[m++] = sp + 1;
	}
	/* Kind by kind, in the table's order. */
	int n = 0;
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
		for (size_t j = 0; j < m; j++) {
			if (lk[j] != &kinds[i])
				continue;
			int rc = kinds[i].undo(values[j]);
			if (rc == 0) {
				int w = kinds[i].first_word ? (int)strcspn(values[j], " ") : (int)strlen(values[j]);
				fprintf(removed, "%s%s%.*s", ftell(removed) ? " " : "", kinds[i].prefix, w, values[j]);
				n++;
			} else if (rc < 0) {
				kept = true;
				log_debug("run registry: %s: cannot undo '%s %s'", file, kinds[i].name, values[j]);
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
