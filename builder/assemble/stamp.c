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

void stamp_os_facts(const char *version, struct os_facts *ret)
{
	const char *dash = strchr(version, '-');
	*ret = (struct os_facts){
		.id = "qvsa", .id_like = "debian", .name = "qVSA",
		/* CIM OSType 96 "Debian 64-Bit": what inspectors (libguestfs, via
		 * /etc/debian_version) call it too. debian10_64Guest is the newest
		 * Debian guest id vSphere 6.7 (vmx-14, the default) knows. */
		.ovf_os_id = 96, .ovf_os_type = "debian10_64Guest",
	};
	snprintf(ret->version_id, sizeof(ret->version_id), "%s", dash ? dash + 1 : version);
	snprintf(ret->pretty_name, sizeof(ret->pretty_name), "%s %s", ret->name, ret->version_id);
}

char *stamp_release_text(const struct stamp *s)
{
	char date[21];
	struct os_facts os;
	stamp_format_date(s->epoch, date);
	stamp_os_facts(s->version, &os);
	return xasprintf("NAME=\"%s\"\n"
			 "ID=%s\n"
			 "APPLIANCE=\"%s\"\n"
			 "BOOTSTRAP_VERSION=\"%s\"\n"
			 "VERSION_ID=\"%s\"\n"
			 "BUILD_ID=\"%s\"\n"
			 "BUILD_DATE=\"%s\"\n"
			 "SOURCE_DATE_EPOCH=\"%lld\"\n"
			 "RECIPE_SHA256=\"%s\"\n"
			 "TARGETS=\"%s\"\n"
			 "KERNEL=\"%s\"\n"
			 "BASE=\"%s\"\n",
			 os.name, os.id, s->appliance, s->version, os.version_id, s->build_id, date, (long long)s->epoch,
			 s->recipe_sha256, s->targets, s->kernel, s->base ? s->base : "tiny");
}

char *stamp_os_release_text(const struct stamp *s)
{
	struct os_facts os;
	stamp_os_facts(s->version, &os);
	/* IMAGE_ID/IMAGE_VERSION/BUILD_ID name this very image (os-release(5)),
	 * so an importer's inventory can tell one appliance build from another. */
	return xasprintf("NAME=\"%s\"\n"
			 "ID=%s\n"
			 "ID_LIKE=%s\n"
			 "VERSION=\"%s\"\n"
			 "VERSION_ID=\"%s\"\n"
			 "PRETTY_NAME=\"%s\"\n"
			 "IMAGE_ID=\"%s\"\n"
			 "IMAGE_VERSION=\"%s\"\n"
			 "BUILD_ID=\"%s\"\n",
			 os.name, os.id, os.id_like, os.version_id, os.version_id, os.pretty_name, s->appliance,
			 os.version_id, s->build_id);
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
