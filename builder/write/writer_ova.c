/* VMware OVA: a POSIX ustar archive holding the OVF descriptor first, then
 * its manifest, then the files in the order of the descriptor's References
 * (here one stream-optimized VMDK, from writer_vmdk.c's stream). Written
 * as a sink of the one reader, the archive by libarchive: the
 * member order, the manifest and the descriptor are what vSphere checks on
 * import, and they must come out the same on every build. */
#include "writer.h"
#include "outfile.h"
#include "pack.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "ovf.h"
#include "stamp.h"
#include "target.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK (1u << 20)
#define OVF_MAX_BYTES (1u << 20)  /* a descriptor larger than this is refused */
#define MF_MAX_BYTES (64u << 10)  /* likewise the manifest */
#define VMDK_HEAD_BYTES (1u << 20) /* enough of the VMDK to hold its embedded descriptor */

/* Manifest digest: the option `digest` (sha256, or sha1 for older vSphere). */
struct digest {
	const char *label; /* as written in the manifest: "SHA256" */
	const EVP_MD *md;  /* OpenSSL's implementation */
};

static int digest_pick(const struct target_artifact *a, const char *what, struct digest *ret)
{
	const char *d = target_artifact_option(a, "digest");
	if (!d || strcmp(d, "sha256") == 0)
		*ret = (struct digest){"SHA256", EVP_sha256()};
	else if (strcmp(d, "sha1") == 0)
		*ret = (struct digest){"SHA1", EVP_sha1()};
	else
		return err_input("%s: option digest '%s': expected sha256 or sha1", what, d);
	return 0;
}

static void hex_of(const unsigned char *md, unsigned n, char *hex)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[2 * n] = 0;
}

static void ctx_freep(EVP_MD_CTX **c) { EVP_MD_CTX_free(*c); }
static void archive_freep(struct archive **a) { archive_free(*a); }

/* Member names: "qVSA-1.0-vmware.ovf", ".mf", "-disk1.vmdk" beside the OVA's final name. */
struct ova_names {
	char *ovf;  /* the descriptor */
	char *mf;   /* its manifest */
	char *disk; /* the VMDK */
};

static void names_init(const struct writer_input *in, struct ova_names *n)
{
	_cleanup_free_ char *base = in->name ? xstrdup(in->name)
					     : xasprintf("%s-%s.%s", in->version, target_name(in->target),
							 in->artifact->extension);
	char *dot = strrchr(base, '.');
	if (dot && dot != base)
		*dot = 0;
	n->ovf = xasprintf("%s.ovf", base);
	n->mf = xasprintf("%s.mf", base);
	n->disk = xasprintf("%s-disk1.vmdk", base);
}

static void names_clear(struct ova_names *n)
{
	free(n->ovf);
	free(n->mf);
	free(n->disk);
}

static int ova_err(struct archive *a, const char *path, const char *what)
{
	return err_fail("writing '%s': %s: %s", path, what, archive_error_string(a));
}

static int add_member(struct archive *a, const char *out, const char *name, int64_t mtime, uint64_t size)
{
	struct archive_entry *e = pack_entry_new(name, AE_IFREG, 0644, mtime, size);
	int r = archive_write_header(a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : ova_err(a, out, name);
}

static int add_data(struct archive *a, const char *out, const char *name, int64_t mtime, const char *data,
		    size_t len)
{
	if (add_member(a, out, name, mtime, len) < 0)
		return -1;
	if (archive_write_data(a, data, len) != (la_ssize_t)len)
		return ova_err(a, out, name);
	return 0;
}

/* Copy the file at path into the archive as name. */
static int add_file(struct archive *a, const char *out, const char *name, int64_t mtime, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(errno, "writing '%s': reading '%s'", out, path);
	if (add_member(a, out, name, mtime, (uint64_t)st.st_size) < 0)
		return -1;
	_cleanup_free_ char *buf = malloc(CHUNK);
	if (!buf)
		abort();
	for (;;) {
		ssize_t r = read(fd, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(errno, "writing '%s': reading '%s'", out, path);
		if (r == 0)
			return 0;
		if (archive_write_data(a, buf, (size_t)r) != r)
			return ova_err(a, out, name);
	}
}

static void buf_digest(const void *data, size_t len, const struct digest *d, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_Digest(data, len, md, &n, d->md, NULL))
		abort();
	hex_of(md, n, hex);
}

static unsigned option_uint(const struct target_artifact *a, const char *key, unsigned def, bool *bad)
{
	const char *v = target_artifact_option(a, key);
	if (!v)
		return def;
	char *e;
	unsigned long n = strtoul(v, &e, 10);
	if (!*v || *e || n == 0 || n > 1u << 20)
		*bad = true;
	return (unsigned)n;
}

/* The descriptor's parameters from the artifact's options (all but the disk file's size). */
static int ova_params(const struct writer_input *in, const char *out, const struct ova_names *nm,
		      const struct os_facts *os, struct ovf_params *ret)
{
	bool bad = false;
	const char *hw = target_artifact_option(in->artifact, "hw_version");
	const char *vendor = target_artifact_option(in->artifact, "vendor");
	const char *os_type = target_artifact_option(in->artifact, "os_type");
	const char *network = target_artifact_option(in->artifact, "network");
	/* The OS section says what the image's /etc/os-release says (stamp.c). */
	*ret = (struct ovf_params){
		.version = in->version, .vendor = vendor ? vendor : "qVSA", .disk_file = nm->disk,
		.capacity = in->size, .uefi = in->target && strcmp(target_firmware(in->target), "uefi") == 0,
		.hw_version = hw ? hw : "14", .cpus = option_uint(in->artifact, "cpus", 2, &bad),
		.memory_mib = option_uint(in->artifact, "memory_mb", 2048, &bad),
		.os_id = os->ovf_os_id, .os_type = os_type ? os_type : os->ovf_os_type,
		.os_description = os->pretty_name, .network = network ? network : "VM Network",
	};
	if (bad)
		return err_input("writing '%s': options cpus and memory_mb must be positive numbers", out);
	return 0;
}

/* libarchive hands the archive's bytes here, into the artifact's outfile (hashed as written). */
static la_ssize_t ova_out(struct archive *a, void *f, const void *buf, size_t len)
{
	if (outfile_write(f, buf, len) < 0) {
		archive_set_error(a, EIO, "%s", err_msg() ? err_msg() : "write failed");
		return -1;
	}
	return (la_ssize_t)len;
}

/* An OVA being written. Its VMDK goes to a temporary file as the grains come,
 * its manifest digest taken on the way; finish writes the archive around it
 * (the descriptor needs the VMDK's size and the manifest its digest, and
 * both precede it), copying the VMDK's bytes once. */
struct ova_sink {
	char *out;             /* the OVA (owned) */
	int64_t mtime;         /* members' mtime: the build's epoch */
	struct ova_names nm;   /* member names (owned) */
	struct os_facts os;    /* what /etc/os-release says; p points into it */
	struct ovf_params p;   /* the descriptor's parameters; points into nm and os */
	struct digest d;       /* the manifest's digest */
	char *vmdk;            /* the temporary VMDK (owned; removed on free) */
	struct vmdk_stream *v; /* it, being written (owned; NULL once finished) */
};

static void ova_free(void *p)
{
	struct ova_sink *s = p;
	if (!s)
		return;
	vmdk_stream_free(s->v);
	if (s->vmdk)
		unlink(s->vmdk);
	free(s->vmdk);
	names_clear(&s->nm);
	free(s->out);
	free(s);
}

static int ova_open_sink(const struct writer_input *in, const char *out, void **ret)
{
	struct ova_sink *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	*ret = s;
	s->out = xstrdup(out);
	s->mtime = in->epoch > 0 ? in->epoch : 0;
	names_init(in, &s->nm);
	stamp_os_facts(in->version, &s->os);
	if (digest_pick(in->artifact, "option", &s->d) < 0 || ova_params(in, out, &s->nm, &s->os, &s->p) < 0)
		return -1;
	s->vmdk = xasprintf("%s/%s.tmp-%d", in->workdir, s->nm.disk, (int)getpid());
	return vmdk_stream_open(in, s->nm.disk, s->vmdk, s->d.md, &s->v);
}

static int ova_grain(void *p, const struct writer_grain *g) { return vmdk_stream_grain(((struct ova_sink *)p)->v, g); }

static int ova_finish(void *p, char sha[65], uint64_t *ret_size)
{
	struct ova_sink *s = p;
	char vmdk_hex[2 * EVP_MAX_MD_SIZE + 1], ovf_hex[2 * EVP_MAX_MD_SIZE + 1];
	uint64_t vmdk_size = 0;
	int rc = vmdk_stream_finish(s->v, vmdk_hex, &vmdk_size);
	vmdk_stream_free(s->v);
	s->v = NULL;
	if (rc < 0)
		return -1;
	s->p.disk_file_size = vmdk_size;
	_cleanup_free_ char *ovf = ovf_write(&s->p);
	buf_digest(ovf, strlen(ovf), &s->d, ovf_hex);
	_cleanup_free_ char *mf = xasprintf("%s(%s)= %s\n%s(%s)= %s\n", s->d.label, s->nm.ovf, ovf_hex, s->d.label,
					    s->nm.disk, vmdk_hex);
	struct outfile *f = NULL;
	if (outfile_open(s->out, NULL, &f) < 0)
		return -1;
	_cleanup_(archive_freep) struct archive *a = archive_write_new();
	if (archive_write_set_format_ustar(a) != ARCHIVE_OK || archive_write_open(a, f, NULL, ova_out, NULL) != ARCHIVE_OK)
		rc = ova_err(a, s->out, "open");
	if (rc == 0 && (add_data(a, s->out, s->nm.ovf, s->mtime, ovf, strlen(ovf)) < 0 ||
			add_data(a, s->out, s->nm.mf, s->mtime, mf, strlen(mf)) < 0 ||
			add_file(a, s->out, s->nm.disk, s->mtime, s->vmdk) < 0))
		rc = -1;
	if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
		rc = ova_err(a, s->out, "close");
	if (rc == 0)
		rc = outfile_finish(f, sha, ret_size);
	outfile_free(f);
	return rc;
}

static const struct writer_sink_ops ova_sink_ops = {
	.deflate = true, .open = ova_open_sink, .grain = ova_grain, .finish = ova_finish, .free = ova_free,
};

extern const struct writer_ops writer_ova_ops;
static int ova_write(const struct writer_input *in, const char *out)
{
	return writer_stream_one(&writer_ova_ops, in, out);
}

/* ---- reading an OVA back ---- */

/* One manifest line: ALG(name)= hex. */
struct mf_line {
	char alg[16];   /* "SHA256" or "SHA1" */
	char name[256]; /* member name */
	char hex[129];  /* digest */
	bool seen;      /* matched against a member */
};

static int mf_parse(const char *artifact, const char *text, struct mf_line *lines, size_t max, size_t *ret_n)
{
	size_t n = 0;
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (len > 0) {
			if (n == max)
				return err_fail("artifact '%s': manifest has more than %zu lines", artifact, max);
			_cleanup_free_ char *line = strndup(l, len);
			struct mf_line *m = &lines[n];
			int used = 0;
			if (sscanf(line, "%15[A-Z0-9](%255[^)])= %128[0-9a-f]%n", m->alg, m->name, m->hex, &used) != 3 ||
			    (size_t)used != len)
				return err_fail("artifact '%s': manifest line %zu is not 'ALG(name)= hex'", artifact, n + 1);
			n++;
		}
		l += len + (nl ? 1 : 0);
	}
	*ret_n = n;
	return 0;
}

static int mf_match(const char *artifact, struct mf_line *lines, size_t n, const char *name, const char *hex)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(lines[i].name, name) == 0) {
			if (strcmp(lines[i].hex, hex) != 0)
				return err_fail("artifact '%s': manifest digest of '%s' is %s, the member's is %s", artifact,
						name, lines[i].hex, hex);
			lines[i].seen = true;
			return 0;
		}
	return err_fail("artifact '%s': manifest has no line for '%s'", artifact, name);
}

/* Read the current member whole (at most max bytes), NUL-terminated. */
static int read_small(struct archive *r, const char *artifact, const char *name, size_t max, char **ret,
		      size_t *ret_len)
{
	char *buf = malloc(max + 1);
	if (!buf)
		abort();
	size_t len = 0;
	la_ssize_t n;
	while ((n = archive_read_data(r, buf + len, max + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return err_fail("artifact '%s': member '%s' is larger than %zu bytes", artifact, name, max);
		}
	}
	if (n < 0) {
		free(buf);
		return err_fail("artifact '%s': reading '%s': %s", artifact, name, archive_error_string(r));
	}
	buf[len] = 0;
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* Digest the current member's data; keep its first head_max bytes in head (may be NULL). */
static int member_digest(struct archive *r, const char *artifact, const char *name, const struct digest *d,
			 char *hex, uint8_t *head, size_t head_max, size_t *ret_head_len)
{
	_cleanup_(ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	_cleanup_free_ char *buf = malloc(CHUNK);
	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, d->md, NULL))
		abort();
	size_t hl = 0;
	la_ssize_t n;
	while ((n = archive_read_data(r, buf, CHUNK)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		size_t take = head && hl < head_max ? head_max - hl : 0;
		if (take > (size_t)n)
			take = (size_t)n;
		if (take)
			memcpy(head + hl, buf, take);
		hl += take;
	}
	if (n < 0)
		return err_fail("artifact '%s': reading '%s': %s", artifact, name, archive_error_string(r));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdn = 0;
	EVP_DigestFinal_ex(ctx, md, &mdn);
	hex_of(md, mdn, hex);
	if (ret_head_len)
		*ret_head_len = hl;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a > b && strcmp(s + a - b, suffix) == 0;
}

/* State of one pass over an OVA's members. */
struct ova_scan {
	const char *artifact;          /* the OVA, for messages */
	struct digest d;               /* digest the manifest must use */
	uint64_t expect_size;          /* expected virtual disk size */
	char *ovf_name;                /* first member's name */
	char *ovf;                     /* its text */
	size_t ovf_len;                /* its length */
	struct ovf_info info;          /* what the descriptor says */
	struct mf_line lines[OVF_MAX_FILES + 1]; /* the manifest */
	size_t n_lines;                /* entries in lines */
	size_t n_members;              /* members checked so far */
	bool disk_seen;                /* the Disk's file was found and checked */
};

static void scan_clear(struct ova_scan *s)
{
	free(s->ovf_name);
	free(s->ovf);
	ovf_info_clear(&s->info);
}

static int scan_descriptor(struct ova_scan *s, struct archive *r, const char *name)
{
	if (!ends_with(name, ".ovf"))
		return err_fail("artifact '%s': first member is '%s', expected the OVF descriptor (*.ovf)", s->artifact,
				name);
	s->ovf_name = xstrdup(name);
	if (read_small(r, s->artifact, name, OVF_MAX_BYTES, &s->ovf, &s->ovf_len) < 0)
		return -1;
	return ovf_read(s->ovf, s->ovf_len, name, &s->info);
}

static int scan_manifest(struct ova_scan *s, struct archive *r, const char *name)
{
	_cleanup_free_ char *want = xasprintf("%.*s.mf", (int)(strlen(s->ovf_name) - 4), s->ovf_name);
	if (strcmp(name, want) != 0)
		return err_fail("artifact '%s': second member is '%s', expected the manifest '%s'", s->artifact, name,
				want);
	_cleanup_free_ char *mf = NULL;
	size_t len = 0;
	if (read_small(r, s->artifact, name, MF_MAX_BYTES, &mf, &len) < 0 ||
	    mf_parse(s->artifact, mf, s->lines, ELEMENTSOF(s->lines), &s->n_lines) < 0)
		return -1;
	for (size_t i = 0; i < s->n_lines; i++)
		if (strcmp(s->lines[i].alg, s->d.label) != 0)
			return err_fail("artifact '%s': manifest line for '%s' uses %s, expected %s", s->artifact,
					s->lines[i].name, s->lines[i].alg, s->d.label);
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	buf_digest(s->ovf, s->ovf_len, &s->d, hex);
	return mf_match(s->artifact, s->lines, s->n_lines, s->ovf_name, hex);
}

static int scan_file(struct ova_scan *s, struct archive *r, struct archive_entry *e, const char *name)
{
	size_t k = s->n_members - 2;
	if (k >= s->info.n_files)
		return err_fail("artifact '%s': member '%s' is not in the OVF References", s->artifact, name);
	const struct ovf_file *f = &s->info.files[k];
	if (strcmp(name, f->href) != 0)
		return err_fail("artifact '%s': member %zu is '%s', but the OVF References list '%s' there", s->artifact,
				s->n_members + 1, name, f->href);
	if ((uint64_t)archive_entry_size(e) != f->size)
		return err_fail("artifact '%s': '%s' is %" PRId64 " bytes, its OVF File ovf:size says %" PRIu64,
				s->artifact, name, (int64_t)archive_entry_size(e), f->size);
	bool is_disk = strcmp(f->id, s->info.disk_file_ref) == 0;
	_cleanup_free_ uint8_t *head = is_disk ? malloc(VMDK_HEAD_BYTES) : NULL;
	size_t head_len = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	if (member_digest(r, s->artifact, name, &s->d, hex, head, is_disk ? VMDK_HEAD_BYTES : 0, &head_len) < 0 ||
	    mf_match(s->artifact, s->lines, s->n_lines, name, hex) < 0)
		return -1;
	if (is_disk) {
		_cleanup_free_ char *what = xasprintf("artifact '%s': member '%s'", s->artifact, name);
		if (writer_vmdk_check_head(head, head_len, s->expect_size, what) < 0)
			return -1;
		s->disk_seen = true;
	}
	return 0;
}

/* The rules that need the whole OVA seen. */
static int scan_finish(struct ova_scan *s)
{
	const char *a = s->artifact;
	const struct ovf_info *i = &s->info;
	if (s->n_members < 2)
		return err_fail("artifact '%s': holds %zu members, expected the OVF descriptor, its manifest and the disk",
				a, s->n_members);
	if (s->n_members - 2 != i->n_files)
		return err_fail("artifact '%s': OVF References list %zu files, the OVA holds %zu", a, i->n_files,
				s->n_members - 2);
	for (size_t k = 0; k < s->n_lines; k++)
		if (!s->lines[k].seen)
			return err_fail("artifact '%s': manifest names '%s', which is not in the OVA", a, s->lines[k].name);
	if (!s->disk_seen)
		return err_fail("artifact '%s': the OVF Disk's file '%s' is not in the References", a, i->disk_file_ref);
	if (i->capacity != s->expect_size)
		return err_fail("artifact '%s': OVF Disk capacity %" PRIu64 " bytes, expected %" PRIu64, a, i->capacity,
				s->expect_size);
	if (!i->disk_format || !strstr(i->disk_format, "streamOptimized"))
		return err_fail("artifact '%s': OVF Disk format is not stream-optimized VMDK", a);
	const char *dash = i->full_version ? strrchr(i->full_version, '-') : NULL;
	if (!dash || !i->version || strcmp(dash + 1, i->version) != 0)
		return err_fail("artifact '%s': OVF ProductSection Version '%s' and FullVersion '%s' do not agree", a,
				i->version ? i->version : "", i->full_version ? i->full_version : "");
	if (strncmp(s->ovf_name, i->full_version, strlen(i->full_version)) != 0)
		return err_fail("artifact '%s': OVF FullVersion '%s' is not the version in its name '%s'", a,
				i->full_version, s->ovf_name);
	if (!i->has_perscode || !i->has_user_data)
		return err_fail("artifact '%s': OVF has no user-configurable property '%s'", a,
				i->has_perscode ? OVF_USER_DATA_KEY : OVF_PERSCODE_KEY);
	if (!i->iso_transport)
		return err_fail("artifact '%s': OVF VirtualHardwareSection lacks ovf:transport \"iso\" (the image reads "
				"ovf-env.xml from a CD)", a);
	struct os_facts os;
	stamp_os_facts(i->full_version, &os);
	if (i->os_id != os.ovf_os_id || !i->os_description || strcmp(i->os_description, os.pretty_name) != 0)
		return err_fail("artifact '%s': OVF OperatingSystemSection says %u '%s', the image is %u '%s'", a,
				i->os_id, i->os_description ? i->os_description : "", os.ovf_os_id, os.pretty_name);
	if (!i->has_pvscsi || !i->has_vmxnet3)
		return err_fail("artifact '%s': OVF hardware lacks a %s", a, i->has_pvscsi ? "VmxNet3 NIC" : "VirtualSCSI controller");
	return 0;
}

static int ova_open(const char *artifact, struct archive **ret)
{
	struct archive *r = archive_read_new();
	archive_read_support_format_tar(r);
	if (archive_read_open_filename(r, artifact, CHUNK) != ARCHIVE_OK) {
		err_fail("artifact '%s': %s", artifact, archive_error_string(r));
		archive_read_free(r);
		return -1;
	}
	*ret = r;
	return 0;
}

static int ova_check(const char *artifact, uint64_t expect_size, const struct target_artifact *a)
{
	_cleanup_(scan_clear) struct ova_scan s = {.artifact = artifact, .expect_size = expect_size};
	_cleanup_free_ char *what = xasprintf("artifact '%s'", artifact);
	if (digest_pick(a, what, &s.d) < 0)
		return -1;
	_cleanup_(archive_freep) struct archive *r = NULL;
	if (ova_open(artifact, &r) < 0)
		return -1;
	struct archive_entry *e;
	int rc;
	while ((rc = archive_read_next_header(r, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (archive_format(r) != ARCHIVE_FORMAT_TAR_USTAR)
			return err_fail("artifact '%s': member '%s' is not POSIX ustar (%s)", artifact, name,
					archive_format_name(r));
		if (archive_entry_filetype(e) != AE_IFREG)
			return err_fail("artifact '%s': member '%s' is not a regular file", artifact, name);
		int mrc = s.n_members == 0 ? scan_descriptor(&s, r, name)
			  : s.n_members == 1 ? scan_manifest(&s, r, name)
					     : scan_file(&s, r, e, name);
		if (mrc < 0)
			return -1;
		s.n_members++;
	}
	if (rc != ARCHIVE_EOF)
		return err_fail("artifact '%s': %s", artifact, archive_error_string(r));
	return scan_finish(&s);
}

/* Extract the VMDK the OVF's Disk refers to. */
static int ova_unpack(const char *artifact, const char *dir, char **ret_disk)
{
	_cleanup_(scan_clear) struct ova_scan s = {.artifact = artifact};
	_cleanup_(archive_freep) struct archive *r = NULL;
	if (ova_open(artifact, &r) < 0)
		return -1;
	struct archive_entry *e;
	int rc;
	const char *disk = NULL;
	while ((rc = archive_read_next_header(r, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (s.n_members++ == 0) {
			if (scan_descriptor(&s, r, name) < 0)
				return -1;
			for (size_t k = 0; k < s.info.n_files; k++)
				if (strcmp(s.info.files[k].id, s.info.disk_file_ref) == 0)
					disk = s.info.files[k].href;
			if (!disk || strchr(disk, '/') || disk[0] == '.')
				return err_fail("artifact '%s': the OVF names no disk file that can be extracted", artifact);
			continue;
		}
		if (strcmp(name, disk) != 0)
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, disk);
		_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_errno(errno, "extracting '%s' from '%s'", path, artifact);
		if (archive_read_data_into_fd(r, fd) != ARCHIVE_OK) {
			unlink(path);
			return err_fail("extracting '%s' from '%s': %s", disk, artifact, archive_error_string(r));
		}
		*ret_disk = TAKE_PTR(path);
		return 0;
	}
	if (rc != ARCHIVE_EOF)
		return err_fail("artifact '%s': %s", artifact, archive_error_string(r));
	return err_fail("artifact '%s': holds no member '%s'", artifact, disk ? disk : "(disk)");
}

const struct writer_ops writer_ova_ops = {
	.name = "ova",
	.disk_format = "vmdk",
	.write = ova_write,
	.sink = &ova_sink_ops,
	.check = ova_check,
	.unpack = ova_unpack,
};
