/* The channels that hand over an OVF environment document (ovf-env.xml) on a
 * CD: Azure's provisioning DVD (base64 CustomData, then the Ready report to
 * the wireserver) and vSphere's ISO transport (qvsa.* properties). */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_AZURE_VERSION "x-ms-version: 2012-11-30\r\n"

/* Read ovf-env.xml from the medium; its absence breaks the channel. */
static int agent_ovf_env(const struct agent_chan_env *env, const struct agent_medium *m, char **ret_xml)
{
	char dir[4096];
	if (agent_medium_open(m, env->mountpoint, dir, sizeof(dir)) < 0)
		return -1;
	fprintf(stderr, "qvsa-agent: reading ovf-env.xml from %s (label %s)\n",
		m->fs == AGENT_FS_DIR ? m->source : m->name, m->label);
	int r = agent_medium_read(dir, "ovf-env.xml", false, ret_xml);
	agent_medium_close(m, env->mountpoint);
	return r;
}

/* Decode a base64 value into text, naming what it was in the error. */
static int agent_b64_text(char *b64, const char *what, char **ret)
{
	size_t len;
	int r = agent_base64_decode(b64, strlen(b64), ret, &len);
	explicit_bzero(b64, strlen(b64));
	free(b64);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", agent_error());
		return agent_fail("%s: %s", what, why);
	}
	return 0;
}

int agent_azure_ovf_parse(const char *xml, char **ret_user_data)
{
	char *b64 = NULL;
	int r = agent_xml_text(xml, "Environment/ProvisioningSection/LinuxProvisioningConfigurationSet/CustomData", &b64);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", agent_error());
		return agent_fail("ovf-env.xml: %s", why);
	}
	if (r == 1 || !*b64) {
		free(b64);
		return 1;
	}
	return agent_b64_text(b64, "ovf-env.xml CustomData", ret_user_data);
}

int agent_ch_azure(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	char *xml = NULL;
	if (agent_ovf_env(env, m, &xml) < 0)
		return -1;
	int r = agent_azure_ovf_parse(xml, &ret->user_data);
	explicit_bzero(xml, strlen(xml));
	free(xml);
	return r;
}

int agent_azure_health(const char *goal_state, char **ret_xml)
{
	static const char *const paths[3] = { "GoalState/Incarnation", "GoalState/Container/ContainerId",
					      "GoalState/Container/RoleInstanceList/RoleInstance/InstanceId" };
	char *v[3] = { NULL, NULL, NULL };
	int rc = 0;
	for (size_t i = 0; i < 3 && rc == 0; i++) {
		int r = agent_xml_text(goal_state, paths[i], &v[i]);
		if (r < 0) {
			char why[256];
			snprintf(why, sizeof(why), "%s", agent_error());
			rc = agent_fail("goal state: %s", why);
		} else if (r == 1 || !*v[i]) {
			rc = agent_fail("goal state: no %s", paths[i]);
		} else {
			char *e = agent_xml_escape(v[i]);
			free(v[i]);
			v[i] = e;
		}
	}
	if (rc == 0)
		*ret_xml = agent_printf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
					"<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
					"xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
					"  <GoalStateIncarnation>%s</GoalStateIncarnation>\n"
					"  <Container>\n"
					"    <ContainerId>%s</ContainerId>\n"
					"    <RoleInstanceList>\n"
					"      <Role>\n"
					"        <InstanceId>%s</InstanceId>\n"
					"        <Health><State>Ready</State></Health>\n"
					"      </Role>\n"
					"    </RoleInstanceList>\n"
					"  </Container>\n"
					"</Health>\n",
					v[0], v[1], v[2]);
	for (size_t i = 0; i < 3; i++)
		free(v[i]);
	return rc;
}

/* Without this report Azure fails the deployment (as the Linux agent and
 * cloud-init do it: goal state, then a Ready health report). */
int agent_ch_azure_ready(const struct agent_chan_env *env)
{
	int status;
	char *goal = NULL, *health = NULL, *resp = NULL;
	if (agent_meta_request(env, env->wireserver_host, env->wireserver_port, "GET", "/machine/?comp=goalstate",
			       AGENT_AZURE_VERSION, NULL, &status, &goal) < 0)
		return -1;
	if (status != 200) {
		free(goal);
		return agent_fail("GET /machine/?comp=goalstate: answered HTTP %d", status);
	}
	int r = agent_azure_health(goal, &health);
	free(goal);
	if (r < 0)
		return -1;
	r = agent_meta_request(env, env->wireserver_host, env->wireserver_port, "POST", "/machine/?comp=health",
			       AGENT_AZURE_VERSION "x-ms-agent-name: qvsa-agent\r\n"
						   "Content-Type: text/xml; charset=utf-8\r\n",
			       health, &status, &resp);
	free(health);
	free(resp);
	if (r < 0)
		return -1;
	if (status != 200)
		return agent_fail("POST /machine/?comp=health: answered HTTP %d", status);
	return 0;
}

/* A property vSphere delivers: absent and empty (declared, left blank) are alike. */
static int agent_ovf_prop(const char *xml, const char *key, char **ret)
{
	char *v = NULL;
	int r = agent_xml_ovf_property(xml, key, &v);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", agent_error());
		return agent_fail("ovf-env.xml: %s", why);
	}
	if (r == 0 && *v) {
		*ret = v;
		return 0;
	}
	free(v);
	return 1;
}

int agent_vmware_ovf_parse(const char *xml, struct agent_delivery *ret)
{
	struct agent_delivery d = { 0 };
	char *b64 = NULL;
	int r = agent_ovf_prop(xml, "qvsa.perscode", &d.perscode);
	if (r >= 0)
		r = agent_ovf_prop(xml, "qvsa.platform_url", &d.platform_url);
	if (r >= 0)
		r = agent_ovf_prop(xml, "user-data", &b64);
	if (r == 0 && b64)
		r = agent_b64_text(b64, "ovf-env.xml user-data", &d.user_data);
	if (r < 0) {
		agent_delivery_free(&d);
		return -1;
	}
	if (!d.perscode && !d.user_data) {
		agent_delivery_free(&d);
		return 1;
	}
	*ret = d;
	return 0;
}

int agent_ch_vmware(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	char *xml = NULL;
	if (agent_ovf_env(env, m, &xml) < 0)
		return -1;
	int r = agent_vmware_ovf_parse(xml, ret);
	explicit_bzero(xml, strlen(xml));
	free(xml);
	return r;
}
