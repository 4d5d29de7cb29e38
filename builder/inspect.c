/* `qvsa inspect ARTIFACT`: what an image says it is (os-release, the
 * stamp, whether it was personalized) and whether it was generalized
 * before it shipped (the sysprep checks, sysprep.c). Everything comes from
 * one read of the image: directly (debugfs) where that is exact, else one
 * libguestfs launch. Findings are reported, not errors: inspect exits 0
 * whenever it could read the image. */
#include "accel.h"
#include "artifact_id.h"
#include "cleanup.h"
#include "cli.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "kernel.h"
#include "log.h"
#include "stamp.h"
#include "sysprep.h"
#include "writer.h"

#include <string.h>

/* The files inspect reads before sysprep's: their indexes in the read. */
enum { F_STAMP, F_COMPONENTS, F_OS_RELEASE, F_SYSPREP };
static const char *const inspect_paths[] = {"/etc/qvsa-release", "/etc/qvsa/components", "/etc/os-release"};

/* What the image says it is (os-release, as importers read it), beside the stamp. */
static const char *const os_keys[] = {"NAME", "VERSION", "ID", "ID_LIKE", "PRETTY_NAME"};
static const char *const stamp_keys[] = {"APPLIANCE", "BOOTSTRAP_VERSION", "BUILD_ID", "BUILD_DATE",
					 "RECIPE_SHA256", "TARGETS", "KERNEL"};

static void print_json(const char *art, char *const *files, const struct sysprep_result *sp)
{
	json_object *o = json_object_new_object(), *os = NULL, *sys = json_object_new_object();
	json_object_object_add(o, "artifact", json_object_new_string(art));
	if (files[F_OS_RELEASE]) /* no os-release: "os": null */
		os = json_object_new_object();
	for (size_t i = 0; files[F_OS_RELEASE] && i < ELEMENTSOF(os_keys); i++) {
		_cleanup_free_ char *v = stamp_get(files[F_OS_RELEASE], os_keys[i]);
		json_object_object_add(os, os_keys[i], json_new_str_or_null(v));
	}
	json_object_object_add(o, "os", os);
	for (size_t i = 0; i < ELEMENTSOF(stamp_keys); i++) {
		_cleanup_free_ char *v = stamp_get(files[F_STAMP], stamp_keys[i]);
		json_object_object_add(o, stamp_keys[i], json_new_str_or_null(v));
	}
	json_object_object_add(o, "personalized", json_object_new_boolean(files[F_COMPONENTS] != NULL));
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++) {
		json_object *chk = json_object_new_object();
		json_object_object_add(chk, "ok", json_object_new_boolean(sp[i].status != SYSPREP_FAIL));
		const char *st = sp[i].status == SYSPREP_FAIL ? "fail" : sysprep_status_name(sp[i].status);
		json_object_object_add(chk, "status", json_object_new_string(st));
		json_object_object_add(chk, "detail", json_object_new_string(sp[i].detail));
		json_object_object_add(sys, sp[i].name, chk);
	}
	json_object_object_add(o, "sysprep", sys);
	json_print_put(stdout, o);
}

static void print_text(char *const *files, const struct sysprep_result *sp)
{
	printf("# os (/etc/os-release)%s\n", files[F_OS_RELEASE] ? "" : ": none");
	for (size_t i = 0; files[F_OS_RELEASE] && i < ELEMENTSOF(os_keys); i++) {
		_cleanup_free_ char *v = stamp_get(files[F_OS_RELEASE], os_keys[i]);
		printf("OS_%s=\"%s\"\n", os_keys[i], v ? v : "");
	}
	printf("# stamp (/etc/qvsa-release)\n%s", files[F_STAMP]);
	if (files[F_COMPONENTS])
		printf("# personalized; components:\n%s", files[F_COMPONENTS]);
	printf("# sysprep\n");
	for (size_t i = 0; i < SYSPREP_N_CHECKS; i++)
		printf("%s: %s (%s)\n", sp[i].name, sysprep_status_name(sp[i].status), sp[i].detail);
}

/* The disk to read: the artifact, or the disk its container (OVA, GCE
 * tarball) holds, unpacked by its writer into a temporary folder removed
 * on exit. The writer is told by the artifact's bytes, whatever its name. */
static int inspect_disk(const char *art, char **ret_unpacked, const char **ret_format)
{
	const char *writer = NULL;
	if (artifact_sniff(art, &writer) < 0)
		return -1;
	const struct writer_ops *w = writer_find(writer);
	*ret_format = w->disk_format;
	*ret_unpacked = NULL;
	if (!w->unpack)
		return 0;
	char *tmp = fs_tmpdir_new("inspect");
	if (!tmp || w->unpack(art, tmp, ret_unpacked) < 0)
		return -1;
	free(tmp); /* still registered: removed on exit */
	return 0;
}

/* Tell libguestfs which accelerator to use: --accel, with auto probed
 * (a short boot, cached). Only a disk the direct reader declines needs it. */
static int inspect_accel(const struct cli *c)
{
	const char *accel = "tcg";
	if (strcmp(c->accel, "tcg") != 0) {
		_cleanup_free_ char *cache = fs_cache_dir();
		struct kernel *k = NULL;
		int rc = strcmp(c->accel, "auto") == 0 ? kernel_fetch(cache, "linux-image-amd64", &k) : 0;
		if (rc == 0)
			rc = accel_resolve(c->accel, cache, k ? kernel_image(k) : "/nonexistent", &accel);
		kernel_free(k);
		if (rc < 0)
			return -1;
	}
	image_set_force_tcg(strcmp(accel, "tcg") == 0);
	return 0;
}

/* Read paths and list dirs from d: directly where exact, else through
 * libguestfs (image_read_auto_dirs' rule, with the accelerator resolved
 * only when an appliance starts). */
static int inspect_read(const struct cli *c, const struct image_disk *d, const char *const *paths,
			struct image_content **ret)
{
	struct image_content *ct = calloc(1, sizeof(*ct));
	if (!ct)
		abort();
	int rc = image_direct_read_enabled() ? image_read_direct_dirs(d, paths, sysprep_dirs, ct) : 1;
	if (rc == 0) {
		log_debug("inspect '%s': read directly (debugfs)", d->name);
		*ret = ct;
		return 0;
	}
	free(ct);
	if (rc < 0)
		return -1;
	if (image_direct_read_enabled())
		log_debug("inspect '%s': read through libguestfs: %s", d->name, err_msg() ? err_msg() : "?");
	err_clear();
	if (inspect_accel(c) < 0)
		return -1;
	return image_read_many_dirs(d, 1, paths, sysprep_dirs, ret);
}

int cmd_inspect(struct cli *c)
{
	const char *art = c->args[0];
	if (!fs_exists(art))
		return err_input("artifact '%s': no such file", art);
	_cleanup_free_ char *unpacked = NULL;
	const char *format = NULL;
	if (inspect_disk(art, &unpacked, &format) < 0)
		return -1;
	/* inspect's own files, then sysprep's, in one read with sysprep's listings. */
	size_t nsys = 0;
	while (sysprep_paths[nsys])
		nsys++;
	_cleanup_free_ const char **paths = calloc(F_SYSPREP + nsys + 1, sizeof(*paths));
	if (!paths)
		abort();
	for (size_t i = 0; i < F_SYSPREP; i++)
		paths[i] = inspect_paths[i];
	for (size_t i = 0; i <= nsys; i++)
		paths[F_SYSPREP + i] = sysprep_paths[i];
	struct image_disk d = {.path = unpacked ? unpacked : art, .format = format, .name = art};
	struct image_content *ct = NULL;
	if (inspect_read(c, &d, paths, &ct) < 0)
		return -1;
	int rc = 0;
	if (ct->error) {
		rc = ct->error_kind == ERR_INPUT ? err_input("%s", ct->error) : err_fail("%s", ct->error);
	} else if (!ct->files[F_STAMP]) {
		rc = err_input("artifact '%s': no /etc/qvsa-release inside", art);
	} else {
		struct sysprep_result sp[SYSPREP_N_CHECKS];
		sysprep_judge(ct->files + F_SYSPREP, ct->lens + F_SYSPREP, ct->lists, sp);
		if (c->json)
			print_json(art, ct->files, sp);
		else
			print_text(ct->files, sp);
	}
	/* What was read may hold password hashes (/etc/shadow). */
	for (size_t i = 0; i < ct->n_files; i++)
		if (ct->files[i])
			explicit_bzero(ct->files[i], ct->lens[i]);
	image_contents_free(ct, 1);
	return rc;
}
