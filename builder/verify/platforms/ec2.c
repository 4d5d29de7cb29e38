/* Amazon EC2's instance metadata service with IMDSv1 disabled (what many
 * accounts enforce): a session token from PUT /latest/api/token, then every
 * GET carries it. The rules, as AWS documents them:
 *  - the PUT needs X-aws-ec2-metadata-token-ttl-seconds, 1..21600 (else 400),
 *    and is refused with X-Forwarded-For (403): a proxy must not get tokens;
 *  - a GET without a token is IMDSv1: 401; an unknown or expired token: 401. */
#include "platform_impl.h"

#include "log.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EC2_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds"
#define EC2_TOKEN_HEADER "X-aws-ec2-metadata-token"
#define EC2_TTL_MAX 21600
#define EC2_TOKENS 8 /* live tokens kept; the oldest is forgotten first */

/* One issued token. */
struct ec2_token {
	char value[64];  /* base64 of 40 random bytes (56 characters, as AWS's); "" when unused */
	double expires;  /* monotonic seconds */
};

/* The service's state, owned by its platform. */
struct ec2 {
	struct platform *p;                   /* where to record what was seen */
	const struct platform_env *env;       /* the platform's copy */
	char instance_id[20];                 /* "i-" and 17 hex digits, derived from env->instance_id */
	pthread_mutex_t lock;                 /* guards tokens and next */
	struct ec2_token tokens[EC2_TOKENS];  /* issued tokens */
	size_t next;                          /* slot the next token takes */
};

static void ec2_free(void *state)
{
	struct ec2 *e = state;
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* "1".."21600" exactly (no sign, blanks or leading zeros games), else 0. */
static unsigned ec2_ttl(const char *s)
{
	if (!s || !*s || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s) || s[0] == '0')
		return 0;
	unsigned v = (unsigned)strtoul(s, NULL, 10);
	return v <= EC2_TTL_MAX ? v : 0;
}

static void ec2_put_token(struct ec2 *e, const struct httpd_request *rq, struct httpd_response *resp)
{
	if (httpd_header(rq, "X-Forwarded-For")) {
		platform_note_refused(e->p, "PUT /latest/api/token with X-Forwarded-For");
		return platform_answer(resp, 403, NULL, "403 - Forbidden\n");
	}
	const char *ttl_text = httpd_header(rq, EC2_TTL_HEADER);
	unsigned ttl = ec2_ttl(ttl_text);
	if (!ttl) {
		if (ttl_text)
			platform_note_refused(e->p, "PUT /latest/api/token with %s '%.32s' not in 1..%u",
					      EC2_TTL_HEADER, ttl_text, EC2_TTL_MAX);
		else
			platform_note_refused(e->p, "PUT /latest/api/token without %s", EC2_TTL_HEADER);
		return platform_answer(resp, 400, NULL, "400 - Bad Request\n");
	}
	unsigned char raw[40];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return platform_answer(resp, 500, NULL, "500 - Internal Server Error\n");
	char *token = platform_base64(raw, sizeof(raw));
	pthread_mutex_lock(&e->lock);
	struct ec2_token *slot = &e->tokens[e->next++ % EC2_TOKENS];
	snprintf(slot->value, sizeof(slot->value), "%s", token);
	slot->expires = now_monotonic() + ttl;
	pthread_mutex_unlock(&e->lock);
	char ttl_echo[16];
	snprintf(ttl_echo, sizeof(ttl_echo), "%u", ttl);
	platform_answer_header(resp, EC2_TTL_HEADER, ttl_echo);
	platform_answer_take(resp, 200, NULL, token, strlen(token));
}

static bool ec2_token_valid(struct ec2 *e, const char *token)
{
	bool ok = false;
	double now = now_monotonic();
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < EC2_TOKENS && !ok; i++)
		ok = e->tokens[i].value[0] && strcmp(e->tokens[i].value, token) == 0 && now < e->tokens[i].expires;
	pthread_mutex_unlock(&e->lock);
	return ok;
}

static void ec2_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct ec2 *e = opaque;
	const char *path = rq->path;
	if (strcmp(path, "/latest/api/token") == 0) {
		if (strcmp(rq->method, "PUT") != 0)
			return platform_answer(resp, 405, NULL, "405 - Method Not Allowed\n");
		return ec2_put_token(e, rq, resp);
	}
	if (strcmp(rq->method, "GET") != 0)
		return platform_answer(resp, 405, NULL, "405 - Method Not Allowed\n");
	const char *token = httpd_header(rq, EC2_TOKEN_HEADER);
	if (!token) {
		platform_note_refused(e->p, "GET %.64s without a token (IMDSv1)", path);
		return platform_answer(resp, 401, NULL, "401 - Unauthorized\n");
	}
	if (!ec2_token_valid(e, token)) {
		platform_note_refused(e->p, "GET %.64s with an unknown or expired token", path);
		return platform_answer(resp, 401, NULL, "401 - Unauthorized\n");
	}
	if (strcmp(path, "/latest/user-data") == 0) {
		platform_note_delivered(e->p);
		return platform_answer(resp, 200, "application/octet-stream", e->env->user_data);
	}
	if (strcmp(path, "/latest/meta-data/instance-id") == 0)
		return platform_answer(resp, 200, NULL, e->instance_id);
	if (strcmp(path, "/latest/meta-data/local-hostname") == 0)
		return platform_answer(resp, 200, NULL, e->env->hostname ? e->env->hostname : "ip-169-254-169-15");
	if (strcmp(path, "/latest/meta-data/") == 0 || strcmp(path, "/latest/meta-data") == 0)
		return platform_answer(resp, 200, NULL, "instance-id\nlocal-hostname");
	if (strcmp(path, "/latest/") == 0 || strcmp(path, "/latest") == 0)
		return platform_answer(resp, 200, NULL, "dynamic\nmeta-data\nuser-data");
	platform_answer(resp, 404, NULL, "404 - Not Found\n");
}

int ec2_start(const struct platform_env *env, struct platform *p)
{
	struct ec2 *e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	e->p = p;
	e->env = env;
	pthread_mutex_init(&e->lock, NULL);
	char hex[18];
	platform_derive_hex(env->instance_id, "ec2-instance-id", 17, hex);
	snprintf(e->instance_id, sizeof(e->instance_id), "i-%s", hex);
	platform_own(p, e, ec2_free);
	return platform_serve(p, PLATFORM_IMDS_ADDR, PLATFORM_HTTP_PORT, ec2_handle, e);
}
