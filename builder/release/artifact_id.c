/* What an artifact is, from its bytes: see artifact_id.h. */
#include "artifact_id.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "manifest.h"
#include "sign.h"
#include "stamp.h"
#include "target.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pread_at(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

int artifact_sniff(const char *path, const char **ret_writer)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? err_input("artifact '%s': no such file", path)
				       : err_errno(errno, "reading artifact '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return err_input("artifact '%s': not a regular file", path);
	unsigned char head[512] = {0}, tail[512] = {0};
	if (st.st_size < 512 || pread_at(fd, head, sizeof(head), 0) < 0 ||
	    pread_at(fd, tail, sizeof(tail), st.st_size - 512) < 0)
		return err_input("artifact '%s': too short to be a disk image (%lld bytes)", path, (long long)st.st_size);
	const char *w = NULL;
	if (memcmp(head, "QFI\xfb", 4) == 0)
		w = "qcow2";
	else if (memcmp(head, "KDMV", 4) == 0)
		w = "vmdk";
	else if (memcmp(head, "vhdxfile", 8) == 0)
		w = "vhdx";
	/* A dynamic VHD starts with a copy of its footer; a fixed one is a raw disk plus the footer. */
	else if (memcmp(head, "conectix", 8) == 0 || memcmp(tail, "conectix", 8) == 0)
		w = "vhd";
	else if (head[0] == 0x1f && head[1] == 0x8b)
		w = "gce";
	else if (memcmp(head + 257, "ustar", 5) == 0)
		w = "ova";
	else if (head[510] == 0x55 && head[511] == 0xaa)
		w = "raw";
	if (!w)
		return err_input("artifact '%s': not a format qvsa writes (no qcow2, VMDK, VHD, VHDX, OVA, tar.gz or "
				 "partitioned raw disk signature)",
				 path);
	*ret_writer = w;
	return 0;
}

void artifact_stamp_clear(struct artifact_stamp *s)
{
	free(s->release);
	free(s->os_release);
	*s = (struct artifact_stamp){0};
}

void artifact_identity_clear(struct artifact_identity *id)
{
	free(id->target);
	free(id->version);
	free(id->file);
	free(id->writer);
	*id = (struct artifact_identity){0};
}

int artifact_read_stamp(const char *path, const char *writer, struct artifact_stamp *ret)
{
	if (!writer && artifact_sniff(path, &writer) < 0)
		return -1;
	const struct writer_ops *w = writer_find(writer);
	if (!w || !w->disk_format)
		return err_input("artifact '%s': format '%s' is not known to this qvsa", path, writer);
	_cleanup_free_ char *unpacked = NULL;
	char *tmp = NULL;
	if (w->unpack) {
		tmp = fs_tmpdir_new("stamp");
		if (!tmp || w->unpack(path, tmp, &unpacked) < 0) {
			fs_tmpdir_release(tmp);
			return -1;
		}
	}
	static const char *const paths[] = {"/etc/qvsa-release", "/etc/os-release", NULL};
	struct image_disk d = {.path = unpacked ? unpacked : path, .format = w->disk_format, .name = path};
	struct image_content *c = NULL;
	size_t launched = 0;
	int rc = image_read_auto(&d, 1, paths, &c, &launched);
	fs_tmpdir_release(tmp);
	if (rc < 0)
		return -1;
	if (c[0].error) {
		rc = c[0].error_kind == ERR_INPUT ? err_input("%s", c[0].error) : err_fail("%s", c[0].error);
	} else if (!c[0].files[0]) {
		rc = err_input("artifact '%s': no /etc/qvsa-release inside (not a qvsa image)", path);
	} else {
		*ret = (struct artifact_stamp){.writer = w->name, .release = TAKE_PTR(c[0].files[0]),
					       .os_release = TAKE_PTR(c[0].files[1])};
	}
	image_contents_free(c, 1);
	return rc;
}

/* Whether the space-separated list has word. */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		p += strspn(p, " ");
		size_t len = strcspn(p, " ");
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/* Append "KEY 'inside' (manifest 'want')" to f when the stamp's key is not want. */
static void compare(FILE *f, unsigned *n, const char *text, const char *file, const char *key, const char *want)
{
	_cleanup_free_ char *got = text ? stamp_get(text, key) : NULL;
	if (got && strcmp(got, want) == 0)
		return;
	fprintf(f, "%s%s %s '%s' (manifest: '%s')", (*n)++ ? "; " : "", file, key, got ? got : "(none)", want);
}

/* The stamp of an artifact against its manifest entry; every difference named. */
static int check_stamp(const char *path, const struct manifest *m, const struct manifest_artifact *a,
		       const struct artifact_stamp *s)
{
	const struct manifest_build *b = manifest_build(m);
	char *buf = NULL;
	size_t len = 0;
	unsigned n = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *rel = "qvsa-release";
	compare(f, &n, s->release, rel, "BOOTSTRAP_VERSION", b->version);
	compare(f, &n, s->release, rel, "BUILD_ID", a->build_id);
	compare(f, &n, s->release, rel, "RECIPE_SHA256", b->recipe_sha256);
	compare(f, &n, s->release, rel, "APPLIANCE", b->appliance);
	compare(f, &n, s->release, rel, "BUILD_DATE", manifest_build_date(m));
	compare(f, &n, s->release, rel, "KERNEL", b->kernel);
	_cleanup_free_ char *epoch = xasprintf("%" PRId64, b->epoch);
	compare(f, &n, s->release, rel, "SOURCE_DATE_EPOCH", epoch);
	_cleanup_free_ char *targets = stamp_get(s->release, "TARGETS");
	if (!targets || !has_word(targets, a->target))
		fprintf(f, "%s%s TARGETS '%s' lacks target '%s'", n++ ? "; " : "", rel, targets ? targets : "(none)",
			a->target);
	/* What importers read (os-release) says the same. */
	compare(f, &n, s->os_release, "os-release", "BUILD_ID", a->build_id);
	compare(f, &n, s->os_release, "os-release", "IMAGE_ID", b->appliance);
	fclose(f);
	_cleanup_free_ char *diffs = buf;
	if (n == 0)
		return 0;
	return err_fail("artifact '%s': its stamp does not match manifest entry '%s': %s", path, a->file, diffs);
}

/* The signed manifest, or an error (the signature checked over the file's exact bytes). */
static int load_signed(const struct artifact_check_opts *o, struct manifest **ret)
{
	_cleanup_free_ char *def = xasprintf("%s.sig", o->manifest);
	const char *sig_path = o->signature ? o->signature : def;
	struct sign_key *k = NULL;
	if (sign_key_load_public(o->pubkey, &k) < 0)
		return -1;
	_cleanup_free_ char *buf = NULL, *sig = NULL;
	size_t len = 0, siglen = 0;
	int rc = fs_read_file(o->manifest, &buf, &len);
	if (rc == 0 && !fs_exists(sig_path))
		rc = err_input("manifest '%s': no signature '%s' (sign it with 'qvsa sign')", o->manifest, sig_path);
	else if (rc == 0)
		rc = fs_read_file(sig_path, &sig, &siglen);
	if (rc == 0 && sign_check(k, buf, len, sig, siglen) < 0) {
		err_prefix("manifest '%s': signature '%s'", o->manifest, sig_path);
		rc = -1;
	}
	sign_key_free(k);
	if (rc == 0) {
		_cleanup_free_ char *what = xasprintf("manifest '%s'", o->manifest);
		rc = manifest_parse(buf, len, what, ret);
	}
	return rc;
}

/* One entry against the file: size, format, stamp. */
static int check_entry(const char *path, uint64_t size, const char *sniffed, const struct manifest *m,
		       const struct manifest_artifact *a)
{
	if (a->size != size)
		return err_fail("artifact '%s': %" PRIu64 " bytes, manifest entry '%s' says %" PRIu64, path, size, a->file,
				a->size);
	if (strcmp(sniffed, a->format) != 0)
		return err_fail("artifact '%s': its bytes are a %s artifact, manifest entry '%s' says %s", path, sniffed,
				a->file, a->format);
	struct artifact_stamp s = {0};
	if (artifact_read_stamp(path, a->format, &s) < 0)
		return -1;
	int rc = check_stamp(path, m, a, &s);
	artifact_stamp_clear(&s);
	return rc;
}

int artifact_check(const char *path, const struct artifact_check_opts *o, struct artifact_identity *ret)
{
	if (!fs_exists(path))
		return err_input("artifact '%s': no such file", path);
	struct manifest *m = NULL;
	if (load_signed(o, &m) < 0)
		return -1;
	char sha[65];
	uint64_t size = 0;
	const char *sniffed = NULL;
	int rc = fs_sha256_file(path, sha, &size);
	if (rc == 0)
		rc = artifact_sniff(path, &sniffed);
	/* Entries of one SHA-256 (identical files published twice): the first that checks out. */
	long idx = -1;
	size_t pos = 0;
	bool found = false;
	while (rc == 0 && (idx = manifest_find_sha256(m, sha, &pos)) >= 0) {
		found = true;
		err_clear();
		if (check_entry(path, size, sniffed, m, manifest_artifact_at(m, (size_t)idx)) == 0)
			break;
	}
	if (rc == 0 && !found)
		rc = err_fail("artifact '%s' (sha256 %s) is not listed in manifest '%s': changed since it was published, "
			      "or from another release",
			      path, sha, o->manifest);
	else if (rc == 0 && idx < 0)
		rc = -1; /* the last entry's error stands */
	if (rc == 0 && ret) {
		const struct manifest_artifact *a = manifest_artifact_at(m, (size_t)idx);
		*ret = (struct artifact_identity){.target = xstrdup(a->target),
						  .version = xstrdup(manifest_build(m)->version),
						  .file = xstrdup(a->file), .writer = xstrdup(a->format)};
	}
	manifest_free(m);
	return rc;
}

/* The target a file name "…-TARGET.EXT" names, if it is one of cands (a tie-breaker only). */
static const char *name_pick(const char *path, char **cands, size_t n)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *pat = xasprintf("-%s.", cands[i]);
		if (strstr(base, pat))
			return cands[i];
	}
	return NULL;
}

int artifact_identify(const char *path, const char *datadir, const char *target_hint, struct artifact_identity *ret)
{
	struct artifact_stamp s = {0};
	if (artifact_read_stamp(path, NULL, &s) < 0)
		return -1;
	_cleanup_free_ char *version = stamp_get(s.release, "BOOTSTRAP_VERSION");
	_cleanup_free_ char *targets = stamp_get(s.release, "TARGETS");
	const char *writer = s.writer;
	artifact_stamp_clear(&s);
	if (!version || !targets)
		return err_input("artifact '%s': its stamp names no BOOTSTRAP_VERSION or TARGETS", path);
	/* Candidates: the stamp's targets that ship a file of this format. */
	char *cands[32];
	char *exts[32];
	size_t n = 0;
	int rc = 0;
	_cleanup_free_ char *copy = xstrdup(targets);
	char *save = NULL;
	for (char *t = strtok_r(copy, " ", &save); t && n < ELEMENTSOF(cands); t = strtok_r(NULL, " ", &save)) {
		struct target *tg = NULL;
		if (target_find(datadir, t, &tg) < 0) {
			err_clear(); /* a target this qvsa does not know cannot be booted here */
			continue;
		}
		for (size_t i = 0; i < target_n_artifacts(tg); i++)
			if (strcmp(target_artifact_at(tg, i)->writer, writer) == 0) {
				cands[n] = t;
				exts[n++] = xstrdup(target_artifact_at(tg, i)->extension);
				break;
			}
		target_free(tg);
	}
	const char *pick = NULL;
	_cleanup_free_ char *hint_ext = NULL;
	if (target_hint) { /* the user's word, as long as that target ships this format */
		struct target *tg = NULL;
		if (target_find(datadir, target_hint, &tg) < 0)
			rc = -1;
		for (size_t i = 0; rc == 0 && i < target_n_artifacts(tg) && !hint_ext; i++)
			if (strcmp(target_artifact_at(tg, i)->writer, writer) == 0)
				hint_ext = xstrdup(target_artifact_at(tg, i)->extension);
		target_free(tg);
		if (rc == 0 && !hint_ext)
			rc = err_input("artifact '%s' is a %s artifact; target '%s' ships none", path, writer, target_hint);
		pick = target_hint;
	} else if (n == 1)
		pick = cands[0];
	else if (n > 1)
		pick = name_pick(path, cands, n);
	if (rc == 0 && !pick)
		rc = err_input("artifact '%s' (%s): its stamp names targets '%s'%s; pass --target or --manifest", path,
			       writer, targets, n ? ", more than one with this format" : ", none with this format");
	if (rc == 0) {
		const char *ext = hint_ext ? hint_ext : writer;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cands[i], pick) == 0)
				ext = exts[i];
		*ret = (struct artifact_identity){.target = xstrdup(pick), .version = xstrdup(version),
						  .file = xasprintf("%s-%s.%s", version, pick, ext),
						  .writer = xstrdup(writer)};
	}
	for (size_t i = 0; i < n; i++)
		free(exts[i]);
	return rc;
}
