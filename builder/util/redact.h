/* What a message or a log line may show of a value the user wrote: URL
 * credentials, query strings and fragments never appear, whatever
 * characters the secret holds. Every message and log line that shows a URL
 * (platform, proxy) goes through here. */
#ifndef QVSA_REDACT_H
#define QVSA_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* Copy of s with a URL's user-info (all of it up to the last '@', keeping
 * a plain user name), its query and its fragment replaced by "***":
 * "http://u:p/@:ss@proxy:3128" -> "http://u:***@proxy:3128",
 * "https://h/p?code=1#x" -> "https://h/p?***". Works on text without a
 * scheme too. Newly allocated. */
char *redact_url(const char *s);
/* True if s would be changed by redact_url (it holds something secret). */
bool redact_needed(const char *s);

#endif
