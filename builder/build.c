#include "build.h"

#include "accel.h"
#include "assemble.h"
#include "audit.h"
#include "base.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "image.h"
#include "kernel.h"
#include "log.h"
#include "modules.h"
#include "pack.h"
#include "recipe.h"
#include "stamp.h"
#include "target.h"
#include "build_layer.h"
#include "build_out.h"
#include "build_write.h"
#include "writer.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#define SYSLINUX_DIR "/usr/lib/syslinux/mbr"

static void uuid_from(const char *seed, char out[37])
{
	char hex[65];
	sha256_hex(seed, strlen(seed), hex);
	snprintf(out, 37, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 12, hex + 15, hex + 18);
}

char *build_platform_conf(const struct recipe *r)
{
	const char *proxy = recipe_proxy(r);
	return xasprintf("# qvsa: where the bootstrap agent personalizes (user-data may override)\n"
			 "PLATFORM_URL=%s\n%s%s%s%s",
			 recipe_platform_url(r), proxy ? "PROXY=" : "", proxy ? proxy : "", proxy ? "\n" : "",
			 recipe_allow_http(r) ? "ALLOW_HTTP=yes\n" : "");
}

int build_add_layers(const struct recipe *r, const char *datadir, const struct stamp *st, const struct target *t,
		     struct pack *p)
{
	for (char *const *tpl = recipe_templates(r); *tpl; tpl++) {
		_cleanup_free_ char *dir = xasprintf("%s/templates/%s", datadir, *tpl);
		_cleanup_free_ char *root = xasprintf("%s/rootfs", dir);
		if (!fs_exists(dir))
			return err_input("%s: template '%s' not found in %s/templates", recipe_path(r), *tpl, datadir);
		if (fs_exists(root) && pack_tree(p, "/", root) < 0)
			return -1;
	}
	_cleanup_free_ char *rel = stamp_release_text(st);
	_cleanup_free_ char *osrel = stamp_os_release_text(st);
	if (pack_data(p, "/etc/qvsa-release", 0644, rel, strlen(rel)) < 0 ||
	    pack_data(p, "/etc/os-release", 0644, osrel, strlen(osrel)) < 0)
		return -1;
	_cleanup_free_ char *conf = build_platform_conf(r);
	if (pack_data(p, "/etc/qvsa/platform.conf", 0644, conf, strlen(conf)) < 0)
		return -1;
	/* Public CA certificates only (recipe loading refused keys). */
	if (recipe_ca(r) && pack_file(p, BUILD_CA_PATH, 0644, recipe_ca(r)) < 0)
		return -1;
	/* The one per-target file: artifacts of a shared disk each patch its block (build_layer.h). */
	char ds[BUILD_DS_SIZE];
	if (build_datasource_cfg(t, ds) < 0 || pack_data(p, BUILD_DS_PATH, 0644, ds, sizeof(ds)) < 0)
		return -1;
	_cleanup_free_ char *fstab = xasprintf("LABEL=%s / %s rw 0 1\n", recipe_disk_label(r), recipe_disk_filesystem(r));
	if (pack_data(p, "/etc/fstab", 0644, fstab, strlen(fstab)) < 0)
		return -1;
	for (size_t i = 0; i < recipe_n_files(r); i++) {
		const struct recipe_file *rf = recipe_file_at(r, i);
		if (pack_file(p, rf->dest, rf->mode, rf->source) < 0)
			return -1;
	}
	return 0;
}

void build_result_free(struct build_result *res)
{
	if (!res)
		return;
	for (unsigned i = 0; i < res->n_artifacts; i++) {
		free(res->artifacts[i].target);
		free(res->artifacts[i].path);
		free(res->artifacts[i].file);
		free(res->artifacts[i].writer);
	}
	free(res->artifacts);
	free(res->out_dir);
	free(res->manifest);
	free(res->signature);
	memset(res, 0, sizeof(*res));
}

/* Load and check every target before anything is built: the recipe's, then
 * any other --target. A disk depends on all of them, whichever are selected,
 * so a one-target CI job writes the bytes the whole build writes; *ret_sel
 * says which ones get artifacts. */
static int load_targets(const struct recipe *r, const struct build_opts *o, struct target ***ret, bool **ret_sel,
			size_t *ret_n)
{
	char *const *rt = recipe_targets(r), *const *want = o->targets && o->targets[0] ? o->targets : NULL;
	size_t nr = 0, nw = 0;
	while (rt[nr])
		nr++;
	while (want && want[nw])
		nw++;
	const char **names = calloc(nr + nw + 1, sizeof(*names));
	bool *sel = calloc(nr + nw + 1, sizeof(*sel));
	struct target **ts = calloc(nr + nw + 1, sizeof(*ts));
	if (!names || !sel || !ts)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < nr + nw; i++) {
		const char *name = i < nr ? rt[i] : want[i - nr];
		size_t k = 0;
		while (k < n && strcmp(names[k], name) != 0)
			k++;
		if (k == n)
			names[n++] = name;
		if (!want || i >= nr)
			sel[k] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (target_find(o->datadir, names[i], &ts[i]) < 0)
			goto fail;
		for (size_t j = 0; j < target_n_artifacts(ts[i]); j++) {
			const char *w = target_artifact_at(ts[i], j)->writer;
			if (!writer_find(w)) {
				err_input("target '%s': writer '%s' is not known to this qvsa", names[i], w);
				goto fail;
			}
		}
	}
	free(names);
	*ret = ts;
	*ret_sel = sel;
	*ret_n = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		target_free(ts[i]);
	free(ts);
	free(sel);
	free(names);
	return -1;
}

/* Modules, initramfs (audited) and the root filesystem archive for one disk:
 * the initramfs holds every member's modules, the root its first member's layer. */
static int prepare_rootfs(const struct recipe *r, const struct build_opts *o, const struct base_ops *base,
			  const struct base_state *bs, const struct modindex *mi, const struct stamp *st,
			  struct target *const *members, const bool *sel, size_t nm, const char *fw,
			  const char *uuid, const char *workdir, const char *tar, char **ret_tree)
{
	/* Each target's own list first, so that an unknown module names the target that wants it. */
	for (size_t i = 0; i < nm; i++) {
		if (!sel[i])
			continue;
		_cleanup_strv_ char **own = build_module_union(r, base->modules, &members[i], 1);
		_cleanup_free_ char *who = xasprintf("target '%s'", target_name(members[i]));
		_cleanup_strv_ char **own_paths = NULL;
		if (modindex_resolve(mi, own, who, &own_paths) < 0)
			return -1;
	}
	_cleanup_strv_ char **mods = build_module_union(r, base->modules, members, nm);
	_cleanup_strv_ char **paths = NULL;
	if (modindex_resolve(mi, mods, "the disk's targets", &paths) < 0)
		return -1;
	bool esp = strcmp(fw, "bios") != 0;
	struct base_ctx ctx = {.datadir = o->datadir, .st = bs, .kernel = bs->kernel, .modules = mods,
			       .module_paths = paths, .root_uuid = uuid,
			       .workdir = workdir, .cache_dir = o->cache_dir, .epoch = st->epoch, .firmware = fw};
	if (esp && !base->populate_esp)
		return err_input("%s: base '%s' cannot boot UEFI", recipe_path(r), base->name);
	struct pack *p = NULL;
	if (pack_open(tar, PACK_TAR, st->epoch, &p) < 0)
		return -1;
	if (base->populate(&ctx, p, ret_tree) < 0 || build_add_layers(r, o->datadir, st, members[0], p) < 0) {
		pack_abort(p);
		return -1;
	}
	if (pack_close(p) < 0)
		return -1;
	if (esp) {
		_cleanup_free_ char *esp_tar = xasprintf("%s/esp.tar", workdir);
		if (pack_open(esp_tar, PACK_TAR, st->epoch, &p) < 0)
			return -1;
		if (base->populate_esp(&ctx, p) < 0) {
			pack_abort(p);
			return -1;
		}
		if (pack_close(p) < 0)
			return -1;
	}
	/* The driver audit, on the initramfs just made, of each target's own
	 * list: no disk is assembled for a target it cannot boot. */
	_cleanup_free_ char *initrd = xasprintf("%s/" BASE_INITRD_FILE, workdir);
	_cleanup_free_ char *ibuf = NULL;
	size_t ilen = 0;
	if (fs_read_file(initrd, &ibuf, &ilen) < 0)
		return -1;
	for (size_t i = 0; i < nm; i++)
		if (sel[i] && audit_initramfs(ibuf, ilen, members[i], recipe_path(r)) < 0)
			return -1;
	return 0;
}

/* One target served by a shared disk, and its layer over that disk. */
struct member {
	struct target *t;          /* the target (not owned) */
	bool selected;             /* its artifacts are written (else it only shapes the disk) */
	char ds[BUILD_DS_SIZE];    /* its datasource file */
	struct writer_patch patch; /* ds at the file's offset in the disk; len 0: the disk's own bytes */
};

/* Targets that share one assembled disk, and that disk's inputs. */
struct group {
	struct member members[32];  /* targets served by this disk; members[0]'s layer is the disk's own */
	size_t nm;                  /* entries in members */
	const char *fw;             /* "bios" | "uefi" | ASSEMBLE_HYBRID (static) */
	char *tnames;               /* "kvm openstack": stamped as TARGETS */
	struct stamp st;            /* this disk's stamp (build id includes tnames) */
	char uuid[37];              /* root filesystem UUID */
	char *dir;                  /* scratch folder of this group */
	const char *stage;          /* the out dir's private folder its artifacts are written in (build_out.h) */
	char *tar, *esp, *raw;      /* root filesystem archive, ESP archive, assembled disk */
	char *tree;                 /* the base's tree the archive is laid over, or NULL */
	size_t first_slot;          /* index of this group's first artifact in the build result */
	int rc;                     /* outcome of group_write when run on a worker thread */
	char err[4096];             /* its error message (errors are per thread) */
	enum err_kind err_kind;     /* and kind */
};

static void group_free(struct group *g)
{
	free(g->tnames);
	free(g->dir);
	free(g->tar);
	free(g->esp);
	free(g->raw);
	if (g->tree)
		fs_rm_rf(g->tree);
	free(g->tree);
}

/* Collect the members of the group of ts[first] and prepare its archives. */
static int group_prepare(const struct recipe *r, const struct build_opts *o, const struct base_ops *base,
			 const struct base_state *bs, const struct modindex *mi, const struct stamp *st_in,
			 struct target **ts, const bool *sel, size_t nt, size_t first, bool *done, const char *dir,
			 struct group *g, struct build_result *res)
{
	_cleanup_free_ char *key = build_group_key(r, ts[first]);
	struct target *mt[ELEMENTSOF(g->members)];
	bool msel[ELEMENTSOF(g->members)];
	size_t tlen = 0;
	FILE *f = open_memstream(&g->tnames, &tlen);
	for (size_t i = 0; i < nt && g->nm < ELEMENTSOF(g->members); i++) {
		_cleanup_free_ char *ki = build_group_key(r, ts[i]);
		if (!done[i] && strcmp(ki, key) == 0) {
			fprintf(f, "%s%s", g->nm ? " " : "", target_name(ts[i]));
			mt[g->nm] = ts[i];
			msel[g->nm] = sel[i];
			g->members[g->nm].selected = sel[i];
			g->members[g->nm++].t = ts[i];
			done[i] = true;
		}
	}
	fclose(f);
	for (size_t i = 0; i < g->nm; i++)
		if (build_datasource_cfg(g->members[i].t, g->members[i].ds) < 0)
			return -1;
	g->fw = build_group_firmware(mt, g->nm);
	g->st = *st_in;
	g->st.targets = g->tnames;
	stamp_init(&g->st);
	_cleanup_free_ char *useed = xasprintf("%s rootfs", g->st.build_id);
	uuid_from(useed, g->uuid);
	g->dir = xstrdup(dir);
	if (fs_mkdir_p(g->dir, 0700) < 0)
		return -1;
	g->tar = xasprintf("%s/rootfs.tar", g->dir);
	g->esp = xasprintf("%s/esp.tar", g->dir);
	g->raw = xasprintf("%s/disk.raw", g->dir);
	double t0 = log_phase_begin("prepare", "kernel %s, initramfs and root filesystem (%s) for: %s",
				    kernel_release(bs->kernel), g->fw, g->tnames);
	int rc = prepare_rootfs(r, o, base, bs, mi, &g->st, mt, msel, g->nm, g->fw, g->uuid, g->dir, g->tar, &g->tree);
	res->t_prepare += log_phase_end("prepare", t0, rc == 0);
	return rc;
}

/* After assembly: each member whose datasource file differs from the disk's
 * own gets its bytes as a patch at the file's data block. */
static int group_layer(struct group *g)
{
	uint64_t off = 0;
	const struct member *own = &g->members[0];
	if (assemble_file_offset(g->raw, BUILD_DS_PATH, own->ds, sizeof(own->ds), &off) < 0)
		return -1;
	log_debug("disk of %s: %s at byte %" PRIu64, g->tnames, BUILD_DS_PATH, off);
	for (size_t i = 0; i < g->nm; i++) {
		struct member *m = &g->members[i];
		bool same = memcmp(m->ds, own->ds, sizeof(m->ds)) == 0;
		m->patch = (struct writer_patch){.offset = off, .data = (const uint8_t *)m->ds,
						 .len = same ? 0 : sizeof(m->ds)};
	}
	return 0;
}

/* Write every artifact of the group's targets from its assembled disk:
 * the streamed ones in one pass, then those qemu-img writes. */
static int group_write(const struct recipe *r, const struct build_opts *o, struct group *g, struct build_result *res)
{
	/* Smallest alignment first: growing the raw disk only ever adds zeros at its end. */
	for (size_t i = 0; i < g->nm; i++)
		for (size_t j = i + 1; j < g->nm; j++)
			if (target_size_alignment(g->members[j].t) < target_size_alignment(g->members[i].t)) {
				struct member tmp = g->members[i];
				g->members[i] = g->members[j];
				g->members[j] = tmp;
			}
	/* The swap moved the bytes: patches point at their member's copy again. */
	for (size_t i = 0; i < g->nm; i++)
		g->members[i].patch.data = (const uint8_t *)g->members[i].ds;
	size_t n = 0;
	for (size_t i = 0; i < g->nm; i++)
		n += g->members[i].selected ? target_n_artifacts(g->members[i].t) : 0;
	struct pending *ps = calloc(n ? n : 1, sizeof(*ps));
	if (!ps)
		abort();
	uint64_t size = recipe_disk_size(r);
	n = 0;
	for (size_t i = 0; i < g->nm; i++) {
		const struct member *m = &g->members[i];
		uint64_t al = target_size_alignment(m->t);
		size = (size + al - 1) / al * al;
		for (size_t j = 0; m->selected && j < target_n_artifacts(m->t); j++, n++) {
			pending_init(r, o, &g->st, m->t, target_artifact_at(m->t, j), size, res->out_dir, g->stage,
				     &res->artifacts[g->first_slot++], &ps[n]);
			ps[n].patches = m->patch.len ? &m->patch : NULL;
			ps[n].n_patches = m->patch.len ? 1 : 0;
		}
	}
	int rc = write_streamed(r, &g->st, g->raw, g->dir, ps, n);
	if (rc == 0)
		rc = write_whole(r, &g->st, g->raw, g->dir, ps, n);
	for (size_t i = 0; i < n; i++)
		free(ps[i].tmp);
	free(ps);
	return rc;
}

/* Writers of several disks at once (-j): groups are independent (each has its own raw disk). */
struct write_pool {
	const struct recipe *r;     /* the recipe */
	const struct build_opts *o; /* options */
	struct group *groups;       /* all groups */
	size_t ng;                  /* entries in groups */
	size_t next;                /* next group to take, under lock */
	pthread_mutex_t lock;       /* guards next */
	struct build_result *res;   /* artifact slots are disjoint per group */
};

static void *write_worker(void *arg)
{
	struct write_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		size_t i = p->next < p->ng && !qvsa_interrupted ? p->next++ : p->ng;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->ng)
			return NULL;
		struct group *g = &p->groups[i];
		g->rc = group_write(p->r, p->o, g, p->res);
		if (g->rc < 0 && err_msg()) {
			snprintf(g->err, sizeof(g->err), "%s", err_msg());
			g->err_kind = err_kind();
		}
	}
}

static int write_all(const struct recipe *r, const struct build_opts *o, struct group *groups, size_t ng,
		     struct build_result *res)
{
	unsigned n = o->jobs > 1 ? o->jobs : 1;
	if (n > ng)
		n = (unsigned)ng;
	struct write_pool p = {.r = r, .o = o, .groups = groups, .ng = ng, .res = res};
	pthread_mutex_init(&p.lock, NULL);
	pthread_t th[16];
	unsigned started = 0;
	for (unsigned i = 1; i < n && i < ELEMENTSOF(th); i++)
		if (pthread_create(&th[started], NULL, write_worker, &p) == 0)
			started++;
	write_worker(&p); /* this thread works too */
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	for (size_t i = 0; i < ng; i++) {
		if (groups[i].rc < 0) {
			if (groups[i].err[0]) {
				if (groups[i].err_kind == ERR_INPUT)
					err_input("%s", groups[i].err);
				else
					err_fail("%s", groups[i].err);
			}
			return -1;
		}
	}
	return check_interrupted();
}

/* "kvm vmware ...": every target of this build, for the build's own id. */
static char *all_names(struct target **ts, size_t nt)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	for (size_t i = 0; i < nt; i++)
		fprintf(f, "%s%s", i ? " " : "", target_name(ts[i]));
	fclose(f);
	return s;
}

int build_run(const struct recipe *r, const struct build_opts *o, struct build_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	const struct base_ops *base = recipe_base(r);
	struct target **ts = NULL;
	size_t nt = 0;
	bool *sel = NULL;
	if (load_targets(r, o, &ts, &sel, &nt) < 0)
		return -1;

	int rc = -1;
	struct base_state bs = {0};
	struct modindex *mi = NULL;
	char *workdir = NULL;
	struct build_out *bo = NULL;
	bool *done = calloc(nt, sizeof(*done));
	struct group *groups = calloc(nt, sizeof(*groups));
	struct assemble_params *aps = calloc(nt, sizeof(*aps));
	size_t ng = 0;
	_cleanup_free_ char *names = all_names(ts, nt);
	ret->artifacts = calloc(nt * TARGET_MAX_ARTIFACTS, sizeof(*ret->artifacts));
	ret->out_dir = xasprintf("%s/%s", o->out_dir, recipe_version(r));
	if (!done || !groups || !aps || !ret->artifacts)
		abort();
	/* Before any work: the out dir is writable, ours alone (locked), and
	 * cleared of what killed runs left; the new set goes to its private folder. */
	if (build_out_open(o->out_dir, recipe_version(r), &bo) < 0)
		goto out;

	const char *inputs[] = {recipe_path(r), NULL};
	struct stamp st = {.appliance = recipe_name(r), .version = recipe_version(r),
			   .recipe_sha256 = recipe_sha256(r), .targets = names};
	if (stamp_epoch(inputs, &st.epoch) < 0)
		goto out;
	if (base->open(&(struct base_open_params){.recipe = r, .cache_dir = o->cache_dir, .refresh = o->refresh}, &bs) < 0)
		goto out;
	st.kernel = kernel_release(bs.kernel);
	st.base = base->name;
	stamp_init(&st);
	memcpy(ret->build_id, st.build_id, sizeof(st.build_id));
	const char *accel = NULL;
	if (accel_resolve(o->accel, o->cache_dir, kernel_image(bs.kernel), &accel) < 0)
		goto out;
	image_set_force_tcg(strcmp(accel, "tcg") == 0);
	if (modindex_load(kernel_moddir(bs.kernel), &mi) < 0)
		goto out;
	workdir = fs_tmpdir_new("build");
	if (!workdir)
		goto out;

	/* Every disk's inputs first (cheap, and a driver audit failure costs no assembly). */
	for (size_t i = 0; i < nt; i++) {
		/* A disk is made only for the selected targets' groups. */
		if (done[i] || !sel[i])
			continue;
		_cleanup_free_ char *dir = xasprintf("%s/disk%zu", workdir, ng);
		struct group *g = &groups[ng++];
		build_test_pause("prepare");
		if (group_prepare(r, o, base, &bs, mi, &st, ts, sel, nt, i, done, dir, g, ret) < 0 || check_interrupted() < 0)
			goto out;
		aps[ng - 1] = (struct assemble_params){
			.raw_path = g->raw, .size = recipe_disk_size(r),
			.partition_table = recipe_disk_partition_table(r), .filesystem = recipe_disk_filesystem(r),
			.label = recipe_disk_label(r), .fs_uuid = g->uuid, .rootfs_tar = g->tar, .rootfs_tree = g->tree,
			.bootloader_dir = base->extlinux_dir, .syslinux_dir = SYSLINUX_DIR,
			.firmware = g->fw, .esp_tar = g->esp, .what = g->tnames,
			.workdir = g->dir, .guid_seed = g->st.build_id, .epoch = g->st.epoch,
		};
	}

	/* Host tools per disk, or all disks in one libguestfs appliance (its launch is the expensive part). */
	const char *method = NULL;
	if (assemble_method(&method) < 0)
		goto out;
	double t0 = log_phase_begin("assemble", "%zu disk%s (%s %s), %s", ng, ng > 1 ? "s" : "",
				    recipe_disk_filesystem(r), recipe_disk_label(r),
				    strcmp(method, "host") == 0 ? "host tools" : "one libguestfs launch");
	build_test_pause("assemble");
	int arc = assemble_disks(aps, ng);
	ret->t_assemble += log_phase_end("assemble", t0, arc == 0);
	if (arc < 0 || check_interrupted() < 0)
		goto out;
	for (size_t i = 0; i < ng; i++)
		if (group_layer(&groups[i]) < 0)
			goto out;

	/* Artifact slots in target order; each group writes only its own. */
	size_t slot = 0;
	for (size_t i = 0; i < ng; i++) {
		groups[i].stage = build_out_stage(bo);
		groups[i].first_slot = slot;
		for (size_t m = 0; m < groups[i].nm; m++)
			slot += groups[i].members[m].selected ? target_n_artifacts(groups[i].members[m].t) : 0;
	}
	t0 = now_monotonic();
	int wrc = write_all(r, o, groups, ng, ret);
	ret->t_write = now_monotonic() - t0;
	for (size_t i = 0; i < slot; i++)
		if (ret->artifacts[i].file)
			ret->n_artifacts = (unsigned)(i + 1);
	build_test_pause("write");
	if (wrc < 0 || check_interrupted() < 0)
		goto out;
	/* Publish only a whole set, written, checked and hashed: a signal before
	 * the exchange leaves the old set, after it the new one. */
	if (build_out_carry(bo, ret) < 0 || build_write_manifest(r, o, &st, &bs, build_out_stage(bo), ret) < 0)
		goto out;
	build_test_pause("publish");
	if (check_interrupted() < 0 || build_out_publish(bo) < 0)
		goto out;
	rc = 0;
out:
	build_out_free(bo);
	fs_tmpdir_release(workdir);
	for (size_t i = 0; i < ng; i++)
		group_free(&groups[i]);
	free(groups);
	free(aps);
	modindex_free(mi);
	base_state_clear(&bs);
	for (size_t i = 0; i < nt; i++)
		target_free(ts[i]);
	free(ts);
	free(sel);
	free(done);
	return rc;
}
