/* The run registry (util/runs.h), the atomic file writer (fs.h) and the
 * out dir of a build (build_out.h): lock, stale litter, publishing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build_out.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "runs.h"

static char *tmp;    /* this test's scratch folder */
static char *state;  /* tmp/runs: the registry */

static void setup(void)
{
	tmp = xstrdup("/tmp/qvsa-test-runs-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	state = xasprintf("%s/runs", tmp);
	runs_set_dir(state);
}

static void teardown(void)
{
	runs_finish();
	fs_rm_rf(tmp);
	free(tmp);
	free(state);
}

/* A pid that is certainly gone: a child that exited and was reaped. */
static long dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return (long)p;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static char *own_run_file(void)
{
	return xasprintf("%s/%ld-%llu", state, (long)getpid(), runs_self_start());
}

TestSuite(runs, .init = setup, .fini = teardown);

Test(runs, register_writes_and_unregister_forgets)
{
	_cleanup_free_ char *dir = xasprintf("%s/work", tmp), *file = own_run_file();
	cr_assert_eq(runs_register_path(dir), 0);
	_cleanup_free_ char *text = NULL;
	cr_assert_eq(fs_read_file(file, &text, NULL), 0, "%s", err_msg());
	_cleanup_free_ char *want = xasprintf("path %s\n", dir);
	cr_assert_str_eq(text, want);
	cr_assert_eq(runs_unregister_path(dir), 0);
	cr_assert_not(fs_exists(file), "a run with nothing registered keeps no file");
}

Test(runs, tmpdirs_are_registered_and_released)
{
	_cleanup_free_ char *file = own_run_file();
	char *d = fs_tmpdir_new_in(tmp, ".qvsa-tmp-");
	cr_assert_not_null(d, "%s", err_msg());
	struct stat st;
	cr_assert_eq(stat(d, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700, "private: mode %o", st.st_mode & 0777);
	_cleanup_free_ char *text = NULL;
	cr_assert_eq(fs_read_file(file, &text, NULL), 0);
	cr_assert_not_null(strstr(text, d));
	_cleanup_free_ char *copy = xstrdup(d);
	fs_tmpdir_release(d);
	cr_assert_not(fs_exists(copy));
	cr_assert_not(fs_exists(file));
}

Test(runs, stale_run_is_cleaned_live_run_is_not)
{
	cr_assert_eq(fs_mkdir_p(state, 0700), 0);
	_cleanup_free_ char *gone = xasprintf("%s/gone", tmp), *gone_file = xasprintf("%s/gone.iso", tmp);
	_cleanup_free_ char *live = xasprintf("%s/live", tmp);
	cr_assert_eq(fs_mkdir_p(gone, 0700), 0);
	cr_assert_eq(fs_mkdir_p(live, 0700), 0);
	write_text(gone_file, "seed");
	_cleanup_free_ char *dead = xasprintf("%s/%ld-12345", state, dead_pid());
	_cleanup_free_ char *text = xasprintf("path %s\npath %s\n", gone, gone_file);
	write_text(dead, text);
	/* Alive: this very process, with its real start time. */
	_cleanup_free_ char *alive = xasprintf("%s/%ld-%llu", state, (long)getpid(), runs_self_start());
	_cleanup_free_ char *text2 = xasprintf("path %s\n", live);
	write_text(alive, text2);

	char *removed = NULL;
	cr_assert_eq(runs_cleanup_stale(&removed), 2);
	cr_assert_not(fs_exists(gone));
	cr_assert_not(fs_exists(gone_file));
	cr_assert_not(fs_exists(dead), "the stale run's file goes too");
	cr_assert(fs_exists(live), "a live run's folder stays");
	cr_assert(fs_exists(alive));
	cr_assert_not_null(strstr(removed, gone), "says what it removed: %s", removed);
	free(removed);
}

Test(runs, reused_pid_is_not_the_owner)
{
	cr_assert_eq(fs_mkdir_p(state, 0700), 0);
	_cleanup_free_ char *gone = xasprintf("%s/gone", tmp);
	cr_assert_eq(fs_mkdir_p(gone, 0700), 0);
	/* Our pid, but another start time: the owner died and the pid came back. */
	_cleanup_free_ char *file = xasprintf("%s/%ld-%llu", state, (long)getpid(), runs_self_start() + 1);
	_cleanup_free_ char *text = xasprintf("path %s\n", gone);
	write_text(file, text);
	cr_assert_eq(runs_cleanup_stale(NULL), 1);
	cr_assert_not(fs_exists(gone));
	cr_assert(runs_owner_alive((long)getpid(), runs_self_start()));
	cr_assert_not(runs_owner_alive((long)getpid(), runs_self_start() + 1));
}

Test(runs, damaged_entries_remove_nothing)
{
	cr_assert_eq(fs_mkdir_p(state, 0700), 0);
	_cleanup_free_ char *file = xasprintf("%s/%ld-1", state, dead_pid());
	_cleanup_free_ char *half = xasprintf("%s/%ld-1.AbCdEf", state, dead_pid());
	write_text(file, "path /\npath relative/dir\npath /tmp/../etc\nbogus line\nunknownkind /tmp/x\n");
	write_text(half, "path /tmp/whatever\n");
	cr_assert_eq(runs_cleanup_stale(NULL), 0);
	cr_assert(fs_exists("/etc/passwd"));
	cr_assert(fs_exists(file), "entries it could not undo are kept for a later look");
	cr_assert_not(fs_exists(half), "a half-written file of a dead run goes");
}

TestSuite(atomic, .init = setup, .fini = teardown);

static size_t entries(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0);
	return n;
}

Test(atomic, writes_mode_and_leaves_nothing_else)
{
	_cleanup_free_ char *path = xasprintf("%s/manifest.json", tmp);
	cr_assert_eq(fs_write_file_atomic(path, "{}\n", 3, 0640), 0, "%s", err_msg());
	cr_assert_eq(fs_write_file_atomic(path, "{\"a\":1}\n", 8, 0640), 0, "%s", err_msg());
	_cleanup_free_ char *text = NULL;
	cr_assert_eq(fs_read_file(path, &text, NULL), 0);
	cr_assert_str_eq(text, "{\"a\":1}\n");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);
	cr_assert_eq(entries(tmp), 1, "no temp file left beside it");
}

Test(atomic, planted_symlinks_are_never_followed)
{
	_cleanup_free_ char *victim = xasprintf("%s/victim", tmp), *path = xasprintf("%s/manifest.json", tmp);
	write_text(victim, "precious");
	/* The old predictable temp name, and the target itself, as symlinks to the victim. */
	_cleanup_free_ char *old_tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
	cr_assert_eq(symlink(victim, old_tmp), 0);
	cr_assert_eq(symlink(victim, path), 0);
	cr_assert_eq(fs_write_file_atomic(path, "new", 3, 0644), 0, "%s", err_msg());
	_cleanup_free_ char *v = NULL, *p = NULL;
	cr_assert_eq(fs_read_file(victim, &v, NULL), 0);
	cr_assert_str_eq(v, "precious");
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode), "the link was replaced, not followed");
	cr_assert_eq(fs_read_file(path, &p, NULL), 0);
	cr_assert_str_eq(p, "new");
}

Test(atomic, unwritable_folder_is_an_error)
{
	_cleanup_free_ char *path = xasprintf("%s/missing/manifest.json", tmp);
	cr_assert_eq(fs_write_file_atomic(path, "x", 1, 0644), -1);
	cr_assert_not_null(strstr(err_msg(), path), "%s", err_msg());
}

TestSuite(build_out, .init = setup, .fini = teardown);

Test(build_out, second_build_into_one_out_dir_is_refused)
{
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	struct build_out *a = NULL, *b = NULL;
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &a), 0, "%s", err_msg());
	/* Another open file description: flock conflicts even within one process. */
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &b), -1);
	_cleanup_free_ char *want = xasprintf("out dir '%s' is in use by another qvsa build (pid %ld)", out, (long)getpid());
	cr_assert_not_null(strstr(err_msg(), want), "%s", err_msg());
	build_out_free(a);
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &b), 0, "free unlocks: %s", err_msg());
	build_out_free(b);
}

Test(build_out, unwritable_out_dir_fails_first)
{
	_cleanup_free_ char *file = xasprintf("%s/file", tmp), *out = xasprintf("%s/file/out", tmp);
	write_text(file, "not a folder");
	struct build_out *b = NULL;
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &b), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_not_null(strstr(err_msg(), "is not writable"), "%s", err_msg());
}

Test(build_out, publish_replaces_the_set_whole_and_litter_goes)
{
	_cleanup_free_ char *out = xasprintf("%s/out", tmp), *ver = xasprintf("%s/out/qVSA-1.0", tmp);
	cr_assert_eq(fs_mkdir_p(ver, 0755), 0);
	_cleanup_free_ char *old = xasprintf("%s/old.raw", ver), *stale = xasprintf("%s/out/.qvsa-tmp-Zz9x01", tmp);
	_cleanup_free_ char *legacy = xasprintf("%s/.qVSA-1.0-kvm.qcow2.tmp-%ld", ver, dead_pid());
	write_text(old, "old");
	write_text(legacy, "half");
	cr_assert_eq(fs_mkdir_p(stale, 0700), 0);

	struct build_out *b = NULL;
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &b), 0, "%s", err_msg());
	cr_assert_not(fs_exists(stale), "a stage of a killed build goes (we hold the lock)");
	cr_assert_not(fs_exists(legacy), "an older qvsa's temp file of a dead pid goes");
	_cleanup_free_ char *n = xasprintf("%s/new.raw", build_out_stage(b));
	write_text(n, "new");
	cr_assert(fs_exists(old), "nothing published before publish");
	cr_assert_eq(build_out_publish(b), 0, "%s", err_msg());
	build_out_free(b);
	_cleanup_free_ char *pub = xasprintf("%s/new.raw", ver);
	cr_assert(fs_exists(pub));
	cr_assert_not(fs_exists(old), "the version folder holds exactly the new set");
	struct stat st;
	cr_assert_eq(stat(ver, &st), 0);
	cr_assert_eq(st.st_mode & 0755, 0755, "published readable: %o", st.st_mode & 0777);
	cr_assert_eq(entries(out), 2, "out holds the version folder and the lock file only");
}

Test(build_out, unpublished_stage_is_removed)
{
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	struct build_out *b = NULL;
	cr_assert_eq(build_out_open(out, "qVSA-1.0", &b), 0, "%s", err_msg());
	_cleanup_free_ char *stage = xstrdup(build_out_stage(b));
	build_out_free(b);
	cr_assert_not(fs_exists(stage));
	_cleanup_free_ char *ver = xasprintf("%s/qVSA-1.0", out);
	cr_assert_not(fs_exists(ver));
}
