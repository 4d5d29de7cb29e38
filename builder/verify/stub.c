/* The platform stub: plays the qVSA platform's personalization endpoint for
 * verification (protocol in docs/personalization.md) on the verification
 * HTTP server (httpd.h), over HTTPS when given a certificate. Requests are
 * served concurrently, so what the appliance sent is kept under a mutex for
 * the verifier to inspect. */
#include "stub.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "httpd.h"
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limits docs/personalization.md promises (httpd's defaults, stated here). */
#define STUB_MAX_HEADER (16 * 1024)
#define STUB_MAX_BODY (64 * 1024)
#define STUB_CONN_TIMEOUT_MS 10000

static const char stub_endpoint[] = "qvsa/v1/personalize";
/* The deterministic test set served when the caller gives none. */
static const char *const stub_default_components[] = {
	"ML=3.1.0", "VULNSIGS=2.6.18-1", "TAGGER=1.4.2", "SCAND=12.9.5", NULL,
};

struct stub {
	struct httpd *httpd;    /* the server, owned */
	char *expected_code;    /* the one accepted code, owned; read-only while serving */
	char **components;      /* served "NAME=VERSION" list, NULL-terminated, owned; read-only while serving */
	pthread_mutex_t lock;   /* guards everything below (handlers run in several threads) */
	unsigned requests;      /* personalization requests seen */
	char *code;             /* last code received, owned, or NULL */
	char *version;          /* last bootstrap_version received, owned, or NULL */
	char *arch;             /* last arch received, owned, or NULL */
	char *reason;           /* why the last request was rejected, owned, or NULL */
	bool accepted;          /* last request got the components */
	char *snap[5];          /* copies handed out by the last stub_report, owned */
};

/* The fields perscode, bootstrap_version, arch of the request's JSON object,
 * each a string or a whole number (kept as written); unknown members are
 * ignored. 0, or -1 with *ret_why. */
static int stub_json_fields(const char *body, char *ret[3], const char **ret_why)
{
	static const char *const names[3] = { "perscode", "bootstrap_version", "arch" };
	static const char *const wrong_type[3] = { "malformed request: perscode is not a string",
						   "malformed request: bootstrap_version is not a string",
						   "malformed request: arch is not a string" };
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *o = json_parse(body, &why, &at);
	*ret_why = "malformed request: body is not a JSON object";
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	for (int i = 0; i < 3; i++) {
		json_object *v = NULL;
		if (!json_object_object_get_ex(o, names[i], &v) || json_object_is_type(v, json_type_null))
			continue;
		const char *s = json_member_str(o, names[i]);
		/* json-c prints a whole number back as written, but clamps one out of range. */
		if (!s && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
		    json_object_get_int64(v) < INT64_MAX)
			s = json_object_get_string(v);
		if (!s) {
			*ret_why = wrong_type[i];
			return -1;
		}
		ret[i] = xstrdup(s);
	}
	if (!ret[0]) {
		*ret_why = "malformed request: no perscode";
		return -1;
	}
	return 0;
}

/* Any prefix is fine as long as the path ends in the endpoint's segments
 * (httpd has already taken the scheme and host off an absolute URI). */
static bool stub_is_endpoint(const char *path)
{
	size_t n = strlen(path), e = sizeof(stub_endpoint) - 1;
	return n >= e + 1 && strcmp(path + n - e, stub_endpoint) == 0 && path[n - e - 1] == '/';
}

/* Record one personalization request; takes ownership of the strings. */
static void stub_note(struct stub *s, char *code, char *version, char *arch, bool accepted,
		      const char *reason)
{
	pthread_mutex_lock(&s->lock);
	s->requests++;
	free(s->code);
	free(s->version);
	free(s->arch);
	free(s->reason);
	s->code = code;
	s->version = version;
	s->arch = arch;
	s->accepted = accepted;
	s->reason = reason ? xstrdup(reason) : NULL;
	pthread_mutex_unlock(&s->lock);
}

/* httpd handler: the behaviour table of docs/personalization.md. */
static void stub_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct stub *s = opaque;
	int status = 200;
	const char *why = NULL;
	if (!stub_is_endpoint(rq->path)) {
		status = 404;
		why = "no such endpoint";
	} else if (strcmp(rq->method, "POST") != 0) {
		status = 405;
		why = "use POST";
	} else {
		/* a personalization request, malformed or not: it gets recorded */
		char *f[3] = { NULL, NULL, NULL };
		if (strlen(rq->body) != rq->body_len) {
			status = 400;
			why = "malformed request: NUL byte in body";
		} else if (stub_json_fields(rq->body, f, &why) < 0) {
			status = 400;
		} else if (strcmp(f[0], s->expected_code) != 0) {
			status = 403;
			why = "unknown personalization code";
		}
		stub_note(s, f[0], f[1], f[2], status == 200, status == 200 ? NULL : why);
	}
	resp->status = status;
	resp->content_type = "text/plain";
	if (status != 200) {
		resp->body = xasprintf("REASON=%s\n", why);
		resp->body_len = strlen(resp->body);
		return;
	}
	size_t len = 0;
	for (char **c = s->components; *c; c++)
		len += strlen(*c) + 1;
	char *body = malloc(len + 1);
	if (!body)
		abort();
	body[0] = 0;
	for (char **c = s->components; *c; c++)
		strcat(strcat(body, *c), "\n");
	resp->body = body;
	resp->body_len = len;
}

/* httpd refusal hook: an oversized or slow POST to the endpoint still
 * counts as a personalization request, with httpd's reason. */
static void stub_refused(void *opaque, const struct httpd_request *rq, int status, const char *why)
{
	(void)status;
	if (rq && stub_is_endpoint(rq->path) && strcmp(rq->method, "POST") == 0)
		stub_note(opaque, NULL, NULL, NULL, false, why);
}

int stub_start(const struct stub_config *cfg, struct stub **ret)
{
	if (!cfg->expected_code || !*cfg->expected_code)
		return err_input("starting platform stub: no expected personalization code");
	const char *const *comps = cfg->components ? cfg->components : stub_default_components;
	size_t n = 0;
	for (; comps[n]; n++)
		if (!strchr(comps[n], '=') || strpbrk(comps[n], "\r\n"))
			return err_input("starting platform stub: component '%s' is not NAME=VERSION",
					 comps[n]);
	struct stub *s = calloc(1, sizeof(*s));
	if (!s)
		return err_errno(ENOMEM, "starting platform stub");
	pthread_mutex_init(&s->lock, NULL);
	s->expected_code = xstrdup(cfg->expected_code);
	s->components = calloc(n + 1, sizeof(char *));
	if (!s->components)
		abort();
	for (size_t i = 0; i < n; i++)
		s->components[i] = xstrdup(comps[i]);
	struct httpd_config hc = {
		.bind_addr = cfg->bind_addr,
		.port = cfg->port,
		.cert_pem = cfg->cert_pem,
		.key_pem = cfg->key_pem,
		.handler = stub_handle,
		.on_refusal = stub_refused,
		.opaque = s,
		.max_header = STUB_MAX_HEADER,
		.max_body = STUB_MAX_BODY,
		.timeout_ms = STUB_CONN_TIMEOUT_MS,
	};
	if (httpd_start(&hc, &s->httpd) < 0) {
		err_prefix("platform stub");
		stub_stop(s);
		return -1;
	}
	*ret = s;
	return 0;
}

uint16_t stub_port(const struct stub *s) { return httpd_port(s->httpd); }

static const char *stub_snap(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? xstrdup(v) : NULL;
	return *slot;
}

void stub_report(struct stub *s, struct stub_report *ret)
{
	struct httpd_stats st;
	httpd_stats(s->httpd, &st);
	pthread_mutex_lock(&s->lock);
	*ret = (struct stub_report){
		.requests = s->requests,
		.code = stub_snap(&s->snap[0], s->code),
		.version = stub_snap(&s->snap[1], s->version),
		.arch = stub_snap(&s->snap[2], s->arch),
		.accepted = s->accepted,
		.reason = stub_snap(&s->snap[3], s->reason),
		.tls_failures = st.tls_failures,
		.tls_error = stub_snap(&s->snap[4], st.tls_failures ? st.tls_error : NULL),
	};
	pthread_mutex_unlock(&s->lock);
}

const char *const *stub_components(const struct stub *s) { return (const char *const *)s->components; }

void stub_stop(struct stub *s)
{
	if (!s)
		return;
	httpd_stop(s->httpd); /* first: no handler may run on what is freed below */
	pthread_mutex_destroy(&s->lock);
	free(s->expected_code);
	if (s->components)
		cleanup_strvp(&s->components);
	free(s->code);
	free(s->version);
	free(s->arch);
	free(s->reason);
	for (size_t i = 0; i < ELEMENTSOF(s->snap); i++)
		free(s->snap[i]);
	free(s);
}
