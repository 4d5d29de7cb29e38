#include "relay.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Bytes buffered per direction (an HTTP request or a chunk of an answer). */
#define RELAY_BUF 65536

/* One direction of the relay. */
struct pipe_dir {
	int from;          /* source fd; borrowed */
	int to;            /* destination fd; borrowed */
	char buf[RELAY_BUF]; /* read but not yet written */
	size_t len;        /* bytes in buf */
	size_t off;        /* of them, already written */
	bool eof;          /* the source ended; nothing more will be read */
	bool done;         /* the destination was half-closed: this direction is over */
};

static bool is_gone(int e) { return e == EPIPE || e == ECONNRESET || e == ENOTCONN; }

/* Signal the end to the destination: a socket is half-closed, anything else closed. */
static void dir_finish(struct pipe_dir *d)
{
	if (shutdown(d->to, SHUT_WR) < 0 && errno == ENOTSOCK)
		close(d->to);
	d->done = true;
}

static ssize_t put(int fd, const void *buf, size_t len)
{
	ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
	if (w < 0 && errno == ENOTSOCK)
		w = write(fd, buf, len);
	return w;
}

/* One step after poll: read when empty, write when full. Returns -1 with an
 * error recorded on an I/O failure other than the peer going away. */
static int dir_step(struct pipe_dir *d, short revents_from, short revents_to)
{
	if (d->done)
		return 0;
	if (d->len == 0 && !d->eof && (revents_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t r = read(d->from, d->buf, sizeof(d->buf));
		if (r > 0) {
			d->len = (size_t)r;
			d->off = 0;
		} else if (r == 0 || is_gone(errno)) {
			d->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			return err_errno(errno, "relay: reading");
		}
	}
	if (d->len > d->off && (revents_to & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t w = put(d->to, d->buf + d->off, d->len - d->off);
		if (w > 0) {
			d->off += (size_t)w;
			if (d->off == d->len)
				d->len = d->off = 0;
		} else if (w < 0 && is_gone(errno)) {
			/* The reader went away: nothing more of this direction can arrive. */
			d->len = d->off = 0;
			d->eof = true;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return err_errno(errno, "relay: writing");
		}
	}
	if (d->eof && d->len == 0)
		dir_finish(d);
	return 0;
}

static void nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int relay_fds(int in_fd, int out_fd, int sock)
{
	/* Heap: two 64 KiB buffers are too much for a stack some callers keep small. */
	_cleanup_free_ struct pipe_dir *d = calloc(2, sizeof(*d));
	if (!d)
		abort();
	d[0].from = in_fd, d[0].to = sock;
	d[1].from = sock, d[1].to = out_fd;
	nonblock(in_fd);
	nonblock(out_fd);
	nonblock(sock);
	while (!d[0].done || !d[1].done) {
		/* Per direction: wait to read when its buffer is empty, to write when not. */
		struct pollfd p[4];
		for (int i = 0; i < 2; i++) {
			bool want_read = !d[i].done && !d[i].eof && d[i].len == 0;
			bool want_write = !d[i].done && d[i].len > d[i].off;
			p[2 * i] = (struct pollfd){.fd = want_read ? d[i].from : -1, .events = POLLIN};
			p[2 * i + 1] = (struct pollfd){.fd = want_write ? d[i].to : -1, .events = POLLOUT};
		}
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(errno, "relay: poll");
		}
		for (int i = 0; i < 2; i++)
			if (dir_step(&d[i], p[2 * i].revents, p[2 * i + 1].revents) < 0)
				return -1;
	}
	return 0;
}

int relay_run(const char *host, uint16_t port)
{
	signal(SIGPIPE, SIG_IGN);
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int e = getaddrinfo(host, service, &hints, &ai);
	if (e != 0)
		return err_input("relay: address '%s': %s", host, gai_strerror(e));
	_cleanup_close_ int sock = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		freeaddrinfo(ai);
		return err_errno(errno, "relay: socket");
	}
	int rc = connect(sock, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0)
		return err_errno(errno, "relay: connecting to %s:%s", host, service);
	return relay_fds(STDIN_FILENO, STDOUT_FILENO, sock);
}

char *relay_command_for(const char *exe, uint16_t port)
{
	/* Single quotes keep everything literal; a quote itself becomes '\''. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	fputc('\'', f);
	for (const char *p = exe; *p; p++)
		if (*p == '\'')
			fputs("'\\''", f);
		else
			fputc(*p, f);
	fprintf(f, "' __relay %u", (unsigned)port);
	if (fclose(f) != 0 || !buf)
		abort();
	return buf;
}

char *relay_command(uint16_t port)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		err_errno(errno, "reading /proc/self/exe");
		return NULL;
	}
	exe[n] = 0;
	return relay_command_for(exe, port);
}
