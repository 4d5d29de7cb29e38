/* Disks through a storage pool (remote.h), on libvirt's test:///default
 * driver (its pools and volumes are bookkeeping only): which URIs take the
 * pool path, which name another host, the pool qvsa makes and removes, the
 * volumes it deletes (its own, and those of dead runs, never a live run's). */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "remote.h"
#include "vm.h"

#define TEST_URI "test:///default"

static void quiet(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

static virConnectPtr side_conn(void)
{
	virSetErrorFunc(NULL, quiet);
	virConnectPtr c = virConnectOpen(TEST_URI);
	cr_assert_not_null(c, "%s", virGetLastErrorMessage());
	return c;
}

static bool pool_exists(virConnectPtr c, const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, name);
	if (p)
		virStoragePoolFree(p);
	return p != NULL;
}

static bool vol_exists(virConnectPtr c, const char *pool, const char *vol)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
	cr_assert_not_null(p);
	virStorageVolPtr v = virStorageVolLookupByName(p, vol);
	if (v)
		virStorageVolFree(v);
	virStoragePoolFree(p);
	return v != NULL;
}

Test(remote, which_uris_take_the_pool)
{
	cr_expect(!remote_uri_uses_pool("qemu:///embed?root=/var/cache/qvsa/libvirt"), "the embedded driver shares our files");
	cr_expect(remote_uri_uses_pool("qemu:///system"));
	cr_expect(remote_uri_uses_pool("qemu+unix:///system?socket=/tmp/x/libvirt-sock"));
	cr_expect(remote_uri_uses_pool("qemu+ssh://root@build7/system"));
}

Test(remote, which_uris_name_another_host)
{
	const char *local[] = {"qemu:///system", "qemu+unix:///system?socket=/tmp/s", "qemu+ssh://localhost/system",
			       "qemu+tcp://127.0.0.1:16509/system", "qemu+ssh://root@localhost/system",
			       "qemu+tcp://[::1]/system", "test:///default"};
	for (size_t i = 0; i < ELEMENTSOF(local); i++)
		cr_expect(!remote_uri_is_other_host(local[i]), "%s is this machine", local[i]);
	const char *other[] = {"qemu+ssh://build7/system", "qemu+ssh://root@build7.example.com/system",
			       "qemu+tcp://10.0.0.5:16509/system", "qemu+tls://[2001:db8::1]/system",
			       "qemu+ssh://localhost.evil/system"};
	for (size_t i = 0; i < ELEMENTSOF(other); i++)
		cr_expect(remote_uri_is_other_host(other[i]), "%s is another host", other[i]);
}

Test(remote, default_pool_made_and_removed)
{
	virConnectPtr side = side_conn();
	struct vm_host *h = NULL;
	cr_assert_eq(vm_host_open(TEST_URI, NULL, &h), 0, "%s", err_msg());
	struct remote_pool *p = NULL;
	cr_assert_eq(remote_pool_open(h, NULL, &p), 0, "%s", err_msg());
	cr_expect_str_eq(remote_pool_name(p), REMOTE_POOL_DEFAULT);
	cr_expect(pool_exists(side, REMOTE_POOL_DEFAULT));
	/* The test driver has no pool named "default": the fallback folder. */
	cr_expect_str_eq(remote_pool_path(p), "/var/lib/libvirt/images/qvsa-verify");

	_cleanup_free_ char *vol = xasprintf("qvsa-verify-%d-kvm-disk.qcow2", (int)getpid());
	_cleanup_free_ char *path = NULL;
	cr_assert_eq(remote_overlay(p, vol, "/var/lib/libvirt/images/qvsa-verify/base", "vmdk", 1 << 20, &path), 0,
		     "%s", err_msg());
	_cleanup_free_ char *want = xasprintf("/var/lib/libvirt/images/qvsa-verify/%s", vol);
	cr_expect_str_eq(path, want);
	cr_expect(vol_exists(side, REMOTE_POOL_DEFAULT, vol));
	remote_pool_close(p); /* deletes its volume, then the pool it made, now empty */
	cr_expect(!pool_exists(side, REMOTE_POOL_DEFAULT), "a pool qvsa made goes once empty");
	remote_pool_close(NULL);
	vm_host_close(h);
	virConnectClose(side);
}

Test(remote, named_pool_kept_stale_volumes_deleted)
{
	virConnectPtr side = side_conn();
	virStoragePoolPtr sp = virStoragePoolCreateXML(
		side, "<pool type='dir'><name>qvsa-test</name><target><path>/qvsa-test</path></target></pool>", 0);
	cr_assert_not_null(sp, "%s", virGetLastErrorMessage());
	/* A run whose process is gone (a pid above any pid_max), a live one (us), a stranger's. */
	_cleanup_free_ char *live = xasprintf("qvsa-verify-%d-aws-base", (int)getpid());
	const char *dead = "qvsa-verify-2147483646-aws-base";
	const char *names[] = {dead, live, "someone-elses.qcow2"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *x = xasprintf("<volume><name>%s</name><capacity>1024</capacity></volume>", names[i]);
		virStorageVolPtr v = virStorageVolCreateXML(sp, x, 0);
		cr_assert_not_null(v, "%s", virGetLastErrorMessage());
		virStorageVolFree(v);
	}
	struct vm_host *h = NULL;
	cr_assert_eq(vm_host_open(TEST_URI, NULL, &h), 0, "%s", err_msg());
	struct remote_pool *p = NULL;
	cr_assert_eq(remote_pool_open(h, "qvsa-test", &p), 0, "%s", err_msg());
	cr_expect_str_eq(remote_pool_path(p), "/qvsa-test");
	cr_expect(!vol_exists(side, "qvsa-test", dead), "a dead run's volume is deleted");
	cr_expect(vol_exists(side, "qvsa-test", live), "a live run's volume stays");
	cr_expect(vol_exists(side, "qvsa-test", "someone-elses.qcow2"));
	_cleanup_free_ char *mine = xasprintf("qvsa-verify-%d-kvm-disk.qcow2", (int)getpid());
	_cleanup_free_ char *path = NULL;
	cr_assert_eq(remote_overlay(p, mine, "/qvsa-test/b", "raw", 4096, &path), 0, "%s", err_msg());
	remote_delete(p, mine);
	cr_expect(!vol_exists(side, "qvsa-test", mine));
	remote_delete(p, "no-such-volume"); /* records nothing */
	cr_expect_null(err_msg());
	remote_pool_close(p);
	cr_expect(pool_exists(side, "qvsa-test"), "a pool qvsa did not make stays");
	virStoragePoolDestroy(sp);
	virStoragePoolFree(sp);

	/* --pool naming no pool is an error, never a new pool. */
	cr_expect_eq(remote_pool_open(h, "no-such-pool", &p), -1);
	cr_expect(strstr(err_msg(), "no-such-pool") && strstr(err_msg(), "--pool"), "got %s", err_msg());
	cr_expect(!pool_exists(side, "no-such-pool"));
	err_clear();
	vm_host_close(h);
	virConnectClose(side);
}
