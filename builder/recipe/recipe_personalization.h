/* The recipe's personalization: mapping: how the bootstrap agent reaches
 * the platform (URL, proxy), which CAs it trusts, and whether plain HTTP was
 * allowed on purpose. Checked completely at load time (docs/recipe.md);
 * only recipe.c and recipe_personalization.c see the struct. */
#ifndef QVSA_RECIPE_PERSONALIZATION_H
#define QVSA_RECIPE_PERSONALIZATION_H

#include <stdbool.h>
#include <stddef.h>

struct yamltree;

/* personalization: as loaded. */
struct recipe_personalization {
	char *platform_url; /* http(s) URL of the platform; http:// only with allow_http */
	char *proxy;        /* http proxy URL, or NULL */
	char *ca;           /* absolute path of the PEM CA bundle (holds >= 1 certificate), or NULL */
	bool allow_http;    /* the recipe accepts plain HTTP to the platform (ALLOW_HTTP=yes) */
};

/* Validate the personalization mapping p into *ret (fields owned by *ret;
 * on error some may be set: clear it either way). Errors are ERR_INPUT
 * "file:line:column: ...", URLs shown masked (redact.h). With no_fs the CA
 * bundle is checked as a name only. */
int recipe_personalization_parse(const struct yamltree *p, bool no_fs, struct recipe_personalization *ret);
void recipe_personalization_clear(struct recipe_personalization *p);

/* Check a PEM CA bundle held in buf (len bytes): at least one certificate,
 * nothing malformed, no private key. Returns 0, or -1 with *ret_why (static). */
int recipe_check_ca_pem(const char *buf, size_t len, unsigned *ret_n_certs, const char **ret_why);

#endif
