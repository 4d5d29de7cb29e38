/* Deterministic media images (see media.h).
 *
 * libarchive stamps the volume and the root directory with the wall clock
 * and writes local time; genisoimage stamps its volume descriptors, the UDF
 * integrity and file-set descriptors and a time-based UDF volume set id, and
 * has no option to pin any of them. So after either is done we walk the
 * image and set every timestamp to one fixed UTC instant, recomputing UDF's
 * descriptor CRCs and checksums where we touched a descriptor. */
#include "media.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "proc.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MEDIA_SECTOR 2048
#define MEDIA_MAX_DEPTH 8

int media_epoch(time_t *ret)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	if (!s || !*s) {
		*ret = 0;
		return 0;
	}
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < 0 || v > 4102444799LL) /* ISO9660 dates stop at year 2099 here */
		return err_input("reading SOURCE_DATE_EPOCH '%s': not a time in seconds", s);
	*ret = (time_t)v;
	return 0;
}

/* An image held in memory while it is made and fixed. */
struct media_image {
	unsigned char *data; /* owned bytes */
	size_t len;          /* bytes used */
	size_t cap;          /* bytes allocated */
};

static la_ssize_t media_image_write(struct archive *a, void *arg, const void *buf, size_t n)
{
	struct media_image *img = arg;
	(void)a;
	if (img->len + n > img->cap) {
		size_t cap = img->cap ? img->cap : 512 * 1024;
		while (cap < img->len + n)
			cap *= 2;
		unsigned char *d = realloc(img->data, cap);
		if (!d)
			abort();
		img->data = d;
		img->cap = cap;
	}
	memcpy(img->data + img->len, buf, n);
	img->len += n;
	return (la_ssize_t)n;
}

static uint32_t media_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t media_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void media_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* ---- ISO9660 ---- */

/* Timestamp encodings of ECMA-119: 7-byte directory-record form (9.1.5)
 * and 17-byte volume-descriptor form (8.4.26.1); both at UTC offset 0. */
static void media_put_time7(unsigned char *d, const struct tm *tm)
{
	const unsigned char v[7] = { (unsigned char)tm->tm_year, (unsigned char)(tm->tm_mon + 1),
				     (unsigned char)tm->tm_mday, (unsigned char)tm->tm_hour,
				     (unsigned char)tm->tm_min, (unsigned char)tm->tm_sec, 0 };
	memcpy(d, v, sizeof(v));
}

static void media_put_time17(unsigned char *d, const struct tm *tm)
{
	char s[32] = "0000000000000000";
	strftime(s, sizeof(s), "%Y%m%d%H%M%S00", tm);
	memcpy(d, s, 16);
	d[16] = 0;
}

/* Rock Ridge TF entries in a System Use area, following CE continuations. */
static void media_fix_susp(struct media_image *img, size_t off, size_t len, const struct tm *tm, int depth)
{
	if (depth > MEDIA_MAX_DEPTH || off > img->len || len > img->len - off)
		return;
	unsigned char *e = img->data + off, *end = e + len;
	while (end - e >= 4 && e[2] >= 4 && e[2] <= end - e) {
		if (e[0] == 'S' && e[1] == 'T')
			break;
		if (e[0] == 'T' && e[1] == 'F' && e[2] >= 5) {
			size_t size = (e[4] & 0x80) ? 17 : 7;
			unsigned char *t = e + 5;
			for (int bit = 0; bit < 7; bit++) {
				if (!(e[4] & (1u << bit)))
					continue;
				if (t + size > e + e[2])
					break;
				if (size == 7)
					media_put_time7(t, tm);
				else
					media_put_time17(t, tm);
				t += size;
			}
		} else if (e[0] == 'C' && e[1] == 'E' && e[2] >= 28) {
			media_fix_susp(img, (size_t)media_le32(e + 4) * MEDIA_SECTOR + media_le32(e + 12),
				       media_le32(e + 20), tm, depth + 1);
		}
		e += e[2];
	}
}

/* Every record of a directory extent, and the directories below it. */
static void media_fix_dir(struct media_image *img, uint32_t lba, uint32_t size, const struct tm *tm, int depth)
{
	size_t start = (size_t)lba * MEDIA_SECTOR;
	if (depth > MEDIA_MAX_DEPTH || start > img->len || size > img->len - start)
		return;
	for (size_t off = 0; off < size;) {
		unsigned char *r = img->data + start + off;
		if (r[0] == 0) { /* records never straddle sectors: the rest is padding */
			off = (off / MEDIA_SECTOR + 1) * MEDIA_SECTOR;
			continue;
		}
		if (r[0] < 34 || off + r[0] > size)
			return;
		media_put_time7(r + 18, tm);
		size_t name_len = r[32], su = 33 + name_len + (name_len % 2 == 0);
		if (su < r[0])
			media_fix_susp(img, start + off + su, r[0] - su, tm, 0);
		bool dot = name_len == 1 && (r[33] == 0 || r[33] == 1);
		if ((r[25] & 2) && !dot)
			media_fix_dir(img, media_le32(r + 2), media_le32(r + 10), tm, depth + 1);
		off += r[0];
	}
}

/* The ISO9660 volume descriptors and every directory tree they root. */
static void media_fix_iso(struct media_image *img, const struct tm *tm)
{
	for (size_t lba = 16; (lba + 1) * MEDIA_SECTOR <= img->len; lba++) {
		unsigned char *vd = img->data + lba * MEDIA_SECTOR;
		if (memcmp(vd + 1, "CD001", 5) != 0)
			break;
		if (vd[0] == 255) {
			/* libarchive's information block follows: "INFO <ctime>\n..." */
			unsigned char *info = vd + MEDIA_SECTOR;
			char when[32];
			if (info + MEDIA_SECTOR <= img->data + img->len && memcmp(info, "INFO ", 5) == 0 &&
			    info[5 + 24] == '\n' && strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", tm) == 24)
				memcpy(info + 5, when, 24);
			break;
		}
		if (vd[0] != 1 && vd[0] != 2)
			continue;
		/* creation, modification, expiration, effective; unset ones stay unset */
		static const size_t dates[] = { 813, 830, 847, 864 };
		for (size_t i = 0; i < ELEMENTSOF(dates); i++)
			if (memcmp(vd + dates[i], "0000000000000000", 16) != 0)
				media_put_time17(vd + dates[i], tm);
		media_put_time7(vd + 156 + 18, tm);
		media_fix_dir(img, media_le32(vd + 156 + 2), media_le32(vd + 156 + 10), tm, 0);
	}
}

/* ---- UDF (ECMA-167) ---- */

/* Descriptor tag identifiers whose descriptors carry times. */
enum {
	MEDIA_UDF_PVD = 1,   /* primary volume descriptor: recording time, volume set id */
	MEDIA_UDF_LVID = 9,  /* logical volume integrity descriptor: recording time */
	MEDIA_UDF_FSD = 256, /* file set descriptor: recording time */
	MEDIA_UDF_FE = 261,  /* file entry: access, modification, attribute times */
	MEDIA_UDF_EFE = 266, /* extended file entry: those and creation time */
};

/* CRC-ITU-T (x^16 + x^12 + x^5 + 1, initial 0) of ECMA-167 7.2.6. */
static uint16_t media_udf_crc(const unsigned char *d, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)(d[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

static unsigned char media_udf_tag_sum(const unsigned char *t)
{
	unsigned sum = 0;
	for (int i = 0; i < 16; i++)
		if (i != 4)
			sum += t[i];
	return (unsigned char)sum;
}

/* A 12-byte timestamp (ECMA-167 1/7.3): type 1 (local time) at offset 0 is UTC. */
static void media_udf_time(unsigned char *d, const struct tm *tm)
{
	media_put16(d, 0x1000);
	media_put16(d + 2, (uint16_t)(tm->tm_year + 1900));
	const unsigned char v[8] = { (unsigned char)(tm->tm_mon + 1), (unsigned char)tm->tm_mday,
				     (unsigned char)tm->tm_hour, (unsigned char)tm->tm_min,
				     (unsigned char)tm->tm_sec, 0, 0, 0 };
	memcpy(d + 4, v, sizeof(v));
}

/* Every descriptor with a valid tag, checksum and CRC that carries a time. */
static void media_fix_udf(struct media_image *img, time_t t, const struct tm *tm)
{
	for (size_t lba = 16; (lba + 1) * MEDIA_SECTOR <= img->len; lba++) {
		unsigned char *d = img->data + lba * MEDIA_SECTOR;
		uint16_t id = media_le16(d), version = media_le16(d + 2), crc_len = media_le16(d + 10);
		if ((version != 2 && version != 3) || media_udf_tag_sum(d) != d[4] ||
		    16u + crc_len > MEDIA_SECTOR || media_udf_crc(d + 16, crc_len) != media_le16(d + 8))
			continue;
		static const size_t pvd[] = { 376 }, lvid[] = { 16 }, fe[] = { 72, 84, 96 },
				    efe[] = { 72, 84, 96, 108 };
		const size_t *at = NULL;
		size_t n = 0;
		switch (id) {
		case MEDIA_UDF_PVD: at = pvd; n = ELEMENTSOF(pvd); break;
		case MEDIA_UDF_LVID: case MEDIA_UDF_FSD: at = lvid; n = ELEMENTSOF(lvid); break;
		case MEDIA_UDF_FE: at = fe; n = ELEMENTSOF(fe); break;
		case MEDIA_UDF_EFE: at = efe; n = ELEMENTSOF(efe); break;
		default: continue;
		}
		for (size_t i = 0; i < n; i++)
			if (16u + crc_len >= at[i] + 12)
				media_udf_time(d + at[i], tm);
		/* the volume set id's first 16 characters are a time-based unique
		 * value (OSTA UDF 2.2.2.5): make them the fixed instant instead */
		unsigned char *vs = d + 72;
		if (id == MEDIA_UDF_PVD && vs[0] == 8 && vs[127] >= 17) {
			char hex[17];
			snprintf(hex, sizeof(hex), "%08llX%08X", (unsigned long long)t & 0xffffffffULL, 0u);
			memcpy(vs + 1, hex, 16);
		}
		media_put16(d + 8, media_udf_crc(d + 16, crc_len));
		d[4] = media_udf_tag_sum(d);
	}
}

/* ---- libarchive ISO ---- */

static void media_archive_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void media_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

/* Paths come from our own code, but a wrong one must not escape a staging folder. */
static int media_check_path(const char *path)
{
	if (!*path || path[0] == '/' || strstr(path, "//") || path[strlen(path) - 1] == '/' ||
	    strcmp(path, "..") == 0 || strncmp(path, "../", 3) == 0 || strstr(path, "/../") ||
	    (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
		return err_input("adding '%s' to a media image: not a relative path", path);
	return 0;
}

static int media_add_entry(struct archive *a, const char *name, const struct media_file *f, time_t t)
{
	_cleanup_(media_entry_freep) struct archive_entry *e = archive_entry_new();
	if (!e)
		return err_errno(ENOMEM, "adding '%s' to a media image", name);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, f ? AE_IFREG : AE_IFDIR);
	archive_entry_set_perm(e, f ? 0644 : 0755);
	archive_entry_set_size(e, f ? (la_int64_t)f->len : 0);
	archive_entry_set_mtime(e, t, 0);
	archive_entry_set_atime(e, t, 0);
	archive_entry_set_ctime(e, t, 0);
	archive_entry_set_birthtime(e, t, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (f && archive_write_data(a, f->data, f->len) != (la_ssize_t)f->len))
		return err_fail("adding '%s' to a media image: %s", name, archive_error_string(a));
	return 0;
}

/* Each parent folder of path not yet added (a prefix of an earlier path is). */
static int media_add_parents(struct archive *a, const struct media_file *files, size_t i, time_t t)
{
	const char *path = files[i].path;
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t n = (size_t)(s - path);
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strncmp(files[j].path, path, n) == 0 && files[j].path[n] == '/';
		if (seen)
			continue;
		_cleanup_free_ char *dir = strndup(path, n);
		if (!dir)
			return err_errno(ENOMEM, "adding '%s' to a media image", path);
		if (media_add_entry(a, dir, NULL, t) < 0)
			return -1;
	}
	return 0;
}

static int media_build_iso(const char *label, const struct media_file *files, size_t n, time_t t,
			   struct media_image *img)
{
	_cleanup_(media_archive_freep) struct archive *a = archive_write_new();
	if (!a)
		return err_errno(ENOMEM, "building image");
	if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "volume-id", label) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "rockridge", "1") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "joliet", "1") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, img, NULL, media_image_write, NULL) != ARCHIVE_OK)
		return err_fail("building image: %s", archive_error_string(a));
	for (size_t i = 0; i < n; i++)
		if (media_check_path(files[i].path) < 0 || media_add_parents(a, files, i, t) < 0 ||
		    media_add_entry(a, files[i].path, &files[i], t) < 0)
			return -1;
	if (archive_write_close(a) != ARCHIVE_OK)
		return err_fail("building image: %s", archive_error_string(a));
	if (img->len < 17 * MEDIA_SECTOR)
		return err_fail("building image: libarchive produced only %zu bytes", img->len);
	return 0;
}

/* Volume ids are matched by exact text (config-2, OVF ENV): printable ASCII, at most 32. */
static int media_check_label(const char *label)
{
	size_t n = strlen(label);
	for (size_t i = 0; i < n; i++)
		if (label[i] < 0x20 || label[i] > 0x7e)
			n = 0;
	if (n == 0 || n > 32)
		return err_input("labelling a media image '%s': not 1 to 32 printable ASCII characters", label);
	return 0;
}

/* libarchive writes the primary volume id as upper-case d-characters
 * (config-2 becomes CONFIG_2); mkisofs/genisoimage, which the clouds use,
 * write it as given, and probes (blkid, the agent) compare that text. */
static void media_set_volume_id(struct media_image *img, const char *label)
{
	unsigned char *pvd = img->data + 16 * MEDIA_SECTOR;
	if (pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5) != 0)
		return;
	memset(pvd + 40, ' ', 32);
	memcpy(pvd + 40, label, strlen(label));
}

int media_write_iso(const char *label, const struct media_file *files, size_t n_files, const char *path)
{
	time_t t = 0;
	struct media_image img = { 0 };
	int r = media_check_label(label);
	if (r == 0)
		r = media_epoch(&t);
	if (r == 0)
		r = media_build_iso(label, files, n_files, t, &img);
	if (r == 0) {
		struct tm tm;
		gmtime_r(&t, &tm);
		media_set_volume_id(&img, label);
		media_fix_iso(&img, &tm);
		r = fs_write_file_atomic(path, img.data, img.len, 0644);
	}
	free(img.data);
	if (r < 0)
		err_prefix("writing image '%s'", path);
	return r;
}

/* ---- genisoimage UDF ---- */

static int media_set_time(const char *path, time_t t)
{
	const struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_errno(errno, "setting the time of '%s'", path);
	return 0;
}

/* The files under dir, every file and folder dated t (folders last, since
 * writing into a folder changes its time). */
static int media_stage(const char *dir, const struct media_file *files, size_t n, time_t t)
{
	for (size_t i = 0; i < n; i++) {
		if (media_check_path(files[i].path) < 0)
			return -1;
		_cleanup_free_ char *full = xasprintf("%s/%s", dir, files[i].path);
		_cleanup_free_ char *parent = fs_dirname(full);
		if (fs_mkdir_p(parent, 0755) < 0 || fs_write_file_atomic(full, files[i].data, files[i].len, 0644) < 0 ||
		    media_set_time(full, t) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *full = xasprintf("%s/%s", dir, files[i].path);
		for (char *s = strrchr(full, '/'); s && s > full + strlen(dir); s = strrchr(full, '/')) {
			*s = 0;
			if (media_set_time(full, t) < 0)
				return -1;
		}
	}
	return media_set_time(dir, t);
}

static void media_rm_rfp(char **dir)
{
	if (*dir) {
		fs_rm_rf(*dir);
		free(*dir);
	}
}

static int media_build_udf(const char *label, const struct media_file *files, size_t n, const char *tmpdir,
			   const char *out, time_t t)
{
	_cleanup_free_ char *tmpl = xasprintf("%s/udf-stage-XXXXXX", tmpdir);
	if (!mkdtemp(tmpl))
		return err_errno(errno, "making a staging folder in '%s'", tmpdir);
	_cleanup_(media_rm_rfp) char *stage = TAKE_PTR(tmpl);
	if (media_stage(stage, files, n, t) < 0)
		return -1;
	/* -r: Rock Ridge with uid/gid 0 and sane modes, so the builder's
	 * account does not leak; -input-charset: names do not depend on the locale */
	const char *const argv[] = { "genisoimage", "-quiet", "-udf", "-J", "-r", "-input-charset", "utf-8",
				     "-V", label, "-o", out, stage, NULL };
	return proc_run(argv, NULL, NULL);
}

int media_write_udf(const char *label, const struct media_file *files, size_t n_files, const char *tmpdir,
		    const char *path)
{
	time_t t = 0;
	_cleanup_free_ char *raw = xasprintf("%s.genisoimage-%d", path, (int)getpid());
	struct media_image img = { 0 };
	int r = media_check_label(label);
	if (r == 0)
		r = media_epoch(&t);
	if (r == 0)
		r = media_build_udf(label, files, n_files, tmpdir, raw, t);
	char *bytes = NULL;
	if (r == 0 && (r = fs_read_file(raw, &bytes, &img.len)) == 0)
		img.data = (unsigned char *)bytes;
	unlink(raw);
	if (r == 0 && img.len < 17 * MEDIA_SECTOR)
		r = err_fail("building image: genisoimage produced only %zu bytes", img.len);
	if (r == 0) {
		struct tm tm;
		gmtime_r(&t, &tm);
		media_fix_iso(&img, &tm);
		media_fix_udf(&img, t, &tm);
		r = fs_write_file_atomic(path, img.data, img.len, 0644);
	}
	free(img.data);
	if (r < 0)
		err_prefix("writing image '%s'", path);
	return r;
}
