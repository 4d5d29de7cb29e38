/* One error path: library code records "operation 'object': reason" here and
 * returns a negative value; only main() prints the recorded message. */
#ifndef QVSA_ERR_H
#define QVSA_ERR_H

#include <errno.h>

/* What kind of failure was recorded; main() maps it to the exit code. */
enum err_kind {
	ERR_NONE = 0,
	ERR_FAIL = 1,  /* a build or verification step failed: exit 1 */
	ERR_INPUT = 2, /* bad usage or bad input (recipe, artifact): exit 2 */
};

/* Record a failure (exit 1). Always returns -1 so callers can `return err_fail(...)`. */
int err_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record bad input (exit 2). Always returns -1. */
int err_input(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like err_fail, with ": strerror(errnum)" appended. Returns -1. */
int err_errno(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the recorded message with "context: " (to add the outer operation). */
void err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The recorded message, or NULL if nothing was recorded. Owned by this module. */
const char *err_msg(void);
enum err_kind err_kind(void);
void err_clear(void);

#endif
