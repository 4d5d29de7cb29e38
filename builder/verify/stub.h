/* The platform stub: a small HTTP(S) server on 127.0.0.1 that plays the
 * qVSA platform for verification (protocol in docs/personalization.md). It
 * runs on the verification HTTP server's threads (httpd.h) and records what
 * the appliance sent, and whether a TLS handshake failed. */
#ifndef QVSA_STUB_H
#define QVSA_STUB_H

#include <stdbool.h>
#include <stdint.h>

struct stub;

/* What the stub accepts and answers. */
struct stub_config {
	const char *bind_addr;     /* default "127.0.0.1" when NULL */
	uint16_t port;             /* 0: pick a free port */
	const char *expected_code; /* the only personalization code accepted; required */
	/* Component versions served on success; NULL means the built-in test set. */
	const char *const *components; /* NULL-terminated "NAME=VERSION" strings, or NULL */
	const char *cert_pem;      /* server certificate (chain), PEM, for HTTPS (tlsca_issue); NULL: plain HTTP */
	const char *key_pem;       /* its private key, PEM; required with cert_pem; copied, not kept */
};

/* What the stub saw of the last personalization request (strings owned by the stub). */
struct stub_report {
	unsigned requests;        /* personalization requests received */
	const char *code;         /* last code received, or NULL */
	const char *version;      /* last bootstrap version received, or NULL */
	const char *arch;         /* last architecture received, or NULL */
	bool accepted;            /* last request was answered with success */
	const char *reason;       /* why the last request was rejected, or NULL */
	unsigned tls_failures;    /* TLS handshakes that failed (e.g. the guest refused the certificate) */
	const char *tls_error;    /* why the last one failed (e.g. "tlsv1 alert unknown ca"), or NULL */
};

int stub_start(const struct stub_config *cfg, struct stub **ret);
uint16_t stub_port(const struct stub *s);
/* Snapshot of what was received so far (valid until the next call or stub_stop). */
void stub_report(struct stub *s, struct stub_report *ret);
/* The component list served on success ("NAME=VERSION", NULL-terminated). */
const char *const *stub_components(const struct stub *s);
void stub_stop(struct stub *s); /* joins the thread, frees; accepts NULL */

#endif
