/* qvsa-agent: first-boot personalization of a qVSA appliance.
 *
 * Runs on every boot from the init scripts, with stdout on the serial
 * console. On the first boot it reads the NoCloud seed, brings the network
 * up, asks the platform which components this appliance gets, records them
 * under /etc/qvsa and prints one QVSA-STATUS line; later boots only print
 * "skipped". Protocol: docs/personalization.md. */
#include "agent.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#define AGENT_SEED_MOUNT "/run/qvsa-seed"
#define AGENT_SEED_WAIT_S 10
#define AGENT_DHCP_ROUNDS 3
#define AGENT_HTTP_TIMEOUT_MS 10000
#define AGENT_HTTP_ATTEMPTS 5
#define AGENT_HTTP_PAUSE_S 3

/* Command-line switches; the defaults are what the appliance runs. */
struct agent_opts {
	const char *root;     /* prefix for /etc/qvsa* and /var/lib/cloud/seed; "" on the appliance */
	const char *seed_dir; /* read user-data here instead of scanning devices, or NULL */
	bool network;         /* run DHCP before contacting the platform */
	bool poweroff;        /* honour power_state: poweroff from user-data */
};

/* State of one run, released by agent_state_free. */
struct agent_state {
	char *version;                  /* BOOTSTRAP_VERSION of /etc/qvsa-release, or NULL */
	char *user_data;                /* raw user-data (holds the code), or NULL */
	char *meta_data;                /* raw meta-data, or NULL */
	struct agent_userdata ud;       /* parsed user-data */
	char *platform_url;             /* effective platform URL, or NULL */
	char *proxy;                    /* effective proxy URL, or NULL for none */
	char *ca_pem;                   /* CAs trusted for the platform: the image's, then user-data's; or NULL */
	bool allow_http;                /* the image allows a plain http:// platform URL */
	struct agent_components comps;  /* what the platform granted */
	const char *stage;              /* failing stage, NULL while all is well */
};

static void agent_wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

static void agent_state_free(struct agent_state *st)
{
	/* the code must not linger anywhere, not even in freed heap */
	agent_wipe(st->user_data);
	agent_wipe(st->ud.perscode);
	free(st->version);
	free(st->user_data);
	free(st->meta_data);
	agent_userdata_free(&st->ud);
	free(st->platform_url);
	free(st->proxy);
	free(st->ca_pem);
	agent_components_free(&st->comps);
}

static char *agent_path(const struct agent_opts *o, const char *path)
{
	struct agent_buf b = { 0 };
	agent_buf_printf(&b, "%s%s", o->root, path);
	return agent_buf_steal(&b);
}

/* Read an optional os-release style file under the root ("" if absent). */
static char *agent_read_conf(const struct agent_opts *o, const char *path)
{
	char *p = agent_path(o, path), *text = NULL;
	if (access(p, F_OK) != 0 || agent_read_file(p, 65536, &text) < 0)
		text = agent_strdup("");
	free(p);
	return text;
}

static int agent_load_seed(const struct agent_opts *o, struct agent_state *st)
{
	char *local = agent_path(o, "/var/lib/cloud/seed/nocloud");
	char *local_ud = agent_path(o, "/var/lib/cloud/seed/nocloud/user-data");
	int r;
	if (o->seed_dir) {
		fprintf(stderr, "qvsa-agent: reading seed from %s\n", o->seed_dir);
		r = agent_seed_read_dir(o->seed_dir, &st->user_data, &st->meta_data);
	} else if (access(local_ud, F_OK) == 0) {
		fprintf(stderr, "qvsa-agent: reading seed from %s\n", local);
		r = agent_seed_read_dir(local, &st->user_data, &st->meta_data);
	} else {
		fprintf(stderr, "qvsa-agent: looking for a cidata seed device\n");
		r = agent_seed_from_devices(AGENT_SEED_MOUNT, AGENT_SEED_WAIT_S, &st->user_data,
					    &st->meta_data);
	}
	free(local);
	free(local_ud);
	return r;
}

/* platform.conf gives the defaults, user-data overrides them. */
static int agent_load_config(const struct agent_opts *o, struct agent_state *st)
{
	char *release = agent_read_conf(o, "/etc/qvsa-release");
	st->version = agent_kv_get(release, "BOOTSTRAP_VERSION");
	free(release);
	if (!st->version || !*st->version)
		return agent_fail("%s/etc/qvsa-release has no BOOTSTRAP_VERSION", o->root);
	char *conf = agent_read_conf(o, "/etc/qvsa/platform.conf");
	st->platform_url = st->ud.platform_url ? agent_strdup(st->ud.platform_url)
					       : agent_kv_get(conf, "PLATFORM_URL");
	st->proxy = st->ud.proxy ? agent_strdup(st->ud.proxy) : agent_kv_get(conf, "PROXY");
	if (st->proxy && !*st->proxy) {
		free(st->proxy);
		st->proxy = NULL;
	}
	char *allow = agent_kv_get(conf, "ALLOW_HTTP");
	st->allow_http = allow && (strcmp(allow, "yes") == 0 || strcmp(allow, "1") == 0 || strcmp(allow, "true") == 0);
	free(allow);
	free(conf);
	/* The image's CA bundle first, then what the owner's user-data adds. */
	char *ca = NULL, *ca_path = agent_path(o, "/etc/qvsa/ca.pem");
	struct agent_buf cas = { 0 };
	if (access(ca_path, F_OK) == 0 && agent_read_file(ca_path, 1u << 20, &ca) == 0)
		agent_buf_puts(&cas, ca);
	free(ca);
	free(ca_path);
	if (st->ud.ca_pem) {
		if (cas.len && cas.data[cas.len - 1] != '\n')
			agent_buf_puts(&cas, "\n");
		agent_buf_puts(&cas, st->ud.ca_pem);
	}
	st->ca_pem = cas.len ? agent_buf_steal(&cas) : NULL;
	agent_buf_free(&cas);
	if (!st->platform_url || !*st->platform_url)
		return agent_fail("no platform URL (PLATFORM_URL in /etc/qvsa/platform.conf "
				  "or qvsa: platform_url: in user-data)");
	return 0;
}

/* POST the code; retry only what a later attempt can fix (the network). */
static int agent_personalize(struct agent_state *st)
{
	struct utsname un;
	if (uname(&un) < 0)
		snprintf(un.machine, sizeof(un.machine), "unknown");
	char *body = agent_request_body(st->ud.perscode, st->version, un.machine);
	int status = 0, r = -EAGAIN;
	char *resp = NULL;
	for (int attempt = 1; attempt <= AGENT_HTTP_ATTEMPTS && r == -EAGAIN; attempt++) {
		if (attempt > 1) {
			fprintf(stderr, "qvsa-agent: %s; retrying in %d s\n", agent_error(),
				AGENT_HTTP_PAUSE_S);
			sleep(AGENT_HTTP_PAUSE_S);
		}
		fprintf(stderr, "qvsa-agent: contacting the platform at %s%s (attempt %d/%d)\n",
			st->platform_url, st->proxy ? " via the proxy" : "", attempt, AGENT_HTTP_ATTEMPTS);
		r = agent_platform_post(st->platform_url, st->proxy, st->ca_pem, st->allow_http, body,
					AGENT_HTTP_TIMEOUT_MS, &status, &resp);
	}
	agent_wipe(body);
	free(body);
	if (r == -EAGAIN) {
		char last[512];
		snprintf(last, sizeof(last), "%s", agent_error());
		return agent_fail("%s (gave up after %d attempts)", last, AGENT_HTTP_ATTEMPTS);
	}
	if (r < 0)
		return -1;
	if (status == 200) {
		r = agent_components_parse(resp, &st->comps);
	} else {
		char *reason = agent_reason_parse(resp);
		if (reason)
			r = agent_fail("%s", reason);
		else
			r = agent_fail("platform answered HTTP %d without a REASON", status);
		free(reason);
	}
	free(resp);
	return r;
}

static void agent_print_status(const char *json)
{
	printf("QVSA-STATUS: %s\n", json);
	fflush(stdout);
}

static void agent_poweroff(void)
{
	fprintf(stderr, "qvsa-agent: powering off as user-data asked (power_state)\n");
	fflush(stderr);
	sync();
	/* let the serial console drain: verification reads the status line from it */
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);
	if (reboot(RB_POWER_OFF) < 0)
		fprintf(stderr, "qvsa-agent: power off failed: %s\n", strerror(errno));
}

static int agent_main(const struct agent_opts *o, struct agent_state *st)
{
	char *marker = agent_path(o, "/etc/qvsa/personalized"), *done = NULL;
	bool skip = access(marker, F_OK) == 0;
	if (skip && agent_read_file(marker, 4096, &done) == 0)
		done[strcspn(done, "\r\n")] = 0;
	free(marker);
	if (skip) {
		char *json = agent_status_skipped(done ? done : "");
		agent_print_status(json);
		free(json);
		free(done);
		return 0;
	}
	st->stage = "seed";
	if (agent_load_seed(o, st) < 0)
		return -1;
	st->stage = "code";
	if (agent_userdata_parse(st->user_data, &st->ud) < 0)
		return -1;
	if (agent_perscode_check(st->ud.perscode) < 0)
		return -1;
	st->stage = "platform";
	if (agent_load_config(o, st) < 0)
		return -1;
	if (o->network) {
		char ifname[64];
		st->stage = "network";
		if (agent_network_up(AGENT_DHCP_ROUNDS, ifname, sizeof(ifname)) < 0)
			return -1;
		fprintf(stderr, "qvsa-agent: network up on %s\n", ifname);
	}
	st->stage = "platform";
	if (agent_personalize(st) < 0)
		return -1;
	st->stage = "record";
	if (agent_record_write(o->root, st->version, &st->comps) < 0)
		return -1;
	st->stage = NULL;
	char *json = agent_status_success(st->version, &st->comps);
	agent_print_status(json);
	free(json);
	return 0;
}

static void agent_usage(FILE *f)
{
	fprintf(f, "usage: qvsa-agent [--root DIR] [--seed-dir DIR] [--no-network] [--no-poweroff]\n"
		   "First-boot personalization of a qVSA appliance (see docs/personalization.md).\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "seed-dir", required_argument, NULL, 's' },
		{ "no-network", no_argument, NULL, 'n' },
		{ "no-poweroff", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_opts o = { .root = "", .network = true, .poweroff = true };
	char root[4096];
	for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
		switch (c) {
		case 'r':
			snprintf(root, sizeof(root), "%s", optarg);
			for (size_t n = strlen(root); n > 0 && root[n - 1] == '/';)
				root[--n] = 0;
			o.root = root;
			break;
		case 's': o.seed_dir = optarg; break;
		case 'n': o.network = false; break;
		case 'p': o.poweroff = false; break;
		case 'h': agent_usage(stdout); return 0;
		default: agent_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		agent_usage(stderr);
		return 2;
	}
	/* a test run against a directory tree must never power the host off */
	if (*o.root)
		o.poweroff = false;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("QVSA-AGENT: starting\n");
	fflush(stdout);

	struct agent_state st = { 0 };
	int r = agent_main(&o, &st);
	if (r < 0) {
		fprintf(stderr, "qvsa-agent: %s failed: %s\n", st.stage, agent_error());
		char *json = agent_status_failure(st.stage, agent_error());
		agent_print_status(json);
		free(json);
	}
	bool poweroff = o.poweroff && st.ud.poweroff;
	agent_state_free(&st);
	if (poweroff)
		agent_poweroff();
	return r < 0 ? 1 : 0;
}
