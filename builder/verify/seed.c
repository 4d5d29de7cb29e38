/* cloud-init NoCloud seeds: the user-data / meta-data documents and the
 * "cidata" ISO9660 image (Rock Ridge + Joliet). The image is written by
 * media.c, which pins every timestamp: the same parameters give the same
 * bytes on any machine, in any zone. */
#include "seed.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The volume id cloud-init's NoCloud looks for. */
#define SEED_LABEL "cidata"
#define SEED_PEM_END "-----END CERTIFICATE-----"

/* Append s to f as a YAML double-quoted scalar (read back by cloud-init and the agent). */
static void seed_yaml_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static int seed_check(const struct seed_params *p, const char *what)
{
	if (!p->instance_id || !*p->instance_id)
		return err_input("building seed %s: no instance id", what);
	if (!p->perscode || !*p->perscode)
		return err_input("building seed %s: no personalization code", what);
	return 0;
}

/* cloud-init's cc_ca_certs: "ca_certs: trusted:" as one literal block
 * scalar per certificate, so each stays a valid PEM document. */
static int seed_ca_certs(FILE *f, const char *pem)
{
	const char *s = pem;
	unsigned n = 0;
	for (const char *begin; (begin = strstr(s, "-----BEGIN CERTIFICATE-----")); n++) {
		const char *end = strstr(begin, SEED_PEM_END);
		if (!end)
			break;
		end += strlen(SEED_PEM_END);
		if (n == 0)
			fputs("ca_certs:\n"
			      "  trusted:\n", f);
		fputs("    - |\n", f);
		for (const char *line = begin; line < end;) {
			size_t len = strcspn(line, "\r\n");
			if (line + len > end)
				len = (size_t)(end - line);
			if (len > 0)
				fprintf(f, "      %.*s\n", (int)len, line);
			line += len;
			line += strspn(line, "\r\n");
		}
		s = end;
	}
	if (n == 0 || strstr(s, "-----BEGIN"))
		return err_input("building seed user-data: the CA is not a list of PEM certificates");
	return 0;
}

/* Finish an open_memstream document into *ret_text. */
static int seed_finish(FILE *f, char **text, const char *what, char **ret_text)
{
	if (ferror(f) || fclose(f) != 0) {
		free(*text);
		return err_fail("building seed %s: out of memory", what);
	}
	*ret_text = *text;
	return 0;
}

int seed_user_data(const struct seed_params *p, char **ret_text)
{
	if (seed_check(p, "user-data") < 0)
		return -1;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return err_errno(errno, "building seed user-data");
	fputs("#cloud-config\n"
	      "# qVSA first-boot personalization, read by /usr/sbin/qvsa-agent\n"
	      "qvsa:\n"
	      "  perscode: ", f);
	seed_yaml_quoted(f, p->perscode);
	if (p->platform_url) {
		fputs("\n  platform_url: ", f);
		seed_yaml_quoted(f, p->platform_url);
	}
	if (p->proxy) {
		fputs("\n  proxy: ", f);
		seed_yaml_quoted(f, p->proxy);
	}
	fputc('\n', f);
	if (p->ca_pem && seed_ca_certs(f, p->ca_pem) < 0) {
		fclose(f);
		free(text);
		return -1;
	}
	if (p->poweroff)
		fputs("power_state:\n"
		      "  mode: poweroff\n"
		      "  message: \"qVSA first-boot personalization done\"\n"
		      "  timeout: 5\n"
		      "  condition: true\n", f);
	return seed_finish(f, &text, "user-data", ret_text);
}

int seed_meta_data(const struct seed_params *p, char **ret_text)
{
	if (seed_check(p, "meta-data") < 0)
		return -1;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return err_errno(errno, "building seed meta-data");
	fputs("instance-id: ", f);
	seed_yaml_quoted(f, p->instance_id);
	if (p->hostname) {
		fputs("\nlocal-hostname: ", f);
		seed_yaml_quoted(f, p->hostname);
	}
	fputc('\n', f);
	return seed_finish(f, &text, "meta-data", ret_text);
}

int seed_write_iso_docs(const char *user_data, const char *meta_data, const char *path)
{
	/* the order is fixed: libarchive sorts names, but we do not rely on it */
	const struct media_file files[] = {
		{ .path = "meta-data", .data = meta_data, .len = strlen(meta_data) },
		{ .path = "user-data", .data = user_data, .len = strlen(user_data) },
	};
	if (media_write_iso(SEED_LABEL, files, ELEMENTSOF(files), path) < 0) {
		err_prefix("writing seed");
		return -1;
	}
	return 0;
}

int seed_write_iso(const struct seed_params *p, const char *path)
{
	_cleanup_free_ char *ud = NULL, *md = NULL;
	if (seed_user_data(p, &ud) < 0 || seed_meta_data(p, &md) < 0)
		return -1;
	return seed_write_iso_docs(ud, md, path);
}
