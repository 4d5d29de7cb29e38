#include "console.h"

#include "cleanup.h"
#include "err.h"
#include "json.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A line longer than this is cut (status JSON lines fit well within it). */
#define CONSOLE_ASSEMBLY_MAX 4096

struct console {
	int fd;                                       /* the followed log; -1 until it exists */
	char cur[CONSOLE_ASSEMBLY_MAX + 1];            /* line being assembled, NUL-terminated */
	size_t cur_len;                                /* bytes in cur */
	int esc;                                       /* 0: text, 1: after ESC, 2: inside ESC [ ... */
	char ring[CONSOLE_TAIL_LINES][CONSOLE_LINE_MAX + 1]; /* last complete non-empty lines */
	unsigned next;                                 /* ring slot the next line goes to */
	unsigned count;                                /* lines in ring (<= CONSOLE_TAIL_LINES) */
	bool agent;                                    /* the agent's start marker was seen */
	char *status;                                  /* JSON after the first status marker; owned; may be NULL */
	char prompt[CONSOLE_PROMPT_MAX + 1];           /* <what> of the newest prompt; "" when none */
	bool prompt_open;                              /* that prompt is not answered yet */
	bool cur_prompted;                             /* the line in cur already gave its prompt */
};

struct console *console_new(void)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->fd = -1;
	return c;
}

void console_free(struct console *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->status);
	free(c);
}

static void check_markers(struct console *c, const char *line)
{
	if (!c->agent && strstr(line, CONSOLE_AGENT_MARKER))
		c->agent = true;
	const char *s;
	if (!c->status && (s = strstr(line, CONSOLE_STATUS_MARKER))) {
		s += strlen(CONSOLE_STATUS_MARKER);
		while (*s == ' ')
			s++;
		size_t n = strlen(s);
		while (n > 0 && s[n - 1] == ' ')
			n--;
		c->status = strndup(s, n);
		if (!c->status)
			abort();
	}
}

/* A prompt in line (complete: the word may end the line), once per line. */
static void check_prompt(struct console *c, const char *line, bool complete)
{
	const char *p;
	if (c->cur_prompted || !(p = strstr(line, CONSOLE_PROMPT_MARKER)))
		return;
	p += strlen(CONSOLE_PROMPT_MARKER);
	p += strspn(p, " ");
	size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	/* In a partial line the word may still be growing: wait for what follows it. */
	if (n == 0 || n > CONSOLE_PROMPT_MAX || (!complete && p[n] == 0))
		return;
	memcpy(c->prompt, p, n);
	c->prompt[n] = 0;
	c->prompt_open = true;
	c->cur_prompted = true;
}

static void end_line(struct console *c)
{
	c->cur[c->cur_len] = 0;
	if (c->cur_len == 0)
		return;
	check_markers(c, c->cur);
	check_prompt(c, c->cur, true);
	c->cur_prompted = false;
	size_t n = c->cur_len < CONSOLE_LINE_MAX ? c->cur_len : CONSOLE_LINE_MAX;
	memcpy(c->ring[c->next], c->cur, n);
	c->ring[c->next][n] = 0;
	c->next = (c->next + 1) % CONSOLE_TAIL_LINES;
	if (c->count < CONSOLE_TAIL_LINES)
		c->count++;
	c->cur_len = 0;
	c->cur[0] = 0;
}

void console_feed(struct console *c, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (c->esc == 1) { /* ESC x: a CSI starts with '[', anything else is one char */
			c->esc = ch == '[' ? 2 : 0;
			continue;
		}
		if (c->esc == 2) { /* CSI ends at a byte in 0x40..0x7e */
			if (ch >= 0x40 && ch <= 0x7e)
				c->esc = 0;
			continue;
		}
		if (ch == 0x1b) {
			c->esc = 1;
		} else if (ch == '\n') {
			end_line(c);
		} else if (ch == '\t' || ch >= 0x20) {
			if (ch != 0x7f && c->cur_len < CONSOLE_ASSEMBLY_MAX)
				c->cur[c->cur_len++] = ch == '\t' ? ' ' : (char)ch;
		}
	}
	c->cur[c->cur_len] = 0;
	/* The start marker is a fixed string: no need to wait for its newline. */
	if (!c->agent && strstr(c->cur, CONSOLE_AGENT_MARKER))
		c->agent = true;
	/* The agent asks without a newline and waits on that line. */
	if (c->cur_len > 0)
		check_prompt(c, c->cur, false);
}

long console_follow(struct console *c, const char *path)
{
	if (c->fd < 0) {
		c->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0)
			return errno == ENOENT ? 0 : err_errno(errno, "reading console log '%s'", path);
	}
	char buf[16384];
	long total = 0;
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(errno, "reading console log '%s'", path);
		}
		if (r == 0)
			return total;
		console_feed(c, buf, (size_t)r);
		total += r;
	}
}

bool console_agent_started(const struct console *c) { return c->agent; }

const char *console_status(const struct console *c) { return c->status; }

const char *console_last_line(const struct console *c)
{
	if (c->cur_len > 0)
		return c->cur;
	if (c->count == 0)
		return "";
	return c->ring[(c->next + CONSOLE_TAIL_LINES - 1) % CONSOLE_TAIL_LINES];
}

char *console_tail(const struct console *c, unsigned n, const char *prefix)
{
	/* The partial line counts as the newest line. */
	unsigned have = c->count + (c->cur_len > 0);
	if (n > have)
		n = have;
	if (n > CONSOLE_TAIL_LINES)
		n = CONSOLE_TAIL_LINES;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	unsigned from_ring = c->cur_len > 0 ? (n > 0 ? n - 1 : 0) : n;
	for (unsigned i = 0; i < from_ring; i++) {
		unsigned slot = (c->next + CONSOLE_TAIL_LINES - from_ring + i) % CONSOLE_TAIL_LINES;
		fprintf(f, "%s%s\n", prefix, c->ring[slot]);
	}
	if (c->cur_len > 0 && n > 0)
		fprintf(f, "%s%.*s\n", prefix, CONSOLE_LINE_MAX, c->cur);
	if (fclose(f) != 0 || !buf)
		abort();
	return buf;
}

const char *console_prompt(const struct console *c) { return c->prompt_open ? c->prompt : NULL; }

void console_prompt_answered(struct console *c) { c->prompt_open = false; }

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int console_type(const char *socket_path, const char *text, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return err_input("console socket '%s': path too long", socket_path);
	strcpy(sa.sun_path, socket_path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_errno(errno, "console socket '%s'", socket_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(errno, "connecting to console socket '%s'", socket_path);
	size_t len = strlen(text), off = 0;
	bool closed_wr = false;
	double deadline = now_ms() + timeout_ms;
	/* Write, then half-close (close() would make QEMU see a hang-up and drop
	 * what it has not read yet); QEMU reads up to the end, then closes. */
	for (;;) {
		if (off == len && !closed_wr) {
			if (shutdown(fd, SHUT_WR) < 0)
				return err_errno(errno, "console socket '%s'", socket_path);
			closed_wr = true;
		}
		int left = (int)(deadline - now_ms());
		if (left <= 0)
			return err_fail("typing on console socket '%s': %zu of %zu bytes sent, not all taken by "
					"the guest within %d ms",
					socket_path, off, len, timeout_ms);
		struct pollfd p = {.fd = fd, .events = (short)(POLLIN | (off < len ? POLLOUT : 0))};
		int r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR)
			return err_errno(errno, "console socket '%s'", socket_path);
		if (r <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			char buf[4096];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n == 0 || (n < 0 && errno == ECONNRESET)) {
				if (off == len)
					return 0; /* QEMU read our end and closed */
				return err_fail("typing on console socket '%s': QEMU closed it after %zu of %zu bytes",
						socket_path, off, len);
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return err_errno(errno, "reading console socket '%s'", socket_path);
		}
		if (off < len && (p.revents & POLLOUT)) {
			ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				return err_errno(errno, "writing console socket '%s'", socket_path);
		}
	}
}

/* Copy s into out (len > 0), cut to fit, with control bytes (but '\n' and
 * '\t') and each non-ASCII character made '?': the guest's text reaches a
 * terminal. */
static void copy_printable(const char *s, char *out, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 1 < len; p++) {
		if ((*p & 0xc0) == 0x80) /* a UTF-8 continuation byte: its character is already a '?' */
			continue;
		out[o++] = *p >= 0x80 || *p == 0x7f || (*p < 0x20 && *p != '\n' && *p != '\t') ? '?' : (char)*p;
	}
	out[o] = 0;
}

int console_status_parse(const char *json, struct console_status_fields *ret)
{
	const char *why = NULL;
	size_t at = 0;
	_cleanup_json_ json_object *o = json_parse(json, &why, &at);
	/* The line as seen, for the message: console lines are cut the same way. */
	char seen[CONSOLE_LINE_MAX + 1];
	copy_printable(json, seen, sizeof(seen));
	if (!o)
		return err_fail("QVSA-STATUS line is not JSON (%s at byte %zu): %s", why, at, seen);
	if (!json_object_is_type(o, json_type_object))
		return err_fail("QVSA-STATUS line is not a JSON object: %s", seen);
	const char *status = json_member_str(o, "status");
	if (!status)
		return err_fail("QVSA-STATUS line has no \"status\" string: %s", seen);
	copy_printable(status, ret->status, sizeof(ret->status));
	copy_printable(json_member_str(o, "channel"), ret->channel, sizeof(ret->channel));
	copy_printable(json_member_str(o, "reason"), ret->reason, sizeof(ret->reason));
	return 0;
}
