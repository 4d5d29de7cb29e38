/* Which channels the agent tries and in what order: DMI identification from a
 * directory tree, the datasource_list, media presence; running a plan over
 * media directories; the status line naming the channel. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "channel.h"
#include "cleanup.h"
#include "fs.h"

static char root[] = "/tmp/qvsa-test-plan-XXXXXX";

static void root_setup(void) { cr_assert_not_null(mkdtemp(root)); }
static void root_teardown(void) { fs_rm_rf(root); }

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", root, rel);
	_cleanup_free_ char *cmd = xasprintf("mkdir -p \"$(dirname '%s')\"", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(fs_write_file_atomic(path, text, strlen(text), 0644), 0);
}

/* The plan's channel names, comma separated. */
static char *names(const struct agent_plan *p)
{
	struct agent_buf b = { 0 };
	for (size_t i = 0; i < p->n; i++)
		agent_buf_printf(&b, "%s%s", i ? "," : "", p->ch[i]->name);
	return agent_buf_steal(&b);
}

static char *plan_of(const char *cfg, const struct agent_dmi *dmi, const struct agent_media *media)
{
	struct agent_plan p;
	cr_assert_eq(agent_plan_make(cfg, dmi, media, &p), 0, "%s", agent_error());
	return names(&p);
}

static struct agent_dmi no_dmi = { "", "", "", "", "", "" };

Test(channel_dmi, read_from_a_root, .init = root_setup, .fini = root_teardown)
{
	struct agent_dmi d;
	agent_dmi_read(root, &d);
	cr_assert_str_eq(d.sys_vendor, "");
	cr_assert_not(agent_dmi_ec2(&d) || agent_dmi_gce(&d) || agent_dmi_oci(&d) || agent_dmi_azure(&d) ||
		      agent_dmi_openstack(&d));
	agent_dmi_free(&d);

	put("sys/class/dmi/id/sys_vendor", "Amazon EC2\n");
	put("sys/class/dmi/id/product_name", "  m5.large \n");
	put("sys/class/dmi/id/product_uuid", "EC2E1916-9099-7CAF-FD21-012345ABCDEF\n");
	put("sys/class/dmi/id/chassis_asset_tag", "Amazon EC2\n");
	agent_dmi_read(root, &d);
	cr_assert_str_eq(d.product_name, "m5.large");
	cr_assert_str_eq(d.product_serial, "");
	cr_assert(agent_dmi_ec2(&d));
	cr_assert_not(agent_dmi_gce(&d));
	agent_dmi_free(&d);
}

Test(channel_dmi, rules)
{
	struct agent_dmi d = no_dmi;
	d.product_uuid = "ec2a1b2c-0000-0000-0000-000000000000"; /* Xen-era EC2: lower case */
	cr_assert(agent_dmi_ec2(&d));
	d.product_uuid = "";
	d.product_serial = "ec2e1916-9099-7caf-fd21-012345abcdef";
	cr_assert(agent_dmi_ec2(&d));
	d = no_dmi;
	d.sys_vendor = "Amazon EC2";
	cr_assert(agent_dmi_ec2(&d));
	d.sys_vendor = "Amazon";
	cr_assert_not(agent_dmi_ec2(&d));
	d = no_dmi;
	d.sys_vendor = "Google";
	cr_assert(agent_dmi_gce(&d));
	d = no_dmi;
	d.product_name = "Google Compute Engine";
	cr_assert(agent_dmi_gce(&d));
	d = no_dmi;
	d.chassis_asset_tag = "OracleCloud.com";
	cr_assert(agent_dmi_oci(&d));
	d = no_dmi;
	d.sys_vendor = "Microsoft Corporation";
	d.product_name = "Virtual Machine";
	cr_assert_not(agent_dmi_azure(&d), "Hyper-V is not Azure without the asset tag");
	d.chassis_asset_tag = "7783-7084-3265-9085-8269-3286-77";
	cr_assert(agent_dmi_azure(&d));
	d = no_dmi;
	d.sys_vendor = "OpenStack Foundation";
	d.product_name = "OpenStack Nova";
	cr_assert(agent_dmi_openstack(&d));
	d.product_name = "";
	d.chassis_asset_tag = "OpenStack Compute";
	cr_assert(agent_dmi_openstack(&d));
	d = no_dmi;
	d.sys_vendor = "Nutanix";
	d.product_name = "AHV";
	cr_assert_not(agent_dmi_openstack(&d) || agent_dmi_ec2(&d) || agent_dmi_gce(&d));
}

Test(channel_plan, order_and_filters)
{
	struct agent_media media = { 0 };
	/* nothing found, no DMI: only the console */
	_cleanup_free_ char *a = plan_of(NULL, &no_dmi, &media);
	cr_assert_str_eq(a, "console");
	agent_media_add_dir(&media, "/x/cidata", "CIDATA");
	agent_media_add_dir(&media, "/x/cfg", "config-2");
	agent_media_add_dir(&media, "/x/ovf", "OVF ENV");
	/* no file: table order; media channels with their media */
	_cleanup_free_ char *b = plan_of(NULL, &no_dmi, &media);
	cr_assert_str_eq(b, "nocloud,configdrive,vmware,console");
	/* the datasource_list orders and filters; console last even if listed first */
	_cleanup_free_ char *c = plan_of("# qvsa\ndatasource_list: [ None, VMware, NoCloud ]\n", &no_dmi, &media);
	cr_assert_str_eq(c, "vmware,nocloud,console");
	_cleanup_free_ char *d = plan_of("datasource_list: [ 'OVF', \"ConfigDrive\", OVF, VMware ]", &no_dmi, &media);
	cr_assert_str_eq(d, "vmware,configdrive,console");
	_cleanup_free_ char *e = plan_of("# x\ndatasource_list: []\n", &no_dmi, &media);
	cr_assert_str_eq(e, "console");
}

Test(channel_plan, network_channels_need_dmi)
{
	struct agent_media media = { 0 };
	const char *cfg = "# qvsa\ndatasource_list: [ Ec2, GCE, Oracle, OpenStack, NoCloud, None ]\n";
	_cleanup_free_ char *a = plan_of(cfg, &no_dmi, &media);
	cr_assert_str_eq(a, "console", "no network channel without DMI");
	struct agent_dmi dmi = no_dmi;
	dmi.sys_vendor = "Google";
	dmi.product_name = "Google Compute Engine";
	_cleanup_free_ char *b = plan_of(cfg, &dmi, &media);
	cr_assert_str_eq(b, "gce,console");
	dmi = no_dmi;
	dmi.product_name = "OpenStack Nova";
	agent_media_add_dir(&media, "/x/cidata", "cidata");
	_cleanup_free_ char *c = plan_of(cfg, &dmi, &media);
	cr_assert_str_eq(c, "openstack,nocloud,console");
	/* unlisted: not tried even when DMI names it */
	dmi.product_uuid = "ec2abc";
	_cleanup_free_ char *d = plan_of("datasource_list: [ NoCloud ]", &dmi, &media);
	cr_assert_str_eq(d, "nocloud,console");
}

Test(channel_plan, azure_needs_dmi_and_dvd)
{
	struct agent_media media = { 0 };
	struct agent_dmi dmi = no_dmi;
	dmi.chassis_asset_tag = "7783-7084-3265-9085-8269-3286-77";
	_cleanup_free_ char *a = plan_of(NULL, &dmi, &media);
	cr_assert_str_eq(a, "console");
	cr_assert_eq(agent_plan_media_wait(NULL, &dmi, &media), AGENT_MEDIA_EXPECTED, "DMI promises Azure's DVD");
	media.m[0] = (struct agent_medium){ .fs = AGENT_FS_UDF, .name = "sr0", .source = "sr0" };
	media.n = 1;
	cr_assert_eq(agent_plan_media_wait(NULL, &dmi, &media), AGENT_MEDIA_DONE);
	_cleanup_free_ char *b = plan_of("datasource_list: [ Azure ]", &dmi, &media);
	cr_assert_str_eq(b, "azure,console");
	_cleanup_free_ char *c = plan_of("datasource_list: [ Azure ]", &no_dmi, &media);
	cr_assert_str_eq(c, "console", "a DVD alone is not Azure");
	media.n = 0;
	agent_media_add_dir(&media, "/x/az", "rd_rdfe_stable.230104-1521");
	_cleanup_free_ char *d = plan_of("datasource_list: [ Azure ]", &dmi, &media);
	cr_assert_str_eq(d, "azure,console");
	cr_assert_eq(agent_plan_media_wait("datasource_list: [ Ec2 ]", &dmi, &media), AGENT_MEDIA_DONE,
		     "no media channel listed");
}

Test(channel_plan, media_any_platform_may_offer_are_not_promised)
{
	struct agent_media media = { 0 };
	struct agent_dmi dmi = no_dmi;
	const char *cfg = "datasource_list: [ NoCloud, ConfigDrive, OpenStack, Azure ]";
	cr_assert_eq(agent_plan_media_wait(cfg, &dmi, &media), AGENT_MEDIA_MAYBE);
	dmi.product_name = "OpenStack Nova";
	cr_assert_eq(agent_plan_media_wait(cfg, &dmi, &media), AGENT_MEDIA_MAYBE, "OpenStack's config drive is optional");
	dmi.product_name = no_dmi.product_name;
	dmi.chassis_asset_tag = "7783-7084-3265-9085-8269-3286-77";
	cr_assert_eq(agent_plan_media_wait(cfg, &dmi, &media), AGENT_MEDIA_EXPECTED);
	agent_media_add_dir(&media, "/x/cidata", "cidata");
	cr_assert_eq(agent_plan_media_wait(cfg, &dmi, &media), AGENT_MEDIA_DONE, "a medium arrived: drivers are up");
	cr_assert_eq(agent_plan_media_wait("datasource_list: [ Ec2 ]", &no_dmi, &(struct agent_media){ 0 }),
		     AGENT_MEDIA_DONE, "no media channel listed");
}

Test(channel_plan, malformed_config)
{
	struct agent_plan p;
	struct agent_media media = { 0 };
	cr_assert_eq(agent_plan_make("# nothing\n", &no_dmi, &media, &p), -1);
	cr_assert(strstr(agent_error(), "no datasource_list"), "%s", agent_error());
	cr_assert_eq(agent_plan_make("datasource_list: NoCloud\n", &no_dmi, &media, &p), -1);
	cr_assert_eq(agent_plan_make("datasource_list: [ No-Cloud ]\n", &no_dmi, &media, &p), -1);
	cr_assert_eq(agent_plan_make("datasource_list: [ NoCloud\n", &no_dmi, &media, &p), -1);
}

/* Run a plan over media directories under root. */
static int run_plan(const char *cfg, struct agent_run *run)
{
	struct agent_media media = { 0 };
	_cleanup_free_ char *media_dir = xasprintf("%s/media", root);
	cr_assert_eq(agent_media_add_dirs(&media, media_dir), 0, "%s", agent_error());
	struct agent_plan p;
	cr_assert_eq(agent_plan_make(cfg, &no_dmi, &media, &p), 0);
	struct agent_chan_env env = { .root = root, .console_fds = { -1, -1 } };
	return agent_channels_run(&env, &p, run);
}

Test(channel_run, first_delivery_wins_direct_values_override, .init = root_setup, .fini = root_teardown)
{
	put("media/config-2/openstack/latest/meta_data.json", "{}");
	put("media/OVF ENV/ovf-env.xml",
	    "<Environment><PropertySection>"
	    "<Property key=\"qvsa.perscode\" value=\"22222222\"/>"
	    "<Property key=\"qvsa.platform_url\" value=\"http://ovf/\"/>"
	    /* #cloud-config qvsa: perscode 11111111, platform_url http://ud/, poweroff */
	    "<Property key=\"user-data\" value=\"I2Nsb3VkLWNvbmZpZwpxdnNhOgogIHBlcnNjb2RlOiAiMTExMTExMTEiCiAgcGxhdGZvcm1fdXJs"
	    "OiBodHRwOi8vdWQvCnBvd2VyX3N0YXRlOgogIG1vZGU6IHBvd2Vyb2ZmCg==\"/>"
	    "</PropertySection></Environment>");
	put("media/cidata/user-data", "PERSCODE=33333333\n");
	struct agent_run run = { 0 };
	/* config-2 without user_data delivers nothing; vSphere's properties win over its user-data */
	cr_assert_eq(run_plan("datasource_list: [ ConfigDrive, OVF, NoCloud ]", &run), 0, "%s", agent_error());
	cr_assert_str_eq(run.channel->name, "vmware");
	cr_assert_str_eq(run.ud.perscode, "22222222");
	cr_assert_str_eq(run.ud.platform_url, "http://ovf/");
	cr_assert(run.ud.poweroff);
	cr_assert_eq(run.reached, 2);
	agent_run_free(&run);

	run = (struct agent_run){ 0 };
	cr_assert_eq(run_plan("datasource_list: [ NoCloud, OVF ]", &run), 0, "%s", agent_error());
	cr_assert_str_eq(run.channel->name, "nocloud");
	cr_assert_str_eq(run.ud.perscode, "33333333");
	agent_run_free(&run);
}

Test(channel_run, broken_channel_stops_the_run, .init = root_setup, .fini = root_teardown)
{
	put("media/OVF ENV/ovf-env.xml", "<Environment><PropertySection></Environment>");
	put("media/cidata/user-data", "PERSCODE=33333333\n");
	struct agent_run run = { 0 };
	cr_assert_eq(run_plan("datasource_list: [ OVF, NoCloud ]", &run), -1);
	cr_assert_str_eq(run.stage, "channel");
	cr_assert_null(run.channel);
	cr_assert(strstr(agent_error(), "vmware: ovf-env.xml: XML"), "%s", agent_error());
	agent_run_free(&run);
}

Test(channel_run, user_data_without_code_and_nothing_at_all, .init = root_setup, .fini = root_teardown)
{
	put("media/cidata/user-data", "#cloud-config\nqvsa:\n  perscode: [1, 2]\npower_state:\n  mode: poweroff\n");
	struct agent_run run = { 0 };
	cr_assert_eq(run_plan("datasource_list: [ NoCloud ]", &run), -1);
	cr_assert_str_eq(run.stage, "code");
	cr_assert_str_eq(run.channel->name, "nocloud");
	cr_assert(run.ud.poweroff, "power_state survives a broken qvsa: section");
	agent_run_free(&run);

	/* nothing on the media and no console: the run says what it tried */
	put("media/config-2/openstack/latest/meta_data.json", "{}");
	run = (struct agent_run){ 0 };
	cr_assert_eq(run_plan("datasource_list: [ ConfigDrive ]", &run), -1);
	cr_assert_str_eq(run.stage, "channel");
	cr_assert(strstr(agent_error(), "no channel delivered a personalization code (tried: configdrive, console)"),
		  "%s", agent_error());
	cr_assert(strstr(agent_error(), "console"), "%s", agent_error());
	agent_run_free(&run);
}

Test(channel_status, names_the_channel)
{
	struct agent_components c;
	cr_assert_eq(agent_components_parse("ML=1\nVULNSIGS=2\nTAGGER=3\nSCAND=4\n", &c), 0);
	_cleanup_free_ char *ok = agent_status_success_via("qVSA-2.7", "ec2", &c);
	cr_assert_str_eq(ok, "{\"status\":\"success\",\"channel\":\"ec2\",\"version\":\"qVSA-2.7\",\"components\":{"
			     "\"ML\":\"1\",\"SCAND\":\"4\",\"TAGGER\":\"3\",\"VULNSIGS\":\"2\"}}");
	agent_components_free(&c);
	_cleanup_free_ char *bad = agent_status_failure_via("platform", "azure", "no");
	cr_assert_str_eq(bad, "{\"status\":\"failure\",\"stage\":\"platform\",\"channel\":\"azure\",\"reason\":\"no\"}");
	_cleanup_free_ char *early = agent_status_failure_via("channel", NULL, "no");
	cr_assert_str_eq(early, "{\"status\":\"failure\",\"stage\":\"channel\",\"reason\":\"no\"}");
}

Test(channel_table, rows)
{
	const struct agent_channel *const *rows;
	size_t n = agent_channels(&rows);
	cr_assert_eq(n, 9);
	static const char *const want[] = { "nocloud", "configdrive", "openstack", "ec2", "gce",
					    "oci", "azure", "vmware", "console" };
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(rows[i]->name, want[i]);
		cr_assert_eq(agent_channel_find(want[i]), rows[i]);
		cr_assert_not_null(rows[i]->fetch);
		cr_assert(!rows[i]->network || rows[i]->identify, "%s: a network channel needs DMI", want[i]);
	}
	cr_assert(agent_channel_find("azure")->ready);
	cr_assert(agent_channel_find("console")->last_resort);
	cr_assert_null(agent_channel_find("none"));
}
