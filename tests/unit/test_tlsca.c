/* The run-time CA: what its certificates say, checked with OpenSSL's own
 * verifier and with mbedTLS 2.28 (what the agent verifies with). */
#include <criterion/criterion.h>
#include <mbedtls/x509_crt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "err.h"
#include "tlsca.h"

static X509 *parse_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	cr_assert_not_null(x, "not a PEM certificate: %s", pem);
	return x;
}

static struct tlsca *new_ca(const char *cn)
{
	struct tlsca *ca = NULL;
	cr_assert_eq(tlsca_new(cn, &ca), 0, "%s", err_msg());
	cr_assert_not_null(ca);
	return ca;
}

/* Seconds from now to t (negative: in the past). */
static long secs_from_now(const ASN1_TIME *t)
{
	int days = 0, secs = 0;
	cr_assert_eq(ASN1_TIME_diff(&days, &secs, NULL, t), 1);
	return days * 86400L + secs;
}

/* true if x verifies up to ca_pem alone, for a TLS server */
static bool chain_ok(X509 *x, const char *ca_pem, int *ret_err)
{
	X509 *ca = parse_cert(ca_pem);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, x, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	bool ok = X509_verify_cert(ctx) == 1;
	*ret_err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(ca);
	return ok;
}

Test(tlsca, ca_is_a_p256_ca)
{
	struct tlsca *ca = new_ca("qvsa verify CA");
	const char *pem = tlsca_cert_pem(ca);
	cr_assert(strstr(pem, "-----BEGIN CERTIFICATE-----"), "%s", pem);
	X509 *x = parse_cert(pem);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_eq(X509_check_ca(x), 1, "not a CA (basicConstraints CA:TRUE)");
	cr_assert(X509_get_extension_flags(x) & EXFLAG_CA);
	cr_assert(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	cr_assert_eq(X509_check_issued(x, x), X509_V_OK, "not self-issued");
	cr_assert_eq(X509_verify(x, X509_get0_pubkey(x)), 1, "self-signature does not verify");
	cr_assert_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char group[64] = "";
	cr_assert(EVP_PKEY_is_a(pk, "EC"));
	cr_assert_eq(EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL), 1);
	cr_assert_str_eq(group, "prime256v1");
	long nb = secs_from_now(X509_get0_notBefore(x)), na = secs_from_now(X509_get0_notAfter(x));
	cr_assert(nb <= -3590 && nb >= -3610, "notBefore %ld s from now", nb);
	cr_assert(na >= 86390 && na <= 86410, "notAfter %ld s from now", na);
	cr_assert_not_null(X509_get0_subject_key_id(x));
	char cn[128] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	cr_assert_str_eq(cn, "qvsa verify CA");
	X509_free(x);
	tlsca_free(ca);
	tlsca_free(NULL);
}

Test(tlsca, leaf_names_usage_and_chain)
{
	struct tlsca *ca = new_ca("qvsa verify CA"), *other = new_ca("someone else");
	const char *sans[] = { "IP:10.0.2.2", "DNS:platform.test", "IP:::1", NULL };
	_cleanup_free_ char *cert = NULL, *key = NULL;
	cr_assert_eq(tlsca_issue(ca, sans, &cert, &key), 0, "%s", err_msg());
	cr_assert(strstr(key, "-----BEGIN PRIVATE KEY-----"), "key PEM is not PKCS#8");
	X509 *x = parse_cert(cert);
	cr_assert_eq(X509_check_ca(x), 0, "a server certificate must not be a CA");
	cr_assert_eq(X509_check_ip_asc(x, "10.0.2.2", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "::1", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "10.0.2.3", 0), 0);
	cr_assert_eq(X509_check_host(x, "platform.test", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_host(x, "other.test", 0, 0, NULL), 0);
	cr_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	cr_assert(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	cr_assert_not(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	cr_assert_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);

	X509 *cax = parse_cert(tlsca_cert_pem(ca));
	cr_assert_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cax)), 0,
		     "authorityKeyIdentifier is not the CA's key id");
	cr_assert_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(cax)), 0);
	int verr = 0;
	cr_assert(chain_ok(x, tlsca_cert_pem(ca), &verr), "%s", X509_verify_cert_error_string(verr));
	cr_assert_not(chain_ok(x, tlsca_cert_pem(other), &verr));
	cr_assert_eq(verr, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "%s", X509_verify_cert_error_string(verr));

	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	cr_assert_not_null(pk);
	cr_assert_eq(X509_check_private_key(x, pk), 1, "key does not match the certificate");
	EVP_PKEY_free(pk);
	BIO_free(b);

	/* a second certificate: new key, new serial */
	_cleanup_free_ char *cert2 = NULL, *key2 = NULL;
	cr_assert_eq(tlsca_issue(ca, sans, &cert2, &key2), 0, "%s", err_msg());
	X509 *x2 = parse_cert(cert2);
	cr_assert_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(x2)), 0);
	cr_assert_str_neq(key, key2);
	X509_free(x2);
	X509_free(cax);
	X509_free(x);
	tlsca_free(other);
	tlsca_free(ca);
}

Test(tlsca, mbedtls_verifies_the_chain)
{
	struct tlsca *ca = new_ca("qvsa verify CA"), *other = new_ca("someone else");
	const char *sans[] = { "IP:10.0.2.2", NULL };
	_cleanup_free_ char *cert = NULL, *key = NULL;
	cr_assert_eq(tlsca_issue(ca, sans, &cert, &key), 0, "%s", err_msg());
	mbedtls_x509_crt leaf, trust, wrong;
	mbedtls_x509_crt_init(&leaf);
	mbedtls_x509_crt_init(&trust);
	mbedtls_x509_crt_init(&wrong);
	/* PEM input to mbedTLS includes the terminating NUL */
	cr_assert_eq(mbedtls_x509_crt_parse(&leaf, (const unsigned char *)cert, strlen(cert) + 1), 0);
	cr_assert_eq(mbedtls_x509_crt_parse(&trust, (const unsigned char *)tlsca_cert_pem(ca),
					    strlen(tlsca_cert_pem(ca)) + 1), 0);
	cr_assert_eq(mbedtls_x509_crt_parse(&wrong, (const unsigned char *)tlsca_cert_pem(other),
					    strlen(tlsca_cert_pem(other)) + 1), 0);
	uint32_t flags = 0;
	cr_assert_eq(mbedtls_x509_crt_verify(&leaf, &trust, NULL, NULL, &flags, NULL, NULL), 0, "flags %#x", flags);
	cr_assert_eq(flags, 0);
	cr_assert_neq(mbedtls_x509_crt_verify(&leaf, &wrong, NULL, NULL, &flags, NULL, NULL), 0);
	cr_assert(flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED, "flags %#x", flags);
	cr_assert_eq(trust.ca_istrue, 1);
	cr_assert_eq(leaf.ca_istrue, 0);
	mbedtls_x509_crt_free(&leaf);
	mbedtls_x509_crt_free(&trust);
	mbedtls_x509_crt_free(&wrong);
	tlsca_free(other);
	tlsca_free(ca);
}

Test(tlsca, bad_input_is_refused)
{
	struct tlsca *ca = NULL;
	cr_assert_eq(tlsca_new("", &ca), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert_eq(tlsca_new("0123456789012345678901234567890123456789012345678901234567890123456789", &ca), -1);
	cr_assert_null(ca);
	ca = new_ca("qvsa verify CA");
	const char *bad[] = { "FOO:x", "IP:1.2.3.4x", "IP:999.1.1.1", "IP:", "DNS:", "DNS:a,IP:1.2.3.4",
			      "DNS:a b", "DNS:*.", "platform.test" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		const char *sans[] = { "DNS:ok.test", bad[i], NULL };
		char *cert = NULL, *key = NULL;
		err_clear();
		cr_assert_eq(tlsca_issue(ca, sans, &cert, &key), -1, "%s accepted", bad[i]);
		cr_assert_null(cert);
		cr_assert_null(key);
		cr_assert_eq(err_kind(), ERR_INPUT);
		cr_assert(strstr(err_msg(), bad[i]), "%s: %s", bad[i], err_msg());
	}
	const char *none[] = { NULL };
	char *cert = NULL, *key = NULL;
	cr_assert_eq(tlsca_issue(ca, none, &cert, &key), -1);
	cr_assert_eq(tlsca_issue(ca, NULL, &cert, &key), -1);
	cr_assert_null(cert);
	/* a wildcard is a legal name */
	const char *wild[] = { "DNS:*.platform.test", NULL };
	cr_assert_eq(tlsca_issue(ca, wild, &cert, &key), 0, "%s", err_msg());
	free(cert);
	free(key);
	tlsca_free(ca);
}
