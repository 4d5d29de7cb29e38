#include "stamp.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int stamp_epoch(const char *const *paths, int64_t *ret)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	if (e && *e) {
		char *end;
		errno = 0;
		long long v = strtoll(e, &end, 10);
		if (errno || *end || v < 0 || v > 253402300799LL)
			return err_input("SOURCE_DATE_EPOCH '%s': expected seconds since 1970 (a non-negative integer)", e);
		*ret = v;
		return 0;
	}
	int64_t newest = 0;
	for (; paths && *paths; paths++) {
		struct stat st;
		if (stat(*paths, &st) == 0 && st.st_mtime > newest)
			newest = st.st_mtime;
	}
	*ret = newest;
	return 0;
}

void stamp_format_date(int64_t epoch, char buf[21])
{
	time_t t = (time_t)epoch;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void stamp_init(struct stamp *s)
{
	_cleanup_free_ char *in = xasprintf("qvsa-build\n%s\n%s\n%s\n%s\n%s\n%lld\n", s->appliance, s->version,
					     s->recipe_sha256, s->targets, s->kernel, (long long)s->epoch);
	char hex[65];
	sha256_hex(in, strlen(in), hex);
	memcpy(s->build_id, hex, 16);
	s->build_id[16] = 0;
}

char *stamp_release_text(const struct stamp *s)
{
	char date[21];
	stamp_format_date(s->epoch, date);
	const char *xy = strchr(s->version, '-') ? strchr(s->version, '-') + 1 : s->version;
	return xasprintf("NAME=\"qVSA\"\n"
			 "ID=qvsa\n"
			 "APPLIANCE=\"%s\"\n"
			 "BOOTSTRAP_VERSION=\"%s\"\n"
			 "VERSION_ID=\"%s\"\n"
			 "BUILD_ID=\"%s\"\n"
			 "BUILD_DATE=\"%s\"\n"
			 "SOURCE_DATE_EPOCH=\"%lld\"\n"
			 "RECIPE_SHA256=\"%s\"\n"
			 "TARGETS=\"%s\"\n"
			 "KERNEL=\"%s\"\n",
			 s->appliance, s->version, xy, s->build_id, date, (long long)s->epoch, s->recipe_sha256,
			 s->targets, s->kernel);
}

char *stamp_get(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
			const char *v = line + klen + 1;
			size_t vlen = len - klen - 1;
			if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
				v++;
				vlen -= 2;
			}
			return xasprintf("%.*s", (int)vlen, v);
		}
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}
