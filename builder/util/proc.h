/* Running helper programs (qemu-img, apt-get, ...) without a shell. */
#ifndef QVSA_PROC_H
#define QVSA_PROC_H

#include <stddef.h>

/* Run argv[0] (found by proc_find) with argv, wait for it. If ret_out is not
 * NULL it receives the child's stdout (NUL-terminated, caller frees). On a
 * non-zero exit records "running 'prog': exit N: <last stderr line>" and
 * returns -1. cwd may be NULL. */
int proc_run(const char *const *argv, const char *cwd, char **ret_out);

/* proc_run with stdin read from the file input (NULL: /dev/null), for
 * tools that take their script only on stdin (sfdisk). */
int proc_run_input(const char *const *argv, const char *cwd, const char *input, char **ret_out);

/* Where prog is: itself if it holds a '/', else the first executable file
 * named prog in PATH, then in /usr/local/sbin, /usr/sbin and /sbin (an
 * ordinary user's PATH lacks them). Newly allocated, or NULL. proc_run
 * uses it, and records which folders it searched when prog is missing. */
char *proc_find(const char *prog);

/* True if proc_find finds prog. */
int proc_have(const char *prog);

#endif
