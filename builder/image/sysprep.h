/* Whether an image was generalized before it shipped: no machine identity,
 * keys, caches, logs, first-boot state or password that every instance
 * made from it would share. A pure judgement over files and directory
 * listings read from the image (image_read_auto_dirs with sysprep_paths
 * and sysprep_dirs); `qvsa inspect` prints it. */
#ifndef QVSA_SYSPREP_H
#define QVSA_SYSPREP_H

#include "image.h"

#include <stddef.h>

/* The files the checks read, NULL-terminated: the caller reads them in this
 * order and hands their contents to sysprep_judge in the same order. */
extern const char *const sysprep_paths[];
/* The directories the checks list (recursively), NULL-terminated, in the
 * order sysprep_judge takes their listings. */
extern const char *const sysprep_dirs[];

/* What one check found. */
enum sysprep_status {
	SYSPREP_OK,   /* the image holds nothing of what the check looks for */
	SYSPREP_FAIL, /* it does: every instance would share it */
	SYSPREP_NA,   /* what the check is about is absent from the image (e.g. no apt) */
};

/* One check's verdict. */
struct sysprep_result {
	const char *name;           /* the check, e.g. "machine-id"; static */
	enum sysprep_status status; /* its verdict */
	char detail[192];           /* one line saying why (never a file's secret content) */
};

/* The number of checks sysprep_judge fills. */
#define SYSPREP_N_CHECKS 8

/* Judge what was read: files[i] the content of sysprep_paths[i] (NULL if
 * absent), lens[i] its length; lists[i] the listing of sysprep_dirs[i].
 * Fills ret[0..SYSPREP_N_CHECKS) in a fixed order. */
void sysprep_judge(char *const *files, const size_t *lens, const struct image_listing *lists,
		   struct sysprep_result ret[SYSPREP_N_CHECKS]) __attribute__((nonnull));

/* "ok", "FAIL" or "n/a". */
const char *sysprep_status_name(enum sysprep_status s);

#endif
