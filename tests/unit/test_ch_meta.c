/* The metadata-service channels against recorded platform answers: what the
 * agent sent (method, path, headers) and what it made of the answers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_replay.h"
#include "channel.h"

#define CLOUD_CONFIG "#cloud-config\nqvsa:\n  perscode: \"12345678\"\n  platform_url: http://10.0.2.2:8080/\n"

static struct replay srv;

static struct agent_chan_env env_for(const struct replay *r)
{
	return (struct agent_chan_env){ .metadata_host = "127.0.0.1", .metadata_port = r->port,
					.wireserver_host = "127.0.0.1", .wireserver_port = r->port,
					.meta_pause_ms = 10, .console_fds = { -1, -1 } };
}

/* A 200 response carrying body, with its length. */
static char *ok(const char *body)
{
	return agent_printf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			    "Connection: close\r\n\r\n%s", strlen(body), body);
}

static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found";

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

Test(channel_ec2, imdsv2_token_then_user_data)
{
	char *token = ok("AQAEAFxtrWnQm8VeZ0cKd0hZ2fnOo5-oCgq3JJH8e3bDcuC_3uJ8Kw==\n");
	char *ud = ok(CLOUD_CONFIG);
	const char *const script[] = { token, ud };
	replay_start(&srv, script, 2, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_ec2(&env, NULL, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.user_data, CLOUD_CONFIG);
	cr_assert_eq(replay_count(&srv), 2);
	const char *put = replay_request(&srv, 0), *get = replay_request(&srv, 1);
	cr_assert(starts_with(put, "PUT /latest/api/token HTTP/1.1\r\n"), "%s", put);
	cr_assert(strstr(put, "\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"), "%s", put);
	cr_assert(strstr(put, "\r\nContent-Length: 0\r\n"), "%s", put);
	cr_assert(starts_with(get, "GET /latest/user-data HTTP/1.1\r\n"), "%s", get);
	cr_assert(strstr(get, "\r\nX-aws-ec2-metadata-token: AQAEAFxtrWnQm8VeZ0cKd0hZ2fnOo5-oCgq3JJH8e3bDcuC_3uJ8Kw==\r\n"),
		  "%s", get);
	cr_assert(strstr(get, "\r\nHost: 127.0.0.1:"), "%s", get);
	agent_delivery_free(&d);
	replay_stop(&srv);
	free(token);
	free(ud);
}

/* Never IMDSv1: a refused token ends the channel without a token-less GET. */
Test(channel_ec2, refused_token_never_falls_back)
{
	const char *const script[] = { "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
				       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad" };
	replay_start(&srv, script, 2, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_ec2(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "PUT /latest/api/token: answered HTTP 403"), "%s", agent_error());
	cr_assert_eq(replay_count(&srv), 1);
	for (size_t i = 0; i < replay_count(&srv); i++)
		cr_assert_not(starts_with(replay_request(&srv, i), "GET"), "a token-less GET was sent");
	replay_stop(&srv);
}

Test(channel_ec2, no_user_data_and_bad_token)
{
	char *token = ok("tok123");
	const char *const script[] = { token, not_found };
	replay_start(&srv, script, 2, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_ec2(&env, NULL, &d), 1, "404 is 'no user-data here': %s", agent_error());
	cr_assert_null(d.user_data);
	replay_stop(&srv);
	free(token);

	/* a token that would inject a header is refused */
	char *evil = ok("tok\r\nX-Evil: 1");
	const char *const script2[] = { evil };
	replay_start(&srv, script2, 1, false);
	env = env_for(&srv);
	cr_assert_eq(agent_ch_ec2(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "not a token"), "%s", agent_error());
	cr_assert_eq(replay_count(&srv), 1);
	replay_stop(&srv);
	free(evil);
}

Test(channel_gce, metadata_flavor_header)
{
	char *ud = ok("PERSCODE=12345678\n");
	const char *const script[] = { ud };
	replay_start(&srv, script, 1, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_gce(&env, NULL, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.user_data, "PERSCODE=12345678\n");
	const char *get = replay_request(&srv, 0);
	cr_assert(starts_with(get, "GET /computeMetadata/v1/instance/attributes/user-data HTTP/1.1\r\n"), "%s", get);
	cr_assert(strstr(get, "\r\nMetadata-Flavor: Google\r\n"), "%s", get);
	agent_delivery_free(&d);
	replay_stop(&srv);
	free(ud);
}

/* What GCE answers a request without the header: the channel fails, loudly. */
Test(channel_gce, forbidden_fails)
{
	const char *const script[] = { "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 40\r\n\r\n"
				       "Missing Metadata-Flavor:Google header.\r\n" };
	replay_start(&srv, script, 1, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_gce(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "answered HTTP 403"), "%s", agent_error());
	replay_stop(&srv);
}

Test(channel_oci, bearer_and_base64)
{
	char *b64 = agent_base64(CLOUD_CONFIG, strlen(CLOUD_CONFIG));
	char *body = agent_printf("%s\n", b64);
	char *resp = ok(body);
	const char *const script[] = { resp };
	replay_start(&srv, script, 1, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_oci(&env, NULL, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.user_data, CLOUD_CONFIG);
	const char *get = replay_request(&srv, 0);
	cr_assert(starts_with(get, "GET /opc/v2/instance/metadata/user_data HTTP/1.1\r\n"), "%s", get);
	cr_assert(strstr(get, "\r\nAuthorization: Bearer Oracle\r\n"), "%s", get);
	agent_delivery_free(&d);
	replay_stop(&srv);
	free(b64);
	free(body);
	free(resp);
}

Test(channel_oci, bad_base64)
{
	char *resp = ok("I2Nsb3VkLWNvbmZpZwo*bad*");
	const char *const script[] = { resp };
	replay_start(&srv, script, 1, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_oci(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "user_data: base64: malformed"), "%s", agent_error());
	replay_stop(&srv);
	free(resp);
}

Test(channel_openstack, user_data_missing_and_server_error)
{
	char *ud = ok(CLOUD_CONFIG);
	const char *const script[] = { ud, not_found,
				       "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!" };
	replay_start(&srv, script, 3, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_openstack(&env, NULL, &d), 0, "%s", agent_error());
	cr_assert_str_eq(d.user_data, CLOUD_CONFIG);
	agent_delivery_free(&d);
	cr_assert(starts_with(replay_request(&srv, 0), "GET /openstack/latest/user_data HTTP/1.1\r\n"));
	cr_assert(strstr(replay_request(&srv, 0), "\r\nConnection: close\r\n"));
	cr_assert_eq(agent_ch_openstack(&env, NULL, &d), 1);
	cr_assert_eq(agent_ch_openstack(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "GET /openstack/latest/user_data: answered HTTP 500"), "%s", agent_error());
	replay_stop(&srv);
	free(ud);
}

Test(channel_meta, redirect_loop_is_not_followed)
{
	const char *const script[] = { "HTTP/1.1 302 Found\r\nLocation: /openstack/latest/user_data\r\n"
				       "Content-Length: 0\r\n\r\n" };
	replay_start(&srv, script, 1, true);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_openstack(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "answered HTTP 302 (redirects are not followed)"), "%s", agent_error());
	cr_assert_eq(replay_count(&srv), 1);
	replay_stop(&srv);
}

Test(channel_meta, huge_bodies_are_refused)
{
	size_t big = (1u << 20) + 4096;
	char *body = malloc(big + 1);
	memset(body, 'A', big);
	body[big] = 0;
	/* with a length that says so, and delimited by the connection's close */
	char *with_len = ok(body);
	char *no_len = agent_printf("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s", body);
	const char *const script[] = { with_len, no_len };
	replay_start(&srv, script, 2, false);
	struct agent_chan_env env = env_for(&srv);
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_gce(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "Content-Length"), "%s", agent_error());
	cr_assert_eq(agent_ch_gce(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "larger than"), "%s", agent_error());
	cr_assert_null(d.user_data);
	replay_stop(&srv);
	free(body);
	free(with_len);
	free(no_len);
}

Test(channel_meta, nothing_listening_three_attempts)
{
	/* a port that was just free: connections are refused */
	replay_start(&srv, NULL, 0, false);
	uint16_t port = srv.port;
	replay_stop(&srv);
	struct agent_chan_env env = { .metadata_host = "127.0.0.1", .metadata_port = port, .meta_pause_ms = 10 };
	struct agent_delivery d = { 0 };
	cr_assert_eq(agent_ch_oci(&env, NULL, &d), -1);
	cr_assert(strstr(agent_error(), "gave up after 3 attempts"), "%s", agent_error());
}

Test(channel_meta, request_bytes)
{
	char *get = agent_meta_build("169.254.169.254", 80, "GET", "/latest/user-data", "X-A: b\r\n", NULL);
	cr_assert_str_eq(get, "GET /latest/user-data HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: qvsa-agent/1\r\n"
			      "Accept: */*\r\nConnection: close\r\nX-A: b\r\n\r\n");
	free(get);
	char *post = agent_meta_build("168.63.129.16", 8080, "POST", "/machine/?comp=health", NULL, "<x/>");
	cr_assert_str_eq(post, "POST /machine/?comp=health HTTP/1.1\r\nHost: 168.63.129.16:8080\r\n"
			       "User-Agent: qvsa-agent/1\r\nAccept: */*\r\nConnection: close\r\n"
			       "Content-Length: 4\r\n\r\n<x/>");
	free(post);
}
