/* Google Compute Engine's metadata server: every request needs
 * "Metadata-Flavor: Google" (403 without), requests carrying
 * X-Forwarded-For are refused (403: they came through a proxy), and every
 * answer carries "Metadata-Flavor: Google" back. */
#include "platform_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GCE_FLAVOR_HEADER "Metadata-Flavor"
#define GCE_FLAVOR "Google"
#define GCE_ROOT "/computeMetadata/v1/"

/* The service's state, owned by its platform. */
struct gce {
	struct platform *p;             /* where to record what was seen */
	const struct platform_env *env; /* the platform's copy */
	char id[21];                    /* numeric instance id, derived from env->instance_id */
};

static void gce_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct gce *g = opaque;
	const char *path = rq->path;
	platform_answer_header(resp, GCE_FLAVOR_HEADER, GCE_FLAVOR);
	platform_answer_header(resp, "Server", "Metadata Server for VM");
	if (httpd_header(rq, "X-Forwarded-For")) {
		platform_note_refused(g->p, "GET %.64s with X-Forwarded-For", path);
		return platform_answer(resp, 403, NULL, "Request contains X-Forwarded-For header.\n");
	}
	const char *flavor = httpd_header(rq, GCE_FLAVOR_HEADER);
	if (!flavor || strcmp(flavor, GCE_FLAVOR) != 0) {
		platform_note_refused(g->p, "GET %.64s without %s: %s", path, GCE_FLAVOR_HEADER, GCE_FLAVOR);
		return platform_answer(resp, 403, NULL, "Missing Metadata-Flavor:Google header.\n");
	}
	if (strcmp(rq->method, "GET") != 0)
		return platform_answer(resp, 405, NULL, "Method not allowed\n");
	if (strcmp(path, GCE_ROOT "instance/attributes/user-data") == 0) {
		platform_note_delivered(g->p);
		return platform_answer(resp, 200, "application/text", g->env->user_data);
	}
	if (strcmp(path, GCE_ROOT "instance/id") == 0)
		return platform_answer(resp, 200, "application/text", g->id);
	if (strcmp(path, GCE_ROOT "instance/hostname") == 0)
		return platform_answer(resp, 200, "application/text",
				       g->env->hostname ? g->env->hostname : "qvsa.c.project.internal");
	if (strcmp(path, GCE_ROOT "instance/attributes/") == 0)
		return platform_answer(resp, 200, "application/text", "user-data\n");
	platform_answer(resp, 404, "text/html; charset=UTF-8", "Not Found\n");
}

int gce_start(const struct platform_env *env, struct platform *p)
{
	struct gce *g = calloc(1, sizeof(*g));
	if (!g)
		abort();
	*g = (struct gce){ .p = p, .env = env };
	/* GCE ids are 19 decimal digits; take the derived hex as a number */
	char hex[16];
	platform_derive_hex(env->instance_id, "gce-id", 15, hex);
	snprintf(g->id, sizeof(g->id), "%llu", 1000000000000000000ULL + strtoull(hex, NULL, 16) % 8000000000000000000ULL);
	platform_own(p, g, free);
	return platform_serve(p, PLATFORM_IMDS_ADDR, PLATFORM_HTTP_PORT, gce_handle, g);
}
