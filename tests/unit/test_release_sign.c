/* Ed25519 manifest signatures: keygen, sign, check; a foreign key and one
 * changed byte fail; key files never leak into messages. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "sign.h"

static char dir[] = "/tmp/qvsa-test-sign-XXXXXX";
static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void) { fs_rm_rf(dir); }

static char *keypair(const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	cr_assert_eq(sign_keygen(path), 0, "%s", err_msg());
	return path;
}

static struct sign_key *load(const char *path, bool private)
{
	struct sign_key *k = NULL;
	int rc = private ? sign_key_load_private(path, &k) : sign_key_load_public(path, &k);
	cr_assert_eq(rc, 0, "%s", err_msg());
	return k;
}

TestSuite(sign, .init = setup, .fini = teardown);

Test(sign, keygen_modes_and_no_overwrite)
{
	char *key = keypair("release.key");
	char *pub = xasprintf("%s.pub", key);
	struct stat st;
	cr_assert_eq(stat(key, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "private key mode %o", st.st_mode & 0777);
	cr_assert_eq(stat(pub, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	char *before = NULL;
	cr_assert_eq(fs_read_file(key, &before, NULL), 0);
	cr_assert(strstr(before, "BEGIN PRIVATE KEY"));
	err_clear();
	cr_assert_eq(sign_keygen(key), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), "refusing to overwrite"), "%s", err_msg());
	char *after = NULL;
	cr_assert_eq(fs_read_file(key, &after, NULL), 0);
	cr_assert_str_eq(before, after, "the existing key must be left alone");
	/* Only KEY.pub in the way: refused too, and no half pair written. */
	char *other = xasprintf("%s/other.key", dir), *other_pub = xasprintf("%s/other.key.pub", dir);
	cr_assert_eq(fs_write_file_atomic(other_pub, "x", 1, 0644), 0);
	cr_assert_eq(sign_keygen(other), -1);
	cr_assert(!fs_exists(other));
	free(before);
	free(after);
	free(other);
	free(other_pub);
	free(pub);
	free(key);
}

Test(sign, sign_check_foreign_key_and_changed_byte)
{
	char *key = keypair("a.key"), *foreign = keypair("b.key");
	char *pub = xasprintf("%s.pub", key), *fpub = xasprintf("%s.pub", foreign);
	char *man = xasprintf("%s/manifest.json", dir);
	const char text[] = "{\n  \"manifest_version\": 1\n}\n";
	cr_assert_eq(fs_write_file_atomic(man, text, strlen(text), 0644), 0);
	struct sign_key *k = load(key, true);
	cr_assert_eq(sign_file(k, man, NULL), 0, "%s", err_msg());
	char *sigpath = xasprintf("%s.sig", man), *sig = NULL;
	size_t siglen = 0;
	cr_assert_eq(fs_read_file(sigpath, &sig, &siglen), 0);
	cr_assert_eq(siglen, SIGN_SIG_LEN, "a raw Ed25519 signature");

	struct sign_key *p = load(pub, false), *f = load(fpub, false);
	cr_assert_eq(sign_check(p, text, strlen(text), sig, siglen), 0, "%s", err_msg());
	/* Deterministic (Ed25519): the same bytes, the same signature. */
	unsigned char again[SIGN_SIG_LEN];
	cr_assert_eq(sign_data(k, text, strlen(text), again), 0);
	cr_assert_eq(memcmp(again, sig, SIGN_SIG_LEN), 0);

	err_clear();
	cr_assert_eq(sign_check(f, text, strlen(text), sig, siglen), -1, "a foreign key must not verify");
	cr_assert_eq(err_kind(), ERR_FAIL);
	cr_assert(strstr(err_msg(), "does not verify") && strstr(err_msg(), fpub), "%s", err_msg());
	/* One byte of the manifest changed, then one byte of the signature. */
	for (size_t i = 0; i < strlen(text); i++) {
		char *copy = strdup(text);
		copy[i] ^= 1;
		cr_assert_eq(sign_check(p, copy, strlen(copy), sig, siglen), -1, "byte %zu changed but verified", i);
		free(copy);
	}
	sig[10] ^= 0x40;
	cr_assert_eq(sign_check(p, text, strlen(text), sig, siglen), -1);
	cr_assert_eq(sign_check(p, text, strlen(text), sig, siglen - 1), -1, "a short signature");
	sign_key_free(k);
	sign_key_free(p);
	sign_key_free(f);
	free(sig);
	free(sigpath);
	free(man);
	free(pub);
	free(fpub);
	free(key);
	free(foreign);
}

Test(sign, key_errors_name_the_file_never_its_bytes)
{
	char *key = keypair("c.key");
	char *pem = NULL;
	cr_assert_eq(fs_read_file(key, &pem, NULL), 0);
	struct sign_key *k = NULL;
	/* A private key handed over as the public one, and the other way round. */
	err_clear();
	cr_assert_eq(sign_key_load_public(key, &k), -1);
	cr_assert_eq(err_kind(), ERR_INPUT);
	cr_assert(strstr(err_msg(), key), "%s", err_msg());
	/* The base64 body of the key must not appear in the message. */
	char *body = strchr(pem, '\n') + 1;
	body[20] = 0;
	cr_assert_null(strstr(err_msg(), body), "the message leaks key bytes: %s", err_msg());
	char *pub = xasprintf("%s.pub", key);
	cr_assert_eq(sign_key_load_private(pub, &k), -1);
	cr_assert(strstr(err_msg(), "not a PEM private key"), "%s", err_msg());
	char *missing = xasprintf("%s/none.key", dir);
	cr_assert_eq(sign_key_load_private(missing, &k), -1);
	cr_assert(strstr(err_msg(), "no such file"), "%s", err_msg());
	/* Not Ed25519: an RSA key made by openssl is refused by type. */
	char *rsa = xasprintf("%s/rsa.pem", dir);
	char *cmd = xasprintf("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out %s 2>/dev/null", rsa);
	if (system(cmd) == 0) {
		cr_assert_eq(sign_key_load_private(rsa, &k), -1);
		cr_assert(strstr(err_msg(), "not an Ed25519 key"), "%s", err_msg());
	}
	free(cmd);
	free(rsa);
	free(missing);
	free(pub);
	free(pem);
	free(key);
}
