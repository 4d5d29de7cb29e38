/* The sysprep checks: a pure judgement over what was read from an image
 * (no I/O here, so tests replay recorded listings). Each check says ok,
 * FAIL or n/a in one line; a file that may hold a secret (/etc/shadow) is
 * judged, never quoted. */
#include "sysprep.h"

#include <fnmatch.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Indexes into sysprep_paths and sysprep_dirs. */
enum { P_MACHINE_ID, P_SHADOW, P_PASSWD, P_RANDOM_SEED };
enum { D_SSH, D_APT_LISTS, D_APT_CACHE, D_LOG, D_CLOUD };

const char *const sysprep_paths[] = {"/etc/machine-id", "/etc/shadow", "/etc/passwd", "/var/lib/systemd/random-seed",
				     NULL};
const char *const sysprep_dirs[] = {"/etc/ssh", "/var/lib/apt/lists", "/var/cache/apt", "/var/log", "/var/lib/cloud",
				    NULL};

const char *sysprep_status_name(enum sysprep_status s)
{
	return s == SYSPREP_OK ? "ok" : s == SYSPREP_FAIL ? "FAIL" : "n/a";
}

/* Set r's verdict. Returns 0, so that a check can end with "return verdict(...)". */
static int __attribute__((format(printf, 3, 4))) verdict(struct sysprep_result *r, enum sysprep_status s,
							  const char *fmt, ...)
{
	r->status = s;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return 0;
}

/* e's path relative to dir ("" for dir itself). */
static const char *rel(const struct image_entry *e, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(e->path, dir, n) == 0 && e->path[n] == '/' ? e->path + n + 1 : e->path;
}

/* Names of what a check found, for its detail: the first few, then "...". */
struct found {
	size_t n;        /* how many were found */
	bool full;       /* names ends with ", ...": no more fit */
	char names[120]; /* the first ones, comma separated, as many as fit */
};

static void found_add(struct found *f, const char *raw)
{
	/* A name may hold any byte but '/' and NUL: the detail stays one printable line. */
	char name[sizeof(f->names)];
	snprintf(name, sizeof(name), "%s", raw);
	for (char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	size_t used = strlen(f->names), room = sizeof(f->names) - used;
	const char *sep = f->n++ ? ", " : "";
	if (f->full)
		return;
	if (strlen(sep) + strlen(name) + strlen(", ...") < room) {
		snprintf(f->names + used, room, "%s%s", sep, name);
	} else {
		snprintf(f->names + used, room, "%s...", sep);
		f->full = true;
	}
}

/* /etc/machine-id: empty (what qvsa writes) or "uninitialized" (systemd's
 * first-boot marker) leave the ID to each instance; an ID in it is shared. */
static int check_machine_id(const char *text, size_t len, struct sysprep_result *r)
{
	if (!text)
		return verdict(r, SYSPREP_NA, "no /etc/machine-id: no ID baked in");
	if (len == 0)
		return verdict(r, SYSPREP_OK, "empty");
	if (strcmp(text, "uninitialized\n") == 0 || strcmp(text, "uninitialized") == 0)
		return verdict(r, SYSPREP_OK, "uninitialized: systemd's first boot");
	size_t hex = strspn(text, "0123456789abcdef");
	if (hex == 32 && (len == 32 || (len == 33 && text[32] == '\n')))
		return verdict(r, SYSPREP_FAIL, "holds a machine ID: every instance would share it");
	return verdict(r, SYSPREP_FAIL, "holds %zu byte%s that %s neither empty nor \"uninitialized\"", len,
		       len == 1 ? "" : "s", len == 1 ? "is" : "are");
}

/* /etc/ssh/ssh_host_*_key: a host key in the image is every instance's key. */
static int check_ssh(const struct image_listing *l, struct sysprep_result *r)
{
	if (!l->exists)
		return verdict(r, SYSPREP_NA, "no /etc/ssh: no SSH server");
	struct found f = {0};
	for (size_t i = 0; i < l->n; i++) {
		const char *name = rel(&l->entries[i], "/etc/ssh");
		if (l->entries[i].type != 'd' && !strchr(name, '/') && fnmatch("ssh_host_*_key", name, 0) == 0)
			found_add(&f, name);
	}
	if (f.n)
		return verdict(r, SYSPREP_FAIL, "%zu host key%s in /etc/ssh: %s", f.n, f.n == 1 ? "" : "s", f.names);
	return verdict(r, SYSPREP_OK, "no host keys in /etc/ssh");
}

/* /var/lib/apt/lists: nothing but apt's lock and empty folders (partial/). */
static int check_apt_lists(const struct image_listing *l, struct sysprep_result *r)
{
	const char *dir = sysprep_dirs[D_APT_LISTS];
	if (!l->exists)
		return verdict(r, SYSPREP_NA, "no %s: no apt", dir);
	struct found f = {0};
	for (size_t i = 0; i < l->n; i++) {
		const char *name = rel(&l->entries[i], dir);
		if (l->entries[i].type != 'd' && strcmp(name, "lock") != 0)
			found_add(&f, name);
	}
	if (f.n)
		return verdict(r, SYSPREP_FAIL, "%zu file%s in %s: %s", f.n, f.n == 1 ? "" : "s", dir, f.names);
	return verdict(r, SYSPREP_OK, "no package lists");
}

/* /var/cache/apt: no package caches (*.bin) and no downloaded packages (archives/ *.deb). */
static int check_apt_cache(const struct image_listing *l, struct sysprep_result *r)
{
	const char *dir = sysprep_dirs[D_APT_CACHE];
	if (!l->exists)
		return verdict(r, SYSPREP_NA, "no %s: no apt", dir);
	struct found f = {0};
	size_t debs = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct image_entry *e = &l->entries[i];
		const char *name = rel(e, dir);
		if (e->type == 'd')
			continue;
		if (!strchr(name, '/') && fnmatch("*.bin", name, 0) == 0)
			found_add(&f, name);
		else if (strncmp(name, "archives/", 9) == 0 && fnmatch("*.deb", name, 0) == 0)
			debs++;
	}
	if (f.n && debs)
		return verdict(r, SYSPREP_FAIL, "%s and %zu .deb file%s in %s", f.names, debs, debs == 1 ? "" : "s", dir);
	if (f.n)
		return verdict(r, SYSPREP_FAIL, "%s in %s", f.names, dir);
	if (debs)
		return verdict(r, SYSPREP_FAIL, "%zu .deb file%s in %s/archives", debs, debs == 1 ? "" : "s", dir);
	return verdict(r, SYSPREP_OK, "no package caches or .deb files");
}

/* /var/log: files may stay (services expect some), their content may not. */
static int check_logs(const struct image_listing *l, struct sysprep_result *r)
{
	const char *dir = sysprep_dirs[D_LOG];
	if (!l->exists)
		return verdict(r, SYSPREP_NA, "no %s", dir);
	struct found f = {0};
	size_t empty = 0;
	unsigned long long bytes = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct image_entry *e = &l->entries[i];
		if (e->type != 'f')
			continue;
		if (e->size == 0) {
			empty++;
			continue;
		}
		bytes += e->size;
		found_add(&f, rel(e, dir));
	}
	if (f.n)
		return verdict(r, SYSPREP_FAIL, "%zu file%s with content, %llu bytes: %s", f.n, f.n == 1 ? "" : "s",
			       bytes, f.names);
	if (empty)
		return verdict(r, SYSPREP_OK, "no log content; %zu empty file%s", empty, empty == 1 ? "" : "s");
	return verdict(r, SYSPREP_OK, "no log files");
}

/* /var/lib/cloud: cloud-init's state belongs to the customer's first boot. */
static int check_cloud(const struct image_listing *l, struct sysprep_result *r)
{
	const char *dir = sysprep_dirs[D_CLOUD];
	if (!l->exists)
		return verdict(r, SYSPREP_OK, "no %s: cloud-init starts fresh at first boot", dir);
	struct found f = {0};
	for (size_t i = 0; i < l->n; i++)
		if (l->entries[i].type != 'd')
			found_add(&f, rel(&l->entries[i], dir));
	if (f.n)
		return verdict(r, SYSPREP_FAIL, "%zu entr%s in %s, a boot's state: %s", f.n, f.n == 1 ? "y" : "ies", dir,
			       f.names);
	return verdict(r, SYSPREP_OK, "%s holds no files", dir);
}

/* The second field of user's line in a passwd-format file (text), into
 * field (cut to its size); false when there is no such line. */
static bool account_field(const char *text, const char *user, char *field, size_t size)
{
	size_t ulen = strlen(user);
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, user, ulen) != 0 || line[ulen] != ':')
			continue;
		const char *v = line + ulen + 1;
		size_t n = strcspn(v, ":\n");
		snprintf(field, size, "%.*s", (int)(n < size ? n : size - 1), v);
		return true;
	}
	return false;
}

/* root's password field: "*" or "!..." (locked) or no password at all.
 * The field may be a hash: it is judged here and never printed. */
static int check_root(const char *shadow, const char *passwd, struct sysprep_result *r)
{
	char field[256];
	const char *where = "/etc/shadow";
	bool found = false;
	if (shadow) {
		found = account_field(shadow, "root", field, sizeof(field));
	} else if (passwd) {
		where = "/etc/passwd";
		found = account_field(passwd, "root", field, sizeof(field));
		if (found && strcmp(field, "x") == 0) {
			explicit_bzero(field, sizeof(field));
			return verdict(r, SYSPREP_OK, "no /etc/shadow, and /etc/passwd defers to it: no password");
		}
	} else {
		return verdict(r, SYSPREP_NA, "no /etc/shadow or /etc/passwd");
	}
	if (!found)
		return verdict(r, SYSPREP_FAIL, "no root entry in %s: cannot tell", where);
	char first = field[0];
	size_t len = strlen(field);
	explicit_bzero(field, sizeof(field));
	if (len == 0)
		return verdict(r, SYSPREP_FAIL, "root's password field in %s is empty: root logs in without a password",
			       where);
	if (first == '*' || (first == '!' && len == 1))
		return verdict(r, SYSPREP_OK, "locked: no password can match");
	if (first == '!')
		return verdict(r, SYSPREP_OK, "locked, but a password hash ships behind the lock");
	return verdict(r, SYSPREP_FAIL, "root has a password in %s: every instance would share it", where);
}

/* systemd's saved entropy: shared, it gives every instance the same seed. */
static int check_random_seed(const char *text, size_t len, struct sysprep_result *r)
{
	if (!text)
		return verdict(r, SYSPREP_OK, "no /var/lib/systemd/random-seed");
	return verdict(r, SYSPREP_FAIL, "/var/lib/systemd/random-seed is present, %zu bytes: every instance "
				       "would credit the same seed", len);
}

void sysprep_judge(char *const *files, const size_t *lens, const struct image_listing *lists,
		   struct sysprep_result ret[SYSPREP_N_CHECKS])
{
	static const char *const names[SYSPREP_N_CHECKS] = {"machine-id", "ssh-host-keys", "apt-lists",    "apt-cache",
							    "logs",       "cloud-init",    "root-password", "random-seed"};
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++)
		ret[i] = (struct sysprep_result){.name = names[i]};
	check_machine_id(files[P_MACHINE_ID], lens[P_MACHINE_ID], &ret[0]);
	check_ssh(&lists[D_SSH], &ret[1]);
	check_apt_lists(&lists[D_APT_LISTS], &ret[2]);
	check_apt_cache(&lists[D_APT_CACHE], &ret[3]);
	check_logs(&lists[D_LOG], &ret[4]);
	check_cloud(&lists[D_CLOUD], &ret[5]);
	check_root(files[P_SHADOW], files[P_PASSWD], &ret[6]);
	check_random_seed(files[P_RANDOM_SEED], lens[P_RANDOM_SEED], &ret[7]);
}
