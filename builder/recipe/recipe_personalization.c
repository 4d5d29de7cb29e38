/* personalization: in a recipe: URLs, the CA bundle (read and checked with
 * OpenSSL at load time, so a bad bundle is a recipe error, not a first-boot
 * failure) and the explicit consent to plain HTTP. */
#include "recipe_personalization.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "redact.h"
#include "yamltree.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/stat.h>

/* A CA bundle larger than this is not a CA bundle (Debian's holds ~150 CAs in 220 KB). */
#define CA_MAX_BYTES (4u << 20)

void recipe_personalization_clear(struct recipe_personalization *p)
{
	free(p->platform_url);
	free(p->proxy);
	free(p->ca);
	memset(p, 0, sizeof(*p));
}

/* Scheme, a non-empty host, and nothing that would break a config file line. */
static bool is_url(const char *s, bool https_ok)
{
	size_t p = strncmp(s, "http://", 7) == 0 ? 7 : https_ok && strncmp(s, "https://", 8) == 0 ? 8 : 0;
	if (p == 0 || s[p] == 0 || s[p] == '/' || s[p] == '@' || s[p] == ':')
		return false;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

/* A URL for a message: credentials, query and fragment masked, control
 * characters escaped, cut at a length that still shows the host. */
static const char *show_url(const char *url, char *buf, size_t size)
{
	_cleanup_free_ char *masked = redact_url(url);
	return yamltree_escape(masked, buf, size);
}

static void bio_freep(BIO **b) { BIO_free(*b); }

int recipe_check_ca_pem(const char *buf, size_t len, unsigned *ret_n_certs, const char **ret_why)
{
	/* The bundle goes into the image: a key in it would be a secret shipped to everyone. */
	if (memmem(buf, len, "PRIVATE KEY-----", 16)) {
		*ret_why = "it holds a private key (only certificates belong in an image)";
		return -1;
	}
	_cleanup_(bio_freep) BIO *bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio)
		abort();
	unsigned n = 0;
	X509 *x;
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	/* The loop ends at the end of input (no further BEGIN line) or at a block that does not parse. */
	unsigned long e = ERR_peek_last_error();
	ERR_clear_error();
	if (!(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		*ret_why = n ? "a certificate after the first ones does not parse" : "its first certificate does not parse";
		return -1;
	}
	if (n == 0) {
		*ret_why = "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
		return -1;
	}
	*ret_n_certs = n;
	return 0;
}

/* ca: a PEM file, relative to the folder of the recipe file that names it, or absolute. */
static int parse_ca(const struct yamltree *n, bool no_fs, char **ret)
{
	const char *s;
	char esc[YAMLTREE_QUOTE_MAX + 32];
	if (yamltree_string(n, "personalization.ca", &s) < 0)
		return -1;
	yamltree_describe(n, esc, sizeof(esc));
	_cleanup_free_ char *dir = fs_dirname(yamltree_file(n));
	_cleanup_free_ char *joined = s[0] == '/' ? xstrdup(s) : xasprintf("%s/%s", dir, s);
	if (no_fs) {
		*ret = TAKE_PTR(joined);
		return 0;
	}
	_cleanup_free_ char *path = realpath(joined, NULL);
	struct stat st;
	if (!path || stat(path, &st) < 0)
		return yamltree_error(n, "CA bundle %s for 'personalization.ca' not found (looked for '%s')", esc, joined);
	if (!S_ISREG(st.st_mode))
		return yamltree_error(n, "CA bundle %s for 'personalization.ca' is not a regular file", esc);
	if ((uint64_t)st.st_size > CA_MAX_BYTES)
		return yamltree_error(n, "CA bundle %s for 'personalization.ca' is larger than %u MiB", esc,
				      CA_MAX_BYTES >> 20);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(path, &buf, &len) < 0) {
		err_prefix("%s:%u:%u", yamltree_file(n), yamltree_line(n), yamltree_column(n));
		return -1;
	}
	unsigned certs = 0;
	const char *why = NULL;
	if (recipe_check_ca_pem(buf, len, &certs, &why) < 0)
		return yamltree_error(n, "CA bundle %s for 'personalization.ca' is not usable: %s", esc, why);
	*ret = TAKE_PTR(path);
	return 0;
}

int recipe_personalization_parse(const struct yamltree *p, bool no_fs, struct recipe_personalization *ret)
{
	static const char *const keys[] = { "platform_url", "proxy", "ca", "allow_http", NULL };
	static const char *const booleans[] = { "true", "false", NULL };
	const struct yamltree *n, *url;
	char shown[128];
	const char *s;

	if (yamltree_expect(p, YAMLTREE_MAPPING, "personalization") < 0 ||
	    yamltree_check_keys(p, "personalization", keys) < 0)
		return -1;
	if ((n = yamltree_get(p, "allow_http"))) {
		if (yamltree_enum(n, "personalization.allow_http", booleans, &s) < 0)
			return -1;
		ret->allow_http = strcmp(s, "true") == 0;
	}
	if (yamltree_require(p, "personalization", "platform_url", &url) < 0 ||
	    yamltree_string(url, "personalization.platform_url", &s) < 0)
		return -1;
	if (!is_url(s, true))
		return yamltree_error(url, "expected an http:// or https:// URL for 'personalization.platform_url', got '%s'",
				      show_url(s, shown, sizeof(shown)));
	/* platform.conf is in every image: a password, a token in a query or a
	 * fragment there would be shipped to everyone. */
	const char *authority = strstr(s, "://") + 3;
	if (strchr(authority, '@'))
		return yamltree_error(url, "'personalization.platform_url' '%s' carries credentials (user:password@); "
				      "they would be in every image: remove them", show_url(s, shown, sizeof(shown)));
	if (strpbrk(authority, "?#"))
		return yamltree_error(url, "'personalization.platform_url' '%s' has a %s; it would be in every image "
				      "(a code or token there is shipped to everyone): remove it",
				      show_url(s, shown, sizeof(shown)), strchr(authority, '?') ? "query string" : "fragment");
	/* The code travels to this URL: plain HTTP only when the recipe says so. */
	if (strncmp(s, "http://", 7) == 0 && !ret->allow_http)
		return yamltree_error(url, "'personalization.platform_url' '%s' is plain HTTP, which would send the "
				      "personalization code unencrypted; use https://, or add 'allow_http: true' "
				      "under personalization to accept that", show_url(s, shown, sizeof(shown)));
	ret->platform_url = xstrdup(s);
	if ((n = yamltree_get(p, "ca")) && parse_ca(n, no_fs, &ret->ca) < 0)
		return -1;
	if (!(n = yamltree_get(p, "proxy")))
		return 0;
	if (yamltree_string(n, "personalization.proxy", &s) < 0)
		return -1;
	if (!is_url(s, false))
		return yamltree_error(n, "expected an http:// URL (http://[user:password@]host:port) for "
				      "'personalization.proxy', got '%s'", show_url(s, shown, sizeof(shown)));
	ret->proxy = xstrdup(s);
	return 0;
}
