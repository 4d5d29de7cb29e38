/* Checks of a loaded recipe against the data directory and this machine,
 * offline, so `qvsa lint` (and build, before any work) reports what the
 * builder would refuse at the line that names it. */
#ifndef QVSA_RECIPE_CHECK_H
#define QVSA_RECIPE_CHECK_H

struct recipe;

/* Every target exists under datadir/targets (with writers this qvsa has),
 * every template under datadir/templates, no files: dest is a directory of
 * a template, the kernel package is known to apt (when apt's package lists
 * are there to ask) and, when that kernel is already in cache_dir, every
 * module of base.modules is in it. cache_dir NULL skips the kernel checks.
 * Each error is ERR_INPUT "FILE:LINE:COLUMN: ..." at the entry. */
int recipe_check(const struct recipe *r, const char *datadir, const char *cache_dir);

#endif
