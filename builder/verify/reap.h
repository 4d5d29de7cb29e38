/* Prompt reaping of the orphans verify's VMs leave behind.
 *
 * The embedded libvirt driver daemonizes QEMU (a double fork), so QEMU, and
 * the guestfwd relays QEMU spawns the same way, are orphans of whatever PID 1
 * the host has. libvirt learns that a QEMU has exited only once it is reaped
 * (it polls kill(pid, 0) every 200 ms), and the lifecycle event that ends a
 * boot comes after that. Some PID 1s (container and micro-VM inits) reap late
 * or never: ~1-2 s per VM on the machines verify is measured on, 15 s and a
 * forced kill where PID 1 never reaps. So while VMs run, verify makes itself
 * the child subreaper of what it starts and reaps those orphans at once. It
 * never reaps a child it forked itself: the code that forked it waits for it. */
#ifndef QVSA_REAP_H
#define QVSA_REAP_H

#include <stdbool.h>
#include <sys/types.h>

struct reaper;

/* Become the child subreaper and start the reaping thread. *ret is NULL (and
 * nothing changed) when the kernel cannot list a task's children
 * (/proc/PID/task/TID/children): then orphans stay PID 1's as before.
 * Returns 0, or -1 with the error recorded. */
int reaper_start(struct reaper **ret) __attribute__((nonnull));
/* Reap what is left, stop the thread, give the subreaper role back. Accepts NULL. */
void reaper_stop(struct reaper *r);

/* One line of /proc/PID/stat: the state letter and the session id. False if
 * the line is not one. */
bool reap_parse_stat(const char *line, char *ret_state, pid_t *ret_session) __attribute__((nonnull));
/* Whether a child of ours is an adopted orphan that has exited: a zombie in
 * another session than ours (QEMU and its relays live in the session libvirt's
 * daemonizing fork made) that does not lead that session (the daemonizing
 * fork itself, which libvirt waits for), unless it is a QEMU (is_qemu): the
 * one libvirt starts with -daemonize to probe its capabilities leads its
 * own session, and nobody waits for it. Our own forks share our session or
 * lead their own, and never exec QEMU. */
bool reap_wanted(pid_t pid, char state, pid_t session, pid_t own_session, bool is_qemu);
/* Whether a /proc/PID/stat line's command name is a QEMU's ("qemu-..."):
 * libvirt's daemonizing fork never execs, so its name is ours. */
bool reap_stat_is_qemu(const char *line) __attribute__((nonnull));

#endif
