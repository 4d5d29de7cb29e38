/* Errors, buffers and small file helpers for the agent. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char agent_errbuf[1024];

static int agent_vfail(const char *fmt, va_list ap)
{
	vsnprintf(agent_errbuf, sizeof(agent_errbuf), fmt, ap);
	return -1;
}

int agent_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	agent_vfail(fmt, ap);
	va_end(ap);
	return -1;
}

int agent_fail_errno(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	agent_vfail(fmt, ap);
	va_end(ap);
	size_t n = strlen(agent_errbuf);
	snprintf(agent_errbuf + n, sizeof(agent_errbuf) - n, ": %s", strerror(errnum));
	return -1;
}

const char *agent_error(void) { return agent_errbuf; }

static void agent_buf_reserve(struct agent_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *n = realloc(b->data, cap);
	if (!n)
		abort();
	b->data = n;
	b->cap = cap;
}

void agent_buf_add(struct agent_buf *b, const void *data, size_t len)
{
	agent_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
}

void agent_buf_puts(struct agent_buf *b, const char *s) { agent_buf_add(b, s, strlen(s)); }

void agent_buf_printf(struct agent_buf *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	agent_buf_add(b, s, (size_t)n);
	free(s);
}

void agent_buf_json_string(struct agent_buf *b, const char *s)
{
	agent_buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			agent_buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			agent_buf_puts(b, "\\n");
		else if (*p == '\t')
			agent_buf_puts(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			agent_buf_printf(b, "\\u%04x", *p);
		else
			agent_buf_add(b, p, 1);
	}
	agent_buf_add(b, "\"", 1);
}

char *agent_buf_steal(struct agent_buf *b)
{
	char *s = b->data ? b->data : agent_strdup("");
	*b = (struct agent_buf){ 0 };
	return s;
}

void agent_buf_free(struct agent_buf *b)
{
	free(b->data);
	*b = (struct agent_buf){ 0 };
}

char *agent_strdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

char *agent_printf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return s;
}

int agent_read_file(const char *path, size_t max, char **ret_text)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return agent_fail_errno(errno, "reading '%s'", path);
	struct agent_buf b = { 0 };
	char chunk[4096];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			agent_buf_free(&b);
			return agent_fail_errno(e, "reading '%s'", path);
		}
		if (r == 0)
			break;
		if (b.len + (size_t)r > max) {
			close(fd);
			agent_buf_free(&b);
			return agent_fail("reading '%s': larger than %zu bytes", path, max);
		}
		agent_buf_add(&b, chunk, (size_t)r);
	}
	close(fd);
	*ret_text = agent_buf_steal(&b);
	return 0;
}

static int agent_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The directory entry of a rename is only durable once the directory is synced. */
static void agent_fsync_dir(const char *path)
{
	char *copy = agent_strdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int agent_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode)
{
	char *tmp = agent_printf("%s.tmp", path);
	int r = -1, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		agent_fail_errno(errno, "writing '%s'", tmp);
		goto out;
	}
	if (agent_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		agent_fail_errno(errno, "writing '%s'", tmp);
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		agent_fail_errno(errno, "writing '%s'", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		agent_fail_errno(errno, "renaming '%s' to '%s'", tmp, path);
		goto out;
	}
	agent_fsync_dir(path);
	r = 0;
out:
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

/* Undo os-release quoting: "..." with backslash escapes, or '...' verbatim. */
static char *agent_kv_unquote(const char *v, size_t n)
{
	struct agent_buf b = { 0 };
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		for (size_t i = 1; i + 1 < n; i++) {
			if (v[i] == '\\' && i + 2 < n)
				i++;
			agent_buf_add(&b, v + i, 1);
		}
	} else if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
		agent_buf_add(&b, v + 1, n - 2);
	} else {
		agent_buf_add(&b, v, n);
	}
	return agent_buf_steal(&b);
}

char *agent_kv_get(const char *text, const char *key)
{
	size_t klen = strlen(key);
	char *found = NULL;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *p = line;
		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > klen && p[0] != '#' && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			/* the last assignment wins, as when the file is sourced by a shell */
			free(found);
			found = agent_kv_unquote(p + klen + 1, n - klen - 1);
		}
		line = end ? end + 1 : NULL;
	}
	return found;
}

int agent_run(char *const argv[], bool quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return agent_fail_errno(errno, "running '%s'", argv[0]);
	if (pid == 0) {
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0) {
				dup2(null, STDOUT_FILENO);
				dup2(null, STDERR_FILENO);
			}
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return agent_fail_errno(errno, "waiting for '%s'", argv[0]);
	}
	if (!WIFEXITED(status))
		return agent_fail("'%s' was killed by signal %d", argv[0], WTERMSIG(status));
	return WEXITSTATUS(status);
}
