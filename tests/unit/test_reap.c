/* The reaper of verify's VMs (reap.h): it reaps exited orphans handed to it
 * (QEMU daemonized by libvirt, in a session of its own), and never a child
 * the process forked itself, whose owner waits for it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "reap.h"

Test(reap, parse_stat_comm_with_spaces_and_parens)
{
	char state = 0;
	pid_t session = 0;
	cr_assert(reap_parse_stat("4242 (qemu-system-x86) Z 1 4240 4240 0 -1 4228\n", &state, &session));
	cr_expect_eq(state, 'Z');
	cr_expect_eq(session, 4240);
	cr_assert(reap_parse_stat("17 (a) b (c)) S 2 3 99 0\n", &state, &session), "comm ends at the last ')'");
	cr_expect_eq(state, 'S');
	cr_expect_eq(session, 99);
	cr_expect_not(reap_parse_stat("17 (truncated", &state, &session));
	cr_expect_not(reap_parse_stat("17 (x) Z 1", &state, &session));
}

Test(reap, wanted_only_exited_orphans_of_another_session)
{
	cr_expect(reap_wanted(500, 'Z', 499, 100, false), "QEMU: a zombie in the session libvirt's fork made");
	cr_expect_not(reap_wanted(500, 'S', 499, 100, false), "still running");
	cr_expect_not(reap_wanted(500, 'Z', 100, 100, false), "our own fork, in our session");
	cr_expect_not(reap_wanted(499, 'Z', 499, 100, false), "a fork of ours that leads its own session");
	cr_expect(reap_wanted(499, 'Z', 499, 100, true), "QEMU -daemonize (libvirt's capability probe) leads its own");
	cr_expect(reap_stat_is_qemu("4242 (qemu-system-x86) Z 1 4240 4240 0"));
	cr_expect_not(reap_stat_is_qemu("4240 (qvsa) Z 1 4240 4240 0"), "libvirt's daemonizing fork has our name");
}

static bool gone_within(pid_t pid, double seconds)
{
	for (int i = 0; i < (int)(seconds * 100); i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
	}
	return false;
}

Test(reap, reaps_an_adopted_orphan_but_not_our_own_child)
{
	struct reaper *r = NULL;
	cr_assert_eq(reaper_start(&r), 0, "%s", err_msg());
	cr_assert(r, "the kernel lists a task's children here");

	/* As libvirt daemonizes QEMU: a fork that starts a session, forks and exits. */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t mid = fork();
	cr_assert_geq(mid, 0);
	if (mid == 0) {
		setsid();
		pid_t orphan = fork();
		if (orphan == 0) {
			nanosleep(&(struct timespec){.tv_nsec = 600000000L}, NULL);
			_exit(0);
		}
		(void)!write(fds[1], &orphan, sizeof(orphan));
		_exit(0);
	}
	pid_t orphan = 0;
	cr_assert_eq(read(fds[0], &orphan, sizeof(orphan)), (ssize_t)sizeof(orphan));
	nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL); /* the reaper passes over it meanwhile */
	cr_assert_eq(waitpid(mid, NULL, 0), mid, "the daemonizing fork is ours to wait for");
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)orphan);
	FILE *f = fopen(path, "r");
	cr_assert(f && fgets(line, sizeof(line), f), "the orphan still runs");
	fclose(f);
	long ppid = 0;
	cr_assert_eq(sscanf(strrchr(line, ')') + 1, " %*c %ld", &ppid), 1);
	cr_expect_eq(ppid, (long)getpid(), "the orphan was handed to us, not to PID 1");
	cr_expect(gone_within(orphan, 2.0), "the exited orphan was reaped");

	/* Our own child exits and stays for us to wait for. */
	pid_t own = fork();
	cr_assert_geq(own, 0);
	if (own == 0)
		_exit(7);
	nanosleep(&(struct timespec){.tv_nsec = 300000000L}, NULL);
	int status = 0;
	cr_assert_eq(waitpid(own, &status, 0), own, "the reaper took our own child: %s", strerror(errno));
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	reaper_stop(r);
	close(fds[0]);
	close(fds[1]);
}
