/* Running helper programs (qemu-img, apt-get, ...) without a shell. */
#ifndef QVSA_PROC_H
#define QVSA_PROC_H

#include <stddef.h>

/* Run argv[0] (searched in PATH) with argv, wait for it. If ret_out is not
 * NULL it receives the child's stdout (NUL-terminated, caller frees). On a
 * non-zero exit records "running 'prog': exit N: <last stderr line>" and
 * returns -1. cwd may be NULL. */
int proc_run(const char *const *argv, const char *cwd, char **ret_out);

/* proc_run with stdin read from the file input (NULL: /dev/null), for
 * tools that take their script only on stdin (sfdisk). */
int proc_run_input(const char *const *argv, const char *cwd, const char *input, char **ret_out);

/* True if prog is found in PATH (or is an executable path). */
int proc_have(const char *prog);

#endif
