/* Module closure and load order from recorded modules.* index files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "modules.h"

static char moddir[256];

static void put(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", moddir, name);
	cr_assert_eq(fs_write_file_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

/* A miniature of Debian 6.1's index: virtio_net needs net_failover <- failover,
 * virtio_pci needs two transport helpers, ext4 a soft dependency on crc32c. */
static void setup(void)
{
	snprintf(moddir, sizeof(moddir), "/tmp/qvsa-test-mod-XXXXXX");
	cr_assert_not_null(mkdtemp(moddir));
	put("modules.dep",
	    "kernel/drivers/virtio/virtio_ring.ko:\n"
	    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
	    "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
	    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
	    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko "
	    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko "
	    "kernel/drivers/virtio/virtio_ring.ko\n"
	    "kernel/net/core/failover.ko:\n"
	    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
	    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko "
	    "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
	    "kernel/lib/crc16.ko:\n"
	    "kernel/fs/mbcache.ko:\n"
	    "kernel/fs/jbd2/jbd2.ko:\n"
	    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"
	    "kernel/arch/x86/crypto/crc32c-intel.ko:\n"
	    "kernel/crypto/crc32c_generic.ko:\n"
	    "kernel/drivers/scsi/vmw_pvscsi.ko:\n");
	put("modules.softdep", "# Soft dependencies\nsoftdep ext4 pre: crc32c\n");
	put("modules.alias", "alias crypto-crc32c crc32c_intel\nalias crc32c crc32c_intel\n"
			     "alias crc32c crc32c_generic\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net\n"
			     "alias pvscsi vmw_pvscsi\n");
	put("modules.builtin", "kernel/net/packet/af_packet.ko\n");
}

static void teardown(void) { fs_rm_rf(moddir); }

TestSuite(modules, .init = setup, .fini = teardown);

static size_t index_of(char **v, const char *s)
{
	for (size_t i = 0; v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	cr_assert_fail("'%s' missing from the load order", s);
	return 0;
}

static size_t count(char **v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

Test(modules, dependencies_load_first_and_once)
{
	struct modindex *m = NULL;
	cr_assert_eq(modindex_load(moddir, &m), 0);
	char *want[] = {"virtio_net", "virtio-pci", NULL};
	_cleanup_strv_ char **paths = NULL;
	cr_assert_eq(modindex_resolve(m, want, "target 'kvm'", &paths), 0);
	cr_assert_eq(count(paths), 8, "each module once: got %zu", count(paths));
	size_t ring = index_of(paths, "kernel/drivers/virtio/virtio_ring.ko");
	size_t virtio = index_of(paths, "kernel/drivers/virtio/virtio.ko");
	size_t failover = index_of(paths, "kernel/net/core/failover.ko");
	size_t nf = index_of(paths, "kernel/drivers/net/net_failover.ko");
	size_t net = index_of(paths, "kernel/drivers/net/virtio_net.ko");
	size_t pci = index_of(paths, "kernel/drivers/virtio/virtio_pci.ko");
	size_t modern = index_of(paths, "kernel/drivers/virtio/virtio_pci_modern_dev.ko");
	cr_assert(ring < virtio && virtio < net && failover < nf && nf < net);
	cr_assert(modern < pci && virtio < pci);
	modindex_free(m);
}

Test(modules, softdep_prefers_generic_provider_and_builtin_needs_nothing)
{
	struct modindex *m = NULL;
	cr_assert_eq(modindex_load(moddir, &m), 0);
	char *want[] = {"ext4", "af_packet", "pvscsi", NULL};
	_cleanup_strv_ char **paths = NULL;
	cr_assert_eq(modindex_resolve(m, want, "base", &paths), 0);
	size_t crc = index_of(paths, "kernel/crypto/crc32c_generic.ko");
	size_t ext4 = index_of(paths, "kernel/fs/ext4/ext4.ko");
	cr_assert(crc < ext4, "soft 'pre:' dependency loads before ext4");
	for (size_t i = 0; paths[i]; i++)
		cr_assert_null(strstr(paths[i], "crc32c-intel"), "CPU-specific provider must not be chosen");
	index_of(paths, "kernel/drivers/scsi/vmw_pvscsi.ko"); /* through its alias */
	cr_assert_eq(count(paths), 6);
	modindex_free(m);
}

Test(modules, unknown_module_names_it_and_who_needs_it)
{
	struct modindex *m = NULL;
	cr_assert_eq(modindex_load(moddir, &m), 0);
	char *want[] = {"virtio_blk", NULL};
	char **paths = NULL;
	cr_assert_eq(modindex_resolve(m, want, "target 'kvm'", &paths), -1);
	cr_assert_null(paths);
	const char *tail = strrchr(moddir, '/') + 1;
	char *expect = xasprintf("kernel module 'virtio_blk' (target 'kvm'): not found in kernel %s", tail);
	cr_assert_str_eq(err_msg(), expect);
	cr_assert_eq(err_kind(), ERR_INPUT);
	free(expect);
	modindex_free(m);
}

Test(modules, name_of_path)
{
	char *n = module_name_of("kernel/arch/x86/crypto/crc32c-intel.ko");
	cr_assert_str_eq(n, "crc32c_intel");
	free(n);
}
