/* The run registry: what a qvsa process leaves behind if it is killed
 * (kill -9, a crash, a power cut), so that the next run removes it.
 *
 * Each process that registers something owns one file under the state dir,
 * STATE/runs/PID-STARTTIME (STATE: fs_cache_dir(); STARTTIME: field 22 of
 * /proc/PID/stat, clock ticks since boot, so a reused pid is not mistaken
 * for its owner). The file holds one entry per line, "KIND VALUE":
 *
 *   path /abs/folder      a folder (or file) to rm -rf once the owner is gone
 *   qemu PID STARTTIME    a QEMU verify started: SIGKILL it (runs_undo.h)
 *   domain NAME ROOT      an embedded libvirt domain: its QEMU and its state
 *                         files under ROOT (runs_undo.h)
 *
 * Entries are appended when registered and dropped when unregistered; the
 * file itself is removed by runs_finish() on a normal exit (main). A file
 * whose owner process is gone is stale: runs_cleanup_stale() undoes each
 * of its entries, then removes it.
 *
 * Each kind is a row of runs.c's kinds[] table: a name and a function that
 * undoes one entry; a stale file is undone kind by kind in the table's
 * order (processes before the files they hold).
 *
 * The guardian (runs_guard_start) undoes this run's file the moment the run
 * dies without runs_finish, by any signal, SIGKILL included: a QEMU dies
 * with qvsa, not at the next run. The next run's runs_cleanup_stale covers
 * what the guardian could not (it was killed too, the machine went down).
 * fs_tmpdir_new()/fs_tmpdir_new_in() register their folders themselves;
 * other callers register what they create before they write into it.
 *
 * Thread-safe (one lock around the file). Failures to register are not
 * fatal: they are recorded as a warning in debug output only, since a
 * read-only state dir must not stop a build. */
#ifndef QVSA_RUNS_H
#define QVSA_RUNS_H

#include <stdbool.h>
#include <stddef.h>

/* Turn the registry on for this process (main does, for every command):
 * until then registering keeps entries in memory only and cleaning finds
 * nothing, so library users and unit tests never touch the user's cache. */
void runs_enable(void);

/* Register path (absolute, or made absolute) as this run's litter-to-be. */
int runs_register_path(const char *path);
/* path is gone (removed on a normal path): forget it. */
int runs_unregister_path(const char *path);
/* Register an entry of another kind (a row of kinds[] in runs.c). */
int runs_register(const char *kind, const char *value);
int runs_unregister(const char *kind, const char *value);

/* "PID STARTTIME" of a live process, the value of a process entry ("qemu");
 * NULL when pid is gone. Caller frees. */
char *runs_process_value(long pid);

/* Start this run's guardian, once (later calls do nothing; so does a
 * disabled registry): a child process, `qvsa __guard FILE` (main), whose
 * stdin is a pipe only this process can write. At runs_finish it is told
 * to quit and waited for; if this process dies first, the pipe's end of
 * file wakes it and it undoes FILE's entries at once (QEMUs, domains,
 * folders) and removes FILE. It ignores SIGINT, SIGTERM and SIGHUP (a
 * terminal's ^C reaches the whole process group). Returns 0, or -1 with
 * the error recorded if it cannot be started. */
int runs_guard_start(void);
/* The guardian's body (`qvsa __guard FILE`, fd 0): wait on fd; "q" means
 * the owner ends normally (nothing to do), end of file means it died: undo
 * FILE. Returns the number of entries undone. */
int runs_guard_main(int fd, const char *file) __attribute__((nonnull));

/* Undo every entry of every stale run file under the state dir and remove
 * those files. *ret_removed (may be NULL) gets a newly allocated,
 * space-separated list of what was removed ("" when nothing). Returns the
 * number of entries undone. */
int runs_cleanup_stale(char **ret_removed);

/* This process is exiting normally: its run file goes. */
void runs_finish(void);

/* Whether the process pid, started at start_ticks (0: any), is alive. */
bool runs_owner_alive(long pid, unsigned long long start_ticks);

/* Read /proc/PID/stat into buf (len bytes) and return its field 3 (the state
 * letter), past the command name, which may hold spaces and ')'; NULL when
 * the process does not exist. Shared by the owner check and the undo steps. */
const char *runs_proc_stat(long pid, char *buf, size_t len);
/* This process's start time in clock ticks since boot (/proc/self/stat). */
unsigned long long runs_self_start(void);

/* Tests: enable, with dir as the state dir instead of fs_cache_dir()/runs. NULL disables. */
void runs_set_dir(const char *dir);

#endif
