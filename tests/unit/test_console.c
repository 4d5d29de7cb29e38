/* Following a serial console: markers, line tail, control bytes, the status
 * JSON, fed as recorded bytes in awkward pieces. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"
#include "err.h"

/* A recorded first boot as the serial port shows it (\r\n, colour escapes). */
static const char boot_log[] =
	"SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n"
	"Booting from Hard Disk...\r\n"
	"\x1b[0;1mqvsa-initramfs: loading 12 modules\x1b[0m\r\n"
	"[    2.345678] EXT4-fs (vda1): mounted filesystem\r\n"
	"QVSA-AGENT: starting (qVSA-1.0)\r\n"
	"[    3.000000] virtio_net virtio1 eth0: link up\r\n"
	"QVSA-STATUS: {\"status\":\"success\",\"version\":\"qVSA-1.0\",\"components\":{\"ML\":\"1.2\"}}\r\n"
	"reboot: Power down\r\n";

Test(console, markers_in_one_piece)
{
	struct console *c = console_new();
	cr_expect(!console_agent_started(c));
	cr_expect_null(console_status(c));
	cr_expect_str_eq(console_last_line(c), "");
	console_feed(c, boot_log, strlen(boot_log));
	cr_expect(console_agent_started(c));
	cr_assert_not_null(console_status(c));
	cr_expect_str_eq(console_status(c),
			 "{\"status\":\"success\",\"version\":\"qVSA-1.0\",\"components\":{\"ML\":\"1.2\"}}");
	cr_expect_str_eq(console_last_line(c), "reboot: Power down");
	console_free(c);
}

Test(console, byte_by_byte_and_control_bytes)
{
	struct console *c = console_new();
	size_t marker_end = (size_t)(strstr(boot_log, CONSOLE_AGENT_MARKER) - boot_log) + strlen(CONSOLE_AGENT_MARKER);
	for (size_t i = 0; i < strlen(boot_log); i++) {
		console_feed(c, boot_log + i, 1);
		if (i + 1 == marker_end)
			cr_expect(console_agent_started(c), "the start marker counts before its newline");
	}
	cr_expect(console_agent_started(c));
	cr_expect_not_null(console_status(c));
	_cleanup_free_ char *t = console_tail(c, 40, "| ");
	cr_expect(strstr(t, "| qvsa-initramfs: loading 12 modules\n"), "escapes and \\r dropped: %s", t);
	cr_expect(!strchr(t, '\r'));
	cr_expect(!strchr(t, '\x1b'));
	console_free(c);
}

Test(console, status_needs_complete_line)
{
	struct console *c = console_new();
	const char part[] = "QVSA-STATUS: {\"status\":\"fail";
	console_feed(c, part, strlen(part));
	cr_expect_null(console_status(c), "half a JSON object is not a status");
	cr_expect_str_eq(console_last_line(c), part);
	console_feed(c, "ure\"}\n", 6);
	cr_expect_str_eq(console_status(c), "{\"status\":\"failure\"}");
	/* Only the first status line counts. */
	console_feed(c, "QVSA-STATUS: {\"status\":\"success\"}\n", 35);
	cr_expect_str_eq(console_status(c), "{\"status\":\"failure\"}");
	console_free(c);
}

/* A Debian base's first boot as the serial port shows it: systemd's coloured
 * status lines, and the agent as a unit whose output reaches the console
 * through journald (StandardOutput=journal+console), each line prefixed with
 * the kernel time and "qvsa-agent[PID]: ". */
static const char systemd_log[] =
	"[    4.812345] systemd[1]: Detected virtualization qemu.\r\n"
	"[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mcloud-init.service\x1b[0m - Cloud-init: Network Stage.\r\n"
	"         Starting \x1b[0;1;39mqvsa-agent.service\x1b[0m - qVSA bootstrap agent (prints QVSA-STATUS)...\r\n"
	"[   41.998877] qvsa-agent[312]: QVSA-AGENT: starting (qVSA-1.0)\r\n"
	"[   42.123456] qvsa-agent[312]: QVSA-STATUS: {\"status\":\"success\",\"channel\":\"nocloud\",\"version\":\"qVSA-1.0\"}\r\n"
	"[\x1b[0;32m  OK  \x1b[0m] Finished \x1b[0;1;39mqvsa-agent.service\x1b[0m - qVSA bootstrap agent.\r\n"
	"[   44.000001] reboot: Power down\r\n";

Test(console, status_through_journald_on_a_systemd_system)
{
	struct console *c = console_new();
	const char *json = "{\"status\":\"success\",\"channel\":\"nocloud\",\"version\":\"qVSA-1.0\"}";
	/* In one piece and byte by byte: the prefix does not hide either marker. */
	console_feed(c, systemd_log, strlen(systemd_log));
	cr_expect(console_agent_started(c));
	cr_assert_not_null(console_status(c));
	cr_expect_str_eq(console_status(c), json, "the JSON alone, without journald's prefix");
	struct console_status_fields sf;
	cr_expect_eq(console_status_parse(console_status(c), &sf), 0, "%s", err_msg());
	cr_expect_str_eq(sf.channel, "nocloud");
	console_free(c);
	c = console_new();
	for (size_t i = 0; i < strlen(systemd_log); i++)
		console_feed(c, systemd_log + i, 1);
	cr_expect(console_agent_started(c));
	cr_expect_str_eq(console_status(c), json);
	console_free(c);
	/* journald without the kernel's time (printk.time=0), and the raw line. */
	static const char *const forms[] = {
		"qvsa-agent[312]: QVSA-STATUS: {\"status\":\"failure\",\"reason\":\"no code\"}\r\n",
		"QVSA-STATUS: {\"status\":\"failure\",\"reason\":\"no code\"}\r\n",
	};
	for (size_t i = 0; i < 2; i++) {
		c = console_new();
		console_feed(c, forms[i], strlen(forms[i]));
		cr_expect_str_eq(console_status(c), "{\"status\":\"failure\",\"reason\":\"no code\"}", "form %zu", i);
		console_free(c);
	}
}

Test(console, status_marker_is_not_loosened)
{
	/* The marker's words without ": " (a unit's description), or in another case, are no status line. */
	static const char log[] = "         Starting qvsa-agent.service - prints QVSA-STATUS...\r\n"
				  "[   42.1] qvsa-agent[312]: QVSA-STATUS:{\"status\":\"success\"}\r\n"
				  "[   42.2] qvsa-agent[312]: qvsa-status: {\"status\":\"success\"}\r\n"
				  "[   42.3] qvsa-agent[312]: QVSA-AGENT starting\r\n";
	struct console *c = console_new();
	console_feed(c, log, strlen(log));
	cr_expect_null(console_status(c), "%s", console_status(c));
	cr_expect(!console_agent_started(c));
	console_free(c);
}

Test(console, tail_keeps_last_lines)
{
	struct console *c = console_new();
	char line[64];
	for (int i = 0; i < 100; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		console_feed(c, line, (size_t)n);
		console_feed(c, "\n", 1); /* empty lines are not kept */
	}
	console_feed(c, "partial", 7);
	_cleanup_free_ char *t = console_tail(c, 3, "> ");
	cr_expect_str_eq(t, "> line 98\n> line 99\n> partial\n");
	_cleanup_free_ char *all = console_tail(c, 1000, "");
	cr_expect(strstr(all, "line 61\n"));
	cr_expect(!strstr(all, "line 60\n"), "at most %d lines (the partial one included)", CONSOLE_TAIL_LINES);
	_cleanup_free_ char *none = console_tail(c, 0, "");
	cr_expect_str_eq(none, "");
	console_free(c);
}

Test(console, long_lines_are_cut_in_tail)
{
	struct console *c = console_new();
	char big[1000];
	memset(big, 'x', sizeof(big));
	console_feed(c, big, sizeof(big));
	console_feed(c, "\n", 1);
	_cleanup_free_ char *t = console_tail(c, 1, "");
	cr_expect_eq(strlen(t), CONSOLE_LINE_MAX + 1);
	console_free(c);
}

Test(console, follow_growing_file)
{
	char path[] = "/tmp/qvsa-test-console-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	struct console *c = console_new();
	cr_expect_eq(console_follow(c, "/nonexistent/console.log"), 0, "a missing log is not an error");
	console_free(c);
	c = console_new();
	cr_expect_eq(write(fd, "QVSA-AGENT: sta", 15), 15);
	cr_expect_eq(console_follow(c, path), 15);
	cr_expect(!console_agent_started(c));
	cr_expect_eq(write(fd, "rting\nQVSA-STATUS: {\"status\":\"success\"}\n", 40), 40);
	cr_expect_eq(console_follow(c, path), 40);
	cr_expect_eq(console_follow(c, path), 0);
	cr_expect(console_agent_started(c));
	cr_expect_str_eq(console_status(c), "{\"status\":\"success\"}");
	console_free(c);
	close(fd);
	unlink(path);
}

/* The status lines docs/personalization.md shows, as the agent prints them. */
Test(console, status_parse_recorded_lines)
{
	struct console_status_fields f;
	cr_assert_eq(console_status_parse("{\"status\":\"success\",\"channel\":\"nocloud\",\"version\":\"qVSA-2.7\","
					  "\"components\":{\"ML\":\"3.1.0\",\"SCAND\":\"12.9.5\"}}", &f), 0, "%s", err_msg());
	cr_expect_str_eq(f.status, "success");
	cr_expect_str_eq(f.channel, "nocloud");
	cr_expect_str_eq(f.reason, "");
	cr_assert_eq(console_status_parse("{\"status\":\"failure\",\"stage\":\"platform\",\"channel\":\"ec2\","
					  "\"reason\":\"unknown personalization code\"}", &f), 0);
	cr_expect_str_eq(f.status, "failure");
	cr_expect_str_eq(f.channel, "ec2");
	cr_expect_str_eq(f.reason, "unknown personalization code");
	cr_assert_eq(console_status_parse("{\"status\":\"skipped\",\"version\":\"qVSA-2.7\",\"reason\":\"already personalized\"}",
					  &f), 0);
	cr_expect_str_eq(f.status, "skipped");
	cr_expect_str_eq(f.channel, "", "no channel named");
}

Test(console, status_parse_nesting_escapes_and_cuts)
{
	struct console_status_fields f;
	const char *j = "{\"stage\": \"platform\", \"n\": 3, \"obj\": {\"status\": \"nested\"}, \"list\": [\"a\", \"]\"],"
			" \"channel\": 7, \"status\" : \"failure\", \"reason\": \"code \\\"12\\\" rejected\\n\\u0041\\u00e9\\u001b[2J\"}";
	cr_assert_eq(console_status_parse(j, &f), 0, "%s", err_msg());
	cr_expect_str_eq(f.status, "failure", "a nested key of the same name must not match");
	cr_expect_str_eq(f.channel, "", "a channel that is not a string reads as none");
	cr_expect_str_eq(f.reason, "code \"12\" rejected\nA??[2J", "non-ASCII and escape bytes become '?'");
	char longer[1024];
	snprintf(longer, sizeof(longer), "{\"status\":\"failure\",\"reason\":\"%0700d\"}", 0);
	cr_assert_eq(console_status_parse(longer, &f), 0);
	cr_expect_eq(strlen(f.reason), sizeof(f.reason) - 1, "cut to the buffer");
}

/* What a broken guest or a garbled console can leave: a clear error, never a crash. */
Test(console, status_parse_refuses_malformed_lines)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{"{\"status\":\"success\",\"components\":{\"ML\":\"3.", "unexpected end of input at byte 42"},
		{"{\"status\":\"unterminated", "unexpected end of input"},
		{"not json", "is not JSON"},
		{"", "unexpected end of input at byte 0"},
		{"{\"status\":\"success\"} trailing", "is not JSON"},
		{"{\"status\":\"success\",}", "is not JSON"},
		{"[\"status\", \"success\"]", "is not a JSON object"},
		{"\"success\"", "is not a JSON object"},
		{"{}", "no \"status\" string"},
		{"{\"status\": 1}", "no \"status\" string"},
		{"{\"status\": \"succ\\u0000ess\"}", "no \"status\" string"},
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct console_status_fields f;
		err_clear();
		cr_assert_eq(console_status_parse(bad[i].line, &f), -1, "accepted: %s", bad[i].line);
		cr_assert_not_null(err_msg());
		cr_expect(strstr(err_msg(), "QVSA-STATUS line"), "%s", err_msg());
		cr_expect(strstr(err_msg(), bad[i].why), "%s: expected '%s' in: %s", bad[i].line, bad[i].why, err_msg());
	}
	err_clear();
}

/* A recorded console session on a platform without a channel: the agent
 * asks, the code is typed (no echo), the URL is typed (echoed onto the
 * prompt line), a wrong code is asked again. */
static const char prompt_log[] =
	"QVSA-AGENT: starting\r\n"
	"qvsa-agent: no channel delivered a code; asking on the console\r\n"
	"QVSA-PROMPT: perscode Enter the personalization code: ";

Test(console, prompt_seen_answered_and_asked_again)
{
	struct console *c = console_new();
	cr_expect_null(console_prompt(c));
	/* Byte by byte: the word is not complete until what follows it arrives. */
	const char *word_end = strstr(prompt_log, "perscode") + strlen("perscode");
	for (const char *p = prompt_log; *p; p++) {
		console_feed(c, p, 1);
		if (p + 1 == word_end)
			cr_expect_null(console_prompt(c), "'perscode' could still grow");
	}
	cr_assert_not_null(console_prompt(c), "the prompt counts without its newline");
	cr_expect_str_eq(console_prompt(c), "perscode");
	console_prompt_answered(c);
	cr_expect_null(console_prompt(c));
	/* The typed code is not echoed; the agent's newline ends the prompt line: no new prompt. */
	console_feed(c, "\r\n", 2);
	cr_expect_null(console_prompt(c), "one line, one prompt");
	const char again[] = "qvsa-agent: '12ab' is not 6 to 32 digits\r\n"
			     "QVSA-PROMPT: perscode Enter the personalization code: ";
	console_feed(c, again, strlen(again));
	cr_expect_str_eq(console_prompt(c), "perscode", "asked again on a new line: a new prompt");
	console_prompt_answered(c);
	const char url[] = "\r\nQVSA-PROMPT: platform_url Platform URL [https://platform.example/] (Enter keeps it): "
			   "https://10.0.2.2:4443/\r\n";
	console_feed(c, url, strlen(url));
	cr_expect_str_eq(console_prompt(c), "platform_url", "the echoed answer completes the same line");
	console_prompt_answered(c);
	/* Two prompts in one read: the newest counts. */
	const char two[] = "QVSA-PROMPT: ca Platform CA certificate, PEM (Enter keeps the image's CAs):\r\n"
			   "QVSA-PROMPT: perscode Enter the personalization code: ";
	console_feed(c, two, strlen(two));
	cr_expect_str_eq(console_prompt(c), "perscode");
	console_prompt_answered(c);
	/* Text that mentions the marker without a word is no prompt. */
	console_feed(c, "\nQVSA-PROMPT: \n", 16);
	cr_expect_null(console_prompt(c));
	console_free(c);
}

/* A fake QEMU serial socket: sends some guest output, reads to EOF, closes. */
struct fake_qemu {
	int listen_fd;   /* listening unix socket */
	bool read_input; /* false: never read (a guest that takes nothing) */
	char got[256];   /* bytes received */
	size_t got_len;  /* how many */
};

static void *fake_qemu_thread(void *opaque)
{
	struct fake_qemu *q = opaque;
	int c = accept(q->listen_fd, NULL, NULL);
	if (c < 0)
		return NULL;
	static char noise[200000]; /* more than a socket buffer: must be drained */
	memset(noise, 'x', sizeof(noise));
	size_t off = 0;
	while (off < sizeof(noise)) {
		ssize_t w = write(c, noise + off, sizeof(noise) - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (q->read_input) {
		ssize_t r;
		while ((r = read(c, q->got + q->got_len, sizeof(q->got) - 1 - q->got_len)) > 0)
			q->got_len += (size_t)r;
	} else {
		sleep(1);
	}
	close(c);
	return NULL;
}

static int unix_listener(char *path, size_t len)
{
	snprintf(path, len, "/tmp/qvsa-test-console-%d.sock", (int)getpid());
	unlink(path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(l >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(l, 1), 0);
	return l;
}

Test(console, type_reaches_the_socket)
{
	char path[108];
	struct fake_qemu q = {.listen_fd = unix_listener(path, sizeof(path)), .read_input = true};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fake_qemu_thread, &q), 0);
	cr_expect_eq(console_type(path, "123456\n", 5000), 0, "%s", err_msg() ? err_msg() : "");
	pthread_join(t, NULL);
	q.got[q.got_len] = 0;
	cr_expect_str_eq(q.got, "123456\n");
	close(q.listen_fd);
	unlink(path);
}

Test(console, type_times_out_and_fails_without_socket)
{
	char path[108];
	struct fake_qemu q = {.listen_fd = unix_listener(path, sizeof(path)), .read_input = false};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fake_qemu_thread, &q), 0);
	err_clear();
	cr_expect_eq(console_type(path, "123456\n", 300), -1);
	cr_assert_not_null(err_msg());
	cr_expect(strstr(err_msg(), "7 of 7 bytes sent, not all taken by the guest within 300 ms"), "got %s", err_msg());
	pthread_join(t, NULL);
	close(q.listen_fd);
	unlink(path);
	cr_expect_eq(console_type("/nonexistent/console.sock", "x", 100), -1);
	cr_expect(strstr(err_msg(), "connecting to console socket '/nonexistent/console.sock'"), "got %s", err_msg());
}
