#include "image.h"
#include "image_private.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "guestfs_util.h"

#include <stdint.h>
#include <string.h>

static bool force_tcg;

void image_set_force_tcg(bool on) { force_tcg = on; }
bool image_force_tcg(void) { return force_tcg; }

int gfs_fail(guestfs_h *g, const char *what)
{
	const char *m = guestfs_last_error(g);
	return err_fail("%s: libguestfs: %s", what, m ? m : "unknown error");
}

guestfs_h *gfs_open(const char *what)
{
	guestfs_h *g = guestfs_create();
	if (!g) {
		err_fail("%s: libguestfs: cannot create handle", what);
		return NULL;
	}
	/* Errors reach the user once, through our error path. */
	guestfs_set_error_handler(g, NULL, NULL);
	if (force_tcg) {
		char *settings[] = {(char *)"force_tcg", NULL};
		guestfs_set_backend_settings(g, settings);
	}
	return g;
}

void gfs_close(guestfs_h **g)
{
	if (*g) {
		guestfs_shutdown(*g);
		guestfs_close(*g);
		*g = NULL;
	}
}

/* Filesystem types a qvsa root can have. */
static bool root_fs_type(const char *type)
{
	return strcmp(type, "ext4") == 0 || strcmp(type, "ext3") == 0 || strcmp(type, "ext2") == 0 ||
	       strcmp(type, "xfs") == 0;
}

bool image_fs_on_device(const char *fs, const char *dev)
{
	size_t dl = strlen(dev);
	if (strncmp(fs, dev, dl) != 0)
		return false;
	const char *p = fs + dl;
	if (*p == 0)
		return true; /* a filesystem on the whole device */
	/* A device name ending in a digit separates its partitions with 'p' ("/dev/nvme0n1p1"). */
	if (dl > 0 && '0' <= dev[dl - 1] && dev[dl - 1] <= '9' && *p++ != 'p')
		return false;
	if (*p == 0)
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* Mount fs at / if it is a root filesystem holding /etc/qvsa-release. */
static bool try_root(guestfs_h *g, const char *fs)
{
	_cleanup_free_ char *type = guestfs_vfs_type(g, fs); /* "" when blkid knows no filesystem there */
	if (!type || !root_fs_type(type) || guestfs_mount_ro(g, fs, "/") < 0)
		return false;
	if (guestfs_is_file(g, "/etc/qvsa-release") > 0)
		return true;
	guestfs_umount_all(g);
	return false;
}

/* Mount at / the filesystem on dev (one of the appliance's devices) that
 * holds /etc/qvsa-release: one of its partitions (parts: every device's, from
 * guestfs_list_partitions), or the whole device when it has none. Not
 * guestfs_list_filesystems: under TCG it spends ~4 s per disk scanning for
 * LVM, md and btrfs, which qvsa images never use. */
static int mount_root(guestfs_h *g, char *const *parts, const char *dev, const char *what)
{
	bool partitioned = false;
	for (size_t i = 0; parts[i]; i++) {
		if (strcmp(parts[i], dev) == 0 || !image_fs_on_device(parts[i], dev))
			continue;
		partitioned = true;
		if (try_root(g, parts[i]))
			return 0;
	}
	if (!partitioned && try_root(g, dev))
		return 0;
	return err_input("image '%s': no filesystem holding /etc/qvsa-release (not a qvsa image?)", what);
}

/* Read each of paths from the mounted root into c (binary-safe, NUL added).
 * A symlink is followed as the guest would: the daemon opens the path
 * chrooted into the mounted root, so a relative target resolves against the
 * link's directory and an absolute one inside the image (image_direct.c
 * follows the first kind itself and leaves the second to this reader). */
static int read_paths(guestfs_h *g, const char *const *paths, const char *what, struct image_content *c)
{
	size_t n = 0;
	while (paths[n])
		n++;
	c->files = calloc(n + 1, sizeof(*c->files));
	c->lens = calloc(n + 1, sizeof(*c->lens));
	if (!c->files || !c->lens)
		abort();
	c->n_files = n;
	for (size_t i = 0; i < n; i++) {
		if (guestfs_is_file_opts(g, paths[i], GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) <= 0)
			continue;
		size_t len;
		char *buf = guestfs_read_file(g, paths[i], &len);
		if (!buf) {
			_cleanup_free_ char *w = xasprintf("image '%s': reading '%s'", what, paths[i]);
			return gfs_fail(g, w);
		}
		/* Keep binary content whole (and NUL-terminated for text users). */
		c->files[i] = malloc(len + 1);
		if (!c->files[i])
			abort();
		memcpy(c->files[i], buf, len);
		c->files[i][len] = 0;
		c->lens[i] = len;
		free(buf);
	}
	return 0;
}

/* Room for entries in a listing: more than any directory qvsa inspects holds. */
#define LIST_MAX_ENTRIES 200000

/* The entry type of a libguestfs dirent's ftyp ('r' regular, 'd', 'l'; 'f' is a FIFO there). */
static char dirent_type(char t)
{
	return t == 'r' ? 'f' : t == 'd' || t == 'l' ? t : '?';
}

/* List dir recursively into l: readdir per directory, breadth first (the
 * directories found are l's own 'd' entries, read in turn), lstatnslist for
 * the sizes of its regular files. No link is followed. */
static int list_dir(guestfs_h *g, const char *dir, const char *what, struct image_listing *l)
{
	_cleanup_free_ char *w = xasprintf("image '%s': listing '%s'", what, dir);
	int isdir = guestfs_is_dir(g, dir); /* no FOLLOWSYMLINKS: a link is not the directory */
	if (isdir < 0)
		return gfs_fail(g, w);
	l->exists = isdir > 0;
	if (!l->exists)
		return 0;
	/* next: the entry of l whose directory is read next; SIZE_MAX: dir itself. */
	for (size_t next = SIZE_MAX; next == SIZE_MAX || next < l->n; next++) {
		if (next != SIZE_MAX && l->entries[next].type != 'd')
			continue;
		_cleanup_free_ char *d = xstrdup(next == SIZE_MAX ? dir : l->entries[next].path);
		struct guestfs_dirent_list *ents = guestfs_readdir(g, d);
		if (!ents)
			return gfs_fail(g, w);
		_cleanup_strv_ char **names = calloc(ents->len + 1, sizeof(char *));
		_cleanup_free_ size_t *reg = calloc(ents->len + 1, sizeof(size_t)); /* l's index of each regular file */
		if (!names || !reg)
			abort();
		size_t nreg = 0;
		for (uint32_t i = 0; i < ents->len; i++) {
			const char *name = ents->val[i].name;
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				continue;
			if (l->n >= LIST_MAX_ENTRIES) {
				guestfs_free_dirent_list(ents);
				return err_fail("%s: more than %d entries", w, LIST_MAX_ENTRIES);
			}
			char type = dirent_type(ents->val[i].ftyp);
			if (type == 'f') {
				names[nreg] = xstrdup(name);
				reg[nreg++] = l->n;
			}
			_cleanup_free_ char *path = xasprintf("%s%s%s", d, strcmp(d, "/") == 0 ? "" : "/", name);
			image_listing_add(l, path, type, 0);
		}
		guestfs_free_dirent_list(ents);
		if (nreg == 0)
			continue;
		struct guestfs_statns_list *st = guestfs_lstatnslist(g, d, names);
		if (!st)
			return gfs_fail(g, w);
		for (size_t i = 0; i < nreg && i < st->len; i++)
			l->entries[reg[i]].size = st->val[i].st_size > 0 ? (uint64_t)st->val[i].st_size : 0;
		guestfs_free_statns_list(st);
	}
	image_listing_sort(l);
	return 0;
}

/* List each of dirs (NULL: none) from the mounted root into c. */
static int list_dirs(guestfs_h *g, const char *const *dirs, const char *what, struct image_content *c)
{
	size_t n = image_content_lists_new(c, dirs);
	for (size_t i = 0; i < n; i++)
		if (list_dir(g, dirs[i], what, &c->lists[i]) < 0)
			return -1;
	return 0;
}

void image_content_clear(struct image_content *c)
{
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->lens);
	for (size_t i = 0; i < c->n_lists; i++)
		image_listing_clear(&c->lists[i]);
	free(c->lists);
	c->files = NULL;
	c->lens = NULL;
	c->n_files = 0;
	c->lists = NULL;
	c->n_lists = 0;
}

/* Move the recorded error into c (the disk failed; the others go on). */
static void content_fail(struct image_content *c)
{
	image_content_clear(c);
	c->error = xstrdup(err_msg() ? err_msg() : "unknown error");
	c->error_kind = err_kind() == ERR_INPUT ? ERR_INPUT : ERR_FAIL;
	err_clear();
}

void image_contents_free(struct image_content *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++) {
		image_content_clear(&c[i]);
		free(c[i].error);
	}
	free(c);
}

int image_read_many(const struct image_disk *disks, size_t n, const char *const *paths, struct image_content **ret)
{
	return image_read_many_dirs(disks, n, paths, NULL, ret);
}

int image_read_many_dirs(const struct image_disk *disks, size_t n, const char *const *paths, const char *const *dirs,
			 struct image_content **ret)
{
	struct image_content *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		abort();
	if (n == 0) {
		*ret = out;
		return 0;
	}
	/* Errors about the appliance as a whole name the one disk, or how many. */
	_cleanup_free_ char *what = n == 1 ? xstrdup(disks[0].path) : xasprintf("%zu disk images", n);
	_cleanup_free_ size_t *dev_of = calloc(n, sizeof(*dev_of)); /* appliance device index per disk, or SIZE_MAX */
	if (!dev_of)
		abort();
	_cleanup_strv_ char **devs = NULL, **parts = NULL;
	_cleanup_(gfs_close) guestfs_h *g = gfs_open(what);
	if (!g)
		goto fail;
	size_t added = 0;
	for (size_t i = 0; i < n; i++) {
		dev_of[i] = SIZE_MAX;
		const char *fmt = disks[i].format;
		if (guestfs_add_drive_opts(g, disks[i].path, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
					   fmt ? GUESTFS_ADD_DRIVE_OPTS_FORMAT : -1, fmt, -1) < 0) {
			_cleanup_free_ char *w = xasprintf("image '%s'", disks[i].name ? disks[i].name : disks[i].path);
			gfs_fail(g, w);
			content_fail(&out[i]);
			continue;
		}
		dev_of[i] = added++;
	}
	if (added == 0) {
		*ret = out;
		return 0;
	}
	if (guestfs_launch(g) < 0) {
		gfs_fail(g, what);
		goto fail;
	}
	if (check_interrupted() < 0)
		goto fail;
	/* Devices come in the order the drives were added (/dev/sda, /dev/sdb, ...). */
	devs = guestfs_list_devices(g);
	parts = devs ? guestfs_list_partitions(g) : NULL;
	if (!devs || !parts) {
		gfs_fail(g, what);
		goto fail;
	}
	size_t ndevs = 0;
	while (devs[ndevs])
		ndevs++;
	if (ndevs != added) {
		err_fail("%s: libguestfs shows %zu devices for %zu disks", what, ndevs, added);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (dev_of[i] == SIZE_MAX)
			continue;
		if (check_interrupted() < 0)
			goto fail;
		const char *name = disks[i].name ? disks[i].name : disks[i].path;
		const char *const *p = disks[i].paths ? disks[i].paths : paths;
		if (!p)
			err_fail("image '%s': no paths to read", name);
		if (!p || mount_root(g, parts, devs[dev_of[i]], name) < 0 || read_paths(g, p, name, &out[i]) < 0 ||
		    list_dirs(g, dirs, name, &out[i]) < 0)
			content_fail(&out[i]);
		/* The next disk's root is mounted at / again. */
		if (guestfs_umount_all(g) < 0) {
			gfs_fail(g, what);
			goto fail;
		}
	}
	*ret = out;
	return 0;
fail:
	image_contents_free(out, n);
	return -1;
}

int image_read_files(const char *disk, const char *format, const char *const *paths, char ***ret_contents)
{
	struct image_disk d = {.path = disk, .format = format};
	struct image_content *c = NULL;
	if (image_read_many(&d, 1, paths, &c) < 0)
		return -1;
	if (c->error) {
		int rc = c->error_kind == ERR_INPUT ? err_input("%s", c->error) : err_fail("%s", c->error);
		image_contents_free(c, 1);
		return rc;
	}
	*ret_contents = TAKE_PTR(c->files);
	c->n_files = 0;
	image_contents_free(c, 1);
	return 0;
}
