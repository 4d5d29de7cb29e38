/* TLS for the platform transport: mbedTLS 2.28 over the agent's own
 * non-blocking sockets, so every handshake, read and write honours the
 * caller's timeout. The server must present a chain to one of the CAs the
 * caller trusts and a certificate naming the host it was asked for. mbedTLS
 * 2.28 matches DNS names only, so address literals (the verify harness's
 * https://10.0.2.2:PORT/) are matched against iPAddress SANs here. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

/* SAN tags as mbedTLS stores them (RFC 5280 GeneralName choices). */
#define AGENT_SAN_DNS (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)
#define AGENT_SAN_IP (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

/* Key exchange groups offered, most wanted first. mbedTLS 2.28 offers its
 * whole list strongest first (secp521r1 leading), and a server that follows
 * the client's order (OpenSSL's default) then does ECDHE on P-521: several
 * times P-256's cost, which on a slow or emulated CPU is most of a
 * handshake. P-256 and X25519 are what TLS clients commonly lead with. */
static const mbedtls_ecp_group_id agent_tls_curves[] = {
	MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP384R1,
	MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_NONE,
};

struct agent_tls {
	mbedtls_ssl_context ssl;       /* the session */
	mbedtls_ssl_config conf;       /* client settings; ssl points into it */
	mbedtls_x509_crt ca;           /* the trusted CAs, parsed from ca_pem */
	mbedtls_entropy_context entropy;   /* getrandom() */
	mbedtls_ctr_drbg_context drbg;     /* the session's random numbers, seeded from entropy */
	int fd;                        /* the socket the BIO callbacks use; owned by the stream */
	double deadline;               /* monotonic time the current operation must end by */
	int io_errno;                  /* errno of the last BIO failure (ETIMEDOUT on timeout); 0 if none */
	bool io_eof;                   /* the BIO saw the peer close the connection */
	bool host_is_ip;               /* host is an address literal: match ip[] against iPAddress SANs */
	unsigned char ip[16];          /* that address in network order */
	size_t ip_len;                 /* 4 (IPv4) or 16 (IPv6) */
	int ca_unreadable;             /* certificates of ca_pem mbedTLS could not parse */
	char issuer[256];              /* the server certificate's issuer DN, for messages */
	char names[256];               /* the names the server certificate carries, for messages */
	mbedtls_x509_time valid_from;  /* the server certificate's notBefore */
	mbedtls_x509_time valid_to;    /* the server certificate's notAfter */
};

/* BIO send: the socket is non-blocking, so try first and wait only when full. */
static int agent_tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct agent_tls *t = ctx;
	for (;;) {
		ssize_t w = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (w >= 0)
			return (int)w;
		if (errno != EINTR && errno != EAGAIN) {
			t->io_errno = errno;
			return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		}
		if (agent_fd_wait(t->fd, POLLOUT, t->deadline) < 0) {
			t->io_errno = ETIMEDOUT;
			return MBEDTLS_ERR_SSL_TIMEOUT;
		}
	}
}

static int agent_tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct agent_tls *t = ctx;
	for (;;) {
		ssize_t r = recv(t->fd, buf, len, 0);
		if (r >= 0) {
			t->io_eof = r == 0;
			return (int)r;
		}
		if (errno != EINTR && errno != EAGAIN) {
			t->io_errno = errno;
			return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		}
		if (agent_fd_wait(t->fd, POLLIN, t->deadline) < 0) {
			t->io_errno = ETIMEDOUT;
			return MBEDTLS_ERR_SSL_TIMEOUT;
		}
	}
}

/* The names of crt as "DNS:a, IP:1.2.3.4" (the subject's CN when it has no SANs). */
static void agent_tls_describe_names(const mbedtls_x509_crt *crt, char *out, size_t size)
{
	struct agent_buf b = { 0 };
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
		char ip[INET6_ADDRSTRLEN] = "";
		if (s->buf.tag == AGENT_SAN_DNS)
			agent_buf_printf(&b, "%sDNS:%.*s", b.len ? ", " : "", (int)s->buf.len, s->buf.p);
		else if (s->buf.tag == AGENT_SAN_IP && (s->buf.len == 4 || s->buf.len == 16) &&
			 inet_ntop(s->buf.len == 4 ? AF_INET : AF_INET6, s->buf.p, ip, sizeof(ip)))
			agent_buf_printf(&b, "%sIP:%s", b.len ? ", " : "", ip);
	}
	if (b.len == 0) {
		char dn[256];
		if (mbedtls_x509_dn_gets(dn, sizeof(dn), &crt->subject) < 0)
			snprintf(dn, sizeof(dn), "?");
		agent_buf_printf(&b, "no subjectAltName, subject %s", dn);
	}
	snprintf(out, size, "%s", b.data);
	agent_buf_free(&b);
}

static bool agent_tls_ip_matches(const struct agent_tls *t, const mbedtls_x509_crt *crt)
{
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next)
		if (s->buf.tag == AGENT_SAN_IP && s->buf.len == t->ip_len &&
		    memcmp(s->buf.p, t->ip, t->ip_len) == 0)
			return true;
	return false;
}

/* Called for each certificate of the chain once mbedTLS has checked it; the
 * server's own (depth 0) is remembered for messages and, for an address
 * literal, checked against its iPAddress SANs. */
static int agent_tls_verify(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct agent_tls *t = ctx;
	if (depth != 0)
		return 0;
	if (mbedtls_x509_dn_gets(t->issuer, sizeof(t->issuer), &crt->issuer) < 0)
		snprintf(t->issuer, sizeof(t->issuer), "?");
	agent_tls_describe_names(crt, t->names, sizeof(t->names));
	t->valid_from = crt->valid_from;
	t->valid_to = crt->valid_to;
	if (t->host_is_ip && !agent_tls_ip_matches(t, crt))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

/* One reason for a failed certificate check, the most fundamental first. */
static void agent_tls_fail_verify(const struct agent_tls *t, const char *where, const char *host)
{
	uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
	const mbedtls_x509_time *v = flags & MBEDTLS_X509_BADCERT_EXPIRED ? &t->valid_to : &t->valid_from;
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
		char extra[96] = "";
		if (t->ca_unreadable)
			snprintf(extra, sizeof(extra), " (%d certificate(s) of the CA bundle could not be read)",
				 t->ca_unreadable);
		agent_fail("TLS with %s: the server's certificate is not signed by a trusted CA "
			   "(it was issued by '%s')%s", where, t->issuer, extra);
	} else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
		agent_fail("TLS with %s: the server's certificate does not match host '%s' (it names %s)",
			   where, host, t->names);
	} else if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) {
		agent_fail("TLS with %s: the server's certificate %s %04d-%02d-%02d %02d:%02d:%02d UTC "
			   "(is the appliance's clock right?)", where,
			   flags & MBEDTLS_X509_BADCERT_EXPIRED ? "expired on" : "is not valid before",
			   v->year, v->mon, v->day, v->hour, v->min, v->sec);
	} else {
		char info[512];
		if (mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags) < 0)
			snprintf(info, sizeof(info), "flags 0x%x", (unsigned)flags);
		info[strcspn(info, "\n")] = 0;
		agent_fail("TLS with %s: the server's certificate was refused: %s", where, info);
	}
}

/* Record a failed TLS call; -EAGAIN if the connection failed, -EPROTO otherwise. */
static int agent_tls_fail(const struct agent_tls *t, const char *where, const char *what, int ret,
			  int timeout_ms)
{
	if (t->io_errno == ETIMEDOUT)
		agent_fail("%s %s: timed out after %g s", what, where, timeout_ms / 1000.0);
	else if (t->io_errno)
		agent_fail_errno(t->io_errno, "%s %s", what, where);
	else if (ret == MBEDTLS_ERR_SSL_CONN_EOF)
		agent_fail("%s %s: connection closed", what, where);
	if (t->io_errno || ret == MBEDTLS_ERR_SSL_CONN_EOF)
		return -EAGAIN;
	char msg[256];
	mbedtls_strerror(ret, msg, sizeof(msg));
	agent_fail("%s %s: %s", what, where, msg);
	return -EPROTO;
}

/* Parse host as an address literal into t; false for a DNS name. */
static bool agent_tls_parse_ip(struct agent_tls *t, const char *host)
{
	if (inet_pton(AF_INET, host, t->ip) == 1)
		t->ip_len = 4;
	else if (inet_pton(AF_INET6, host, t->ip) == 1)
		t->ip_len = 16;
	return t->ip_len != 0;
}

/* Everything but the handshake: randomness, trust, settings, host name. */
static int agent_tls_setup(struct agent_tls *t, const char *where, const char *host, const char *ca_pem)
{
	static const char pers[] = "qvsa-agent";
	int ret = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
					(const unsigned char *)pers, sizeof(pers) - 1);
	if (ret != 0)
		return agent_tls_fail(t, where, "seeding TLS randomness for", ret, 0);
	ret = mbedtls_x509_crt_parse(&t->ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1);
	if (ret < 0 || t->ca.version == 0) {
		char msg[256];
		mbedtls_strerror(ret, msg, sizeof(msg));
		agent_fail("TLS with %s: the trusted CA bundle holds no readable certificate (%s)", where, msg);
		return -EPROTO;
	}
	t->ca_unreadable = ret;
	ret = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					  MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0)
		return agent_tls_fail(t, where, "configuring TLS for", ret, 0);
	mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_curves(&t->conf, agent_tls_curves);
	mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
	mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
	mbedtls_ssl_conf_verify(&t->conf, agent_tls_verify, t);
	ret = mbedtls_ssl_setup(&t->ssl, &t->conf);
	/* an address literal gets neither SNI (RFC 6066) nor mbedTLS's DNS-only name check */
	t->host_is_ip = agent_tls_parse_ip(t, host);
	if (ret == 0 && !t->host_is_ip)
		ret = mbedtls_ssl_set_hostname(&t->ssl, host);
	if (ret != 0)
		return agent_tls_fail(t, where, "configuring TLS for", ret, 0);
	mbedtls_ssl_set_bio(&t->ssl, t, agent_tls_bio_send, agent_tls_bio_recv, NULL);
	return 0;
}

int agent_tls_start(struct agent_stream *s, const char *host, const char *ca_pem, int timeout_ms)
{
	if (!ca_pem || !*ca_pem) {
		agent_fail("TLS with %s: no CA to verify the platform's certificate "
			   "(recipe personalization: ca:, or ca_certs: in user-data)", s->where);
		return -EPROTO;
	}
	struct agent_tls *t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	mbedtls_ssl_init(&t->ssl);
	mbedtls_ssl_config_init(&t->conf);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	t->fd = s->fd;
	int r = agent_tls_setup(t, s->where, host, ca_pem);
	if (r == 0) {
		t->deadline = agent_now() + timeout_ms / 1000.0;
		int ret = mbedtls_ssl_handshake(&t->ssl);
		if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
			agent_tls_fail_verify(t, s->where, host);
			r = -EPROTO;
		} else if (ret != 0) {
			r = agent_tls_fail(t, s->where, "TLS handshake with", ret, timeout_ms);
		}
	}
	if (r < 0) {
		t->fd = -1; /* no close_notify after a failed handshake */
		agent_tls_free(t);
		return r;
	}
	s->tls = t;
	return 0;
}

int agent_tls_write(struct agent_stream *s, const void *data, size_t len, int timeout_ms)
{
	struct agent_tls *t = s->tls;
	t->deadline = agent_now() + timeout_ms / 1000.0;
	for (size_t off = 0; off < len;) {
		int ret = mbedtls_ssl_write(&t->ssl, (const unsigned char *)data + off, len - off);
		if (ret < 0)
			return agent_tls_fail(t, s->where, "sending to", ret, timeout_ms);
		off += (size_t)ret;
	}
	return 0;
}

ssize_t agent_tls_read(struct agent_stream *s, void *buf, size_t cap, int timeout_ms)
{
	struct agent_tls *t = s->tls;
	t->deadline = agent_now() + timeout_ms / 1000.0;
	int ret = mbedtls_ssl_read(&t->ssl, buf, cap);
	/* a close without close_notify is taken as the end, as browsers do: the
	 * HTTP framing (Content-Length, chunked) tells a truncated answer */
	if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || (ret == MBEDTLS_ERR_SSL_CONN_EOF && t->io_eof))
		return 0;
	if (ret < 0)
		return agent_tls_fail(t, s->where, "reading from", ret, timeout_ms);
	return ret;
}

void agent_tls_free(struct agent_tls *t)
{
	if (!t)
		return;
	if (t->fd >= 0) {
		t->deadline = 0; /* only what the socket takes at once */
		mbedtls_ssl_close_notify(&t->ssl);
	}
	/* mbedtls_ssl_free wipes the record buffers, which held the request */
	mbedtls_ssl_free(&t->ssl);
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
	free(t);
}
