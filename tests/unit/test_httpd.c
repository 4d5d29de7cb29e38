/* The verification HTTP server over real loopback sockets: what handlers
 * see, the limits, concurrency and stopping (suite httpd), and TLS with
 * certificates from the run-time CA, against OpenSSL and mbedTLS clients
 * (suite httpd_tls). */
#include <criterion/criterion.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "httpd.h"
#include "httpd_parse.h"
#include "testnet.h"
#include "tlsca.h"

/* What the test handler saw (under lock: handlers run in server threads). */
struct seen {
	pthread_mutex_t lock;  /* guards the rest */
	unsigned calls;        /* handler calls */
	char method[16];       /* last request's */
	char target[256];
	char path[256];
	char query[256];
	char headers[1024];    /* "name=value\n" for each header, in order */
	char x_spaced[64];     /* httpd_header(rq, "x-spaced"), or "(none)" */
	char body[256];        /* body bytes, NULs shown as '0' */
	size_t body_len;
	unsigned refusals;     /* on_refusal calls */
	int refused_status;    /* last refusal's status */
	char refused_path[256]; /* its path, or "(no request line)" */
};

static struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void handler(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct seen *s = opaque;
	pthread_mutex_lock(&s->lock);
	s->calls++;
	snprintf(s->method, sizeof(s->method), "%s", rq->method);
	snprintf(s->target, sizeof(s->target), "%s", rq->target);
	snprintf(s->path, sizeof(s->path), "%s", rq->path);
	snprintf(s->query, sizeof(s->query), "%s", rq->query);
	s->headers[0] = 0;
	for (size_t i = 0; i < rq->n_headers; i++) {
		size_t n = strlen(s->headers);
		snprintf(s->headers + n, sizeof(s->headers) - n, "%s=%s\n", rq->headers[i].name, rq->headers[i].value);
	}
	const char *sp = httpd_header(rq, "x-spaced");
	snprintf(s->x_spaced, sizeof(s->x_spaced), "%s", sp ? sp : "(none)");
	s->body_len = rq->body_len;
	for (size_t i = 0; i < rq->body_len && i + 1 < sizeof(s->body); i++)
		s->body[i] = rq->body[i] ? rq->body[i] : '0';
	s->body[rq->body_len < sizeof(s->body) ? rq->body_len : sizeof(s->body) - 1] = 0;
	pthread_mutex_unlock(&s->lock);
	resp->status = 201;
	resp->content_type = "application/x-test";
	resp->body = xstrdup("hello");
	resp->body_len = 5;
	snprintf(resp->extra_headers, sizeof(resp->extra_headers), "X-Extra: yes\r\n");
}

static void refusal(void *opaque, const struct httpd_request *rq, int status, const char *why)
{
	struct seen *s = opaque;
	cr_assert_not_null(why);
	pthread_mutex_lock(&s->lock);
	s->refusals++;
	s->refused_status = status;
	snprintf(s->refused_path, sizeof(s->refused_path), "%s", rq ? rq->path : "(no request line)");
	pthread_mutex_unlock(&s->lock);
}

static struct httpd *start(struct httpd_config *c)
{
	pthread_mutex_lock(&seen.lock);
	size_t off = offsetof(struct seen, calls);
	memset((char *)&seen + off, 0, sizeof(seen) - off);
	pthread_mutex_unlock(&seen.lock);
	c->handler = handler;
	c->on_refusal = refusal;
	c->opaque = &seen;
	struct httpd *h = NULL;
	cr_assert_eq(httpd_start(c, &h), 0, "httpd_start: %s", err_msg());
	cr_assert_neq(httpd_port(h), 0);
	return h;
}

/* Send raw bytes (len 0: strlen) and return the whole answer. */
static char *exchange(uint16_t port, const char *raw, size_t len)
{
	_cleanup_close_ int fd = tn_connect(port);
	tn_send_all(fd, raw, len ? len : strlen(raw));
	return tn_read_all(fd, NULL);
}

static void assert_status(const char *resp, int status)
{
	char want[16];
	snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
	cr_assert(strncmp(resp, want, strlen(want)) == 0, "want %d, got: %s", status, resp);
}

/* Wait (at most 2 s) until the server has counted n connections. */
static void wait_connections(struct httpd *h, unsigned n)
{
	struct httpd_stats st;
	for (int i = 0; i < 200; i++) {
		httpd_stats(h, &st);
		if (st.connections >= n)
			return;
		usleep(10 * 1000);
	}
	cr_assert_fail("only %u of %u connections accepted", st.connections, n);
}

Test(httpd, handler_sees_the_request)
{
	struct httpd_config c = { 0 };
	struct httpd *h = start(&c);
	static const char req[] = "PUT /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Spaced: \t v w  \r\n"
				  "Empty:\r\nContent-Length: 5\r\n\r\nab\0cd";
	_cleanup_free_ char *resp = exchange(httpd_port(h), req, sizeof(req) - 1);
	assert_status(resp, 201);
	cr_assert(strncmp(resp, "HTTP/1.1 201 Created\r\n", 22) == 0, "%s", resp);
	cr_assert(strstr(resp, "\r\nContent-Type: application/x-test\r\n"), "%s", resp);
	cr_assert(strstr(resp, "\r\nContent-Length: 5\r\n"), "%s", resp);
	cr_assert(strstr(resp, "\r\nConnection: close\r\n"), "%s", resp);
	cr_assert(strstr(resp, "\r\nX-Extra: yes\r\n"), "%s", resp);
	cr_assert(strstr(resp, "\r\n\r\nhello") && !strstr(resp, "hello")[5], "%s", resp);
	cr_assert_eq(seen.calls, 1);
	cr_assert_str_eq(seen.method, "PUT");
	cr_assert_str_eq(seen.target, "/a/b%20c?x=1&y=2");
	cr_assert_str_eq(seen.path, "/a/b%20c");
	cr_assert_str_eq(seen.query, "x=1&y=2");
	cr_assert_str_eq(seen.headers, "Host=h\nX-Spaced=v w\nEmpty=\nContent-Length=5\n");
	cr_assert_str_eq(seen.x_spaced, "v w");
	cr_assert_eq(seen.body_len, 5);
	cr_assert_str_eq(seen.body, "ab0cd");
	struct httpd_stats st;
	httpd_stats(h, &st);
	cr_assert_eq(st.requests, 1);
	cr_assert_eq(st.refused, 0);
	cr_assert_eq(st.connections, 1);
	cr_assert_eq(st.tls_failures, 0);
	cr_assert_str_eq(st.tls_error, "");
	httpd_stop(h);
	httpd_stop(NULL);
}

Test(httpd, parse_head_without_a_server)
{
	char head[] = "OPTIONS * HTTP/1.0\r\nA: 1\r\nb:2 \r\nContent-Length: 007";
	struct httpd_request rq = { 0 };
	struct httpd_head_mem m = { 0 };
	const char *why = NULL;
	cr_assert_eq(httpd_parse_head(head, &rq, &m, &why), 0, "%s", why);
	cr_assert_str_eq(rq.method, "OPTIONS");
	cr_assert_str_eq(rq.target, "*");
	cr_assert_str_eq(rq.path, "*");
	cr_assert_str_eq(rq.query, "");
	cr_assert_eq(rq.n_headers, 3);
	cr_assert_str_eq(httpd_header(&rq, "B"), "2");
	cr_assert_null(httpd_header(&rq, "C"));
	unsigned long long cl = 0;
	cr_assert_eq(httpd_body_length(&rq, &cl, &why), 0);
	cr_assert_eq(cl, 7);
	httpd_head_mem_free(&m);

	char big[] = "PUT /x HTTP/1.1\r\nContent-Length: 1234567890123456789";
	m = (struct httpd_head_mem){ 0 };
	cr_assert_eq(httpd_parse_head(big, &rq, &m, &why), 0, "%s", why);
	cr_assert_eq(httpd_body_length(&rq, &cl, &why), 400, "19 digits must not pass");
	httpd_head_mem_free(&m);
	cr_assert_str_eq(httpd_status_text(431), "Request Header Fields Too Large");
	cr_assert_str_eq(httpd_status_text(418), "Client Error");
}

Test(httpd, absolute_targets_head_and_expect)
{
	struct httpd_config c = { 0 };
	struct httpd *h = start(&c);
	uint16_t port = httpd_port(h);
	_cleanup_free_ char *r1 = exchange(port, "GET http://169.254.169.254/latest/user-data?a=b#frag HTTP/1.1\r\n\r\n", 0);
	assert_status(r1, 201);
	cr_assert_str_eq(seen.path, "/latest/user-data");
	cr_assert_str_eq(seen.query, "a=b");
	cr_assert_str_eq(seen.body, "");
	_cleanup_free_ char *r2 = exchange(port, "GET HTTP://host HTTP/1.0\r\n\r\n", 0);
	assert_status(r2, 201);
	cr_assert_str_eq(seen.path, "/");
	cr_assert_str_eq(seen.query, "");
	_cleanup_free_ char *r3 = exchange(port, "HEAD /x HTTP/1.1\r\n\r\n", 0);
	assert_status(r3, 201);
	cr_assert(strstr(r3, "Content-Length: 5\r\n"), "%s", r3);
	cr_assert_null(strstr(r3, "hello"), "HEAD answered with a body: %s", r3);

	/* Expect: 100-continue gets its interim answer before the body is sent */
	_cleanup_close_ int fd = tn_connect(port);
	static const char head[] = "POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
	tn_send_all(fd, head, sizeof(head) - 1);
	char interim[64] = "";
	ssize_t n = recv(fd, interim, sizeof(interim) - 1, 0);
	cr_assert_gt(n, 0);
	cr_assert_str_eq(interim, "HTTP/1.1 100 Continue\r\n\r\n");
	tn_send_all(fd, "abc", 3);
	_cleanup_free_ char *r4 = tn_read_all(fd, NULL);
	assert_status(r4, 201);
	cr_assert_str_eq(seen.body, "abc");
	httpd_stop(h);
}

Test(httpd, limits_and_malformed_requests)
{
	struct httpd_config c = { .max_header = 256, .max_body = 16, .timeout_ms = 300 };
	struct httpd *h = start(&c);
	uint16_t port = httpd_port(h);
	char big[600];
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %0500d\r\n\r\n", 0);
	_cleanup_free_ char *r1 = exchange(port, big, 0);
	assert_status(r1, 431);
	cr_assert(strstr(r1, "\r\n\r\nREASON=request headers too large\n"), "%s", r1);
	cr_assert_str_eq(seen.refused_path, "(no request line)");

	_cleanup_free_ char *r2 = exchange(port, "POST /up HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 0);
	assert_status(r2, 413);
	cr_assert_eq(seen.refused_status, 413);
	cr_assert_str_eq(seen.refused_path, "/up");
	_cleanup_free_ char *r3 = exchange(port, "POST /ok HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 0);
	assert_status(r3, 201);
	cr_assert_str_eq(seen.body, "0123456789abcdef");

	const char *bad[] = {
		"garbage\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nNo colon\r\n\r\n", "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
		"GET / HTTP/1.1\r\nBad name: x\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *r = exchange(port, bad[i], 0);
		assert_status(r, 400);
		cr_assert(strstr(r, "\r\n\r\nREASON="), "%s", r);
	}
	static const char nul[] = "GET /\0 HTTP/1.1\r\n\r\n";
	_cleanup_free_ char *r4 = exchange(port, nul, sizeof(nul) - 1);
	assert_status(r4, 400);
	_cleanup_free_ char *r5 = exchange(port, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0);
	assert_status(r5, 411);

	/* a slow client: an incomplete request, then silence */
	double t0 = tn_now();
	_cleanup_free_ char *r6 = exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n", 0);
	double took = tn_now() - t0;
	assert_status(r6, 408);
	cr_assert(took >= 0.25 && took < 2.0, "408 after %.3f s", took);
	t0 = tn_now();
	_cleanup_free_ char *r7 = exchange(port, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0);
	assert_status(r7, 408);
	cr_assert(strstr(r7, "REASON=timed out reading the request body"), "%s", r7);

	struct httpd_stats st;
	httpd_stats(h, &st);
	size_t refused = 2 + ELEMENTSOF(bad) + 4;
	cr_assert_eq(st.refused, refused, "%u refused", st.refused);
	cr_assert_eq(seen.refusals, refused);
	cr_assert_eq(st.requests, 1);
	cr_assert_eq(seen.calls, 1);
	httpd_stop(h);
}

/* A client that has sent part of a request and waits; closes when freed. */
static int stall(uint16_t port)
{
	int fd = tn_connect(port);
	tn_send_all(fd, "GET /slow HTTP/1.1\r\n", 20);
	return fd;
}

Test(httpd, a_stalled_client_blocks_nobody)
{
	struct httpd_config c = { .timeout_ms = 5000 };
	struct httpd *h = start(&c);
	_cleanup_close_ int slow = stall(httpd_port(h));
	wait_connections(h, 1);
	double t0 = tn_now();
	_cleanup_free_ char *r = exchange(httpd_port(h), "GET /fast HTTP/1.1\r\n\r\n", 0);
	double took = tn_now() - t0;
	assert_status(r, 201);
	cr_assert_str_eq(seen.path, "/fast");
	cr_assert_lt(took, 1.0, "the second client waited %.3f s", took);
	httpd_stop(h);
}

Test(httpd, more_clients_than_threads)
{
	/* 40 stalled clients: 32 are served at once, the rest wait in the
	 * backlog, and every one gets its answer once it completes its request */
	struct httpd_config c = { .timeout_ms = 5000 };
	struct httpd *h = start(&c);
	int fds[40];
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		fds[i] = stall(httpd_port(h));
	wait_connections(h, 32);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		tn_send_all(fds[i], "\r\n", 2);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
		_cleanup_free_ char *r = tn_read_all(fds[i], NULL);
		assert_status(r, 201);
		close(fds[i]);
	}
	struct httpd_stats st;
	httpd_stats(h, &st);
	cr_assert_eq(st.requests, ELEMENTSOF(fds));
	cr_assert_eq(st.connections, ELEMENTSOF(fds));
	httpd_stop(h);
}

Test(httpd, stop_is_prompt)
{
	struct httpd_config c = { .timeout_ms = 10000 };
	struct httpd *h = start(&c);
	_cleanup_close_ int slow = stall(httpd_port(h));
	_cleanup_close_ int idle = tn_connect(httpd_port(h));
	wait_connections(h, 2);
	double t0 = tn_now();
	httpd_stop(h);
	double took = tn_now() - t0;
	cr_assert_lt(took, 0.5, "httpd_stop took %.3f s", took);
	/* the stalled client is let go without an answer */
	_cleanup_free_ char *r = tn_read_all(slow, NULL);
	cr_assert_str_eq(r, "");
	cr_assert_eq(seen.calls, 0);
}

Test(httpd, start_errors)
{
	struct httpd *h = NULL;
	struct httpd_config none = { 0 };
	cr_assert_eq(httpd_start(&none, &h), -1);
	cr_assert(strstr(err_msg(), "no handler"), "%s", err_msg());
	struct httpd_config addr = { .handler = handler, .bind_addr = "not-an-ip" };
	cr_assert_eq(httpd_start(&addr, &h), -1);
	cr_assert(strstr(err_msg(), "'not-an-ip': not an IP address"), "%s", err_msg());
	cr_assert_null(h);

	struct httpd_config first = { 0 };
	struct httpd *a = start(&first);
	struct httpd_config taken = { .handler = handler, .port = httpd_port(a) };
	cr_assert_eq(httpd_start(&taken, &h), -1);
	cr_assert(strstr(err_msg(), "Address already in use"), "%s", err_msg());
	httpd_stop(a);

	struct tlsca *ca = NULL;
	cr_assert_eq(tlsca_new("test CA", &ca), 0, "%s", err_msg());
	const char *sans[] = { "IP:127.0.0.1", NULL };
	_cleanup_free_ char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL;
	cr_assert_eq(tlsca_issue(ca, sans, &cert, &key), 0, "%s", err_msg());
	cr_assert_eq(tlsca_issue(ca, sans, &cert2, &key2), 0, "%s", err_msg());
	struct { const char *cert, *key, *msg; } bad[] = {
		{ cert, NULL, "needs its key" },
		{ NULL, key, "needs its key" },
		{ "not PEM", key, "certificate: " },
		{ cert, "not PEM", "private key: " },
		{ cert, key2, "private key: " },
		{ key, key, "certificate: " },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct httpd_config tc = { .handler = handler, .cert_pem = bad[i].cert, .key_pem = bad[i].key };
		err_clear();
		cr_assert_eq(httpd_start(&tc, &h), -1, "case %zu started", i);
		cr_assert(strstr(err_msg(), bad[i].msg), "case %zu: %s", i, err_msg());
		cr_assert_null(strstr(err_msg(), "PRIVATE KEY"), "the key leaked into the message");
	}
	cr_assert_null(h);
	tlsca_free(ca);
}

/* ---- TLS ---- */

/* A CA, and a TLS server with a certificate from it for sans. */
static struct httpd *start_tls(struct tlsca **ret_ca, const char *const *sans, struct httpd_config *c)
{
	cr_assert_eq(tlsca_new("qvsa test CA", ret_ca), 0, "%s", err_msg());
	char *cert = NULL, *key = NULL;
	cr_assert_eq(tlsca_issue(*ret_ca, sans, &cert, &key), 0, "%s", err_msg());
	c->cert_pem = cert;
	c->key_pem = key;
	struct httpd *h = start(c);
	free(cert); /* the server keeps its own copies */
	free(key);
	c->cert_pem = c->key_pem = NULL;
	return h;
}

/* Wait (at most 2 s) for the server to count n failed handshakes. */
static void wait_tls_failures(struct httpd *h, unsigned n)
{
	for (int i = 0; i < 200 && httpd_tls_failures(h) < n; i++)
		usleep(10 * 1000);
	cr_assert_eq(httpd_tls_failures(h), n);
}

static const char *const local_sans[] = { "IP:127.0.0.1", "DNS:platform.test", NULL };

Test(httpd_tls, a_client_trusting_the_ca_gets_through)
{
	struct tlsca *ca = NULL;
	struct httpd_config c = { 0 };
	struct httpd *h = start_tls(&ca, local_sans, &c);
	struct tn_tls t = { .ca_pem = tlsca_cert_pem(ca), .ip = "127.0.0.1" };
	_cleanup_free_ char *r = tn_tls_exchange(httpd_port(h), &t, "POST /p?q HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
	cr_assert_not_null(r, "handshake failed: %s", X509_verify_cert_error_string(t.verify_result));
	assert_status(r, 201);
	cr_assert(strstr(r, "\r\n\r\nhello"), "%s", r);
	cr_assert_str_eq(seen.path, "/p");
	cr_assert_str_eq(seen.body, "hi");
	cr_assert_str_eq(t.version, "TLSv1.3");
	cr_assert_lt(t.handshake_s, 1.0);

	/* what mbedTLS 2.28 speaks: TLS 1.2, by name this time */
	struct tn_tls t12 = { .ca_pem = tlsca_cert_pem(ca), .host = "platform.test", .max_version = TLS1_2_VERSION };
	_cleanup_free_ char *r12 = tn_tls_exchange(httpd_port(h), &t12, "GET / HTTP/1.1\r\n\r\n");
	cr_assert_not_null(r12, "TLS 1.2: %s", X509_verify_cert_error_string(t12.verify_result));
	cr_assert_str_eq(t12.version, "TLSv1.2");
	assert_status(r12, 201);
	cr_assert_eq(httpd_tls_failures(h), 0);
	httpd_stop(h);
	tlsca_free(ca);
}

Test(httpd_tls, a_client_refusing_the_certificate_is_counted)
{
	struct tlsca *ca = NULL, *other = NULL;
	struct httpd_config c = { 0 };
	struct httpd *h = start_tls(&ca, local_sans, &c);
	cr_assert_eq(tlsca_new("another CA", &other), 0);
	struct tn_tls t = { .ca_pem = tlsca_cert_pem(other), .ip = "127.0.0.1" };
	char *r = tn_tls_exchange(httpd_port(h), &t, "GET / HTTP/1.1\r\n\r\n");
	cr_assert_null(r, "a client with another CA got through");
	cr_assert_eq(t.verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	wait_tls_failures(h, 1);
	struct httpd_stats st;
	httpd_stats(h, &st);
	cr_assert(strstr(st.tls_error, "unknown ca"), "%s", st.tls_error);

	/* the right CA, the wrong address */
	struct tn_tls wrong_ip = { .ca_pem = tlsca_cert_pem(ca), .ip = "10.0.2.2" };
	cr_assert_null(tn_tls_exchange(httpd_port(h), &wrong_ip, "GET / HTTP/1.1\r\n\r\n"));
	cr_assert_eq(wrong_ip.verify_result, X509_V_ERR_IP_ADDRESS_MISMATCH);
	wait_tls_failures(h, 2);

	/* plain HTTP to the TLS port is a failed handshake too; a bare probe is not */
	_cleanup_free_ char *plain = exchange(httpd_port(h), "GET / HTTP/1.1\r\n\r\n", 0);
	cr_assert_str_eq(plain, "");
	wait_tls_failures(h, 3);
	httpd_stats(h, &st);
	cr_assert(strstr(st.tls_error, "http request"), "%s", st.tls_error);
	close(tn_connect(httpd_port(h)));
	wait_connections(h, 4);
	usleep(100 * 1000);
	cr_assert_eq(httpd_tls_failures(h), 3);
	cr_assert_eq(seen.calls, 0);
	httpd_stop(h);
	tlsca_free(other);
	tlsca_free(ca);
}

/* mbedTLS's net context is a file descriptor. */
static char *mbedtls_exchange(uint16_t port, const char *ca_pem, const char *req, int *ret_handshake)
{
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_ssl_context ssl;
	mbedtls_x509_crt ca;
	mbedtls_net_context net = { .fd = tn_connect(port) };
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ssl_config_init(&conf);
	mbedtls_ssl_init(&ssl);
	mbedtls_x509_crt_init(&ca);
	cr_assert_eq(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
	cr_assert_eq(mbedtls_x509_crt_parse(&ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1), 0);
	cr_assert_eq(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
						 MBEDTLS_SSL_PRESET_DEFAULT), 0);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	cr_assert_eq(mbedtls_ssl_setup(&ssl, &conf), 0);
	mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
	int r;
	while ((r = mbedtls_ssl_handshake(&ssl)) == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		;
	*ret_handshake = r;
	char *resp = NULL;
	if (r == 0) {
		cr_assert_eq(mbedtls_ssl_write(&ssl, (const unsigned char *)req, strlen(req)), (int)strlen(req));
		resp = calloc(1, 4096);
		size_t len = 0;
		while ((r = mbedtls_ssl_read(&ssl, (unsigned char *)resp + len, 4095 - len)) > 0)
			len += (size_t)r;
		mbedtls_ssl_close_notify(&ssl);
	}
	mbedtls_net_free(&net);
	mbedtls_x509_crt_free(&ca);
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	return resp;
}

Test(httpd_tls, mbedtls_client)
{
	struct tlsca *ca = NULL, *other = NULL;
	struct httpd_config c = { 0 };
	struct httpd *h = start_tls(&ca, local_sans, &c);
	int hs = 0;
	_cleanup_free_ char *r = mbedtls_exchange(httpd_port(h), tlsca_cert_pem(ca), "GET /m HTTP/1.1\r\n\r\n", &hs);
	cr_assert_eq(hs, 0, "mbedTLS handshake: -%#x", (unsigned)-hs);
	assert_status(r, 201);
	cr_assert_str_eq(seen.path, "/m");

	cr_assert_eq(tlsca_new("another CA", &other), 0);
	char *none = mbedtls_exchange(httpd_port(h), tlsca_cert_pem(other), "GET / HTTP/1.1\r\n\r\n", &hs);
	cr_assert_null(none);
	cr_assert_eq(hs, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, "-%#x", (unsigned)-hs);
	wait_tls_failures(h, 1);
	httpd_stop(h);
	tlsca_free(other);
	tlsca_free(ca);
}
