#include "image.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "guestfs_util.h"

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

/* The partition (or whole device) that holds /etc/qvsa-release; mounts it at /. */
static int mount_root(guestfs_h *g, const char *disk)
{
	_cleanup_strv_ char **fss = guestfs_list_filesystems(g);
	if (!fss)
		return gfs_fail(g, disk);
	for (size_t i = 0; fss[i]; i += 2) {
		if (strcmp(fss[i + 1], "ext4") != 0 && strcmp(fss[i + 1], "ext3") != 0 &&
		    strcmp(fss[i + 1], "ext2") != 0 && strcmp(fss[i + 1], "xfs") != 0)
			continue;
		if (guestfs_mount_ro(g, fss[i], "/") < 0)
			continue;
		if (guestfs_is_file(g, "/etc/qvsa-release") > 0)
			return 0;
		guestfs_umount_all(g);
	}
	return err_input("image '%s': no filesystem holding /etc/qvsa-release (not a qvsa image?)", disk);
}

int image_read_files(const char *disk, const char *format, const char *const *paths, char ***ret_contents)
{
	return image_read_files_len(disk, format, paths, ret_contents, NULL);
}

int image_read_files_len(const char *disk, const char *format, const char *const *paths, char ***ret_contents,
			 size_t **ret_lens)
{
	_cleanup_(gfs_close) guestfs_h *g = gfs_open(disk);
	if (!g)
		return -1;
	if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, format ? GUESTFS_ADD_DRIVE_OPTS_FORMAT : -1,
				   format, -1) < 0)
		return gfs_fail(g, disk);
	if (guestfs_launch(g) < 0)
		return gfs_fail(g, disk);
	if (mount_root(g, disk) < 0)
		return -1;
	size_t n = 0;
	while (paths[n])
		n++;
	char **out = calloc(n + 1, sizeof(*out));
	size_t *lens = calloc(n + 1, sizeof(*lens));
	if (!out || !lens) {
		free(out);
		free(lens);
		return err_errno(ENOMEM, "reading '%s'", disk);
	}
	for (size_t i = 0; i < n; i++) {
		if (guestfs_is_file(g, paths[i]) <= 0)
			continue;
		size_t len;
		char *buf = guestfs_read_file(g, paths[i], &len);
		if (!buf) {
			for (size_t j = 0; j < i; j++)
				free(out[j]);
			free(out);
			free(lens);
			return gfs_fail(g, disk);
		}
		/* Keep binary content whole (and NUL-terminated for text users). */
		out[i] = malloc(len + 1);
		if (!out[i])
			abort();
		memcpy(out[i], buf, len);
		out[i][len] = 0;
		lens[i] = len;
		free(buf);
	}
	*ret_contents = out;
	if (ret_lens)
		*ret_lens = lens;
	else
		free(lens);
	return 0;
}
