/* The out dir of one build: locked against a concurrent build, cleared of
 * what killed runs left, and a private folder in which the new release set
 * is written whole before it replaces OUT/qVSA-X.Y in one rename.
 *
 * Rules (docs/design.md, "Publishing a release"):
 * - OUT/.qvsa.lock (flock, holding the owner's pid) is held from before any
 *   work to the end; a second build into OUT fails at once naming the pid.
 * - Everything is written under OUT/.qvsa-tmp-XXXXXX (mkdtemp, 0700).
 * - The version folder is qvsa's: a build replaces it with exactly the set
 *   it publishes, by exchanging the two folders (renameat2 RENAME_EXCHANGE;
 *   where the filesystem lacks it, two renames with an instant of no
 *   folder). A reader sees the old set or the new set, never a mix.
 * - The set published is what this build wrote, plus the artifacts of the
 *   old set that the same build (same build id, same version) published
 *   before and that still hash to their manifest entry (a --target build
 *   into a full set keeps the others); anything else in the old folder goes. */
#ifndef QVSA_BUILD_OUT_H
#define QVSA_BUILD_OUT_H

#include "build.h"

struct build_out;

/* Make out_dir if needed, lock it, remove stale litter (one notice line
 * saying what), and make the private folder. ERR_INPUT when out_dir cannot
 * be written; ERR_FAIL when another build holds it. */
int build_out_open(const char *out_dir, const char *version, struct build_out **ret) __attribute__((nonnull));
/* The private folder files are written in. */
const char *build_out_stage(const struct build_out *b) __attribute__((nonnull));
/* Add to res the artifacts of the published set that this build did not
 * rebuild and may keep (see above), hard-linked (or copied) into the stage,
 * in the old manifest's order with res's own artifacts at their places. */
int build_out_carry(struct build_out *b, struct build_result *res) __attribute__((nonnull));
/* Replace OUT/VERSION by the stage. */
int build_out_publish(struct build_out *b) __attribute__((nonnull));
/* Remove the stage if unpublished, unlock. Accepts NULL. */
void build_out_free(struct build_out *b);

/* Test hook (QVSA_TEST_PAUSE_AT=phase, tests/integration/interrupt.sh):
 * at phase ("prepare", "assemble", "write", "publish") print "test hook:
 * paused at PHASE" on stderr and wait up to 60 s for a signal. */
void build_test_pause(const char *phase) __attribute__((nonnull));

#endif
