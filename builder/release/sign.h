/* Ed25519 signatures over a release manifest (OpenSSL libcrypto). A key
 * pair is two PEM files: KEY (PKCS#8 private key, mode 0600) and KEY.pub
 * (SubjectPublicKeyInfo). A signature is a detached file, by default the
 * manifest's path plus ".sig", holding the raw 64-byte Ed25519 signature
 * over the manifest's exact bytes: what `openssl pkeyutl -verify -rawin`
 * checks, so a customer needs no qvsa to check it. Errors name key files,
 * never their contents. */
#ifndef QVSA_SIGN_H
#define QVSA_SIGN_H

#include <stddef.h>

struct sign_key;

/* Bytes in an Ed25519 signature, i.e. in a .sig file. */
#define SIGN_SIG_LEN 64

/* Make a new key pair: path (0600) and path.pub. Refuses (ERR_INPUT) when
 * either exists; leaves neither behind on failure. */
int sign_keygen(const char *path) __attribute__((nonnull));

/* Load the private key at path (PEM), for signing. */
int sign_key_load_private(const char *path, struct sign_key **ret) __attribute__((nonnull));
/* Load the public key at path (PEM SubjectPublicKeyInfo), for checking. */
int sign_key_load_public(const char *path, struct sign_key **ret) __attribute__((nonnull));
void sign_key_free(struct sign_key *k); /* accepts NULL */

/* Sign the file at path; write the signature to sig_path (NULL: path.sig) atomically. */
int sign_file(const struct sign_key *k, const char *path, const char *sig_path) __attribute__((nonnull(1, 2)));
/* Check sig (siglen bytes) over data with a public (or private) key. 0 when
 * valid; otherwise -1 with ERR_FAIL "signature does not verify". */
int sign_check(const struct sign_key *k, const void *data, size_t len, const void *sig, size_t siglen)
	__attribute__((nonnull));
/* Sign data; sig receives SIGN_SIG_LEN bytes. */
int sign_data(const struct sign_key *k, const void *data, size_t len, unsigned char sig[SIGN_SIG_LEN])
	__attribute__((nonnull));

#endif
