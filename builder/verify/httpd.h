/* A small threaded HTTP/1.1 server for verification: the qVSA platform stub
 * and every cloud's metadata emulator run on it. Plain HTTP or TLS
 * (OpenSSL), one request per connection (Connection: close), bounded
 * header and body sizes, a per-connection timeout. Bound to a loopback
 * address; the guest reaches it through QEMU's user network. */
#ifndef QVSA_HTTPD_H
#define QVSA_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

struct httpd;

/* One request header line. */
struct httpd_field {
	const char *name;  /* as sent */
	const char *value; /* leading and trailing blanks removed */
};

/* One parsed request, valid for the handler call only. */
struct httpd_request {
	const char *method; /* "GET", "PUT", "POST", ... */
	const char *target; /* request target as sent (origin or absolute form) */
	const char *path;   /* its path, "%XX" left as sent, without the query */
	const char *query;  /* text after '?', or "" */
	const char *body;   /* NUL-terminated body (may hold NULs before body_len) */
	size_t body_len;    /* body bytes */
	const struct httpd_field *headers; /* in the order sent */
	size_t n_headers;   /* entries in headers */
};

/* Value of the first header called name (case-insensitive), or NULL.
 * Inline so that handlers can be unit-tested without a server. */
static inline const char *httpd_header(const struct httpd_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->n_headers; i++)
		if (strcasecmp(rq->headers[i].name, name) == 0)
			return rq->headers[i].value;
	return NULL;
}

/* What a handler answers. The server sends Content-Length and
 * Connection: close itself (and no body for HEAD). */
struct httpd_response {
	int status;                /* HTTP status; 0 is taken as 500 */
	const char *content_type;  /* NULL: text/plain */
	char *body;                /* malloc'ed body, freed by the server; NULL: empty */
	size_t body_len;           /* body bytes */
	char extra_headers[256];   /* further header lines, each ending in "\r\n" (e.g. "Metadata-Flavor: Google\r\n") */
};

/* Called in a server thread for every complete request. resp is zeroed.
 * Connections are served concurrently, one thread each, so a handler that
 * keeps state across requests must lock it itself. */
typedef void (*httpd_handler)(void *opaque, const struct httpd_request *rq, struct httpd_response *resp);

/* Told (in a server thread) of a request the server answered itself with
 * status (400, 408, 411, 413, 431) and reason why, before any handler call.
 * rq is NULL when the request line was not read; otherwise method, target,
 * path, query and headers are set and the body is empty. */
typedef void (*httpd_refusal)(void *opaque, const struct httpd_request *rq, int status, const char *why);

struct httpd_config {
	const char *bind_addr;   /* NULL: "127.0.0.1" */
	uint16_t port;           /* 0: a free port */
	const char *cert_pem;    /* server certificate chain (PEM) for TLS; NULL: plain HTTP; read by httpd_start, not kept */
	const char *key_pem;     /* its private key (PEM); required with cert_pem */
	httpd_handler handler;   /* required */
	void *opaque;            /* handed to the handler; borrowed */
	size_t max_header;       /* 0: 16 KiB; larger requests get 431 */
	size_t max_body;         /* 0: 64 KiB; larger bodies get 413 */
	unsigned timeout_ms;     /* 0: 10 s without a complete request gets 408 */
	httpd_refusal on_refusal; /* optional: told of requests refused before the handler; NULL: none */
};

/* What a server has seen so far. */
struct httpd_stats {
	unsigned connections;  /* connections accepted */
	unsigned requests;     /* complete requests handed to the handler */
	unsigned refused;      /* requests the server answered itself (400/408/411/413/431) */
	unsigned tls_failures; /* TLS handshakes that failed after the client sent something */
	char tls_error[256];   /* why the last one failed (e.g. "tlsv1 alert unknown ca"), or "" */
};

/* Bind, listen and serve in a thread. Returns 0, or -1 with an error recorded. */
int httpd_start(const struct httpd_config *c, struct httpd **ret);
uint16_t httpd_port(const struct httpd *h);
/* Snapshot of the counters (safe while the server runs). */
void httpd_stats(const struct httpd *h, struct httpd_stats *ret);
/* Failed TLS handshakes so far (e.g. the client refused our certificate). */
unsigned httpd_tls_failures(const struct httpd *h);
/* Stop the thread, close the socket, free; accepts NULL. */
void httpd_stop(struct httpd *h);

#endif
