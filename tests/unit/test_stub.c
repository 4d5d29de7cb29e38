/* The platform stub over real loopback sockets (plain and HTTPS), the
 * agent's HTTP client against it, and the built agent binary run end to end
 * on a temp root (--root/--seed-dir/--no-network) against a running stub. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "seed.h"
#include "stub.h"
#include "testnet.h"
#include "tlsca.h"

#define AGENT_BIN QVSA_SRCDIR "/templates/bootstrap-agent/rootfs/usr/sbin/qvsa-agent"

static struct stub *start_stub(const char *code, const char *const *components)
{
	struct stub_config cfg = { .expected_code = code, .components = components };
	struct stub *s = NULL;
	cr_assert_eq(stub_start(&cfg, &s), 0, "stub_start: %s", err_msg());
	cr_assert_neq(stub_port(s), 0);
	return s;
}

/* Send raw bytes (in two parts, pausing between, when split > 0) and return the raw response. */
static char *exchange(uint16_t port, const char *raw, size_t split)
{
	_cleanup_close_ int fd = tn_connect(port);
	size_t len = strlen(raw);
	if (split > 0 && split < len) {
		tn_send_all(fd, raw, split);
		usleep(100 * 1000);
		tn_send_all(fd, raw + split, len - split);
	} else {
		tn_send_all(fd, raw, len);
	}
	return tn_read_all(fd, NULL);
}

static char *post(uint16_t port, const char *path, const char *body)
{
	_cleanup_free_ char *req = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
					     "Content-Length: %zu\r\n\r\n%s", path, strlen(body), body);
	return exchange(port, req, 0);
}

static const char ok_body[] = "{\"perscode\":\"12345678\",\"bootstrap_version\":\"qVSA-9.1\",\"arch\":\"x86_64\"}";

Test(stub, correct_code_gets_components)
{
	struct stub *s = start_stub("12345678", NULL);
	_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize", ok_body);
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\n\r\nML=3.1.0\nVULNSIGS=2.6.18-1\nTAGGER=1.4.2\nSCAND=12.9.5\n"), "%s", resp);
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_eq(rep.requests, 1);
	cr_assert_str_eq(rep.code, "12345678");
	cr_assert_str_eq(rep.version, "qVSA-9.1");
	cr_assert_str_eq(rep.arch, "x86_64");
	cr_assert(rep.accepted);
	cr_assert_null(rep.reason);
	cr_assert_eq(rep.tls_failures, 0);
	cr_assert_null(rep.tls_error);
	const char *const *c = stub_components(s);
	cr_assert_str_eq(c[0], "ML=3.1.0");
	cr_assert_str_eq(c[3], "SCAND=12.9.5");
	cr_assert_null(c[4]);
	stub_stop(s);
}

Test(stub, wrong_code_is_forbidden)
{
	struct stub *s = start_stub("87654321", NULL);
	_cleanup_free_ char *resp = post(stub_port(s), "/prefix/qvsa/v1/personalize", ok_body);
	cr_assert(strncmp(resp, "HTTP/1.1 403 ", 13) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\n\r\nREASON=unknown personalization code\n"), "%s", resp);
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_eq(rep.requests, 1);
	cr_assert_str_eq(rep.code, "12345678");
	cr_assert_not(rep.accepted);
	cr_assert_str_eq(rep.reason, "unknown personalization code");
	stub_stop(s);
}

Test(stub, malformed_requests)
{
	struct stub *s = start_stub("12345678", NULL);
	const char *bodies[] = { "not json", "{\"perscode\":", "{\"bootstrap_version\":\"q\"}",
				 "{\"perscode\":\"1\\x\"}", "[\"perscode\"]", "{\"perscode\":\"123\"} trailing" };
	for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
		_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize", bodies[i]);
		cr_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s -> %s", bodies[i], resp);
		cr_assert(strstr(resp, "\r\n\r\nREASON=malformed request"), "%s", resp);
	}
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_eq(rep.requests, ELEMENTSOF(bodies));
	cr_assert_not(rep.accepted);
	cr_assert_str_eq(rep.reason, "malformed request: body is not a JSON object");

	/* tolerated: whitespace, unknown members, numbers, escapes */
	_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize",
					 " { \"x\" : {\"a\":[1,{\"b\":\"}\"}]}, \"perscode\" : 12345678 ,"
					 " \"arch\":\"x86\\u005f64\", \"ok\":true } ");
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	stub_report(s, &rep);
	cr_assert_str_eq(rep.arch, "x86_64");
	cr_assert_null(rep.version);
	stub_stop(s);
}

/* Fields of the wrong type, a NUL hidden in an escape, numbers json-c
 * cannot hold: each a 400 with its reason, never a crash or a cut code. */
Test(stub, request_fields_of_the_wrong_kind)
{
	struct stub *s = start_stub("12345678", NULL);
	static const struct {
		const char *body, *reason;
	} bad[] = {
		{ "{\"perscode\":true}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":[\"12345678\"]}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":\"1234\\u00005678\"}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":-12345678}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":12345678.0}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":123456789012345678901234567890}", "malformed request: perscode is not a string" },
		{ "{\"perscode\":\"12345678\",\"arch\":{}}", "malformed request: arch is not a string" },
		{ "{\"perscode\":\"12345678\",\"bootstrap_version\":1.5}",
		  "malformed request: bootstrap_version is not a string" },
		{ "{\"perscode\":null}", "malformed request: no perscode" },
		{ "{\"perscode\":\"12345678\",", "malformed request: body is not a JSON object" },
		{ "\"12345678\"", "malformed request: body is not a JSON object" },
		{ "", "malformed request: body is not a JSON object" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize", bad[i].body);
		cr_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s -> %s", bad[i].body, resp);
		struct stub_report rep;
		stub_report(s, &rep);
		cr_assert_str_eq(rep.reason, bad[i].reason, "%s", bad[i].body);
	}
	/* A whole number is the code as written; the other fields may be null. */
	_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize",
					 "{\"perscode\":12345678,\"bootstrap_version\":null,\"arch\":\"x86_64\"}");
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_str_eq(rep.code, "12345678");
	cr_assert_null(rep.version);
	stub_stop(s);
}

Test(stub, other_paths_methods_and_limits)
{
	struct stub *s = start_stub("12345678", NULL);
	uint16_t port = stub_port(s);
	_cleanup_free_ char *r1 = post(port, "/qvsa/v1/personalizeX", ok_body);
	cr_assert(strncmp(r1, "HTTP/1.1 404 ", 13) == 0, "%s", r1);
	_cleanup_free_ char *r2 = post(port, "/xqvsa/v1/personalize", ok_body);
	cr_assert(strncmp(r2, "HTTP/1.1 404 ", 13) == 0, "%s", r2);
	_cleanup_free_ char *r3 = exchange(port, "GET /qvsa/v1/personalize HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	cr_assert(strncmp(r3, "HTTP/1.1 405 ", 13) == 0, "%s", r3);
	_cleanup_free_ char *r4 = exchange(port, "POST /qvsa/v1/personalize HTTP/1.1\r\n"
						 "Content-Length: 99999999\r\n\r\n", 0);
	cr_assert(strncmp(r4, "HTTP/1.1 413 ", 13) == 0, "%s", r4);
	_cleanup_free_ char *r5 = exchange(port, "garbage\r\n\r\n", 0);
	cr_assert(strncmp(r5, "HTTP/1.1 400 ", 13) == 0, "%s", r5);
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_eq(rep.requests, 1, "only the oversized POST to the endpoint counts");
	cr_assert_str_eq(rep.reason, "request body too large");
	cr_assert(strstr(r4, "\r\n\r\nREASON=request body too large\n"), "%s", r4);
	/* a body that arrives after the headers, in a second packet */
	_cleanup_free_ char *req = xasprintf("POST http://platform.example/qvsa/v1/personalize HTTP/1.1\r\n"
					     "Host: platform.example\r\nContent-Length: %zu\r\n\r\n%s",
					     strlen(ok_body), ok_body);
	_cleanup_free_ char *r6 = exchange(port, req, strlen(req) - 10);
	cr_assert(strncmp(r6, "HTTP/1.1 200 ", 13) == 0, "%s", r6);
	stub_stop(s);
}

Test(stub, custom_components_and_start_errors)
{
	const char *const comps[] = { "ML=9", "VULNSIGS=8", "TAGGER=7", "SCAND=6", "EXTRA=5", NULL };
	struct stub *s = start_stub("12345678", comps);
	_cleanup_free_ char *resp = post(stub_port(s), "/qvsa/v1/personalize", ok_body);
	cr_assert(strstr(resp, "\r\n\r\nML=9\nVULNSIGS=8\nTAGGER=7\nSCAND=6\nEXTRA=5\n"), "%s", resp);
	stub_stop(s);
	stub_stop(NULL);

	struct stub *t = NULL;
	struct stub_config none = { 0 };
	cr_assert_eq(stub_start(&none, &t), -1);
	cr_assert_null(t);
	const char *const bad[] = { "ML", NULL };
	struct stub_config badc = { .expected_code = "123456", .components = bad };
	cr_assert_eq(stub_start(&badc, &t), -1);
	struct stub_config addr = { .expected_code = "123456", .bind_addr = "not-an-ip" };
	cr_assert_eq(stub_start(&addr, &t), -1);
	cr_assert(strstr(err_msg(), "not-an-ip"), "%s", err_msg());
}

/* A stub speaking HTTPS with a certificate for 127.0.0.1 from a new CA. */
static struct stub *start_tls_stub(struct tlsca **ret_ca)
{
	cr_assert_eq(tlsca_new("qvsa verify CA", ret_ca), 0, "%s", err_msg());
	const char *sans[] = { "IP:127.0.0.1", NULL };
	_cleanup_free_ char *cert = NULL, *key = NULL;
	cr_assert_eq(tlsca_issue(*ret_ca, sans, &cert, &key), 0, "%s", err_msg());
	struct stub_config cfg = { .expected_code = "12345678", .cert_pem = cert, .key_pem = key };
	struct stub *s = NULL;
	cr_assert_eq(stub_start(&cfg, &s), 0, "stub_start: %s", err_msg());
	return s;
}

/* The report once n handshakes have failed (waits at most 2 s: the server counts in its own thread). */
static void report_after_failures(struct stub *s, unsigned n, struct stub_report *rep)
{
	for (int i = 0; i < 200; i++) {
		stub_report(s, rep);
		if (rep->tls_failures >= n)
			break;
		usleep(10 * 1000);
	}
	cr_assert_eq(rep->tls_failures, n);
}

Test(stub, https_end_to_end)
{
	struct tlsca *ca = NULL, *other = NULL;
	struct stub *s = start_tls_stub(&ca);
	_cleanup_free_ char *req = xasprintf("POST /qvsa/v1/personalize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
					     strlen(ok_body), ok_body);
	struct tn_tls t = { .ca_pem = tlsca_cert_pem(ca), .ip = "127.0.0.1", .max_version = TLS1_2_VERSION };
	_cleanup_free_ char *resp = tn_tls_exchange(stub_port(s), &t, req);
	cr_assert_not_null(resp, "handshake: %s", X509_verify_cert_error_string(t.verify_result));
	cr_assert(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\n\r\nML=3.1.0\nVULNSIGS=2.6.18-1\nTAGGER=1.4.2\nSCAND=12.9.5\n"), "%s", resp);
	struct stub_report rep;
	stub_report(s, &rep);
	cr_assert_eq(rep.requests, 1);
	cr_assert(rep.accepted);
	cr_assert_str_eq(rep.code, "12345678");
	cr_assert_eq(rep.tls_failures, 0);
	cr_assert_null(rep.tls_error);

	/* a guest that trusts another CA refuses the platform's certificate */
	cr_assert_eq(tlsca_new("another CA", &other), 0);
	struct tn_tls bad = { .ca_pem = tlsca_cert_pem(other), .ip = "127.0.0.1" };
	cr_assert_null(tn_tls_exchange(stub_port(s), &bad, req));
	report_after_failures(s, 1, &rep);
	cr_assert_not_null(rep.tls_error);
	cr_assert(strstr(rep.tls_error, "unknown ca"), "%s", rep.tls_error);
	/* and one that speaks plain HTTP to it never gets to the endpoint */
	_cleanup_free_ char *plain = post(stub_port(s), "/qvsa/v1/personalize", ok_body);
	cr_assert_str_eq(plain, "");
	report_after_failures(s, 2, &rep);
	cr_assert(strstr(rep.tls_error, "http request"), "%s", rep.tls_error);
	cr_assert_eq(rep.requests, 1);
	stub_stop(s);
	tlsca_free(other);
	tlsca_free(ca);

	struct stub_config half = { .expected_code = "12345678", .cert_pem = "x" };
	struct stub *t2 = NULL;
	cr_assert_eq(stub_start(&half, &t2), -1);
	cr_assert(strncmp(err_msg(), "platform stub: ", 15) == 0, "%s", err_msg());
	cr_assert_null(t2);
}

Test(stub, agent_client_against_stub)
{
	struct stub *s = start_stub("12345678", NULL);
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/base", stub_port(s));
	struct agent_url u;
	cr_assert_eq(agent_url_parse(url, &u), 0);
	_cleanup_free_ char *body = agent_request_body("12345678", "qVSA-9.1", "x86_64");
	_cleanup_free_ char *req = agent_request_build(&u, NULL, body);
	int status = 0;
	char *resp = NULL;
	cr_assert_eq(agent_http_exchange(u.host, u.port, req, 5000, &status, &resp), 0, "%s", agent_error());
	cr_assert_eq(status, 200);
	struct agent_components c;
	cr_assert_eq(agent_components_parse(resp, &c), 0, "%s", agent_error());
	cr_assert_eq(c.n, 4);
	agent_components_free(&c);
	free(resp);
	agent_url_free(&u);
	uint16_t port = stub_port(s);
	stub_stop(s);
	/* nobody listens any more: worth a retry, not a protocol error */
	cr_assert_eq(agent_http_exchange("127.0.0.1", port, req, 2000, &status, &resp), -EAGAIN);
}

/* ---- the agent binary, end to end ---- */

/* A temp tree: T/root (the appliance's /), T/seed, and the agent's output files. */
struct e2e {
	char dir[64];       /* T */
	char *root;         /* T/root */
	char *seed;         /* T/seed */
	struct stub *stub;  /* the platform */
	int exit_code;      /* of the last agent run */
	char *out;          /* its stdout */
	char *err;          /* its stderr */
};

static void e2e_write(const char *path, const char *text)
{
	cr_assert_eq(fs_write_file_atomic(path, text, strlen(text), 0644), 0, "%s", err_msg());
}

/* The stub speaks plain HTTP, which the image must allow. */
static void e2e_platform_conf(struct e2e *e, const char *text)
{
	_cleanup_free_ char *conf = xasprintf("%s/etc/qvsa/platform.conf", e->root);
	_cleanup_free_ char *all = xasprintf("ALLOW_HTTP=yes\n%s", text);
	e2e_write(conf, all);
}

static void e2e_setup(struct e2e *e, const char *expected)
{
	if (access(AGENT_BIN, X_OK) != 0)
		cr_skip_test("agent binary not built: run `make %s` first",
			     "templates/bootstrap-agent/rootfs/usr/sbin/qvsa-agent");
	snprintf(e->dir, sizeof(e->dir), "/tmp/qvsa-test-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(e->dir));
	e->root = xasprintf("%s/root", e->dir);
	e->seed = xasprintf("%s/seed", e->dir);
	_cleanup_free_ char *qdir = xasprintf("%s/etc/qvsa", e->root);
	cr_assert_eq(fs_mkdir_p(qdir, 0755), 0);
	cr_assert_eq(fs_mkdir_p(e->seed, 0755), 0);
	_cleanup_free_ char *rel = xasprintf("%s/etc/qvsa-release", e->root);
	e2e_write(rel, "NAME=\"qVSA\"\nBOOTSTRAP_VERSION=\"qVSA-9.1\"\n");
	e->stub = start_stub(expected, NULL);
	e2e_platform_conf(e, "");
}

static void e2e_user_data(struct e2e *e, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/user-data", e->seed);
	e2e_write(p, text);
}

static void e2e_run(struct e2e *e)
{
	_cleanup_free_ char *outp = xasprintf("%s/stdout", e->dir), *errp = xasprintf("%s/stderr", e->dir);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int r = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || r < 0 || dup2(o, 1) < 0 || dup2(r, 2) < 0)
			_exit(126);
		execl(AGENT_BIN, AGENT_BIN, "--root", e->root, "--seed-dir", e->seed, "--no-network",
		      "--no-poweroff", (char *)NULL);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "agent died");
	e->exit_code = WEXITSTATUS(status);
	free(e->out);
	free(e->err);
	cr_assert_eq(fs_read_file(outp, &e->out, NULL), 0);
	cr_assert_eq(fs_read_file(errp, &e->err, NULL), 0);
	cr_assert(strncmp(e->out, "QVSA-AGENT: starting\n", 21) == 0, "stdout: %s", e->out);
}

/* The JSON of the single status line. */
static const char *e2e_status(const struct e2e *e)
{
	const char *s = strstr(e->out, "QVSA-STATUS: ");
	cr_assert_not_null(s, "no status line; stdout: %s stderr: %s", e->out, e->err);
	cr_assert_null(strstr(s + 1, "QVSA-STATUS: "), "more than one status line");
	static char line[1024];
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(s + 13, "\n"), s + 13);
	return line;
}

static char *e2e_file(const struct e2e *e, const char *rel)
{
	_cleanup_free_ char *p = xasprintf("%s%s", e->root, rel);
	char *text = NULL;
	return fs_read_file(p, &text, NULL) == 0 ? text : NULL;
}

static void e2e_teardown(struct e2e *e)
{
	stub_stop(e->stub);
	fs_rm_rf(e->dir);
	free(e->root);
	free(e->seed);
	free(e->out);
	free(e->err);
}

/* True if text occurs in any file under dir. */
static bool tree_contains(const char *dir, const char *text)
{
	_cleanup_free_ char *cmd = xasprintf("grep -rqF -- '%s' '%s'", text, dir);
	return system(cmd) == 0;
}

Test(agent_e2e, success_then_skipped, .timeout = 60)
{
	struct e2e e = { 0 };
	e2e_setup(&e, "12345678");
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/", (unsigned)stub_port(e.stub));
	struct seed_params sp = { .instance_id = "iid-e2e", .perscode = "12345678", .platform_url = url,
				  .poweroff = true };
	_cleanup_free_ char *ud = NULL;
	cr_assert_eq(seed_user_data(&sp, &ud), 0);
	e2e_user_data(&e, ud);
	e2e_run(&e);
	cr_assert_eq(e.exit_code, 0, "stdout: %s stderr: %s", e.out, e.err);
	cr_assert_str_eq(e2e_status(&e), "{\"status\":\"success\",\"channel\":\"nocloud\",\"version\":\"qVSA-9.1\",\"components\":{"
					 "\"ML\":\"3.1.0\",\"SCAND\":\"12.9.5\",\"TAGGER\":\"1.4.2\","
					 "\"VULNSIGS\":\"2.6.18-1\"}}");
	_cleanup_free_ char *comps = e2e_file(&e, "/etc/qvsa/components");
	cr_assert_str_eq(comps, "ML=3.1.0\nSCAND=12.9.5\nTAGGER=1.4.2\nVULNSIGS=2.6.18-1\n");
	_cleanup_free_ char *marker = e2e_file(&e, "/etc/qvsa/personalized");
	cr_assert_str_eq(marker, "qVSA-9.1\n");
	cr_assert_not(tree_contains(e.root, "12345678"), "the code was written under the root");
	struct stub_report rep;
	stub_report(e.stub, &rep);
	struct utsname un;
	uname(&un);
	cr_assert_eq(rep.requests, 1);
	cr_assert_str_eq(rep.code, "12345678");
	cr_assert_str_eq(rep.version, "qVSA-9.1");
	cr_assert_str_eq(rep.arch, un.machine);

	e2e_run(&e);
	cr_assert_eq(e.exit_code, 0);
	cr_assert_str_eq(e2e_status(&e), "{\"status\":\"skipped\",\"version\":\"qVSA-9.1\","
					 "\"reason\":\"already personalized\"}");
	stub_report(e.stub, &rep);
	cr_assert_eq(rep.requests, 1, "a personalized appliance must not ask again");
	e2e_teardown(&e);
}

Test(agent_e2e, wrong_code_fails_at_platform, .timeout = 60)
{
	struct e2e e = { 0 };
	e2e_setup(&e, "87654321");
	_cleanup_free_ char *conf = xasprintf("PLATFORM_URL=http://127.0.0.1:%u\n", stub_port(e.stub));
	e2e_platform_conf(&e, conf);
	e2e_user_data(&e, "Dear support,\nPERSCODE=12345678\nthanks\n");
	e2e_run(&e);
	cr_assert_eq(e.exit_code, 1);
	cr_assert_str_eq(e2e_status(&e), "{\"status\":\"failure\",\"stage\":\"platform\",\"channel\":\"nocloud\","
					 "\"reason\":\"unknown personalization code\"}");
	_cleanup_free_ char *marker = e2e_file(&e, "/etc/qvsa/personalized");
	cr_assert_null(marker);
	_cleanup_free_ char *comps = e2e_file(&e, "/etc/qvsa/components");
	cr_assert_null(comps);
	e2e_teardown(&e);
}

Test(agent_e2e, local_failures_name_their_stage, .timeout = 60)
{
	struct e2e e = { 0 };
	e2e_setup(&e, "12345678");
	_cleanup_free_ char *conf = xasprintf("PLATFORM_URL=http://127.0.0.1:%u/\n", stub_port(e.stub));
	e2e_platform_conf(&e, conf);
	e2e_run(&e); /* no user-data in the seed dir */
	cr_assert_eq(e.exit_code, 1);
	cr_assert(strstr(e2e_status(&e), "\"stage\":\"channel\""), "%s", e2e_status(&e));

	e2e_user_data(&e, "#cloud-config\nqvsa:\n  perscode: \"12ab5678\"\n");
	e2e_run(&e);
	cr_assert_eq(e.exit_code, 1);
	cr_assert_str_eq(e2e_status(&e), "{\"status\":\"failure\",\"stage\":\"code\",\"channel\":\"nocloud\",\"reason\":"
					 "\"personalization code must be digits only (character 3 is not)\"}");

	e2e_user_data(&e, "#cloud-config\nqvsa:\n  perscode: 12345678\n  platform_url: https://p.example/\n");
	e2e_run(&e);
	cr_assert_eq(e.exit_code, 1);
	cr_assert(strstr(e2e_status(&e), "\"stage\":\"platform\""));
	cr_assert(strstr(e2e_status(&e), "no CA to verify the platform's certificate"), "%s", e2e_status(&e));
	struct stub_report rep;
	stub_report(e.stub, &rep);
	cr_assert_eq(rep.requests, 0);
	e2e_teardown(&e);
}

Test(agent_e2e, through_a_proxy, .timeout = 60)
{
	/* the stub accepts absolute-URI requests, so it can stand in for the proxy;
	 * the platform's name is never resolved by the agent when a proxy is set */
	struct e2e e = { 0 };
	e2e_setup(&e, "12345678");
	e2e_platform_conf(&e, "PLATFORM_URL=http://platform.invalid/api\nPROXY=http://nobody:x@127.0.0.1:1\n");
	_cleanup_free_ char *ud = xasprintf("#cloud-config\nqvsa:\n  perscode: '12345678'\n"
					    "  proxy: http://user:secret@127.0.0.1:%u\n",
					    (unsigned)stub_port(e.stub));
	e2e_user_data(&e, ud);
	e2e_run(&e);
	cr_assert_eq(e.exit_code, 0, "stdout: %s stderr: %s", e.out, e.err);
	cr_assert(strstr(e2e_status(&e), "\"status\":\"success\""));
	e2e_teardown(&e);
}
