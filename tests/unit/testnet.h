/* Loopback clients for the server tests (httpd, stub): raw TCP, and TLS
 * through OpenSSL verifying the server against a given CA. */
#ifndef QVSA_TESTNET_H
#define QVSA_TESTNET_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline int tn_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s", strerror(errno));
	return fd;
}

static inline void tn_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

/* Everything until EOF (or a reset), NUL-terminated; *ret_len may be NULL. */
static inline char *tn_read_all(int fd, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	ssize_t r;
	while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len < 1024) {
			buf = realloc(buf, cap *= 2);
			cr_assert_not_null(buf);
		}
	}
	buf[len] = 0;
	if (ret_len)
		*ret_len = len;
	return buf;
}

static inline double tn_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Options of one TLS exchange. */
struct tn_tls {
	const char *ca_pem;   /* the only trusted CA (PEM) */
	const char *ip;       /* the IP the certificate must name, or NULL */
	const char *host;     /* the DNS name it must name, or NULL */
	int max_version;      /* e.g. TLS1_2_VERSION; 0: the library's best */
	long verify_result;   /* out: SSL_get_verify_result after the handshake */
	char version[16];     /* out: negotiated protocol, e.g. "TLSv1.3" */
	double handshake_s;   /* out: seconds the handshake took */
};

/* Connect, handshake, send req and read the answer; NULL when the handshake failed. */
static inline char *tn_tls_exchange(uint16_t port, struct tn_tls *t, const char *req)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(ctx);
	if (t->max_version)
		cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, t->max_version), 1);
	BIO *b = BIO_new_mem_buf(t->ca_pem, -1);
	X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
	cr_assert_not_null(ca);
	cr_assert_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca), 1);
	X509_free(ca);
	BIO_free(b);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	cr_assert_not_null(ssl);
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	if (t->ip)
		cr_assert_eq(X509_VERIFY_PARAM_set1_ip_asc(param, t->ip), 1);
	if (t->host)
		cr_assert_eq(X509_VERIFY_PARAM_set1_host(param, t->host, 0), 1);
	int fd = tn_connect(port);
	SSL_set_fd(ssl, fd);
	double t0 = tn_now();
	int ok = SSL_connect(ssl);
	t->handshake_s = tn_now() - t0;
	t->verify_result = SSL_get_verify_result(ssl);
	snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(ssl));
	char *resp = NULL;
	if (ok == 1) {
		cr_assert_eq(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
		size_t len = 0, cap = 4096;
		resp = malloc(cap);
		cr_assert_not_null(resp);
		int r;
		while ((r = SSL_read(ssl, resp + len, (int)(cap - len - 1))) > 0) {
			len += (size_t)r;
			if (cap - len < 1024) {
				resp = realloc(resp, cap *= 2);
				cr_assert_not_null(resp);
			}
		}
		resp[len] = 0;
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ERR_clear_error();
	return resp;
}

#endif
