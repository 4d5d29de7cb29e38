/* Target descriptions: one YAML data file per hypervisor/cloud target under
 * targets/ (schema in docs/targets.md). A new target that reuses a writer is
 * a new data file only. */
#ifndef QVSA_TARGET_H
#define QVSA_TARGET_H

#include <stddef.h>
#include <stdint.h>

struct target;

/* A writer option from the data file, e.g. compat=1.1. */
struct target_option {
	const char *key;   /* owned by the target */
	const char *value; /* owned by the target */
};

/* One file a target ships (most ship one; aws ships a VMDK and a raw disk). */
struct target_artifact {
	const char *writer;                  /* writer name, e.g. "qcow2"; owned by the target */
	const char *extension;               /* file extension without the dot; owned by the target */
	const struct target_option *options; /* n_options writer options; owned by the target */
	size_t n_options;                    /* entries in options */
};

#define TARGET_MAX_ARTIFACTS 4

/* Load targets/NAME.yaml from datadir. Unknown name: ERR_INPUT naming the
 * closest existing target. Bad file: ERR_INPUT with file:line:column. */
int target_find(const char *datadir, const char *name, struct target **ret);
/* Load one data file by path. */
int target_load(const char *path, struct target **ret);
void target_free(struct target *t); /* accepts NULL */
/* Sorted names of all targets under datadir/targets; caller frees (strv). */
int target_list(const char *datadir, char ***ret_names);

const char *target_name(const struct target *t);
const char *target_description(const struct target *t);
/* Artifacts in order; the first is the one verification boots. */
size_t target_n_artifacts(const struct target *t);
const struct target_artifact *target_artifact_at(const struct target *t, size_t i);
/* Value of an artifact's writer option, or NULL. */
const char *target_artifact_option(const struct target_artifact *a, const char *key);
/* The first artifact's writer, extension and options (shorthands). */
const char *target_writer(const struct target *t);    /* writer name, e.g. "qcow2" */
const char *target_extension(const struct target *t); /* artifact extension, e.g. "qcow2" */
size_t target_n_options(const struct target *t);
const struct target_option *target_option_at(const struct target *t, size_t i);
/* Value of option key, or NULL. */
const char *target_option(const struct target *t, const char *key);
const char *target_firmware(const struct target *t);   /* "bios" | "uefi" */
uint64_t target_size_alignment(const struct target *t); /* bytes, >= 512 */
/* Kernel modules the platform's devices need; NULL-terminated, never NULL. */
char *const *target_modules(const struct target *t);
/* cloud-init datasource_list for this platform, names cloud-init knows;
 * NULL-terminated, never NULL. */
char *const *target_datasources(const struct target *t);

/* How verification emulates the platform with QEMU. */
const char *target_verify_machine(const struct target *t);   /* "pc" | "q35" */
const char *target_verify_disk_bus(const struct target *t);  /* libvirt bus: virtio|scsi|sata|ide|nvme */
const char *target_verify_disk_controller(const struct target *t); /* model for scsi (e.g. "vmpvscsi", "virtio-scsi") or NULL */
const char *target_verify_nic_model(const struct target *t); /* libvirt model: virtio|vmxnet3|e1000|... */
/* The platform verification plays (platform_find() names it): checked at
 * load time to exist and to be reachable through the target's datasources. */
const char *target_verify_platform(const struct target *t);

#endif
