/* Masking secrets in URLs for messages and logs (see redact.h). */
#include "redact.h"

#include "fs.h"

#include <stdlib.h>
#include <string.h>

/* A user name worth keeping in a message: short and plain. */
static bool plain_user(const char *s, size_t n)
{
	return n > 0 && n <= 32 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-") >= n;
}

char *redact_url(const char *s)
{
	const char *scheme = strstr(s, "://");
	const char *auth = scheme ? scheme + 3 : s;
	/* A password may hold '/', '@', ':', '?' or '#': the user-info is
	 * everything up to the last '@', which over-masks rather than leaks. */
	const char *at = strrchr(auth, '@');
	const char *host = at ? at + 1 : auth;
	size_t tail = strcspn(host, "?#");
	char *user_part = NULL;
	if (at) {
		size_t ulen = strcspn(auth, ":");
		user_part = ulen < (size_t)(at - auth) && plain_user(auth, ulen) ? xasprintf("%.*s:***@", (int)ulen, auth)
										 : xstrdup("***@");
	}
	char *out = xasprintf("%.*s%s%.*s%s", (int)(auth - s), s, user_part ? user_part : "", (int)tail, host,
			      host[tail] == '?' ? "?***" : host[tail] == '#' ? "#***" : "");
	free(user_part);
	return out;
}

bool redact_needed(const char *s)
{
	const char *scheme = strstr(s, "://");
	const char *auth = scheme ? scheme + 3 : s;
	return strchr(auth, '@') || strpbrk(auth, "?#");
}
