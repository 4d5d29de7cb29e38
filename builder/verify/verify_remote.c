/* A run on a libvirt that shares no files with us (--connect to a libvirtd):
 * its disks go up through a storage pool before the boot, and its overlay
 * comes back down after it (remote.h). Everything else of the run (stub,
 * platform emulators, audit, check) stays as for the embedded driver. */
#include "verify_run.h"

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "platform.h"
#include "proc.h"
#include "remote.h"
#include "target.h"

#include <stdio.h>
#include <string.h>

/* The volume names of a run: its domain name (qvsa-verify-<pid>-<target>,
 * so stale ones are found as stale domains are) and a suffix. */
static const char *const vol_suffix[] = {"-disk.qcow2", "-base", "-media", "-VARS.fd"};
enum { VOL_DISK, VOL_BASE, VOL_MEDIA, VOL_NVRAM, VOL_N };

static char *vol_name(const struct run *r, int which)
{
	return xasprintf("%s%s", r->name, vol_suffix[which]);
}

int verify_remote_stage(struct remote_pool *p, struct run *r)
{
	_cleanup_free_ char *base = vol_name(r, VOL_BASE), *disk = vol_name(r, VOL_DISK);
	_cleanup_free_ char *media = vol_name(r, VOL_MEDIA), *nvram_vol = vol_name(r, VOL_NVRAM);
	_cleanup_free_ char *rbase = NULL, *rdisk = NULL, *rmedia = NULL;
	uint64_t vsize = 0;
	double t = now_monotonic();
	/* The overlay made here stays for the audit and the check; the remote one is the daemon's own. */
	if (remote_virtual_size(r->backing, r->fmt, &vsize) < 0 || remote_upload(p, base, r->backing, &rbase) < 0 ||
	    remote_overlay(p, disk, rbase, r->fmt, vsize, &rdisk) < 0)
		return -1;
	const char *m = platform_media(r->plat);
	if (m && remote_upload(p, media, m, &rmedia) < 0)
		return -1;
	log_debug("verify: %s: disk%s in pool '%s' in %.2fs", r->tname, m ? " and media" : "", remote_pool_name(p),
		  now_monotonic() - t);
	/* The daemon copies its OVMF variable template there (a file it makes, deleted by name later). */
	_cleanup_free_ char *nvram = xasprintf("%s/%s", remote_pool_path(p), nvram_vol);
	struct run_remote rr = {
		.pool = remote_pool_name(p),
		.disk_vol = disk,
		.disk_path = rdisk,
		.seed_vol = m ? media : NULL,
		.seed_path = rmedia,
		.nvram_path = nvram,
	};
	return verify_make_domain(r, &rr);
}

/* The booted overlay volume as a local qcow2 on the local backing file, over r->overlay. */
static int fetch_overlay(struct remote_pool *p, struct run *r, const char *disk)
{
	_cleanup_free_ char *tmp = xasprintf("%s/overlay-booted.qcow2", r->tmpdir);
	if (remote_download(p, disk, tmp) < 0)
		return -1;
	/* Its header names the backing volume's remote path; the local backing file has the same bytes. */
	const char *argv[] = {"qemu-img", "rebase", "-u", "-f", "qcow2", "-F", r->fmt, "-b", r->backing, tmp, NULL};
	if (proc_run(argv, NULL, NULL) < 0)
		return -1;
	if (rename(tmp, r->overlay) < 0)
		return err_errno(errno, "replacing '%s'", r->overlay);
	return 0;
}

int verify_remote_finish(struct remote_pool *p, struct run *r)
{
	int rc = 0;
	if (!r->failed) {
		_cleanup_free_ char *disk = vol_name(r, VOL_DISK);
		double t = now_monotonic();
		if (fetch_overlay(p, r, disk) < 0)
			rc = run_fail_recorded(r);
		else
			log_debug("verify: %s: overlay downloaded in %.2fs", r->tname, now_monotonic() - t);
	}
	const char *fw = target_firmware(r->t);
	for (int i = 0; i < VOL_N; i++) {
		/* A missing volume costs a pool refresh (remote_delete looks for daemon-made files). */
		if ((i == VOL_MEDIA && !platform_media(r->plat)) || (i == VOL_NVRAM && !(fw && strcmp(fw, "uefi") == 0)))
			continue;
		_cleanup_free_ char *v = vol_name(r, i);
		remote_delete(p, v);
	}
	return rc;
}
