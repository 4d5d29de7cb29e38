/* Helpers the emulators share: answers, query parameters, base64, ids
 * derived from the run's instance id, XML documents. */
#include "platform_impl.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void platform_answer_take(struct httpd_response *resp, int status, const char *content_type, char *body,
			  size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = body ? len : 0;
}

void platform_answer(struct httpd_response *resp, int status, const char *content_type, const char *body)
{
	platform_answer_take(resp, status, content_type, body ? xstrdup(body) : NULL, body ? strlen(body) : 0);
}

void platform_answer_header(struct httpd_response *resp, const char *name, const char *value)
{
	size_t used = strlen(resp->extra_headers), left = sizeof(resp->extra_headers) - used;
	int n = snprintf(resp->extra_headers + used, left, "%s: %s\r\n", name, value);
	if (n < 0 || (size_t)n >= left)
		abort(); /* our own constant headers: a truncation is a bug */
}

bool platform_query_param(const char *query, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	for (const char *s = query; s && *s; s = strchr(s, '&') ? strchr(s, '&') + 1 : NULL) {
		size_t len = strcspn(s, "&");
		if (len > klen && strncmp(s, key, klen) == 0 && s[klen] == '=') {
			if (len - klen - 1 >= size)
				return false;
			memcpy(buf, s + klen + 1, len - klen - 1);
			buf[len - klen - 1] = 0;
			return true;
		}
	}
	return false;
}

char *platform_base64(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		abort();
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

void platform_derive_hex(const char *seed, const char *salt, size_t n, char *out)
{
	_cleanup_free_ char *in = xasprintf("%s\n%s", salt, seed);
	char hex[65];
	sha256_hex(in, strlen(in), hex);
	if (n > 64)
		n = 64;
	memcpy(out, hex, n);
	out[n] = 0;
}

void platform_derive_uuid(const char *seed, const char *salt, char out[37])
{
	char hex[33];
	platform_derive_hex(seed, salt, 32, hex);
	static const char digits[] = "0123456789abcdef";
	hex[12] = '4'; /* version 4: a random id to anyone reading it */
	hex[16] = "89ab"[(strchr(digits, hex[16]) - digits) & 3]; /* RFC 4122 variant */
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void platform_xml_start(struct platform_xml *x)
{
	*x = (struct platform_xml){ .buf = xmlBufferCreate() };
	x->w = x->buf ? xmlNewTextWriterMemory(x->buf, 0) : NULL;
	x->failed = !x->w || xmlTextWriterSetIndent(x->w, 1) < 0 ||
		    xmlTextWriterSetIndentString(x->w, BAD_CAST "  ") < 0 ||
		    xmlTextWriterStartDocument(x->w, "1.0", "utf-8", NULL) < 0;
}

void platform_xml_open(struct platform_xml *x, const char *name)
{
	x->failed = x->failed || xmlTextWriterStartElement(x->w, BAD_CAST name) < 0;
}

void platform_xml_attr(struct platform_xml *x, const char *name, const char *value)
{
	x->failed = x->failed || xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value) < 0;
}

void platform_xml_leaf(struct platform_xml *x, const char *name, const char *text)
{
	x->failed = x->failed || xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST text) < 0;
}

void platform_xml_close(struct platform_xml *x)
{
	x->failed = x->failed || xmlTextWriterEndElement(x->w) < 0;
}

char *platform_xml_finish(struct platform_xml *x, const char *what)
{
	x->failed = x->failed || xmlTextWriterEndDocument(x->w) < 0;
	if (x->w)
		xmlFreeTextWriter(x->w); /* flushes into buf */
	char *text = NULL;
	if (!x->failed && x->buf)
		text = xstrdup((const char *)xmlBufferContent(x->buf));
	if (x->buf)
		xmlBufferFree(x->buf);
	*x = (struct platform_xml){ 0 };
	if (!text)
		err_fail("writing %s: libxml2 failed", what);
	return text;
}
