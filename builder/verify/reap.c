#include "reap.h"

#include "cleanup.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often the thread looks for exited orphans: well under libvirt's own
 * 200 ms poll of a QEMU it has signalled. */
#define REAP_POLL_MS 20

/* The reaping thread and the subreaper role it holds. */
struct reaper {
	pthread_t thread; /* the reaping thread */
	int stop;         /* asks the thread to return (atomic) */
	int old_role;     /* PR_GET_CHILD_SUBREAPER before reaper_start, restored by reaper_stop */
};

bool reap_parse_stat(const char *line, char *ret_state, pid_t *ret_session)
{
	/* "pid (comm) S ppid pgrp session ...": comm may hold spaces and parentheses. */
	const char *p = strrchr(line, ')');
	char state;
	long ppid, pgrp, session;
	if (!p || sscanf(p + 1, " %c %ld %ld %ld", &state, &ppid, &pgrp, &session) != 4)
		return false;
	*ret_state = state;
	*ret_session = (pid_t)session;
	return true;
}

bool reap_stat_is_qemu(const char *line)
{
	const char *p = strchr(line, '(');
	return p && strncmp(p + 1, "qemu-", 5) == 0;
}

bool reap_wanted(pid_t pid, char state, pid_t session, pid_t own_session, bool is_qemu)
{
	return state == 'Z' && session != own_session && (session != pid || is_qemu);
}

/* Reap the exited adopted orphans among the children of one of our threads. */
static void reap_task(const char *tid, pid_t own_session)
{
	char path[96], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%s/children", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *save = NULL;
	for (char *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
		pid_t pid = (pid_t)strtol(w, NULL, 10);
		char stat_path[64], line[512], state;
		pid_t session;
		snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)pid);
		FILE *s = fopen(stat_path, "re");
		if (!s)
			continue;
		bool ok = fgets(line, sizeof(line), s) != NULL;
		fclose(s);
		if (ok && reap_parse_stat(line, &state, &session) && reap_wanted(pid, state, session, own_session, reap_stat_is_qemu(line)))
			waitpid(pid, NULL, WNOHANG);
	}
}

/* One pass over every thread of ours: the kernel hands an orphan to any of them. */
static void reap_pass(void)
{
	pid_t own_session = getsid(0);
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			reap_task(e->d_name, own_session);
	closedir(d);
}

static void *reap_loop(void *opaque)
{
	struct reaper *r = opaque;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		reap_pass();
		nanosleep(&(struct timespec){.tv_nsec = REAP_POLL_MS * 1000000L}, NULL);
	}
	return NULL;
}

int reaper_start(struct reaper **ret)
{
	*ret = NULL;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)gettid());
	if (access(path, R_OK) != 0)
		return 0; /* no way to find our children: leave them to PID 1 */
	struct reaper *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	if (prctl(PR_GET_CHILD_SUBREAPER, &r->old_role) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		int e = errno;
		free(r);
		return err_errno(e, "becoming the subreaper of the VMs");
	}
	/* Signals belong to the main thread (it polls qvsa_interrupted). */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int e = pthread_create(&r->thread, NULL, reap_loop, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		prctl(PR_SET_CHILD_SUBREAPER, r->old_role);
		free(r);
		return err_errno(e, "starting the reaping thread");
	}
	*ret = r;
	return 0;
}

void reaper_stop(struct reaper *r)
{
	if (!r)
		return;
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_join(r->thread, NULL);
	/* Orphans from now on go to PID 1 again; those already ours are reaped now. */
	prctl(PR_SET_CHILD_SUBREAPER, r->old_role);
	reap_pass();
	free(r);
}
