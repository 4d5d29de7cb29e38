/* HTTP/1.x request heads (httpd_parse.h): the request line, header lines
 * (tokens for names, values trimmed, no obsolete line folding), the target
 * split into path and query, and the body length. */
#include "httpd_parse.h"

#include "fs.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_tchar(*s))
			return false;
	return true;
}

/* Split the target (origin form "/p?q" or absolute form "http://h/p?q") into path and query. */
static void split_target(const char *target, struct httpd_request *rq, struct httpd_head_mem *m)
{
	const char *p = target;
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "//") + 2;
		p += strcspn(p, "/?#");
	}
	size_t n = strcspn(p, "?#");
	const char *q = p[n] == '?' ? p + n + 1 : "";
	size_t qn = strcspn(q, "#");
	/* one allocation: the path, the NUL that %c writes, the query */
	m->path = xasprintf("%s%.*s%c%.*s", n == 0 ? "/" : "", (int)n, p, 0, (int)qn, q);
	rq->path = m->path;
	rq->query = m->path + strlen(m->path) + 1;
}

int httpd_parse_head(char *head, struct httpd_request *rq, struct httpd_head_mem *m, const char **ret_why)
{
	*ret_why = "malformed request line";
	char *line = head, *rest = strstr(head, "\r\n");
	if (rest) {
		*rest = 0;
		rest += 2;
	}
	char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		return 400;
	*sp1 = *sp2 = 0;
	if (!is_token(line) || !sp1[1] || (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0))
		return 400;
	for (const char *t = sp1 + 1; *t; t++)
		if ((unsigned char)*t <= 0x20 || *t == 0x7f)
			return 400;
	size_t n = 0;
	for (char *s = rest; s && *s; n++) {
		s = strstr(s, "\r\n");
		s = s ? s + 2 : NULL;
	}
	m->fields = calloc(n + 1, sizeof(*m->fields));
	if (!m->fields)
		abort();
	for (size_t i = 0; i < n; i++) {
		char *next = strstr(rest, "\r\n");
		if (next) {
			*next = 0;
			next += 2;
		}
		char *colon = strchr(rest, ':');
		*ret_why = "malformed header line";
		if (!colon)
			return 400;
		*colon = 0;
		if (!is_token(rest))
			return 400;
		char *v = colon + 1, *e = v + strlen(v);
		v += strspn(v, " \t");
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		m->fields[i] = (struct httpd_field){ .name = rest, .value = v };
		rest = next;
	}
	rq->method = line;
	rq->target = sp1 + 1;
	rq->headers = m->fields;
	rq->n_headers = n;
	split_target(rq->target, rq, m);
	return 0;
}

int httpd_body_length(const struct httpd_request *rq, unsigned long long *ret, const char **ret_why)
{
	bool seen = false;
	*ret = 0;
	for (size_t i = 0; i < rq->n_headers; i++) {
		const struct httpd_field *f = &rq->headers[i];
		if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
			*ret_why = "chunked request bodies are not supported";
			return 411;
		}
		if (strcasecmp(f->name, "Content-Length") != 0)
			continue;
		*ret_why = "bad Content-Length";
		size_t digits = strspn(f->value, "0123456789");
		if (digits == 0 || digits > 18 || f->value[digits])
			return 400;
		unsigned long long v = strtoull(f->value, NULL, 10);
		if (seen && v != *ret)
			return 400;
		seen = true;
		*ret = v;
	}
	return 0;
}

void httpd_head_mem_free(struct httpd_head_mem *m)
{
	free(m->path);
	free(m->fields);
}

const char *httpd_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}
