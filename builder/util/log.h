/* Progress and notices for long work. On a terminal a phase shows a live
 * status line; otherwise each phase prints plain lines. Everything goes to
 * stderr so stdout stays clean for --json and `inspect`. */
#ifndef QVSA_LOG_H
#define QVSA_LOG_H

#include <stdbool.h>

/* Call once from main: quiet suppresses progress (not notices). */
void log_init(bool quiet);
/* A one-line notice, always shown ("qvsa: ..."). */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Detail shown only with QVSA_DEBUG=1. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start a named phase; returns its start time (monotonic seconds). */
double log_phase_begin(const char *phase, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Update the live status of the current phase (terminal only; throttled). */
void log_phase_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* End the phase started at t0 and print "phase ... done in N.Ns". Returns elapsed seconds. */
double log_phase_end(const char *phase, double t0, bool ok);

/* Monotonic clock in seconds. */
double now_monotonic(void);

#endif
