/* Ed25519 manifest signatures: see sign.h. */
#include "sign.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sign_key {
	EVP_PKEY *pkey; /* an Ed25519 key (private or public only); owned */
	char *path;     /* the file it came from, for messages; owned */
};

void sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->path);
	free(k);
}

/* OpenSSL's reason for the last failure (a library string: no key bytes). */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown error";
}

/* Write a PEM through f into path, created with mode and O_EXCL. */
static int write_pem(const char *path, unsigned mode, EVP_PKEY *pkey, bool private)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return errno == EEXIST ? err_input("key '%s' exists: refusing to overwrite it", path)
				       : err_errno(errno, "creating key '%s'", path);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return err_errno(errno, "creating key '%s'", path);
	}
	/* The umask may have narrowed mode, never widened it; make it exact. */
	int ok = fchmod(fd, mode) == 0 &&
		 (private ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, pkey)) == 1;
	ok = fflush(f) == 0 && fsync(fd) == 0 && ok;
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		ERR_clear_error();
		return err_fail("writing key '%s' failed", path);
	}
	return 0;
}

int sign_keygen(const char *path)
{
	_cleanup_free_ char *pub = xasprintf("%s.pub", path);
	/* Both names checked before either is written: no half pair. */
	if (fs_exists(path))
		return err_input("key '%s' exists: refusing to overwrite it", path);
	if (fs_exists(pub))
		return err_input("key '%s' exists: refusing to overwrite it", pub);
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return err_fail("keygen: Ed25519 key generation failed: %s", ossl_reason());
	int rc = write_pem(path, 0600, pkey, true);
	if (rc == 0 && write_pem(pub, 0644, pkey, false) < 0) {
		unlink(path);
		rc = -1;
	}
	EVP_PKEY_free(pkey);
	return rc;
}

static int key_load(const char *path, bool private, struct sign_key **ret)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? err_input("key '%s': no such file", path) : err_errno(errno, "reading key '%s'", path);
	EVP_PKEY *pkey = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	/* Only the file's name in messages: its bytes may be a secret. */
	if (!pkey) {
		ERR_clear_error();
		return err_input("key '%s': not a PEM %s key (expected %s)", path, private ? "private" : "public",
				 private ? "the KEY written by 'qvsa keygen'" : "the KEY.pub written by 'qvsa keygen'");
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return err_input("key '%s': not an Ed25519 key", path);
	}
	struct sign_key *k = calloc(1, sizeof(*k));
	if (!k)
		abort();
	k->pkey = pkey;
	k->path = xstrdup(path);
	*ret = k;
	return 0;
}

int sign_key_load_private(const char *path, struct sign_key **ret) { return key_load(path, true, ret); }
int sign_key_load_public(const char *path, struct sign_key **ret) { return key_load(path, false, ret); }

int sign_data(const struct sign_key *k, const void *data, size_t len, unsigned char sig[SIGN_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = SIGN_SIG_LEN;
	/* Ed25519 is one-shot (PureEdDSA): no digest, the whole message at once. */
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		 EVP_DigestSign(ctx, sig, &siglen, data, len) == 1 && siglen == SIGN_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		int rc = err_fail("signing with key '%s' failed: %s", k->path, ossl_reason());
		ERR_clear_error();
		return rc;
	}
	return 0;
}

int sign_check(const struct sign_key *k, const void *data, size_t len, const void *sig, size_t siglen)
{
	if (siglen != SIGN_SIG_LEN)
		return err_fail("signature does not verify: %zu bytes, an Ed25519 signature has %d", siglen,
				SIGN_SIG_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		 EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (!ok)
		return err_fail("signature does not verify with public key '%s'", k->path);
	return 0;
}

int sign_file(const struct sign_key *k, const char *path, const char *sig_path)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(path, &buf, &len) < 0)
		return -1;
	unsigned char sig[SIGN_SIG_LEN];
	if (sign_data(k, buf, len, sig) < 0)
		return -1;
	_cleanup_free_ char *def = xasprintf("%s.sig", path);
	return fs_write_file_atomic(sig_path ? sig_path : def, sig, sizeof(sig), 0644);
}
