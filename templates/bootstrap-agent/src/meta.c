/* The metadata-service client the network channels share (docs/channels.md,
 * "Metadata requests"): plain HTTP to a link-local address, short connect
 * timeout, a few attempts for connection failures, redirects refused, bodies
 * capped at 1 MiB (by agent_http_exchange). */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGENT_META_TIMEOUT_MS 2000
#define AGENT_META_ATTEMPTS 3

char *agent_meta_build(const char *host, uint16_t port, const char *method, const char *path,
		       const char *headers, const char *body)
{
	struct agent_buf b = { 0 };
	agent_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s", method, path, host);
	if (port != 80)
		agent_buf_printf(&b, ":%u", port);
	agent_buf_puts(&b, "\r\nUser-Agent: qvsa-agent/1\r\nAccept: */*\r\nConnection: close\r\n");
	if (headers)
		agent_buf_puts(&b, headers);
	/* a PUT or POST says how long its (possibly empty) body is */
	if (body || strcmp(method, "GET") != 0)
		agent_buf_printf(&b, "Content-Length: %zu\r\n", body ? strlen(body) : 0);
	agent_buf_puts(&b, "\r\n");
	if (body)
		agent_buf_puts(&b, body);
	return agent_buf_steal(&b);
}

int agent_meta_request(const struct agent_chan_env *env, const char *host, uint16_t port,
		       const char *method, const char *path, const char *headers, const char *body,
		       int *ret_status, char **ret_body)
{
	char *req = agent_meta_build(host, port, method, path, headers, body);
	int status = 0, r = -EAGAIN;
	char *resp = NULL;
	for (int attempt = 1; attempt <= AGENT_META_ATTEMPTS && r == -EAGAIN; attempt++) {
		if (attempt > 1) {
			fprintf(stderr, "qvsa-agent: %s; retrying\n", agent_error());
			if (env->meta_pause_ms > 0)
				usleep((useconds_t)env->meta_pause_ms * 1000);
		}
		r = agent_http_exchange(host, port, req, AGENT_META_TIMEOUT_MS, &status, &resp);
	}
	explicit_bzero(req, strlen(req));
	free(req);
	if (r < 0) {
		char last[512];
		snprintf(last, sizeof(last), "%s", agent_error());
		return agent_fail("%s %s: %s%s", method, path, last,
				  r == -EAGAIN ? " (gave up after 3 attempts)" : "");
	}
	if (status >= 300 && status < 400) {
		free(resp);
		return agent_fail("%s %s: answered HTTP %d (redirects are not followed)", method, path, status);
	}
	*ret_status = status;
	*ret_body = resp;
	return 0;
}
