/* One transient libvirt domain for verification, with everything it needs:
 * the libvirt event loop thread, the connection (the embedded QEMU driver
 * under the state dir unless a URI is given), lifecycle tracking, and
 * destruction on every path. libvirt never prints: its errors are recorded
 * as "libvirt: <what>: <message>". */
#ifndef QVSA_VM_H
#define QVSA_VM_H

#include <stdbool.h>

struct vm_host;
struct vm;

/* How the domain ended (or why following it stopped). */
enum vm_end {
	VM_END_RUNNING = 0,  /* still running */
	VM_END_POWEROFF,     /* the guest powered off (ACPI shutdown) */
	VM_END_CRASHED,      /* the guest crashed */
	VM_END_STOPPED,      /* QEMU went away for another reason (reboot, failure, destroy) */
	VM_END_TIMEOUT,      /* the caller's budget ran out (set by the caller) */
	VM_END_INTERRUPTED,  /* SIGINT/SIGTERM (set by the caller) */
	VM_END_DONE,         /* the caller ended a guest that had nothing left to do (set by the caller) */
};

/* Connect to uri, or when NULL to qemu:///embed?root=<state_dir>/libvirt
 * (creating its etc/qemu.conf if missing, see vm_embed_conf), start the
 * event loop thread and destroy stale verification domains: ONE connection
 * and event loop for every domain verify runs at once. *ret is written only
 * on success. All calls on a host and its domains come from one thread. */
int vm_host_open(const char *uri, const char *state_dir, struct vm_host **ret) __attribute__((nonnull(3)));
/* Destroy any domain still open on the host (its vm stays the caller's to
 * close first, normally), close the connection, stop the event thread, free.
 * Accepts NULL. */
void vm_host_close(struct vm_host *h);
/* A domain on host h, with its own lifecycle tracking; xml is kept for
 * vm_start, name must match the name in xml. Nothing runs yet. */
int vm_new(struct vm_host *h, const char *name, const char *xml, struct vm **ret) __attribute__((nonnull));

/* vm_host_open and vm_new in one, the host owned by the vm (closed with it).
 * Connect to uri, or when NULL to qemu:///embed?root=<state_dir>/libvirt
 * (creating its etc/qemu.conf if missing, see vm_embed_conf), start the event loop, destroy
 * stale verification domains, and keep xml for vm_start. name must match
 * the name in xml. *ret is written only on success; on failure everything
 * opened so far is released. */
int vm_open(const char *uri, const char *state_dir, const char *name, const char *xml, struct vm **ret)
	__attribute__((nonnull(3, 4, 5)));
/* Create and start the transient domain. */
int vm_start(struct vm *vm) __attribute__((nonnull));
/* vm_start for a libvirt that shares no files with us: the domain's serial
 * (a pty, domain_spec.console_stream) is read through libvirt's console
 * stream (virDomainOpenConsole). The domain is created paused, the stream
 * opened, then the guest resumed, so not a byte of its output is lost;
 * vm_console_pump appends what arrived to log_path (created or truncated),
 * where console_follow reads it as the embedded driver's log. */
int vm_start_console(struct vm *vm, const char *log_path) __attribute__((nonnull));
/* Move whatever the console stream holds to the log. Returns bytes moved;
 * 0 also once the stream ended (the domain is gone); -1 with an error
 * recorded when the log cannot be written. */
long vm_console_pump(struct vm *vm) __attribute__((nonnull));
/* Type text on the console stream (vm_start_console), within timeout_ms. */
int vm_console_send(struct vm *vm, const char *text, int timeout_ms) __attribute__((nonnull));
/* Whether the domain still runs; *ret is VM_END_RUNNING or how it ended. */
int vm_poll(struct vm *vm, enum vm_end *ret) __attribute__((nonnull));
/* Destroy the domain if it still runs and free it; with vm_open's own host,
 * also close the connection and stop the event thread. Records no error.
 * Accepts NULL. */
void vm_close(struct vm *vm);

/* The line the embedded root's qemu.conf needs so that QEMU may run guestfwd
 * commands (libvirt's default sandbox has spawn=deny). A system libvirtd used
 * through --connect needs the same line in its /etc/libvirt/qemu.conf. */
#define VM_SECCOMP_LINE "seccomp_sandbox = 0\n"

/* The embedded root's qemu.conf given its current text (NULL: none yet): the
 * text to write, or NULL when existing needs no change. An existing file only
 * gains VM_SECCOMP_LINE when it sets no seccomp_sandbox at all; nothing else
 * of it changes. Caller frees. */
char *vm_embed_conf(const char *existing);

/* The host's libvirt connection (a virConnectPtr), for the storage calls
 * of remote.c; borrowed. */
struct _virConnect *vm_host_conn(const struct vm_host *h) __attribute__((nonnull));

/* A name "qvsa-verify-<pid>-..." (domain or volume) whose process is gone,
 * or with embedded any such name (no other process can hold the root). */
bool vm_stale_name(const char *name, bool embedded) __attribute__((nonnull));

/* Words for an end state, e.g. "guest powered off". */
const char *vm_end_describe(enum vm_end end);

/* The embedded driver's URI for root (percent-encoded). Caller frees. */
char *vm_embed_uri(const char *root) __attribute__((nonnull, returns_nonnull));

#endif
