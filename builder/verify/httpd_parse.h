/* Parsing of an HTTP/1.x request head for httpd.c: pure functions on bytes
 * already read, so they can be tested without sockets. Internal to the
 * server; handlers see only httpd.h. */
#ifndef QVSA_HTTPD_PARSE_H
#define QVSA_HTTPD_PARSE_H

#include "httpd.h"

/* What a parsed head allocates besides the head buffer itself. */
struct httpd_head_mem {
	char *path;                 /* the target's path, NUL, its query; owned */
	struct httpd_field *fields; /* the header array; owned */
};

/* Cut head (the header block, NUL-terminated, without the blank line) in
 * place into rq's method, target, path, query and headers: 0, or 400 with
 * *ret_why. rq's strings point into head and m. */
int httpd_parse_head(char *head, struct httpd_request *rq, struct httpd_head_mem *m, const char **ret_why);
void httpd_head_mem_free(struct httpd_head_mem *m);
/* The body length rq's headers announce: 0, or 400 (bad Content-Length)
 * or 411 (Transfer-Encoding) with *ret_why. */
int httpd_body_length(const struct httpd_request *rq, unsigned long long *ret, const char **ret_why);
/* The reason phrase for status. */
const char *httpd_status_text(int status);

#endif
