/* What the platform emulators (one file each in this folder) share: the
 * addresses they serve at, how they register services and record what
 * they saw, and small helpers for answers and derived ids. Not for code
 * outside this folder: verification uses platform.h. */
#ifndef QVSA_PLATFORM_IMPL_H
#define QVSA_PLATFORM_IMPL_H

#include "httpd.h"
#include "platform.h"

#include <libxml/xmlwriter.h>
#include <stdbool.h>
#include <stddef.h>

/* Where the clouds' services live in a guest's network (each fact once). */
#define PLATFORM_HTTP_PORT 80                     /* every metadata service: plain HTTP, port 80 */
#define PLATFORM_IMDS_ADDR "169.254.169.254"      /* EC2, GCE, OCI and OpenStack metadata */
#define PLATFORM_IMDS_NET "169.254.169.0/24"      /* a guest network that holds it */
#define PLATFORM_IMDS_HOST "169.254.169.2"        /* the host's loopback from that network */
#define PLATFORM_WIRESERVER_ADDR "168.63.129.16"  /* Azure's wireserver */
#define PLATFORM_WIRESERVER_NET "168.63.129.0/24" /* a guest network that holds it */
#define PLATFORM_WIRESERVER_HOST "168.63.129.2"   /* the host's loopback from that network */
#define PLATFORM_DEFAULT_NET "10.0.2.0/24"        /* QEMU user networking's own */
#define PLATFORM_DEFAULT_HOST "10.0.2.2"          /* the host's loopback there */

/* ---- the emulators' entry points (the table's operations) ---- */
int nocloud_make_media(const struct platform_env *env, const char *path);
int configdrive_make_media(const struct platform_env *env, const char *path);
int openstack_start(const struct platform_env *env, struct platform *p);
int ec2_start(const struct platform_env *env, struct platform *p);
int gce_start(const struct platform_env *env, struct platform *p);
int oci_start(const struct platform_env *env, struct platform *p);
int azure_make_media(const struct platform_env *env, const char *path);
int azure_start(const struct platform_env *env, struct platform *p);
int vmware_make_media(const struct platform_env *env, const char *path);

/* OpenStack's meta_data.json, shared by the metadata service and the
 * config drive. Caller frees. */
char *openstack_meta_data_json(const struct platform_env *env);

/* ---- services and what they saw (platform.c) ---- */

/* Register a service at guest address addr:port answered by handler with
 * opaque; platform_start binds it to a loopback port. Up to two per platform. */
int platform_serve(struct platform *p, const char *addr, unsigned port, httpd_handler handler, void *opaque);
/* Hand state to p: free_fn(state) runs at platform_stop, after every server stopped. */
void platform_own(struct platform *p, void *state, void (*free_fn)(void *));
/* A metadata service served the user-data. */
void platform_note_delivered(struct platform *p);
/* A request broke the platform's rules; the first reason is kept. Never
 * put the code or the user-data into the reason. */
void platform_note_refused(struct platform *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Azure: a valid Ready report arrived. */
void platform_note_ready(struct platform *p);
/* Azure: a health report was not accepted; the first reason is kept. */
void platform_note_not_ready(struct platform *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- helpers (platform_util.c) ---- */

/* Set resp to status with a copy of body (NULL: empty) as content_type (NULL: text/plain). */
void platform_answer(struct httpd_response *resp, int status, const char *content_type, const char *body);
/* Same, taking ownership of a malloc'ed body of len bytes. */
void platform_answer_take(struct httpd_response *resp, int status, const char *content_type, char *body,
			  size_t len);
/* Append one "Name: value\r\n" line to resp's extra headers (truncation is a bug: aborts). */
void platform_answer_header(struct httpd_response *resp, const char *name, const char *value);
/* The value of key in an "a=1&b=2" query into buf; false when absent or too long. */
bool platform_query_param(const char *query, const char *key, char *buf, size_t size);
/* Base64 (RFC 4648, padded, one line) of len bytes; aborts on out-of-memory. */
char *platform_base64(const void *data, size_t len);
/* A UUID (8-4-4-4-12, lower case, version 4 and variant bits set) derived
 * from seed and salt with SHA-256: the same inputs give the same id. */
void platform_derive_uuid(const char *seed, const char *salt, char out[37]);
/* n lower-case hex digits derived the same way (n <= 64), NUL-terminated into out[n + 1]. */
void platform_derive_hex(const char *seed, const char *salt, size_t n, char *out);

/* An XML document written with libxml2's writer (escaping, namespaces
 * and indentation are its job). Calls after a failure do nothing. */
struct platform_xml {
	xmlBufferPtr buf;     /* the text so far; owned */
	xmlTextWriterPtr w;   /* writes into buf; owned */
	bool failed;          /* a call failed: finish returns NULL */
};
/* Start a UTF-8 document, two-space indented. */
void platform_xml_start(struct platform_xml *x);
/* <name attr=value ...>: open an element; name may carry a prefix ("wa:Version"). */
void platform_xml_open(struct platform_xml *x, const char *name);
void platform_xml_attr(struct platform_xml *x, const char *name, const char *value);
/* <name>text</name>. */
void platform_xml_leaf(struct platform_xml *x, const char *name, const char *text);
void platform_xml_close(struct platform_xml *x);
/* The document (caller frees), or NULL with an error recorded about what. Frees x's parts. */
char *platform_xml_finish(struct platform_xml *x, const char *what);

#endif
