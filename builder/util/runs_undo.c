/* Undoing a killed verify's QEMU and embedded-libvirt domain: see runs_undo.h. */
#include "runs_undo.h"

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* libvirt names a domain's private folders "domain-ID-" + this many bytes of its name. */
#define RUNS_DOMAIN_SHORT 20
/* How long a SIGKILLed process may take to be gone (it frees its memory first). */
#define RUNS_KILL_WAIT_MS 2000

/* The state letter of /proc/PID/stat, or 0 when the process is gone. */
static char proc_state(long pid)
{
	char buf[512];
	const char *p = runs_proc_stat(pid, buf, sizeof(buf));
	return p ? p[0] : 0;
}

/* SIGKILL pid and wait until it is gone or a zombie (its parent, perhaps
 * PID 1, reaps it; it holds nothing any more). */
static void kill_and_wait(long pid)
{
	kill((pid_t)pid, SIGKILL);
	for (int ms = 0; ms < RUNS_KILL_WAIT_MS; ms += 5) {
		char s = proc_state(pid);
		if (s == 0 || s == 'Z' || s == 'X')
			return;
		nanosleep(&(struct timespec){.tv_nsec = 5000000L}, NULL);
	}
	log_debug("run registry: process %ld still there %d ms after SIGKILL", pid, RUNS_KILL_WAIT_MS);
}

int runs_undo_qemu(const char *value)
{
	long pid;
	unsigned long long start;
	char extra;
	if (sscanf(value, "%ld %llu%c", &pid, &start, &extra) != 2 || pid <= 1 || start == 0)
		return -1;
	/* The start time proves it is the same process: a pid may have been reused since. */
	if (!runs_owner_alive(pid, start))
		return 1;
	char s = proc_state(pid);
	if (s == 'Z' || s == 'X')
		return 1;
	kill_and_wait(pid);
	return 0;
}

bool runs_cmdline_runs_domain(const char *cmdline, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *end = cmdline + len;
	const char *arg0 = cmdline;
	size_t a0len = strnlen(arg0, len);
	const char *base = memrchr(arg0, '/', a0len);
	base = base ? base + 1 : arg0;
	if (strncmp(base, "qemu", 4) != 0)
		return false;
	for (const char *a = cmdline; a < end; a += strnlen(a, (size_t)(end - a)) + 1) {
		size_t alen = strnlen(a, (size_t)(end - a));
		if (alen >= 6 + nlen && strncmp(a, "guest=", 6) == 0 && memcmp(a + 6, name, nlen) == 0 &&
		    (alen == 6 + nlen || a[6 + nlen] == ','))
			return true;
	}
	return false;
}

/* Kill every QEMU running the domain name (before its pid was registered,
 * or when only the domain entry is left). Returns how many. */
static int kill_domain_qemus(const char *name)
{
	int n = 0;
	_cleanup_closedir_ DIR *d = opendir("/proc");
	for (struct dirent *e; d && (e = readdir(d));) {
		char *endp;
		long pid = strtol(e->d_name, &endp, 10);
		if (*endp || pid <= 1 || pid == (long)getpid())
			continue;
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
		if (len <= 0 || !runs_cmdline_runs_domain(buf, (size_t)len, name))
			continue;
		char s = proc_state(pid);
		if (s == 'Z' || s == 'X')
			continue;
		kill_and_wait(pid);
		n++;
	}
	return n;
}

bool runs_file_locked(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return false;
	_cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		/* "1: POSIX  ADVISORY  WRITE 1234 08:01:123456 0 0" (a blocked waiter's line has "->") */
		unsigned maj, min;
		unsigned long long ino;
		char *p = strstr(line, "ADVISORY");
		if (!p)
			p = strstr(line, "MANDATORY");
		if (!p || strstr(line, "->"))
			continue;
		if (sscanf(p, "%*s %*s %*d %x:%x:%llu", &maj, &min, &ino) == 3 && ino == (unsigned long long)st.st_ino &&
		    maj == major(st.st_dev) && min == minor(st.st_dev))
			return true;
	}
	return false;
}

bool runs_domain_dir_matches(const char *dirname, const char *name)
{
	if (strncmp(dirname, "domain-", 7) != 0)
		return false;
	const char *p = dirname + 7;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || p[digits] != '-')
		return false;
	p += digits + 1;
	size_t nlen = strlen(name);
	size_t want = nlen < RUNS_DOMAIN_SHORT ? nlen : RUNS_DOMAIN_SHORT;
	return strlen(p) == want && strncmp(p, name, want) == 0;
}

/* rm -rf each "domain-ID-SHORT" folder of name under dir. Returns how many. */
static int remove_domain_dirs(const char *dir, const char *name)
{
	int n = 0;
	_cleanup_closedir_ DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!runs_domain_dir_matches(e->d_name, name))
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, e->d_name);
		if (fs_rm_rf(p) == 0)
			n++;
	}
	return n;
}

int runs_undo_domain(const char *value)
{
	const char *sp = strchr(value, ' ');
	if (!sp || sp == value)
		return -1;
	_cleanup_free_ char *name = strndup(value, (size_t)(sp - value));
	const char *root = sp + 1;
	/* A damaged line must not send rm anywhere else. */
	if (!name || name[0] == '.' || strchr(name, '/') || root[0] != '/' || strstr(root, "/../") ||
	    strstr(root, "/./"))
		return -1;
	int n = kill_domain_qemus(name);
	/* The driver locks ROOT/run/qemu/driver.pid while it runs: then its
	 * files are its own, and its start-up already destroyed our stale
	 * domain. The lock is looked up in /proc/locks, never by opening the
	 * file: closing any descriptor of it would drop this process's own
	 * driver's lock (POSIX lock semantics). */
	_cleanup_free_ char *pidfile = xasprintf("%s/run/qemu/driver.pid", root);
	if (runs_file_locked(pidfile)) {
		log_debug("run registry: '%s' is in use: its driver removes domain '%s'", root, name);
		return n > 0 ? 0 : -1;
	}
	/* Its status XML and pid file, and its QEMU log. */
	static const struct { const char *dir, *ext; } files[] = {
		{"run/qemu", "xml"}, {"run/qemu", "pid"}, {"log/qemu", "log"}};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s/%s.%s", root, files[i].dir, name, files[i].ext);
		if (unlink(p) == 0)
			n++;
	}
	_cleanup_free_ char *lib = xasprintf("%s/lib/qemu", root);
	_cleanup_free_ char *chan = xasprintf("%s/lib/qemu/channel/target", root);
	n += remove_domain_dirs(lib, name);
	n += remove_domain_dirs(chan, name);
	return n > 0 ? 0 : 1;
}
