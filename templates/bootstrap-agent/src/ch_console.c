/* The last resort: ask whoever sits at the serial or VGA console
 * (docs/channels.md, "Console prompt"). The prompts go to both terminals and
 * the first line typed on either answers; echo is off while the code is
 * typed, so it never shows on a screen or in a serial log. */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define AGENT_LINE_MAX 4096
#define AGENT_CA_MAX (64u << 10)

/* One terminal the console channel talks to. */
struct agent_tty {
	int fd;                 /* the terminal, -1 when unused */
	bool owned;             /* we opened fd and close it */
	bool eof;               /* nothing more will come from it */
	bool is_tty;            /* termios applies (not a pipe) */
	struct termios saved;   /* settings to restore after the code was typed (valid when is_tty) */
	struct agent_buf in;    /* bytes read but not yet taken as lines (may hold the code: wiped) */
};

/* The terminals of one prompt session. */
struct agent_console {
	struct agent_tty t[2]; /* serial and VGA (or the test's fds) */
};

static void agent_console_say(struct agent_console *c, const char *text)
{
	for (size_t i = 0; i < 2; i++) {
		if (c->t[i].fd < 0)
			continue;
		for (size_t off = 0, n = strlen(text); off < n;) {
			ssize_t w = write(c->t[i].fd, text + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
}

/* Echo off (newline still echoed) on every terminal, or back on. */
static void agent_console_echo(struct agent_console *c, bool on)
{
	for (size_t i = 0; i < 2; i++) {
		struct agent_tty *t = &c->t[i];
		if (t->fd < 0 || !t->is_tty)
			continue;
		struct termios tio = t->saved;
		if (!on) {
			tio.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
			tio.c_lflag |= ECHONL;
		}
		tcsetattr(t->fd, TCSANOW, &tio);
	}
}

/* Take a complete line out of t's buffer, if there is one. */
static char *agent_tty_take(struct agent_tty *t)
{
	char *nl = t->in.data ? memchr(t->in.data, '\n', t->in.len) : NULL;
	if (!nl)
		return NULL;
	size_t n = (size_t)(nl - t->in.data);
	struct agent_buf line = { 0 };
	agent_buf_add(&line, t->in.data, n);
	while (line.len > 0 && line.data[line.len - 1] == '\r')
		line.data[--line.len] = 0;
	size_t rest = t->in.len - n - 1;
	memmove(t->in.data, nl + 1, rest);
	explicit_bzero(t->in.data + rest, t->in.len - rest);
	t->in.len = rest;
	t->in.data[rest] = 0;
	return agent_buf_steal(&line);
}

/* The next line from any terminal (only >= 0: from that one); *ret_which
 * says which. Fails when every terminal has closed. */
static int agent_console_line(struct agent_console *c, int only, char **ret, int *ret_which)
{
	for (;;) {
		struct pollfd p[2];
		int map[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++) {
			struct agent_tty *t = &c->t[i];
			if (t->fd < 0 || (only >= 0 && i != only))
				continue;
			char *line = agent_tty_take(t);
			if (line) {
				*ret = line;
				*ret_which = i;
				return 0;
			}
			if (t->eof)
				continue;
			p[n] = (struct pollfd){ .fd = t->fd, .events = POLLIN };
			map[n++] = i;
		}
		if (n == 0)
			return agent_fail("the console closed before an answer");
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return agent_fail_errno(errno, "waiting for the console");
		}
		for (nfds_t k = 0; k < n; k++) {
			struct agent_tty *t = &c->t[map[k]];
			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char chunk[512];
			ssize_t r = read(t->fd, chunk, sizeof(chunk));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				t->eof = true; /* EOF, or EIO from a hung-up terminal */
				continue;
			}
			agent_buf_add(&t->in, chunk, (size_t)r);
			explicit_bzero(chunk, sizeof(chunk));
			if (t->in.len > AGENT_LINE_MAX && !memchr(t->in.data, '\n', t->in.len)) {
				explicit_bzero(t->in.data, t->in.len);
				t->in.len = 0; /* a runaway line is dropped, not grown without end */
			}
		}
	}
}

static void agent_wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static int agent_ask_code(struct agent_console *c, char **ret)
{
	for (;;) {
		char *line = NULL;
		int which;
		agent_console_say(c, "QVSA-PROMPT: perscode Enter the personalization code:\n");
		agent_console_echo(c, false);
		int r = agent_console_line(c, -1, &line, &which);
		agent_console_echo(c, true);
		if (r < 0)
			return -1;
		if (agent_perscode_check(line) == 0) {
			*ret = line;
			return 0;
		}
		agent_wipe_free(line);
		char *msg = agent_printf("Not accepted: %s. Please try again.\n", agent_error());
		agent_console_say(c, msg);
		free(msg);
	}
}

static int agent_ask_url(struct agent_console *c, const char *current, char **ret)
{
	char *prompt = agent_printf("QVSA-PROMPT: platform_url Platform URL [%s] (Enter keeps it):\n",
				    current && *current ? current : "none");
	agent_console_say(c, prompt);
	free(prompt);
	char *line = NULL;
	int which;
	if (agent_console_line(c, -1, &line, &which) < 0)
		return -1;
	size_t n = strlen(line), s = strspn(line, " \t");
	while (n > s && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = 0;
	if (n == s) {
		free(line);
		return 0;
	}
	*ret = agent_strdup(line + s);
	free(line);
	return 0;
}

/* One PEM certificate, line by line from the terminal that started it. */
static int agent_ask_ca(struct agent_console *c, char **ret)
{
	for (;;) {
		agent_console_say(c, "QVSA-PROMPT: ca Platform CA certificate, PEM (Enter keeps the image's CAs):\n");
		char *line = NULL;
		int which;
		if (agent_console_line(c, -1, &line, &which) < 0)
			return -1;
		if (!*line) {
			free(line);
			return 0;
		}
		if (!strstr(line, "-----BEGIN CERTIFICATE-----")) {
			free(line);
			agent_console_say(c, "Not accepted: a PEM certificate starts with "
					     "-----BEGIN CERTIFICATE-----. Please try again.\n");
			continue;
		}
		struct agent_buf pem = { 0 };
		for (;;) {
			agent_buf_printf(&pem, "%s\n", line);
			bool end = strstr(line, "-----END CERTIFICATE-----") != NULL;
			free(line);
			if (end) {
				*ret = agent_buf_steal(&pem);
				return 0;
			}
			if (pem.len > AGENT_CA_MAX) {
				agent_buf_free(&pem);
				return agent_fail("the CA certificate is larger than %u bytes", AGENT_CA_MAX);
			}
			if (agent_console_line(c, which, &line, &which) < 0) {
				agent_buf_free(&pem);
				return -1;
			}
		}
	}
}

int agent_ch_console(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	(void)m;
	struct agent_console c = { .t = { { .fd = -1 }, { .fd = -1 } } };
	size_t open_n = 0;
	for (size_t i = 0; i < 2; i++) {
		struct agent_tty *t = &c.t[i];
		t->fd = env->console_fds[i];
		if (t->fd < 0 && env->console_paths[i]) {
			t->fd = open(env->console_paths[i], O_RDWR | O_NOCTTY | O_CLOEXEC);
			t->owned = t->fd >= 0;
		}
		if (t->fd < 0)
			continue;
		open_n++;
		t->is_tty = tcgetattr(t->fd, &t->saved) == 0;
	}
	if (open_n == 0) {
		/* nobody to ask (a test run under --root): say so through the plan's final error */
		fprintf(stderr, "qvsa-agent: console: no terminal to ask on\n");
		return 1;
	}
	struct agent_delivery d = { 0 };
	fprintf(stderr, "qvsa-agent: asking for the code on the console\n");
	int r = agent_ask_code(&c, &d.perscode);
	if (r == 0)
		r = agent_ask_url(&c, env->image_platform_url, &d.platform_url);
	if (r == 0)
		r = agent_ask_ca(&c, &d.ca_pem);
	if (r == 0)
		agent_console_say(&c, "Thank you: personalizing now.\n");
	for (size_t i = 0; i < 2; i++) {
		if (c.t[i].in.data)
			explicit_bzero(c.t[i].in.data, c.t[i].in.len);
		agent_buf_free(&c.t[i].in);
		if (c.t[i].owned)
			close(c.t[i].fd);
	}
	if (r < 0) {
		agent_delivery_free(&d);
		return -1;
	}
	*ret = d;
	return 0;
}
