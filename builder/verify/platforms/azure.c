/* Azure: the provisioning DVD (UDF + ISO9660, label rd_rdfe_stable.*,
 * ovf-env.xml with the user-data as base64 CustomData) and the wireserver
 * at 168.63.129.16, which answers only requests naming a protocol version
 * (x-ms-version), serves the goal state and takes the Ready health report
 * that decides whether Azure calls the deployment a success. */
#include "platform_impl.h"

#include "cleanup.h"
#include "fs.h"
#include "media.h"

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AZURE_DVD_LABEL "rd_rdfe_stable.cloudapp.net"
#define AZURE_USER "qvsa"
#define AZURE_INCARNATION "1" /* one goal state for the whole run */
#define AZURE_NS "http://schemas.microsoft.com/windowsazure"
#define AZURE_XSI "http://www.w3.org/2001/XMLSchema-instance"

/* The wireserver protocol versions, newest first (GET /?comp=versions). */
static const char *const azure_versions[] = {
	"2015-04-05", "2012-11-30", "2012-09-15", "2012-05-15", "2011-12-31",
	"2011-10-15", "2011-08-31", "2011-04-07", "2010-12-15", "2010-28-10",
};

/* ---- the provisioning DVD ---- */

/* ovf-env.xml as Azure writes it. Caller frees; NULL with an error recorded. */
static char *azure_ovf_env(const struct platform_env *env)
{
	_cleanup_free_ char *custom = platform_base64(env->user_data, strlen(env->user_data));
	struct platform_xml x;
	platform_xml_start(&x);
	platform_xml_open(&x, "Environment");
	platform_xml_attr(&x, "xmlns", "http://schemas.dmtf.org/ovf/environment/1");
	platform_xml_attr(&x, "xmlns:oe", "http://schemas.dmtf.org/ovf/environment/1");
	platform_xml_attr(&x, "xmlns:wa", AZURE_NS);
	platform_xml_attr(&x, "xmlns:i", AZURE_XSI);
	platform_xml_open(&x, "wa:ProvisioningSection");
	platform_xml_leaf(&x, "wa:Version", "1.0");
	platform_xml_open(&x, "LinuxProvisioningConfigurationSet");
	platform_xml_attr(&x, "xmlns", AZURE_NS);
	platform_xml_attr(&x, "xmlns:i", AZURE_XSI);
	platform_xml_leaf(&x, "ConfigurationSetType", "LinuxProvisioningConfiguration");
	platform_xml_leaf(&x, "HostName", env->hostname ? env->hostname : "qvsa");
	platform_xml_leaf(&x, "UserName", AZURE_USER);
	platform_xml_leaf(&x, "DisableSshPasswordAuthentication", "true");
	platform_xml_leaf(&x, "CustomData", custom);
	platform_xml_close(&x);
	platform_xml_close(&x);
	platform_xml_open(&x, "wa:PlatformSettingsSection");
	platform_xml_leaf(&x, "wa:Version", "1.0");
	platform_xml_open(&x, "PlatformSettings");
	platform_xml_attr(&x, "xmlns", AZURE_NS);
	platform_xml_attr(&x, "xmlns:i", AZURE_XSI);
	platform_xml_leaf(&x, "KmsServerHostname", "kms.core.windows.net");
	platform_xml_leaf(&x, "ProvisionGuestAgent", "false");
	platform_xml_open(&x, "GuestAgentPackageName");
	platform_xml_attr(&x, "i:nil", "true");
	platform_xml_close(&x);
	platform_xml_leaf(&x, "PreprovisionedVm", "false");
	platform_xml_close(&x);
	platform_xml_close(&x);
	platform_xml_close(&x);
	return platform_xml_finish(&x, "ovf-env.xml");
}

int azure_make_media(const struct platform_env *env, const char *path)
{
	_cleanup_free_ char *xml = azure_ovf_env(env);
	if (!xml)
		return -1;
	const struct media_file files[] = { { .path = "ovf-env.xml", .data = xml, .len = strlen(xml) } };
	return media_write_udf(AZURE_DVD_LABEL, files, ELEMENTSOF(files), env->tmpdir, path);
}

/* ---- the wireserver ---- */

/* The service's state, owned by its platform; fixed once started. */
struct azure {
	struct platform *p;   /* where to record what was seen */
	char container_id[37]; /* Container/ContainerId, derived from the instance id */
	char *instance_id;     /* RoleInstance/InstanceId ("<uuid>.<host>"); owned */
	char *goal_state;      /* the GoalState document; owned */
	char *versions;        /* the Versions document; owned */
};

static void azure_free(void *state)
{
	struct azure *a = state;
	free(a->instance_id);
	free(a->goal_state);
	free(a->versions);
	free(a);
}

static char *azure_goal_state(const struct azure *a)
{
	struct platform_xml x;
	platform_xml_start(&x);
	platform_xml_open(&x, "GoalState");
	platform_xml_attr(&x, "xmlns:xsi", AZURE_XSI);
	platform_xml_attr(&x, "xsi:noNamespaceSchemaLocation", "goalstate10.xsd");
	platform_xml_leaf(&x, "Version", "2012-11-30");
	platform_xml_leaf(&x, "Incarnation", AZURE_INCARNATION);
	platform_xml_open(&x, "Machine");
	platform_xml_leaf(&x, "ExpectedState", "Started");
	platform_xml_leaf(&x, "StopRolesDeadlineHint", "300000");
	platform_xml_open(&x, "LBProbePorts");
	platform_xml_leaf(&x, "Port", "16001");
	platform_xml_close(&x);
	platform_xml_leaf(&x, "ExpectHealthReport", "FALSE");
	platform_xml_close(&x);
	platform_xml_open(&x, "Container");
	platform_xml_leaf(&x, "ContainerId", a->container_id);
	platform_xml_open(&x, "RoleInstanceList");
	platform_xml_open(&x, "RoleInstance");
	platform_xml_leaf(&x, "InstanceId", a->instance_id);
	platform_xml_leaf(&x, "State", "Started");
	platform_xml_close(&x);
	platform_xml_close(&x);
	platform_xml_close(&x);
	platform_xml_close(&x);
	return platform_xml_finish(&x, "the goal state");
}

static char *azure_versions_doc(void)
{
	struct platform_xml x;
	platform_xml_start(&x);
	platform_xml_open(&x, "Versions");
	platform_xml_open(&x, "Preferred");
	platform_xml_leaf(&x, "Version", azure_versions[0]);
	platform_xml_close(&x);
	platform_xml_open(&x, "Supported");
	for (size_t i = 0; i < ELEMENTSOF(azure_versions); i++)
		platform_xml_leaf(&x, "Version", azure_versions[i]);
	platform_xml_close(&x);
	platform_xml_close(&x);
	return platform_xml_finish(&x, "the versions document");
}

/* The wireserver's error document; code and message are constants. */
static void azure_error(struct httpd_response *resp, int status, const char *code, const char *message)
{
	char *body = xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			       "<Error xmlns:xsi=\"" AZURE_XSI "\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
			       "  <Code>%s</Code>\n  <Message>%s</Message>\n</Error>\n", code, message);
	platform_answer_take(resp, status, "text/xml; charset=utf-8", body, strlen(body));
}

/* normalize-space(expr) in doc, a new string (never NULL). */
static char *azure_xpath(xmlXPathContextPtr ctx, const char *expr)
{
	_cleanup_free_ char *full = xasprintf("normalize-space(%s)", expr);
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST full, ctx);
	char *s = xstrdup(o && o->type == XPATH_STRING && o->stringval ? (const char *)o->stringval : "");
	xmlXPathFreeObject(o);
	return s;
}

static void azure_doc_freep(xmlDocPtr *d)
{
	if (*d)
		xmlFreeDoc(*d);
}

static void azure_ctx_freep(xmlXPathContextPtr *c)
{
	if (*c)
		xmlXPathFreeContext(*c);
}

/* Why the health report in body is not a valid Ready for our goal state, into why ("" when it is). */
static void azure_check_health(const struct azure *a, const char *body, size_t len, char *why, size_t size)
{
	_cleanup_(azure_doc_freep) xmlDocPtr doc = NULL;
	if (len <= (size_t)INT32_MAX)
		doc = xmlReadMemory(body, (int)len, "health.xml", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!root) {
		snprintf(why, size, "health report is not XML");
		return;
	}
	if (strcmp((const char *)root->name, "Health") != 0 || root->ns) {
		snprintf(why, size, "health report's root element is <%.32s>, not <Health>", root->name);
		return;
	}
	_cleanup_(azure_ctx_freep) xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	if (!ctx)
		abort();
	const char *role = "/Health/Container/RoleInstanceList/Role";
	_cleanup_free_ char *inc = azure_xpath(ctx, "/Health/GoalStateIncarnation");
	_cleanup_free_ char *cid = azure_xpath(ctx, "/Health/Container/ContainerId");
	_cleanup_free_ char *iid_path = xasprintf("%s/InstanceId", role);
	_cleanup_free_ char *state_path = xasprintf("%s/Health/State", role);
	_cleanup_free_ char *iid = azure_xpath(ctx, iid_path), *state = azure_xpath(ctx, state_path);
	if (strcmp(inc, AZURE_INCARNATION) != 0)
		snprintf(why, size, "health report for incarnation '%.16s', the goal state's is " AZURE_INCARNATION, inc);
	else if (strcmp(cid, a->container_id) != 0)
		snprintf(why, size, "health report for container '%.48s', the goal state's is '%s'", cid,
			 a->container_id);
	else if (strcmp(iid, a->instance_id) != 0)
		snprintf(why, size, "health report for role instance '%.64s', the goal state's is '%.64s'", iid,
			 a->instance_id);
	else if (strcmp(state, "Ready") != 0)
		snprintf(why, size, "health report with state '%.32s', not Ready", state);
	else
		why[0] = 0;
}

static void azure_health(struct azure *a, const struct httpd_request *rq, struct httpd_response *resp)
{
	char why[200] = "";
	const char *type = httpd_header(rq, "Content-Type");
	if (!type || strncasecmp(type, "text/xml", 8) != 0)
		snprintf(why, sizeof(why), "health report with Content-Type '%.48s', not text/xml", type ? type : "");
	else
		azure_check_health(a, rq->body ? rq->body : "", rq->body_len, why, sizeof(why));
	if (why[0]) {
		platform_note_not_ready(a->p, "%s", why);
		return azure_error(resp, 400, "InvalidHealthReport", "The health report does not match the goal state.");
	}
	platform_note_ready(a->p);
	platform_answer(resp, 200, NULL, NULL);
}

static bool azure_version_known(const char *v)
{
	for (size_t i = 0; i < ELEMENTSOF(azure_versions); i++)
		if (strcmp(v, azure_versions[i]) == 0)
			return true;
	return false;
}

static void azure_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct azure *a = opaque;
	char comp[32] = "";
	platform_query_param(rq->query, "comp", comp, sizeof(comp));
	bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
	/* the versions list is how a client learns what to send: no version needed */
	if (strcmp(rq->path, "/") == 0 && strcmp(comp, "versions") == 0 && get)
		return platform_answer(resp, 200, "text/xml; charset=utf-8", a->versions);
	const char *version = httpd_header(rq, "x-ms-version");
	if (!version || !azure_version_known(version)) {
		if (version)
			platform_note_refused(a->p, "%s %.48s?%.32s with unknown x-ms-version '%.32s'", rq->method,
					      rq->path, rq->query, version);
		else
			platform_note_refused(a->p, "%s %.48s?%.32s without x-ms-version", rq->method, rq->path,
					      rq->query);
		return azure_error(resp, 400, "MissingOrInvalidRequiredHeader",
				   "A required header (x-ms-version) is missing or invalid.");
	}
	bool machine = strcmp(rq->path, "/machine") == 0 || strcmp(rq->path, "/machine/") == 0;
	if (machine && strcmp(comp, "goalstate") == 0 && get)
		return platform_answer(resp, 200, "text/xml; charset=utf-8", a->goal_state);
	if (machine && strcmp(comp, "health") == 0 && post)
		return azure_health(a, rq, resp);
	if (machine && (strcmp(comp, "goalstate") == 0 || strcmp(comp, "health") == 0))
		return azure_error(resp, 405, "MethodNotAllowed", "The method is not allowed here.");
	azure_error(resp, 404, "ResourceNotFound", "The resource does not exist.");
}

int azure_start(const struct platform_env *env, struct platform *p)
{
	struct azure *a = calloc(1, sizeof(*a));
	if (!a)
		abort();
	a->p = p;
	platform_own(p, a, azure_free);
	char role[37];
	platform_derive_uuid(env->instance_id, "azure-container", a->container_id);
	platform_derive_uuid(env->instance_id, "azure-role-instance", role);
	a->instance_id = xasprintf("%s.%s", role, env->hostname ? env->hostname : "qvsa");
	a->goal_state = azure_goal_state(a);
	a->versions = azure_versions_doc();
	if (!a->goal_state || !a->versions)
		return -1;
	return platform_serve(p, PLATFORM_WIRESERVER_ADDR, PLATFORM_HTTP_PORT, azure_handle, a);
}
