/* OVF environments (Azure's provisioning DVD, vSphere's ISO transport), the
 * Azure Ready report against a replayed wireserver, and the small parsers
 * under them (XML text, strict base64). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chan_replay.h"
#include "channel.h"
#include "cleanup.h"
#include "fs.h"

#define CLOUD_CONFIG "#cloud-config\nqvsa:\n  perscode: \"12345678\"\n"
/* base64 of CLOUD_CONFIG, wrapped as Azure's portal does not, but tools may */
#define CLOUD_CONFIG_B64 "I2Nsb3VkLWNvbmZpZwpxdnNhOgogIHBlcnNjb2RlOiAi\n      MTIzNDU2NzgiCg=="

/* An ovf-env.xml as Azure writes it on the provisioning DVD (trimmed). */
static const char azure_ovf[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<ns0:Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" "
	"xmlns:ns0=\"http://schemas.dmtf.org/ovf/environment/1\" xmlns:ns1=\"http://schemas.microsoft.com/windowsazure\" "
	"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
	"  <ns1:ProvisioningSection>\n"
	"    <ns1:Version>1.0</ns1:Version>\n"
	"    <ns1:LinuxProvisioningConfigurationSet>\n"
	"      <ns1:ConfigurationSetType>LinuxProvisioningConfiguration</ns1:ConfigurationSetType>\n"
	"      <ns1:HostName>qvsa-1</ns1:HostName>\n"
	"      <ns1:UserName>azureuser</ns1:UserName>\n"
	"      <ns1:DisableSshPasswordAuthentication>true</ns1:DisableSshPasswordAuthentication>\n"
	"      <ns1:SSH><ns1:PublicKeys><ns1:PublicKey><ns1:Fingerprint>EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62"
	"</ns1:Fingerprint><ns1:Path>/home/azureuser/.ssh/authorized_keys</ns1:Path></ns1:PublicKey>"
	"</ns1:PublicKeys></ns1:SSH>\n"
	"      <ns1:CustomData>" CLOUD_CONFIG_B64 "</ns1:CustomData>\n"
	"    </ns1:LinuxProvisioningConfigurationSet>\n"
	"  </ns1:ProvisioningSection>\n"
	"  <ns1:PlatformSettingsSection>\n"
	"    <ns1:Version>1.0</ns1:Version>\n"
	"    <ns1:PlatformSettings><ns1:KmsServerHostname>kms.core.windows.net</ns1:KmsServerHostname>"
	"<ns1:ProvisionGuestAgent>false</ns1:ProvisionGuestAgent>"
	"<ns1:GuestAgentPackageName xsi:nil=\"true\" /><ns1:PreprovisionedVm>false</ns1:PreprovisionedVm>"
	"</ns1:PlatformSettings>\n"
	"  </ns1:PlatformSettingsSection>\n"
	"</ns0:Environment>\n";

/* A goal state as the wireserver answers it (trimmed). */
static const char goal_state[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<GoalState xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"goalstate10.xsd\">\n"
	"  <Version>2012-11-30</Version>\n"
	"  <Incarnation>1</Incarnation>\n"
	"  <Machine>\n"
	"    <ExpectedState>Started</ExpectedState>\n"
	"    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>\n"
	"    <LBProbePorts><Port>16001</Port></LBProbePorts>\n"
	"    <ExpectHealthReport>FALSE</ExpectHealthReport>\n"
	"  </Machine>\n"
	"  <Container>\n"
	"    <ContainerId>c6d5ba1c-1f3e-4c21-9e5f-0c7b6a3d2e10</ContainerId>\n"
	"    <RoleInstanceList>\n"
	"      <RoleInstance>\n"
	"        <InstanceId>896c4e7d-fb13-4b8e-a9d5-3c51e2a0b6f4.qvsa-1</InstanceId>\n"
	"        <State>Started</State>\n"
	"        <Configuration>\n"
	"          <HostingEnvironmentConfig>http://168.63.129.16:80/machine/896c?comp=config&amp;type=hostingEnvironmentConfig&amp;incarnation=1</HostingEnvironmentConfig>\n"
	"        </Configuration>\n"
	"      </RoleInstance>\n"
	"    </RoleInstanceList>\n"
	"  </Container>\n"
	"</GoalState>\n";

static const char health_want[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
	"  <GoalStateIncarnation>1</GoalStateIncarnation>\n"
	"  <Container>\n"
	"    <ContainerId>c6d5ba1c-1f3e-4c21-9e5f-0c7b6a3d2e10</ContainerId>\n"
	"    <RoleInstanceList>\n"
	"      <Role>\n"
	"        <InstanceId>896c4e7d-fb13-4b8e-a9d5-3c51e2a0b6f4.qvsa-1</InstanceId>\n"
	"        <Health><State>Ready</State></Health>\n"
	"      </Role>\n"
	"    </RoleInstanceList>\n"
	"  </Container>\n"
	"</Health>\n";

/* vSphere's ovf-env.xml on the "OVF ENV" ISO, with the qvsa properties. */
static const char vsphere_head[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Environment\n"
	"     xmlns=\"http://schemas.dmtf.org/ovf/environment/1\"\n"
	"     xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
	"     xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\"\n"
	"     xmlns:ve=\"http://www.vmware.com/schema/ovfenv\"\n"
	"     oe:id=\"\"\n"
	"     ve:vCenterId=\"vm-1042\">\n"
	"   <PlatformSection>\n"
	"      <Kind>VMware ESXi</Kind>\n"
	"      <Version>7.0.3</Version>\n"
	"      <Vendor>VMware, Inc.</Vendor>\n"
	"      <Locale>en</Locale>\n"
	"   </PlatformSection>\n"
	"   <PropertySection>\n";
static const char vsphere_tail[] =
	"   </PropertySection>\n"
	"   <ve:EthernetAdapterSection>\n"
	"      <ve:Adapter ve:mac=\"00:50:56:9a:3c:01\" ve:network=\"VM Network\" ve:unitNumber=\"7\"/>\n"
	"   </ve:EthernetAdapterSection>\n"
	"</Environment>\n";

static char *vsphere(const char *props)
{
	return agent_printf("%s%s%s", vsphere_head, props, vsphere_tail);
}

Test(channel_xml, text_entities_cdata_and_errors)
{
	char *v = NULL;
	cr_assert_eq(agent_xml_text("<a><b x='1' y=\"2\">t &amp; &lt;u&gt; &#65;&#x42;</b></a>", "a/b", &v), 0);
	cr_assert_str_eq(v, "t & <u> AB");
	free(v);
	cr_assert_eq(agent_xml_text("<?xml version='1.0'?><!-- c --><p:a xmlns:p='u'><p:b><![CDATA[<raw>]]></p:b></p:a>",
				    "a/b", &v), 0);
	cr_assert_str_eq(v, "<raw>");
	free(v);
	cr_assert_eq(agent_xml_text("<a><c/><b/></a>", "a/b", &v), 0);
	cr_assert_str_eq(v, "");
	free(v);
	cr_assert_eq(agent_xml_text("<a><b>x</b></a>", "a/c", &v), 1);
	cr_assert_eq(agent_xml_text("<a><b>x</b></a>", "b", &v), 1, "paths start at the root");
	static const char *const bad[] = {
		"", "not xml at all", "<a><b>x</a></b>", "<a>", "<a></a><b></b>", "<a>&nbsp;</a>",
		"<a x=1></a>", "<a x='1></a>", "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", "<a><!-- </a>",
		"<a>x</a>trailing", "<a x='1'y='2'></a>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(agent_xml_text(bad[i], "a", &v), -1, "accepted: %s", bad[i]);
	char *e = agent_xml_escape("a<b>&\"c'");
	cr_assert_str_eq(e, "a&lt;b&gt;&amp;&quot;c&apos;");
	free(e);
}

Test(channel_xml, base64_strict)
{
	char *out;
	size_t len;
	cr_assert_eq(agent_base64_decode("aGVsbG8=", 8, &out, &len), 0);
	cr_assert_str_eq(out, "hello");
	cr_assert_eq(len, 5);
	free(out);
	cr_assert_eq(agent_base64_decode(" aGVs\r\nbG8h \n", 13, &out, &len), 0);
	cr_assert_str_eq(out, "hello!");
	free(out);
	cr_assert_eq(agent_base64_decode("", 0, &out, &len), 0);
	cr_assert_str_eq(out, "");
	free(out);
	static const char *const bad[] = { "aGVsbG8", "aGVsbG8=x", "aGVs*G8=", "a===", "aGVsbG9=", "aGVsbA=A",
					   "AAAA" /* NUL bytes */, "aGVsbG8=aGVs" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(agent_base64_decode(bad[i], strlen(bad[i]), &out, &len), -1, "accepted: %s", bad[i]);
}

Test(channel_azure, ovf_env_custom_data)
{
	char *ud = NULL;
	cr_assert_eq(agent_azure_ovf_parse(azure_ovf, &ud), 0, "%s", agent_error());
	cr_assert_str_eq(ud, CLOUD_CONFIG);
	free(ud);
	/* no CustomData: nothing delivered; broken base64 or XML: the channel fails */
	char *none = strdup(azure_ovf);
	char *cd = strstr(none, "<ns1:CustomData>");
	memcpy(cd, "<ns1:CustomDatX>", 16);
	memcpy(strstr(cd, "</ns1:CustomData>"), "</ns1:CustomDatX>", 17);
	cr_assert_eq(agent_azure_ovf_parse(none, &ud), 1);
	free(none);
	char *bad = strdup(azure_ovf);
	strstr(bad, "I2Nsb3Vk")[3] = '!';
	cr_assert_eq(agent_azure_ovf_parse(bad, &ud), -1);
	cr_assert(strstr(agent_error(), "CustomData: base64"), "%s", agent_error());
	free(bad);
	cr_assert_eq(agent_azure_ovf_parse("<Environment><ProvisioningSection>", &ud), -1);
	cr_assert(strstr(agent_error(), "ovf-env.xml: XML"), "%s", agent_error());
}

Test(channel_azure, fetch_from_a_medium_directory)
{
	char dir[] = "/tmp/qvsa-test-azure-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	_cleanup_free_ char *path = xasprintf("%s/ovf-env.xml", dir);
	struct agent_medium m = { .fs = AGENT_FS_DIR };
	snprintf(m.source, sizeof(m.source), "%s", dir);
	struct agent_chan_env env = { .console_fds = { -1, -1 } };
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_azure(&env, &m, &d), -1, "a DVD without ovf-env.xml is broken");
	cr_assert_eq(fs_write_file_atomic(path, azure_ovf, strlen(azure_ovf), 0644), 0);
	cr_assert_eq(agent_ch_azure(&env, &m, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.user_data, CLOUD_CONFIG);
	agent_delivery_free(&d);
	fs_rm_rf(dir);
}

Test(channel_azure, ready_report)
{
	char *gs = agent_printf("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
				strlen(goal_state), goal_state);
	const char *const script[] = { gs, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" };
	struct replay srv;
	replay_start(&srv, script, 2, false);
	struct agent_chan_env env = { .wireserver_host = "127.0.0.1", .wireserver_port = srv.port, .meta_pause_ms = 10 };
	cr_assert_eq(agent_ch_azure_ready(&env), 0, "%s", agent_error());
	cr_assert_eq(replay_count(&srv), 2);
	const char *get = replay_request(&srv, 0), *post = replay_request(&srv, 1);
	cr_assert_eq(strncmp(get, "GET /machine/?comp=goalstate HTTP/1.1\r\n", 39), 0, "%s", get);
	cr_assert(strstr(get, "\r\nx-ms-version: 2012-11-30\r\n"), "%s", get);
	cr_assert_eq(strncmp(post, "POST /machine/?comp=health HTTP/1.1\r\n", 37), 0, "%s", post);
	cr_assert(strstr(post, "\r\nx-ms-version: 2012-11-30\r\n"), "%s", post);
	cr_assert(strstr(post, "\r\nx-ms-agent-name: qvsa-agent\r\n"), "%s", post);
	cr_assert(strstr(post, "\r\nContent-Type: text/xml; charset=utf-8\r\n"), "%s", post);
	const char *body = strstr(post, "\r\n\r\n");
	cr_assert_str_eq(body + 4, health_want);
	replay_stop(&srv);
	free(gs);
}

Test(channel_azure, ready_failures)
{
	/* the wireserver refuses a request without x-ms-version with 400; here it refuses anyway */
	const char *const script[] = { "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" };
	struct replay srv;
	replay_start(&srv, script, 1, false);
	struct agent_chan_env env = { .wireserver_host = "127.0.0.1", .wireserver_port = srv.port, .meta_pause_ms = 10 };
	cr_assert_eq(agent_ch_azure_ready(&env), -1);
	cr_assert(strstr(agent_error(), "goalstate: answered HTTP 400"), "%s", agent_error());
	replay_stop(&srv);
	char *xml = NULL;
	cr_assert_eq(agent_azure_health("<GoalState><Incarnation>1</Incarnation></GoalState>", &xml), -1);
	cr_assert(strstr(agent_error(), "no GoalState/Container/ContainerId"), "%s", agent_error());
	cr_assert_eq(agent_azure_health("<GoalState><Incarnation>1</GoalState>", &xml), -1);
}

Test(channel_vmware, properties)
{
	static const char ud[] = "#cloud-config\nqvsa:\n  perscode: \"11111111\"\n  platform_url: http://ud/\n"
				 "power_state:\n  mode: poweroff\n";
	char *b64 = agent_base64(ud, strlen(ud));
	char *props = agent_printf("         <Property oe:key=\"qvsa.perscode\" oe:value=\"12345678\"/>\n"
				   "         <Property oe:key=\"qvsa.platform_url\" oe:value=\"http://10.0.2.2:8080/?a=1&amp;b=2\"/>\n"
				   "         <Property oe:key=\"user-data\" oe:value=\"%s\"/>\n", b64);
	char *xml = vsphere(props);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_vmware_ovf_parse(xml, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.perscode, "12345678");
	cr_assert_str_eq(d.platform_url, "http://10.0.2.2:8080/?a=1&b=2");
	cr_assert_str_eq(d.user_data, ud);
	agent_delivery_free(&d);
	free(b64);
	free(props);
	free(xml);
}

Test(channel_vmware, missing_empty_and_broken)
{
	/* declared but left blank in the vSphere client, or not there at all: nothing delivered */
	char *xml = vsphere("         <Property oe:key=\"qvsa.perscode\" oe:value=\"\"/>\n"
			    "         <Property oe:key=\"hostname\" oe:value=\"scanner\"/>\n");
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_vmware_ovf_parse(xml, &d), 1);
	free(xml);
	xml = vsphere("");
	cr_assert_eq(agent_vmware_ovf_parse(xml, &d), 1);
	free(xml);
	xml = vsphere("         <Property oe:key=\"user-data\" oe:value=\"not base64!\"/>\n");
	cr_assert_eq(agent_vmware_ovf_parse(xml, &d), -1);
	cr_assert(strstr(agent_error(), "user-data: base64"), "%s", agent_error());
	free(xml);
	xml = vsphere("         <Property oe:key=\"qvsa.perscode\" oe:value=\"12345678\">\n");
	cr_assert_eq(agent_vmware_ovf_parse(xml, &d), -1, "garbage XML");
	free(xml);
	cr_assert_null(d.perscode);
}
