/* The platform transport: one POST of the personalization request to the
 * platform URL, directly or through an HTTP proxy. */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int agent_platform_post(const char *platform_url, const char *proxy_url, const char *ca_pem, bool allow_http,
			const char *body, int timeout_ms, int *ret_status, char **ret_body)
{
	(void)ca_pem;
	(void)allow_http;
	struct agent_url platform = { 0 }, proxy = { 0 };
	if (agent_url_parse(platform_url, &platform) < 0)
		return -EPROTO;
	if (proxy_url && agent_url_parse(proxy_url, &proxy) < 0) {
		agent_url_free(&platform);
		return -EPROTO;
	}
	char *req = agent_request_build(&platform, proxy_url ? &proxy : NULL, body);
	const struct agent_url *to = proxy_url ? &proxy : &platform;
	int r = agent_http_exchange(to->host, to->port, req, timeout_ms, ret_status, ret_body);
	explicit_bzero(req, strlen(req));
	free(req);
	agent_url_free(&platform);
	agent_url_free(&proxy);
	return r;
}
