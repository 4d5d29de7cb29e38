/* Just enough XML for two documents the agent must read without libxml2
 * (the agent is static and libc-only): an OVF environment (ovf-env.xml) and
 * Azure's goal state. The walker checks well-formedness (matching tags,
 * quoted attributes, known entities) and reports elements by local name, so
 * namespace prefixes (ns1:, wa:, oe:) do not matter. No DTDs. */
#include "channel.h"

#include <stdlib.h>
#include <string.h>

#define AGENT_XML_DEPTH 32

/* One element on the walker's stack: a slice of the document. */
struct agent_xml_name {
	const char *s; /* qualified name in the document */
	size_t n;      /* its length */
};

/* What a query looks for and what it found. */
struct agent_xml_query {
	const char *path;     /* "A/B/C": local names from the root */
	const char *key;      /* for OVF properties: the key= wanted, else NULL */
	size_t match_depth;   /* depth of the element being collected, 0 when none */
	bool found;           /* the answer is complete */
	struct agent_buf out; /* text or attribute value */
};

static bool agent_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool agent_xml_namechar(char c)
{
	return c && !agent_xml_space(c) && !strchr("<>/=\"'&", c);
}

/* Local part of a qualified name. */
static struct agent_xml_name agent_xml_local(struct agent_xml_name q)
{
	const char *colon = memchr(q.s, ':', q.n);
	if (colon)
		return (struct agent_xml_name){ colon + 1, q.n - (size_t)(colon + 1 - q.s) };
	return q;
}

static bool agent_xml_is(struct agent_xml_name q, const char *s, size_t n)
{
	struct agent_xml_name l = agent_xml_local(q);
	return l.n == n && memcmp(l.s, s, n) == 0;
}

/* Append s[0..n) with entities decoded; -1 on an unknown or broken entity. */
static int agent_xml_decode(struct agent_buf *b, const char *s, size_t n)
{
	static const struct { const char *name; char c; } ents[] = {
		{ "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "quot", '"' }, { "apos", '\'' },
	};
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '&') {
			agent_buf_add(b, s + i, 1);
			continue;
		}
		const char *semi = memchr(s + i, ';', n - i);
		if (!semi || semi - (s + i) > 10)
			return -1;
		const char *e = s + i + 1;
		size_t elen = (size_t)(semi - e);
		bool done = false;
		if (elen > 1 && e[0] == '#') {
			char *end;
			unsigned long v = e[1] == 'x' ? strtoul(e + 2, &end, 16) : strtoul(e + 1, &end, 10);
			/* ASCII only: nothing the agent reads needs more */
			if (end != semi || v == 0 || v > 0x7f)
				return -1;
			char c = (char)v;
			agent_buf_add(b, &c, 1);
			done = true;
		}
		for (size_t k = 0; !done && k < sizeof(ents) / sizeof(ents[0]); k++) {
			if (strlen(ents[k].name) == elen && memcmp(ents[k].name, e, elen) == 0) {
				agent_buf_add(b, &ents[k].c, 1);
				done = true;
			}
		}
		if (!done)
			return -1;
		i = (size_t)(semi - s);
	}
	return 0;
}

/* Whether the open elements stack[0..depth) are exactly path. */
static bool agent_xml_at(const struct agent_xml_name *stack, size_t depth, const char *path)
{
	size_t d = 0;
	for (const char *p = path; *p; d++) {
		size_t n = strcspn(p, "/");
		if (d >= depth || !agent_xml_is(stack[d], p, n))
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return d == depth;
}

/* Attribute local name = "value" pairs of a start tag; calls back for the
 * ones a property query needs. -1 if the attribute text is malformed. */
static int agent_xml_attrs(const char *s, size_t n, struct agent_xml_query *q, bool want)
{
	const char *end = s + n;
	bool key_ok = false;
	struct agent_buf value = { 0 };
	while (s < end) {
		while (s < end && agent_xml_space(*s))
			s++;
		if (s == end)
			break;
		const char *name = s;
		while (s < end && agent_xml_namechar(*s))
			s++;
		struct agent_xml_name an = { name, (size_t)(s - name) };
		while (s < end && agent_xml_space(*s))
			s++;
		if (an.n == 0 || s == end || *s++ != '=')
			goto bad;
		while (s < end && agent_xml_space(*s))
			s++;
		if (s == end || (*s != '"' && *s != '\''))
			goto bad;
		const char *close = memchr(s + 1, *s, (size_t)(end - s - 1));
		if (!close || memchr(s + 1, '<', (size_t)(close - s - 1)))
			goto bad;
		struct agent_buf v = { 0 };
		if (agent_xml_decode(&v, s + 1, (size_t)(close - s - 1)) < 0) {
			agent_buf_free(&v);
			goto bad;
		}
		if (want && agent_xml_is(an, "key", 3))
			key_ok = v.data && strcmp(v.data, q->key) == 0;
		if (want && agent_xml_is(an, "value", 5)) {
			agent_buf_free(&value);
			value = v;
		} else {
			agent_buf_free(&v);
		}
		s = close + 1;
		/* attributes must be separated by blanks */
		if (s < end && !agent_xml_space(*s))
			goto bad;
	}
	if (want && key_ok && !q->found) {
		q->found = true;
		agent_buf_add(&q->out, value.data ? value.data : "", value.len);
	}
	agent_buf_free(&value);
	return 0;
bad:
	agent_buf_free(&value);
	return -1;
}

/* Skip past the terminator; NULL if it never comes. */
static const char *agent_xml_skip(const char *p, const char *term)
{
	const char *e = strstr(p, term);
	return e ? e + strlen(term) : NULL;
}

static int agent_xml_walk(const char *doc, struct agent_xml_query *q)
{
	struct agent_xml_name stack[AGENT_XML_DEPTH];
	size_t depth = 0;
	bool root_seen = false;
	const char *p = doc;
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (*p) {
		if (*p != '<') {
			const char *lt = strchr(p, '<');
			size_t n = lt ? (size_t)(lt - p) : strlen(p);
			if (depth == 0) {
				for (size_t i = 0; i < n; i++)
					if (!agent_xml_space(p[i]))
						return agent_fail("XML: text outside the root element");
			} else {
				struct agent_buf tmp = { 0 };
				bool collect = q->match_depth == depth && !q->found;
				int r = agent_xml_decode(collect ? &q->out : &tmp, p, n);
				agent_buf_free(&tmp);
				if (r < 0)
					return agent_fail("XML: bad entity reference");
			}
			p += n;
			continue;
		}
		if (strncmp(p, "<?", 2) == 0) {
			p = agent_xml_skip(p + 2, "?>");
		} else if (strncmp(p, "<!--", 4) == 0) {
			p = agent_xml_skip(p + 4, "-->");
		} else if (strncmp(p, "<![CDATA[", 9) == 0) {
			const char *e = strstr(p + 9, "]]>");
			if (!e || depth == 0)
				return agent_fail("XML: bad CDATA section");
			if (q->match_depth == depth && !q->found)
				agent_buf_add(&q->out, p + 9, (size_t)(e - p - 9));
			p = e + 3;
		} else if (strncmp(p, "<!", 2) == 0) {
			const char *gt = strchr(p, '>');
			if (!gt || memchr(p, '[', (size_t)(gt - p)))
				return agent_fail("XML: document type declarations are not supported");
			p = gt + 1;
		} else if (p[1] == '/') {
			const char *name = p + 2, *e = name;
			while (agent_xml_namechar(*e))
				e++;
			size_t n = (size_t)(e - name);
			while (agent_xml_space(*e))
				e++;
			if (*e != '>' || depth == 0 || stack[depth - 1].n != n || memcmp(stack[depth - 1].s, name, n) != 0)
				return agent_fail("XML: mismatched end tag");
			if (q->match_depth == depth) {
				q->match_depth = 0;
				q->found = true;
			}
			depth--;
			p = e + 1;
		} else {
			const char *name = p + 1, *e = name;
			while (agent_xml_namechar(*e))
				e++;
			if (e == name)
				return agent_fail("XML: bad start tag");
			/* the tag ends at the first > outside quotes */
			const char *a = e;
			char quote = 0;
			for (; *a && (quote || *a != '>'); a++) {
				if (quote && *a == quote)
					quote = 0;
				else if (!quote && (*a == '"' || *a == '\''))
					quote = *a;
				else if (!quote && *a == '<')
					return agent_fail("XML: bad start tag");
			}
			if (!*a)
				return agent_fail("XML: unterminated start tag");
			bool empty = a[-1] == '/';
			if (depth == 0 && root_seen)
				return agent_fail("XML: more than one root element");
			if (depth == AGENT_XML_DEPTH)
				return agent_fail("XML: nested too deeply");
			stack[depth++] = (struct agent_xml_name){ name, (size_t)(e - name) };
			root_seen = true;
			bool here = agent_xml_at(stack, depth, q->path);
			if (e < a - (empty ? 1 : 0) && !agent_xml_space(*e))
				return agent_fail("XML: bad start tag");
			if (agent_xml_attrs(e, (size_t)(a - (empty ? 1 : 0) - e), q, here && q->key) < 0)
				return agent_fail("XML: malformed attributes");
			if (here && !q->key && !q->found)
				q->match_depth = depth;
			if (empty) {
				if (q->match_depth == depth) {
					q->match_depth = 0;
					q->found = true;
				}
				depth--;
			}
			p = a + 1;
		}
		if (!p)
			return agent_fail("XML: unterminated comment or declaration");
	}
	if (!root_seen || depth != 0)
		return agent_fail("XML: %s", root_seen ? "unclosed elements at the end" : "no root element");
	return 0;
}

/* Run a query; trim the answer. */
static int agent_xml_query_run(const char *doc, struct agent_xml_query *q, char **ret)
{
	if (agent_xml_walk(doc, q) < 0) {
		if (q->out.data)
			explicit_bzero(q->out.data, q->out.len);
		agent_buf_free(&q->out);
		return -1;
	}
	if (!q->found) {
		agent_buf_free(&q->out);
		return 1;
	}
	char *s = agent_buf_steal(&q->out);
	size_t n = strlen(s), b = 0;
	while (n > 0 && agent_xml_space(s[n - 1]))
		s[--n] = 0;
	while (agent_xml_space(s[b]))
		b++;
	memmove(s, s + b, n - b + 1);
	*ret = s;
	return 0;
}

int agent_xml_text(const char *doc, const char *path, char **ret)
{
	struct agent_xml_query q = { .path = path };
	return agent_xml_query_run(doc, &q, ret);
}

int agent_xml_ovf_property(const char *doc, const char *key, char **ret)
{
	struct agent_xml_query q = { .path = "Environment/PropertySection/Property", .key = key };
	return agent_xml_query_run(doc, &q, ret);
}

char *agent_xml_escape(const char *s)
{
	struct agent_buf b = { 0 };
	agent_buf_add(&b, "", 0);
	for (; *s; s++) {
		switch (*s) {
		case '&': agent_buf_puts(&b, "&amp;"); break;
		case '<': agent_buf_puts(&b, "&lt;"); break;
		case '>': agent_buf_puts(&b, "&gt;"); break;
		case '"': agent_buf_puts(&b, "&quot;"); break;
		case '\'': agent_buf_puts(&b, "&apos;"); break;
		default: agent_buf_add(&b, s, 1);
		}
	}
	return agent_buf_steal(&b);
}
