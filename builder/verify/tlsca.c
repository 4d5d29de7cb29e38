/* The run-time certificate authority (tlsca.h) on OpenSSL 3 calls: EC keys
 * through EVP_PKEY_Q_keygen, certificates built field by field and signed
 * with ECDSA/SHA-256. Subject alternative names are built as ASN.1 values,
 * never pasted into OpenSSL's configuration syntax, so a caller's string
 * cannot smuggle in another name or extension. */
#include "tlsca.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TLSCA_BACKDATE_S (60 * 60)    /* notBefore = now - 1 h: tolerate a guest clock a little behind */
#define TLSCA_LIFETIME_S (24 * 60 * 60) /* notAfter = now + 1 day: one verification, with room */
#define TLSCA_CN_MAX 64               /* ub-common-name in RFC 5280 */

struct tlsca {
	EVP_PKEY *key;  /* the CA's private key (P-256), owned */
	X509 *cert;     /* the self-signed CA certificate, owned */
	char *cert_pem; /* cert as PEM, owned */
};

static void bio_freep(BIO **b) { BIO_free(*b); }
static void x509_freep(X509 **x) { X509_free(*x); }
static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }
static void bn_freep(BIGNUM **b) { BN_free(*b); }
static void gens_freep(GENERAL_NAMES **g) { GENERAL_NAMES_free(*g); }
static void gen_freep(GENERAL_NAME **g) { GENERAL_NAME_free(*g); }

const char *tlsca_openssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	if (reason)
		snprintf(buf, len, "%s", reason);
	else if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* Record "op 'object': OpenSSL's reason"; returns -1. */
static int tlsca_err(const char *op, const char *object)
{
	char why[256];
	return err_fail("%s '%s': %s", op, object, tlsca_openssl_error(why, sizeof(why)));
}

/* A certificate for key, subject O=qvsa verification, CN=cn, issued by
 * issuer (NULL: itself), with a random positive 128-bit serial and the
 * validity window. Unsigned and without extensions. NULL on failure. */
static X509 *tlsca_cert_new(EVP_PKEY *key, const char *cn, X509 *issuer)
{
	unsigned char serial[16];
	_cleanup_(x509_freep) X509 *x = X509_new();
	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		return NULL;
	serial[0] = (serial[0] & 0x7f) | 0x40; /* positive, and a full 16 bytes */
	_cleanup_(bn_freep) BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	X509_NAME *name = X509_get_subject_name(x); /* owned by x */
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || X509_set_version(x, X509_VERSION_3) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -TLSCA_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), TLSCA_LIFETIME_S) ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"qvsa verification",
				       -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		return NULL;
	return TAKE_PTR(x);
}

/* Add one extension written in OpenSSL's syntax (constant strings only).
 * issuer is the signing certificate; x itself for a self-signed one. */
static bool tlsca_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	bool ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* The certificate (or private key, through a clearing secure-memory BIO) as a new PEM string. */
static char *tlsca_pem(X509 *x, EVP_PKEY *key)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(x ? BIO_s_mem() : BIO_s_secmem());
	if (!b || (x ? PEM_write_bio_X509(b, x) : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) != 1)
		return NULL;
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *pem = n > 0 ? strndup(data, (size_t)n) : NULL;
	if (n > 0 && !pem)
		abort();
	return pem;
}

/* One SAN ("DNS:name" or "IP:address") as a GENERAL_NAME; NULL with an input error recorded. */
static GENERAL_NAME *tlsca_san(const char *san)
{
	_cleanup_(gen_freep) GENERAL_NAME *g = GENERAL_NAME_new();
	if (!g)
		abort();
	if (strncasecmp(san, "IP:", 3) == 0) {
		unsigned char addr[16];
		int n = inet_pton(AF_INET, san + 3, addr) == 1 ? 4 : inet_pton(AF_INET6, san + 3, addr) == 1 ? 16 : 0;
		if (n == 0) {
			err_input("issuing a certificate for '%s': not an IP address", san);
			return NULL;
		}
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
		if (!ip || ASN1_OCTET_STRING_set(ip, addr, n) != 1)
			abort();
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		return TAKE_PTR(g);
	}
	const char *dns = san + 4;
	size_t n = strncasecmp(san, "DNS:", 4) == 0 ? strlen(dns) : 0;
	const char *body = strncmp(dns, "*.", 2) == 0 ? dns + 2 : dns; /* a wildcard's first label */
	if (n == 0 || n > 253 || !*body || strspn(body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(body)) {
		err_input("issuing a certificate for '%s': not DNS:<host name> or IP:<address>", san);
		return NULL;
	}
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	if (!ia5 || ASN1_STRING_set(ia5, dns, (int)n) != 1)
		abort();
	GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
	return TAKE_PTR(g);
}

/* The subjectAltName extension for sans; -1 with an input error if one is malformed. */
static int tlsca_sans(const char *const *sans, GENERAL_NAMES **ret)
{
	if (!sans || !sans[0])
		return err_input("issuing a certificate: no subject alternative name");
	_cleanup_(gens_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		abort();
	for (size_t i = 0; sans[i]; i++) {
		GENERAL_NAME *g = tlsca_san(sans[i]);
		if (!g)
			return -1;
		if (!sk_GENERAL_NAME_push(gens, g))
			abort();
	}
	*ret = TAKE_PTR(gens);
	return 0;
}

int tlsca_new(const char *common_name, struct tlsca **ret)
{
	if (!common_name || !*common_name || strlen(common_name) > TLSCA_CN_MAX)
		return err_input("creating certificate authority '%s': the name must have 1 to %d characters",
				 common_name ? common_name : "", TLSCA_CN_MAX);
	ERR_clear_error();
	_cleanup_(pkey_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!key)
		return tlsca_err("creating certificate authority", common_name);
	_cleanup_(x509_freep) X509 *x = tlsca_cert_new(key, common_name, NULL);
	/* the key identifier first: the authority key identifier copies it */
	if (!x || !tlsca_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !tlsca_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !tlsca_ext(x, x, NID_subject_key_identifier, "hash") ||
	    !tlsca_ext(x, x, NID_authority_key_identifier, "keyid:always") || X509_sign(x, key, EVP_sha256()) <= 0)
		return tlsca_err("creating certificate authority", common_name);
	char *pem = tlsca_pem(x, NULL);
	if (!pem)
		return tlsca_err("creating certificate authority", common_name);
	struct tlsca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		abort();
	*ca = (struct tlsca){ .key = TAKE_PTR(key), .cert = TAKE_PTR(x), .cert_pem = pem };
	*ret = ca;
	return 0;
}

const char *tlsca_cert_pem(const struct tlsca *ca) { return ca->cert_pem; }

int tlsca_issue(const struct tlsca *ca, const char *const *sans, char **ret_cert_pem, char **ret_key_pem)
{
	_cleanup_(gens_freep) GENERAL_NAMES *gens = NULL;
	if (tlsca_sans(sans, &gens) < 0)
		return -1;
	/* CN is informational once SANs are present; the first name, if it fits */
	const char *cn = sans[0] + (strncasecmp(sans[0], "IP:", 3) == 0 ? 3 : 4);
	if (strlen(cn) > TLSCA_CN_MAX)
		cn = "qvsa verification server";
	ERR_clear_error();
	_cleanup_(pkey_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!key)
		return tlsca_err("issuing a certificate for", sans[0]);
	_cleanup_(x509_freep) X509 *x = tlsca_cert_new(key, cn, ca->cert);
	if (!x || !tlsca_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !tlsca_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    !tlsca_ext(x, ca->cert, NID_ext_key_usage, "serverAuth") ||
	    !tlsca_ext(x, ca->cert, NID_subject_key_identifier, "hash") ||
	    !tlsca_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") ||
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    X509_sign(x, ca->key, EVP_sha256()) <= 0)
		return tlsca_err("issuing a certificate for", sans[0]);
	_cleanup_free_ char *cert_pem = tlsca_pem(x, NULL);
	char *key_pem = cert_pem ? tlsca_pem(NULL, key) : NULL;
	if (!key_pem)
		return tlsca_err("issuing a certificate for", sans[0]);
	*ret_cert_pem = TAKE_PTR(cert_pem);
	*ret_key_pem = key_pem;
	return 0;
}

void tlsca_free(struct tlsca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->cert_pem);
	free(ca);
}
