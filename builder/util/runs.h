/* The run registry: what a qvsa process leaves behind if it is killed
 * (kill -9, a crash, a power cut), so that the next run removes it.
 *
 * Each process that registers something owns one file under the state dir,
 * STATE/runs/PID-STARTTIME (STATE: fs_cache_dir(); STARTTIME: field 22 of
 * /proc/PID/stat, clock ticks since boot, so a reused pid is not mistaken
 * for its owner). The file holds one entry per line, "KIND VALUE":
 *
 *   path /abs/folder      a folder (or file) to rm -rf once the owner is gone
 *
 * Entries are appended when registered and dropped when unregistered; the
 * file itself is removed by runs_finish() on a normal exit (main). A file
 * whose owner process is gone is stale: runs_cleanup_stale() undoes each
 * of its entries, then removes it.
 *
 * Other kinds (verify: a QEMU pid, a libvirt domain) are added as rows of
 * runs.c's kinds[] table: a name and a function that undoes one entry.
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

/* Undo every entry of every stale run file under the state dir and remove
 * those files. *ret_removed (may be NULL) gets a newly allocated,
 * space-separated list of what was removed ("" when nothing). Returns the
 * number of entries undone. */
int runs_cleanup_stale(char **ret_removed);

/* This process is exiting normally: its run file goes. */
void runs_finish(void);

/* Whether the process pid, started at start_ticks (0: any), is alive. */
bool runs_owner_alive(long pid, unsigned long long start_ticks);
/* This process's start time in clock ticks since boot (/proc/self/stat). */
unsigned long long runs_self_start(void);

/* Tests: enable, with dir as the state dir instead of fs_cache_dir()/runs. NULL disables. */
void runs_set_dir(const char *dir);

#endif
