/* Undoing what a killed verify left running or on disk: rows of the run
 * registry's kinds[] table (runs.c) besides "path".
 *
 *   qemu PID STARTTICKS    a QEMU process (STARTTICKS: field 22 of its
 *                          /proc/PID/stat, so a reused pid is never hit)
 *   domain NAME ROOT       a domain of the embedded libvirt driver rooted at
 *                          ROOT: any QEMU still running it, and its state
 *                          files under ROOT (status XML, pid file, log,
 *                          per-domain folders)
 *
 * Each returns 0 when it removed something, 1 when nothing was there, -1
 * when it must be left for later (a live libvirt driver holds ROOT; a
 * damaged entry). They record no error: the registry reports by itself. */
#ifndef QVSA_RUNS_UNDO_H
#define QVSA_RUNS_UNDO_H

#include <stdbool.h>
#include <stddef.h>

int runs_undo_qemu(const char *value) __attribute__((nonnull));
int runs_undo_domain(const char *value) __attribute__((nonnull));

/* Whether a NUL-separated command line (len bytes, /proc/PID/cmdline) is a
 * QEMU running the domain name: argv[0] names qemu and an argument is
 * "guest=NAME" or starts "guest=NAME,". */
bool runs_cmdline_runs_domain(const char *cmdline, size_t len, const char *name) __attribute__((nonnull));

/* Whether some process holds a lock on path (per /proc/locks). */
bool runs_file_locked(const char *path) __attribute__((nonnull));

/* The folder name libvirt gives a domain's private folders,
 * "domain-ID-SHORT" (SHORT: the name's first 20 bytes), matches name. */
bool runs_domain_dir_matches(const char *dirname, const char *name) __attribute__((nonnull));

#endif
