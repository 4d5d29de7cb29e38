/* Strict base64 decoding for what platforms hand over encoded (OCI's
 * user_data, Azure's CustomData, the OVF user-data property). A wrong
 * character or padding is an error, never silently skipped: the text holds
 * the personalization code. */
#include "channel.h"

#include <stdlib.h>
#include <string.h>

static int agent_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int agent_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
	struct agent_buf out = { 0 };
	unsigned char quad[4];
	size_t q = 0, pad = 0, pos = 0;
	agent_buf_add(&out, "", 0);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		pos++;
		int v;
		if (c == '=') {
			/* padding only in the last two places of a group */
			if (q < 2)
				goto bad;
			pad++;
			v = 0;
		} else {
			v = agent_b64_value(c);
			if (v < 0 || pad)
				goto bad;
		}
		quad[q++] = (unsigned char)v;
		if (q < 4)
			continue;
		unsigned char bytes[3] = { (unsigned char)(quad[0] << 2 | quad[1] >> 4),
					   (unsigned char)(quad[1] << 4 | quad[2] >> 2),
					   (unsigned char)(quad[2] << 6 | quad[3]) };
		/* the bits padding hides must be zero, or the text was not made by an encoder */
		if ((pad == 1 && (quad[2] & 3)) || (pad == 2 && (quad[1] & 15)))
			goto bad;
		agent_buf_add(&out, bytes, 3 - pad);
		q = 0;
		if (pad) {
			/* nothing but blanks after the padded group */
			for (i++; i < len; i++)
				if (!strchr(" \t\r\n", s[i]))
					goto bad;
			break;
		}
	}
	if (q != 0)
		goto bad;
	if (memchr(out.data, 0, out.len)) {
		explicit_bzero(out.data, out.len);
		agent_buf_free(&out);
		return agent_fail("base64: the decoded text contains a NUL byte");
	}
	*ret_len = out.len;
	*ret = agent_buf_steal(&out);
	return 0;
bad:
	explicit_bzero(out.data, out.len);
	agent_buf_free(&out);
	return agent_fail("base64: malformed at character %zu", pos);
}
