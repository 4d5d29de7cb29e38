/* cloud-init NoCloud seeds: the user-data / meta-data documents and the
 * "cidata" ISO9660 image (Rock Ridge + Joliet) written with libarchive.
 *
 * libarchive stamps the volume and the root directory with the wall clock
 * and writes local time, so after it is done we walk the image and set
 * every timestamp to one fixed UTC instant (0, or SOURCE_DATE_EPOCH): the
 * same parameters then give the same bytes on any machine, in any zone. */
#include "seed.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_SECTOR 2048
#define SEED_MAX_DEPTH 8

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

/* The one instant stamped everywhere: SOURCE_DATE_EPOCH if set, else 0. */
static int seed_epoch(time_t *ret)
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

/* The image as libarchive produces it, accumulated in memory. */
struct seed_image {
	unsigned char *data; /* owned bytes */
	size_t len;          /* bytes used */
	size_t cap;          /* bytes allocated */
};

static la_ssize_t seed_image_write(struct archive *a, void *arg, const void *buf, size_t n)
{
	struct seed_image *img = arg;
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

static void seed_archive_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void seed_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

static int seed_add_file(struct archive *a, const char *name, const char *text, time_t t)
{
	_cleanup_(seed_entry_freep) struct archive_entry *e = archive_entry_new();
	if (!e)
		return err_errno(ENOMEM, "building seed '%s'", name);
	size_t len = strlen(text);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, t, 0);
	archive_entry_set_atime(e, t, 0);
	archive_entry_set_ctime(e, t, 0);
	archive_entry_set_birthtime(e, t, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, text, len) != (la_ssize_t)len)
		return err_fail("building seed '%s': %s", name, archive_error_string(a));
	return 0;
}

static uint32_t seed_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Timestamp encodings of ECMA-119: 7-byte directory-record form (9.1.5)
 * and 17-byte volume-descriptor form (8.4.26.1); both at UTC offset 0. */
static void seed_put_time7(unsigned char *d, const struct tm *tm)
{
	const unsigned char v[7] = { (unsigned char)tm->tm_year, (unsigned char)(tm->tm_mon + 1),
				     (unsigned char)tm->tm_mday, (unsigned char)tm->tm_hour,
				     (unsigned char)tm->tm_min, (unsigned char)tm->tm_sec, 0 };
	memcpy(d, v, sizeof(v));
}

static void seed_put_time17(unsigned char *d, const struct tm *tm)
{
	char s[32] = "0000000000000000";
	strftime(s, sizeof(s), "%Y%m%d%H%M%S00", tm);
	memcpy(d, s, 16);
	d[16] = 0;
}

/* Rock Ridge TF entries in a System Use area, following CE continuations. */
static void seed_fix_susp(struct seed_image *img, size_t off, size_t len, const struct tm *tm, int depth)
{
	if (depth > SEED_MAX_DEPTH || off > img->len || len > img->len - off)
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
					seed_put_time7(t, tm);
				else
					seed_put_time17(t, tm);
				t += size;
			}
		} else if (e[0] == 'C' && e[1] == 'E' && e[2] >= 28) {
			seed_fix_susp(img, (size_t)seed_le32(e + 4) * SEED_SECTOR + seed_le32(e + 12),
				      seed_le32(e + 20), tm, depth + 1);
		}
		e += e[2];
	}
}

/* Every record of a directory extent, and the directories below it. */
static void seed_fix_dir(struct seed_image *img, uint32_t lba, uint32_t size, const struct tm *tm,
			 int depth)
{
	size_t start = (size_t)lba * SEED_SECTOR;
	if (depth > SEED_MAX_DEPTH || start > img->len || size > img->len - start)
		return;
	for (size_t off = 0; off < size;) {
		unsigned char *r = img->data + start + off;
		if (r[0] == 0) { /* records never straddle sectors: the rest is padding */
			off = (off / SEED_SECTOR + 1) * SEED_SECTOR;
			continue;
		}
		if (r[0] < 34 || off + r[0] > size)
			return;
		seed_put_time7(r + 18, tm);
		size_t name_len = r[32], su = 33 + name_len + (name_len % 2 == 0);
		if (su < r[0])
			seed_fix_susp(img, start + off + su, r[0] - su, tm, 0);
		bool dot = name_len == 1 && (r[33] == 0 || r[33] == 1);
		if ((r[25] & 2) && !dot)
			seed_fix_dir(img, seed_le32(r + 2), seed_le32(r + 10), tm, depth + 1);
		off += r[0];
	}
}

/* Set every timestamp of the image to t (see the top of the file). */
static void seed_fix_times(struct seed_image *img, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	for (size_t lba = 16; (lba + 1) * SEED_SECTOR <= img->len; lba++) {
		unsigned char *vd = img->data + lba * SEED_SECTOR;
		if (memcmp(vd + 1, "CD001", 5) != 0)
			break;
		if (vd[0] == 255) {
			/* libarchive's information block follows: "INFO <ctime>\n..." */
			unsigned char *info = vd + SEED_SECTOR;
			char when[32];
			if (info + SEED_SECTOR <= img->data + img->len &&
			    memcmp(info, "INFO ", 5) == 0 && info[5 + 24] == '\n' &&
			    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 24)
				memcpy(info + 5, when, 24);
			break;
		}
		if (vd[0] != 1 && vd[0] != 2)
			continue;
		/* creation, modification, expiration, effective; unset ones stay unset */
		static const size_t dates[] = { 813, 830, 847, 864 };
		for (size_t i = 0; i < ELEMENTSOF(dates); i++)
			if (memcmp(vd + dates[i], "0000000000000000", 16) != 0)
				seed_put_time17(vd + dates[i], &tm);
		seed_put_time7(vd + 156 + 18, &tm);
		seed_fix_dir(img, seed_le32(vd + 156 + 2), seed_le32(vd + 156 + 10), &tm, 0);
	}
}

static int seed_build_image(const struct seed_params *p, time_t t, struct seed_image *img)
{
	_cleanup_free_ char *ud = NULL, *md = NULL;
	if (seed_user_data(p, &ud) < 0 || seed_meta_data(p, &md) < 0)
		return -1;
	_cleanup_(seed_archive_freep) struct archive *a = archive_write_new();
	if (!a)
		return err_errno(ENOMEM, "building seed image");
	if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "volume-id", "cidata") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "rockridge", "1") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "joliet", "1") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, img, NULL, seed_image_write, NULL) != ARCHIVE_OK)
		return err_fail("building seed image: %s", archive_error_string(a));
	/* the order is fixed: libarchive sorts names, but we do not rely on it */
	if (seed_add_file(a, "meta-data", md, t) < 0 || seed_add_file(a, "user-data", ud, t) < 0)
		return -1;
	if (archive_write_close(a) != ARCHIVE_OK)
		return err_fail("building seed image: %s", archive_error_string(a));
	if (img->len < 17 * SEED_SECTOR)
		return err_fail("building seed image: libarchive produced only %zu bytes", img->len);
	return 0;
}

int seed_write_iso(const struct seed_params *p, const char *path)
{
	time_t t = 0;
	if (seed_epoch(&t) < 0)
		return -1;
	struct seed_image img = { 0 };
	int r = seed_build_image(p, t, &img);
	if (r == 0) {
		seed_fix_times(&img, t);
		r = fs_write_file_atomic(path, img.data, img.len, 0644);
	}
	free(img.data);
	if (r < 0)
		err_prefix("writing seed image '%s'", path);
	return r;
}
