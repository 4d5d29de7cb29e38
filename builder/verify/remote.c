#include "remote.h"

#include "cleanup.h"
#include "domain.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"
#include "vm.h"
#include "writer.h"

#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The first libvirt whose storage streams carry holes (3.4.0). */
#define REMOTE_SPARSE_LIBVER 3004000ULL
/* Volumes one pool handle tracks (a few per boot, a dozen boots). */
#define REMOTE_MAX_VOLS 256
/* Where a missing default pool goes when the daemon has no "default" dir pool. */
#define REMOTE_FALLBACK_DIR "/var/lib/libvirt/images"

struct remote_pool {
	virConnectPtr conn;       /* borrowed from the vm_host */
	virStoragePoolPtr pool;   /* owned */
	char *name;               /* owned */
	char *path;               /* owned; the pool's directory on the libvirt host */
	bool created;             /* qvsa defined it: removed again once empty */
	bool sparse;              /* the daemon takes sparse streams */
	char *vols[REMOTE_MAX_VOLS]; /* owned names of volumes made here and not deleted yet */
	size_t n_vols;            /* entries in vols */
};

/* Record "libvirt: what: <libvirt's last message>". Returns -1. */
static int lv_fail(const char *what)
{
	const char *m = virGetLastErrorMessage();
	return err_fail("libvirt: %s: %s", what, m && *m ? m : "unknown error");
}

bool remote_uri_uses_pool(const char *uri)
{
	return strncmp(uri, "qemu:///embed", 13) != 0;
}

bool remote_uri_is_other_host(const char *uri)
{
	const char *p = strstr(uri, "://");
	if (!p)
		return false;
	p += 3;
	size_t n = strcspn(p, "/?");
	const char *at = memchr(p, '@', n); /* user@host */
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	if (n > 0 && p[0] == '[') { /* [::1]:port */
		const char *close = memchr(p, ']', n);
		n = close ? (size_t)(close + 1 - p) : n;
	} else {
		const char *colon = memchr(p, ':', n);
		if (colon)
			n = (size_t)(colon - p);
	}
	static const char *const local[] = {"", "localhost", "127.0.0.1", "[::1]"};
	for (size_t i = 0; i < ELEMENTSOF(local); i++)
		if (strlen(local[i]) == n && strncmp(p, local[i], n) == 0)
			return false;
	return true;
}

/* The text of <tag>...</tag> after the first <after> in xml (libvirt's own
 * output: no attributes on these elements); NULL if absent or escaped. */
static char *xml_text_after(const char *xml, const char *after, const char *tag)
{
	const char *a = strstr(xml, after);
	_cleanup_free_ char *open = xasprintf("<%s>", tag), *close = xasprintf("</%s>", tag);
	const char *s = a ? strstr(a, open) : NULL;
	if (!s)
		return NULL;
	s += strlen(open);
	const char *e = strstr(s, close);
	if (!e || memchr(s, '&', (size_t)(e - s)) || memchr(s, '<', (size_t)(e - s)))
		return NULL;
	return strndup(s, (size_t)(e - s));
}

/* The directory of pool p from its XML. */
static char *pool_dir(virStoragePoolPtr p)
{
	_cleanup_free_ char *xml = virStoragePoolGetXMLDesc(p, 0);
	return xml ? xml_text_after(xml, "<target>", "path") : NULL;
}

/* Where a pool qvsa defines lives: beside the daemon's "default" pool, so
 * the daemon's own choice of place (and its SELinux labels) holds. */
static char *default_pool_dir(virConnectPtr conn)
{
	virStoragePoolPtr def = virStoragePoolLookupByName(conn, "default");
	char *dir = def ? pool_dir(def) : NULL;
	if (def)
		virStoragePoolFree(def);
	virResetLastError();
	char *out = xasprintf("%s/" REMOTE_POOL_DEFAULT, dir ? dir : REMOTE_FALLBACK_DIR);
	free(dir);
	return out;
}

/* Define, build and start the default pool. Another qvsa may do the same
 * at once: then its pool is used. */
static int pool_define(struct remote_pool *rp)
{
	_cleanup_free_ char *dir = default_pool_dir(rp->conn);
	_cleanup_free_ char *edir = domain_xml_escape(dir);
	_cleanup_free_ char *xml = xasprintf("<pool type='dir'><name>%s</name><target><path>%s</path>"
					     "<permissions><mode>0711</mode></permissions></target></pool>",
					     rp->name, edir);
	rp->pool = virStoragePoolDefineXML(rp->conn, xml, 0);
	if (!rp->pool) {
		rp->pool = virStoragePoolLookupByName(rp->conn, rp->name);
		if (!rp->pool)
			return lv_fail("defining storage pool '" REMOTE_POOL_DEFAULT "'");
		return 0;
	}
	rp->created = true;
	log_debug("verify: defined storage pool '%s' at '%s'", rp->name, dir);
	if (virStoragePoolBuild(rp->pool, 0) < 0) {
		_cleanup_free_ char *what = xasprintf("building storage pool '%s' at '%s'", rp->name, dir);
		return lv_fail(what);
	}
	return 0;
}

/* Volumes of verify runs whose process is gone (a crash, a SIGKILL): they
 * would fill the pool. */
static void delete_stale(struct remote_pool *rp)
{
	virStorageVolPtr *vols = NULL;
	int n = virStoragePoolListAllVolumes(rp->pool, &vols, 0);
	for (int i = 0; i < n; i++) {
		const char *name = virStorageVolGetName(vols[i]);
		if (name && vm_stale_name(name, false)) {
			log_debug("verify: removing stale volume '%s'", name);
			virStorageVolDelete(vols[i], 0);
		}
		virStorageVolFree(vols[i]);
	}
	free(vols);
	virResetLastError();
}

int remote_pool_open(struct vm_host *h, const char *name, struct remote_pool **ret)
{
	struct remote_pool *rp = calloc(1, sizeof(*rp));
	if (!rp)
		abort();
	rp->conn = vm_host_conn(h);
	rp->name = xstrdup(name ? name : REMOTE_POOL_DEFAULT);
	unsigned long ver = 0;
	rp->sparse = virConnectGetLibVersion(rp->conn, &ver) == 0 && ver >= REMOTE_SPARSE_LIBVER;
	rp->pool = virStoragePoolLookupByName(rp->conn, rp->name);
	if (!rp->pool) {
		virErrorPtr e = virGetLastError();
		if (name || !e || e->code != VIR_ERR_NO_STORAGE_POOL) {
			_cleanup_free_ char *what = xasprintf("storage pool '%s' (--pool names an existing pool)", rp->name);
			lv_fail(what);
			goto fail;
		}
		if (pool_define(rp) < 0)
			goto fail;
	}
	if (virStoragePoolIsActive(rp->pool) != 1 && virStoragePoolCreate(rp->pool, 0) < 0) {
		_cleanup_free_ char *what = xasprintf("starting storage pool '%s'", rp->name);
		lv_fail(what);
		goto fail;
	}
	rp->path = pool_dir(rp->pool);
	if (!rp->path) {
		err_fail("libvirt: storage pool '%s' has no directory (a dir or fs pool is needed)", rp->name);
		goto fail;
	}
	delete_stale(rp);
	*ret = rp;
	return 0;
fail:
	remote_pool_close(rp);
	return -1;
}

const char *remote_pool_path(const struct remote_pool *p) { return p->path; }
const char *remote_pool_name(const struct remote_pool *p) { return p->name; }

static int pool_refresh(virStoragePoolPtr pool) { return virStoragePoolRefresh(pool, 0); }

/* libvirt refuses some pool operations while an upload's refresh runs: retry for a while. */
static int retry_pool(int (*op)(virStoragePoolPtr), virStoragePoolPtr pool)
{
	for (int i = 0; i < 50; i++) {
		if (op(pool) == 0)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL);
	}
	return -1;
}

void remote_pool_close(struct remote_pool *rp)
{
	if (!rp)
		return;
	while (rp->n_vols > 0)
		remote_delete(rp, rp->vols[rp->n_vols - 1]);
	if (rp->pool && rp->created) {
		/* Another verify may use it meanwhile: remove it only when empty. */
		int n = retry_pool(pool_refresh, rp->pool) == 0 ? virStoragePoolNumOfVolumes(rp->pool) : -1;
		if (n == 0) {
			if (retry_pool(virStoragePoolDestroy, rp->pool) == 0)
				virStoragePoolDelete(rp->pool, 0);
			virStoragePoolUndefine(rp->pool);
		} else {
			log_debug("verify: storage pool '%s' kept (%d volumes of other runs)", rp->name, n);
		}
	}
	if (rp->pool)
		virStoragePoolFree(rp->pool);
	virResetLastError();
	free(rp->name);
	free(rp->path);
	free(rp);
}

static void track(struct remote_pool *rp, const char *vol)
{
	if (rp->n_vols < REMOTE_MAX_VOLS)
		rp->vols[rp->n_vols++] = xstrdup(vol);
}

static void untrack(struct remote_pool *rp, const char *vol)
{
	for (size_t i = 0; i < rp->n_vols; i++)
		if (strcmp(rp->vols[i], vol) == 0) {
			free(rp->vols[i]);
			rp->vols[i] = rp->vols[--rp->n_vols];
			return;
		}
}

void remote_delete(struct remote_pool *rp, const char *vol)
{
	_cleanup_free_ char *name = xstrdup(vol); /* vol may be rp's own copy */
	untrack(rp, name);
	virStorageVolPtr v = virStorageVolLookupByName(rp->pool, name);
	if (!v && retry_pool(pool_refresh, rp->pool) == 0) /* made by the daemon itself (nvram) */
		v = virStorageVolLookupByName(rp->pool, name);
	if (v) {
		for (int i = 0; i < 50 && virStorageVolDelete(v, 0) < 0; i++)
			nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL);
		virStorageVolFree(v);
	}
	virResetLastError();
}

/* Create volume vol from xml, tracked for deletion; its path in *ret_path. */
static virStorageVolPtr vol_create(struct remote_pool *rp, const char *vol, const char *xml, char **ret_path)
{
	virStorageVolPtr v = virStorageVolCreateXML(rp->pool, xml, 0);
	if (!v) {
		_cleanup_free_ char *what = xasprintf("creating volume '%s' in pool '%s'", vol, rp->name);
		lv_fail(what);
		return NULL;
	}
	track(rp, vol);
	char *p = virStorageVolGetPath(v);
	if (!p) {
		_cleanup_free_ char *what = xasprintf("volume '%s'", vol);
		lv_fail(what);
		virStorageVolFree(v);
		return NULL;
	}
	*ret_path = p;
	return v;
}

/* A local file read by a stream: fd, position, size. */
struct src {
	int fd;     /* borrowed */
	off_t size; /* the file's size */
};

static int src_read(virStreamPtr st, char *data, size_t n, void *opaque)
{
	(void)st;
	struct src *s = opaque;
	if (qvsa_interrupted) /* a big disk takes a while: Ctrl-C aborts the upload */
		return -1;
	ssize_t r;
	do
		r = read(s->fd, data, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : (int)r;
}

/* Whether the position is in data or a hole, and how long that lasts
 * (SEEK_DATA/SEEK_HOLE; at the end: a hole of length 0). */
static int src_hole(virStreamPtr st, int *in_data, long long *len, void *opaque)
{
	(void)st;
	struct src *s = opaque;
	off_t cur = lseek(s->fd, 0, SEEK_CUR);
	if (cur < 0)
		return -1;
	if (cur >= s->size) {
		*in_data = 0;
		*len = 0;
		return 0;
	}
	off_t data = lseek(s->fd, cur, SEEK_DATA);
	if (data < 0 && errno != ENXIO)
		return -1;
	if (data < 0 || data > cur) { /* ENXIO: a hole up to the end */
		*in_data = 0;
		*len = (data < 0 ? s->size : data) - cur;
	} else {
		off_t hole = lseek(s->fd, cur, SEEK_HOLE);
		if (hole < 0)
			return -1;
		*in_data = 1;
		*len = hole - cur;
	}
	return lseek(s->fd, cur, SEEK_SET) < 0 ? -1 : 0;
}

static int src_skip(virStreamPtr st, long long len, void *opaque)
{
	(void)st;
	struct src *s = opaque;
	return lseek(s->fd, len, SEEK_CUR) < 0 ? -1 : 0;
}

int remote_upload(struct remote_pool *rp, const char *vol, const char *path, char **ret_path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(errno, "uploading '%s'", path);
	_cleanup_free_ char *xml = xasprintf("<volume><name>%s</name><capacity unit='bytes'>%lld</capacity>"
					     "<allocation unit='bytes'>0</allocation>"
					     "<target><format type='raw'/></target></volume>",
					     vol, (long long)st.st_size);
	_cleanup_free_ char *rpath = NULL;
	virStorageVolPtr v = vol_create(rp, vol, xml, &rpath);
	if (!v)
		return -1;
	double t = now_monotonic();
	struct src s = {.fd = fd, .size = st.st_size};
	virStreamPtr stream = virStreamNew(rp->conn, 0);
	int rc = -1;
	if (stream &&
	    virStorageVolUpload(v, stream, 0, 0, rp->sparse ? VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM : 0) == 0) {
		int sent = rp->sparse ? virStreamSparseSendAll(stream, src_read, src_hole, src_skip, &s)
				      : virStreamSendAll(stream, src_read, &s);
		if (sent == 0 && virStreamFinish(stream) == 0)
			rc = 0;
	}
	if (rc < 0) {
		_cleanup_free_ char *what = xasprintf("uploading '%s' to volume '%s'", path, vol);
		lv_fail(what);
	} else {
		log_debug("verify: uploaded '%s' (%lld bytes%s) to '%s' in %.2fs", path, (long long)st.st_size,
			  rp->sparse ? ", sparse" : "", rpath, now_monotonic() - t);
		*ret_path = TAKE_PTR(rpath);
	}
	if (stream)
		virStreamFree(stream);
	virStorageVolFree(v);
	return rc;
}

int remote_overlay(struct remote_pool *rp, const char *vol, const char *backing, const char *backing_format,
		   uint64_t capacity, char **ret_path)
{
	_cleanup_free_ char *eb = domain_xml_escape(backing);
	_cleanup_free_ char *xml = xasprintf("<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
					     "<target><format type='qcow2'/></target>"
					     "<backingStore><path>%s</path><format type='%s'/></backingStore></volume>",
					     vol, (unsigned long long)capacity, eb, backing_format);
	virStorageVolPtr v = vol_create(rp, vol, xml, ret_path);
	if (!v)
		return -1;
	virStorageVolFree(v);
	return 0;
}

/* A local file written by a stream. */
static int sink_write(virStreamPtr st, const char *data, size_t n, void *opaque)
{
	(void)st;
	int fd = *(int *)opaque;
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return (int)n;
}

static int sink_hole(virStreamPtr st, long long len, void *opaque)
{
	(void)st;
	return lseek(*(int *)opaque, len, SEEK_CUR) < 0 ? -1 : 0;
}

int remote_download(struct remote_pool *rp, const char *vol, const char *path)
{
	virStorageVolPtr v = virStorageVolLookupByName(rp->pool, vol);
	if (!v) {
		_cleanup_free_ char *what = xasprintf("volume '%s'", vol);
		return lv_fail(what);
	}
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		virStorageVolFree(v);
		return err_errno(errno, "writing '%s'", path);
	}
	virStreamPtr stream = virStreamNew(rp->conn, 0);
	int rc = -1;
	if (stream &&
	    virStorageVolDownload(v, stream, 0, 0, rp->sparse ? VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM : 0) == 0) {
		int got = rp->sparse ? virStreamSparseRecvAll(stream, sink_write, sink_hole, &fd)
				     : virStreamRecvAll(stream, sink_write, &fd);
		if (got == 0 && virStreamFinish(stream) == 0)
			rc = 0;
	}
	if (rc < 0) {
		_cleanup_free_ char *what = xasprintf("downloading volume '%s'", vol);
		lv_fail(what);
	}
	if (stream)
		virStreamFree(stream);
	virStorageVolFree(v);
	/* A trailing hole was only skipped: give the file its full length. */
	off_t end = lseek(fd, 0, SEEK_CUR);
	if (rc == 0 && (end < 0 || ftruncate(fd, end) < 0))
		return err_errno(errno, "writing '%s'", path);
	return rc;
}

int remote_virtual_size(const char *path, const char *fmt, uint64_t *ret)
{
	struct writer_img_info info;
	if (writer_img_info(path, fmt, &info) < 0)
		return -1;
	*ret = info.virtual_size;
	return 0;
}
