/* The guestfwd relay: QEMU's user network runs a command for each guest
 * connection to a forwarded address (e.g. 169.254.169.254:80), with the
 * connection on its stdin and stdout (one socket, also on stderr). The
 * command is qvsa itself (`qvsa __relay PORT`), which copies bytes between
 * that connection and a platform emulator on the host's loopback. */
#ifndef QVSA_RELAY_H
#define QVSA_RELAY_H

#include <stdint.h>

/* Connect to host:port (numeric, e.g. "127.0.0.1") and relay stdin/stdout
 * through relay_fds. Ignores SIGPIPE for the rest of the process (it is the
 * process's only job). Returns 0, or -1 with an error recorded; the caller
 * must not print it on stderr: stderr is the guest's connection. */
int relay_run(const char *host, uint16_t port) __attribute__((nonnull));

/* Copy in_fd -> sock and sock -> out_fd until both directions end. When one
 * direction's source ends (EOF or reset) and its bytes are written, its
 * destination is half-closed: shutdown(SHUT_WR), or close() for a
 * non-socket (a pipe). The fds are made non-blocking. A pipe destination
 * needs SIGPIPE ignored by the caller. Returns 0 when both directions ended
 * (a peer that went away counts as an end), or -1 with an error recorded. */
int relay_fds(int in_fd, int out_fd, int sock);

/* The guestfwd command that relays to port on the host's 127.0.0.1:
 * "'<this executable>' __relay PORT", the path single-quoted for QEMU's
 * (glib's) shell-style parsing. NULL with an error recorded when
 * /proc/self/exe cannot be read. Caller frees. */
char *relay_command(uint16_t port);
/* The same for a given executable path. Caller frees; never NULL. */
char *relay_command_for(const char *exe, uint16_t port) __attribute__((nonnull, returns_nonnull));

#endif
