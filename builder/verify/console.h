/* Following an appliance's serial console log: keeps the last lines and
 * spots the agent's markers ("QVSA-AGENT: starting", "QVSA-STATUS: {json}").
 * Fed from a growing file or from recorded bytes (unit tests). */
#ifndef QVSA_CONSOLE_H
#define QVSA_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

/* Lines of console kept for messages. */
#define CONSOLE_TAIL_LINES 40
/* Longer console lines are cut to this many bytes. */
#define CONSOLE_LINE_MAX 160

#define CONSOLE_AGENT_MARKER "QVSA-AGENT: starting"
#define CONSOLE_STATUS_MARKER "QVSA-STATUS: "
/* The agent's console question: "QVSA-PROMPT: <what> <text>" (docs/channels.md). */
#define CONSOLE_PROMPT_MARKER "QVSA-PROMPT: "
/* Longest <what> kept (perscode, platform_url, ca). */
#define CONSOLE_PROMPT_MAX 31

struct console;

struct console *console_new(void) __attribute__((returns_nonnull)); /* aborts on out-of-memory */
void console_free(struct console *c); /* closes the followed file; accepts NULL */

/* Feed raw console bytes (any split; \r, escape sequences and control bytes are dropped). */
void console_feed(struct console *c, const char *buf, size_t len) __attribute__((nonnull));
/* Feed whatever path gained since the last call. A missing file is not an
 * error (QEMU may not have created it yet). Returns bytes read or -1 with an
 * error recorded. */
long console_follow(struct console *c, const char *path) __attribute__((nonnull));

bool console_agent_started(const struct console *c);
/* The JSON text after the first QVSA-STATUS marker, or NULL if none yet. */
const char *console_status(const struct console *c);
/* The most recent non-empty line (complete or not); "" when none. */
const char *console_last_line(const struct console *c);
/* The last n lines (at most CONSOLE_TAIL_LINES), each preceded by prefix and
 * ended by '\n'. Caller frees; never NULL ("" when nothing was seen). */
char *console_tail(const struct console *c, unsigned n, const char *prefix) __attribute__((nonnull, returns_nonnull));

/* The <what> of the newest QVSA-PROMPT line not yet answered, or NULL. A
 * prompt counts as soon as its word is complete (the agent waits on the same
 * line); a line is one prompt however its echo continues it, and the same
 * question asked again on a new line is a new prompt. */
const char *console_prompt(const struct console *c) __attribute__((nonnull));
/* The current prompt was answered: console_prompt returns NULL until the next one. */
void console_prompt_answered(struct console *c) __attribute__((nonnull));

/* Type text on the serial console: connect to QEMU's unix socket at
 * socket_path, write all of text, half-close, and read (discarding: the log
 * file has it) until QEMU closes its side, which it does once it has taken
 * every byte. Output arriving meanwhile is drained so the guest never stalls.
 * A line ends with "\n". Returns 0, or -1 with an error recorded (no socket,
 * or the guest took not all within timeout_ms). */
int console_type(const char *socket_path, const char *text, int timeout_ms) __attribute__((nonnull));

/* What verify reads from the agent's status line (docs/personalization.md). */
struct console_status_fields {
	char status[16];   /* "success", "failure", "skipped", ...; never "" after a parse */
	char channel[32];  /* the channel the agent named, or "" */
	char reason[512];  /* why it failed or skipped, or "" */
};

/* Parse the JSON of a status line (console_status) into ret: members other
 * than "status" may be absent or of another type (then ""); strings are cut
 * to fit, control bytes but '\n' and '\t' and non-ASCII characters become
 * '?'. Returns 0, or -1 with an error recorded when the text is not one JSON
 * object with a "status" string (a cut-off line, garbage). */
int console_status_parse(const char *json, struct console_status_fields *ret) __attribute__((nonnull));

#endif
