/* What a killed verify leaves and how it is undone (util/runs_undo.h), and
 * the guardian that undoes it the moment its run dies (runs_guard_main). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "runs.h"
#include "runs_undo.h"

static char *tmp; /* this test's scratch folder */

static void setup(void)
{
	tmp = xstrdup("/tmp/qvsa-test-runs-undo-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	runs_set_dir(NULL);
}

static void teardown(void)
{
	runs_finish();
	fs_rm_rf(tmp);
	free(tmp);
}

TestSuite(runs_undo, .init = setup, .fini = teardown);

static void touch(const char *path)
{
	_cleanup_free_ char *dir = xstrdup(path);
	*strrchr(dir, '/') = 0;
	cr_assert_eq(fs_mkdir_p(dir, 0755), 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fclose(f);
}

/* A child that waits on a pipe (no grandchild to leak): argv as given.
 * *ret_hold is the pipe's write end; closing it lets the child end. */
static pid_t spawn_waiter(const char *const *argv, int *ret_hold)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[1]);
		execv("/bin/sh", (char *const *)argv);
		_exit(127);
	}
	close(p[0]);
	*ret_hold = p[1];
	/* Wait until it runs the shell (its cmdline is no longer ours). */
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	for (int i = 0; i < 400; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0 && strcmp(buf, argv[0]) == 0)
			break;
		usleep(5000);
	}
	return pid;
}

static bool killed_by_sigkill(pid_t pid)
{
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

Test(runs_undo, cmdline_names_a_qemu_of_the_domain)
{
	static const char a[] = "/usr/bin/qemu-system-x86_64\0-name\0guest=qvsa-verify-12-kvm,debug-threads=on\0-S";
	cr_expect(runs_cmdline_runs_domain(a, sizeof(a), "qvsa-verify-12-kvm"));
	cr_expect_not(runs_cmdline_runs_domain(a, sizeof(a), "qvsa-verify-12-kv"), "a prefix of the name is another domain");
	cr_expect_not(runs_cmdline_runs_domain(a, sizeof(a), "qvsa-verify-1"));
	static const char b[] = "qemu-kvm\0-name\0guest=qvsa-verify-12-kvm";
	cr_expect(runs_cmdline_runs_domain(b, sizeof(b), "qvsa-verify-12-kvm"));
	static const char c[] = "/usr/bin/grep\0guest=qvsa-verify-12-kvm,x";
	cr_expect_not(runs_cmdline_runs_domain(c, sizeof(c), "qvsa-verify-12-kvm"), "only a QEMU is killed");
}

Test(runs_undo, domain_dirs_match_libvirts_short_name)
{
	cr_expect(runs_domain_dir_matches("domain-1-qvsa-verify-17770-kv", "qvsa-verify-17770-kvm"));
	cr_expect(runs_domain_dir_matches("domain-42-qvsa-verify-17770-kv", "qvsa-verify-17770-kvm-2"));
	cr_expect(runs_domain_dir_matches("domain-3-short", "short"));
	cr_expect_not(runs_domain_dir_matches("domain-1-qvsa-verify-1777-kvm", "qvsa-verify-17770-kvm"));
	cr_expect_not(runs_domain_dir_matches("domain-x-qvsa-verify-17770-kv", "qvsa-verify-17770-kvm"));
	cr_expect_not(runs_domain_dir_matches("domain-1-qvsa-verify-17770-k", "qvsa-verify-17770-kvm"));
}

Test(runs_undo, qemu_entry_kills_only_the_same_process)
{
	const char *argv[] = {"qemu-fake", "-c", "read x; true", NULL};
	int hold;
	pid_t pid = spawn_waiter(argv, &hold);
	_cleanup_free_ char *value = runs_process_value(pid);
	cr_assert_not_null(value);
	/* Another start time: the pid was reused by someone else, who is spared. */
	_cleanup_free_ char *other = xasprintf("%d 1", (int)pid);
	cr_expect_eq(runs_undo_qemu(other), 1);
	cr_expect_eq(kill(pid, 0), 0, "a process that merely reuses the pid lives");
	cr_expect_eq(runs_undo_qemu(value), 0);
	cr_expect(killed_by_sigkill(pid));
	close(hold);
	cr_expect_eq(runs_undo_qemu(value), 1, "gone: nothing to do");
	cr_expect_eq(runs_undo_qemu("garbage"), -1);
}

/* A fake embedded root holding domain NAME's state and a neighbour's. */
static char *fake_root(const char *name)
{
	char *root = xasprintf("%s/libvirt", tmp);
	const char *files[] = {"run/qemu/%s.xml", "run/qemu/%s.pid", "log/qemu/%s.log",
			       "lib/qemu/domain-7-%.20s/master-key.aes", "lib/qemu/channel/target/domain-7-%.20s/x"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *rel = NULL;
		if (strstr(files[i], "%.20s")) {
			const char *pct = strstr(files[i], "%.20s");
			rel = xasprintf("%.*s%.20s%s", (int)(pct - files[i]), files[i], name, pct + 5);
		} else {
			const char *pct = strstr(files[i], "%s");
			rel = xasprintf("%.*s%s%s", (int)(pct - files[i]), files[i], name, pct + 2);
		}
		_cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
		touch(p);
	}
	_cleanup_free_ char *other = xasprintf("%s/lib/qemu/domain-8-qvsa-verify-999-kvm/x", root);
	_cleanup_free_ char *other_xml = xasprintf("%s/run/qemu/qvsa-verify-999-kvm.xml", root);
	_cleanup_free_ char *driver = xasprintf("%s/run/qemu/driver.pid", root);
	touch(other);
	touch(other_xml);
	touch(driver);
	return root;
}

Test(runs_undo, domain_entry_kills_its_qemu_and_removes_its_state)
{
	const char *name = "qvsa-verify-4242-kvm";
	_cleanup_free_ char *root = fake_root(name);
	_cleanup_free_ char *guest = xasprintf("guest=%s,debug-threads=on", name);
	const char *argv[] = {"qemu-system-x86_64", "-c", "read x; true", guest, NULL};
	int hold;
	pid_t pid = spawn_waiter(argv, &hold);
	_cleanup_free_ char *value = xasprintf("%s %s", name, root);
	cr_expect_eq(runs_undo_domain(value), 0);
	cr_expect(killed_by_sigkill(pid), "the QEMU running the domain is killed by name");
	close(hold);
	_cleanup_free_ char *xml = xasprintf("%s/run/qemu/%s.xml", root, name);
	_cleanup_free_ char *log = xasprintf("%s/log/qemu/%s.log", root, name);
	_cleanup_free_ char *dir = xasprintf("%s/lib/qemu/domain-7-qvsa-verify-4242-kv", root);
	_cleanup_free_ char *chan = xasprintf("%s/lib/qemu/channel/target/domain-7-qvsa-verify-4242-kv", root);
	cr_expect_not(fs_exists(xml));
	cr_expect_not(fs_exists(log));
	cr_expect_not(fs_exists(dir));
	cr_expect_not(fs_exists(chan));
	_cleanup_free_ char *other = xasprintf("%s/lib/qemu/domain-8-qvsa-verify-999-kvm", root);
	_cleanup_free_ char *other_xml = xasprintf("%s/run/qemu/qvsa-verify-999-kvm.xml", root);
	cr_expect(fs_exists(other), "another domain's folder stays");
	cr_expect(fs_exists(other_xml));
	cr_expect_eq(runs_undo_domain(value), 1, "nothing left: nothing to do");
	_cleanup_free_ char *bad = xasprintf("../x %s", root);
	cr_expect_eq(runs_undo_domain(bad), -1);
	cr_expect_eq(runs_undo_domain("qvsa-verify-1-kvm relative/root"), -1);
}

Test(runs_undo, domain_of_a_root_in_use_is_left_to_its_driver)
{
	const char *name = "qvsa-verify-4343-kvm";
	_cleanup_free_ char *root = fake_root(name);
	/* The driver's lock, as libvirt takes it: a POSIX lock on driver.pid's first byte. */
	_cleanup_free_ char *driver = xasprintf("%s/run/qemu/driver.pid", root);
	int fd = open(driver, O_RDWR);
	cr_assert_geq(fd, 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	cr_assert_eq(fcntl(fd, F_SETLK, &fl), 0);
	_cleanup_free_ char *value = xasprintf("%s %s", name, root);
	cr_expect_eq(runs_undo_domain(value), -1);
	_cleanup_free_ char *xml = xasprintf("%s/run/qemu/%s.xml", root, name);
	cr_expect(fs_exists(xml), "a live driver's files are its own");
	/* Our check never dropped the driver's lock (closing another descriptor would have). */
	pid_t child = fork();
	if (child == 0) {
		int cfd = open(driver, O_RDWR);
		struct flock t = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		_exit(fcntl(cfd, F_GETLK, &t) == 0 && t.l_type != F_UNLCK ? 0 : 1);
	}
	int st = 0;
	waitpid(child, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the driver still holds its lock");
	close(fd);
	cr_expect_eq(runs_undo_domain(value), 0, "once the driver is gone, its leftovers go");
	cr_expect_not(fs_exists(xml));
}

/* A guardian on file in a child; *ret_fd is the owner's end of its pipe. */
static pid_t start_guardian(const char *file, int *ret_fd)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t g = fork();
	if (g == 0) {
		close(p[1]);
		_exit(runs_guard_main(p[0], file));
	}
	close(p[0]);
	*ret_fd = p[1];
	return g;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(runs_undo, guardian_undoes_the_run_when_its_owner_dies)
{
	_cleanup_free_ char *dir = xasprintf("%s/qvsa-verify-x", tmp), *seed = xasprintf("%s/seed.iso", dir);
	touch(seed);
	const char *argv[] = {"qemu-fake", "-c", "read x; true", NULL};
	int hold;
	pid_t qemu = spawn_waiter(argv, &hold);
	_cleanup_free_ char *value = runs_process_value(qemu);
	_cleanup_free_ char *file = xasprintf("%s/123-456", tmp);
	_cleanup_free_ char *text = xasprintf("path %s\nqemu %s\n", dir, value);
	write_file(file, text);
	int fd;
	pid_t g = start_guardian(file, &fd);
	usleep(20000);
	cr_expect_eq(kill(qemu, 0), 0, "nothing happens while the owner lives");
	close(fd); /* the owner dies: its last descriptor of the pipe closes */
	int st = 0;
	cr_assert_eq(waitpid(g, &st, 0), g);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "two entries undone");
	cr_expect(killed_by_sigkill(qemu));
	close(hold);
	cr_expect_not(fs_exists(dir), "the folder with the seed is gone");
	cr_expect_not(fs_exists(file), "and the run's file");
}

Test(runs_undo, guardian_told_to_quit_leaves_everything)
{
	_cleanup_free_ char *dir = xasprintf("%s/keep", tmp), *x = xasprintf("%s/x", dir);
	touch(x);
	_cleanup_free_ char *file = xasprintf("%s/123-456", tmp);
	_cleanup_free_ char *text = xasprintf("path %s\n", dir);
	write_file(file, text);
	int fd;
	pid_t g = start_guardian(file, &fd);
	cr_assert_eq(write(fd, "q", 1), 1);
	close(fd);
	int st = 0;
	cr_assert_eq(waitpid(g, &st, 0), g);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_expect(fs_exists(x));
	cr_expect(fs_exists(file), "a normal end removes its own file (runs_finish)");
}

Test(runs_undo, stale_cleanup_says_what_it_removed)
{
	_cleanup_free_ char *state = xasprintf("%s/runs", tmp);
	runs_set_dir(state);
	cr_assert_eq(fs_mkdir_p(state, 0700), 0);
	const char *name = "qvsa-verify-4444-kvm";
	_cleanup_free_ char *root = fake_root(name);
	_cleanup_free_ char *dir = xasprintf("%s/qvsa-verify-y", tmp), *seed = xasprintf("%s/seed.iso", dir);
	touch(seed);
	const char *argv[] = {"qemu-fake", "-c", "read x; true", NULL};
	int hold;
	pid_t qemu = spawn_waiter(argv, &hold);
	_cleanup_free_ char *value = runs_process_value(qemu);
	/* Pid 1 started long before this test's tick count: its run file is stale. */
	_cleanup_free_ char *file = xasprintf("%s/1-1", state);
	_cleanup_free_ char *text = xasprintf("path %s\ndomain %s %s\nqemu %s\n", dir, name, root, value);
	write_file(file, text);
	char *removed = NULL;
	cr_expect_eq(runs_cleanup_stale(&removed), 3);
	cr_expect(killed_by_sigkill(qemu));
	close(hold);
	_cleanup_free_ char *want = xasprintf("QEMU pid %d domain %s %s", (int)qemu, name, dir);
	cr_expect_str_eq(removed, want, "processes, then domains, then folders");
	free(removed);
	cr_expect_not(fs_exists(dir));
	cr_expect_not(fs_exists(file));
}
