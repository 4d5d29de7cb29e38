/* The agent's HTTP client transport: name resolution and one request/response
 * exchange over TCP with timeouts. Resolution is done here rather than with
 * getaddrinfo because a static glibc needs NSS shared libraries at run time,
 * and the appliance has none. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define AGENT_MAX_RESPONSE (1u << 20)

int agent_dns_query(const char *host, uint16_t id, unsigned char *buf, size_t cap, size_t *ret_len)
{
	size_t hlen = strlen(host);
	if (hlen == 0 || hlen > 253 || cap < hlen + 2 + 12 + 4)
		return agent_fail("resolving '%s': bad host name", host);
	unsigned char *p = buf;
	const unsigned char hdr[12] = { id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
	memcpy(p, hdr, sizeof(hdr));
	p += sizeof(hdr);
	for (const char *l = host; *l;) {
		size_t n = strcspn(l, ".");
		if (n == 0 || n > 63)
			return agent_fail("resolving '%s': bad host name", host);
		*p++ = (unsigned char)n;
		memcpy(p, l, n);
		p += n;
		l += n;
		if (*l == '.')
			l++;
	}
	*p++ = 0;
	const unsigned char tail[4] = { 0, 1, 0, 1 }; /* type A, class IN */
	memcpy(p, tail, sizeof(tail));
	p += sizeof(tail);
	*ret_len = (size_t)(p - buf);
	return 0;
}

/* Skip a possibly compressed name at *off; -1 if it runs off the message. */
static int agent_dns_skip_name(const unsigned char *buf, size_t len, size_t *off)
{
	size_t o = *off;
	for (;;) {
		if (o >= len)
			return -1;
		unsigned char l = buf[o];
		if ((l & 0xc0) == 0xc0) {
			o += 2;
			break;
		}
		if (l & 0xc0)
			return -1;
		o += 1 + l;
		if (l == 0)
			break;
	}
	if (o > len)
		return -1;
	*off = o;
	return 0;
}

static unsigned agent_get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

int agent_dns_answer(const unsigned char *buf, size_t len, uint16_t id, uint32_t *ret_addr_be)
{
	if (len < 12 || agent_get16(buf) != id || !(buf[2] & 0x80))
		return agent_fail("DNS: unexpected reply");
	unsigned rcode = buf[3] & 0x0f;
	if (rcode == 3)
		return agent_fail("DNS: no such host");
	if (rcode != 0)
		return agent_fail("DNS: server error %u", rcode);
	unsigned qd = agent_get16(buf + 4), an = agent_get16(buf + 6);
	size_t off = 12;
	for (unsigned i = 0; i < qd; i++) {
		if (agent_dns_skip_name(buf, len, &off) < 0 || off + 4 > len)
			return agent_fail("DNS: malformed reply");
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		if (agent_dns_skip_name(buf, len, &off) < 0 || off + 10 > len)
			return agent_fail("DNS: malformed reply");
		unsigned type = agent_get16(buf + off), klass = agent_get16(buf + off + 2);
		size_t rdlen = agent_get16(buf + off + 8);
		off += 10;
		if (off + rdlen > len)
			return agent_fail("DNS: malformed reply");
		if (type == 1 && klass == 1 && rdlen == 4) {
			memcpy(ret_addr_be, buf + off, 4);
			return 0;
		}
		off += rdlen; /* CNAMEs: the A record follows */
	}
	return agent_fail("DNS: no IPv4 address");
}

int agent_hosts_lookup(const char *text, const char *host, uint32_t *ret_addr_be)
{
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char l[512];
		snprintf(l, sizeof(l), "%.*s", (int)(n < sizeof(l) ? n : sizeof(l) - 1), line);
		line = nl ? nl + 1 : NULL;
		l[strcspn(l, "#")] = 0;
		char *save, *addr = strtok_r(l, " \t\r", &save);
		struct in_addr a;
		if (!addr || inet_pton(AF_INET, addr, &a) != 1)
			continue;
		for (char *name; (name = strtok_r(NULL, " \t\r", &save));) {
			if (strcasecmp(name, host) == 0) {
				*ret_addr_be = a.s_addr;
				return 0;
			}
		}
	}
	return -1;
}

double agent_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ask each nameserver of /etc/resolv.conf, twice round, 2 s per try. */
static int agent_dns_resolve(const char *host, uint32_t *ret_addr_be)
{
	char *conf = NULL;
	if (agent_read_file("/etc/resolv.conf", 65536, &conf) < 0)
		return agent_fail("resolving '%s': no /etc/resolv.conf (no DNS from DHCP?)", host);
	struct in_addr ns[3];
	size_t nns = 0;
	char *save = NULL;
	for (char *l = strtok_r(conf, "\n", &save); l && nns < 3; l = strtok_r(NULL, "\n", &save)) {
		char addr[64];
		if (sscanf(l, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &ns[nns]) == 1)
			nns++;
	}
	free(conf);
	if (nns == 0)
		return agent_fail("resolving '%s': no IPv4 nameserver in /etc/resolv.conf", host);
	unsigned char q[300], a[1500];
	size_t qlen;
	uint16_t id = (uint16_t)(getpid() ^ time(NULL));
	if (agent_dns_query(host, id, q, sizeof(q), &qlen) < 0)
		return -1;
	char last[256] = "";
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < nns; i++) {
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (fd < 0)
				return agent_fail_errno(errno, "resolving '%s'", host);
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53),
						  .sin_addr = ns[i] };
			ssize_t r = -1;
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			    send(fd, q, qlen, 0) == (ssize_t)qlen) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				if (poll(&p, 1, 2000) == 1)
					r = recv(fd, a, sizeof(a), 0);
			}
			close(fd);
			if (r > 0) {
				if (agent_dns_answer(a, (size_t)r, id, ret_addr_be) == 0)
					return 0;
				snprintf(last, sizeof(last), "%s", agent_error());
			}
		}
	}
	if (*last)
		return agent_fail("resolving '%s': %s", host, last);
	return agent_fail("resolving '%s': no answer from the nameservers", host);
}

static int agent_resolve(const char *host, uint16_t port, struct sockaddr_storage *ret,
			 socklen_t *ret_len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*ret_len = sizeof(*in6);
		return 0;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	*ret_len = sizeof(*in);
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
		return 0;
	if (strcasecmp(host, "localhost") == 0) {
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return 0;
	}
	char *hosts = NULL;
	if (agent_read_file("/etc/hosts", 1 << 20, &hosts) == 0) {
		int r = agent_hosts_lookup(hosts, host, &in->sin_addr.s_addr);
		free(hosts);
		if (r == 0)
			return 0;
	}
	return agent_dns_resolve(host, &in->sin_addr.s_addr);
}

int agent_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	if (agent_resolve(host, port, &sa, &salen) < 0)
		return -1;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return agent_fail_errno(errno, "connecting to %s port %u", host, port);
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0) {
		int e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int r = poll(&p, 1, timeout_ms);
			socklen_t elen = sizeof(e);
			if (r == 0)
				e = ETIMEDOUT;
			else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
				e = errno;
		}
		if (e) {
			close(fd);
			return agent_fail_errno(e, "connecting to %s port %u", host, port);
		}
	}
	return fd;
}

int agent_fd_wait(int fd, short events, double deadline)
{
	for (;;) {
		int ms = (int)((deadline - agent_now()) * 1000);
		if (ms <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int agent_stream_connect(const char *host, uint16_t port, int timeout_ms, struct agent_stream *ret)
{
	int fd = agent_connect(host, port, timeout_ms);
	if (fd < 0)
		return -EAGAIN;
	*ret = (struct agent_stream){ .fd = fd, .where = agent_printf("%s port %u", host, port) };
	return 0;
}

void agent_stream_close(struct agent_stream *s)
{
	agent_tls_free(s->tls);
	/* where is set only once fd is ours: a zeroed stream's fd 0 is not */
	if (s->fd >= 0 && s->where)
		close(s->fd);
	free(s->where);
	*s = (struct agent_stream){ .fd = -1 };
}

int agent_stream_write(struct agent_stream *s, const void *data, size_t len, int timeout_ms)
{
	if (s->tls)
		return agent_tls_write(s, data, len, timeout_ms);
	double deadline = agent_now() + timeout_ms / 1000.0;
	for (size_t off = 0; off < len;) {
		ssize_t w = send(s->fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno != EINTR && errno != EAGAIN) {
			agent_fail_errno(errno, "sending to %s", s->where);
			return -EAGAIN;
		} else if (agent_fd_wait(s->fd, POLLOUT, deadline) < 0) {
			agent_fail("sending to %s: timed out", s->where);
			return -EAGAIN;
		}
	}
	return 0;
}

ssize_t agent_stream_read(struct agent_stream *s, void *buf, size_t cap, int timeout_ms)
{
	if (s->tls)
		return agent_tls_read(s, buf, cap, timeout_ms);
	double deadline = agent_now() + timeout_ms / 1000.0;
	for (;;) {
		ssize_t r = recv(s->fd, buf, cap, 0);
		if (r >= 0)
			return r;
		if (errno != EINTR && errno != EAGAIN) {
			agent_fail_errno(errno, "reading from %s", s->where);
			return -EAGAIN;
		}
		if (agent_fd_wait(s->fd, POLLIN, deadline) < 0) {
			agent_fail("reading from %s: timed out after %g s", s->where, timeout_ms / 1000.0);
			return -EAGAIN;
		}
	}
}

int agent_stream_exchange(struct agent_stream *s, const char *req, int timeout_ms, int *ret_status,
			  char **ret_body)
{
	int rc = agent_stream_write(s, req, strlen(req), timeout_ms);
	if (rc < 0)
		return rc;
	struct agent_buf resp = { 0 };
	/* each burst of data from a slow platform earns another timeout */
	for (;;) {
		char chunk[4096];
		ssize_t r = agent_stream_read(s, chunk, sizeof(chunk), timeout_ms);
		if (r < 0) {
			rc = (int)r;
			break;
		}
		if (r == 0 && resp.len == 0) {
			agent_fail("reading from %s: connection closed without a response", s->where);
			rc = -EAGAIN;
			break;
		}
		if (resp.len + (size_t)r > AGENT_MAX_RESPONSE) {
			agent_fail("reading from %s: response larger than %u bytes", s->where,
				   AGENT_MAX_RESPONSE);
			rc = -EPROTO;
			break;
		}
		agent_buf_add(&resp, chunk, (size_t)r);
		int p = agent_http_response_parse(resp.data, resp.len, r == 0, ret_status, ret_body);
		if (p <= 0) {
			rc = p == 0 ? 0 : -EPROTO;
			break;
		}
	}
	agent_buf_free(&resp);
	return rc;
}

int agent_http_exchange(const char *host, uint16_t port, const char *req, int timeout_ms,
			int *ret_status, char **ret_body)
{
	struct agent_stream s;
	int r = agent_stream_connect(host, port, timeout_ms, &s);
	if (r < 0)
		return r;
	r = agent_stream_exchange(&s, req, timeout_ms, ret_status, ret_body);
	agent_stream_close(&s);
	return r;
}
