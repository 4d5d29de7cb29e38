/* Which targets share one assembled disk, and the small per-target layer
 * laid over it when each artifact is written (build.c's helpers). Targets
 * of one firmware share a disk (on GPT, all of them: one hybrid BIOS + UEFI
 * disk); their initramfs holds the union of their modules, and the only
 * bytes that differ between them, the cloud-init datasource list, sit in a
 * file of fixed size whose data block each artifact patches. */
#ifndef QVSA_BUILD_LAYER_H
#define QVSA_BUILD_LAYER_H

#include <stddef.h>
#include <stdint.h>

struct recipe;
struct target;

/* The per-target file and its fixed size: equal lists give equal bytes. */
#define BUILD_DS_PATH "/etc/cloud/cloud.cfg.d/90-qvsa-datasource.cfg"
#define BUILD_DS_SIZE 512

/* t's datasource file, padded with a YAML comment to exactly BUILD_DS_SIZE
 * bytes (no target name in it). Records an input error if the list does not fit. */
int build_datasource_cfg(const struct target *t, char ret[BUILD_DS_SIZE]);

/* Targets with equal keys share one disk: the firmware on MBR; one key for
 * every target on GPT (a hybrid disk). Caller frees. */
char *build_group_key(const struct recipe *r, const struct target *t);

/* The firmware one disk must boot for its members: "bios", "uefi", or
 * ASSEMBLE_HYBRID (assemble.h) when they mix. */
const char *build_group_firmware(struct target *const *members, size_t n);

/* The modules of a disk serving n targets: the base's, the recipe's
 * additions, every target's, minus the recipe's omissions, each once, in
 * that order; NULL-terminated, caller frees (strv). */
char **build_module_union(const struct recipe *r, const char *const *base_modules, struct target *const *ts,
			  size_t n);

#endif
