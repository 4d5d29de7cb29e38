/* The verification VM's lifecycle on libvirt's test:///default driver (its
 * domains are bookkeeping only: no QEMU runs): start, the power-off event,
 * destruction on close, removal of stale domains, the embedded URI. */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain.h"
#include "err.h"
#include "fs.h"
#include "vm.h"

#define TEST_URI "test:///default"

static void quiet(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

/* A second connection to the same test driver state, to act behind vm's back. */
static virConnectPtr side_conn(void)
{
	virSetErrorFunc(NULL, quiet);
	virConnectPtr c = virConnectOpen(TEST_URI);
	cr_assert_not_null(c, "%s", virGetLastErrorMessage());
	return c;
}

static char *xml_named(const char *name)
{
	struct domain_spec s = {
		.name = name, .accel = "tcg", .machine = "pc", .disk_path = "/tmp/overlay.qcow2",
		.disk_format = "qcow2", .disk_bus = "virtio", .seed_path = "/tmp/seed.iso",
		.nic_model = "virtio", .console_path = "/tmp/console.log",
	};
	char *xml = NULL;
	cr_assert_eq(domain_xml(&s, &xml), 0, "%s", err_msg());
	return xml;
}

static bool exists(virConnectPtr c, const char *name)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	if (d)
		virDomainFree(d);
	return d != NULL;
}

/* Poll until vm reports an end, at most ~5 s (events come through the loop thread). */
static enum vm_end wait_end(struct vm *vm)
{
	enum vm_end end = VM_END_RUNNING;
	for (int i = 0; i < 500 && end == VM_END_RUNNING; i++) {
		cr_assert_eq(vm_poll(vm, &end), 0, "%s", err_msg());
		if (end == VM_END_RUNNING)
			nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	return end;
}

Test(vm, start_poweroff_close)
{
	virConnectPtr side = side_conn();
	const char *name = "qvsa-verify-1-poweroff";
	_cleanup_free_ char *xml = xml_named(name);
	struct vm *vm = NULL;
	cr_assert_eq(vm_open(TEST_URI, NULL, name, xml, &vm), 0, "%s", err_msg());
	cr_expect(!exists(side, name), "nothing runs before vm_start");
	cr_assert_eq(vm_start(vm), 0, "%s", err_msg());
	cr_expect(exists(side, name));
	enum vm_end end;
	cr_assert_eq(vm_poll(vm, &end), 0);
	cr_expect_eq(end, VM_END_RUNNING);

	/* The guest powers off: libvirt reports a shutdown and the transient domain goes. */
	virDomainPtr d = virDomainLookupByName(side, name);
	cr_assert_not_null(d);
	cr_assert_eq(virDomainShutdown(d), 0, "%s", virGetLastErrorMessage());
	virDomainFree(d);
	end = wait_end(vm);
	cr_expect(end == VM_END_POWEROFF || end == VM_END_STOPPED, "got %s", vm_end_describe(end));
	vm_close(vm);
	cr_expect(!exists(side, name));
	virConnectClose(side);
}

Test(vm, close_destroys_running_domain)
{
	virConnectPtr side = side_conn();
	const char *name = "qvsa-verify-1-close";
	_cleanup_free_ char *xml = xml_named(name);
	struct vm *vm = NULL;
	cr_assert_eq(vm_open(TEST_URI, NULL, name, xml, &vm), 0, "%s", err_msg());
	cr_assert_eq(vm_start(vm), 0, "%s", err_msg());
	cr_expect(exists(side, name));
	vm_close(vm); /* as on a timeout or an interrupt */
	cr_expect(!exists(side, name), "vm_close must destroy a running domain");
	vm_close(NULL);
	virConnectClose(side);
}

Test(vm, destroyed_behind_our_back_counts_as_stopped)
{
	virConnectPtr side = side_conn();
	const char *name = "qvsa-verify-1-killed";
	_cleanup_free_ char *xml = xml_named(name);
	struct vm *vm = NULL;
	cr_assert_eq(vm_open(TEST_URI, NULL, name, xml, &vm), 0, "%s", err_msg());
	cr_assert_eq(vm_start(vm), 0, "%s", err_msg());
	virDomainPtr d = virDomainLookupByName(side, name);
	cr_assert_not_null(d);
	cr_assert_eq(virDomainDestroy(d), 0);
	virDomainFree(d);
	enum vm_end end = wait_end(vm);
	cr_expect_eq(end, VM_END_STOPPED, "got %s", vm_end_describe(end));
	vm_close(vm);
	virConnectClose(side);
}

Test(vm, start_failure_is_recorded)
{
	const char *name = "qvsa-verify-1-dup";
	_cleanup_free_ char *xml = xml_named(name);
	virConnectPtr side = side_conn();
	/* A running domain of the same name that is not stale (our own pid is alive... and this is not it). */
	virDomainPtr blocker = virDomainCreateXML(side, xml, 0);
	cr_assert_not_null(blocker);
	struct vm *vm = NULL;
	cr_assert_eq(vm_open(TEST_URI, NULL, name, xml, &vm), 0, "%s", err_msg());
	err_clear();
	cr_expect_eq(vm_start(vm), -1);
	cr_assert_not_null(err_msg());
	cr_expect(strstr(err_msg(), "libvirt: starting VM 'qvsa-verify-1-dup': "), "got: %s", err_msg());
	vm_close(vm);
	virDomainDestroy(blocker);
	virDomainFree(blocker);
	virConnectClose(side);
}

Test(vm, stale_domains_are_removed)
{
	/* A pid that certainly has no process: a child that has been reaped. */
	pid_t dead = fork();
	cr_assert(dead >= 0);
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);

	virConnectPtr side = side_conn();
	char stale[64], alive[64];
	snprintf(stale, sizeof(stale), "qvsa-verify-%d-kvm", (int)dead);
	snprintf(alive, sizeof(alive), "qvsa-verify-%d-kvm", (int)getppid());
	const char *names[] = {stale, alive, "someone-else"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *x = xml_named(names[i]);
		virDomainPtr d = virDomainCreateXML(side, x, 0);
		cr_assert_not_null(d, "%s", virGetLastErrorMessage());
		virDomainFree(d);
	}

	const char *name = "qvsa-verify-1-new";
	_cleanup_free_ char *xml = xml_named(name);
	struct vm *vm = NULL;
	cr_assert_eq(vm_open(TEST_URI, NULL, name, xml, &vm), 0, "%s", err_msg());
	cr_expect(!exists(side, stale), "a verification VM of a dead process is removed");
	cr_expect(exists(side, alive), "a live process's VM is left alone");
	cr_expect(exists(side, "someone-else"), "other domains are left alone");
	vm_close(vm);

	for (size_t i = 1; i < ELEMENTSOF(names); i++) {
		virDomainPtr d = virDomainLookupByName(side, names[i]);
		if (d) {
			virDomainDestroy(d);
			virDomainFree(d);
		}
	}
	virConnectClose(side);
}

Test(vm, open_failure_is_recorded)
{
	struct vm *vm = NULL;
	err_clear();
	cr_expect_eq(vm_open("nosuchdriver:///x", NULL, "qvsa-verify-1-x", "<domain/>", &vm), -1);
	cr_expect_null(vm);
	cr_assert_not_null(err_msg());
	cr_expect(strstr(err_msg(), "libvirt: connecting to 'nosuchdriver:///x': "), "got: %s", err_msg());
}

Test(vm, embed_uri_is_escaped)
{
	_cleanup_free_ char *plain = vm_embed_uri("/root/.cache/qvsa/libvirt");
	cr_expect_str_eq(plain, "qemu:///embed?root=/root/.cache/qvsa/libvirt");
	_cleanup_free_ char *odd = vm_embed_uri("/tmp/a b&c?d%e");
	cr_expect_str_eq(odd, "qemu:///embed?root=/tmp/a%20b%26c%3Fd%25e");
}

Test(vm, end_words)
{
	cr_expect_str_eq(vm_end_describe(VM_END_POWEROFF), "guest powered off");
	cr_expect_str_eq(vm_end_describe(VM_END_TIMEOUT), "timed out");
}

Test(vm, embed_conf_gains_seccomp_line)
{
	_cleanup_free_ char *fresh = vm_embed_conf(NULL);
	cr_expect(strstr(fresh, "stdio_handler = \"file\"\n"));
	cr_expect(strstr(fresh, "seccomp_sandbox = 0\n"), "guestfwd commands need spawn allowed");
	_cleanup_free_ char *me = xasprintf("user = \"+%u\"\ngroup = \"+%u\"\n", (unsigned)geteuid(), (unsigned)getegid());
	cr_expect(strstr(fresh, me), "QEMU runs as the caller, root or not: %s", fresh);

	/* What qvsa before the guest networks wrote, without a final newline. */
	const char *older = "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n"
			    "cgroup_controllers = [ ]\nstdio_handler = \"file\"";
	_cleanup_free_ char *up = vm_embed_conf(older);
	cr_assert_not_null(up);
	cr_expect_str_eq(up, "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n"
			     "cgroup_controllers = [ ]\nstdio_handler = \"file\"\nseccomp_sandbox = 0\n");

	cr_expect_null(vm_embed_conf(fresh), "an up-to-date file is left alone");
	cr_expect_null(vm_embed_conf("user = \"root\"\n  seccomp_sandbox=1\n"), "the user's own choice stays");
	_cleanup_free_ char *commented = vm_embed_conf("# seccomp_sandbox = 1\nmax_files = 100\n");
	cr_expect_str_eq(commented, "# seccomp_sandbox = 1\nmax_files = 100\nseccomp_sandbox = 0\n");
	_cleanup_free_ char *prefix = vm_embed_conf("seccomp_sandboxes = 1\n");
	cr_expect(strstr(prefix, "\nseccomp_sandbox = 0\n"), "only the exact key counts");
}

/* Several domains on one shared host (verify -j): each ends on its own, and
 * closing the host destroys a domain still running. */
Test(vm, shared_host_tracks_each_domain)
{
	virConnectPtr side = side_conn();
	const char *names[] = {"qvsa-verify-1-a", "qvsa-verify-1-b"};
	struct vm_host *h = NULL;
	cr_assert_eq(vm_host_open(TEST_URI, NULL, &h), 0, "%s", err_msg());
	struct vm *vms[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++) {
		_cleanup_free_ char *xml = xml_named(names[i]);
		cr_assert_eq(vm_new(h, names[i], xml, &vms[i]), 0, "%s", err_msg());
		cr_assert_eq(vm_start(vms[i]), 0, "%s", err_msg());
	}
	virDomainPtr d = virDomainLookupByName(side, names[0]);
	cr_assert_not_null(d);
	cr_assert_eq(virDomainDestroy(d), 0);
	virDomainFree(d);
	cr_expect_eq(wait_end(vms[0]), VM_END_STOPPED);
	enum vm_end end = VM_END_STOPPED;
	cr_assert_eq(vm_poll(vms[1], &end), 0, "%s", err_msg());
	cr_expect_eq(end, VM_END_RUNNING, "the other domain runs on: got %s", vm_end_describe(end));
	vm_close(vms[0]);
	cr_expect(exists(side, names[1]));
	vm_close(vms[1]);
	cr_expect(!exists(side, names[1]), "vm_close destroys its domain, the host stays open");
	vm_host_close(h);
	vm_host_close(NULL);
	virConnectClose(side);
}
