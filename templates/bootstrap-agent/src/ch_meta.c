/* The metadata-service channels (OpenStack, EC2, GCE, OCI): one or two
 * requests to 169.254.169.254 each, with the headers each platform requires
 * (docs/channels.md). A 404 for the user-data means there is none. */
#include "channel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET path; 0 with the body on 200, 1 on 404, -1 otherwise. */
static int agent_meta_user_data(const struct agent_chan_env *env, const char *path, const char *headers,
				char **ret_body)
{
	int status;
	char *body = NULL;
	if (agent_meta_request(env, env->metadata_host, env->metadata_port, "GET", path, headers, NULL, &status,
			       &body) < 0)
		return -1;
	if (status == 200) {
		*ret_body = body;
		return 0;
	}
	free(body);
	if (status == 404)
		return 1;
	return agent_fail("GET %s: answered HTTP %d", path, status);
}

int agent_ch_openstack(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	(void)m;
	return agent_meta_user_data(env, "/openstack/latest/user_data", NULL, &ret->user_data);
}

/* A token goes back into a header: printable, no blanks, bounded. */
static bool agent_token_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 512)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)t[i]))
			return false;
	return true;
}

/* IMDSv2 only: many accounts disable the token-less IMDSv1, and a token-less
 * GET is what verification counts as a breach. */
int agent_ch_ec2(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	(void)m;
	int status;
	char *token = NULL;
	if (agent_meta_request(env, env->metadata_host, env->metadata_port, "PUT", "/latest/api/token",
			       "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n", NULL, &status, &token) < 0)
		return -1;
	if (status != 200) {
		free(token);
		return agent_fail("PUT /latest/api/token: answered HTTP %d", status);
	}
	size_t n = strlen(token);
	while (n > 0 && isspace((unsigned char)token[n - 1]))
		token[--n] = 0;
	if (!agent_token_ok(token)) {
		explicit_bzero(token, strlen(token));
		free(token);
		return agent_fail("PUT /latest/api/token: the answer is not a token");
	}
	char *hdr = agent_printf("X-aws-ec2-metadata-token: %s\r\n", token);
	explicit_bzero(token, strlen(token));
	free(token);
	int r = agent_meta_user_data(env, "/latest/user-data", hdr, &ret->user_data);
	explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	return r;
}

int agent_ch_gce(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	(void)m;
	return agent_meta_user_data(env, "/computeMetadata/v1/instance/attributes/user-data",
				    "Metadata-Flavor: Google\r\n", &ret->user_data);
}

int agent_ch_oci(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	(void)m;
	char *b64 = NULL;
	int r = agent_meta_user_data(env, "/opc/v2/instance/metadata/user_data", "Authorization: Bearer Oracle\r\n",
				     &b64);
	if (r != 0)
		return r;
	size_t len;
	r = agent_base64_decode(b64, strlen(b64), &ret->user_data, &len);
	explicit_bzero(b64, strlen(b64));
	free(b64);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", agent_error());
		return agent_fail("user_data: %s", why);
	}
	return 0;
}
