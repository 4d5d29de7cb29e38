/* JSON through json-c, in one place: strict parsing that says where input
 * went wrong, typed member lookup, and how qvsa prints a document. */
#ifndef QVSA_JSON_H
#define QVSA_JSON_H

#include "cleanup.h"

#include <json-c/json.h>
#include <stdio.h>

static inline void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}
/* A json_object reference dropped on every exit path. */
#define _cleanup_json_ _cleanup_(json_putp)

/* Parse text as exactly one JSON value (json-c's strict mode; blanks may
 * follow it, nothing else). Returns it (the caller puts it), or NULL with
 * *ret_why set to a static reason ("unexpected end of input" for a cut-off
 * text) and *ret_at to the byte offset where parsing stopped. */
json_object *json_parse(const char *text, const char **ret_why, size_t *ret_at) __attribute__((nonnull));

/* Member key of object o when it has type t, else NULL (also when o is not
 * an object). Borrowed from o. */
json_object *json_member(json_object *o, const char *key, json_type t) __attribute__((nonnull(2)));
/* The string member key of o, or NULL when absent, not a string or holding
 * a NUL byte (which a C string would silently cut). Borrowed from o. */
const char *json_member_str(json_object *o, const char *key) __attribute__((nonnull(2)));

/* A new JSON string, or NULL (which json-c stores as null) for s == NULL. */
json_object *json_new_str_or_null(const char *s);
/* A number of seconds printed with one decimal ("12.3"), as the text output. */
json_object *json_new_seconds(double s);

/* The one-line form of qvsa's --json output: "key": value with blanks after
 * ':' and ',', '/' unescaped. Borrowed from o until its next serialisation. */
const char *json_text_line(json_object *o) __attribute__((nonnull, returns_nonnull));
/* Print o with json_text_line and a newline on f; then put o. */
void json_print_put(FILE *f, json_object *o) __attribute__((nonnull));

#endif
