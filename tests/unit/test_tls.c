/* The agent's platform transport over TLS: certificates are made per test
 * with the openssl CLI in a temp dir, the platform is an OpenSSL server in a
 * thread (plain HTTP for the allow_http cases), and a tiny CONNECT proxy
 * stands between them where a test asks for one. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/objects.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "fs.h"

#define CODE_BODY "{\"perscode\":\"12345678\",\"bootstrap_version\":\"qVSA-9.1\",\"arch\":\"x86_64\"}"
#define COMPONENTS "ML=3.1.0\nVULNSIGS=2.6.18-1\nTAGGER=1.4.2\nSCAND=12.9.5\n"

static char tmp[] = "/tmp/qvsa-test-tls-XXXXXX";

static void tmp_setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* a client that gave up must not kill the test's servers */
	cr_assert_not_null(mkdtemp(tmp));
}

static void tmp_teardown(void)
{
	fs_rm_rf(tmp);
}

TestSuite(tls, .init = tmp_setup, .fini = tmp_teardown, .timeout = 30);

/* Run a shell command in the temp dir; its output lands in the assertion on failure. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *cmd = NULL;
	cr_assert_geq(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	_cleanup_free_ char *full = xasprintf("cd '%s' && (%s) >log 2>&1", tmp, cmd);
	if (system(full) != 0) {
		_cleanup_free_ char *log = xasprintf("%s/log", tmp), *text = NULL;
		fs_read_file(log, &text, NULL);
		cr_assert_fail("`%s` failed: %s", cmd, text ? text : "");
	}
}

/* A self-signed ECDSA P-256 CA: NAME.pem, NAME.key, NAME.cnf (for `openssl ca`). */
static void make_ca(const char *name)
{
	sh("openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
	   "-out %s.pem -subj '/CN=qvsa %s' -days 2 -addext basicConstraints=critical,CA:TRUE "
	   "-addext keyUsage=critical,keyCertSign,cRLSign", name, name, name);
	sh("mkdir -p %s.db && : >%s.db/index.txt && printf '%s' >%s.cnf", name, name,
	   "[ca]\\ndefault_ca = d\\n[d]\\ndatabase = DB/index.txt\\nnew_certs_dir = DB\\n"
	   "rand_serial = yes\\ndefault_md = sha256\\npolicy = p\\nunique_subject = no\\n"
	   "[p]\\ncommonName = supplied\\n[e]\\nbasicConstraints = CA:FALSE\\n", name);
	sh("sed -i 's|DB|%s/%s.db|' %s.cnf", tmp, name, name);
}

/* "now + delta_s" in openssl ca's date format. */
static char *when(long delta_s)
{
	time_t t = time(NULL) + delta_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[32];
	strftime(buf, sizeof(buf), "%Y%m%d%H%M%SZ", &tm);
	return xasprintf("%s", buf);
}

/* A server certificate NAME.pem/NAME.key signed by ca for san (e.g. "IP:127.0.0.1"). */
static void issue(const char *ca, const char *name, const char *san, const char *from, const char *to)
{
	_cleanup_free_ char *ext = xasprintf("%s/%s.ext", tmp, name);
	_cleanup_free_ char *text = xasprintf("[e]\nsubjectAltName = %s\nbasicConstraints = CA:FALSE\n", san);
	cr_assert_eq(fs_write_file_atomic(ext, text, strlen(text), 0644), 0);
	sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
	   "-out %s.csr -subj '/CN=%s'", name, name, name);
	sh("openssl ca -batch -config %s.cnf -cert %s.pem -keyfile %s.key -in %s.csr -out %s.pem -notext "
	   "-startdate %s -enddate %s -extensions e -extfile %s.ext",
	   ca, ca, ca, name, name, from, to, name);
}

static void issue_now(const char *ca, const char *name, const char *san)
{
	_cleanup_free_ char *from = when(-3600), *to = when(86400);
	issue(ca, name, san, from, to);
}

static char *pem(const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s.pem", tmp, name);
	char *text = NULL;
	cr_assert_eq(fs_read_file(p, &text, NULL), 0);
	return text;
}

/* ---- the platform: one connection, TLS (OpenSSL) or plain ---- */

struct server {
	int lfd;              /* listening socket on 127.0.0.1 */
	uint16_t port;        /* its port */
	int stop[2];          /* pipe: written to end the accept wait */
	SSL_CTX *ctx;         /* TLS settings, or NULL for plain HTTP */
	pthread_t thread;     /* serves one connection */
	bool connected;       /* a client connected */
	bool handshake_ok;    /* the TLS handshake completed (or plain) */
	char sni[256];        /* server name the client sent, "" for none */
	int group;            /* NID of the key exchange group negotiated, 0 if none */
	char request[8192];   /* what the client sent, NUL-terminated */
};

static int listen_local(uint16_t *ret_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* Accept one connection unless stop is written first (-1 then). */
static int accept_or_stop(int lfd, int stop)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = stop, .events = POLLIN } };
	if (poll(p, 2, 20000) <= 0 || !(p[0].revents & POLLIN))
		return -1;
	return accept(lfd, NULL, NULL);
}

/* Read a request up to its end (headers + Content-Length) with rd. */
static void read_request(struct server *s, int (*rd)(void *, char *, int), void *ctx)
{
	size_t n = 0;
	for (;;) {
		int r = rd(ctx, s->request + n, (int)(sizeof(s->request) - 1 - n));
		if (r <= 0)
			break;
		n += (size_t)r;
		s->request[n] = 0;
		const char *end = strstr(s->request, "\r\n\r\n"), *cl = strstr(s->request, "Content-Length: ");
		if (end && (!cl || n >= (size_t)(end + 4 - s->request) + strtoul(cl + 16, NULL, 10)))
			break;
	}
}

static int rd_ssl(void *ssl, char *buf, int n) { return SSL_read(ssl, buf, n); }
static int rd_fd(void *fd, char *buf, int n) { return (int)read(*(int *)fd, buf, (size_t)n); }

static void *server_main(void *arg)
{
	struct server *s = arg;
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 53\r\n\r\n" COMPONENTS;
	int fd = accept_or_stop(s->lfd, s->stop[0]);
	if (fd < 0)
		return NULL;
	s->connected = true;
	if (!s->ctx) {
		s->handshake_ok = true;
		read_request(s, rd_fd, &fd);
		if (write(fd, reply, sizeof(reply) - 1) < 0)
			s->handshake_ok = false;
		close(fd);
		return NULL;
	}
	SSL *ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		s->handshake_ok = true;
		const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		snprintf(s->sni, sizeof(s->sni), "%s", sni ? sni : "");
		s->group = SSL_get_negotiated_group(ssl);
		read_request(s, rd_ssl, ssl);
		SSL_write(ssl, reply, sizeof(reply) - 1);
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

/* A platform presenting cert NAME.pem (TLS), or plain HTTP when name is NULL. */
static void server_start(struct server *s, const char *name)
{
	*s = (struct server){ 0 };
	s->lfd = listen_local(&s->port);
	cr_assert_eq(pipe(s->stop), 0);
	if (name) {
		_cleanup_free_ char *crt = xasprintf("%s/%s.pem", tmp, name), *key = xasprintf("%s/%s.key", tmp, name);
		s->ctx = SSL_CTX_new(TLS_server_method());
		cr_assert(SSL_CTX_use_certificate_chain_file(s->ctx, crt) == 1 &&
			  SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM) == 1, "server key/cert");
	}
	cr_assert_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
	cr_assert_eq(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	SSL_CTX_free(s->ctx);
}

/* ---- a CONNECT proxy for one tunnel ---- */

struct proxy {
	struct server srv;    /* listening socket, stop pipe, thread; request = the CONNECT headers */
	const char *auth;     /* required Proxy-Authorization value, or NULL */
};

static void relay(int a, int b)
{
	char buf[4096];
	for (;;) {
		struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
		if (poll(p, 2, 10000) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
				return;
		}
	}
}

static void *proxy_main(void *arg)
{
	struct proxy *px = arg;
	struct server *s = &px->srv;
	int fd = accept_or_stop(s->lfd, s->stop[0]);
	if (fd < 0)
		return NULL;
	s->connected = true;
	size_t n = 0;
	while (n < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n") && read(fd, s->request + n, 1) == 1)
		s->request[++n] = 0;
	unsigned port = 0;
	_cleanup_free_ char *want = px->auth ? xasprintf("\r\nProxy-Authorization: %s\r\n", px->auth) : NULL;
	if (want && !strstr(s->request, want)) {
		static const char no[] = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
		if (write(fd, no, sizeof(no) - 1) < 0)
			n = 0;
	} else if (sscanf(s->request, "CONNECT 127.0.0.1:%u HTTP/1.1\r\n", &port) == 1) {
		int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		if (connect(up, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, ok, sizeof(ok) - 1) > 0)
			relay(fd, up);
		close(up);
	}
	close(fd);
	return NULL;
}

static void proxy_start(struct proxy *px, const char *auth)
{
	*px = (struct proxy){ .auth = auth };
	px->srv.lfd = listen_local(&px->srv.port);
	cr_assert_eq(pipe(px->srv.stop), 0);
	cr_assert_eq(pthread_create(&px->srv.thread, NULL, proxy_main, px), 0);
}

/* ---- the client side ---- */

/* Post to url (printf format with the port) and expect rc. */
static int post(const char *url, const char *proxy, const char *ca, bool allow_http, int timeout_ms,
		int *ret_status, char **ret_body)
{
	*ret_status = 0;
	*ret_body = NULL;
	return agent_platform_post(url, proxy, ca, allow_http, CODE_BODY, timeout_ms, ret_status, ret_body);
}

static void expect_ok(const char *url, const char *proxy, const char *ca, bool allow_http)
{
	int status;
	char *body;
	int r = post(url, proxy, ca, allow_http, 5000, &status, &body);
	cr_assert_eq(r, 0, "%s: %s", url, agent_error());
	cr_assert_eq(status, 200);
	cr_assert_str_eq(body, COMPONENTS);
	free(body);
}

/* A failure with rc whose reason holds each of the NULL-terminated parts. */
static void expect_fail(const char *url, const char *ca, int rc, ...)
{
	int status;
	char *body;
	int r = post(url, NULL, ca, false, 5000, &status, &body);
	cr_assert_eq(r, rc, "%s: got %d (%s)", url, r, agent_error());
	cr_assert_null(body);
	va_list ap;
	va_start(ap, rc);
	for (const char *part; (part = va_arg(ap, const char *));)
		cr_assert(strstr(agent_error(), part), "error '%s' should mention '%s'", agent_error(), part);
	va_end(ap);
	cr_assert_null(strstr(agent_error(), "12345678"), "the code must not be in a message");
}

static bool starts_with_post(const char *req)
{
	return strncmp(req, "POST /qvsa/v1/personalize HTTP/1.1\r\n", 36) == 0;
}

/* ---- the tests ---- */

Test(tls, verified_ip_literal_success)
{
	make_ca("ca");
	issue_now("ca", "srv", "IP:127.0.0.1");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/base", s.port);
	expect_ok(url, NULL, ca, false);
	server_stop(&s);
	cr_assert(s.handshake_ok);
	cr_assert_str_eq(s.sni, "", "no SNI for an address literal");
	cr_expect_eq(s.group, NID_X9_62_prime256v1, "ECDHE on P-256, not the P-521 mbedTLS lists first (got %s)",
		     OBJ_nid2sn(s.group));
	_cleanup_free_ char *start = xasprintf("POST /base/qvsa/v1/personalize HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", s.port);
	cr_assert(strncmp(s.request, start, strlen(start)) == 0, "%s", s.request);
	cr_assert(strstr(s.request, "\r\n\r\n" CODE_BODY), "%s", s.request);
}

Test(tls, verified_dns_name_and_bundle)
{
	make_ca("ca");
	make_ca("other");
	issue_now("ca", "srv", "DNS:localhost");
	/* a bundle of two CAs, ours second */
	_cleanup_free_ char *a = pem("other"), *b = pem("ca"), *bundle = xasprintf("%s%s", a, b);
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://localhost:%u/", s.port);
	expect_ok(url, NULL, bundle, false);
	server_stop(&s);
	cr_assert_str_eq(s.sni, "localhost");
	cr_assert(strstr(s.request, "\r\nHost: localhost:"), "%s", s.request);
}

Test(tls, unknown_ca_is_named)
{
	make_ca("ca");
	make_ca("foreign");
	issue_now("foreign", "srv", "IP:127.0.0.1");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	expect_fail(url, ca, -EPROTO, "not signed by a trusted CA", "CN=qvsa foreign", NULL);
	server_stop(&s);
	cr_assert_not(s.handshake_ok);
	cr_assert_str_eq(s.request, "", "nothing may be sent to an unverified server");
}

Test(tls, wrong_dns_name)
{
	make_ca("ca");
	issue_now("ca", "srv", "DNS:other.example");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://localhost:%u/", s.port);
	expect_fail(url, ca, -EPROTO, "does not match host 'localhost'", "DNS:other.example", NULL);
	server_stop(&s);
	cr_assert_str_eq(s.request, "");
}

Test(tls, ip_san_mismatch)
{
	make_ca("ca");
	/* a DNS name that spells the address is not an iPAddress SAN */
	issue_now("ca", "srv", "IP:127.0.0.2,DNS:127.0.0.1");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	expect_fail(url, ca, -EPROTO, "does not match host '127.0.0.1'", "IP:127.0.0.2", NULL);
	server_stop(&s);
	cr_assert_str_eq(s.request, "");
}

Test(tls, expired_certificate)
{
	make_ca("ca");
	issue("ca", "srv", "IP:127.0.0.1", "20200101000000Z", "20200102000000Z");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	expect_fail(url, ca, -EPROTO, "expired on 2020-01-02 00:00:00 UTC", "clock", NULL);
	server_stop(&s);
	cr_assert_str_eq(s.request, "");
}

Test(tls, plain_http_only_when_allowed)
{
	struct server s;
	server_start(&s, NULL);
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/", s.port);
	expect_fail(url, NULL, -EPROTO, "refuses plain http:// platform URLs",
		    "personalization: allow_http: true", NULL);
	expect_ok(url, NULL, NULL, true);
	server_stop(&s);
	cr_assert(starts_with_post(s.request), "%s", s.request);
}

Test(tls, connect_tunnel_through_proxy)
{
	make_ca("ca");
	issue_now("ca", "srv", "IP:127.0.0.1");
	_cleanup_free_ char *ca = pem("ca");
	struct server s;
	server_start(&s, "srv");
	struct proxy px;
	_cleanup_free_ char *cred = agent_base64("user:se cret", 12);
	_cleanup_free_ char *auth = xasprintf("Basic %s", cred);
	proxy_start(&px, auth);
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	_cleanup_free_ char *proxy = xasprintf("http://user:se%%20cret@127.0.0.1:%u", px.srv.port);
	expect_ok(url, proxy, ca, false);
	server_stop(&px.srv);
	server_stop(&s);
	_cleanup_free_ char *connect = xasprintf("CONNECT 127.0.0.1:%u HTTP/1.1\r\n", s.port);
	cr_assert(strncmp(px.srv.request, connect, strlen(connect)) == 0, "%s", px.srv.request);
	cr_assert_null(strstr(px.srv.request, "12345678"), "the proxy must not see the code");
	/* inside the tunnel: origin form, and the proxy's credentials stay with the proxy */
	cr_assert(starts_with_post(s.request), "%s", s.request);
	cr_assert_null(strstr(s.request, "Proxy-Authorization"), "%s", s.request);
}

Test(tls, proxy_refuses_tunnel)
{
	make_ca("ca");
	_cleanup_free_ char *ca = pem("ca");
	struct proxy px;
	proxy_start(&px, "Basic nope");
	_cleanup_free_ char *proxy = xasprintf("http://127.0.0.1:%u", px.srv.port);
	int status;
	char *body;
	cr_assert_eq(post("https://platform.invalid/", proxy, ca, false, 5000, &status, &body), -EPROTO);
	cr_assert(strstr(agent_error(), "HTTP 407"), "%s", agent_error());
	cr_assert(strstr(agent_error(), "platform.invalid port 443"), "%s", agent_error());
	server_stop(&px.srv);
}

Test(tls, no_ca_is_a_clear_failure)
{
	struct server s;
	server_start(&s, NULL);
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	expect_fail(url, NULL, -EPROTO, "no CA to verify the platform's certificate", "ca_certs:", NULL);
	expect_fail(url, "", -EPROTO, "no CA to verify", NULL);
	cr_assert_not(s.connected);
	expect_fail(url, "not a certificate\n", -EPROTO, "no readable certificate", NULL);
	server_stop(&s);
}

Test(tls, silent_server_times_out)
{
	make_ca("ca");
	_cleanup_free_ char *ca = pem("ca");
	uint16_t port;
	int lfd = listen_local(&port); /* the kernel completes the connect; nobody answers */
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", port);
	int status;
	char *body;
	double t0 = agent_now();
	cr_assert_eq(post(url, NULL, ca, false, 700, &status, &body), -EAGAIN, "%s", agent_error());
	double took = agent_now() - t0;
	cr_assert(took >= 0.6 && took < 3, "took %.2f s", took);
	cr_assert(strstr(agent_error(), "timed out after 0.7 s"), "%s", agent_error());
	close(lfd);
	/* nobody listening: retried too */
	cr_assert_eq(post(url, NULL, ca, false, 700, &status, &body), -EAGAIN, "%s", agent_error());
}

Test(tls, ca_from_user_data_verifies)
{
	make_ca("ca");
	issue_now("ca", "srv", "IP:127.0.0.1");
	_cleanup_free_ char *ca = pem("ca");
	struct agent_buf ud = { 0 };
	agent_buf_puts(&ud, "#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs:\n  trusted:\n  - |\n");
	for (const char *l = ca; *l;) {
		size_t n = strcspn(l, "\n");
		agent_buf_puts(&ud, "    ");
		agent_buf_add(&ud, l, n);
		agent_buf_puts(&ud, "\n");
		l += n + (l[n] == '\n');
	}
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(ud.data, &u), 0, "%s", agent_error());
	cr_assert_str_eq(u.ca_pem, ca);
	struct server s;
	server_start(&s, "srv");
	_cleanup_free_ char *url = xasprintf("https://127.0.0.1:%u/", s.port);
	expect_ok(url, NULL, u.ca_pem, false);
	server_stop(&s);
	agent_userdata_free(&u);
	agent_buf_free(&ud);
}

/* ---- ca_certs: in user-data ---- */

#define PEM_A "-----BEGIN CERTIFICATE-----\nAAAA\nAAAA\n-----END CERTIFICATE-----\n"
#define PEM_B "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"

static struct agent_userdata ud_ok(const char *text)
{
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(text, &u), 0, "%s", agent_error());
	return u;
}

static void ud_fails(const char *text, const char *why)
{
	struct agent_userdata u = { 0 };
	cr_assert_eq(agent_userdata_parse(text, &u), -1, "parse of [%s] should fail", text);
	cr_assert(strstr(agent_error(), why), "error '%s' should mention '%s'", agent_error(), why);
	agent_userdata_free(&u);
}

Test(ca_certs, block_scalar)
{
	struct agent_userdata u = ud_ok("#cloud-config\nqvsa:\n  perscode: 12345678\n"
					"ca_certs:\n  remove_defaults: true\n  trusted:\n"
					"    - |\n      -----BEGIN CERTIFICATE-----\n      AAAA\n      AAAA\n"
					"      -----END CERTIFICATE-----\n"
					"power_state:\n  mode: poweroff\n");
	cr_assert_str_eq(u.ca_pem, PEM_A);
	cr_assert_str_eq(u.perscode, "12345678");
	cr_assert(u.poweroff, "keys after the block are still read");
	agent_userdata_free(&u);
	u = ud_ok("#cloud-config\nqvsa:\n  perscode: 12345678\n");
	cr_assert_null(u.ca_pem);
	agent_userdata_free(&u);
}

Test(ca_certs, two_certs_crlf_chomping_and_comments)
{
	struct agent_userdata u = ud_ok("#cloud-config\r\n"
					"ca_certs:\r\n"
					"  trusted:   # ours\r\n"
					"  - |-\r\n"
					"    -----BEGIN CERTIFICATE-----\r\n"
					"    AAAA\r\n"
					"\r\n"
					"    AAAA\r\n"
					"    -----END CERTIFICATE-----\r\n"
					"  # between the items\r\n"
					"  - |+\r\n"
					"     -----BEGIN CERTIFICATE-----\r\n"
					"     BBBB\r\n"
					"     -----END CERTIFICATE-----\r\n"
					"qvsa:\r\n  perscode: 12345678\r\n");
	cr_assert_str_eq(u.ca_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n\nAAAA\n-----END CERTIFICATE-----\n" PEM_B);
	agent_userdata_free(&u);
}

Test(ca_certs, quoted_items_and_legacy_key)
{
	struct agent_userdata u = ud_ok("#cloud-config\nqvsa:\n  perscode: 12345678\nca-certs:\n  trusted:\n"
					"    - \"-----BEGIN CERTIFICATE-----\\nAAAA\\nAAAA\\n-----END CERTIFICATE-----\"\n"
					"    - '" "-----BEGIN CERTIFICATE-----BBBB-----END CERTIFICATE-----'\n");
	cr_assert_str_eq(u.ca_pem, PEM_A "-----BEGIN CERTIFICATE-----BBBB-----END CERTIFICATE-----\n");
	agent_userdata_free(&u);
	/* only a top-level ca_certs: counts; other modules' blocks are skipped */
	u = ud_ok("#cloud-config\nqvsa:\n  perscode: 12345678\nother:\n  ca_certs:\n    trusted:\n"
		  "      - not a certificate\nwrite_files:\n  - content: |\n      ca_certs:\n        trusted:\n"
		  "        - x\n");
	cr_assert_null(u.ca_pem);
	agent_userdata_free(&u);
}

Test(ca_certs, malformed)
{
	const char *head = "#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs:\n  trusted:\n";
	struct {
		const char *rest, *why;
	} cases[] = {
		{ "  - |\n    not a certificate\n  - |\n    " PEM_B, "line 6: ca_certs: trusted: item is not a PEM" },
		{ "  - >\n    " PEM_B, "folded block" },
		{ "  - -----BEGIN CERTIFICATE-----\n", "literal block (- |) or a quoted string" },
		{ "  - \"-----BEGIN CERTIFICATE-----\\n\n    AAAA-----END CERTIFICATE-----\"\n", "line 6: unterminated" },
		{ "  - |2\n    " PEM_B, "only plain literal blocks" },
		{ "  - |\n      -----BEGIN CERTIFICATE-----\n     AAAA\n", "indented less than the first" },
		{ "  -\n", "literal block (- |)" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *text = xasprintf("%s%s", head, cases[i].rest);
		ud_fails(text, cases[i].why);
	}
	ud_fails("#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs:\n  trusted: [\"x\"]\n", "must be a block list");
	ud_fails("#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs:\n  trusted: \"x\"\n", "must be a block list");
	ud_fails("#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs: {trusted: x}\n", "must be a block list");
	ud_fails("#cloud-config\nqvsa:\n  perscode: 12345678\nca-certs: yes\n", "ca_certs: must be a mapping");
	/* a broken certificate does not lose the other values */
	struct agent_userdata u = { 0 };
	_cleanup_free_ char *text = xasprintf("%s  - x\npower_state:\n  mode: poweroff\n", head);
	cr_assert_eq(agent_userdata_parse(text, &u), -1);
	cr_assert(u.poweroff);
	agent_userdata_free(&u);
	/* remove_defaults and other keys under ca_certs: are ignored */
	u = ud_ok("#cloud-config\nqvsa:\n  perscode: 12345678\nca_certs: {remove_defaults: true}\n");
	cr_assert_null(u.ca_pem);
	agent_userdata_free(&u);
}
