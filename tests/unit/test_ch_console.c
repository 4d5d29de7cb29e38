/* The console channel through real pseudo-terminals: the exact prompt lines,
 * a refused code asked again, echo off while the code is typed (and the code
 * never coming back), PEM lines collected, two terminals at once. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"

#define PEM "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fk\nZm9vYmFy\n-----END CERTIFICATE-----\n"

/* One console channel run in its own thread. */
struct con {
	struct agent_chan_env env;  /* its terminals */
	struct agent_delivery d;    /* what it delivered */
	int r;                      /* its result */
	pthread_t thread;           /* the run */
};

static void *con_main(void *arg)
{
	struct con *c = arg;
	c->r = agent_ch_console(&c->env, NULL, &c->d);
	return NULL;
}

/* A terminal pair: the test types on master, the channel uses slave. */
struct term {
	int master, slave;
	struct agent_buf seen; /* everything the channel wrote */
};

static void term_open(struct term *t)
{
	*t = (struct term){ 0 };
	cr_assert_eq(openpty(&t->master, &t->slave, NULL, NULL, NULL), 0);
}

static void term_close(struct term *t)
{
	close(t->master);
	close(t->slave);
	agent_buf_free(&t->seen);
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* Read what the channel wrote until want has appeared times times. */
static void expect(struct term *t, const char *want, size_t times)
{
	for (int waited = 0; count(t->seen.data, want) < times; waited++) {
		cr_assert_lt(waited, 50, "'%s' x%zu never came; seen: %s", want, times, t->seen.data);
		struct pollfd p = { .fd = t->master, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		char buf[512];
		ssize_t r = read(t->master, buf, sizeof(buf));
		if (r > 0)
			agent_buf_add(&t->seen, buf, (size_t)r);
	}
}

/* The channel turns echo off right after the prompt: wait for it. */
static bool echo_off(int slave)
{
	for (int i = 0; i < 100; i++) {
		struct termios tio;
		cr_assert_eq(tcgetattr(slave, &tio), 0);
		if (!(tio.c_lflag & ECHO))
			return true;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void type(struct term *t, const char *s)
{
	cr_assert_eq(write(t->master, s, strlen(s)), (ssize_t)strlen(s));
}

Test(channel_console, prompts_reask_no_echo_and_ca)
{
	struct term t;
	term_open(&t);
	struct con c = { .env = { .console_fds = { t.slave, -1 }, .image_platform_url = "https://platform.example/" } };
	cr_assert_eq(pthread_create(&c.thread, NULL, con_main, &c), 0);

	expect(&t, "QVSA-PROMPT: perscode Enter the personalization code:\r\n", 1);
	cr_assert(echo_off(t.slave), "echo stays on while the code is typed");
	type(&t, "12ab56\n");
	expect(&t, "QVSA-PROMPT: perscode Enter the personalization code:\r\n", 2);
	cr_assert(strstr(t.seen.data, "Not accepted: personalization code must be digits only"), "%s", t.seen.data);
	cr_assert(echo_off(t.slave));
	type(&t, "87654321\n");
	expect(&t, "QVSA-PROMPT: platform_url Platform URL [https://platform.example/] (Enter keeps it):\r\n", 1);
	struct termios tio;
	cr_assert_eq(tcgetattr(t.slave, &tio), 0);
	cr_assert(tio.c_lflag & ECHO, "echo is back on after the code");
	type(&t, "  http://10.0.2.2:8443/ \n");
	expect(&t, "QVSA-PROMPT: ca Platform CA certificate, PEM (Enter keeps the image's CAs):\r\n", 1);
	/* a first line that is no certificate is refused and asked again */
	type(&t, "hello\n");
	expect(&t, "QVSA-PROMPT: ca Platform CA certificate", 2);
	type(&t, PEM);
	cr_assert_eq(pthread_join(c.thread, NULL), 0);
	cr_assert_eq(c.r, 0, "%s", agent_error());
	cr_assert_str_eq(c.d.perscode, "87654321");
	cr_assert_str_eq(c.d.platform_url, "http://10.0.2.2:8443/");
	cr_assert_str_eq(c.d.ca_pem, PEM);
	expect(&t, "Thank you", 1);
	cr_assert_null(strstr(t.seen.data, "87654321"), "the code was echoed: %s", t.seen.data);
	cr_assert_null(strstr(t.seen.data, "12ab56"), "the refused code was echoed");
	agent_delivery_free(&c.d);
	term_close(&t);
}

Test(channel_console, two_terminals_enter_keeps_defaults)
{
	struct term serial, vga;
	term_open(&serial);
	term_open(&vga);
	struct con c = { .env = { .console_fds = { serial.slave, vga.slave } } };
	cr_assert_eq(pthread_create(&c.thread, NULL, con_main, &c), 0);
	expect(&serial, "QVSA-PROMPT: perscode ", 1);
	expect(&vga, "QVSA-PROMPT: perscode ", 1);
	cr_assert(echo_off(serial.slave) && echo_off(vga.slave));
	type(&vga, "123456\r\n");
	expect(&serial, "QVSA-PROMPT: platform_url Platform URL [none] (Enter keeps it):\r\n", 1);
	expect(&vga, "QVSA-PROMPT: platform_url ", 1);
	type(&serial, "\n");
	expect(&vga, "QVSA-PROMPT: ca ", 1);
	type(&vga, "\n");
	cr_assert_eq(pthread_join(c.thread, NULL), 0);
	cr_assert_eq(c.r, 0, "%s", agent_error());
	cr_assert_str_eq(c.d.perscode, "123456");
	cr_assert_null(c.d.platform_url);
	cr_assert_null(c.d.ca_pem);
	agent_delivery_free(&c.d);
	term_close(&serial);
	term_close(&vga);
}

Test(channel_console, hangup_fails)
{
	struct term t;
	term_open(&t);
	struct con c = { .env = { .console_fds = { t.slave, -1 } } };
	cr_assert_eq(pthread_create(&c.thread, NULL, con_main, &c), 0);
	expect(&t, "QVSA-PROMPT: perscode ", 1);
	cr_assert(echo_off(t.slave));
	close(t.master);
	cr_assert_eq(pthread_join(c.thread, NULL), 0);
	cr_assert_eq(c.r, -1);
	cr_assert(strstr(agent_error(), "the console closed before an answer"), "%s", agent_error());
	close(t.slave);
	agent_buf_free(&t.seen);
}
