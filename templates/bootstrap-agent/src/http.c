/* The personalization protocol on the wire: URLs, the request the agent
 * sends, and the responses it understands (docs/personalization.md). */
#include "agent.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char agent_endpoint[] = "qvsa/v1/personalize";
/* Every one of these must be granted for the appliance to be usable. */
static const char *const agent_required[] = { "ML", "VULNSIGS", "TAGGER", "SCAND" };

static char *agent_strndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		abort();
	return d;
}

/* %XX decoding for URL user information; NULL on a bad escape. */
static char *agent_pct_decode(const char *s, size_t n)
{
	struct agent_buf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2]))
				goto bad;
			char hex[3] = { s[i + 1], s[i + 2], 0 };
			c = (char)strtoul(hex, NULL, 16);
			if (c == 0)
				goto bad;
			i += 2;
		}
		agent_buf_add(&b, &c, 1);
	}
	return agent_buf_steal(&b);
bad:
	agent_buf_free(&b);
	return NULL;
}

int agent_url_parse(const char *s, struct agent_url *ret)
{
	struct agent_url u = { .port = 80 };
	const char *p = strstr(s, "://");
	if (!p)
		return agent_fail("URL '%s': not an http:// or https:// URL", s);
	if ((size_t)(p - s) == 5 && strncasecmp(s, "https", 5) == 0)
		u = (struct agent_url){ .port = 443, .https = true };
	else if ((size_t)(p - s) != 4 || strncasecmp(s, "http", 4) != 0)
		return agent_fail("URL '%s': unsupported scheme (only http:// and https://)", s);
	p += 3;
	size_t alen = strcspn(p, "/?#");
	const char *auth = p, *at = memrchr(p, '@', alen);
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
		u.user = agent_pct_decode(auth, ulen);
		if (colon)
			u.password = agent_pct_decode(colon + 1, (size_t)(at - colon - 1));
		if (!u.user || (colon && !u.password)) {
			agent_url_free(&u);
			return agent_fail("URL '%s': bad %%-escape in user information", s);
		}
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	const char *hend, *port = NULL;
	if (*auth == '[') {
		hend = memchr(auth, ']', alen);
		if (!hend) {
			agent_url_free(&u);
			return agent_fail("URL '%s': unterminated [IPv6] host", s);
		}
		u.host = agent_strndup(auth + 1, (size_t)(hend - auth - 1));
		if (hend + 1 < auth + alen) {
			if (hend[1] != ':') {
				agent_url_free(&u);
				return agent_fail("URL '%s': junk after [IPv6] host", s);
			}
			port = hend + 2;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		hend = colon ? colon : auth + alen;
		u.host = agent_strndup(auth, (size_t)(hend - auth));
		if (colon)
			port = colon + 1;
	}
	if (!*u.host) {
		agent_url_free(&u);
		return agent_fail("URL '%s': no host", s);
	}
	if (port) {
		char *end;
		unsigned long v = strtoul(port, &end, 10);
		if (!isdigit((unsigned char)*port) || end != auth + alen || v == 0 || v > 65535) {
			agent_url_free(&u);
			return agent_fail("URL '%s': bad port", s);
		}
		u.port = (uint16_t)v;
	}
	p = auth + alen;
	size_t plen = strcspn(p, "?#");
	if (p[plen] == '?') {
		agent_url_free(&u);
		return agent_fail("URL '%s': query strings are not supported", s);
	}
	u.path = plen ? agent_strndup(p, plen) : agent_strdup("/");
	*ret = u;
	return 0;
}

void agent_url_free(struct agent_url *u)
{
	if (!u)
		return;
	free(u->host);
	free(u->path);
	free(u->user);
	free(u->password);
	*u = (struct agent_url){ 0 };
}

char *agent_endpoint_path(const char *base_path)
{
	struct agent_buf b = { 0 };
	size_t n = strlen(base_path), e = sizeof(agent_endpoint) - 1;
	/* a URL that already names the endpoint is used as it is */
	while (n > 1 && base_path[n - 1] == '/')
		n--;
	if (n > e && strncmp(base_path + n - e, agent_endpoint, e) == 0 && base_path[n - e - 1] == '/') {
		agent_buf_add(&b, base_path, n);
		return agent_buf_steal(&b);
	}
	agent_buf_puts(&b, base_path);
	if (b.len == 0 || b.data[b.len - 1] != '/')
		agent_buf_puts(&b, "/");
	agent_buf_puts(&b, agent_endpoint);
	return agent_buf_steal(&b);
}

char *agent_request_body(const char *perscode, const char *version, const char *arch)
{
	struct agent_buf b = { 0 };
	agent_buf_puts(&b, "{\"perscode\":");
	agent_buf_json_string(&b, perscode);
	agent_buf_puts(&b, ",\"bootstrap_version\":");
	agent_buf_json_string(&b, version);
	agent_buf_puts(&b, ",\"arch\":");
	agent_buf_json_string(&b, arch);
	agent_buf_puts(&b, "}");
	return agent_buf_steal(&b);
}

/* host[:port] as it goes into Host: and absolute URIs; always_port for
 * CONNECT, whose target must name the port. */
static void agent_put_authority(struct agent_buf *b, const struct agent_url *u, bool always_port)
{
	if (strchr(u->host, ':'))
		agent_buf_printf(b, "[%s]", u->host);
	else
		agent_buf_puts(b, u->host);
	if (always_port || u->port != (u->https ? 443 : 80))
		agent_buf_printf(b, ":%u", u->port);
}

/* Proxy-Authorization when the proxy URL carries credentials. */
static void agent_put_proxy_auth(struct agent_buf *b, const struct agent_url *proxy)
{
	if (!proxy->user)
		return;
	struct agent_buf cred = { 0 };
	agent_buf_printf(&cred, "%s:%s", proxy->user, proxy->password ? proxy->password : "");
	char *b64 = agent_base64(cred.data, cred.len);
	agent_buf_printf(b, "Proxy-Authorization: Basic %s\r\n", b64);
	explicit_bzero(b64, strlen(b64));
	explicit_bzero(cred.data, cred.len);
	free(b64);
	agent_buf_free(&cred);
}

char *agent_request_build(const struct agent_url *platform, const struct agent_url *proxy,
			  const char *body)
{
	struct agent_buf b = { 0 };
	char *path = agent_endpoint_path(platform->path);
	/* https goes through a CONNECT tunnel: the proxy never sees this request */
	if (platform->https)
		proxy = NULL;
	agent_buf_puts(&b, "POST ");
	if (proxy) {
		agent_buf_puts(&b, "http://");
		agent_put_authority(&b, platform, false);
	}
	agent_buf_printf(&b, "%s HTTP/1.1\r\nHost: ", path);
	free(path);
	agent_put_authority(&b, platform, false);
	agent_buf_puts(&b, "\r\nUser-Agent: qvsa-agent/1\r\n"
			   "Content-Type: application/json\r\n"
			   "Accept: text/plain\r\n"
			   "Connection: close\r\n");
	if (proxy)
		agent_put_proxy_auth(&b, proxy);
	agent_buf_printf(&b, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	return agent_buf_steal(&b);
}

char *agent_connect_request_build(const struct agent_url *platform, const struct agent_url *proxy)
{
	struct agent_buf b = { 0 };
	agent_buf_puts(&b, "CONNECT ");
	agent_put_authority(&b, platform, true);
	agent_buf_puts(&b, " HTTP/1.1\r\nHost: ");
	agent_put_authority(&b, platform, true);
	agent_buf_puts(&b, "\r\nUser-Agent: qvsa-agent/1\r\n");
	agent_put_proxy_auth(&b, proxy);
	agent_buf_puts(&b, "\r\n");
	return agent_buf_steal(&b);
}

char *agent_base64(const void *data, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	struct agent_buf b = { 0 };
	agent_buf_add(&b, "", 0);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		char out[4] = { tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63] };
		if (i + 1 >= len)
			out[2] = '=';
		if (i + 2 >= len)
			out[3] = '=';
		agent_buf_add(&b, out, 4);
	}
	return agent_buf_steal(&b);
}

/* Find the end of the header block; *ret_body is where the body starts. */
static const char *agent_headers_end(const char *raw, size_t len, const char **ret_body)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (raw[i] != '\n')
			continue;
		if (raw[i + 1] == '\n') {
			*ret_body = raw + i + 2;
			return raw + i;
		}
		if (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n') {
			*ret_body = raw + i + 3;
			return raw + i;
		}
	}
	return NULL;
}

/* Value of a header in [hdr, end) (case-insensitive name), trimmed, new string. */
static char *agent_header(const char *hdr, const char *end, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *l = hdr; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		const char *le = nl ? nl : end;
		if ((size_t)(le - l) > nlen && strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
			const char *v = l + nlen + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = le;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			return agent_strndup(v, (size_t)(ve - v));
		}
		l = nl ? nl + 1 : end;
	}
	return NULL;
}

/* Decode a chunked body; 1 if incomplete, -1 if malformed. */
static int agent_dechunk(const char *p, const char *end, struct agent_buf *out)
{
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return 1;
		char *e;
		unsigned long n = strtoul(p, &e, 16);
		if (e == p || n > 1 << 20)
			return -1;
		p = nl + 1;
		if (n == 0)
			return 0; /* trailers are not needed */
		if ((size_t)(end - p) < n + 1)
			return 1;
		agent_buf_add(out, p, n);
		p += n;
		if (*p == '\r')
			p++;
		if (p >= end)
			return 1;
		if (*p++ != '\n')
			return -1;
	}
}

int agent_http_response_parse(const char *raw, size_t len, bool eof, int *ret_status,
			      char **ret_body)
{
	const char *body, *hend = agent_headers_end(raw, len, &body);
	if (!hend) {
		if (!eof)
			return 1;
		return agent_fail("platform response: %s", len ? "truncated headers" : "empty");
	}
	if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ' || raw[9] < '1' ||
	    raw[9] > '5' || !isdigit((unsigned char)raw[10]) || !isdigit((unsigned char)raw[11]))
		return agent_fail("platform response: not HTTP/1.x");
	int status = (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
	const char *end = raw + len;
	char *te = agent_header(raw, hend, "Transfer-Encoding");
	char *cl = agent_header(raw, hend, "Content-Length");
	struct agent_buf b = { 0 };
	int r;
	if (te && strcasecmp(te, "chunked") == 0) {
		r = agent_dechunk(body, end, &b);
		if (r < 0)
			agent_fail("platform response: malformed chunked body");
	} else if (cl) {
		char *e;
		unsigned long n = strtoul(cl, &e, 10);
		if (*e || e == cl || n > 1 << 20) {
			r = agent_fail("platform response: bad Content-Length '%s'", cl);
		} else if ((size_t)(end - body) < n) {
			r = 1;
		} else {
			agent_buf_add(&b, body, n);
			r = 0;
		}
	} else {
		r = eof ? 0 : 1;
		if (eof)
			agent_buf_add(&b, body, (size_t)(end - body));
	}
	free(te);
	free(cl);
	if (r == 1 && eof)
		r = agent_fail("platform response: connection closed before the body was complete");
	if (r != 0) {
		agent_buf_free(&b);
		return r;
	}
	*ret_status = status;
	*ret_body = agent_buf_steal(&b);
	return 0;
}

int agent_connect_response_parse(const char *raw, size_t len, int *ret_status)
{
	const char *body, *hend = agent_headers_end(raw, len, &body);
	if (!hend)
		return len > 16384 ? agent_fail("proxy response: headers too long") : 1;
	if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ' || raw[9] < '1' ||
	    raw[9] > '5' || !isdigit((unsigned char)raw[10]) || !isdigit((unsigned char)raw[11]))
		return agent_fail("proxy response: not HTTP/1.x");
	int status = (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
	/* the server speaks TLS only after our ClientHello: nothing may follow a 2xx */
	if (status / 100 == 2 && body != raw + len)
		return agent_fail("proxy response: data after the CONNECT answer");
	*ret_status = status;
	return 0;
}

static bool agent_component_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static bool agent_version_ok(const char *s, size_t n)
{
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || strchr("\"\\", s[i]))
			return false;
	return true;
}

static int agent_component_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int agent_components_parse(const char *body, struct agent_components *ret)
{
	struct agent_components c = { 0 };
	unsigned lineno = 0;
	for (const char *line = body; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		const char *s = line;
		line = nl ? nl + 1 : NULL;
		lineno++;
		while (n > 0 && isspace((unsigned char)*s))
			s++, n--;
		while (n > 0 && isspace((unsigned char)s[n - 1]))
			n--;
		if (n == 0 || *s == '#')
			continue;
		const char *eq = memchr(s, '=', n);
		if (!eq || !agent_component_name_ok(s, (size_t)(eq - s)) ||
		    !agent_version_ok(eq + 1, (size_t)(s + n - eq - 1))) {
			agent_components_free(&c);
			return agent_fail("platform response line %u: not NAME=VERSION", lineno);
		}
		char *name = agent_strndup(s, (size_t)(eq - s));
		for (size_t i = 0; i < c.n; i++) {
			if (strcmp(c.name[i], name) == 0) {
				agent_fail("platform response: component %s listed twice", name);
				free(name);
				agent_components_free(&c);
				return -1;
			}
		}
		if (c.n == sizeof(c.name) / sizeof(c.name[0])) {
			free(name);
			agent_components_free(&c);
			return agent_fail("platform response: too many components");
		}
		c.name[c.n] = name;
		c.version[c.n++] = agent_strndup(eq + 1, (size_t)(s + n - eq - 1));
	}
	for (size_t r = 0; r < sizeof(agent_required) / sizeof(agent_required[0]); r++) {
		bool found = false;
		for (size_t i = 0; i < c.n && !found; i++)
			found = strcmp(c.name[i], agent_required[r]) == 0;
		if (!found) {
			agent_components_free(&c);
			return agent_fail("platform response: component %s missing", agent_required[r]);
		}
	}
	/* sort name/version pairs together so the records are in a stable order */
	char *pairs[32][2];
	for (size_t i = 0; i < c.n; i++) {
		pairs[i][0] = c.name[i];
		pairs[i][1] = c.version[i];
	}
	qsort(pairs, c.n, sizeof(pairs[0]), agent_component_cmp);
	for (size_t i = 0; i < c.n; i++) {
		c.name[i] = pairs[i][0];
		c.version[i] = pairs[i][1];
	}
	*ret = c;
	return 0;
}

void agent_components_free(struct agent_components *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->name[i]);
		free(c->version[i]);
	}
	*c = (struct agent_components){ 0 };
}

char *agent_reason_parse(const char *body)
{
	char *r = agent_kv_get(body, "REASON");
	if (r && !*r) {
		free(r);
		return NULL;
	}
	return r;
}
