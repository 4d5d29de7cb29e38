/* Shared by the platform tests: a run's environment in a temp folder, and
 * synthetic requests handed to a platform's services without a server. */
#ifndef QVSA_PLATFORM_TEST_H
#define QVSA_PLATFORM_TEST_H

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "httpd.h"
#include "platform.h"

#define PT_IMDS "169.254.169.254"
#define PT_WIRE "168.63.129.16"
#define PT_USER_DATA "#cloud-config\nqvsa:\n  perscode: \"12345678\"\n# <&> 'quotes' \"too\"\n"

/* A temp folder per test, removed afterwards. */
static char pt_dir[64];

static inline void pt_setup(void)
{
	snprintf(pt_dir, sizeof(pt_dir), "/tmp/qvsa-test-platform-XXXXXX");
	cr_assert_not_null(mkdtemp(pt_dir));
}

static inline void pt_teardown(void)
{
	fs_rm_rf(pt_dir);
}

static inline struct platform_env pt_env(void)
{
	return (struct platform_env){
		.tmpdir = pt_dir, .instance_id = "iid-qvsa-verify-kvm", .hostname = "qvsa-verify",
		.user_data = PT_USER_DATA, .perscode = "12345678", .platform_url = "https://169.254.169.2:8443/",
	};
}

static inline struct platform *pt_prepare(const char *name)
{
	const struct platform_ops *ops = platform_find(name);
	cr_assert_not_null(ops, "no platform %s", name);
	struct platform_env env = pt_env();
	struct platform *p = NULL;
	cr_assert_eq(platform_prepare(ops, &env, &p), 0, "%s: %s", name, err_msg());
	return p;
}

/* One request: target split into path and query as the server does;
 * headers as name/value pairs ending with NULL. */
static inline struct httpd_response pt_call(struct platform *p, const char *addr, const char *method,
					    const char *target, const char *body, const char *const *headers)
{
	struct httpd_field h[16];
	size_t n = 0;
	for (; headers && headers[2 * n]; n++) {
		cr_assert_lt(n, 16);
		h[n] = (struct httpd_field){ .name = headers[2 * n], .value = headers[2 * n + 1] };
	}
	char path[256];
	const char *q = strchr(target, '?');
	snprintf(path, sizeof(path), "%.*s", (int)(q ? (size_t)(q - target) : strlen(target)), target);
	const struct httpd_request rq = {
		.method = method, .target = target, .path = path, .query = q ? q + 1 : "",
		.body = body ? body : "", .body_len = body ? strlen(body) : 0, .headers = h, .n_headers = n,
	};
	struct httpd_response resp = { 0 };
	cr_assert_eq(platform_call(p, addr, 80, &rq, &resp), 0, "%s", err_msg());
	return resp;
}

/* The body as a string (answers are text), or "". */
static inline const char *pt_body(const struct httpd_response *r)
{
	return r->body ? r->body : "";
}

static inline struct platform_report pt_report(struct platform *p)
{
	struct platform_report rep;
	platform_report(p, &rep);
	return rep;
}

/* Decode base64 text; caller frees. */
static inline char *pt_unbase64(const char *b64)
{
	size_t len = strlen(b64);
	char *out = calloc(1, len + 1);
	cr_assert_not_null(out);
	int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b64, (int)len);
	cr_assert_geq(n, 0, "bad base64");
	while (len > 0 && b64[len - 1] == '=') {
		len--;
		n--;
	}
	out[n] = 0;
	return out;
}

#endif
