/* The platform table against docs/channels.md, the lifecycle's bookkeeping,
 * and the metadata emulators of EC2, GCE, OCI and OpenStack: the happy path
 * and every refusal, called directly (no server, no VM). */
#include <ctype.h>
#include <unistd.h>

#include "cleanup.h"
#include "json.h"
#include "platform_test.h"

Test(platform_table, names_come_from_the_table)
{
	cr_assert_str_eq(platform_names(), "nocloud, configdrive, openstack, ec2, gce, oci, azure, vmware, console");
	_cleanup_free_ char *names = xstrdup(platform_names());
	size_t rows = 0;
	for (char *save = NULL, *n = strtok_r(names, ", ", &save); n; n = strtok_r(NULL, ", ", &save), rows++) {
		const struct platform_ops *ops = platform_find(n);
		cr_assert_not_null(ops, "%s", n);
		cr_assert_str_eq(ops->name, n);
		cr_assert_str_eq(ops->channel, n, "verification's platforms are named after their channel");
		cr_assert(ops->description && *ops->description);
	}
	cr_assert_eq(rows, 9);
	cr_assert_null(platform_find("azure2"));
	cr_assert_null(platform_find(NULL));
}

/* The rows of docs/channels.md "Verification's platforms" are the table's rows. */
Test(platform_table, matches_the_spec)
{
	_cleanup_free_ char *doc = NULL;
	cr_assert_eq(fs_read_file(QVSA_SRCDIR "/docs/channels.md", &doc, NULL), 0, "%s", err_msg());
	char *s = strstr(doc, "## Verification's platforms");
	cr_assert_not_null(s);
	size_t rows = 0;
	for (char *line = strstr(s, "\n| `"); line; line = strstr(line + 1, "\n| `"), rows++) {
		char name[32] = "", channel[32] = "";
		cr_assert_eq(sscanf(line, "\n| `%31[^`]` | %31[^ |]", name, channel), 2, "row %zu", rows);
		const struct platform_ops *ops = platform_find(name);
		cr_assert_not_null(ops, "channels.md lists %s, the table does not", name);
		cr_assert_str_eq(ops->channel, channel);
		/* the last column: "| 169.254.169.0/24 |" */
		char *end = strchr(line + 1, '\n'), *last = end;
		cr_assert_not_null(end);
		while (last > line && *last != '|')
			last--;
		char *col = last - 1;
		while (col > line && *col != '|')
			col--;
		_cleanup_free_ char *want = xasprintf("| %s |", platform_net_prefix(ops));
		cr_assert_eq(strncmp(col, want, strlen(want)), 0, "%s: the spec says %.*s, the table %s", name,
			     (int)(last - col), col, platform_net_prefix(ops));
	}
	cr_assert_eq(rows, 9, "channels.md has %zu rows", rows);
}

Test(platform_table, identities)
{
	const struct platform_ops *ec2 = platform_find("ec2");
	const char *u = ec2->smbios.uuid;
	cr_assert_not_null(u);
	cr_assert_eq(strlen(u), 36);
	for (int i = 0; i < 36; i++)
		cr_assert(i == 8 || i == 13 || i == 18 || i == 23 ? u[i] == '-' : isxdigit((unsigned char)u[i]),
			  "%s: not canonical at %d", u, i);
	cr_assert_eq(strncasecmp(u, "ec2", 3), 0);
	cr_assert_str_eq(ec2->smbios.serial, u, "ds-identify wants serial == uuid");
	cr_assert_str_eq(ec2->smbios.manufacturer, "Amazon EC2");
	cr_assert_str_eq(platform_find("gce")->smbios.product, "Google Compute Engine");
	cr_assert_str_eq(platform_find("oci")->smbios.asset_tag, "OracleCloud.com");
	cr_assert_str_eq(platform_find("openstack")->smbios.product, "OpenStack Nova");
	cr_assert_str_eq(platform_find("azure")->smbios.asset_tag, "7783-7084-3265-9085-8269-3286-77");
	cr_assert_str_eq(platform_find("azure")->smbios.manufacturer, "Microsoft Corporation");
	cr_assert_str_eq(platform_find("vmware")->smbios.product, "VMware7,1");
	cr_assert_str_eq(platform_find("configdrive")->smbios.manufacturer, "Nutanix");
	cr_assert_null(platform_find("nocloud")->smbios.manufacturer);
	cr_assert_null(platform_find("console")->smbios.manufacturer);
}

Test(platform_table, shapes)
{
	static const struct {
		const char *name;
		bool media, cdrom, services, ready, console;
		const char *net, *host;
	} want[] = {
		{ "nocloud", true, false, false, false, false, "10.0.2.0/24", "10.0.2.2" },
		{ "configdrive", true, true, false, false, false, "10.0.2.0/24", "10.0.2.2" },
		{ "openstack", false, false, true, false, false, "169.254.169.0/24", "169.254.169.2" },
		{ "ec2", false, false, true, false, false, "169.254.169.0/24", "169.254.169.2" },
		{ "gce", false, false, true, false, false, "169.254.169.0/24", "169.254.169.2" },
		{ "oci", false, false, true, false, false, "169.254.169.0/24", "169.254.169.2" },
		{ "azure", true, true, true, true, false, "168.63.129.0/24", "168.63.129.2" },
		{ "vmware", true, true, false, false, false, "10.0.2.0/24", "10.0.2.2" },
		{ "console", false, false, false, false, true, "10.0.2.0/24", "10.0.2.2" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct platform_ops *ops = platform_find(want[i].name);
		cr_assert_eq(ops->make_media != NULL, want[i].media, "%s media", want[i].name);
		cr_assert_eq(ops->media_cdrom, want[i].cdrom, "%s cdrom", want[i].name);
		cr_assert_eq(ops->start != NULL, want[i].services, "%s services", want[i].name);
		cr_assert_eq(ops->needs_ready, want[i].ready, "%s ready", want[i].name);
		cr_assert_eq(ops->console, want[i].console, "%s console", want[i].name);
		cr_assert_str_eq(platform_net_prefix(ops), want[i].net, "%s", want[i].name);
		cr_assert_str_eq(platform_host_addr(ops), want[i].host, "%s", want[i].name);
	}
}

Test(platform_lifecycle, fwds_and_media, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("ec2");
	const struct platform_fwd *f;
	cr_assert_eq(platform_fwds(p, &f), 1);
	cr_assert_str_eq(f[0].addr, PT_IMDS);
	cr_assert_eq(f[0].port, 80);
	cr_assert_eq(f[0].local_port, 0, "nothing listens after prepare");
	cr_assert_null(platform_media(p));
	struct platform_report rep = pt_report(p);
	cr_assert_not(rep.delivered);
	cr_assert_eq(rep.refused, 0);
	cr_assert_str_eq(rep.refused_why, "");
	platform_stop(p);

	p = pt_prepare("console");
	cr_assert_eq(platform_fwds(p, &f), 0);
	cr_assert_null(platform_media(p));
	struct httpd_request rq = { .method = "GET", .path = "/", .query = "" };
	struct httpd_response resp = { 0 };
	cr_assert_eq(platform_call(p, PT_IMDS, 80, &rq, &resp), -1);
	cr_assert(strstr(err_msg(), "no service"), "%s", err_msg());
	platform_stop(p);
	platform_stop(NULL);
}

Test(platform_lifecycle, env_is_checked_and_copied, .init = pt_setup, .fini = pt_teardown)
{
	struct platform_env env = pt_env();
	env.user_data = NULL;
	struct platform *p = NULL;
	cr_assert_eq(platform_prepare(platform_find("gce"), &env, &p), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), "platform 'gce': no user-data"), "%s", err_msg());
	cr_assert_null(p);

	/* the caller's strings may go away once prepared */
	char ud[] = "#cloud-config\nmine\n";
	env = pt_env();
	env.user_data = ud;
	cr_assert_eq(platform_prepare(platform_find("openstack"), &env, &p), 0);
	memset(ud, 'x', sizeof(ud) - 1);
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/openstack/latest/user_data", NULL, NULL);
	cr_assert_str_eq(pt_body(&r), "#cloud-config\nmine\n");
	free(r.body);
	platform_stop(p);
}

/* ---- EC2 ---- */

static char *ec2_token(struct platform *p, const char *ttl)
{
	const char *h[] = { "X-aws-ec2-metadata-token-ttl-seconds", ttl, NULL };
	struct httpd_response r = pt_call(p, PT_IMDS, "PUT", "/latest/api/token", NULL, h);
	cr_assert_eq(r.status, 200, "%d %s", r.status, pt_body(&r));
	_cleanup_free_ char *want = xasprintf("X-aws-ec2-metadata-token-ttl-seconds: %s\r\n", ttl);
	cr_assert_str_eq(r.extra_headers, want);
	return r.body;
}

Test(platform_ec2, imdsv2_happy_path, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("ec2");
	_cleanup_free_ char *token = ec2_token(p, "21600"), *token2 = ec2_token(p, "60");
	cr_assert_eq(strlen(token), 56);
	cr_assert_str_neq(token, token2);
	const char *h[] = { "X-aws-ec2-metadata-token", token, NULL };
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/latest/meta-data/instance-id", NULL, h);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(strncmp(pt_body(&r), "i-", 2), 0);
	cr_assert_eq(strlen(pt_body(&r)), 19);
	free(r.body);
	cr_assert_not(pt_report(p).delivered, "the instance id is not the user-data");
	r = pt_call(p, PT_IMDS, "GET", "/latest/user-data", NULL, h);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(pt_body(&r), PT_USER_DATA);
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert(rep.delivered);
	cr_assert_eq(rep.refused, 0, "%s", rep.refused_why);
	platform_stop(p);
}

Test(platform_ec2, imdsv1_is_refused, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("ec2");
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/latest/user-data", NULL, NULL);
	cr_assert_eq(r.status, 401);
	cr_assert_str_neq(pt_body(&r), PT_USER_DATA);
	free(r.body);
	r = pt_call(p, PT_IMDS, "GET", "/latest/meta-data/instance-id", NULL, NULL);
	cr_assert_eq(r.status, 401);
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_not(rep.delivered);
	cr_assert_eq(rep.refused, 2);
	cr_assert_str_eq(rep.refused_why, "GET /latest/user-data without a token (IMDSv1)");
	platform_stop(p);
}

Test(platform_ec2, token_rules, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("ec2");
	struct httpd_response r = pt_call(p, PT_IMDS, "PUT", "/latest/api/token", NULL, NULL);
	cr_assert_eq(r.status, 400);
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_eq(rep.refused, 1);
	cr_assert_str_eq(rep.refused_why, "PUT /latest/api/token without X-aws-ec2-metadata-token-ttl-seconds");

	static const char *const bad[] = { "0", "21601", "-1", "abc", "", "0060", "1e3", "99999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *h[] = { "X-aws-ec2-metadata-token-ttl-seconds", bad[i], NULL };
		r = pt_call(p, PT_IMDS, "PUT", "/latest/api/token", NULL, h);
		cr_assert_eq(r.status, 400, "ttl '%s' got %d", bad[i], r.status);
		free(r.body);
	}
	cr_assert_eq(pt_report(p).refused, 9);
	free(ec2_token(p, "1"));

	const char *xff[] = { "X-aws-ec2-metadata-token-ttl-seconds", "60", "X-Forwarded-For", "10.0.0.1", NULL };
	r = pt_call(p, PT_IMDS, "PUT", "/latest/api/token", NULL, xff);
	cr_assert_eq(r.status, 403);
	free(r.body);
	r = pt_call(p, PT_IMDS, "GET", "/latest/api/token", NULL, NULL);
	cr_assert_eq(r.status, 405);
	free(r.body);
	cr_assert_eq(pt_report(p).refused, 10);
	platform_stop(p);
}

Test(platform_ec2, wrong_and_expired_tokens, .init = pt_setup, .fini = pt_teardown, .timeout = 10)
{
	struct platform *p = pt_prepare("ec2");
	const char *wrong[] = { "X-aws-ec2-metadata-token", "AAAA", NULL };
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/latest/user-data", NULL, wrong);
	cr_assert_eq(r.status, 401);
	free(r.body);
	cr_assert_str_eq(pt_report(p).refused_why, "GET /latest/user-data with an unknown or expired token");

	_cleanup_free_ char *token = ec2_token(p, "1");
	const char *h[] = { "X-aws-ec2-metadata-token", token, NULL };
	usleep(1100 * 1000);
	r = pt_call(p, PT_IMDS, "GET", "/latest/user-data", NULL, h);
	cr_assert_eq(r.status, 401, "a token outlived its TTL");
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_not(rep.delivered);
	cr_assert_eq(rep.refused, 2);
	platform_stop(p);
}

/* ---- GCE ---- */

Test(platform_gce, flavor_rules, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("gce");
	const char *url = "/computeMetadata/v1/instance/attributes/user-data";
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", url, NULL, NULL);
	cr_assert_eq(r.status, 403);
	cr_assert(strstr(r.extra_headers, "Metadata-Flavor: Google\r\n"));
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_eq(rep.refused, 1);
	cr_assert_str_eq(rep.refused_why, "GET /computeMetadata/v1/instance/attributes/user-data without "
					  "Metadata-Flavor: Google");
	const char *lower[] = { "Metadata-Flavor", "google", NULL };
	r = pt_call(p, PT_IMDS, "GET", url, NULL, lower);
	cr_assert_eq(r.status, 403);
	free(r.body);
	const char *xff[] = { "Metadata-Flavor", "Google", "X-Forwarded-For", "1.2.3.4", NULL };
	r = pt_call(p, PT_IMDS, "GET", url, NULL, xff);
	cr_assert_eq(r.status, 403);
	free(r.body);
	cr_assert_eq(pt_report(p).refused, 3);
	cr_assert_not(pt_report(p).delivered);

	const char *ok[] = { "metadata-flavor", "Google", NULL }; /* header names are case-insensitive */
	r = pt_call(p, PT_IMDS, "GET", url, NULL, ok);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(pt_body(&r), PT_USER_DATA);
	cr_assert(strstr(r.extra_headers, "Metadata-Flavor: Google\r\n"));
	free(r.body);
	r = pt_call(p, PT_IMDS, "GET", "/computeMetadata/v1/instance/attributes/ssh-keys", NULL, ok);
	cr_assert_eq(r.status, 404);
	free(r.body);
	rep = pt_report(p);
	cr_assert(rep.delivered);
	cr_assert_eq(rep.refused, 3);
	platform_stop(p);
}

/* ---- OCI ---- */

Test(platform_oci, bearer_rules_and_base64, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("oci");
	const char *url = "/opc/v2/instance/metadata/user_data";
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", url, NULL, NULL);
	cr_assert_eq(r.status, 401);
	free(r.body);
	cr_assert_str_eq(pt_report(p).refused_why,
			 "GET /opc/v2/instance/metadata/user_data without Authorization: Bearer Oracle");
	const char *wrong[] = { "Authorization", "Bearer oracle", NULL };
	r = pt_call(p, PT_IMDS, "GET", url, NULL, wrong);
	cr_assert_eq(r.status, 401);
	free(r.body);
	const char *ok[] = { "Authorization", "Bearer Oracle", NULL };
	r = pt_call(p, PT_IMDS, "GET", "/opc/v1/instance/metadata/user_data", NULL, ok);
	cr_assert_eq(r.status, 404, "IMDS v1 is disabled");
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert_eq(rep.refused, 2);
	cr_assert_not(rep.delivered);

	r = pt_call(p, PT_IMDS, "GET", url, NULL, ok);
	cr_assert_eq(r.status, 200);
	_cleanup_free_ char *ud = pt_unbase64(pt_body(&r));
	cr_assert_str_eq(ud, PT_USER_DATA);
	free(r.body);
	cr_assert(pt_report(p).delivered);
	platform_stop(p);
}

/* The instance document (GET /opc/v2/instance/) is JSON whatever the host
 * name holds, and carries the same user-data. */
Test(platform_oci, instance_document, .init = pt_setup, .fini = pt_teardown)
{
	struct platform_env env = pt_env();
	env.hostname = "odd \"name\"\\\n";
	struct platform *p = NULL;
	cr_assert_eq(platform_prepare(platform_find("oci"), &env, &p), 0, "%s", err_msg());
	const char *ok[] = { "Authorization", "Bearer Oracle", NULL };
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/opc/v2/instance/", NULL, ok);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.content_type, "application/json");
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *doc = json_parse(pt_body(&r), &why, &at);
	cr_assert_not_null(doc, "%s at %zu: %s", why, at, pt_body(&r));
	cr_assert_str_eq(json_member_str(doc, "hostname"), env.hostname);
	cr_assert(strncmp(json_member_str(doc, "id"), "ocid1.instance.oc1.iad.", 23) == 0, "%s", pt_body(&r));
	const char *b64 = json_member_str(json_member(doc, "metadata", json_type_object), "user_data");
	cr_assert_not_null(b64, "%s", pt_body(&r));
	_cleanup_free_ char *ud = pt_unbase64(b64);
	cr_assert_str_eq(ud, PT_USER_DATA);
	free(r.body);
	cr_assert(pt_report(p).delivered, "the document holds the user-data");
	platform_stop(p);
}

/* ---- OpenStack ---- */

Test(platform_openstack, metadata_service, .init = pt_setup, .fini = pt_teardown)
{
	struct platform *p = pt_prepare("openstack");
	struct httpd_response r = pt_call(p, PT_IMDS, "GET", "/openstack/latest/meta_data.json", NULL, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.content_type, "application/json");
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *doc = json_parse(pt_body(&r), &why, &at);
	cr_assert_not_null(doc, "%s at %zu: %s", why, at, pt_body(&r));
	cr_assert_str_eq(json_member_str(doc, "hostname"), "qvsa-verify");
	cr_assert_str_eq(json_member_str(doc, "name"), "qvsa-verify");
	cr_assert_eq(strlen(json_member_str(doc, "uuid")), 36, "%s", pt_body(&r));
	cr_assert_not_null(json_member(doc, "launch_index", json_type_int));
	cr_assert_not_null(json_member(doc, "meta", json_type_object));
	free(r.body);
	cr_assert_not(pt_report(p).delivered);
	r = pt_call(p, PT_IMDS, "POST", "/openstack/latest/user_data", NULL, NULL);
	cr_assert_eq(r.status, 405);
	free(r.body);
	r = pt_call(p, PT_IMDS, "GET", "/openstack/2099-01-01/user_data", NULL, NULL);
	cr_assert_eq(r.status, 404);
	free(r.body);
	r = pt_call(p, PT_IMDS, "GET", "/openstack/latest/user_data", NULL, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(pt_body(&r), PT_USER_DATA);
	free(r.body);
	struct platform_report rep = pt_report(p);
	cr_assert(rep.delivered);
	cr_assert_eq(rep.refused, 0);
	platform_stop(p);
}
