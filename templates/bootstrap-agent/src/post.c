/* The platform transport: one POST of the personalization request to the
 * platform URL, directly or through an HTTP proxy; https:// over verified
 * TLS (tls.c), through a proxy by a CONNECT tunnel. */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Ask the proxy on s for a tunnel to platform; s then carries the platform's bytes. */
static int agent_proxy_tunnel(struct agent_stream *s, const struct agent_url *platform,
			      const struct agent_url *proxy, int timeout_ms)
{
	char *req = agent_connect_request_build(platform, proxy);
	int r = agent_stream_write(s, req, strlen(req), timeout_ms);
	explicit_bzero(req, strlen(req)); /* the proxy's credentials */
	free(req);
	if (r < 0)
		return r;
	/* byte by byte: what follows the answer is the platform's and belongs to TLS */
	struct agent_buf resp = { 0 };
	int status = 0;
	for (int p = 1; p == 1;) {
		char c;
		ssize_t n = agent_stream_read(s, &c, 1, timeout_ms);
		if (n < 0) {
			agent_buf_free(&resp);
			return (int)n;
		}
		if (n == 0) {
			agent_buf_free(&resp);
			agent_fail("proxy %s: connection closed before answering CONNECT", s->where);
			return -EAGAIN;
		}
		agent_buf_add(&resp, &c, 1);
		p = agent_connect_response_parse(resp.data, resp.len, &status);
		if (p < 0) {
			agent_buf_free(&resp);
			return -EPROTO;
		}
	}
	agent_buf_free(&resp);
	if (status / 100 != 2) {
		agent_fail("proxy %s refused the tunnel to %s port %u: HTTP %d%s", s->where, platform->host,
			   platform->port, status,
			   status == 407 ? " (proxy authentication required: user:password@ in the proxy URL)" : "");
		/* a proxy that cannot reach the platform now may later */
		return status == 502 || status == 503 || status == 504 ? -EAGAIN : -EPROTO;
	}
	char *where = agent_printf("%s port %u via proxy %s", platform->host, platform->port, s->where);
	free(s->where);
	s->where = where;
	return 0;
}

/* Refuse what policy forbids before any connection is made. */
static int agent_post_check(const char *platform_url, const struct agent_url *platform,
			    const struct agent_url *proxy, const char *ca_pem, bool allow_http)
{
	if (!platform->https && !allow_http)
		return agent_fail("platform URL '%s': the image refuses plain http:// platform URLs "
				  "(recipe: personalization: allow_http: true)", platform_url);
	if (platform->https && (!ca_pem || !*ca_pem))
		return agent_fail("no CA to verify the platform's certificate "
				  "(recipe personalization: ca:, or ca_certs: in user-data)");
	if (proxy && proxy->https)
		return agent_fail("proxy URL: only http:// proxies are supported");
	return 0;
}

int agent_platform_post(const char *platform_url, const char *proxy_url, const char *ca_pem, bool allow_http,
			const char *body, int timeout_ms, int *ret_status, char **ret_body)
{
	struct agent_url platform = { 0 }, proxy = { 0 };
	struct agent_stream s = { 0 };
	char *req = NULL;
	int r = -EPROTO;
	if (agent_url_parse(platform_url, &platform) < 0 ||
	    (proxy_url && agent_url_parse(proxy_url, &proxy) < 0) ||
	    agent_post_check(platform_url, &platform, proxy_url ? &proxy : NULL, ca_pem, allow_http) < 0)
		goto out;
	const struct agent_url *to = proxy_url ? &proxy : &platform;
	r = agent_stream_connect(to->host, to->port, timeout_ms, &s);
	if (r == 0 && platform.https && proxy_url)
		r = agent_proxy_tunnel(&s, &platform, &proxy, timeout_ms);
	if (r == 0 && platform.https)
		r = agent_tls_start(&s, platform.host, ca_pem, timeout_ms);
	if (r < 0)
		goto out;
	req = agent_request_build(&platform, proxy_url ? &proxy : NULL, body);
	r = agent_stream_exchange(&s, req, timeout_ms, ret_status, ret_body);
out:
	if (req) /* it holds the code */
		explicit_bzero(req, strlen(req));
	free(req);
	agent_stream_close(&s);
	agent_url_free(&platform);
	agent_url_free(&proxy);
	return r;
}
