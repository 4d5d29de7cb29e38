/* The guestfwd relay: both directions with half-closes over pipes and
 * socketpairs, a megabyte each way at once (no deadlock), the real shape
 * (stdin and stdout one socket, as QEMU hands them) against a loopback
 * listener, and the command line's quoting. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "relay.h"

/* Read fd until EOF into a malloc'd buffer; *ret_len its length. */
static char *slurp(int fd, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	for (;;) {
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	*ret_len = len;
	return buf;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		cr_assert(w > 0, "write: %s", strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

struct relay_args {
	int in, out, sock, rc;
};

static void *relay_thread(void *opaque)
{
	struct relay_args *a = opaque;
	a->rc = relay_fds(a->in, a->out, a->sock);
	return NULL;
}

Test(relay, request_then_answer_with_half_closes)
{
	signal(SIGPIPE, SIG_IGN);
	int in[2], out[2], sp[2];
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct relay_args a = {.in = in[0], .out = out[1], .sock = sp[0]};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, relay_thread, &a), 0);

	const char req[] = "GET /latest/user-data HTTP/1.0\r\n\r\n";
	write_all(in[1], req, strlen(req));
	close(in[1]); /* the guest half-closes: the server must see EOF */
	size_t n;
	_cleanup_free_ char *got = slurp(sp[1], &n);
	cr_expect_eq(n, strlen(req));
	cr_expect(memcmp(got, req, n) == 0);

	const char ans[] = "HTTP/1.0 200 OK\r\n\r\nhello";
	write_all(sp[1], ans, strlen(ans));
	close(sp[1]);
	_cleanup_free_ char *back = slurp(out[0], &n);
	cr_expect_eq(n, strlen(ans));
	cr_expect(memcmp(back, ans, n) == 0);
	pthread_join(t, NULL);
	cr_expect_eq(a.rc, 0, "%s", err_msg() ? err_msg() : "");
	close(in[0]);
	close(out[0]);
	close(sp[0]);
}

#define BIG (1u << 20)

struct feeder {
	int fd;          /* where to write */
	const char *buf; /* BIG bytes */
};

static void *feed_thread(void *opaque)
{
	struct feeder *f = opaque;
	write_all(f->fd, f->buf, BIG);
	close(f->fd);
	return NULL;
}

/* The far end: echoes everything back, then closes. */
static void *echo_thread(void *opaque)
{
	int fd = *(int *)opaque;
	char buf[8192];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		write_all(fd, buf, (size_t)r);
	close(fd);
	return NULL;
}

Test(relay, megabyte_both_ways_at_once)
{
	signal(SIGPIPE, SIG_IGN);
	int in[2], out[2], sp[2];
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	_cleanup_free_ char *data = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i * 7 + i / 251);
	struct relay_args a = {.in = in[0], .out = out[1], .sock = sp[0]};
	struct feeder fd = {.fd = in[1], .buf = data};
	pthread_t tr, tf, te;
	cr_assert_eq(pthread_create(&tr, NULL, relay_thread, &a), 0);
	cr_assert_eq(pthread_create(&tf, NULL, feed_thread, &fd), 0);
	cr_assert_eq(pthread_create(&te, NULL, echo_thread, &sp[1]), 0);
	size_t n;
	_cleanup_free_ char *back = slurp(out[0], &n);
	pthread_join(tf, NULL);
	pthread_join(te, NULL);
	pthread_join(tr, NULL);
	cr_expect_eq(a.rc, 0);
	cr_assert_eq(n, BIG);
	cr_expect(memcmp(back, data, BIG) == 0);
	close(in[0]);
	close(out[0]);
	close(sp[0]);
}

/* A listener on 127.0.0.1, any port. */
static int listener(uint16_t *ret_port)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(l >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(l, 4), 0);
	socklen_t sl = sizeof(sa);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	*ret_port = ntohs(sa.sin_port);
	return l;
}

Test(relay, run_with_one_socket_as_stdin_and_stdout)
{
	uint16_t port;
	int l = listener(&port);
	int guest[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, guest), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* As QEMU (libslirp) starts the command: the connection on 0, 1 and 2. */
		dup2(guest[1], 0);
		dup2(guest[1], 1);
		dup2(guest[1], 2);
		close(guest[0]);
		close(guest[1]);
		close(l);
		_exit(relay_run("127.0.0.1", port) == 0 ? 0 : 1);
	}
	close(guest[1]);
	int c = accept(l, NULL, NULL);
	cr_assert(c >= 0);
	const char req[] = "GET /x HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
	write_all(guest[0], req, strlen(req)); /* the guest does not half-close (wget) */
	char buf[256];
	size_t got = 0;
	while (got < strlen(req)) {
		ssize_t r = read(c, buf + got, sizeof(buf) - got);
		cr_assert(r > 0);
		got += (size_t)r;
	}
	cr_expect(memcmp(buf, req, got) == 0);
	const char ans[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	write_all(c, ans, strlen(ans));
	close(c); /* the server closes: the guest must see EOF though stdin stays open */
	size_t n;
	_cleanup_free_ char *back = slurp(guest[0], &n);
	cr_expect_eq(n, strlen(ans));
	cr_expect(memcmp(back, ans, n) == 0);
	close(guest[0]); /* now the guest closes too: the relay ends */
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exit status %d", st);
	close(l);
}

Test(relay, connect_refused_is_recorded)
{
	uint16_t port;
	int l = listener(&port);
	close(l); /* nobody listens there now */
	err_clear();
	cr_expect_eq(relay_run("127.0.0.1", port), -1);
	cr_assert_not_null(err_msg());
	cr_expect(strstr(err_msg(), "relay: connecting to 127.0.0.1:"), "got %s", err_msg());
	cr_expect(strstr(err_msg(), "refused"), "got %s", err_msg());
	cr_expect_eq(relay_run("not-an-address", 80), -1);
	cr_expect(strstr(err_msg(), "relay: address 'not-an-address'"), "got %s", err_msg());
}

Test(relay, command_line)
{
	_cleanup_free_ char *plain = relay_command_for("/usr/local/bin/qvsa", 41234);
	cr_expect_str_eq(plain, "'/usr/local/bin/qvsa' __relay 41234");
	_cleanup_free_ char *odd = relay_command_for("/opt/it's here/q,vsa", 80);
	cr_expect_str_eq(odd, "'/opt/it'\\''s here/q,vsa' __relay 80");
	_cleanup_free_ char *self = relay_command(8080);
	cr_assert_not_null(self);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert(n > 0);
	exe[n] = 0;
	_cleanup_free_ char *want = relay_command_for(exe, 8080);
	cr_expect_str_eq(self, want);
}
