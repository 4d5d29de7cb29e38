/* The agent after cloud-init (--cloud-init, docs/channels.md "After
 * cloud-init"): cloud-init's datasource line naming the channel, its stored
 * user-data giving the code, the fallbacks, and the built agent run on a
 * fake root (var/lib/cloud/instance) against the platform stub. No VM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_replay.h"
#include "channel.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "seed.h"
#include "stub.h"

#define AGENT_BIN QVSA_SRCDIR "/templates/bootstrap-agent/rootfs/usr/sbin/qvsa-agent"
#define CODE "31415926"

/* ---- the pieces, linked in ---- */

Test(cloudinit, datasource_names_the_channel)
{
	static const struct {
		const char *line, *channel, *name;
	} cases[] = {
		{ "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n", "nocloud", "DataSourceNoCloud" },
		{ "DataSourceNoCloudNet: DataSourceNoCloudNet [seed=http://10.0.2.2/][dsmode=net]", "nocloud", NULL },
		{ "DataSourceOVF: DataSourceOVF [seed=iso]\n", "vmware", "DataSourceOVF" },
		{ "DataSourceVMware: DataSourceVMware [seed=guestinfo]\n", "vmware", NULL },
		{ "DataSourceEc2Local: DataSourceEc2Local\n", "ec2", "DataSourceEc2Local" },
		{ "DataSourceEc2: DataSourceEc2\n", "ec2", NULL },
		{ "DataSourceAzure: DataSourceAzure [seed=/dev/sr0]\n", "azure", NULL },
		{ "DataSourceGCELocal: DataSourceGCELocal\n", "gce", NULL },
		{ "DataSourceOracle: DataSourceOracle\n", "oci", NULL },
		{ "DataSourceConfigDrive: DataSourceConfigDrive [net,ver=2][source=/dev/sr0]\n", "configdrive", NULL },
		{ "DataSourceOpenStackLocal: DataSourceOpenStackLocal [net,ver=2]\n", "openstack", NULL },
		/* cloud-init found nothing, or something no channel reads: the normal plan */
		{ "DataSourceNone: DataSourceNone\n", NULL, "DataSourceNone" },
		{ "DataSourceLXD: DataSourceLXD\n", NULL, "DataSourceLXD" },
		{ "DataSourceLocal: x\n", NULL, NULL },
		{ "DataSource: x\n", NULL, NULL },
		{ "NoCloud\n", NULL, "NoCloud" },
		{ "", NULL, "" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char name[64];
		const struct agent_channel *ch = agent_cloudinit_channel(cases[i].line, name, sizeof(name));
		if (cases[i].channel) {
			cr_assert_not_null(ch, "[%s] names no channel", cases[i].line);
			cr_assert_str_eq(ch->name, cases[i].channel, "[%s]", cases[i].line);
		} else {
			cr_assert_null(ch, "[%s] names %s", cases[i].line, ch->name);
		}
		if (cases[i].name)
			cr_assert_str_eq(name, cases[i].name);
	}
}

Test(cloudinit, user_data_code_none_or_broken)
{
	const struct agent_channel *ec2 = agent_channel_find("ec2");
	struct agent_run run = { 0 };
	cr_assert_eq(agent_cloudinit_take(ec2, NULL, &run), 1);
	cr_assert_eq(agent_cloudinit_take(ec2, " \n\r\n", &run), 1);
	/* user-data for other modules, a script: not ours, the code may come another way */
	cr_assert_eq(agent_cloudinit_take(ec2, "#cloud-config\nhostname: x\npower_state:\n  mode: poweroff\n", &run), 1);
	cr_assert_eq(agent_cloudinit_take(ec2, "#!/bin/sh\necho hi\n", &run), 1);
	/* vSphere: settings in the user-data property, the code in qvsa.perscode (the channel merges them) */
	cr_assert_eq(agent_cloudinit_take(ec2, "#cloud-config\nqvsa:\n  platform_url: https://p.example/\n", &run), 1);
	cr_assert_null(run.channel);
	cr_assert_null(run.ud.perscode);

	cr_assert_eq(agent_cloudinit_take(ec2, "#cloud-config\nqvsa:\n  perscode: \"" CODE "\"\n"
					       "  platform_url: https://p.example/\n", &run), 0, "%s", agent_error());
	cr_assert_eq(run.channel, ec2);
	cr_assert_str_eq(run.ud.perscode, CODE);
	cr_assert_str_eq(run.ud.platform_url, "https://p.example/");
	agent_run_free(&run);

	run = (struct agent_run){ 0 };
	cr_assert_eq(agent_cloudinit_take(ec2, "PERSCODE=" CODE "\n", &run), 0);
	cr_assert_str_eq(run.ud.perscode, CODE);
	agent_run_free(&run);

	/* a qvsa: section that is there but broken fails, naming the channel */
	const char *const broken[] = {
		"#cloud-config\nqvsa:\n\tperscode: " CODE "\n",
		"#cloud-config\nqvsa: " CODE "\n",
		"#cloud-config\nqvsa:\n  perscode: \"" CODE "\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(broken); i++) {
		run = (struct agent_run){ 0 };
		cr_assert_eq(agent_cloudinit_take(ec2, broken[i], &run), -1, "[%s]", broken[i]);
		cr_assert_str_eq(run.stage, "code");
		cr_assert_eq(run.channel, ec2);
		cr_assert(strncmp(agent_error(), "ec2: cloud-init's user-data: user-data line ", 44) == 0, "%s",
			  agent_error());
		cr_assert_null(strstr(agent_error(), CODE), "the code leaked into: %s", agent_error());
		cr_assert_null(run.ud.perscode);
		agent_run_free(&run);
	}
}

static char *plan_names(const struct agent_plan *p)
{
	struct agent_buf b = { 0 };
	for (size_t i = 0; i < p->n; i++)
		agent_buf_printf(&b, "%s%s%s", i ? "," : "", p->ch[i]->name, p->medium[i] ? "+m" : "");
	return agent_buf_steal(&b);
}

Test(cloudinit, its_channel_goes_first)
{
	struct agent_media media = { 0 };
	agent_media_add_dir(&media, "/x/cidata", "cidata");
	agent_media_add_dir(&media, "/x/ovf", "OVF ENV");
	struct agent_dmi no_dmi = { "", "", "", "", "", "" };
	struct agent_plan normal, p;
	cr_assert_eq(agent_plan_make("datasource_list: [ NoCloud, Ec2, OVF, None ]", &no_dmi, &media, &normal), 0);
	_cleanup_free_ char *n = plan_names(&normal);
	cr_assert_str_eq(n, "nocloud+m,vmware+m,console");
	/* a medium channel moves to the front with its medium */
	agent_cloudinit_plan(agent_channel_find("vmware"), &media, &normal, &p);
	_cleanup_free_ char *a = plan_names(&p);
	cr_assert_str_eq(a, "vmware+m,nocloud+m,console");
	/* a network channel comes first without DMI: cloud-init identified the platform */
	agent_cloudinit_plan(agent_channel_find("ec2"), &media, &normal, &p);
	_cleanup_free_ char *b = plan_names(&p);
	cr_assert_str_eq(b, "ec2,nocloud+m,vmware+m,console");
	/* a medium channel without its medium (cloud-init read it elsewhere) is left out */
	agent_cloudinit_plan(agent_channel_find("azure"), &media, &normal, &p);
	_cleanup_free_ char *c = plan_names(&p);
	cr_assert_str_eq(c, "nocloud+m,vmware+m,console");
}

/* ---- the agent binary on a fake root ---- */

/* A temp tree: T/root (the appliance's /), T/media (media as directories). */
struct ci {
	char dir[64];       /* T */
	char *root;         /* T/root */
	char *media;        /* T/media */
	bool isolated;      /* in a network namespace of its own: DHCP, if ever run, cannot reach the host */
	struct stub *stub;  /* the platform */
	char *url;          /* its URL */
	int exit_code;      /* of the last agent run */
	char *out;          /* its stdout */
	char *err;          /* its stderr */
};

static void put(const struct ci *c, const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", c->dir, rel);
	_cleanup_free_ char *dir = xasprintf("%.*s", (int)(strrchr(path, '/') - path), path);
	cr_assert_eq(fs_mkdir_p(dir, 0755), 0, "%s", err_msg());
	cr_assert_eq(fs_write_file_atomic(path, text, strlen(text), 0600), 0, "%s", err_msg());
}

/* Move this test process into a new network namespace with lo up, so that
 * the agent run without --no-network can never touch the host's interfaces.
 * The servers started afterwards listen inside it. false if not allowed. */
static bool ci_isolate(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return false;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	cr_assert_geq(fd, 0);
	cr_assert_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0, "lo up: %s", strerror(errno));
	return true;
}

static void ci_setup(struct ci *c)
{
	if (access(AGENT_BIN, X_OK) != 0)
		cr_skip_test("agent binary not built: run `make %s` first",
			     "templates/bootstrap-agent/rootfs/usr/sbin/qvsa-agent");
	snprintf(c->dir, sizeof(c->dir), "/tmp/qvsa-test-ci-XXXXXX");
	cr_assert_not_null(mkdtemp(c->dir));
	c->root = xasprintf("%s/root", c->dir);
	c->media = xasprintf("%s/media", c->dir);
	cr_assert_eq(fs_mkdir_p(c->media, 0755), 0);
	c->isolated = ci_isolate();
	put(c, "root/etc/qvsa-release", "NAME=\"qVSA\"\nBOOTSTRAP_VERSION=\"qVSA-9.1\"\n");
	struct stub_config cfg = { .expected_code = CODE };
	cr_assert_eq(stub_start(&cfg, &c->stub), 0, "stub_start: %s", err_msg());
	c->url = xasprintf("http://127.0.0.1:%u/", (unsigned)stub_port(c->stub));
	/* the image's URL; the stub speaks plain HTTP, which the image must allow */
	_cleanup_free_ char *conf = xasprintf("ALLOW_HTTP=yes\nPLATFORM_URL=%s\n", c->url);
	put(c, "root/etc/qvsa/platform.conf", conf);
}

static void ci_teardown(struct ci *c)
{
	stub_stop(c->stub);
	fs_rm_rf(c->dir);
	free(c->root);
	free(c->media);
	free(c->url);
	free(c->out);
	free(c->err);
}

/* What cloud-init left: the datasource line and the raw user-data (NULL: no such file). */
static void ci_instance(const struct ci *c, const char *datasource, const char *user_data)
{
	if (datasource)
		put(c, "root/var/lib/cloud/instance/datasource", datasource);
	if (user_data)
		put(c, "root/var/lib/cloud/instance/user-data.txt", user_data);
}

/* verify's own user-data (builder/verify/seed.c) for the code. */
static char *ci_user_data(const struct ci *c, const char *code)
{
	struct seed_params sp = { .instance_id = "iid-ci", .perscode = code, .platform_url = c->url,
				  .poweroff = true };
	char *ud = NULL;
	cr_assert_eq(seed_user_data(&sp, &ud), 0);
	return ud;
}

/* Run the agent with --cloud-init and extra arguments (NULL-terminated).
 * Outside a namespace of its own, --no-network keeps it off the host's
 * interfaces whatever --cloud-init does. */
static void ci_run(struct ci *c, const char *const *extra)
{
	_cleanup_free_ char *outp = xasprintf("%s/stdout", c->dir), *errp = xasprintf("%s/stderr", c->dir);
	const char *argv[16] = { AGENT_BIN, "--root", c->root, "--media-dir", c->media, "--cloud-init" };
	size_t n = 6;
	if (!c->isolated)
		argv[n++] = "--no-network";
	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(AGENT_BIN, (char *const *)argv);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "agent died");
	c->exit_code = WEXITSTATUS(status);
	free(c->out);
	free(c->err);
	cr_assert_eq(fs_read_file(outp, &c->out, NULL), 0);
	cr_assert_eq(fs_read_file(errp, &c->err, NULL), 0);
	cr_assert(strncmp(c->out, "QVSA-AGENT: starting\n", 21) == 0, "stdout: %s", c->out);
	/* the code is a secret: never on the console, whatever happened */
	cr_assert_null(strstr(c->out, CODE), "the code on stdout: %s", c->out);
	cr_assert_null(strstr(c->err, CODE), "the code on stderr: %s", c->err);
}

/* The JSON of the single status line. */
static const char *ci_status(const struct ci *c)
{
	const char *s = strstr(c->out, "QVSA-STATUS: ");
	cr_assert_not_null(s, "no status line; stdout: %s stderr: %s", c->out, c->err);
	cr_assert_null(strstr(s + 1, "QVSA-STATUS: "), "more than one status line");
	static char line[1024];
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(s + 13, "\n"), s + 13);
	return line;
}

static void ci_success_via(struct ci *c, const char *channel)
{
	cr_assert_eq(c->exit_code, 0, "stdout: %s stderr: %s", c->out, c->err);
	_cleanup_free_ char *want = xasprintf("{\"status\":\"success\",\"channel\":\"%s\",\"version\":\"qVSA-9.1\","
					      "\"components\":{\"ML\":\"3.1.0\",\"SCAND\":\"12.9.5\","
					      "\"TAGGER\":\"1.4.2\",\"VULNSIGS\":\"2.6.18-1\"}}", channel);
	cr_assert_str_eq(ci_status(c), want);
	struct stub_report rep;
	stub_report(c->stub, &rep);
	cr_assert_eq(rep.requests, 1);
	cr_assert_str_eq(rep.code, CODE);
	_cleanup_free_ char *marker = xasprintf("%s/etc/qvsa/personalized", c->root);
	cr_assert(fs_exists(marker));
}

Test(cloudinit_agent, nocloud_user_data_then_skipped, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	_cleanup_free_ char *ud = ci_user_data(&c, CODE);
	ci_instance(&c, "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n", ud);
	ci_run(&c, NULL);
	ci_success_via(&c, "nocloud");
	cr_assert(strstr(c.err, "cloud-init used DataSourceNoCloud: channel nocloud\n"), "%s", c.err);
	/* no plan was needed: the channels' own media and services are left alone */
	cr_assert_null(strstr(c.err, "channels to try"), "%s", c.err);
	/* power_state is cloud-init's after this mode: the agent never powers off (not even asked to) */
	cr_assert_null(strstr(c.err, "powering off"), "%s", c.err);

	ci_run(&c, NULL);
	cr_assert_eq(c.exit_code, 0);
	cr_assert_str_eq(ci_status(&c), "{\"status\":\"skipped\",\"version\":\"qVSA-9.1\","
					"\"reason\":\"already personalized\"}");
	ci_teardown(&c);
}

Test(cloudinit_agent, ovf_code_only_in_the_property_falls_back_to_vmware, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	/* vSphere's ISO transport: no user-data property, so cloud-init stored an empty user-data */
	ci_instance(&c, "DataSourceOVF: DataSourceOVF [seed=iso]\n", "");
	_cleanup_free_ char *ovf = xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					     "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" "
					     "xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\">\n"
					     "  <PropertySection>\n"
					     "    <Property oe:key=\"qvsa.perscode\" oe:value=\"" CODE "\"/>\n"
					     "    <Property oe:key=\"qvsa.platform_url\" oe:value=\"%s\"/>\n"
					     "  </PropertySection>\n</Environment>\n", c.url);
	put(&c, "media/OVF ENV/ovf-env.xml", ovf);
	put(&c, "media/cidata/user-data", "PERSCODE=11111111\n"); /* later in the plan: never reached */
	ci_run(&c, NULL);
	ci_success_via(&c, "vmware");
	cr_assert(strstr(c.err, "cloud-init's user-data holds no code; trying channel vmware itself\n"), "%s", c.err);
	cr_assert(strstr(c.err, "channels to try: vmware, nocloud, console\n"), "%s", c.err);
	ci_teardown(&c);
}

Test(cloudinit_agent, ec2_user_data_needs_no_dmi_nor_metadata, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	_cleanup_free_ char *ud = ci_user_data(&c, CODE);
	ci_instance(&c, "DataSourceEc2Local: DataSourceEc2Local\n", ud);
	/* nothing listens there: the agent must not ask IMDS again */
	const char *const extra[] = { "--metadata", "127.0.0.1:1", NULL };
	ci_run(&c, extra);
	ci_success_via(&c, "ec2");
	ci_teardown(&c);
}

Test(cloudinit_agent, ec2_without_code_asks_imds_itself, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	/* user-data for other modules only; no DMI under the root: cloud-init's word is enough */
	ci_instance(&c, "DataSourceEc2Local: DataSourceEc2Local\n", "#cloud-config\nhostname: scanner\n");
	_cleanup_free_ char *ud = ci_user_data(&c, CODE);
	char *token = agent_printf("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nTOKEN1");
	char *body = agent_printf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(ud), ud);
	const char *const script[] = { token, body };
	struct replay imds;
	replay_start(&imds, script, 2, false);
	_cleanup_free_ char *addr = xasprintf("127.0.0.1:%u", (unsigned)imds.port);
	const char *const extra[] = { "--metadata", addr, NULL };
	ci_run(&c, extra);
	cr_assert_eq(replay_count(&imds), 2, "stderr: %s", c.err);
	cr_assert(strncmp(replay_request(&imds, 1), "GET /latest/user-data ", 22) == 0);
	replay_stop(&imds);
	free(token);
	free(body);
	ci_success_via(&c, "ec2");
	cr_assert(strstr(c.err, "channels to try: ec2, console\n"), "%s", c.err);
	ci_teardown(&c);
}

Test(cloudinit_agent, azure_ready_is_left_to_cloud_init, .timeout = 60)
{
	/* cloud-init stored no user-data, so the agent reads the DVD itself: the
	 * azure channel is tried, and still no Ready report goes out (cloud-init made it) */
	struct ci c = { 0 };
	ci_setup(&c);
	ci_instance(&c, "DataSourceAzure: DataSourceAzure [seed=/dev/sr0]\n", NULL);
	put(&c, "root/sys/class/dmi/id/chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77\n");
	_cleanup_free_ char *ud = ci_user_data(&c, CODE);
	_cleanup_free_ char *b64 = agent_base64(ud, strlen(ud));
	_cleanup_free_ char *ovf = xasprintf("<Environment><ProvisioningSection><LinuxProvisioningConfigurationSet>"
					     "<CustomData>%s</CustomData>"
					     "</LinuxProvisioningConfigurationSet></ProvisioningSection></Environment>", b64);
	put(&c, "media/rd_rdfe_stable.230104-1521/ovf-env.xml", ovf);
	const char *const ok[] = { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" };
	struct replay wire;
	replay_start(&wire, ok, 1, true);
	_cleanup_free_ char *addr = xasprintf("127.0.0.1:%u", (unsigned)wire.port);
	const char *const extra[] = { "--wireserver", addr, NULL };
	ci_run(&c, extra);
	cr_assert_eq(replay_count(&wire), 0, "the agent reported Ready after cloud-init did");
	replay_stop(&wire);
	ci_success_via(&c, "azure");
	cr_assert(strstr(c.err, "channels to try: azure, console\n"), "%s", c.err);
	cr_assert_null(strstr(c.err, "reporting ready"), "%s", c.err);
	ci_teardown(&c);
}

Test(cloudinit_agent, no_datasource_file_is_the_normal_plan, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	_cleanup_free_ char *ud = ci_user_data(&c, CODE);
	put(&c, "media/cidata/user-data", ud);
	/* cloud-init disabled: no instance directory at all */
	ci_run(&c, NULL);
	ci_success_via(&c, "nocloud");
	cr_assert(strstr(c.err, "cloud-init named no datasource"), "%s", c.err);
	cr_assert(strstr(c.err, "channels to try: nocloud, console\n"), "%s", c.err);
	ci_teardown(&c);
}

Test(cloudinit_agent, broken_user_data_fails_stage_code, .timeout = 60)
{
	struct ci c = { 0 };
	ci_setup(&c);
	ci_instance(&c, "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n",
		    "#cloud-config\nqvsa:\n  perscode: \"" CODE "\n  platform_url: http://x/\n");
	put(&c, "media/cidata/user-data", "PERSCODE=" CODE "\n"); /* a broken delivery does not fall through */
	ci_run(&c, NULL);
	cr_assert_eq(c.exit_code, 1);
	cr_assert_str_eq(ci_status(&c), "{\"status\":\"failure\",\"stage\":\"code\",\"channel\":\"nocloud\","
					"\"reason\":\"nocloud: cloud-init's user-data: user-data line 3: "
					"unterminated or invalid quoted string\"}");

	/* well-formed, but not a code */
	ci_instance(&c, NULL, "#cloud-config\nqvsa:\n  perscode: \"3141x926\"\n");
	ci_run(&c, NULL);
	cr_assert_eq(c.exit_code, 1);
	cr_assert_str_eq(ci_status(&c), "{\"status\":\"failure\",\"stage\":\"code\",\"channel\":\"nocloud\","
					"\"reason\":\"personalization code must be digits only (character 5 is not)\"}");
	struct stub_report rep;
	stub_report(c.stub, &rep);
	cr_assert_eq(rep.requests, 0);
	_cleanup_free_ char *marker = xasprintf("%s/etc/qvsa/personalized", c.root);
	cr_assert_not(fs_exists(marker));
	ci_teardown(&c);
}

Test(cloudinit_agent, never_runs_dhcp, .timeout = 60)
{
	/* Without --no-network the agent gets to the platform stage (which fails
	 * there at once: https without a CA), never to DHCP and "network". */
	struct ci c = { 0 };
	ci_setup(&c);
	if (!c.isolated) {
		ci_teardown(&c);
		cr_skip_test("no network namespace of its own here (unshare needs CAP_SYS_ADMIN)");
	}
	ci_instance(&c, "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n",
		    "#cloud-config\nqvsa:\n  perscode: " CODE "\n  platform_url: https://p.example/\n");
	ci_run(&c, NULL);
	cr_assert_eq(c.exit_code, 1);
	cr_assert(strstr(ci_status(&c), "\"stage\":\"platform\""), "%s", ci_status(&c));
	cr_assert(strstr(ci_status(&c), "no CA to verify the platform's certificate"), "%s", ci_status(&c));
	cr_assert_null(strstr(c.err, "DHCP"), "%s", c.err);
	ci_teardown(&c);
}
