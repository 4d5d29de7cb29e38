/* user-data parsing: the subset of #cloud-config YAML the agent needs
 * (qvsa: perscode / platform_url / proxy, power_state: mode, cloud-init's
 * ca_certs: trusted: list of PEM certificates) and the plain
 * "PERSCODE=<digits>" form customers paste today.
 *
 * The YAML reader is indentation based: it keeps a stack of the mapping keys
 * enclosing the current line and only interprets the paths it knows. Every
 * other construct (sequences, block scalars, anchors, flow sequences) is
 * skipped, so arbitrary cloud-config for other modules passes through. */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UD_MAX_DEPTH 32

/* One enclosing mapping key of the current line. */
struct ud_level {
	int indent;    /* column of the key */
	char key[64];  /* key text, truncated; "-" for a sequence item */
	bool open;     /* a key with nothing after it: a sequence may follow at its own column */
};

/* Parser state over one document. */
struct ud_parser {
	struct agent_userdata *out;             /* where values go; caller-owned */
	struct ud_level stack[UD_MAX_DEPTH];    /* enclosing keys, outermost first */
	int depth;                              /* entries used in stack */
	unsigned lineno;                        /* current line, 1-based */
	bool failed;                            /* a problem was recorded already */
	struct agent_buf ca;                    /* ca_certs: trusted: certificates so far, PEM */
	bool capturing;                         /* the open block scalar is a trusted: item */
	int block_content;                      /* its content's column; -1 before its first line */
	struct agent_buf block;                 /* its text so far */
	unsigned item_line;                     /* the line of its "- |", for messages */
};

/* Keep only the first problem: it is the one the user must fix first. */
static void ud_problem_at(struct ud_parser *p, unsigned lineno, const char *what)
{
	if (!p->failed)
		agent_fail("user-data line %u: %s", lineno, what);
	p->failed = true;
}

static void ud_problem(struct ud_parser *p, const char *what)
{
	ud_problem_at(p, p->lineno, what);
}

/* cloud-init reads both spellings. */
static bool ud_is_ca_certs(const char *key)
{
	return strcmp(key, "ca_certs") == 0 || strcmp(key, "ca-certs") == 0;
}

static bool ud_is_space(char c) { return c == ' ' || c == '\t'; }

/* Parse one scalar at s (quoted or plain). A plain scalar ends at a comment
 * (" #"), at end of line, or at one of stop (for flow mappings). *ret_end is
 * where parsing stopped. Returns NULL on a malformed quoted scalar. */
static char *ud_scalar(const char *s, const char *stop, const char **ret_end)
{
	struct agent_buf b = { 0 };
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			char c = *s;
			if (c == '\\') {
				s++;
				switch (*s) {
				case '"': case '\\': case '/': c = *s; break;
				case 'n': c = '\n'; break;
				case 't': c = '\t'; break;
				case 'r': c = '\r'; break;
				case '0': c = 0; break;
				case 'x': {
					char hex[3] = { 0 }, *e;
					if (!s[1] || !s[2])
						goto bad;
					memcpy(hex, s + 1, 2);
					c = (char)strtoul(hex, &e, 16);
					if (*e)
						goto bad;
					s += 2;
					break;
				}
				default:
					goto bad;
				}
				if (c == 0)
					goto bad;
			}
			agent_buf_add(&b, &c, 1);
		}
		if (*s != '"')
			goto bad;
		*ret_end = s + 1;
	} else if (*s == '\'') {
		for (s++; *s; s++) {
			if (*s == '\'' && s[1] == '\'')
				s++;
			else if (*s == '\'')
				break;
			agent_buf_add(&b, s, 1);
		}
		if (*s != '\'')
			goto bad;
		*ret_end = s + 1;
	} else {
		const char *e = s;
		while (*e && !strchr(stop, *e) && !(*e == '#' && e > s && ud_is_space(e[-1])))
			e++;
		*ret_end = e;
		while (e > s && ud_is_space(e[-1]))
			e--;
		agent_buf_add(&b, s, (size_t)(e - s));
	}
	return agent_buf_steal(&b);
bad:
	agent_buf_free(&b);
	return NULL;
}

/* Text after a scalar may only be blanks and a comment. */
static bool ud_rest_is_blank(const char *s)
{
	while (ud_is_space(*s))
		s++;
	return *s == 0 || *s == '#';
}

static void ud_set(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

/* Apply "key: value" found under the enclosing keys on the stack (the flow
 * mapping case passes its own parent). Takes ownership of value. */
static void ud_assign(struct ud_parser *p, const char *parent, const char *key, char *value)
{
	struct agent_userdata *u = p->out;
	if (!parent && strcmp(key, "qvsa") == 0) {
		ud_problem(p, "qvsa: must be a mapping (perscode:, platform_url:, proxy:)");
	} else if (parent && ud_is_ca_certs(parent) && strcmp(key, "trusted") == 0) {
		ud_problem(p, "ca_certs: trusted: must be a block list of certificates (- |)");
	} else if (parent && strcmp(parent, "qvsa") == 0) {
		if (strcmp(key, "perscode") == 0)
			return ud_set(&u->perscode, value);
		if (strcmp(key, "platform_url") == 0)
			return ud_set(&u->platform_url, value);
		if (strcmp(key, "proxy") == 0)
			return ud_set(&u->proxy, value);
	} else if (parent && strcmp(parent, "power_state") == 0 && strcmp(key, "mode") == 0) {
		u->poweroff = strcmp(value, "poweroff") == 0;
	}
	free(value);
}

/* The parent key that matters for a line at the current stack: a top-level
 * mapping key, and only for its direct children. NULL at top level. */
static const char *ud_parent(const struct ud_parser *p)
{
	if (p->depth == 1 && p->stack[0].indent == 0)
		return p->stack[0].key;
	return p->depth == 0 ? NULL : "";
}

/* Whether a problem with key under parent concerns a value the agent reads. */
static bool ud_relevant(const char *parent, const char *key)
{
	if (!parent)
		return strcmp(key, "qvsa") == 0 || strcmp(key, "power_state") == 0 || ud_is_ca_certs(key);
	return strcmp(parent, "qvsa") == 0 || strcmp(parent, "power_state") == 0 || ud_is_ca_certs(parent);
}

/* Parse a mapping key at s; returns the end of the key text (at the ':'),
 * or NULL if the line is not "key:" / "key: value". */
static const char *ud_key(const char *s, char *key, size_t keysize)
{
	const char *e;
	char *k;
	if (*s == '"' || *s == '\'') {
		k = ud_scalar(s, "", &e);
		if (!k)
			return NULL;
	} else {
		e = s;
		while (*e && !(*e == ':' && (e[1] == 0 || ud_is_space(e[1]))) && *e != '#')
			e++;
		if (e == s)
			return NULL;
		const char *ke = e;
		while (ke > s && ud_is_space(ke[-1]))
			ke--;
		k = strndup(s, (size_t)(ke - s));
		if (!k)
			abort();
	}
	while (ud_is_space(*e))
		e++;
	if (*e != ':' || (e[1] && !ud_is_space(e[1]))) {
		free(k);
		return NULL;
	}
	snprintf(key, keysize, "%s", k);
	free(k);
	return e;
}

/* "key: {a: 1, b: "x"}" on one line: each pair is assigned under key. */
static void ud_flow_mapping(struct ud_parser *p, const char *parent_of_key, const char *key,
			    const char *s)
{
	/* only a top-level key's flow mapping can hold paths we read */
	const char *parent = parent_of_key ? "" : key;
	for (s++;;) {
		while (ud_is_space(*s) || *s == ',')
			s++;
		if (*s == '}')
			break;
		char k[64] = "";
		const char *e = ud_key(s, k, sizeof(k));
		if (!e) {
			if (ud_relevant(parent, k))
				ud_problem(p, "unsupported flow mapping (write one key per line)");
			return;
		}
		for (e++; ud_is_space(*e);)
			e++;
		char *v = ud_scalar(e, ",}", &s);
		if (!v) {
			if (ud_relevant(parent, k))
				ud_problem(p, "unterminated or invalid quoted string");
			return;
		}
		ud_assign(p, parent, k, v);
		while (ud_is_space(*s))
			s++;
		if (*s != ',' && *s != '}') {
			if (ud_relevant(parent, k))
				ud_problem(p, "unsupported flow mapping (write one key per line)");
			return;
		}
	}
}

/* Whether the line being read is an item of a top-level ca_certs: trusted:. */
static bool ud_in_trusted(const struct ud_parser *p)
{
	return p->depth == 2 && p->stack[0].indent == 0 && ud_is_ca_certs(p->stack[0].key) &&
	       strcmp(p->stack[1].key, "trusted") == 0;
}

/* One certificate of trusted:, from the item at line lineno. */
static void ud_add_cert(struct ud_parser *p, const char *pem, unsigned lineno)
{
	if (!strstr(pem, "-----BEGIN CERTIFICATE-----") || !strstr(pem, "-----END CERTIFICATE-----")) {
		ud_problem_at(p, lineno, "ca_certs: trusted: item is not a PEM certificate "
				         "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
		return;
	}
	agent_buf_puts(&p->ca, pem);
	if (p->ca.data[p->ca.len - 1] != '\n')
		agent_buf_puts(&p->ca, "\n");
}

/* The end of a captured literal block: it is one certificate. */
static void ud_block_end(struct ud_parser *p)
{
	if (!p->capturing)
		return;
	p->capturing = false;
	/* trailing blank lines are not content (YAML's clip chomping); one newline ends each PEM */
	while (p->block.len > 0 && p->block.data[p->block.len - 1] == '\n')
		p->block.data[--p->block.len] = 0;
	ud_add_cert(p, p->block.data ? p->block.data : "", p->item_line);
	agent_buf_free(&p->block);
}

/* A line inside a captured block (indent > the item's column, or blank). */
static void ud_block_line(struct ud_parser *p, const char *l, int indent, bool blank)
{
	if (!blank && p->block_content < 0)
		p->block_content = indent;
	if (!blank && indent < p->block_content)
		ud_problem(p, "ca_certs: trusted: a certificate line is indented less than the first");
	else if (!blank)
		agent_buf_puts(&p->block, l + p->block_content);
	agent_buf_puts(&p->block, "\n");
}

/* "- value" under ca_certs: trusted: at column indent; a "- |" starts a
 * capture that the following, deeper lines fill. */
static void ud_trusted_item(struct ud_parser *p, const char *v, int indent, int *block_indent)
{
	while (ud_is_space(*v))
		v++;
	if (*v == '|') {
		const char *e = v + 1;
		if (*e == '-' || *e == '+')
			e++;
		if (!ud_rest_is_blank(e)) {
			ud_problem(p, "ca_certs: trusted: only plain literal blocks (|, |-, |+) are supported");
			return;
		}
		*block_indent = indent;
		p->capturing = true;
		p->block_content = -1;
		p->item_line = p->lineno;
	} else if (*v == '"' || *v == '\'') {
		const char *end;
		char *pem = ud_scalar(v, "", &end);
		if (!pem || !ud_rest_is_blank(end))
			ud_problem(p, "unterminated or invalid quoted string (a quoted certificate must be "
				      "on one line, with \\n escapes)");
		else
			ud_add_cert(p, pem, p->lineno);
		free(pem);
	} else if (*v == '>') {
		ud_problem(p, "ca_certs: trusted: a folded block (>) joins the certificate's lines; "
			      "use a literal block (- |)");
	} else {
		ud_problem(p, "ca_certs: trusted: write each certificate as a literal block (- |) "
			      "or a quoted string");
	}
}

static int ud_indent(const char *line, size_t n, bool *ret_tab)
{
	int i = 0;
	while ((size_t)i < n && line[i] == ' ')
		i++;
	*ret_tab = (size_t)i < n && line[i] == '\t';
	return i;
}

static void ud_cloud_config(struct ud_parser *p, const char *text)
{
	int block_indent = -1; /* inside a block scalar started by a key at this column */
	for (const char *line = text; line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *l = strndup(line, n);
		if (!l)
			abort();
		line = nl ? nl + 1 : NULL;
		p->lineno++;
		if (n > 0 && l[n - 1] == '\r')
			l[--n] = 0;
		bool tab;
		int indent = ud_indent(l, n, &tab);
		const char *s = l + indent, *t = s;
		while (ud_is_space(*t))
			t++;
		bool blank = *t == 0 || *t == '#';
		if (block_indent >= 0 && p->capturing && (*t == 0 || indent > block_indent)) {
			ud_block_line(p, l, indent, *t == 0);
			free(l);
			continue;
		}
		if (block_indent >= 0 && !p->capturing && (blank || indent > block_indent)) {
			free(l);
			continue;
		}
		ud_block_end(p);
		block_indent = -1;
		if (blank || strcmp(s, "...") == 0) {
			free(l);
			continue;
		}
		if (strncmp(s, "---", 3) == 0 && (s[3] == 0 || ud_is_space(s[3]))) {
			p->depth = 0;
			free(l);
			continue;
		}
		if (tab) {
			/* judged before popping: the tab was most likely meant as a child's indent */
			const char *top = p->depth ? p->stack[0].key : "";
			if (ud_relevant(NULL, top))
				ud_problem(p, "tab in indentation (YAML allows spaces only)");
			free(l);
			continue;
		}
		bool item = *s == '-' && (s[1] == 0 || ud_is_space(s[1]));
		/* "key:\n- item" at the key's own column is still the key's sequence */
		while (p->depth > 0 && (p->stack[p->depth - 1].indent > indent ||
					(p->stack[p->depth - 1].indent == indent && !(item && p->stack[p->depth - 1].open))))
			p->depth--;
		const char *parent = ud_parent(p);
		char key[64];
		const char *e = NULL;
		bool open = false;
		if (item) {
			snprintf(key, sizeof(key), "-");
			if (ud_in_trusted(p))
				ud_trusted_item(p, s + 1, indent, &block_indent);
		} else if (!(e = ud_key(s, key, sizeof(key)))) {
			free(l); /* continuation of a multi-line scalar, or something we skip */
			continue;
		}
		if (e) {
			for (e++; ud_is_space(*e);)
				e++;
			open = *e == 0 || *e == '#';
			if (!open && parent && ud_is_ca_certs(parent) && strcmp(key, "trusted") == 0) {
				ud_problem(p, "ca_certs: trusted: must be a block list of certificates (- |)");
			} else if (!open && *e != '{' && !parent && ud_is_ca_certs(key)) {
				ud_problem(p, "ca_certs: must be a mapping (trusted:)");
			} else if (*e == '|' || *e == '>') {
				block_indent = indent;
			} else if (*e == '{') {
				ud_flow_mapping(p, parent, key, e);
			} else if (*e && *e != '#' && *e != '[' && *e != '&' && *e != '*' && *e != '!') {
				const char *end;
				char *v = ud_scalar(e, "", &end);
				if (!v || !ud_rest_is_blank(end)) {
					/* elsewhere it may be YAML we do not read, e.g. a
					 * double-quoted scalar spanning lines */
					free(v);
					if (ud_relevant(parent, key))
						ud_problem(p, "unterminated or invalid quoted string");
				} else {
					ud_assign(p, parent, key, v);
				}
			}
		}
		if (p->depth < UD_MAX_DEPTH) {
			p->stack[p->depth].indent = indent;
			snprintf(p->stack[p->depth].key, sizeof(p->stack[p->depth].key), "%s", key);
			p->stack[p->depth].open = open;
			p->depth++;
		}
		free(l);
	}
	ud_block_end(p);
}

/* The PERSCODE= form: the first such line wins, optional quotes allowed. */
static void ud_plain(struct agent_userdata *u, const char *text)
{
	static const char prefix[] = "PERSCODE=";
	for (const char *line = text; line && !u->perscode;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		const char *s = line;
		line = nl ? nl + 1 : NULL;
		while (n > 0 && ud_is_space(*s))
			s++, n--;
		while (n > 0 && (ud_is_space(s[n - 1]) || s[n - 1] == '\r'))
			n--;
		if (n < sizeof(prefix) - 1 || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
			continue;
		s += sizeof(prefix) - 1;
		n -= sizeof(prefix) - 1;
		if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0])
			s++, n -= 2;
		u->perscode = strndup(s, n);
		if (!u->perscode)
			abort();
	}
}

int agent_userdata_parse(const char *text, struct agent_userdata *ret)
{
	static const char magic[] = "#cloud-config";
	if (strncmp(text, "\xef\xbb\xbf", 3) == 0)
		text += 3;
	if (strncmp(text, magic, sizeof(magic) - 1) == 0 &&
	    strchr(" \t\r\n", text[sizeof(magic) - 1])) {
		struct ud_parser p = { .out = ret };
		ret->cloud_config = true;
		ud_cloud_config(&p, text);
		if (p.ca.len)
			ret->ca_pem = agent_buf_steal(&p.ca);
		agent_buf_free(&p.ca);
		if (p.failed) {
			ret->malformed = true;
			return -1;
		}
		if (!ret->perscode)
			return agent_fail("user-data (#cloud-config) has no qvsa: perscode:");
		return 0;
	}
	ud_plain(ret, text);
	if (!ret->perscode)
		return agent_fail("user-data has no PERSCODE= line and is not #cloud-config");
	return 0;
}

void agent_userdata_free(struct agent_userdata *u)
{
	if (!u)
		return;
	free(u->perscode);
	free(u->platform_url);
	free(u->proxy);
	free(u->ca_pem);
	*u = (struct agent_userdata){ 0 };
}

int agent_perscode_check(const char *code)
{
	size_t n = strlen(code);
	for (size_t i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			return agent_fail("personalization code must be digits only "
					  "(character %zu is not)", i + 1);
	if (n < 6 || n > 32)
		return agent_fail("personalization code must be 6 to 32 digits long (it has %zu)", n);
	return 0;
}
