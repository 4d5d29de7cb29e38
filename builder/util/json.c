#include "json.h"

#include <math.h>
#include <string.h>

json_object *json_parse(const char *text, const char **ret_why, size_t *ret_at)
{
	size_t len = strlen(text);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* json-c takes an int length: a longer text is refused, not cut. */
	json_object *o = len > (size_t)INT32_MAX ? NULL : json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = len > (size_t)INT32_MAX ? json_tokener_error_size : json_tokener_get_error(tok);
	size_t at = len > (size_t)INT32_MAX ? 0 : json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o && text[at + strspn(text + at, " \t\r\n")] != 0) {
		json_object_put(o);
		o = NULL;
		e = json_tokener_error_parse_unexpected;
	}
	if (!o) {
		/* A text that ends inside a value leaves the tokener waiting for more. */
		*ret_why = e == json_tokener_continue || e == json_tokener_success ? "unexpected end of input"
										    : json_tokener_error_desc(e);
		*ret_at = at;
	}
	return o;
}

json_object *json_member(json_object *o, const char *key, json_type t)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, t))
		return NULL;
	return v;
}

const char *json_member_str(json_object *o, const char *key)
{
	json_object *v = json_member(o, key, json_type_string);
	if (!v)
		return NULL;
	const char *s = json_object_get_string(v);
	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

json_object *json_new_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *json_new_seconds(double s)
{
	char text[32];
	if (!isfinite(s)) /* "nan" is no JSON number */
		s = 0;
	snprintf(text, sizeof(text), "%.1f", s);
	return json_object_new_double_s(s, text);
}

const char *json_text_line(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void json_print_put(FILE *f, json_object *o)
{
	fprintf(f, "%s\n", json_text_line(o));
	json_object_put(o);
}
