/* What qvsa hands cloud-init, written out for cloud-init's own validator
 * (`cloud-init schema`, tests/integration/cloudinit-schema.sh): each
 * platform's seed as verify makes it, and each target's datasource file
 * as build writes it. The test reads the media with its own tools
 * (isoinfo, xmllint, base64), not with qvsa's code. */
#include "cloudinit_dump.h"

#include "build_layer.h"
#include "cleanup.h"
#include "cli.h"
#include "err.h"
#include "fs.h"
#include "httpd.h"
#include "platform.h"
#include "seed.h"
#include "target.h"
#include "tlsca.h"

#include <stdio.h>
#include <string.h>

/* How a guest asks a metadata service for its user-data (docs/channels.md):
 * one request, after a token request where the platform wants one. */
struct ask {
	const char *platform;    /* the platform's name */
	const char *token_path;  /* PUT here first for a session token (EC2 IMDSv2); NULL: none */
	const char *token_ttl;   /* the token request's header naming its lifetime; NULL with no token */
	const char *path;        /* GET here for the user-data */
	const char *header;      /* the request's header (the token's when token_path is set); NULL: none */
	const char *value;       /* its value (NULL when it is the token) */
};

static const struct ask asks[] = {
	{"ec2", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "/latest/user-data",
	 "X-aws-ec2-metadata-token", NULL},
	{"gce", NULL, NULL, "/computeMetadata/v1/instance/attributes/user-data", "Metadata-Flavor", "Google"},
	{"oci", NULL, NULL, "/opc/v2/instance/metadata/user_data", "Authorization", "Bearer Oracle"},
	{"openstack", NULL, NULL, "/openstack/latest/user_data", NULL, NULL},
};

/* The metadata address every one of them serves at. */
#define DUMP_IMDS "169.254.169.254"

/* One request to p's metadata service: status 200 and its body, or -1. */
static int call(struct platform *p, const char *method, const char *path, const char *hname, const char *hvalue,
		char **ret_body)
{
	struct httpd_field h = {.name = hname, .value = hvalue};
	const struct httpd_request rq = {.method = method, .target = path, .path = path, .query = "", .body = "",
					 .headers = &h, .n_headers = hname ? 1 : 0};
	struct httpd_response resp = {0};
	if (platform_call(p, DUMP_IMDS, 80, &rq, &resp) < 0)
		return -1;
	if (resp.status != 200) {
		free(resp.body);
		return err_fail("%s %s: status %d", method, path, resp.status);
	}
	*ret_body = resp.body ? resp.body : xstrdup("");
	return 0;
}

/* The user-data body p's service serves as the guest asks for it, into dir/served-user-data. */
static int dump_served(const struct ask *a, struct platform *p, const char *dir)
{
	_cleanup_free_ char *token = NULL, *body = NULL;
	if (a->token_path && call(p, "PUT", a->token_path, a->token_ttl, "21600", &token) < 0)
		return -1;
	if (call(p, "GET", a->path, a->header, a->token_path ? token : a->value, &body) < 0)
		return -1;
	_cleanup_free_ char *out = xasprintf("%s/served-user-data", dir);
	if (fs_write_file_atomic(out, body, strlen(body), 0644) < 0)
		return -1;
	printf("served %s\n", out);
	return 0;
}

int cloudinit_dump_seed(const char *platform, const char *dir)
{
	const struct platform_ops *ops = platform_find(platform);
	if (!ops)
		return err_input("__seed: no platform '%s' (%s)", platform, platform_names());
	if (fs_mkdir_p(dir, 0755) < 0)
		return -1;
	/* The seed verify's prepare() (verify.c) makes: a run's CA, the stub's
	 * URL at the platform's host address (its port is chosen at run time),
	 * the test code, and a power-off when cloud-init is done. */
	struct tlsca *ca = NULL;
	if (tlsca_new("qvsa verify CA", &ca) < 0)
		return -1;
	_cleanup_free_ char *url = xasprintf("https://%s:8443/", platform_host_addr(ops));
	const char *iid = "qvsa-verify-qVSA-1.0-kvm.qcow2";
	struct seed_params sp = {.instance_id = iid, .hostname = "qvsa-verify", .perscode = DEFAULT_TEST_CODE,
				 .platform_url = url, .poweroff = true, .ca_pem = tlsca_cert_pem(ca)};
	_cleanup_free_ char *ud = NULL;
	int rc = seed_user_data(&sp, &ud);
	tlsca_free(ca);
	if (rc < 0)
		return -1;
	_cleanup_free_ char *udpath = xasprintf("%s/user-data", dir);
	if (fs_write_file_atomic(udpath, ud, strlen(ud), 0644) < 0)
		return -1;
	printf("user-data %s\n", udpath);
	struct platform_env env = {.tmpdir = dir, .instance_id = iid, .hostname = "qvsa-verify", .user_data = ud,
				   .perscode = DEFAULT_TEST_CODE, .platform_url = url};
	struct platform *p = NULL;
	if (platform_prepare(ops, &env, &p) < 0)
		return -1;
	if (platform_media(p))
		printf("media %s\n", platform_media(p));
	rc = 0;
	for (size_t i = 0; rc == 0 && i < ELEMENTSOF(asks); i++)
		if (strcmp(asks[i].platform, platform) == 0)
			rc = dump_served(&asks[i], p, dir);
	platform_stop(p);
	if (rc < 0)
		err_prefix("__seed %s", platform);
	return rc;
}

int cloudinit_dump_datasource(const char *datadir, const char *target)
{
	struct target *t = NULL;
	if (target_find(datadir, target, &t) < 0)
		return -1;
	char ds[BUILD_DS_SIZE];
	int rc = build_datasource_cfg(t, ds);
	target_free(t);
	if (rc < 0)
		return -1;
	if (fwrite(ds, 1, sizeof(ds), stdout) != sizeof(ds) || fflush(stdout) != 0)
		return err_errno(errno, "__datasource: writing to stdout");
	return 0;
}
