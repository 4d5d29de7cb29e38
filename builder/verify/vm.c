#include "vm.h"

#include "cleanup.h"
#include "domain.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "reap.h"
#include "runs.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The embedded driver's settings measured to work here (FACTS.md): QEMU
 * runs as the caller (root, or an ordinary user: "+N" is a numeric id to
 * libvirt), no SELinux/AppArmor, no cgroups, no virtlogd; and the driver's
 * own seccomp sandbox off, whose spawn=deny stops QEMU from running a
 * guestfwd command (the relay to a platform emulator): each domain brings
 * its own (DOMAIN_SANDBOX). */
static char *embed_qemu_conf(void)
{
	return xasprintf("user = \"+%u\"\n"
			 "group = \"+%u\"\n"
			 "security_driver = \"none\"\n"
			 "cgroup_controllers = [ ]\n"
			 "stdio_handler = \"file\"\n" VM_SECCOMP_LINE,
			 (unsigned)geteuid(), (unsigned)getegid());
}

/* Seconds a domain found gone may wait for its lifecycle event (vm_poll). */
#define VM_GONE_GRACE_S 0.5

/* One connection and its event loop, shared by every domain verify runs at
 * once: the embedded driver lives in this process and locks its root, so a
 * second connection to it would only add a second event loop. */
struct vm_host {
	virConnectPtr conn;   /* owned; NULL once closed */
	int callback_id;      /* the one lifecycle callback, or -1 */
	pthread_t loop;       /* the event loop thread */
	bool loop_running;    /* loop was started and must be joined */
	int loop_stop;        /* asks the loop to return (atomic) */
	pthread_mutex_t lock; /* guards vms: the event thread reads it, the caller's thread changes it */
	struct vm *vms;       /* open domains, newest first (linked by vm.next); borrowed */
	struct reaper *reaper; /* owned; the embedded driver's QEMUs are reaped by us (reap.h); NULL otherwise */
	char *embed_root;     /* owned; the embedded driver's root folder, NULL for a libvirt reached by URI */
};

/* One domain on a host. */
struct vm {
	struct vm_host *host; /* borrowed, or owned when own_host */
	bool own_host;        /* made by vm_open: vm_close closes the host too */
	virDomainPtr dom;     /* owned; NULL before vm_start */
	char *name;           /* owned domain name */
	char *xml;            /* owned domain XML */
	bool xml_started;     /* vm_start was called (a domain of this name may exist) */
	char *reg_domain;     /* owned; the run registry's "domain" value while registered, else NULL */
	char *reg_qemu;       /* owned; the run registry's "qemu" value (pid, start) while registered, else NULL */
	virStreamPtr console; /* owned; the serial console stream (vm_start_console); else NULL */
	int console_log;      /* owned fd the stream's bytes are appended to; -1 without a stream */
	bool console_eof;     /* the stream ended or failed: nothing more comes */
	double gone_since;    /* when vm_poll first found the domain gone before its event (0: not yet) */
	int ended;            /* enum vm_end, written by the event thread (atomic) */
	struct vm *next;      /* next in host->vms (under host->lock) */
};

static void libvirt_silent(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

/* Record "libvirt: what: <libvirt's last message>". Returns -1. */
static int lv_fail(const char *what)
{
	const char *m = virGetLastErrorMessage();
	return err_fail("libvirt: %s: %s", what, m && *m ? m : "unknown error");
}

/* Send libvirt's own log (warnings such as "security driver none disables
 * default policy", and every error again) to a file instead of stderr, unless
 * the user chose with LIBVIRT_LOG_OUTPUTS. libvirt reads that variable once,
 * at initialization, and libguestfs initializes libvirt from a constructor
 * when it is loaded, before main() runs; so after setting it we ask libvirt
 * to re-read its documented environment through virLogSetFromEnv, which
 * libvirt.so exports for its drivers but not as public API. If a libvirt
 * lacks it, the warnings reach stderr; nothing else changes. */
static void lv_log_to_file(const char *state_dir)
{
	if (getenv("LIBVIRT_LOG_OUTPUTS") || !state_dir)
		return;
	if (fs_mkdir_p(state_dir, 0755) < 0) {
		err_clear(); /* best effort: libvirt keeps logging to stderr */
		return;
	}
	_cleanup_free_ char *sd = fs_abspath(state_dir);
	_cleanup_free_ char *out = xasprintf("3:file:%s/libvirt.log", sd);
	setenv("LIBVIRT_LOG_OUTPUTS", out, 0);
	int (*set_from_env)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "virLogSetFromEnv");
	if (set_from_env)
		set_from_env();
}

static pthread_mutex_t lv_init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool lv_initialized;

/* Once per process: libvirt's log to a file, its error printing silenced,
 * and the event loop registered (the embedded driver needs one). */
static int lv_init(const char *state_dir)
{
	int rc = 0;
	pthread_mutex_lock(&lv_init_lock);
	if (!lv_initialized) {
		if (virInitialize() < 0) {
			rc = lv_fail("initializing");
		} else {
			lv_log_to_file(state_dir);
			virSetErrorFunc(NULL, libvirt_silent);
			if (virEventRegisterDefaultImpl() < 0)
				rc = lv_fail("registering the event loop");
			else
				lv_initialized = true;
		}
	}
	pthread_mutex_unlock(&lv_init_lock);
	return rc;
}

static void *event_loop(void *opaque)
{
	struct vm_host *vm = opaque;
	while (!__atomic_load_n(&vm->loop_stop, __ATOMIC_ACQUIRE))
		if (virEventRunDefaultImpl() < 0)
			break;
	return NULL;
}

/* A zero timeout wakes the loop so it sees loop_stop; it removes itself. */
static void wake_once(int timer, void *opaque)
{
	(void)opaque;
	virEventRemoveTimeout(timer);
}

static int loop_start(struct vm_host *vm)
{
	/* Signals belong to the main thread (it polls qvsa_interrupted). */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int e = pthread_create(&vm->loop, NULL, event_loop, vm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0)
		return err_errno(e, "libvirt: starting the event loop thread");
	vm->loop_running = true;
	return 0;
}

static void loop_stop(struct vm_host *vm)
{
	if (!vm->loop_running)
		return;
	__atomic_store_n(&vm->loop_stop, 1, __ATOMIC_RELEASE);
	virEventAddTimeout(0, wake_once, NULL, NULL);
	pthread_join(vm->loop, NULL);
	vm->loop_running = false;
}

/* The event thread: mark the open domain of that name as ended. */
static void on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	(void)conn;
	struct vm_host *h = opaque;
	const char *n = virDomainGetName(dom);
	if (!n || event != VIR_DOMAIN_EVENT_STOPPED)
		return;
	int end = detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN ? VM_END_POWEROFF
		  : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? VM_END_CRASHED
							       : VM_END_STOPPED;
	pthread_mutex_lock(&h->lock);
	for (struct vm *vm = h->vms; vm; vm = vm->next)
		if (strcmp(n, vm->name) == 0)
			__atomic_store_n(&vm->ended, end, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&h->lock);
}

char *vm_embed_uri(const char *root)
{
	static const char hex[] = "0123456789ABCDEF";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	fputs("qemu:///embed?root=", f);
	for (const unsigned char *p = (const unsigned char *)root; *p; p++) {
		if (('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
		    strchr("/-._~", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
	if (fclose(f) != 0 || !buf)
		abort();
	return buf;
}

/* True if text has a line setting key (leading blanks allowed, commented-out lines not). */
static bool conf_sets(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *line = text; *line;) {
		const char *p = line + strspn(line, " \t");
		if (strncmp(p, key, klen) == 0 && strchr(" \t=", p[klen]))
			return true;
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

char *vm_embed_conf(const char *existing)
{
	if (!existing)
		return embed_qemu_conf();
	/* A qemu.conf of an older qvsa lacks the line; a user's own choice stays. */
	if (conf_sets(existing, "seccomp_sandbox"))
		return NULL;
	size_t n = strlen(existing);
	return xasprintf("%s%s%s", existing, n > 0 && existing[n - 1] != '\n' ? "\n" : "", VM_SECCOMP_LINE);
}

/* The embedded root with its qemu.conf; returns the connection URI and the root. */
static int embed_prepare(const char *state_dir, char **ret_uri, char **ret_root)
{
	_cleanup_free_ char *sd = fs_abspath(state_dir);
	_cleanup_free_ char *root = xasprintf("%s/libvirt", sd);
	_cleanup_free_ char *etc = xasprintf("%s/etc", root);
	_cleanup_free_ char *conf = xasprintf("%s/qemu.conf", etc);
	if (fs_mkdir_p(etc, 0700) < 0)
		return -1;
	_cleanup_free_ char *old = NULL;
	if (fs_exists(conf) && fs_read_file(conf, &old, NULL) < 0)
		return -1;
	_cleanup_free_ char *text = vm_embed_conf(old);
	if (text && fs_write_file_atomic(conf, text, strlen(text), 0644) < 0)
		return -1;
	*ret_uri = vm_embed_uri(root);
	*ret_root = TAKE_PTR(root);
	return 0;
}

/* A domain name "qvsa-verify-<pid>-..." whose process is gone (or any such
 * name in our own embedded root: no other process can hold it open). */
bool vm_stale_name(const char *name, bool embedded)
{
	size_t pl = strlen(DOMAIN_NAME_PREFIX);
	if (strncmp(name, DOMAIN_NAME_PREFIX, pl) != 0)
		return false;
	if (embedded)
		return true;
	char *end;
	long pid = strtol(name + pl, &end, 10);
	return pid > 0 && *end == '-' && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* A crash can leave a verification domain behind; the next create of the
 * same name would fail, and it would hold CPU and the old overlay. */
static void destroy_stale(virConnectPtr conn, bool embedded)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(conn, &doms, 0);
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		if (name && vm_stale_name(name, embedded)) {
			log_debug("removing stale verification VM '%s'", name);
			if (virDomainIsActive(doms[i]) == 1)
				virDomainDestroy(doms[i]);
			if (virDomainIsPersistent(doms[i]) == 1)
				virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_NVRAM);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
}

int vm_host_open(const char *uri, const char *state_dir, struct vm_host **ret)
{
	_cleanup_free_ char *embed_uri = NULL, *embed_root = NULL;
	if (!uri) {
		if (!state_dir)
			return err_input("libvirt: no URI and no state dir for the embedded driver");
		if (embed_prepare(state_dir, &embed_uri, &embed_root) < 0)
			return -1;
	}
	if (lv_init(state_dir) < 0)
		return -1;
	struct vm_host *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	h->callback_id = -1;
	h->embed_root = TAKE_PTR(embed_root);
	pthread_mutex_init(&h->lock, NULL);
	/* The embedded driver's QEMUs are orphans: reap them promptly (reap.h). */
	if (!uri && reaper_start(&h->reaper) < 0)
		goto fail;
	/* The embedded driver dispatches through the event loop: run it before connecting. */
	if (loop_start(h) < 0)
		goto fail;
	const char *u = uri ? uri : embed_uri;
	h->conn = virConnectOpen(u);
	if (!h->conn) {
		const char *m = virGetLastErrorMessage();
		if (!uri && m && strstr(m, "driver.pid"))
			/* The embedded driver locks its root: one process at a time. */
			err_fail("libvirt: the embedded driver under '%s/libvirt' is in use by another process "
				 "(one qvsa verify at a time per state dir; set QVSA_CACHE_DIR or use --connect): %s",
				 state_dir, m);
		else {
			_cleanup_free_ char *what = xasprintf("connecting to '%s'", u);
			lv_fail(what);
		}
		goto fail;
	}
	virConnSetErrorFunc(h->conn, NULL, libvirt_silent);
	destroy_stale(h->conn, uri == NULL);
	h->callback_id = virConnectDomainEventRegisterAny(h->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
							  VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), h, NULL);
	if (h->callback_id < 0) {
		lv_fail("watching domain events");
		goto fail;
	}
	*ret = h;
	return 0;
fail:
	vm_host_close(h);
	return -1;
}

void vm_host_close(struct vm_host *h)
{
	if (!h)
		return;
	/* A caller that forgot a domain still gets it destroyed: it would hold CPU and block its name. */
	pthread_mutex_lock(&h->lock);
	for (struct vm *vm = h->vms; vm; vm = vm->next)
		if (vm->dom)
			virDomainDestroy(vm->dom);
	pthread_mutex_unlock(&h->lock);
	if (h->conn) {
		if (h->callback_id >= 0)
			virConnectDomainEventDeregisterAny(h->conn, h->callback_id);
		virConnectClose(h->conn);
	}
	loop_stop(h);
	reaper_stop(h->reaper);
	virResetLastError();
	pthread_mutex_destroy(&h->lock);
	free(h->embed_root);
	free(h);
}

int vm_new(struct vm_host *h, const char *name, const char *xml, struct vm **ret)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		abort();
	vm->host = h;
	vm->console_log = -1;
	vm->name = xstrdup(name);
	vm->xml = xstrdup(xml);
	pthread_mutex_lock(&h->lock);
	vm->next = h->vms;
	h->vms = vm;
	pthread_mutex_unlock(&h->lock);
	*ret = vm;
	return 0;
}

int vm_open(const char *uri, const char *state_dir, const char *name, const char *xml, struct vm **ret)
{
	struct vm_host *h = NULL;
	if (vm_host_open(uri, state_dir, &h) < 0)
		return -1;
	struct vm *vm = NULL;
	if (vm_new(h, name, xml, &vm) < 0) {
		vm_host_close(h);
		return -1;
	}
	vm->own_host = true;
	*ret = vm;
	return 0;
}

/* Before an embedded domain is created: register it, so that a kill -9 from
 * here on leaves nothing (runs.h: the guardian or the next run kills its
 * QEMU by name and removes its state files). */
static void reg_before_create(struct vm *vm)
{
	if (!vm->host->embed_root || vm->reg_domain)
		return;
	vm->reg_domain = xasprintf("%s %s", vm->name, vm->host->embed_root);
	runs_register("domain", vm->reg_domain);
}

/* Once created: its QEMU by pid and start time (the pid file the driver
 * writes), which the guardian kills without searching. */
static void reg_after_create(struct vm *vm)
{
	if (!vm->host->embed_root || vm->reg_qemu)
		return;
	_cleanup_free_ char *pidfile = xasprintf("%s/run/qemu/%s.pid", vm->host->embed_root, vm->name);
	_cleanup_free_ char *text = NULL;
	if (fs_read_file(pidfile, &text, NULL) < 0) {
		err_clear(); /* the domain entry still covers it */
		return;
	}
	long pid = strtol(text, NULL, 10);
	vm->reg_qemu = pid > 1 ? runs_process_value(pid) : NULL;
	if (vm->reg_qemu)
		runs_register("qemu", vm->reg_qemu);
}

/* The domain is destroyed: the registry forgets it, and the embedded
 * driver's QEMU log of it goes (one per run would pile up; a start failure
 * already carries its text in libvirt's error, the guest's in the console log). */
static void reg_forget(struct vm *vm)
{
	if (vm->host->embed_root && vm->xml_started) {
		_cleanup_free_ char *log = xasprintf("%s/log/qemu/%s.log", vm->host->embed_root, vm->name);
		unlink(log);
	}
	if (vm->reg_qemu)
		runs_unregister("qemu", vm->reg_qemu);
	if (vm->reg_domain)
		runs_unregister("domain", vm->reg_domain);
	free(vm->reg_qemu);
	free(vm->reg_domain);
	vm->reg_qemu = vm->reg_domain = NULL;
}

int vm_start(struct vm *vm)
{
	vm->xml_started = true;
	reg_before_create(vm);
	vm->dom = virDomainCreateXML(vm->host->conn, vm->xml, 0);
	if (!vm->dom) {
		_cleanup_free_ char *what = xasprintf("starting VM '%s'", vm->name);
		return lv_fail(what);
	}
	reg_after_create(vm);
	return 0;
}

int vm_start_console(struct vm *vm, const char *log_path)
{
	_cleanup_free_ char *what = xasprintf("starting VM '%s'", vm->name);
	vm->console_log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (vm->console_log < 0)
		return err_errno(errno, "console log '%s'", log_path);
	vm->xml_started = true;
	reg_before_create(vm);
	vm->dom = virDomainCreateXML(vm->host->conn, vm->xml, VIR_DOMAIN_START_PAUSED);
	if (!vm->dom)
		return lv_fail(what);
	reg_after_create(vm);
	vm->console = virStreamNew(vm->host->conn, VIR_STREAM_NONBLOCK);
	if (!vm->console || virDomainOpenConsole(vm->dom, NULL, vm->console, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
		_cleanup_free_ char *cw = xasprintf("opening the serial console of VM '%s'", vm->name);
		return lv_fail(cw);
	}
	if (virDomainResume(vm->dom) < 0)
		return lv_fail(what);
	return 0;
}

long vm_console_pump(struct vm *vm)
{
	long total = 0;
	char buf[16384];
	while (vm->console && !vm->console_eof) {
		int n = virStreamRecv(vm->console, buf, sizeof(buf));
		if (n == -2)
			break; /* nothing more for now */
		if (n <= 0) {
			/* The end of the domain ends its console; a broken stream shows as silence. */
			log_debug("verify: console stream of '%s' ended (%s)", vm->name,
				  n == 0 ? "end of stream" : virGetLastErrorMessage());
			virResetLastError();
			vm->console_eof = true;
			break;
		}
		for (int off = 0; off < n;) {
			ssize_t w = write(vm->console_log, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return err_errno(errno, "writing the console log of VM '%s'", vm->name);
			off += (int)w;
		}
		total += n;
	}
	return total;
}

int vm_console_send(struct vm *vm, const char *text, int timeout_ms)
{
	if (!vm->console || vm->console_eof)
		return err_fail("typing on the console of VM '%s': no console stream", vm->name);
	size_t len = strlen(text), off = 0;
	double deadline = now_monotonic() + timeout_ms / 1000.0;
	while (off < len) {
		int w = virStreamSend(vm->console, text + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w != -2) {
			_cleanup_free_ char *what = xasprintf("typing on the console of VM '%s'", vm->name);
			return lv_fail(what);
		}
		if (now_monotonic() >= deadline)
			return err_fail("typing on the console of VM '%s': %zu of %zu bytes taken within %d ms", vm->name,
					off, len, timeout_ms);
		vm_console_pump(vm); /* keep the guest's output flowing while it reads */
		nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
	}
	return 0;
}

struct _virConnect *vm_host_conn(const struct vm_host *h) { return h->conn; }

int vm_poll(struct vm *vm, enum vm_end *ret)
{
	int ended = __atomic_load_n(&vm->ended, __ATOMIC_ACQUIRE);
	if (ended != VM_END_RUNNING || !vm->dom) {
		*ret = vm->dom ? (enum vm_end)ended : VM_END_STOPPED;
		return 0;
	}
	/* Events can be late or lost (a remote connection): ask too. A transient
	 * domain that was shut down no longer exists. */
	int state = 0, reason = 0;
	if (virDomainGetState(vm->dom, &state, &reason, 0) < 0) {
		virErrorPtr e = virGetLastError();
		if (e && e->code == VIR_ERR_NO_DOMAIN) {
			/* A daemon's stop event may still be queued for the event thread:
			 * give it a moment to say how the domain ended. */
			virResetLastError();
			double now = now_monotonic();
			if (vm->gone_since == 0)
				vm->gone_since = now;
			*ret = now - vm->gone_since < VM_GONE_GRACE_S ? VM_END_RUNNING : VM_END_STOPPED;
			return 0;
		}
		return lv_fail("reading the VM state");
	}
	if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED)
		*ret = reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN ? VM_END_POWEROFF
		       : state == VIR_DOMAIN_CRASHED	   ? VM_END_CRASHED
							   : VM_END_STOPPED;
	else
		*ret = VM_END_RUNNING;
	return 0;
}

void vm_close(struct vm *vm)
{
	if (!vm)
		return;
	struct vm_host *h = vm->host;
	/* Also when create failed half-way or was interrupted: look the name up. */
	if (!vm->dom && h->conn && vm->xml_started)
		vm->dom = virDomainLookupByName(h->conn, vm->name);
	if (vm->console) {
		virStreamAbort(vm->console); /* fails harmlessly once the domain is gone */
		virStreamFree(vm->console);
		vm->console = NULL;
	}
	if (vm->console_log >= 0)
		close(vm->console_log);
	if (vm->dom) {
		virDomainDestroy(vm->dom); /* fails harmlessly if it is already gone */
		virDomainFree(vm->dom);
		vm->dom = NULL;
	}
	reg_forget(vm);
	/* Off the list before it is freed: the event thread may be looking. */
	pthread_mutex_lock(&h->lock);
	for (struct vm **p = &h->vms; *p; p = &(*p)->next)
		if (*p == vm) {
			*p = vm->next;
			break;
		}
	pthread_mutex_unlock(&h->lock);
	virResetLastError();
	if (vm->own_host)
		vm_host_close(h);
	free(vm->name);
	free(vm->xml);
	free(vm);
}

const char *vm_end_describe(enum vm_end end)
{
	switch (end) {
	case VM_END_RUNNING: return "still running";
	case VM_END_POWEROFF: return "guest powered off";
	case VM_END_CRASHED: return "guest crashed";
	case VM_END_STOPPED: return "QEMU stopped: guest reboot, QEMU failure or destroyed";
	case VM_END_TIMEOUT: return "timed out";
	case VM_END_INTERRUPTED: return "interrupted";
	case VM_END_DONE: return "ended by verify";
	}
	return "?";
}
