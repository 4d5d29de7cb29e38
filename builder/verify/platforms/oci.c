/* Oracle Cloud's instance metadata service v2: every request needs
 * "Authorization: Bearer Oracle" (401 without); user_data is served as the
 * base64 it was stored as; the v1 endpoints are disabled (404), as OCI
 * lets tenancies require. */
#include "platform_impl.h"

#include "cleanup.h"
#include "fs.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OCI_AUTH "Bearer Oracle"
#define OCI_ROOT "/opc/v2/instance/"

/* The service's state, owned by its platform. */
struct oci {
	struct platform *p;             /* where to record what was seen */
	const struct platform_env *env; /* the platform's copy */
	char *user_data_b64;            /* base64 of env->user_data; owned */
	char *instance_json;            /* the whole instance document (GET /opc/v2/instance/); owned */
};

static void oci_free(void *state)
{
	struct oci *o = state;
	free(o->user_data_b64);
	free(o->instance_json);
	free(o);
}

static void oci_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct oci *o = opaque;
	const char *path = rq->path;
	if (strncmp(path, "/opc/v1/", 8) == 0)
		return platform_answer(resp, 404, NULL, "404 Not Found: IMDS v1 is disabled\n");
	if (strncmp(path, "/opc/v2/", 8) != 0)
		return platform_answer(resp, 404, NULL, "404 Not Found\n");
	const char *auth = httpd_header(rq, "Authorization");
	if (!auth || strcmp(auth, OCI_AUTH) != 0) {
		platform_note_refused(o->p, "GET %.64s without Authorization: %s", path, OCI_AUTH);
		return platform_answer(resp, 401, NULL, "401 Unauthorized\n");
	}
	if (strcmp(rq->method, "GET") != 0)
		return platform_answer(resp, 405, NULL, "405 Method Not Allowed\n");
	if (strcmp(path, OCI_ROOT "metadata/user_data") == 0) {
		platform_note_delivered(o->p);
		return platform_answer(resp, 200, NULL, o->user_data_b64);
	}
	if (strcmp(path, OCI_ROOT) == 0) {
		platform_note_delivered(o->p); /* the document holds the user-data too */
		return platform_answer(resp, 200, "application/json", o->instance_json);
	}
	platform_answer(resp, 404, NULL, "404 Not Found\n");
}

static char *oci_instance_json(const struct platform_env *env, const char *user_data_b64)
{
	char hex[61];
	platform_derive_hex(env->instance_id, "oci-ocid", 60, hex);
	_cleanup_free_ char *ocid = xasprintf("ocid1.instance.oc1.iad.%s", hex);
	json_object *doc = json_object_new_object(), *meta = json_object_new_object();
	json_object_object_add(doc, "id", json_object_new_string(ocid));
	json_object_object_add(doc, "hostname", json_object_new_string(env->hostname ? env->hostname : "qvsa"));
	json_object_object_add(doc, "region", json_object_new_string("iad"));
	json_object_object_add(meta, "user_data", json_object_new_string(user_data_b64));
	json_object_object_add(doc, "metadata", meta);
	/* Pretty-printed, as OCI's IMDS answers. */
	char *text = xasprintf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
									  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return text;
}

int oci_start(const struct platform_env *env, struct platform *p)
{
	struct oci *o = calloc(1, sizeof(*o));
	if (!o)
		abort();
	o->p = p;
	o->env = env;
	o->user_data_b64 = platform_base64(env->user_data, strlen(env->user_data));
	o->instance_json = oci_instance_json(env, o->user_data_b64);
	platform_own(p, o, oci_free);
	return platform_serve(p, PLATFORM_IMDS_ADDR, PLATFORM_HTTP_PORT, oci_handle, o);
}
