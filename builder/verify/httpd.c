/* The verification HTTP server (httpd.h). An acceptor thread hands each
 * connection to a thread of its own (at most HTTPD_MAX_CONN at once), which
 * does the TLS handshake if any, reads one request, calls the handler,
 * answers and closes. Sockets are non-blocking and every wait polls the
 * connection and a wake pipe with a deadline, so a slow client costs only
 * its own thread and httpd_stop interrupts every wait at once. */
#include "httpd.h"
#include "httpd_parse.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "tlsca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HTTPD_MAX_CONN 32          /* connections served at once; more wait in the backlog */
#define HTTPD_DRAIN_MS 500         /* how long a closing connection's input is drained */
#define HTTPD_DEFAULT_HEADER (16 * 1024)
#define HTTPD_DEFAULT_BODY (64 * 1024)
#define HTTPD_DEFAULT_TIMEOUT_MS 10000

/* One connection thread's place in the server. */
struct httpd_slot {
	struct httpd *h;   /* the server (back pointer) */
	pthread_t thread;  /* the serving thread, valid while used */
	bool used;         /* a thread was started and not yet joined */
	bool done;         /* the thread has finished (under h->lock): join it */
	int fd;            /* the accepted connection, handed to the thread */
};

struct httpd {
	int listen_fd;             /* listening socket, owned, -1 if none */
	int wake[2];               /* [1] written once by httpd_stop; [0] polled by every wait; owned */
	pthread_t thread;          /* the acceptor, valid while running */
	bool running;              /* the acceptor was started and not yet joined */
	uint16_t port;             /* port actually bound */
	SSL_CTX *tls;              /* server context when serving TLS, owned, or NULL */
	httpd_handler handler;     /* from the config */
	httpd_refusal on_refusal;  /* from the config, may be NULL */
	void *opaque;              /* handed to handler and on_refusal, borrowed */
	size_t max_header;         /* header bytes accepted (defaults applied) */
	size_t max_body;           /* body bytes accepted */
	unsigned timeout_ms;       /* per connection, for the request and again for the answer */
	pthread_mutex_t lock;      /* guards slots[].done and stats */
	struct httpd_slot slots[HTTPD_MAX_CONN]; /* connection threads; used/fd only touched by the acceptor */
	struct httpd_stats stats;  /* counters for httpd_stats */
};

/* What conn_recv/conn_send/conn_wait return besides a byte count. */
enum { IO_EOF = 0, IO_ERR = -1, IO_TIMEOUT = -2, IO_STOP = -3, IO_TLS_FAILED = -4 };

/* One connection being served. */
struct conn {
	struct httpd *h;   /* the server */
	int fd;            /* the socket (non-blocking), owned */
	SSL *ssl;          /* TLS state once the handshake started, owned, or NULL */
	bool tls_up;       /* the handshake completed (close_notify is due) */
	int64_t deadline;  /* monotonic ms after which a wait gives up */
};

/* Everything a parsed request points into; freed after the answer. */
struct req_mem {
	char *head;                  /* header bytes, cut in place into the request's strings */
	struct httpd_head_mem parsed; /* what parsing the head allocated */
	char *body;                  /* the body, NUL-terminated */
};

static void req_mem_free(struct req_mem *m)
{
	free(m->head);
	httpd_head_mem_free(&m->parsed);
	free(m->body);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on the connection until its deadline; 1, IO_TIMEOUT, IO_STOP or IO_ERR. */
static int conn_wait(struct conn *c, short events)
{
	for (;;) {
		int64_t left = c->deadline - now_ms();
		if (left <= 0)
			return IO_TIMEOUT;
		struct pollfd p[2] = { { .fd = c->fd, .events = events },
				       { .fd = c->h->wake[0], .events = POLLIN } };
		int r = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return IO_ERR;
		if (p[1].revents)
			return IO_STOP;
		if (r > 0)
			return 1;
	}
}

/* After a TLS call failed with e: the event to wait for, or 0 if it really failed. */
static short tls_want(int e)
{
	return e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
}

/* Read up to len bytes: the count, IO_EOF, or another IO_ code. */
static ssize_t conn_recv(struct conn *c, char *buf, size_t len)
{
	for (;;) {
		short ev = POLLIN;
		if (c->ssl) {
			ERR_clear_error();
			int n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
			if (n > 0)
				return n;
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_ZERO_RETURN)
				return IO_EOF;
			if (!(ev = tls_want(e)))
				return IO_ERR;
		} else {
			ssize_t n = recv(c->fd, buf, len, 0);
			if (n >= 0)
				return n;
			if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return IO_ERR;
		}
		int w = conn_wait(c, ev);
		if (w < 0)
			return w;
	}
}

/* Write all of data: 0 or an IO_ code. */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	while (len > 0) {
		short ev = POLLOUT;
		ssize_t n;
		if (c->ssl) {
			ERR_clear_error();
			n = SSL_write(c->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
			if (n <= 0 && !(ev = tls_want(SSL_get_error(c->ssl, (int)n))))
				return IO_ERR;
		} else {
			n = send(c->fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return IO_ERR;
		}
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else {
			int w = conn_wait(c, ev);
			if (w < 0)
				return w;
		}
	}
	return 0;
}

/* The TLS handshake: 0, IO_TLS_FAILED with why set, or another IO_ code for
 * a connection that went away (or a stop) before the client sent anything,
 * which is not a TLS failure (a port probe, say). */
static int conn_handshake(struct conn *c, char *why, size_t why_len)
{
	for (;;) {
		int w = conn_wait(c, POLLIN);
		if (w < 0)
			return w;
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
		if (n == 0)
			return IO_EOF;
		if (n > 0)
			break;
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return IO_ERR;
	}
	c->ssl = SSL_new(c->h->tls);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		tlsca_openssl_error(why, why_len);
		return IO_TLS_FAILED;
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = SSL_accept(c->ssl);
		if (r == 1) {
			c->tls_up = true;
			return 0;
		}
		int e = SSL_get_error(c->ssl, r), saved = errno;
		short ev = tls_want(e);
		if (!ev) {
			if (ERR_peek_error())
				tlsca_openssl_error(why, why_len);
			else if (e == SSL_ERROR_SYSCALL && saved)
				snprintf(why, why_len, "%s", strerror(saved));
			else
				snprintf(why, why_len, "connection closed during the handshake");
			return IO_TLS_FAILED;
		}
		int w = conn_wait(c, ev);
		if (w == IO_STOP)
			return w;
		if (w < 0) {
			snprintf(why, why_len, w == IO_TIMEOUT ? "handshake timed out" : "poll failed");
			return IO_TLS_FAILED;
		}
	}
}

/* Say goodbye and close. The input is drained briefly after our FIN so
 * that unread request bytes do not turn the close into a reset that
 * destroys the answer before the client has read it. */
static void conn_close(struct conn *c)
{
	if (c->ssl && c->tls_up)
		SSL_shutdown(c->ssl); /* one close_notify, not waiting for the peer's */
	SSL_free(c->ssl);
	c->ssl = NULL;
	shutdown(c->fd, SHUT_WR);
	c->deadline = now_ms() + HTTPD_DRAIN_MS;
	char buf[4096];
	while (conn_recv(c, buf, sizeof(buf)) > 0)
		;
	close(c->fd);
	c->fd = -1;
}

/* Read and parse one request: 0; an HTTP status to answer with (why set);
 * or -1 when there is nobody to answer (stop, reset, closed before a byte). */
static int read_request(struct conn *c, struct httpd_request *rq, struct req_mem *m, const char **why)
{
	struct httpd *h = c->h;
	m->head = malloc(h->max_header + 1);
	if (!m->head)
		abort();
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		if (len >= h->max_header) {
			*why = "request headers too large";
			return 431;
		}
		ssize_t n = conn_recv(c, m->head + len, h->max_header - len);
		if (n == IO_TIMEOUT) {
			*why = "timed out reading the request";
			return 408;
		}
		if (n == IO_EOF && len > 0) {
			*why = "connection closed before the request was complete";
			return 400;
		}
		if (n <= 0)
			return -1;
		size_t from = len > 3 ? len - 3 : 0;
		len += (size_t)n;
		m->head[len] = 0;
		end = memmem(m->head + from, len - from, "\r\n\r\n", 4);
	}
	*end = 0;
	if (memchr(m->head, 0, (size_t)(end - m->head))) {
		*why = "NUL byte in the request headers";
		return 400;
	}
	int st = httpd_parse_head(m->head, rq, &m->parsed, why);
	unsigned long long cl = 0;
	if (st == 0)
		st = httpd_body_length(rq, &cl, why);
	if (st != 0)
		return st;
	if (cl > h->max_body) {
		*why = "request body too large";
		return 413;
	}
	size_t have = len - (size_t)(end + 4 - m->head);
	have = have > cl ? (size_t)cl : have;
	m->body = malloc((size_t)cl + 1);
	if (!m->body)
		abort();
	memcpy(m->body, end + 4, have);
	const char *expect = httpd_header(rq, "Expect");
	if (have < cl && expect && strcasecmp(expect, "100-continue") == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_send(c, cont, sizeof(cont) - 1) < 0)
			return -1;
	}
	while (have < cl) {
		ssize_t n = conn_recv(c, m->body + have, (size_t)cl - have);
		if (n == IO_TIMEOUT) {
			*why = "timed out reading the request body";
			return 408;
		}
		if (n == IO_EOF) {
			*why = "connection closed before the body was complete";
			return 400;
		}
		if (n < 0)
			return -1;
		have += (size_t)n;
	}
	m->body[cl] = 0;
	rq->body = m->body;
	rq->body_len = (size_t)cl;
	return 0;
}

static void send_response(struct conn *c, const char *method, struct httpd_response *r)
{
	r->extra_headers[sizeof(r->extra_headers) - 1] = 0;
	int status = r->status >= 100 && r->status <= 999 ? r->status : 500;
	const char *type = r->content_type && !strpbrk(r->content_type, "\r\n") ? r->content_type : "text/plain";
	size_t len = r->body ? r->body_len : 0;
	_cleanup_free_ char *head = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
					      "Connection: close\r\n%s\r\n",
					      status, httpd_status_text(status), type, len, r->extra_headers);
	c->deadline = now_ms() + c->h->timeout_ms;
	if (conn_send(c, head, strlen(head)) == 0 && len > 0 && !(method && strcmp(method, "HEAD") == 0))
		conn_send(c, r->body, len);
}

static void serve(struct conn *c)
{
	struct httpd *h = c->h;
	if (h->tls) {
		char why[sizeof(h->stats.tls_error)];
		int r = conn_handshake(c, why, sizeof(why));
		if (r == IO_TLS_FAILED) {
			pthread_mutex_lock(&h->lock);
			h->stats.tls_failures++;
			memcpy(h->stats.tls_error, why, sizeof(why));
			pthread_mutex_unlock(&h->lock);
		}
		if (r != 0)
			return;
	}
	struct httpd_request rq = { .query = "", .body = "" };
	struct req_mem m = { 0 };
	const char *why = NULL;
	int st = read_request(c, &rq, &m, &why);
	struct httpd_response resp;
	memset(&resp, 0, sizeof(resp));
	if (st > 0) {
		pthread_mutex_lock(&h->lock);
		h->stats.refused++;
		pthread_mutex_unlock(&h->lock);
		if (h->on_refusal)
			h->on_refusal(h->opaque, rq.method ? &rq : NULL, st, why);
		resp.status = st;
		resp.body = xasprintf("REASON=%s\n", why);
		resp.body_len = strlen(resp.body);
	} else if (st == 0) {
		pthread_mutex_lock(&h->lock);
		h->stats.requests++;
		pthread_mutex_unlock(&h->lock);
		h->handler(h->opaque, &rq, &resp);
	}
	if (st >= 0)
		send_response(c, rq.method, &resp);
	free(resp.body);
	req_mem_free(&m);
}

static void *conn_thread(void *arg)
{
	struct httpd_slot *slot = arg;
	struct httpd *h = slot->h;
	struct conn c = { .h = h, .fd = slot->fd, .deadline = now_ms() + h->timeout_ms };
	serve(&c);
	conn_close(&c);
	pthread_mutex_lock(&h->lock);
	slot->done = true;
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Join finished connection threads; the first free slot, or NULL. */
static struct httpd_slot *reap(struct httpd *h)
{
	struct httpd_slot *free_slot = NULL;
	for (size_t i = 0; i < HTTPD_MAX_CONN; i++) {
		struct httpd_slot *s = &h->slots[i];
		pthread_mutex_lock(&h->lock);
		bool done = s->done;
		pthread_mutex_unlock(&h->lock);
		if (s->used && done) {
			pthread_join(s->thread, NULL);
			s->used = false;
		}
		if (!s->used && !free_slot)
			free_slot = s;
	}
	return free_slot;
}

static void *accept_thread(void *arg)
{
	struct httpd *h = arg;
	for (;;) {
		struct httpd_slot *slot = reap(h);
		/* all slots busy: leave new clients in the backlog and look again soon */
		struct pollfd p[2] = { { .fd = h->wake[0], .events = POLLIN },
				       { .fd = slot ? h->listen_fd : -1, .events = POLLIN } };
		int r = poll(p, 2, slot ? -1 : 50);
		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (r <= 0 || !slot)
			continue;
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
				poll(p, 1, 100); /* out of descriptors: do not spin */
			continue;
		}
		*slot = (struct httpd_slot){ .h = h, .fd = fd, .used = true };
		if (pthread_create(&slot->thread, NULL, conn_thread, slot) != 0) {
			close(fd);
			slot->used = false;
			continue;
		}
		pthread_mutex_lock(&h->lock);
		h->stats.connections++;
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

/* A PEM password callback that refuses, so an encrypted key fails instead of prompting. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static void bio_freep(BIO **b) { BIO_free(*b); }
static void x509_freep(X509 **x) { X509_free(*x); }
static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }
static void ctx_freep(SSL_CTX **c) { SSL_CTX_free(*c); }

/* A TLS 1.2+ server context from the PEM chain and key, all in memory. */
static int tls_context(const char *cert_pem, const char *key_pem, SSL_CTX **ret)
{
	char why[256];
	ERR_clear_error();
	_cleanup_(ctx_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return err_fail("starting HTTPS server: TLS context: %s", tlsca_openssl_error(why, sizeof(why)));
	/* one request per connection: nothing to resume or renegotiate */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

	_cleanup_(bio_freep) BIO *cb = BIO_new_mem_buf(cert_pem, -1);
	_cleanup_(x509_freep) X509 *leaf = cb ? PEM_read_bio_X509(cb, NULL, no_password, NULL) : NULL;
	if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1)
		return err_input("starting HTTPS server: certificate: %s", tlsca_openssl_error(why, sizeof(why)));
	for (X509 *x; (x = PEM_read_bio_X509(cb, NULL, no_password, NULL));)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			return err_input("starting HTTPS server: chain certificate: %s",
					 tlsca_openssl_error(why, sizeof(why)));
		}
	ERR_clear_error(); /* the read that ended the chain */

	_cleanup_(bio_freep) BIO *kb = BIO_new_mem_buf(key_pem, -1);
	_cleanup_(pkey_freep) EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_password, NULL) : NULL;
	if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		return err_input("starting HTTPS server: private key: %s", tlsca_openssl_error(why, sizeof(why)));
	*ret = TAKE_PTR(ctx);
	return 0;
}

static int httpd_bind(struct httpd *h, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	} else {
		return err_input("starting HTTP server '%s': not an IP address", addr);
	}
	h->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->listen_fd < 0)
		return err_errno(errno, "starting HTTP server '%s'", addr);
	int one = 1;
	setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->listen_fd, (struct sockaddr *)&ss, len) < 0)
		return err_errno(errno, "starting HTTP server '%s' port %u", addr, port);
	if (listen(h->listen_fd, 64) < 0 || getsockname(h->listen_fd, (struct sockaddr *)&ss, &len) < 0)
		return err_errno(errno, "starting HTTP server '%s'", addr);
	h->port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
	return 0;
}

int httpd_start(const struct httpd_config *c, struct httpd **ret)
{
	if (!c->handler)
		return err_input("starting HTTP server: no handler");
	if (!c->cert_pem != !c->key_pem)
		return err_input("starting HTTPS server: a certificate needs its key and a key its certificate");
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h)
		return err_errno(ENOMEM, "starting HTTP server");
	h->listen_fd = h->wake[0] = h->wake[1] = -1;
	pthread_mutex_init(&h->lock, NULL);
	h->handler = c->handler;
	h->on_refusal = c->on_refusal;
	h->opaque = c->opaque;
	h->max_header = c->max_header ? c->max_header : HTTPD_DEFAULT_HEADER;
	h->max_body = c->max_body ? c->max_body : HTTPD_DEFAULT_BODY;
	h->timeout_ms = c->timeout_ms ? c->timeout_ms : HTTPD_DEFAULT_TIMEOUT_MS;
	int r = c->cert_pem ? tls_context(c->cert_pem, c->key_pem, &h->tls) : 0;
	if (r == 0 && pipe2(h->wake, O_CLOEXEC) < 0)
		r = err_errno(errno, "starting HTTP server");
	if (r == 0)
		r = httpd_bind(h, c->bind_addr ? c->bind_addr : "127.0.0.1", c->port);
	if (r == 0) {
		/* a peer that closes early must give EPIPE, not kill the process:
		 * OpenSSL writes with write(2), so SIGPIPE is blocked in the
		 * acceptor and the connection threads it creates */
		sigset_t pipe_set, old;
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
		int e = pthread_create(&h->thread, NULL, accept_thread, h);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e != 0)
			r = err_errno(e, "starting HTTP server thread");
	}
	if (r != 0) {
		httpd_stop(h);
		return -1;
	}
	h->running = true;
	*ret = h;
	return 0;
}

uint16_t httpd_port(const struct httpd *h) { return h->port; }

void httpd_stats(const struct httpd *h, struct httpd_stats *ret)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&h->lock; /* const to callers, not to the lock */
	pthread_mutex_lock(lock);
	*ret = h->stats;
	pthread_mutex_unlock(lock);
}

unsigned httpd_tls_failures(const struct httpd *h)
{
	struct httpd_stats st;
	httpd_stats(h, &st);
	return st.tls_failures;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (h->running) {
		/* never read: the pipe stays readable, so every wait sees it */
		ssize_t w;
		do
			w = write(h->wake[1], "x", 1);
		while (w < 0 && errno == EINTR);
		pthread_join(h->thread, NULL);
		for (size_t i = 0; i < HTTPD_MAX_CONN; i++)
			if (h->slots[i].used)
				pthread_join(h->slots[i].thread, NULL);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	for (int i = 0; i < 2; i++)
		if (h->wake[i] >= 0)
			close(h->wake[i]);
	SSL_CTX_free(h->tls);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
