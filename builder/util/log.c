#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool log_quiet;
static bool log_verbose;
static bool log_tty;
static bool log_status_shown; /* a live status line is on screen and must be wiped */
static double log_last_status;
/* Writers may log from worker threads: one line at a time. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(bool quiet)
{
	log_quiet = quiet;
	log_tty = isatty(STDERR_FILENO) && getenv("CI") == NULL;
	const char *dbg = getenv("QVSA_DEBUG");
	if (dbg && *dbg && strcmp(dbg, "0") != 0)
		log_verbose = true;
}

double now_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wipe_status(void)
{
	if (log_status_shown) {
		fputs("\r\033[K", stderr);
		log_status_shown = false;
	}
}

void log_notice(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&log_lock);
	wipe_status();
	fputs("qvsa: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	va_list ap;
	wipe_status();
	fputs("qvsa: debug: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double log_phase_begin(const char *phase, const char *fmt, ...)
{
	if (!log_quiet) {
		va_list ap;
		pthread_mutex_lock(&log_lock);
		wipe_status();
		fprintf(stderr, "[%-11s] ", phase);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		pthread_mutex_unlock(&log_lock);
	}
	log_last_status = 0;
	return now_monotonic();
}

void log_phase_status(const char *fmt, ...)
{
	if (log_quiet || !log_tty)
		return;
	double t = now_monotonic();
	if (t - log_last_status < 0.2)
		return;
	log_last_status = t;
	va_list ap;
	pthread_mutex_lock(&log_lock);
	fputs("\r\033[K  ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	log_status_shown = true;
	pthread_mutex_unlock(&log_lock);
}

double log_phase_end(const char *phase, double t0, bool ok)
{
	double dt = now_monotonic() - t0;
	if (!log_quiet) {
		pthread_mutex_lock(&log_lock);
		wipe_status();
		fprintf(stderr, "[%-11s] %s in %.1fs\n", phase, ok ? "done" : "FAILED", dt);
		pthread_mutex_unlock(&log_lock);
	}
	return dt;
}
