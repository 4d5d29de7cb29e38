/* Bootstrap versions "qVSA-X.Y" (see version.h). */
#include "version.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define VERSION_PREFIX "qVSA-"

/* Copy s for an error message: control characters escaped, long input cut. */
static const char *version_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	for (; *s && o + 8 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = 0;
	return buf;
}

/* One decimal component: digits, no leading zero unless it is "0", fits unsigned. */
static bool parse_component(const char **p, unsigned *ret)
{
	const char *s = *p;
	unsigned long v = 0;
	if (*s < '0' || *s > '9')
		return false;
	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > UINT_MAX)
			return false;
	}
	*ret = (unsigned)v;
	*p = s;
	return true;
}

int version_parse(const char *s, unsigned *ret_major, unsigned *ret_minor)
{
	unsigned major, minor;
	const char *p = s;
	if (strncmp(p, VERSION_PREFIX, strlen(VERSION_PREFIX)) == 0) {
		p += strlen(VERSION_PREFIX);
		if (parse_component(&p, &major) && *p++ == '.' && parse_component(&p, &minor) && *p == 0) {
			if (ret_major)
				*ret_major = major;
			if (ret_minor)
				*ret_minor = minor;
			return 0;
		}
	}
	char esc[48]; /* short: a VERSION file found by walking up may not be ours */
	return err_input("bootstrap version '%s': expected qVSA-X.Y with X and Y decimal numbers "
			 "without leading zeros, e.g. qVSA-1.0", version_escape(s, esc, sizeof(esc)));
}

/* A VERSION file is one short line; anything longer is not one. */
#define VERSION_FILE_MAX 4096

int version_read_file(const char *path, char **ret_version)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct stat st;
	if (stat(path, &st) < 0)
		return err_input("reading version file '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_input("%s:1:1: version file is not a regular file", path);
	if (st.st_size > VERSION_FILE_MAX)
		return err_input("%s:1:1: version file is %lld bytes; it must hold one line qVSA-X.Y", path,
				 (long long)st.st_size);
	if (fs_read_file(path, &buf, &len) < 0)
		return -1;
	/* Exactly one line; the final newline is customary but optional. */
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = 0;
	size_t nul = strlen(buf);
	if (nul != len)
		return err_input("%s:1:%zu: version file holds a NUL byte", path, nul + 1);
	const char *nl = strchr(buf, '\n');
	if (nl)
		return err_input("%s:2:1: version file holds more than one line; it must hold one line qVSA-X.Y", path);
	if (version_parse(buf, NULL, NULL) < 0) {
		err_prefix("%s:1:1", path);
		return -1;
	}
	*ret_version = TAKE_PTR(buf);
	return 0;
}
