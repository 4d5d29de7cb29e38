/* The write stage of a build (build.c's helpers): each artifact of a disk
 * group from temp name to checked, hashed, renamed file, the streamed
 * writers in one pass over the disk, and the release manifest. */
#ifndef QVSA_BUILD_WRITE_H
#define QVSA_BUILD_WRITE_H

#include "build.h"
#include "stamp.h"
#include "target.h"
#include "writer.h"

#include <stdbool.h>
#include <stdint.h>

struct recipe;

/* One artifact of a group being written: its identity and its writer's options. */
struct pending {
	const struct writer_ops *w;      /* its writer */
	const struct target *t;          /* its target */
	const struct target_artifact *ta; /* its options: ta_in, or copy with command-line overrides */
	struct target_artifact copy;     /* ta_in with overrides applied, when ta points here */
	struct target_option opts[16];   /* copy's options */
	uint64_t size;                   /* its virtual size (the target's alignment applied) */
	struct build_artifact *a;        /* its slot in the build result */
	char *tmp;                       /* its file in the private folder, until published (owned) */
	const struct writer_patch *patches; /* its layer over the group's disk (the group's); NULL if none */
	size_t n_patches;                /* entries in patches */
};

/* Fill p and *a for one of a target's artifacts (command-line writer option overrides applied). */
void pending_init(const struct recipe *r, const struct build_opts *o, const struct stamp *st,
		  const struct target *t, const struct target_artifact *ta_in, uint64_t size,
		  const char *outdir, const char *stage, struct build_artifact *a, struct pending *p);
/* The writer's input for p. */
struct writer_input pending_input(const struct recipe *r, const struct stamp *st, const char *raw,
				  const char *workdir, const struct pending *p);
/* Whether p's writer takes it as a sink of the group's one reader. */
bool pending_streams(const struct pending *p);
/* Check and hash a written artifact (rc: the write's result); removed on failure. */
int pending_finish(struct pending *p, int rc);
/* Every streamed artifact of ps in one pass over the disk raw. */
int write_streamed(const struct recipe *r, const struct stamp *st, const char *raw, const char *workdir,
		   struct pending *ps, size_t n);
/* Every other artifact of ps (writers that read the raw file whole), each
 * from raw grown to its size, or from a patched copy of raw in workdir when
 * it has patches. */
int write_whole(const struct recipe *r, const struct stamp *st, const char *raw, const char *workdir,
		struct pending *ps, size_t n);
/* manifest.json (signed: manifest.json.sig when o->sign_key) and
 * SHA256SUMS of a finished build, into the private folder stage. */
struct base_state;
int build_write_manifest(const struct recipe *r, const struct build_opts *o, const struct stamp *st,
			 const struct base_state *bs, const char *stage, struct build_result *res);

#endif
