/* OVF 1.0 descriptor, read back for the OVA's check: a minimal but strict
 * XML reader (elements, attributes, character data, comments, processing
 * instructions, CDATA, the five predefined and numeric entities; no DTD).
 * Names are compared by local part, so the reader does not depend on the
 * prefixes the writer (ovf.c) happens to use. */
#include "ovf.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One element of the parsed document. */
struct xnode {
	char *name;          /* qualified name as written */
	char **attrs;        /* name, value, name, value, ..., NULL (values decoded) */
	size_t n_attrs;      /* pairs in attrs */
	char *text;          /* concatenated character data, decoded; never NULL */
	size_t text_len;     /* bytes in text */
	struct xnode *child; /* first child element, or NULL */
	struct xnode *next;  /* next sibling, or NULL */
};

/* Parser position; the first error is recorded with its line. */
struct xparser {
	const char *start; /* document start */
	const char *p;     /* current position */
	const char *end;   /* one past the last byte */
	const char *what;  /* document name for messages */
	int depth;         /* element nesting, bounded */
};

static void xnode_free(struct xnode *n)
{
	while (n) {
		struct xnode *next = n->next;
		xnode_free(n->child);
		for (size_t i = 0; i < 2 * n->n_attrs; i++)
			free(n->attrs[i]);
		free(n->attrs);
		free(n->name);
		free(n->text);
		free(n);
		n = next;
	}
}

static int xfail(const struct xparser *x, const char *reason)
{
	int line = 1;
	for (const char *c = x->start; c < x->p && c < x->end; c++)
		line += *c == '\n';
	return err_fail("OVF descriptor '%s': line %d: %s", x->what, line, reason);
}

static bool at(const struct xparser *x, const char *s)
{
	size_t n = strlen(s);
	return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static void skip_ws(struct xparser *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

static bool name_char(unsigned char c, bool first)
{
	if (c >= 0x80 || c == '_' || c == ':' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

static char *read_name(struct xparser *x)
{
	const char *s = x->p;
	if (x->p >= x->end || !name_char((unsigned char)*x->p, true)) {
		xfail(x, "expected a name");
		return NULL;
	}
	while (x->p < x->end && name_char((unsigned char)*x->p, false))
		x->p++;
	return strndup(s, (size_t)(x->p - s));
}

/* Skip past terminator; error if it never comes. */
static int skip_past(struct xparser *x, const char *terminator, const char *what)
{
	const char *hit = memmem(x->p, (size_t)(x->end - x->p), terminator, strlen(terminator));
	if (!hit)
		return xfail(x, what);
	x->p = hit + strlen(terminator);
	return 0;
}

/* Append a UTF-8 encoded code point. */
static void put_utf8(FILE *f, unsigned long cp)
{
	if (cp < 0x80) {
		fputc((int)cp, f);
	} else if (cp < 0x800) {
		fputc((int)(0xc0 | cp >> 6), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	} else if (cp < 0x10000) {
		fputc((int)(0xe0 | cp >> 12), f);
		fputc((int)(0x80 | ((cp >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	} else {
		fputc((int)(0xf0 | cp >> 18), f);
		fputc((int)(0x80 | ((cp >> 12) & 0x3f)), f);
		fputc((int)(0x80 | ((cp >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	}
}

/* Decode character data up to (not including) a byte in stop, into f. */
static int read_chars(struct xparser *x, const char *stop, FILE *f)
{
	static const struct { const char *ref; char c; } named[] = {
		{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''},
	};
	while (x->p < x->end && !strchr(stop, *x->p)) {
		if (*x->p == 0)
			return xfail(x, "NUL byte");
		if (*x->p != '&') {
			fputc(*x->p++, f);
			continue;
		}
		bool done = false;
		for (size_t i = 0; i < ELEMENTSOF(named) && !done; i++)
			if (at(x, named[i].ref)) {
				fputc(named[i].c, f);
				x->p += strlen(named[i].ref);
				done = true;
			}
		if (done)
			continue;
		if (!at(x, "&#"))
			return xfail(x, "'&' that starts no character or predefined entity reference");
		x->p += 2;
		int base = 10;
		if (x->p < x->end && *x->p == 'x') {
			base = 16;
			x->p++;
		}
		char num[16];
		size_t n = 0;
		while (x->p < x->end && *x->p != ';' && n + 1 < sizeof(num))
			num[n++] = *x->p++;
		num[n] = 0;
		char *e;
		unsigned long cp = strtoul(num, &e, base);
		if (n == 0 || *e || x->p >= x->end || *x->p != ';' || cp == 0 || cp > 0x10ffff)
			return xfail(x, "bad character reference");
		x->p++;
		put_utf8(f, cp);
	}
	return 0;
}

static int read_attrs(struct xparser *x, struct xnode *n)
{
	for (;;) {
		const char *before = x->p;
		skip_ws(x);
		if (x->p >= x->end)
			return xfail(x, "document ends inside a start tag");
		if (*x->p == '>' || at(x, "/>"))
			return 0;
		if (x->p == before)
			return xfail(x, "expected white space before an attribute");
		_cleanup_free_ char *name = read_name(x);
		if (!name)
			return -1;
		skip_ws(x);
		if (x->p >= x->end || *x->p != '=')
			return xfail(x, "expected '=' after an attribute name");
		x->p++;
		skip_ws(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xfail(x, "attribute value is not quoted");
		char quote[3] = {*x->p++, '<', 0};
		char *val = NULL;
		size_t vlen = 0;
		FILE *f = open_memstream(&val, &vlen);
		int rc = read_chars(x, quote, f);
		fclose(f);
		if (rc == 0 && (x->p >= x->end || *x->p != quote[0]))
			rc = xfail(x, "'<' or end of document inside an attribute value");
		for (size_t i = 0; rc == 0 && i < n->n_attrs; i++)
			if (strcmp(n->attrs[2 * i], name) == 0)
				rc = xfail(x, "duplicate attribute");
		if (rc < 0) {
			free(val);
			return -1;
		}
		x->p++;
		char **na = realloc(n->attrs, (2 * n->n_attrs + 3) * sizeof(*na));
		if (!na)
			abort();
		n->attrs = na;
		n->attrs[2 * n->n_attrs] = TAKE_PTR(name);
		n->attrs[2 * n->n_attrs + 1] = val;
		n->n_attrs++;
		n->attrs[2 * n->n_attrs] = NULL;
	}
}

/* Comments and processing instructions (allowed between elements). */
static int skip_misc(struct xparser *x, bool *ret_skipped)
{
	*ret_skipped = true;
	if (at(x, "<!--"))
		return skip_past(x, "-->", "unterminated comment");
	if (at(x, "<?"))
		return skip_past(x, "?>", "unterminated processing instruction");
	*ret_skipped = false;
	return 0;
}

/* An element starting at '<'; its children recursively. */
static int read_element(struct xparser *x, struct xnode **ret)
{
	if (++x->depth > 64)
		return xfail(x, "elements nested too deeply");
	x->p++;
	struct xnode *n = calloc(1, sizeof(*n));
	if (!n)
		abort();
	char *text = NULL;
	size_t tlen = 0;
	FILE *tf = NULL;
	struct xnode **tail = &n->child;
	int rc = -1;
	if (!(n->name = read_name(x)) || read_attrs(x, n) < 0)
		goto out;
	if (at(x, "/>")) {
		x->p += 2;
		rc = 0;
		goto out;
	}
	x->p++;
	tf = open_memstream(&text, &tlen);
	for (;;) {
		if (read_chars(x, "<", tf) < 0)
			goto out;
		if (x->p >= x->end) {
			xfail(x, "document ends inside an element");
			goto out;
		}
		bool skipped;
		if (skip_misc(x, &skipped) < 0)
			goto out;
		if (skipped)
			continue;
		if (at(x, "<![CDATA[")) {
			const char *s = x->p + 9;
			if (skip_past(x, "]]>", "unterminated CDATA section") < 0)
				goto out;
			fwrite(s, 1, (size_t)(x->p - 3 - s), tf);
			continue;
		}
		if (at(x, "</")) {
			x->p += 2;
			_cleanup_free_ char *close = read_name(x);
			if (!close)
				goto out;
			if (strcmp(close, n->name) != 0) {
				xfail(x, "end tag does not match its start tag");
				goto out;
			}
			skip_ws(x);
			if (x->p >= x->end || *x->p != '>') {
				xfail(x, "expected '>' to close an end tag");
				goto out;
			}
			x->p++;
			rc = 0;
			goto out;
		}
		struct xnode *c = NULL;
		if (read_element(x, &c) < 0)
			goto out;
		*tail = c;
		tail = &c->next;
	}
out:
	if (tf)
		fclose(tf);
	n->text = text ? text : xstrdup("");
	n->text_len = text ? tlen : 0;
	x->depth--;
	if (rc < 0) {
		xnode_free(n);
		return -1;
	}
	*ret = n;
	return 0;
}

static int xml_parse(const char *xml, size_t len, const char *what, struct xnode **ret)
{
	struct xparser x = {.start = xml, .p = xml, .end = xml + len, .what = what};
	if (memchr(xml, 0, len))
		return xfail(&x, "NUL byte in the document");
	if (at(&x, "<?xml") && skip_past(&x, "?>", "unterminated XML declaration") < 0)
		return -1;
	struct xnode *root = NULL;
	for (;;) {
		skip_ws(&x);
		if (x.p >= x.end)
			break;
		bool skipped;
		if (skip_misc(&x, &skipped) < 0) {
			xnode_free(root);
			return -1;
		}
		if (skipped)
			continue;
		if (root || *x.p != '<' || at(&x, "<!")) {
			xnode_free(root);
			return xfail(&x, root ? "content after the root element" : "expected the root element");
		}
		if (read_element(&x, &root) < 0)
			return -1;
	}
	if (!root)
		return xfail(&x, "no root element");
	*ret = root;
	return 0;
}

static const char *local(const char *name)
{
	const char *c = strrchr(name, ':');
	return c ? c + 1 : name;
}

static const char *attr(const struct xnode *n, const char *lname)
{
	for (size_t i = 0; i < n->n_attrs; i++)
		if (strcmp(local(n->attrs[2 * i]), lname) == 0)
			return n->attrs[2 * i + 1];
	return NULL;
}

static const struct xnode *child(const struct xnode *n, const char *lname)
{
	for (const struct xnode *c = n ? n->child : NULL; c; c = c->next)
		if (strcmp(local(c->name), lname) == 0)
			return c;
	return NULL;
}

static char *text_dup(const struct xnode *n) { return n ? xstrdup(n->text) : NULL; }

static int u64_of(const char *s, uint64_t *ret)
{
	char *e;
	if (!s || !*s || s[strspn(s, "0123456789")] != 0)
		return -1;
	*ret = strtoull(s, &e, 10);
	return 0;
}

/* ProductSection children in the order vSphere shows them: Info, Product, Vendor, Version, FullVersion. */
static int product_order(const struct xnode *ps, const char *what)
{
	static const char *const order[] = {"Info", "Product", "Vendor", "Version", "FullVersion"};
	const struct xnode *c = ps->child;
	for (size_t i = 0; i < ELEMENTSOF(order); i++, c = c->next)
		if (!c || strcmp(local(c->name), order[i]) != 0)
			return err_fail("OVF descriptor '%s': ProductSection element %zu is %s, expected %s", what, i + 1,
					c ? local(c->name) : "missing", order[i]);
	return 0;
}

/* Whether space-separated list holds word. */
static bool lists_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *c = list; c && *c;) {
		c += strspn(c, " \t\n");
		size_t len = strcspn(c, " \t\n");
		if (len == n && strncmp(c, word, n) == 0)
			return true;
		c += len;
	}
	return false;
}

/* User-configurable properties of every ProductSection, by the key the
 * guest sees in its OVF environment: CLASS.KEY, or KEY without a class. */
static void read_properties(const struct xnode *vs, struct ovf_info *i)
{
	for (const struct xnode *ps = vs->child; ps; ps = ps->next) {
		if (strcmp(local(ps->name), "ProductSection") != 0)
			continue;
		const char *cls = attr(ps, "class");
		for (const struct xnode *p = ps->child; p; p = p->next) {
			const char *key = attr(p, "key"), *uc = attr(p, "userConfigurable");
			if (strcmp(local(p->name), "Property") != 0 || !key || !uc || strcmp(uc, "true") != 0)
				continue;
			_cleanup_free_ char *full = cls && *cls ? xasprintf("%s.%s", cls, key) : xstrdup(key);
			if (strcmp(full, OVF_PERSCODE_KEY) == 0)
				i->has_perscode = true;
			if (strcmp(full, OVF_USER_DATA_KEY) == 0)
				i->has_user_data = true;
		}
	}
}

static void read_hardware(const struct xnode *vhs, struct ovf_info *i)
{
	for (const struct xnode *it = vhs ? vhs->child : NULL; it; it = it->next) {
		if (strcmp(local(it->name), "Item") != 0)
			continue;
		const struct xnode *type = child(it, "ResourceType"), *sub = child(it, "ResourceSubType");
		if (!type || !sub)
			continue;
		if (strcmp(type->text, "6") == 0 && strcmp(sub->text, "VirtualSCSI") == 0)
			i->has_pvscsi = true;
		if (strcmp(type->text, "10") == 0 && strcmp(sub->text, "VmxNet3") == 0)
			i->has_vmxnet3 = true;
	}
}

static int read_info(const struct xnode *root, const char *what, struct ovf_info *i)
{
	if (strcmp(local(root->name), "Envelope") != 0)
		return err_fail("OVF descriptor '%s': root element is %s, not Envelope", what, root->name);
	const struct xnode *refs = child(root, "References"), *ds = child(root, "DiskSection"),
			   *vs = child(root, "VirtualSystem");
	const struct xnode *ps = child(vs, "ProductSection"), *vhs = child(vs, "VirtualHardwareSection");
	const char *missing = !refs ? "References" : !ds ? "DiskSection" : !child(root, "NetworkSection") ? "NetworkSection"
			      : !vs ? "VirtualSystem" : !ps ? "ProductSection" : !vhs ? "VirtualHardwareSection" : NULL;
	if (missing)
		return err_fail("OVF descriptor '%s': no %s", what, missing);
	for (const struct xnode *f = refs->child; f; f = f->next) {
		if (strcmp(local(f->name), "File") != 0)
			continue;
		if (i->n_files == OVF_MAX_FILES)
			return err_fail("OVF descriptor '%s': more than %d files", what, OVF_MAX_FILES);
		struct ovf_file *of = &i->files[i->n_files];
		const char *id = attr(f, "id"), *href = attr(f, "href");
		if (!id || !href || u64_of(attr(f, "size"), &of->size) < 0)
			return err_fail("OVF descriptor '%s': File %zu lacks ovf:id, ovf:href or a numeric ovf:size", what,
					i->n_files + 1);
		of->id = xstrdup(id);
		of->href = xstrdup(href);
		i->n_files++;
	}
	const struct xnode *disk = child(ds, "Disk");
	const char *units = disk ? attr(disk, "capacityAllocationUnits") : NULL;
	if (!disk || u64_of(attr(disk, "capacity"), &i->capacity) < 0 || !attr(disk, "fileRef"))
		return err_fail("OVF descriptor '%s': no Disk with a numeric ovf:capacity and an ovf:fileRef", what);
	if (units && strcmp(units, "byte") != 0)
		return err_fail("OVF descriptor '%s': Disk capacity is in '%s', expected bytes", what, units);
	i->disk_file_ref = xstrdup(attr(disk, "fileRef"));
	i->disk_format = attr(disk, "format") ? xstrdup(attr(disk, "format")) : NULL;
	if (product_order(ps, what) < 0)
		return -1;
	i->version = text_dup(child(ps, "Version"));
	i->full_version = text_dup(child(ps, "FullVersion"));
	read_properties(vs, i);
	const struct xnode *os = child(vs, "OperatingSystemSection");
	uint64_t os_id = 0;
	if (os && u64_of(attr(os, "id"), &os_id) == 0 && os_id <= 65535)
		i->os_id = (unsigned)os_id;
	i->os_description = text_dup(child(os, "Description"));
	i->iso_transport = lists_word(attr(vhs, "transport"), "iso");
	read_hardware(vhs, i);
	return 0;
}

int ovf_read(const char *xml, size_t len, const char *what, struct ovf_info *ret)
{
	struct xnode *root = NULL;
	memset(ret, 0, sizeof(*ret));
	if (xml_parse(xml, len, what, &root) < 0)
		return -1;
	int rc = read_info(root, what, ret);
	xnode_free(root);
	if (rc < 0)
		ovf_info_clear(ret);
	return rc;
}

void ovf_info_clear(struct ovf_info *i)
{
	for (size_t k = 0; k < i->n_files; k++) {
		free(i->files[k].id);
		free(i->files[k].href);
	}
	free(i->disk_file_ref);
	free(i->disk_format);
	free(i->version);
	free(i->full_version);
	free(i->os_description);
	memset(i, 0, sizeof(*i));
}
