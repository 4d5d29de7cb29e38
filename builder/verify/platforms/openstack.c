/* OpenStack's metadata service at 169.254.169.254 as Nova serves it: no
 * headers required, user_data as sent, meta_data.json with the instance's
 * uuid and host name. The document is shared with the config drive. */
#include "platform_impl.h"

#include "cleanup.h"
#include "fs.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *openstack_meta_data_json(const struct platform_env *env)
{
	char uuid[37];
	platform_derive_uuid(env->instance_id, "openstack-uuid", uuid);
	const char *host = env->hostname ? env->hostname : "qvsa";
	json_object *doc = json_object_new_object();
	json_object_object_add(doc, "uuid", json_object_new_string(uuid));
	json_object_object_add(doc, "name", json_object_new_string(host));
	json_object_object_add(doc, "hostname", json_object_new_string(host));
	json_object_object_add(doc, "launch_index", json_object_new_int(0));
	json_object_object_add(doc, "availability_zone", json_object_new_string("nova"));
	json_object_object_add(doc, "meta", json_object_new_object());
	/* One line, as Nova's json.dumps writes it. */
	char *text = xasprintf("%s\n", json_text_line(doc));
	json_object_put(doc);
	return text;
}

/* Folders Nova lists, newest last (clients pick "latest"). */
static const char openstack_versions[] = "2012-08-10\n2013-04-04\n2016-06-30\n2018-08-27\nlatest";
static const char openstack_latest[] = "meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json";

/* The service's state, owned by its platform. */
struct openstack {
	struct platform *p;             /* where to record what was seen */
	const struct platform_env *env; /* the platform's copy */
	char *meta_data;                /* meta_data.json; owned */
};

static void openstack_free(void *state)
{
	struct openstack *o = state;
	free(o->meta_data);
	free(o);
}

static void openstack_handle(void *opaque, const struct httpd_request *rq, struct httpd_response *resp)
{
	struct openstack *o = opaque;
	const char *path = rq->path;
	if (strcmp(rq->method, "GET") != 0)
		return platform_answer(resp, 405, NULL, "405 Method Not Allowed\n");
	if (strcmp(path, "/openstack") == 0 || strcmp(path, "/openstack/") == 0)
		return platform_answer(resp, 200, NULL, openstack_versions);
	if (strcmp(path, "/openstack/latest") == 0 || strcmp(path, "/openstack/latest/") == 0)
		return platform_answer(resp, 200, NULL, openstack_latest);
	if (strcmp(path, "/openstack/latest/meta_data.json") == 0)
		return platform_answer(resp, 200, "application/json", o->meta_data);
	if (strcmp(path, "/openstack/latest/user_data") == 0) {
		platform_note_delivered(o->p);
		return platform_answer(resp, 200, "application/octet-stream", o->env->user_data);
	}
	platform_answer(resp, 404, NULL, "404 Not Found\n");
}

int openstack_start(const struct platform_env *env, struct platform *p)
{
	struct openstack *o = calloc(1, sizeof(*o));
	if (!o)
		abort();
	*o = (struct openstack){ .p = p, .env = env, .meta_data = openstack_meta_data_json(env) };
	platform_own(p, o, openstack_free);
	return platform_serve(p, PLATFORM_IMDS_ADDR, PLATFORM_HTTP_PORT, openstack_handle, o);
}
