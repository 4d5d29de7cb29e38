/* A certificate authority made at run time for one verification, and the
 * server certificates it issues (OpenSSL libcrypto). Keys are ECDSA P-256
 * with SHA-256 signatures, which the agent's mbedTLS verifies. Nothing is
 * written to disk; the private keys never leave memory except as PEM
 * strings handed to the TLS server. */
#ifndef QVSA_TLSCA_H
#define QVSA_TLSCA_H

#include <stddef.h>

struct tlsca;

/* A new self-signed CA called common_name, valid from now-1h for 1 day. */
int tlsca_new(const char *common_name, struct tlsca **ret);
/* The CA certificate as PEM (owned by ca). */
const char *tlsca_cert_pem(const struct tlsca *ca);
/* A server certificate for the subject alternative names in sans (each
 * "DNS:name" or "IP:a.b.c.d", NULL-terminated, at least one), signed by ca.
 * *ret_cert_pem and *ret_key_pem are new strings (caller frees). */
int tlsca_issue(const struct tlsca *ca, const char *const *sans, char **ret_cert_pem, char **ret_key_pem);
void tlsca_free(struct tlsca *ca); /* accepts NULL */

/* The first error in this thread's OpenSSL error queue as text (its reason,
 * e.g. "tlsv1 alert unknown ca"), written to buf, which is returned; the
 * queue is cleared. "unknown OpenSSL error" when the queue is empty. */
const char *tlsca_openssl_error(char *buf, size_t len);

#endif
