#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Per-thread so the platform stub thread cannot clobber the main thread's error. */
static __thread char err_buf[4096];
static __thread enum err_kind err_cur = ERR_NONE;

static int err_record(enum err_kind kind, const char *fmt, va_list ap)
{
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	err_cur = kind;
	return -1;
}

int err_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_record(ERR_FAIL, fmt, ap);
	va_end(ap);
	return -1;
}

int err_input(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_record(ERR_INPUT, fmt, ap);
	va_end(ap);
	return -1;
}

int err_errno(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_record(ERR_FAIL, fmt, ap);
	va_end(ap);
	size_t n = strlen(err_buf);
	snprintf(err_buf + n, sizeof(err_buf) - n, ": %s", strerror(errnum));
	return -1;
}

void err_prefix(const char *fmt, ...)
{
	char pre[1024], old[sizeof(err_buf)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err_buf, sizeof(old));
	/* Truncation keeps the start of the message, which names what failed. */
	size_t n = strlen(pre);
	if (n > sizeof(err_buf) - 3)
		n = sizeof(err_buf) - 3;
	memcpy(err_buf, pre, n);
	memcpy(err_buf + n, ": ", 2);
	size_t rest = sizeof(err_buf) - n - 3;
	size_t olen = strnlen(old, rest);
	memcpy(err_buf + n + 2, old, olen);
	err_buf[n + 2 + olen] = 0;
	if (err_cur == ERR_NONE)
		err_cur = ERR_FAIL;
}

const char *err_msg(void) { return err_cur == ERR_NONE ? NULL : err_buf; }
enum err_kind err_kind(void) { return err_cur; }
void err_clear(void) { err_cur = ERR_NONE; err_buf[0] = 0; }
