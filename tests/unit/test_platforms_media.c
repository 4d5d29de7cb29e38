/* The platforms' media read back: volume ids where a guest's probe looks
 * (the primary volume descriptor at byte 32768, and the agent's own label
 * reader), contents through libarchive, the OVF environments through
 * libxml2, Azure's UDF descriptors checked independently, and the same
 * inputs giving the same bytes. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "platform_test.h"
#include "proc.h"

#define OVF_NS "http://schemas.dmtf.org/ovf/environment/1"
#define WA_NS "http://schemas.microsoft.com/windowsazure"

/* The media of platform name, built in the test's folder; its bytes. */
static char *media_of(const char *name, const struct platform_env *env, size_t *len)
{
	struct platform *p = NULL;
	cr_assert_eq(platform_prepare(platform_find(name), env, &p), 0, "%s: %s", name, err_msg());
	cr_assert_not_null(platform_media(p), "%s has no media", name);
	_cleanup_free_ char *path = xstrdup(platform_media(p));
	cr_assert_eq(strncmp(path, env->tmpdir, strlen(env->tmpdir)), 0, "%s outside tmpdir", path);
	char *data = NULL;
	cr_assert_eq(fs_read_file(path, &data, len), 0);
	platform_stop(p);
	cr_assert(fs_exists(path), "media must outlive platform_stop");
	return data;
}

static char *media_default(const char *name, size_t *len)
{
	struct platform_env env = pt_env();
	return media_of(name, &env, len);
}

/* The ISO9660 volume id, space padded to 32, at its ECMA-119 offset. */
static void assert_volume_id(const char *data, size_t len, const char *label)
{
	cr_assert_gt(len, 32768 + 2048);
	const unsigned char *pvd = (const unsigned char *)data + 32768;
	cr_assert_eq(pvd[0], 1);
	cr_assert_eq(memcmp(pvd + 1, "CD001", 5), 0);
	char want[33];
	snprintf(want, sizeof(want), "%-32s", label);
	cr_assert_eq(memcmp(pvd + 40, want, 32), 0, "volume id '%.32s', want '%s'", pvd + 40, label);
}

/* The agent's label probe agrees (it is what runs in the guest). */
static void assert_agent_label(const char *data, size_t len, const char *label)
{
	_cleanup_free_ char *path = xasprintf("%s/probe.img", pt_dir);
	cr_assert_eq(fs_write_file_atomic(path, data, len, 0644), 0);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	unlink(path);
	char got[33];
	cr_assert_eq(agent_fs_label(fd, got), 0, "%s", agent_error());
	cr_assert_str_eq(got, label);
}

/* The file called name in an ISO image (libarchive's ISO9660 reader), or
 * NULL; every entry's time must be the pinned instant. */
static char *iso_file(const char *data, size_t len, const char *name, time_t when)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_iso9660(a);
	cr_assert_eq(archive_read_open_memory(a, data, len), ARCHIVE_OK, "%s", archive_error_string(a));
	struct archive_entry *e;
	char *found = NULL;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		cr_assert_eq(archive_entry_mtime(e), when, "%s: mtime %lld", archive_entry_pathname(e),
			     (long long)archive_entry_mtime(e));
		if (archive_entry_filetype(e) != AE_IFREG || strcmp(archive_entry_pathname(e), name) != 0)
			continue;
		size_t size = (size_t)archive_entry_size(e);
		found = calloc(1, size + 1);
		cr_assert_eq(archive_read_data(a, found, size), (la_ssize_t)size);
	}
	archive_read_free(a);
	return found;
}

static xmlXPathContextPtr xml_context(xmlDocPtr doc)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	cr_assert_not_null(ctx);
	xmlXPathRegisterNs(ctx, BAD_CAST "ovf", BAD_CAST OVF_NS);
	xmlXPathRegisterNs(ctx, BAD_CAST "oe", BAD_CAST OVF_NS);
	xmlXPathRegisterNs(ctx, BAD_CAST "wa", BAD_CAST WA_NS);
	return ctx;
}

static char *xml_string(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	cr_assert_not_null(o, "%s", expr);
	xmlChar *s = xmlXPathCastToString(o);
	char *out = xstrdup((const char *)s);
	xmlFree(s);
	xmlXPathFreeObject(o);
	return out;
}

Test(platform_media, nocloud_seed, .init = pt_setup, .fini = pt_teardown)
{
	unsetenv("SOURCE_DATE_EPOCH");
	size_t len;
	_cleanup_free_ char *iso = media_default("nocloud", &len);
	assert_volume_id(iso, len, "cidata");
	assert_agent_label(iso, len, "cidata");
	_cleanup_free_ char *ud = iso_file(iso, len, "user-data", 0), *md = iso_file(iso, len, "meta-data", 0);
	cr_assert_not_null(ud);
	cr_assert_str_eq(ud, PT_USER_DATA);
	cr_assert_not_null(md);
	cr_assert_str_eq(md, "instance-id: \"iid-qvsa-verify-kvm\"\nlocal-hostname: \"qvsa-verify\"\n");
}

Test(platform_media, config_drive, .init = pt_setup, .fini = pt_teardown)
{
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	size_t len;
	_cleanup_free_ char *iso = media_default("configdrive", &len);
	assert_volume_id(iso, len, "config-2");
	assert_agent_label(iso, len, "config-2");
	_cleanup_free_ char *ud = iso_file(iso, len, "openstack/latest/user_data", 1700000000);
	_cleanup_free_ char *md = iso_file(iso, len, "openstack/latest/meta_data.json", 1700000000);
	cr_assert_not_null(ud);
	cr_assert_str_eq(ud, PT_USER_DATA);
	cr_assert_not_null(md);
	/* the same document the metadata service answers */
	struct platform *p = pt_prepare("openstack");
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/openstack/latest/meta_data.json", NULL, NULL);
	cr_assert_str_eq(md, pt_body(&r));
	free(r.body);
	platform_stop(p);
	unsetenv("SOURCE_DATE_EPOCH");
}

Test(platform_media, vmware_ovf_env, .init = pt_setup, .fini = pt_teardown)
{
	unsetenv("SOURCE_DATE_EPOCH");
	struct platform_env env = pt_env();
	env.platform_url = "https://10.0.2.2:8443/?a=1&b=<2>\"";
	size_t len;
	_cleanup_free_ char *iso = media_of("vmware", &env, &len);
	assert_volume_id(iso, len, "OVF ENV");
	assert_agent_label(iso, len, "OVF ENV");
	_cleanup_free_ char *xml = iso_file(iso, len, "ovf-env.xml", 0);
	cr_assert_not_null(xml);
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc, "%s", xml);
	xmlXPathContextPtr ctx = xml_context(doc);
	_cleanup_free_ char *kind = xml_string(ctx, "/ovf:Environment/ovf:PlatformSection/ovf:Kind");
	_cleanup_free_ char *code = xml_string(ctx, "/ovf:Environment/ovf:PropertySection/"
						    "ovf:Property[@oe:key='qvsa.perscode']/@oe:value");
	_cleanup_free_ char *url = xml_string(ctx, "/ovf:Environment/ovf:PropertySection/"
						   "ovf:Property[@oe:key='qvsa.platform_url']/@oe:value");
	_cleanup_free_ char *b64 = xml_string(ctx, "/ovf:Environment/ovf:PropertySection/"
						   "ovf:Property[@oe:key='user-data']/@oe:value");
	_cleanup_free_ char *count = xml_string(ctx, "count(//ovf:Property)");
	cr_assert_str_eq(kind, "VMware ESXi");
	cr_assert_str_eq(code, "12345678");
	cr_assert_str_eq(url, env.platform_url);
	_cleanup_free_ char *ud = pt_unbase64(b64);
	cr_assert_str_eq(ud, PT_USER_DATA);
	cr_assert_str_eq(count, "3");
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
}

/* CRC-ITU-T as ECMA-167 7.2.6 defines it, written again here on purpose. */
static uint16_t udf_crc(const unsigned char *d, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++)
		for (int b = 7; b >= 0; b--) {
			int bit = ((crc >> 15) ^ (d[i] >> b)) & 1;
			crc = (uint16_t)((crc << 1) ^ (bit ? 0x1021 : 0));
		}
	return crc;
}

static void require_genisoimage(void)
{
	if (!proc_have("genisoimage"))
		cr_skip_test("genisoimage not installed (package genisoimage): Azure's DVD cannot be built");
}

Test(platform_media, azure_dvd, .init = pt_setup, .fini = pt_teardown)
{
	require_genisoimage();
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	size_t len;
	_cleanup_free_ char *iso = media_default("azure", &len);
	unsetenv("SOURCE_DATE_EPOCH");
	assert_volume_id(iso, len, "rd_rdfe_stable.cloudapp.net");
	assert_agent_label(iso, len, "rd_rdfe_stable.cloudapp.net");
	cr_assert_not_null(memmem(iso + 16 * 2048, 16 * 2048, "NSR02", 5), "no UDF volume recognition sequence");

	/* every UDF descriptor we can find is intact, and dated 2023-11-14 22:13:20 UTC */
	const unsigned char *u = (const unsigned char *)iso;
	int descriptors = 0, dated = 0;
	for (size_t s = 16; (s + 1) * 2048 <= len; s++) {
		const unsigned char *d = u + s * 2048;
		uint16_t id = (uint16_t)(d[0] | d[1] << 8), crc_len = (uint16_t)(d[10] | d[11] << 8);
		unsigned sum = 0;
		for (int i = 0; i < 16; i++)
			sum += i == 4 ? 0 : d[i];
		if ((d[2] != 2 && d[2] != 3) || d[3] || (unsigned char)sum != d[4] || crc_len > 2048 - 16 ||
		    id == 0 || id > 266)
			continue;
		cr_assert_eq(udf_crc(d + 16, crc_len), (uint16_t)(d[8] | d[9] << 8), "sector %zu: tag %u CRC", s, id);
		descriptors++;
		if (id == 1) { /* primary volume descriptor: recording time at 376 */
			const unsigned char *t = d + 376;
			cr_assert_eq(t[0] | t[1] << 8, 0x1000, "UTC");
			cr_assert_eq(t[2] | t[3] << 8, 2023);
			cr_assert_eq(t[4], 11);
			cr_assert_eq(t[5], 14);
			cr_assert_eq(t[6], 22);
			cr_assert_eq(t[7], 13);
			cr_assert_eq(t[8], 20);
			cr_assert_eq(memcmp(d + 73, "6553F100", 8), 0, "volume set id '%.16s'", d + 73);
			dated++;
		}
	}
	cr_assert_geq(descriptors, 8, "found %d UDF descriptors", descriptors);
	cr_assert_geq(dated, 2, "main and reserve volume descriptor sequences");

	_cleanup_free_ char *xml = iso_file(iso, len, "ovf-env.xml", 1700000000);
	cr_assert_not_null(xml);
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc, "%s", xml);
	xmlXPathContextPtr ctx = xml_context(doc);
	const char *set = "/ovf:Environment/wa:ProvisioningSection/wa:LinuxProvisioningConfigurationSet/";
	_cleanup_free_ char *type_x = xasprintf("%swa:ConfigurationSetType", set);
	_cleanup_free_ char *host_x = xasprintf("%swa:HostName", set), *user_x = xasprintf("%swa:UserName", set);
	_cleanup_free_ char *nopw_x = xasprintf("%swa:DisableSshPasswordAuthentication", set);
	_cleanup_free_ char *custom_x = xasprintf("%swa:CustomData", set);
	_cleanup_free_ char *type = xml_string(ctx, type_x), *host = xml_string(ctx, host_x);
	_cleanup_free_ char *user = xml_string(ctx, user_x), *nopw = xml_string(ctx, nopw_x);
	_cleanup_free_ char *custom = xml_string(ctx, custom_x);
	_cleanup_free_ char *platform = xml_string(ctx, "count(/ovf:Environment/wa:PlatformSettingsSection/"
							"wa:PlatformSettings)");
	cr_assert_str_eq(type, "LinuxProvisioningConfiguration");
	cr_assert_str_eq(host, "qvsa-verify");
	cr_assert(*user);
	cr_assert_str_eq(nopw, "true");
	cr_assert_str_eq(platform, "1");
	_cleanup_free_ char *ud = pt_unbase64(custom);
	cr_assert_str_eq(ud, PT_USER_DATA);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	/* the staging folder is gone; only the image is left */
	_cleanup_free_ char *cmd = xasprintf("test -z \"$(ls -A %s | grep -v '^platform-azure.img$')\"", pt_dir);
	cr_assert_eq(system(cmd), 0, "leftovers in %s", pt_dir);
}

/* Two builds a second apart, in other folders and time zones: same bytes. */
Test(platform_media, deterministic, .init = pt_setup, .fini = pt_teardown, .timeout = 60)
{
	static const char *const names[] = { "nocloud", "configdrive", "vmware", "azure" };
	size_t n = proc_have("genisoimage") ? 4 : 3;
	char *first[4] = { 0 };
	size_t first_len[4] = { 0 };
	unsetenv("SOURCE_DATE_EPOCH");
	setenv("TZ", "UTC0", 1);
	tzset();
	for (size_t i = 0; i < n; i++)
		first[i] = media_default(names[i], &first_len[i]);
	usleep(1100 * 1000);
	setenv("TZ", "XYZ-5:30", 1);
	tzset();
	_cleanup_free_ char *other = xasprintf("%s/other", pt_dir);
	cr_assert_eq(fs_mkdir_p(other, 0755), 0);
	struct platform_env env = pt_env();
	env.tmpdir = other;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		_cleanup_free_ char *again = media_of(names[i], &env, &len);
		cr_assert_eq(len, first_len[i], "%s: size", names[i]);
		size_t at = 0;
		while (at < len && again[at] == first[i][at])
			at++;
		cr_assert_eq(at, len, "%s: differs at byte %zu (sector %zu)", names[i], at, at / 2048);
		free(first[i]);
	}
	unsetenv("TZ");
	tzset();
	if (n < 4)
		cr_skip_test("genisoimage not installed: Azure's DVD not checked");
}
