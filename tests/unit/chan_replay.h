/* A loopback HTTP server for the agent's channel tests: it answers each
 * connection with the next recorded platform response and keeps the
 * requests the agent sent, so tests assert both sides without a VM. */
#ifndef QVSA_TEST_CHAN_REPLAY_H
#define QVSA_TEST_CHAN_REPLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_MAX 16

/* One running replay server. */
struct replay {
	int fd;                       /* listening socket on 127.0.0.1 */
	uint16_t port;                /* its port */
	pthread_t thread;             /* the accept loop */
	const char *const *responses; /* borrowed raw HTTP responses, served in order */
	size_t n_responses;           /* how many */
	bool repeat_last;             /* after the list, keep serving the last one */
	pthread_mutex_t lock;         /* guards what follows */
	size_t n_requests;            /* requests seen */
	char *requests[REPLAY_MAX];   /* owned raw requests (headers and body) */
	volatile bool stop;           /* replay_stop was called */
};

/* Start serving responses[0..n) (NULL-safe for n == 0). */
void replay_start(struct replay *r, const char *const *responses, size_t n, bool repeat_last);
/* Stop the server and free what it recorded. */
void replay_stop(struct replay *r);
/* Request i as recorded ("" if there was none). */
const char *replay_request(struct replay *r, size_t i);
size_t replay_count(struct replay *r);

#endif
