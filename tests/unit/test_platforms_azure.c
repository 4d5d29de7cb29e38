/* Azure's wireserver emulator: the version rule, the goal state read back
 * with libxml2, and health reports in the shape docs/channels.md gives:
 * Ready accepted, every mismatch rejected with its reason. */
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "cleanup.h"
#include "platform_test.h"

#define VERSION_HEADERS "x-ms-version", "2012-11-30"

/* The ids the goal state names. */
struct goal {
	char incarnation[16];
	char container[64];
	char instance[128];
};

static void xpath_text(xmlXPathContextPtr ctx, const char *expr, char *out, size_t size)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	cr_assert_not_null(o, "%s", expr);
	xmlChar *s = xmlXPathCastToString(o);
	snprintf(out, size, "%s", (const char *)s);
	xmlFree(s);
	xmlXPathFreeObject(o);
}

static struct goal goal_state(struct platform *p)
{
	const char *h[] = { VERSION_HEADERS, NULL };
	struct httpd_response r = pt_call(p, PT_WIRE, "GET", "/machine/?comp=goalstate", NULL, h);
	cr_assert_eq(r.status, 200, "%d %s", r.status, pt_body(&r));
	cr_assert(strstr(r.content_type, "text/xml"));
	xmlDocPtr doc = xmlReadMemory(r.body, (int)r.body_len, NULL, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc, "goal state is not XML: %s", pt_body(&r));
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	struct goal g;
	char state[32];
	xpath_text(ctx, "string(/GoalState/Incarnation)", g.incarnation, sizeof(g.incarnation));
	xpath_text(ctx, "string(/GoalState/Container/ContainerId)", g.container, sizeof(g.container));
	xpath_text(ctx, "string(/GoalState/Container/RoleInstanceList/RoleInstance/InstanceId)", g.instance,
		   sizeof(g.instance));
	xpath_text(ctx, "string(/GoalState/Machine/ExpectedState)", state, sizeof(state));
	cr_assert_str_eq(state, "Started");
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	free(r.body);
	cr_assert_str_eq(g.incarnation, "1");
	cr_assert_eq(strlen(g.container), 36, "container '%s'", g.container);
	cr_assert(strstr(g.instance, ".qvsa-verify"), "instance '%s'", g.instance);
	return g;
}

/* The report of docs/channels.md with these values. Caller frees. */
static char *health_xml(const char *incarnation, const char *container, const char *instance, const char *state)
{
	return xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			 "<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
			 "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
			 "  <GoalStateIncarnation>%s</GoalStateIncarnation>\n"
			 "  <Container>\n"
			 "    <ContainerId>%s</ContainerId>\n"
			 "    <RoleInstanceList>\n"
			 "      <Role>\n"
			 "        <InstanceId>%s</InstanceId>\n"
			 "        <Health><State>%s</State></Health>\n"
			 "      </Role>\n"
			 "    </RoleInstanceList>\n"
			 "  </Container>\n"
			 "</Health>\n", incarnation, container, instance, state);
}

static int post_health(struct platform *p, const char *body, const char *content_type)
{
	const char *h[] = { VERSION_HEADERS, "x-ms-agent-name", "qvsa-agent", "Content-Type", content_type, NULL };
	struct httpd_response r = pt_call(p, PT_WIRE, "POST", "/machine/?comp=health", body, h);
	free(r.body);
	return r.status;
}

Test(platform_azure, version_header_rule, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("azure");
	struct httpd_response r = pt_call(p, PT_WIRE, "GET", "/machine/?comp=goalstate", NULL, NULL);
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(pt_body(&r), "<Error"), "%s", pt_body(&r));
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_eq(rep.refused, 1);
	cr_assert_str_eq(rep.refused_why, "GET /machine/?comp=goalstate without x-ms-version");
	const char *odd[] = { "x-ms-version", "2099-01-01", NULL };
	r = pt_call(p, PT_WIRE, "GET", "/machine/?comp=goalstate", NULL, odd);
	cr_assert_eq(r.status, 400);
	free(r.body);
	/* the versions list needs no version, as on the real wireserver */
	r = pt_call(p, PT_WIRE, "GET", "/?comp=versions", NULL, NULL);
	cr_assert_eq(r.status, 200);
	xmlDocPtr doc = xmlReadMemory(r.body, (int)r.body_len, NULL, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc);
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	char preferred[32], has[8];
	xpath_text(ctx, "string(/Versions/Preferred/Version)", preferred, sizeof(preferred));
	xpath_text(ctx, "count(/Versions/Supported/Version[. = '2012-11-30'])", has, sizeof(has));
	cr_assert_str_eq(preferred, "2015-04-05");
	cr_assert_str_eq(has, "1");
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	free(r.body);
	/* a health report without a version is refused before it is read */
	struct goal g = goal_state(p);
	_cleanup_free_ char *ok = health_xml(g.incarnation, g.container, g.instance, "Ready");
	const char *h[] = { "Content-Type", "text/xml; charset=utf-8", NULL };
	r = pt_call(p, PT_WIRE, "POST", "/machine/?comp=health", ok, h);
	cr_assert_eq(r.status, 400);
	free(r.body);
	rep = pt_report(p);
	cr_assert_eq(rep.refused, 3);
	cr_assert_not(rep.ready);
	platform_stop(p);
}

Test(platform_azure, ready_is_accepted, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("azure");
	struct goal g = goal_state(p);
	cr_assert_not(pt_report(p).ready);
	_cleanup_free_ char *ok = health_xml(g.incarnation, g.container, g.instance, "Ready");
	cr_assert_eq(post_health(p, ok, "text/xml; charset=utf-8"), 200);
	struct platform_report rep = pt_report(p);
	cr_assert(rep.ready);
	cr_assert_str_eq(rep.ready_detail, "");
	cr_assert_eq(rep.refused, 0, "%s", rep.refused_why);
	cr_assert_not(rep.delivered, "the DVD delivers Azure's user-data, not the wireserver");
	platform_stop(p);
}

Test(platform_azure, ids_are_derived_from_the_instance, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *a = pt_prepare("azure"), *b = pt_prepare("azure");
	struct goal ga = goal_state(a), gb = goal_state(b);
	cr_assert_str_eq(ga.container, gb.container);
	cr_assert_str_eq(ga.instance, gb.instance);
	platform_stop(b);
	struct platform_env env = pt_env();
	env.instance_id = "iid-another-run";
	cr_assert_eq(platform_prepare(platform_find("azure"), &env, &b), 0, "%s", err_msg());
	struct goal gc = goal_state(b);
	cr_assert_str_neq(ga.container, gc.container);
	cr_assert_str_neq(ga.instance, gc.instance);
	platform_stop(a);
	platform_stop(b);
}

Test(platform_azure, bad_reports_are_rejected_with_a_reason, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("azure");
	struct goal g = goal_state(p);
	platform_stop(p);
	_cleanup_free_ char *wrong_container = health_xml("1", "00000000-0000-4000-8000-000000000000", g.instance, "Ready");
	_cleanup_free_ char *wrong_incarnation = health_xml("2", g.container, g.instance, "Ready");
	_cleanup_free_ char *wrong_instance = health_xml("1", g.container, "someone-else", "Ready");
	_cleanup_free_ char *not_ready = health_xml("1", g.container, g.instance, "NotReady");
	_cleanup_free_ char *good = health_xml("1", g.container, g.instance, "Ready");
	const struct {
		const char *body, *type, *detail;
	} cases[] = {
		{ wrong_container, "text/xml; charset=utf-8",
		  "health report for container '00000000-0000-4000-8000-000000000000', the goal state's is '" },
		{ wrong_incarnation, "text/xml", "health report for incarnation '2', the goal state's is 1" },
		{ wrong_instance, "text/xml", "health report for role instance 'someone-else'" },
		{ not_ready, "text/xml", "health report with state 'NotReady', not Ready" },
		{ "<Health><unclosed>", "text/xml", "health report is not XML" },
		{ "", "text/xml", "health report is not XML" },
		{ "<Other/>", "text/xml", "health report's root element is <Other>, not <Health>" },
		{ good, "application/json", "health report with Content-Type 'application/json', not text/xml" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = pt_prepare("azure");
		cr_assert_eq(post_health(p, cases[i].body, cases[i].type), 400, "case %zu accepted", i);
		struct platform_report rep = pt_report(p);
		cr_assert_not(rep.ready, "case %zu", i);
		cr_assert(strstr(rep.ready_detail, cases[i].detail), "case %zu: '%s'", i, rep.ready_detail);
		/* a good report afterwards still counts; the first reason stays */
		cr_assert_eq(post_health(p, good, "text/xml; charset=utf-8"), 200);
		rep = pt_report(p);
		cr_assert(rep.ready);
		cr_assert(strstr(rep.ready_detail, cases[i].detail), "case %zu: '%s'", i, rep.ready_detail);
		platform_stop(p);
	}
}

Test(platform_azure, other_requests, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("azure");
	const char *h[] = { VERSION_HEADERS, NULL };
	struct httpd_response r = pt_call(p, PT_WIRE, "POST", "/machine/?comp=goalstate", NULL, h);
	cr_assert_eq(r.status, 405);
	free(r.body);
	r = pt_call(p, PT_WIRE, "GET", "/machine/?comp=certificates", NULL, h);
	cr_assert_eq(r.status, 404);
	free(r.body);
	r = pt_call(p, PT_WIRE, "GET", "/machine?comp=goalstate&incarnation=1", NULL, h);
	cr_assert_eq(r.status, 200, "/machine without a slash, and more parameters");
	free(r.body);
	const struct platform_fwd *f;
	cr_assert_eq(platform_fwds(p, &f), 1);
	cr_assert_str_eq(f[0].addr, PT_WIRE);
	cr_assert_eq(pt_report(p).refused, 0);
	platform_stop(p);
}
