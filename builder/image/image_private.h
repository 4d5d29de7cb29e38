/* What the image readers (image.c, image_direct.c, image_list.c) share
 * and no one else uses. */
#ifndef QVSA_IMAGE_PRIVATE_H
#define QVSA_IMAGE_PRIVATE_H

#include "image.h"

/* Record why the direct reader declines a disk (for the debug log). Returns 1. */
int image_decline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Room in c->lists for one listing per entry of dirs (NULL or
 * NULL-terminated): their count, 0 (nothing allocated) for none. */
size_t image_content_lists_new(struct image_content *c, const char *const *dirs);

/* List dirs (NULL-terminated) on the ext file system at dev ("FILE" or
 * "FILE?offset=N") into c->lists, with scratch files in tmp: one debugfs
 * run per depth, listing every directory the previous depth found. 0, 1
 * declined (reason recorded), -1 error. */
int image_debugfs_list(const char *dev, const char *tmp, const char *const *dirs, struct image_content *c)
	__attribute__((nonnull));

#endif
