/* The bootstrap agent's testable parts: user-data forms, code validation,
 * config files, the HTTP request it sends and the responses it accepts,
 * DNS wire format, FAT labels, status lines and the records it writes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "fs.h"

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct agent_userdata parse_ok(const char *text)
{
	struct agent_userdata u = { 0 };
	int r = agent_userdata_parse(text, &u);
	cr_assert_eq(r, 0, "parse failed: %s", agent_error());
	return u;
}

static void parse_fails(const char *text, const char *why)
{
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(text, &u), -1, "parse of [%s] should fail", text);
	cr_assert(strstr(agent_error(), why), "error '%s' should mention '%s'", agent_error(), why);
	agent_userdata_free(&u);
}

Test(agent_userdata, cloud_config_full)
{
	struct agent_userdata u = parse_ok("#cloud-config\n"
					   "# comment line\n"
					   "hostname: scanner1\n"
					   "final_message: \"up after\n"
					   "  $UPTIME seconds: done\"\n"
					   "\n"
					   "qvsa:\n"
					   "  perscode: \"12345678\"   # the code\n"
					   "  platform_url: http://10.0.2.2:8080/  # trailing comment\n"
					   "  proxy: 'http://u:p@proxy:3128'\n"
					   "power_state:\n"
					   "  mode: poweroff\n"
					   "  message: \"bye # not a comment\"\n"
					   "  timeout: 5\n");
	cr_assert(u.cloud_config);
	cr_assert_str_eq(u.perscode, "12345678");
	cr_assert_str_eq(u.platform_url, "http://10.0.2.2:8080/");
	cr_assert_str_eq(u.proxy, "http://u:p@proxy:3128");
	cr_assert(u.poweroff);
	agent_userdata_free(&u);
}

Test(agent_userdata, integer_code_crlf_bom_and_other_keys)
{
	struct agent_userdata u = parse_ok("\xef\xbb\xbf#cloud-config\r\n"
					   "runcmd:\r\n"
					   "  - [ echo, hi ]\r\n"
					   "  - perscode: 999999999\r\n"
					   "write_files:\r\n"
					   "  - path: /etc/x\r\n"
					   "    content: |\r\n"
					   "      qvsa:\r\n"
					   "        perscode: 111111111\r\n"
					   "other:\r\n"
					   "  qvsa:\r\n"
					   "    perscode: 222222222\r\n"
					   "qvsa:\r\n"
					   "    perscode: 0012345678\r\n"
					   "    nested:\r\n"
					   "      perscode: 333333333\r\n");
	cr_assert_str_eq(u.perscode, "0012345678");
	cr_assert_null(u.platform_url);
	cr_assert_null(u.proxy);
	cr_assert_not(u.poweroff);
	agent_userdata_free(&u);
}

Test(agent_userdata, quoting_and_flow_mapping)
{
	struct agent_userdata u = parse_ok("#cloud-config\n"
					   "qvsa: {perscode: \"123456\", platform_url: http://h:1/p, proxy: ''}\n"
					   "power_state: {mode: 'poweroff'}\n");
	cr_assert_str_eq(u.perscode, "123456");
	cr_assert_str_eq(u.platform_url, "http://h:1/p");
	cr_assert_str_eq(u.proxy, "");
	cr_assert(u.poweroff);
	agent_userdata_free(&u);

	u = parse_ok("#cloud-config\n"
		     "\"qvsa\":\n"
		     "  'perscode': \"12\\x33456\"\n"
		     "  platform_url: 'it''s'\n");
	cr_assert_str_eq(u.perscode, "123456");
	cr_assert_str_eq(u.platform_url, "it's");
	agent_userdata_free(&u);
}

Test(agent_userdata, power_state_other_modes)
{
	struct agent_userdata u = parse_ok("#cloud-config\nqvsa:\n  perscode: 123456\n"
					   "power_state:\n  mode: reboot\n");
	cr_assert_not(u.poweroff);
	agent_userdata_free(&u);
	/* mode: at the wrong level is not power_state's */
	u = parse_ok("#cloud-config\nqvsa:\n  perscode: 123456\nmode: poweroff\n"
		     "power_state:\n  delay: now\n  sub:\n    mode: poweroff\n");
	cr_assert_not(u.poweroff);
	agent_userdata_free(&u);
}

Test(agent_userdata, broken_values_keep_power_state)
{
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse("#cloud-config\n"
					  "qvsa:\n"
					  "  perscode: \"123456\n"
					  "power_state:\n"
					  "  mode: poweroff\n", &u), -1);
	cr_assert(strstr(agent_error(), "line 3"), "got: %s", agent_error());
	cr_assert(u.poweroff, "power_state must survive a broken qvsa: section");
	agent_userdata_free(&u);
	parse_fails("#cloud-config\nqvsa: 123456\n", "must be a mapping");
	parse_fails("#cloud-config\nqvsa:\n\tperscode: 123456\n", "tab");
	parse_fails("#cloud-config\nqvsa:\n  platform_url: http://x/\n", "no qvsa: perscode:");
	parse_fails("#cloud-config\n", "no qvsa: perscode:");
	parse_fails("#cloud-config\nqvsa:\n  perscode: \"1\\q\"\n", "quoted");
}

Test(agent_userdata, perscode_line_form)
{
	struct agent_userdata u = parse_ok("Hello support,\nhere is the code:\n"
					   "   PERSCODE=98765432  \r\nPERSCODE=111111\n");
	cr_assert_not(u.cloud_config);
	cr_assert_str_eq(u.perscode, "98765432");
	cr_assert_not(u.poweroff);
	agent_userdata_free(&u);
	u = parse_ok("PERSCODE=\"55555555\"");
	cr_assert_str_eq(u.perscode, "55555555");
	agent_userdata_free(&u);
	parse_fails("perscode=123456\nCODE=1\n", "no PERSCODE= line");
	parse_fails("", "no PERSCODE= line");
	/* "#cloud-configX" is not the cloud-config magic */
	parse_fails("#cloud-configuration\nqvsa:\n  perscode: 123456\n", "no PERSCODE= line");
}

Test(agent_userdata, perscode_check)
{
	cr_assert_eq(agent_perscode_check("123456"), 0);
	cr_assert_eq(agent_perscode_check("12345678901234567890123456789012"), 0);
	cr_assert_eq(agent_perscode_check("12345"), -1);
	cr_assert(strstr(agent_error(), "6 to 32 digits"));
	cr_assert_eq(agent_perscode_check("123456789012345678901234567890123"), -1);
	cr_assert_eq(agent_perscode_check(""), -1);
	cr_assert_eq(agent_perscode_check("1234x678"), -1);
	cr_assert(strstr(agent_error(), "digits only"));
	cr_assert_null(strstr(agent_error(), "1234x678"), "the code must not be echoed");
	cr_assert_eq(agent_perscode_check(" 123456"), -1);
	cr_assert_eq(agent_perscode_check("-123456"), -1);
}

Test(agent_config, kv_get)
{
	const char *text = "# qvsa release\n"
			   "NAME=\"qVSA\"\n"
			   "BOOTSTRAP_VERSION=\"qVSA-2.7\"\n"
			   "  PLATFORM_URL=http://plat:80/api \r\n"
			   "PROXY='http://p:3128'\n"
			   "#PROXY=http://commented\n"
			   "EMPTY=\n"
			   "DUP=1\nDUP=2\n";
	struct {
		const char *key, *want;
	} cases[] = { { "BOOTSTRAP_VERSION", "qVSA-2.7" }, { "PLATFORM_URL", "http://plat:80/api" },
		      { "PROXY", "http://p:3128" }, { "EMPTY", "" }, { "DUP", "2" }, { "NAME", "qVSA" } };
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *v = agent_kv_get(text, cases[i].key);
		cr_assert_not_null(v, "%s missing", cases[i].key);
		cr_assert_str_eq(v, cases[i].want);
	}
	cr_assert_null(agent_kv_get(text, "MISSING"));
	cr_assert_null(agent_kv_get(text, "BOOTSTRAP"));
}

Test(agent_http, url_parse)
{
	struct agent_url u;
	cr_assert_eq(agent_url_parse("http://10.0.2.2:8080/", &u), 0, "%s", agent_error());
	cr_assert_str_eq(u.host, "10.0.2.2");
	cr_assert_eq(u.port, 8080);
	cr_assert_str_eq(u.path, "/");
	cr_assert_null(u.user);
	agent_url_free(&u);
	cr_assert_eq(agent_url_parse("HTTP://platform.example", &u), 0);
	cr_assert_str_eq(u.host, "platform.example");
	cr_assert_eq(u.port, 80);
	cr_assert_str_eq(u.path, "/");
	agent_url_free(&u);
	cr_assert_eq(agent_url_parse("http://us%40er:p%3Ass@[fd00::1]:3128/base/#frag", &u), 0);
	cr_assert_str_eq(u.host, "fd00::1");
	cr_assert_eq(u.port, 3128);
	cr_assert_str_eq(u.path, "/base/");
	cr_assert_str_eq(u.user, "us@er");
	cr_assert_str_eq(u.password, "p:ss");
	agent_url_free(&u);

	cr_assert_not(u.https);
	cr_assert_eq(agent_url_parse("https://platform.example/", &u), 0, "%s", agent_error());
	cr_assert(u.https);
	cr_assert_eq(u.port, 443);
	agent_url_free(&u);
	cr_assert_eq(agent_url_parse("HTTPS://10.0.2.2:8443/api", &u), 0);
	cr_assert(u.https);
	cr_assert_eq(u.port, 8443);
	cr_assert_str_eq(u.path, "/api");
	agent_url_free(&u);
	const char *bad[] = { "ftp://x/", "platform.example", "http://:80/", "http://h:0/",
			      "http://h:99999/", "http://h:8x/", "http://h/?a=b", "http://[::1/",
			      "http://u%4@h/", "httpx://h/", "https:/h/" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		cr_assert_eq(agent_url_parse(bad[i], &u), -1, "%s should be rejected", bad[i]);
}

Test(agent_http, endpoint_path)
{
	const char *cases[][2] = {
		{ "/", "/qvsa/v1/personalize" },
		{ "/api", "/api/qvsa/v1/personalize" },
		{ "/api/", "/api/qvsa/v1/personalize" },
		{ "/api/qvsa/v1/personalize", "/api/qvsa/v1/personalize" },
		{ "/qvsa/v1/personalize/", "/qvsa/v1/personalize" },
		{ "/xqvsa/v1/personalize", "/xqvsa/v1/personalize/qvsa/v1/personalize" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *p = agent_endpoint_path(cases[i][0]);
		cr_assert_str_eq(p, cases[i][1], "for %s", cases[i][0]);
	}
}

Test(agent_http, request_direct)
{
	struct agent_url u;
	cr_assert_eq(agent_url_parse("http://10.0.2.2:8080/", &u), 0);
	_cleanup_free_ char *body = agent_request_body("12345678", "qVSA-2.7", "x86_64");
	cr_assert_str_eq(body, "{\"perscode\":\"12345678\",\"bootstrap_version\":\"qVSA-2.7\","
			       "\"arch\":\"x86_64\"}");
	_cleanup_free_ char *req = agent_request_build(&u, NULL, body);
	cr_assert(starts_with(req, "POST /qvsa/v1/personalize HTTP/1.1\r\n"), "%s", req);
	cr_assert(strstr(req, "\r\nHost: 10.0.2.2:8080\r\n"));
	cr_assert(strstr(req, "\r\nContent-Type: application/json\r\n"));
	cr_assert_null(strstr(req, "Proxy-Authorization"));
	_cleanup_free_ char *cl = xasprintf("\r\nContent-Length: %zu\r\n\r\n", strlen(body));
	cr_assert(strstr(req, cl), "%s", req);
	cr_assert_str_eq(req + strlen(req) - strlen(body), body);
	agent_url_free(&u);
}

Test(agent_http, request_via_proxy_and_json_escaping)
{
	struct agent_url plat, proxy;
	cr_assert_eq(agent_url_parse("http://platform.example/api", &plat), 0);
	cr_assert_eq(agent_url_parse("http://user:pa%20ss@proxy:3128", &proxy), 0);
	_cleanup_free_ char *body = agent_request_body("123456", "q\"V\\SA\n", "x86_64");
	cr_assert_str_eq(body, "{\"perscode\":\"123456\",\"bootstrap_version\":\"q\\\"V\\\\SA\\n\","
			       "\"arch\":\"x86_64\"}");
	_cleanup_free_ char *req = agent_request_build(&plat, &proxy, body);
	cr_assert(starts_with(req, "POST http://platform.example/api/qvsa/v1/personalize HTTP/1.1\r\n"),
		  "%s", req);
	cr_assert(strstr(req, "\r\nHost: platform.example\r\n"));
	_cleanup_free_ char *cred = agent_base64("user:pa ss", 10);
	_cleanup_free_ char *hdr = xasprintf("\r\nProxy-Authorization: Basic %s\r\n", cred);
	cr_assert(strstr(req, hdr), "%s", req);
	agent_url_free(&plat);
	agent_url_free(&proxy);

	/* no credentials, no header */
	cr_assert_eq(agent_url_parse("http://platform.example/", &plat), 0);
	cr_assert_eq(agent_url_parse("http://proxy:3128/", &proxy), 0);
	_cleanup_free_ char *req2 = agent_request_build(&plat, &proxy, "{}");
	cr_assert_null(strstr(req2, "Proxy-Authorization"));
	agent_url_free(&plat);
	agent_url_free(&proxy);
}

Test(agent_http, request_https_direct_and_tunnelled)
{
	struct agent_url plat, proxy;
	cr_assert_eq(agent_url_parse("https://platform.example/api", &plat), 0);
	cr_assert_eq(agent_url_parse("http://user:secret@proxy:3128", &proxy), 0);
	/* the request travels inside the tunnel: origin form, no proxy credentials */
	_cleanup_free_ char *req = agent_request_build(&plat, &proxy, "{}");
	cr_assert(starts_with(req, "POST /api/qvsa/v1/personalize HTTP/1.1\r\nHost: platform.example\r\n"),
		  "%s", req);
	cr_assert_null(strstr(req, "Proxy-Authorization"), "%s", req);
	_cleanup_free_ char *direct = agent_request_build(&plat, NULL, "{}");
	cr_assert_str_eq(req, direct);
	agent_url_free(&plat);

	cr_assert_eq(agent_url_parse("https://10.0.2.2:8443/", &plat), 0);
	_cleanup_free_ char *req2 = agent_request_build(&plat, NULL, "{}");
	cr_assert(strstr(req2, "\r\nHost: 10.0.2.2:8443\r\n"), "%s", req2);
	_cleanup_free_ char *conn = agent_connect_request_build(&plat, &proxy);
	_cleanup_free_ char *cred = agent_base64("user:secret", 11);
	_cleanup_free_ char *want = xasprintf("CONNECT 10.0.2.2:8443 HTTP/1.1\r\nHost: 10.0.2.2:8443\r\n"
					      "User-Agent: qvsa-agent/1\r\n"
					      "Proxy-Authorization: Basic %s\r\n\r\n", cred);
	cr_assert_str_eq(conn, want);
	agent_url_free(&plat);
	agent_url_free(&proxy);

	/* CONNECT names the port even when it is the default */
	cr_assert_eq(agent_url_parse("https://[fd00::1]/", &plat), 0);
	cr_assert_eq(agent_url_parse("http://proxy:3128", &proxy), 0);
	_cleanup_free_ char *conn2 = agent_connect_request_build(&plat, &proxy);
	cr_assert(starts_with(conn2, "CONNECT [fd00::1]:443 HTTP/1.1\r\n"), "%s", conn2);
	cr_assert_null(strstr(conn2, "Proxy-Authorization"));
	agent_url_free(&plat);
	agent_url_free(&proxy);
}

Test(agent_http, connect_response_parse)
{
	int status = 0;
	const char *ok = "HTTP/1.1 200 Connection established\r\n\r\n";
	cr_assert_eq(agent_connect_response_parse(ok, strlen(ok), &status), 0);
	cr_assert_eq(status, 200);
	cr_assert_eq(agent_connect_response_parse(ok, strlen(ok) - 1, &status), 1);
	const char *denied = "HTTP/1.0 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!";
	cr_assert_eq(agent_connect_response_parse(denied, strlen(denied), &status), 0);
	cr_assert_eq(status, 407);
	const char *extra = "HTTP/1.1 200 OK\r\n\r\n\x16\x03";
	cr_assert_eq(agent_connect_response_parse(extra, strlen(extra), &status), -1);
	cr_assert_eq(agent_connect_response_parse("SSH-2.0-x\r\n\r\n", 13, &status), -1);
}

Test(agent_http, base64)
{
	const char *cases[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
				   { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
				   { "Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" } };
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *b = agent_base64(cases[i][0], strlen(cases[i][0]));
		cr_assert_str_eq(b, cases[i][1]);
	}
}

static int parse_resp(const char *raw, bool eof, int *status, char **body)
{
	return agent_http_response_parse(raw, strlen(raw), eof, status, body);
}

Test(agent_http, response_parse)
{
	int status;
	char *body = NULL;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 9\r\n\r\nML=3.1.0\n";
	cr_assert_eq(parse_resp(ok, false, &status, &body), 0);
	cr_assert_eq(status, 200);
	cr_assert_str_eq(body, "ML=3.1.0\n");
	free(body);
	/* the same bytes cut short need more data, or are an error at EOF */
	_cleanup_free_ char *cut = strndup(ok, strlen(ok) - 3);
	cr_assert_eq(parse_resp(cut, false, &status, &body), 1);
	cr_assert_eq(parse_resp(cut, true, &status, &body), -1);
	cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Le", false, &status, &body), 1);
	cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Le", true, &status, &body), -1);
	cr_assert_eq(parse_resp("", true, &status, &body), -1);
	/* delimited by connection close */
	cr_assert_eq(parse_resp("HTTP/1.0 403 Forbidden\n\nREASON=no\n", false, &status, &body), 1);
	cr_assert_eq(parse_resp("HTTP/1.0 403 Forbidden\n\nREASON=no\n", true, &status, &body), 0);
	cr_assert_eq(status, 403);
	cr_assert_str_eq(body, "REASON=no\n");
	free(body);
	/* chunked */
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "4\r\nML=3\r\n6;ext=1\r\n.1.0\nS\r\n0\r\n\r\n";
	cr_assert_eq(parse_resp(ch, false, &status, &body), 0);
	cr_assert_str_eq(body, "ML=3.1.0\nS");
	free(body);
	cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nML", false,
				&status, &body), 1);
	cr_assert_eq(parse_resp("SSH-2.0-OpenSSH\r\n\r\n", true, &status, &body), -1);
	cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true, &status, &body), -1);
}

Test(agent_http, components_parse)
{
	struct agent_components c;
	cr_assert_eq(agent_components_parse("SCAND=12.9.5\r\n\nVULNSIGS=2.6.18-1\n# note\n"
					    "ML=3.1.0\nTAGGER=1.4.2\nEXTRA=1\n", &c), 0, "%s", agent_error());
	const char *names[] = { "EXTRA", "ML", "SCAND", "TAGGER", "VULNSIGS" };
	const char *vers[] = { "1", "3.1.0", "12.9.5", "1.4.2", "2.6.18-1" };
	cr_assert_eq(c.n, 5);
	for (size_t i = 0; i < c.n; i++) {
		cr_assert_str_eq(c.name[i], names[i]);
		cr_assert_str_eq(c.version[i], vers[i]);
	}
	agent_components_free(&c);

	cr_assert_eq(agent_components_parse("ML=1\nVULNSIGS=1\nTAGGER=1\n", &c), -1);
	cr_assert(strstr(agent_error(), "SCAND missing"), "%s", agent_error());
	cr_assert_eq(agent_components_parse("ML=1\nVULNSIGS=1\nTAGGER=1\nSCAND=1\nML=2\n", &c), -1);
	cr_assert(strstr(agent_error(), "twice"));
	cr_assert_eq(agent_components_parse("ML=1\nVULNSIGS=1\nTAGGER=1\nSCAND=1\ngarbage\n", &c), -1);
	cr_assert(strstr(agent_error(), "line 5"), "%s", agent_error());
	cr_assert_eq(agent_components_parse("ML=1 2\nVULNSIGS=1\nTAGGER=1\nSCAND=1\n", &c), -1);
	cr_assert_eq(agent_components_parse("", &c), -1);
}

Test(agent_http, reason_parse)
{
	_cleanup_free_ char *r = agent_reason_parse("X=1\nREASON=unknown personalization code\r\n");
	cr_assert_str_eq(r, "unknown personalization code");
	cr_assert_null(agent_reason_parse("nothing here\n"));
	cr_assert_null(agent_reason_parse("REASON=\n"));
}

Test(agent_net, dns_wire_format)
{
	unsigned char q[300];
	size_t qlen;
	cr_assert_eq(agent_dns_query("plat.example.com", 0x1234, q, sizeof(q), &qlen), 0);
	const unsigned char want[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				       4, 'p', 'l', 'a', 't', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				       3, 'c', 'o', 'm', 0, 0, 1, 0, 1 };
	cr_assert_eq(qlen, sizeof(want));
	cr_assert_eq(memcmp(q, want, qlen), 0);
	cr_assert_eq(agent_dns_query("a..b", 1, q, sizeof(q), &qlen), -1);

	/* a reply: question, then a CNAME and an A record using compression */
	unsigned char a[128];
	memcpy(a, want, sizeof(want));
	a[2] = 0x81;
	a[3] = 0x80;
	a[7] = 2;
	size_t n = sizeof(want);
	const unsigned char cname[] = { 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 'w', 'w', 'w', 0xc0, 17 };
	const unsigned char arec[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7 };
	memcpy(a + n, cname, sizeof(cname));
	n += sizeof(cname);
	memcpy(a + n, arec, sizeof(arec));
	n += sizeof(arec);
	uint32_t addr;
	cr_assert_eq(agent_dns_answer(a, n, 0x1234, &addr), 0, "%s", agent_error());
	const unsigned char *b = (const unsigned char *)&addr;
	cr_assert(b[0] == 192 && b[1] == 0 && b[2] == 2 && b[3] == 7);
	cr_assert_eq(agent_dns_answer(a, n, 0x4321, &addr), -1, "wrong id must not match");
	cr_assert_eq(agent_dns_answer(a, n - 3, 0x1234, &addr), -1, "truncated");
	a[3] = 0x83;
	cr_assert_eq(agent_dns_answer(a, n, 0x1234, &addr), -1);
	cr_assert(strstr(agent_error(), "no such host"));
}

Test(agent_net, hosts_lookup)
{
	const char *hosts = "127.0.0.1 localhost\n# 10.9.9.9 platform\n"
			    "10.1.2.3\tPlatform.example platform # comment\n::1 ip6-localhost\n";
	uint32_t addr;
	cr_assert_eq(agent_hosts_lookup(hosts, "platform", &addr), 0);
	const unsigned char *b = (const unsigned char *)&addr;
	cr_assert(b[0] == 10 && b[1] == 1 && b[2] == 2 && b[3] == 3);
	cr_assert_eq(agent_hosts_lookup(hosts, "platform.EXAMPLE", &addr), 0);
	cr_assert_eq(agent_hosts_lookup(hosts, "ip6-localhost", &addr), -1);
	cr_assert_eq(agent_hosts_lookup(hosts, "nothere", &addr), -1);
}

/* A 512-byte FAT boot sector: FAT12/16 layout, or FAT32 with fat32. */
static void fat_sector(unsigned char *s, bool fat32, const char *label)
{
	memset(s, 0, 512);
	s[11] = 0x00;
	s[12] = 0x02;
	size_t sig = fat32 ? 66 : 38, lab = fat32 ? 71 : 43, type = fat32 ? 82 : 54;
	s[sig] = 0x29;
	memset(s + lab, ' ', 11);
	memcpy(s + lab, label, strlen(label));
	memcpy(s + type, fat32 ? "FAT32   " : "FAT16   ", 8);
	s[510] = 0x55;
	s[511] = 0xaa;
}

Test(agent_seed, fat_labels)
{
	char path[] = "/tmp/qvsa-test-fat-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	unsigned char s[512];
	char label[33];
	for (int fat32 = 0; fat32 < 2; fat32++) {
		fat_sector(s, fat32, "CIDATA");
		cr_assert_eq(pwrite(fd, s, sizeof(s), 0), 512);
		cr_assert_eq(agent_fs_label(fd, label), 0);
		cr_assert_str_eq(label, "CIDATA");
		cr_assert(agent_label_is_cidata(label));
	}
	fat_sector(s, false, "NO NAME");
	cr_assert_eq(pwrite(fd, s, sizeof(s), 0), 512);
	cr_assert_eq(agent_fs_label(fd, label), 0);
	cr_assert_not(agent_label_is_cidata(label));
	s[510] = 0;
	cr_assert_eq(pwrite(fd, s, sizeof(s), 0), 512);
	cr_assert_eq(agent_fs_label(fd, label), -1);
	close(fd);
	cr_assert(agent_label_is_cidata("cidata"));
	cr_assert_not(agent_label_is_cidata("cidata2"));
}

Test(agent_result, status_lines)
{
	struct agent_components c;
	cr_assert_eq(agent_components_parse("TAGGER=1.4.2\nML=3.1.0\nVULNSIGS=2.6.18-1\nSCAND=12.9.5\n", &c), 0);
	_cleanup_free_ char *ok = agent_status_success("qVSA-2.7", &c);
	cr_assert_str_eq(ok, "{\"status\":\"success\",\"version\":\"qVSA-2.7\",\"components\":{"
			     "\"ML\":\"3.1.0\",\"SCAND\":\"12.9.5\",\"TAGGER\":\"1.4.2\","
			     "\"VULNSIGS\":\"2.6.18-1\"}}");
	agent_components_free(&c);
	_cleanup_free_ char *bad = agent_status_failure("platform", "said \"no\"\nreally");
	cr_assert_str_eq(bad, "{\"status\":\"failure\",\"stage\":\"platform\","
			      "\"reason\":\"said \\\"no\\\"\\nreally\"}");
	_cleanup_free_ char *skip = agent_status_skipped("qVSA-2.7");
	cr_assert_str_eq(skip, "{\"status\":\"skipped\",\"version\":\"qVSA-2.7\","
			       "\"reason\":\"already personalized\"}");
}

Test(agent_result, record_write)
{
	char root[] = "/tmp/qvsa-test-root-XXXXXX";
	cr_assert_not_null(mkdtemp(root));
	_cleanup_free_ char *etc = xasprintf("%s/etc", root);
	cr_assert_eq(mkdir(etc, 0755), 0);
	struct agent_components c;
	cr_assert_eq(agent_components_parse("VULNSIGS=2\nML=1\nTAGGER=3\nSCAND=4\n", &c), 0);
	cr_assert_eq(agent_record_write(root, "qVSA-2.7", &c), 0, "%s", agent_error());
	agent_components_free(&c);
	_cleanup_free_ char *p1 = xasprintf("%s/etc/qvsa/components", root);
	_cleanup_free_ char *p2 = xasprintf("%s/etc/qvsa/personalized", root);
	_cleanup_free_ char *comps = NULL, *marker = NULL;
	cr_assert_eq(fs_read_file(p1, &comps, NULL), 0);
	cr_assert_str_eq(comps, "ML=1\nSCAND=4\nTAGGER=3\nVULNSIGS=2\n");
	cr_assert_eq(fs_read_file(p2, &marker, NULL), 0);
	cr_assert_str_eq(marker, "qVSA-2.7\n");
	_cleanup_free_ char *tmp = xasprintf("%s/etc/qvsa/components.tmp", root);
	cr_assert_not(fs_exists(tmp), "temporary file left behind");
	fs_rm_rf(root);
}

Test(agent_result, record_write_fails_cleanly)
{
	struct agent_components c;
	cr_assert_eq(agent_components_parse("ML=1\nVULNSIGS=2\nTAGGER=3\nSCAND=4\n", &c), 0);
	cr_assert_eq(agent_record_write("/nonexistent/qvsa-root", "qVSA-2.7", &c), -1);
	cr_assert(strstr(agent_error(), "/nonexistent/qvsa-root/etc/qvsa"), "%s", agent_error());
	agent_components_free(&c);
}
