/* The platform stub: plays the qVSA platform's personalization endpoint for
 * verification (protocol in docs/personalization.md). One thread serves one
 * connection at a time; a pipe wakes it up to stop. What the appliance sent
 * is kept under a mutex for the verifier to inspect. */
#include "stub.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STUB_MAX_HEADER (16 * 1024)
#define STUB_MAX_BODY (64 * 1024)
#define STUB_CONN_TIMEOUT_MS 10000

static const char stub_endpoint[] = "qvsa/v1/personalize";
/* The deterministic test set served when the caller gives none. */
static const char *const stub_default_components[] = {
	"ML=3.1.0", "VULNSIGS=2.6.18-1", "TAGGER=1.4.2", "SCAND=12.9.5", NULL,
};

struct stub {
	int listen_fd;          /* listening socket, owned */
	int stop_pipe[2];       /* [1] written by stub_stop to wake the thread; both owned */
	pthread_t thread;       /* the serving thread, valid when running */
	bool running;           /* thread was started and not yet joined */
	uint16_t port;          /* port actually bound */
	char *expected_code;    /* the one accepted code, owned */
	char **components;      /* served "NAME=VERSION" list, NULL-terminated, owned */
	pthread_mutex_t lock;   /* guards everything below */
	unsigned requests;      /* personalization requests seen */
	char *code;             /* last code received, owned, or NULL */
	char *version;          /* last bootstrap_version received, owned, or NULL */
	char *arch;             /* last arch received, owned, or NULL */
	char *reason;           /* why the last request was rejected, owned, or NULL */
	bool accepted;          /* last request got the components */
	char *snap[4];          /* copies handed out by the last stub_report, owned */
};

/* What one request carried, after parsing. */
struct stub_request {
	char method[16];   /* "POST", ... */
	char *target;      /* request target as sent, owned */
	char *body;        /* body bytes, NUL-terminated, owned */
	size_t body_len;   /* body length */
};

static void stub_request_clear(struct stub_request *r)
{
	free(r->target);
	free(r->body);
	*r = (struct stub_request){ 0 };
}

static int stub_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Wait for data on fd until the deadline; -1 on timeout or a stop request. */
static int stub_wait(struct stub *s, int fd, int deadline_ms)
{
	for (;;) {
		int left = deadline_ms - stub_now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = s->stop_pipe[0], .events = POLLIN } };
		int r = poll(p, 2, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (p[1].revents & POLLIN))
			return -1;
		return 0;
	}
}

/* Read headers and the Content-Length body. Returns 0, or an HTTP status
 * (400, 408, 413, 431) to answer with, having set *ret_why. */
static int stub_read_request(struct stub *s, int fd, struct stub_request *req, const char **ret_why)
{
	_cleanup_free_ char *buf = malloc(STUB_MAX_HEADER + STUB_MAX_BODY + 1);
	if (!buf) {
		*ret_why = "out of memory";
		return 500;
	}
	size_t len = 0, need = 0;
	char *body = NULL;
	int deadline = stub_now_ms() + STUB_CONN_TIMEOUT_MS;
	for (;;) {
		if (body && len >= need)
			break;
		size_t cap = body ? need : STUB_MAX_HEADER;
		if (len >= cap) {
			*ret_why = "request headers too large";
			return 431;
		}
		if (stub_wait(s, fd, deadline) < 0) {
			*ret_why = "timed out reading the request";
			return 408;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*ret_why = "connection closed before the request was complete";
			return 400;
		}
		len += (size_t)r;
		buf[len] = 0;
		if (body)
			continue;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		body = end + 4;
		*end = 0;
		char target[2048];
		if (sscanf(buf, "%15s %2047s HTTP/1.%*c", req->method, target) != 2) {
			*ret_why = "malformed request line";
			return 400;
		}
		req->target = xstrdup(target);
		unsigned long cl = 0;
		for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
			if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
				char *e;
				cl = strtoul(h + 17, &e, 10);
				if (e == h + 17 || (*e && *e != '\r' && *e != ' ')) {
					*ret_why = "bad Content-Length";
					return 400;
				}
			} else if (strncasecmp(h + 2, "Transfer-Encoding:", 18) == 0) {
				*ret_why = "chunked requests are not supported";
				return 411;
			}
		}
		if (cl > STUB_MAX_BODY) {
			*ret_why = "request body too large";
			return 413;
		}
		/* move the body to the front of buf's body area, bytes so far included */
		size_t have = (size_t)(buf + len - body);
		memmove(buf, body, have);
		len = have > cl ? cl : have;
		body = buf;
		need = cl;
	}
	req->body = strndup(buf, need);
	if (!req->body)
		abort();
	req->body_len = need;
	return 0;
}

/* Decode one JSON string at *p (after the opening quote); NULL if malformed. */
static char *stub_json_string(const char **p)
{
	const char *s = *p;
	_cleanup_free_ char *out = malloc(strlen(s) + 1);
	if (!out)
		abort();
	size_t n = 0;
	for (; *s && *s != '"'; s++) {
		if ((unsigned char)*s < 0x20)
			return NULL;
		if (*s != '\\') {
			out[n++] = *s;
			continue;
		}
		s++;
		switch (*s) {
		case '"': case '\\': case '/': out[n++] = *s; break;
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'r': out[n++] = '\r'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'u': {
			char hex[5] = { 0 }, *e;
			if (strnlen(s + 1, 4) < 4)
				return NULL;
			memcpy(hex, s + 1, 4);
			unsigned long v = strtoul(hex, &e, 16);
			/* the fields we read are ASCII; anything else is kept as '?' */
			if (*e || v == 0)
				return NULL;
			out[n++] = v < 0x80 ? (char)v : '?';
			s += 4;
			break;
		}
		default:
			return NULL;
		}
	}
	if (*s != '"')
		return NULL;
	out[n] = 0;
	*p = s + 1;
	return TAKE_PTR(out);
}

/* Skip any JSON value at *p (nested containers included); -1 if malformed. */
static int stub_json_skip(const char **p)
{
	const char *s = *p;
	int depth = 0;
	do {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == ',' || *s == ':')
			s++;
		if (*s == '"') {
			s++;
			char *str = stub_json_string(&s);
			if (!str)
				return -1;
			free(str);
		} else if (*s == '{' || *s == '[') {
			depth++;
			s++;
		} else if (*s == '}' || *s == ']') {
			if (depth == 0)
				return -1;
			depth--;
			s++;
		} else if (*s) {
			size_t n = strcspn(s, ",}] \t\r\n");
			if (n == 0)
				return -1;
			s += n;
		} else {
			return -1;
		}
	} while (depth > 0);
	*p = s;
	return 0;
}

/* The string (or number) fields perscode, bootstrap_version, arch of a flat
 * JSON object; unknown members are skipped. 0, or -1 with *ret_why. */
static int stub_json_fields(const char *body, char *ret[3], const char **ret_why)
{
	static const char *const names[3] = { "perscode", "bootstrap_version", "arch" };
	const char *s = body + strspn(body, " \t\r\n");
	*ret_why = "malformed request: body is not a JSON object";
	if (*s++ != '{')
		return -1;
	for (;;) {
		s += strspn(s, " \t\r\n");
		if (*s == '}')
			break;
		if (*s++ != '"')
			return -1;
		_cleanup_free_ char *key = stub_json_string(&s);
		if (!key)
			return -1;
		s += strspn(s, " \t\r\n");
		if (*s++ != ':')
			return -1;
		s += strspn(s, " \t\r\n");
		int idx = -1;
		for (int i = 0; i < 3; i++)
			if (strcmp(key, names[i]) == 0)
				idx = i;
		if (idx >= 0 && *s == '"') {
			s++;
			char *v = stub_json_string(&s);
			if (!v)
				return -1;
			free(ret[idx]);
			ret[idx] = v;
		} else if (idx >= 0 && *s >= '0' && *s <= '9') {
			size_t n = strspn(s, "0123456789");
			free(ret[idx]);
			ret[idx] = strndup(s, n);
			s += n;
		} else if (stub_json_skip(&s) < 0) {
			return -1;
		}
		s += strspn(s, " \t\r\n");
		if (*s == ',')
			s++;
		else if (*s != '}')
			return -1;
	}
	s++;
	if (s[strspn(s, " \t\r\n")] != 0)
		return -1;
	if (!ret[0]) {
		*ret_why = "malformed request: no perscode";
		return -1;
	}
	return 0;
}

/* Any prefix is fine as long as the path ends in the endpoint's segments. */
static bool stub_is_endpoint(const char *target)
{
	const char *path = target;
	if (strncasecmp(path, "http://", 7) == 0)
		path = strchr(path + 7, '/') ? strchr(path + 7, '/') : "";
	size_t n = strcspn(path, "?#"), e = sizeof(stub_endpoint) - 1;
	return n >= e + 1 && strncmp(path + n - e, stub_endpoint, e) == 0 && path[n - e - 1] == '/';
}

static void stub_send(int fd, int status, const char *body)
{
	const char *text = status == 200 ? "OK" : status == 400 ? "Bad Request" :
			   status == 403 ? "Forbidden" : status == 404 ? "Not Found" :
			   status == 405 ? "Method Not Allowed" : status == 408 ? "Request Timeout" :
			   status == 411 ? "Length Required" : status == 413 ? "Payload Too Large" :
			   status == 431 ? "Request Header Fields Too Large" : "Internal Server Error";
	_cleanup_free_ char *msg = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
					     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
					     status, text, strlen(body), body);
	for (size_t off = 0, len = strlen(msg); off < len;) {
		ssize_t w = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* Record one personalization request; takes ownership of the strings. */
static void stub_note(struct stub *s, char *code, char *version, char *arch, bool accepted,
		      const char *reason)
{
	pthread_mutex_lock(&s->lock);
	s->requests++;
	free(s->code);
	free(s->version);
	free(s->arch);
	free(s->reason);
	s->code = code;
	s->version = version;
	s->arch = arch;
	s->accepted = accepted;
	s->reason = reason ? xstrdup(reason) : NULL;
	pthread_mutex_unlock(&s->lock);
}

static void stub_serve(struct stub *s, int fd)
{
	struct stub_request req = { 0 };
	const char *why = NULL;
	int status = stub_read_request(s, fd, &req, &why);
	bool endpoint = req.target && stub_is_endpoint(req.target);
	if (req.target && !endpoint) {
		status = 404;
		why = "no such endpoint";
	} else if (endpoint && strcmp(req.method, "POST") != 0) {
		status = 405;
		why = "use POST";
	} else if (endpoint) {
		/* a personalization request, malformed or not: it gets recorded */
		char *f[3] = { NULL, NULL, NULL };
		if (status == 0 && strlen(req.body) != req.body_len) {
			status = 400;
			why = "malformed request: NUL byte in body";
		} else if (status == 0 && stub_json_fields(req.body, f, &why) < 0) {
			status = 400;
		} else if (status == 0 && strcmp(f[0], s->expected_code) != 0) {
			status = 403;
			why = "unknown personalization code";
		}
		stub_note(s, f[0], f[1], f[2], status == 0, status == 0 ? NULL : why);
	}
	if (status == 0) {
		_cleanup_free_ char *body = NULL;
		size_t len = 0;
		for (char **c = s->components; *c; c++)
			len += strlen(*c) + 1;
		body = malloc(len + 1);
		if (!body)
			abort();
		body[0] = 0;
		for (char **c = s->components; *c; c++)
			strcat(strcat(body, *c), "\n");
		stub_send(fd, 200, body);
	} else {
		_cleanup_free_ char *body = xasprintf("REASON=%s\n", why);
		stub_send(fd, status, body);
	}
	stub_request_clear(&req);
}

static void *stub_thread(void *arg)
{
	struct stub *s = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN },
				       { .fd = s->stop_pipe[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		_cleanup_close_ int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* a client that never reads must not wedge the stub */
		struct timeval tv = { .tv_sec = STUB_CONN_TIMEOUT_MS / 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		stub_serve(s, fd);
		shutdown(fd, SHUT_WR);
	}
	return NULL;
}

static int stub_bind(struct stub *s, const char *addr, uint16_t port)
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
		return err_input("starting platform stub '%s': not an IP address", addr);
	}
	s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return err_errno(errno, "starting platform stub '%s'", addr);
	int one = 1;
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->listen_fd, (struct sockaddr *)&ss, len) < 0)
		return err_errno(errno, "starting platform stub '%s' port %u", addr, port);
	if (listen(s->listen_fd, 16) < 0)
		return err_errno(errno, "starting platform stub '%s'", addr);
	if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) < 0)
		return err_errno(errno, "starting platform stub '%s'", addr);
	s->port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
	return 0;
}

int stub_start(const struct stub_config *cfg, struct stub **ret)
{
	if (!cfg->expected_code || !*cfg->expected_code)
		return err_input("starting platform stub: no expected personalization code");
	const char *const *comps = cfg->components ? cfg->components : stub_default_components;
	size_t n = 0;
	for (; comps[n]; n++)
		if (!strchr(comps[n], '=') || strpbrk(comps[n], "\r\n"))
			return err_input("starting platform stub: component '%s' is not NAME=VERSION",
					 comps[n]);
	struct stub *s = calloc(1, sizeof(*s));
	if (!s)
		return err_errno(ENOMEM, "starting platform stub");
	s->listen_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->expected_code = xstrdup(cfg->expected_code);
	s->components = calloc(n + 1, sizeof(char *));
	if (!s->components)
		abort();
	for (size_t i = 0; i < n; i++)
		s->components[i] = xstrdup(comps[i]);
	const char *addr = cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
	int r;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
		r = err_errno(errno, "starting platform stub");
	else
		r = stub_bind(s, addr, cfg->port);
	if (r == 0 && (r = pthread_create(&s->thread, NULL, stub_thread, s)) != 0)
		r = err_errno(r, "starting platform stub thread");
	if (r != 0) {
		stub_stop(s);
		return -1;
	}
	s->running = true;
	*ret = s;
	return 0;
}

uint16_t stub_port(const struct stub *s) { return s->port; }

static const char *stub_snap(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? xstrdup(v) : NULL;
	return *slot;
}

void stub_report(struct stub *s, struct stub_report *ret)
{
	pthread_mutex_lock(&s->lock);
	*ret = (struct stub_report){
		.requests = s->requests,
		.code = stub_snap(&s->snap[0], s->code),
		.version = stub_snap(&s->snap[1], s->version),
		.arch = stub_snap(&s->snap[2], s->arch),
		.accepted = s->accepted,
		.reason = stub_snap(&s->snap[3], s->reason),
	};
	pthread_mutex_unlock(&s->lock);
}

const char *const *stub_components(const struct stub *s) { return (const char *const *)s->components; }

void stub_stop(struct stub *s)
{
	if (!s)
		return;
	if (s->running) {
		ssize_t w;
		do
			w = write(s->stop_pipe[1], "x", 1);
		while (w < 0 && errno == EINTR);
		pthread_join(s->thread, NULL);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->expected_code);
	if (s->components)
		cleanup_strvp(&s->components);
	free(s->code);
	free(s->version);
	free(s->arch);
	free(s->reason);
	for (size_t i = 0; i < ELEMENTSOF(s->snap); i++)
		free(s->snap[i]);
	free(s);
}
