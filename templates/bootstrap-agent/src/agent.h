/* qvsa-agent: the first-boot personalization agent inside the appliance
 * (protocol in docs/personalization.md). Everything except main() lives
 * behind this header so the unit tests can reach it. The agent is a static
 * libc-only program: it shares no code with the builder, so its helpers carry
 * the agent_ prefix and never clash with builder/util when linked together
 * into the unit-test binary. */
#ifndef QVSA_AGENT_H
#define QVSA_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- errors and buffers (util.c) ---- */

/* Record "what: why" as the agent's one error message; always returns -1. */
int agent_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like agent_fail with ": strerror(errnum)" appended. Returns -1. */
int agent_fail_errno(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last recorded message ("" if none). */
const char *agent_error(void);

/* A growable NUL-terminated byte string; the zero value is an empty buffer. */
struct agent_buf {
	char *data; /* owned, NUL-terminated once anything was added; may be NULL while empty */
	size_t len; /* bytes used, excluding the NUL */
	size_t cap; /* bytes allocated */
};
/* Appending aborts on out-of-memory: the agent cannot do anything useful then. */
void agent_buf_add(struct agent_buf *b, const void *data, size_t len);
void agent_buf_puts(struct agent_buf *b, const char *s);
void agent_buf_printf(struct agent_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included. */
void agent_buf_json_string(struct agent_buf *b, const char *s);
/* Hand the contents over (never NULL; "" when empty) and reset the buffer. */
char *agent_buf_steal(struct agent_buf *b);
void agent_buf_free(struct agent_buf *b);

char *agent_strdup(const char *s); /* aborts on out-of-memory */
/* A newly allocated formatted string; aborts on out-of-memory. */
char *agent_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole regular file, refusing more than max bytes. */
int agent_read_file(const char *path, size_t max, char **ret_text);
/* Write data to "path.tmp" with mode, fsync, rename over path, fsync the directory. */
int agent_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);

/* fork/exec argv[0] (a full path) and wait: its exit status, or -1 if it
 * could not run or died by a signal. quiet sends its output to /dev/null. */
int agent_run(char *const argv[], bool quiet);

/* Value of KEY in an os-release style text (KEY=value, KEY="value", KEY='value';
 * # comments). Returns a new string, or NULL if the key is absent. */
char *agent_kv_get(const char *text, const char *key);

/* ---- user-data (userdata.c) ---- */

/* What the agent takes from user-data. */
struct agent_userdata {
	char *perscode;     /* personalization code as written (not yet validated), or NULL */
	char *platform_url; /* qvsa.platform_url, or NULL when absent */
	char *proxy;        /* qvsa.proxy, or NULL when absent ("" means: no proxy) */
	char *ca_pem;       /* ca_certs: trusted: certificates (cloud-init's form), concatenated PEM, or NULL */
	bool poweroff;      /* power_state.mode is poweroff */
	bool cloud_config;  /* the document was #cloud-config (else the PERSCODE= form) */
	bool malformed;     /* parsing stopped at an unusable value (else a failure means: no code in it) */
};

/* Parse user-data: a "#cloud-config" document (qvsa: perscode/platform_url/proxy,
 * power_state: mode, ca_certs: trusted: [PEM...], also as ca-certs:) or plain text with a PERSCODE=<digits> line. *ret must be
 * zeroed by the caller and is filled as far as parsing got even on failure,
 * so a power_state request survives a broken qvsa: section. Returns -1 on the
 * first unusable value, after parsing the rest. Free with agent_userdata_free. */
int agent_userdata_parse(const char *text, struct agent_userdata *ret);
void agent_userdata_free(struct agent_userdata *u);
/* 0 if code is 6..32 ASCII digits; else -1 with a reason that does not echo the code. */
int agent_perscode_check(const char *code);

/* ---- HTTP (http.c) ---- */

/* A parsed http:// or https:// URL. */
struct agent_url {
	char *host;     /* host name or address literal (no brackets) */
	uint16_t port;  /* port; 80 (http) or 443 (https) when absent */
	bool https;     /* the scheme is https: TLS, verified, to host */
	char *path;     /* absolute path, "/" when absent */
	char *user;     /* percent-decoded user name, or NULL */
	char *password; /* percent-decoded password, or NULL */
};

/* Parse an http:// or https:// URL; anything else fails with a reason. */
int agent_url_parse(const char *s, struct agent_url *ret);
void agent_url_free(struct agent_url *u);
/* The personalize endpoint below a platform base path (new string). */
char *agent_endpoint_path(const char *base_path);
/* The JSON request body: {"perscode":..,"bootstrap_version":..,"arch":..}. */
char *agent_request_body(const char *perscode, const char *version, const char *arch);
/* The full HTTP request posting body to platform. For http:// through proxy
 * (non-NULL): absolute-URI form, Basic Proxy-Authorization when the proxy URL
 * has credentials. For https:// the proxy is ignored: the request travels
 * inside the CONNECT tunnel in origin form, and the proxy's credentials
 * never reach the platform. */
char *agent_request_build(const struct agent_url *platform, const struct agent_url *proxy,
			  const char *body);
/* "CONNECT host:port" asking proxy for a tunnel to platform, with Basic
 * Proxy-Authorization when the proxy URL has credentials (new string). */
char *agent_connect_request_build(const struct agent_url *platform, const struct agent_url *proxy);
/* Parse a proxy's answer to CONNECT: 1 if more bytes are needed, 0 with the
 * status once the headers are complete, -1 if malformed (or if bytes follow
 * a 2xx answer, which must be the last thing before TLS starts). */
int agent_connect_response_parse(const char *raw, size_t len, int *ret_status);
/* Standard base64 of data (new string). */
char *agent_base64(const void *data, size_t len);

/* Parse raw response bytes. Returns 1 if more bytes are needed (only when
 * !eof), 0 with status and a new body string when complete, -1 if malformed.
 * Handles Content-Length, chunked, and bodies delimited by connection close. */
int agent_http_response_parse(const char *raw, size_t len, bool eof, int *ret_status,
			      char **ret_body);

/* Components granted by the platform, sorted by name. */
struct agent_components {
	size_t n;           /* entries used */
	char *name[32];     /* owned component names */
	char *version[32];  /* owned versions, same index as name */
};
/* Parse a 200 body of NAME=VERSION lines; ML, VULNSIGS, TAGGER and SCAND are required. */
int agent_components_parse(const char *body, struct agent_components *ret);
void agent_components_free(struct agent_components *c);
/* The REASON= line of a rejection body (new string), or NULL. */
char *agent_reason_parse(const char *body);

/* ---- the platform transport (post.c) ---- */

/* One POST of body (the JSON request) to the platform's personalize endpoint
 * below platform_url, through proxy_url when non-NULL. https:// is verified
 * against ca_pem (a NUL-terminated bundle of PEM certificates); http:// is
 * refused unless allow_http. Returns 0 with the HTTP status and a new body
 * string; -EAGAIN for failures a later attempt may fix (resolution, connect,
 * reset, timeout); -EPROTO for the rest, with the reason recorded. */
int agent_platform_post(const char *platform_url, const char *proxy_url, const char *ca_pem, bool allow_http,
			const char *body, int timeout_ms, int *ret_status, char **ret_body);

/* ---- network client (net.c) ---- */

/* Resolve host (address literal, "localhost", /etc/hosts, then DNS A via
 * /etc/resolv.conf) and connect within timeout_ms; returns the socket. */
int agent_connect(const char *host, uint16_t port, int timeout_ms);
/* Send req to host:port and read the whole response. Returns 0, -EAGAIN for
 * failures worth retrying (resolution, connect, reset, timeout), -EPROTO otherwise. */
int agent_http_exchange(const char *host, uint16_t port, const char *req, int timeout_ms,
			int *ret_status, char **ret_body);

/* ---- byte streams: TCP, and TLS over it (net.c, tls.c) ---- */

struct agent_tls; /* a verified TLS client session (tls.c) */

/* One connection to a server. Reads and writes return -EAGAIN for what a
 * later attempt may fix (reset, timeout) and -EPROTO for the rest, with the
 * reason recorded; both name the stream by where. */
struct agent_stream {
	int fd;                /* the connected socket, owned; -1 once closed */
	struct agent_tls *tls; /* TLS session over fd, owned; NULL while plain TCP */
	char *where;           /* "host port N" (and "via proxy ..."), for messages; owned */
};
/* Connect to host:port as agent_connect does; -EAGAIN on failure. */
int agent_stream_connect(const char *host, uint16_t port, int timeout_ms, struct agent_stream *ret);
/* Write all of data within timeout_ms. 0, or -EAGAIN/-EPROTO. */
int agent_stream_write(struct agent_stream *s, const void *data, size_t len, int timeout_ms);
/* Read what arrives within timeout_ms: bytes read (> 0), 0 at end of stream, or -EAGAIN/-EPROTO. */
ssize_t agent_stream_read(struct agent_stream *s, void *buf, size_t cap, int timeout_ms);
/* agent_http_exchange over an open stream; the stream stays open. */
int agent_stream_exchange(struct agent_stream *s, const char *req, int timeout_ms, int *ret_status,
			  char **ret_body);
/* Close (TLS first, with a close_notify if it goes out at once); zero s. Accepts a zeroed s. */
void agent_stream_close(struct agent_stream *s);
/* Monotonic seconds, and a wait for fd to be ready until such a deadline (0, or -1 on timeout). */
double agent_now(void);
int agent_fd_wait(int fd, short events, double deadline);

/* Run a TLS 1.2+ handshake on s (connected, maybe through a proxy tunnel) to
 * host, trusting only the certificates in ca_pem, and check that the server's
 * certificate names host (DNS name, or IP address SAN for an address literal).
 * On success s->tls is set. -EAGAIN for connection failures, -EPROTO for
 * certificate and protocol failures, each with one reason. */
int agent_tls_start(struct agent_stream *s, const char *host, const char *ca_pem, int timeout_ms);
/* I/O on s->tls, as agent_stream_write/agent_stream_read. */
int agent_tls_write(struct agent_stream *s, const void *data, size_t len, int timeout_ms);
ssize_t agent_tls_read(struct agent_stream *s, void *buf, size_t cap, int timeout_ms);
/* Free a session (accepts NULL); sends close_notify if the socket takes it at once. */
void agent_tls_free(struct agent_tls *t);
/* DNS wire format helpers, public for the tests. */
int agent_dns_query(const char *host, uint16_t id, unsigned char *buf, size_t cap, size_t *ret_len);
int agent_dns_answer(const unsigned char *buf, size_t len, uint16_t id, uint32_t *ret_addr_be);
/* Look host up in a hosts(5) text; returns 0 with the IPv4 address or -1. */
int agent_hosts_lookup(const char *text, const char *host, uint32_t *ret_addr_be);

/* ---- media labels (media.c; channels in channel.h) ---- */

/* The ISO9660 volume id or FAT label of the filesystem on fd, space-trimmed,
 * into label[33]. -1 if neither is recognised. */
int agent_fs_label(int fd, char label[33]);
bool agent_label_is_cidata(const char *label);
/* Read user-data (required) and meta-data (optional, NULL) from a seed directory. */
int agent_seed_read_dir(const char *dir, char **ret_user_data, char **ret_meta_data);

/* ---- network bring-up (dhcp.c) ---- */

/* Bring lo up and get a DHCP lease on the first Ethernet interface that
 * answers; ret_ifname (IFNAMSIZ) receives its name. */
int agent_network_up(unsigned rounds, char *ret_ifname, size_t ifname_size);

/* ---- results (record.c) ---- */

/* The one QVSA-STATUS JSON object (no prefix, no newline), new strings. */
char *agent_status_success(const char *version, const struct agent_components *c);
char *agent_status_failure(const char *stage, const char *reason);
char *agent_status_skipped(const char *version);
/* Write <root>/etc/qvsa/components and then the <root>/etc/qvsa/personalized
 * marker (atomically, then sync()). */
int agent_record_write(const char *root, const char *version, const struct agent_components *c);

#endif
