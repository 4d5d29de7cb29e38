/* The replay server of chan_replay.h. */
#include "chan_replay.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Read one request: headers, then Content-Length bytes of body. */
static char *replay_read_request(int fd)
{
	size_t cap = 65536, len = 0;
	char *buf = calloc(1, cap + 1);
	cr_assert_not_null(buf);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 3000) <= 0)
			break;
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		size_t body = 0;
		char *cl = strcasestr(buf, "\r\nContent-Length:");
		if (cl && cl < end)
			body = strtoul(cl + 17, NULL, 10);
		if (len >= (size_t)(end + 4 - buf) + body || len == cap)
			break;
	}
	return buf;
}

static void *replay_main(void *arg)
{
	struct replay *r = arg;
	while (!r->stop) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		char *req = replay_read_request(c);
		pthread_mutex_lock(&r->lock);
		size_t i = r->n_requests++;
		if (i < REPLAY_MAX)
			r->requests[i] = req;
		else
			free(req);
		pthread_mutex_unlock(&r->lock);
		const char *resp = i < r->n_responses ? r->responses[i]
				   : r->repeat_last && r->n_responses ? r->responses[r->n_responses - 1]
								      : NULL;
		for (size_t off = 0, n = resp ? strlen(resp) : 0; off < n;) {
			ssize_t w = send(c, resp + off, n - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(c);
	}
	return NULL;
}

void replay_start(struct replay *r, const char *const *responses, size_t n, bool repeat_last)
{
	memset(r, 0, sizeof(*r));
	r->responses = responses;
	r->n_responses = n;
	r->repeat_last = repeat_last;
	pthread_mutex_init(&r->lock, NULL);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(r->fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	cr_assert_eq(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(r->fd, 8), 0);
	cr_assert_eq(getsockname(r->fd, (struct sockaddr *)&sa, &len), 0);
	r->port = ntohs(sa.sin_port);
	cr_assert_eq(pthread_create(&r->thread, NULL, replay_main, r), 0);
}

void replay_stop(struct replay *r)
{
	r->stop = true;
	pthread_join(r->thread, NULL);
	close(r->fd);
	for (size_t i = 0; i < r->n_requests && i < REPLAY_MAX; i++)
		free(r->requests[i]);
	pthread_mutex_destroy(&r->lock);
}

const char *replay_request(struct replay *r, size_t i)
{
	pthread_mutex_lock(&r->lock);
	const char *s = i < r->n_requests && i < REPLAY_MAX ? r->requests[i] : "";
	pthread_mutex_unlock(&r->lock);
	return s;
}

size_t replay_count(struct replay *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->n_requests;
	pthread_mutex_unlock(&r->lock);
	return n;
}
