/* qvsa-agent: first-boot personalization of a qVSA appliance.
 *
 * Runs on every boot from the init scripts, with stdout on the serial
 * console. On the first boot it finds out which platform it runs on, takes
 * the code from that platform's channel, brings the network up, reports
 * Ready where the platform wants it, asks the qVSA platform which components
 * this appliance gets, records them under /etc/qvsa and prints one
 * QVSA-STATUS line; later boots only print "skipped". With --cloud-init
 * (a systemd base, after cloud-init's config stage) it takes the channel and
 * the code from what cloud-init found, and leaves the network, Azure's Ready
 * report and power_state to cloud-init and the OS. Protocol:
 * docs/personalization.md and docs/channels.md. */
#include "channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#define AGENT_MEDIA_MOUNT "/run/qvsa-media"
#define AGENT_MEDIA_WAIT_S 5
#define AGENT_MEDIA_POLL_MS 200
#define AGENT_MEDIA_QUIET_MS 1000
#define AGENT_DATASOURCE_CFG "/etc/cloud/cloud.cfg.d/90-qvsa-datasource.cfg"
#define AGENT_DHCP_ROUNDS 3
#define AGENT_HTTP_TIMEOUT_MS 10000
#define AGENT_HTTP_ATTEMPTS 5
#define AGENT_HTTP_PAUSE_S 3

/* A service address given on the command line (HOST:PORT). */
struct agent_hostport {
	char host[64]; /* IPv4 address or name */
	uint16_t port; /* port */
};

/* Command-line switches; the defaults are what the appliance runs. */
struct agent_opts {
	const char *root;            /* prefix for /etc, /var/lib/cloud/seed and /sys/class/dmi; "" on the appliance */
	const char *seed_dir;        /* a NoCloud seed directory (a cidata medium), or NULL */
	const char *media_dir;       /* subdirectories are media labelled by name (no device scan), or NULL */
	struct agent_hostport metadata;   /* the metadata service (169.254.169.254:80) */
	struct agent_hostport wireserver; /* Azure's wireserver (168.63.129.16:80) */
	int console_fds[2];          /* --console-fd terminals, -1 unused */
	bool network;                /* run DHCP before the first network channel / the platform */
	bool poweroff;               /* honour power_state: poweroff from user-data */
	bool cloud_init;             /* --cloud-init: cloud-init ran first (docs/channels.md) */
};

/* State of one run, released by agent_state_free. */
struct agent_state {
	char *version;                  /* BOOTSTRAP_VERSION of /etc/qvsa-release, or NULL */
	struct agent_dmi dmi;           /* the platform's identity */
	struct agent_media media;       /* media found */
	struct agent_plan plan;         /* channels to try (borrows media) */
	struct agent_run run;           /* what the channels delivered: run.ud is the effective user-data */
	const struct agent_channel *cloudinit; /* --cloud-init: the channel of cloud-init's datasource, or NULL */
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
	free(st->version);
	agent_dmi_free(&st->dmi);
	agent_run_free(&st->run);
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

/* The kernel's count of device events so far (0 if unknown): while it
 * moves, drivers are still finding devices. */
static unsigned long long agent_uevent_seqnum(const struct agent_opts *o)
{
	char *path = agent_path(o, "/sys/kernel/uevent_seqnum"), *text = NULL;
	unsigned long long n = 0;
	if (access(path, F_OK) == 0 && agent_read_file(path, 64, &text) == 0)
		n = strtoull(text, NULL, 10);
	free(text);
	free(path);
	return n;
}

/* The media channels may read: testing directories, the local NoCloud seed,
 * then block devices, rescanned while drivers probe and a listed media
 * channel still lacks its medium: up to AGENT_MEDIA_WAIT_S for a medium DMI
 * promises, and for one any platform might offer only until no device event
 * came for AGENT_MEDIA_QUIET_MS, so that a platform without media does not
 * cost every first boot the full wait. */
static int agent_find_media(const struct agent_opts *o, struct agent_state *st, const char *cfg)
{
	if (o->seed_dir)
		agent_media_add_dir(&st->media, o->seed_dir, "cidata");
	if (o->media_dir && agent_media_add_dirs(&st->media, o->media_dir) < 0)
		return -1;
	if (o->seed_dir || o->media_dir)
		return 0;
	char *local = agent_path(o, "/var/lib/cloud/seed/nocloud"), *local_ud = agent_printf("%s/user-data", local);
	if (access(local_ud, F_OK) == 0)
		agent_media_add_dir(&st->media, local, "cidata");
	free(local);
	free(local_ud);
	size_t fixed = st->media.n;
	double t0 = agent_now(), quiet_since = t0;
	unsigned long long seq = agent_uevent_seqnum(o);
	for (;;) {
		st->media.n = fixed;
		if (agent_media_scan(&st->media) < 0)
			return -1;
		enum agent_media_wait w = agent_plan_media_wait(cfg, &st->dmi, &st->media);
		double now = agent_now();
		unsigned long long s = agent_uevent_seqnum(o);
		if (s != seq) {
			seq = s;
			quiet_since = now;
		}
		/* after cloud-init, udev has settled and cloud-init has read its medium: one scan */
		if (o->cloud_init || w == AGENT_MEDIA_DONE || now - t0 >= AGENT_MEDIA_WAIT_S ||
		    (w == AGENT_MEDIA_MAYBE && now - quiet_since >= AGENT_MEDIA_QUIET_MS / 1000.0))
			break;
		usleep(AGENT_MEDIA_POLL_MS * 1000);
	}
	for (size_t i = 0; i < st->media.n; i++)
		fprintf(stderr, "qvsa-agent: medium %s: label '%s'\n",
			st->media.m[i].fs == AGENT_FS_DIR ? st->media.m[i].source : st->media.m[i].name,
			st->media.m[i].label);
	return 0;
}

/* DMI, media and the datasource list decide which channels to try. */
static int agent_make_plan(const struct agent_opts *o, struct agent_state *st)
{
	agent_dmi_read(o->root, &st->dmi);
	fprintf(stderr, "qvsa-agent: DMI: vendor '%s', product '%s', asset tag '%s'\n", st->dmi.sys_vendor,
		st->dmi.product_name, st->dmi.chassis_asset_tag);
	char *path = agent_path(o, AGENT_DATASOURCE_CFG), *cfg = NULL;
	int r = 0;
	if (access(path, F_OK) == 0)
		r = agent_read_file(path, 65536, &cfg);
	free(path);
	if (r == 0)
		r = agent_find_media(o, st, cfg);
	if (r == 0)
		r = agent_plan_make(cfg, &st->dmi, &st->media, &st->plan);
	free(cfg);
	if (r < 0)
		return -1;
	if (st->cloudinit) {
		struct agent_plan plan;
		agent_cloudinit_plan(st->cloudinit, &st->media, &st->plan, &plan);
		st->plan = plan;
	}
	struct agent_buf names = { 0 };
	for (size_t i = 0; i < st->plan.n; i++)
		agent_buf_printf(&names, "%s%s", i ? ", " : "", st->plan.ch[i]->name);
	fprintf(stderr, "qvsa-agent: channels to try: %s\n", names.data);
	agent_buf_free(&names);
	return 0;
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
	st->platform_url = st->run.ud.platform_url ? agent_strdup(st->run.ud.platform_url)
					       : agent_kv_get(conf, "PLATFORM_URL");
	st->proxy = st->run.ud.proxy ? agent_strdup(st->run.ud.proxy) : agent_kv_get(conf, "PROXY");
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
	if (st->run.ud.ca_pem) {
		if (cas.len && cas.data[cas.len - 1] != '\n')
			agent_buf_puts(&cas, "\n");
		agent_buf_puts(&cas, st->run.ud.ca_pem);
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
	char *body = agent_request_body(st->run.ud.perscode, st->version, un.machine);
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

/* The image's PLATFORM_URL, shown at the console prompt as the default. */
static char *agent_image_platform_url(const struct agent_opts *o)
{
	char *conf = agent_read_conf(o, "/etc/qvsa/platform.conf");
	char *url = agent_kv_get(conf, "PLATFORM_URL");
	free(conf);
	return url;
}

/* --cloud-init: name the channel by cloud-init's datasource and take the code
 * from the user-data it fetched. 0 delivered; 1 not (the plan follows, with
 * st->cloudinit first when known); -1 broken, with st->run.stage set. */
static int agent_cloudinit_start(const struct agent_opts *o, struct agent_state *st)
{
	char *ds = NULL, *ud = NULL, name[64];
	if (agent_cloudinit_read(o->root, &ds, &ud) < 0) {
		st->run.stage = "channel";
		return -1;
	}
	int r = 1;
	if (!ds) {
		fprintf(stderr, "qvsa-agent: cloud-init named no datasource; finding the channel as without it\n");
	} else if (!(st->cloudinit = agent_cloudinit_channel(ds, name, sizeof(name)))) {
		fprintf(stderr, "qvsa-agent: cloud-init used %s, which no channel reads; finding the channel as "
				"without it\n", name);
	} else {
		fprintf(stderr, "qvsa-agent: cloud-init used %s: channel %s\n", name, st->cloudinit->name);
		r = agent_cloudinit_take(st->cloudinit, ud, &st->run);
		if (r == 0)
			fprintf(stderr, "qvsa-agent: channel %s delivered the code (cloud-init's user-data)\n",
				st->cloudinit->name);
		else if (r == 1)
			fprintf(stderr, "qvsa-agent: cloud-init's user-data holds no code; trying channel %s itself\n",
				st->cloudinit->name);
	}
	agent_wipe(ud);
	free(ud);
	free(ds);
	return r;
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
	st->stage = "channel";
	int r = o->cloud_init ? agent_cloudinit_start(o, st) : 1;
	if (r < 0) {
		st->stage = st->run.stage;
		return -1;
	}
	if (r == 1 && agent_make_plan(o, st) < 0)
		return -1;
	char *image_url = agent_image_platform_url(o);
	bool test_root = *o->root != 0;
	const struct agent_chan_env env = {
		.root = o->root,
		.mountpoint = AGENT_MEDIA_MOUNT,
		.metadata_host = o->metadata.host,
		.metadata_port = o->metadata.port,
		.wireserver_host = o->wireserver.host,
		.wireserver_port = o->wireserver.port,
		.meta_pause_ms = 1000,
		.console_fds = { o->console_fds[0], o->console_fds[1] },
		/* a test run against a directory tree never reads the host's terminals */
		.console_paths = { test_root ? NULL : "/dev/ttyS0", test_root ? NULL : "/dev/tty0" },
		.image_platform_url = image_url,
	};
	st->run.bring_up_network = o->network;
	if (r == 1 && (r = agent_channels_run(&env, &st->plan, &st->run)) < 0) {
		st->stage = st->run.stage;
		goto out;
	}
	st->stage = "code";
	if ((r = agent_perscode_check(st->run.ud.perscode)) < 0)
		goto out;
	st->stage = "platform";
	if ((r = agent_load_config(o, st)) < 0)
		goto out;
	if (o->network && !st->run.network_up) {
		char ifname[64];
		st->stage = "network";
		if ((r = agent_network_up(AGENT_DHCP_ROUNDS, ifname, sizeof(ifname))) < 0)
			goto out;
		fprintf(stderr, "qvsa-agent: network up on %s\n", ifname);
	}
	/* before the platform: a platform such as Azure fails the VM without it;
	 * after cloud-init, cloud-init has reported Ready itself */
	if (!o->cloud_init)
		agent_channels_ready(&env, &st->plan, &st->run);
	st->stage = "platform";
	if ((r = agent_personalize(st)) < 0)
		goto out;
	st->stage = "record";
	if ((r = agent_record_write(o->root, st->version, &st->comps)) < 0)
		goto out;
	st->stage = NULL;
	char *json = agent_status_success_via(st->version, st->run.channel->name, &st->comps);
	agent_print_status(json);
	free(json);
out:
	free(image_url);
	return r;
}

static void agent_usage(FILE *f)
{
	fprintf(f, "usage: qvsa-agent [--root DIR] [--seed-dir DIR] [--media-dir DIR] [--metadata HOST:PORT]\n"
		   "                  [--wireserver HOST:PORT] [--console-fd FD]... [--no-network] [--no-poweroff]\n"
		   "                  [--cloud-init]\n"
		   "First-boot personalization of a qVSA appliance (see docs/personalization.md).\n");
}

/* HOST:PORT for a service address; -1 if malformed. */
static int agent_hostport_parse(const char *s, struct agent_hostport *ret)
{
	const char *colon = strrchr(s, ':');
	char *end;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(ret->host))
		return -1;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port == 0 || port > 65535)
		return -1;
	snprintf(ret->host, sizeof(ret->host), "%.*s", (int)(colon - s), s);
	ret->port = (uint16_t)port;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "seed-dir", required_argument, NULL, 's' },
		{ "media-dir", required_argument, NULL, 'm' },
		{ "metadata", required_argument, NULL, 'M' },
		{ "wireserver", required_argument, NULL, 'W' },
		{ "console-fd", required_argument, NULL, 'c' },
		{ "no-network", no_argument, NULL, 'n' },
		{ "no-poweroff", no_argument, NULL, 'p' },
		{ "cloud-init", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_opts o = {
		.root = "",
		.metadata = { "169.254.169.254", 80 },
		.wireserver = { "168.63.129.16", 80 },
		.console_fds = { -1, -1 },
		.network = true,
		.poweroff = true,
	};
	char root[4096];
	size_t nfds = 0;
	for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
		char *end;
		long fd;
		switch (c) {
		case 'r':
			snprintf(root, sizeof(root), "%s", optarg);
			for (size_t n = strlen(root); n > 0 && root[n - 1] == '/';)
				root[--n] = 0;
			o.root = root;
			break;
		case 's': o.seed_dir = optarg; break;
		case 'm': o.media_dir = optarg; break;
		case 'M':
		case 'W':
			if (agent_hostport_parse(optarg, c == 'M' ? &o.metadata : &o.wireserver) < 0) {
				fprintf(stderr, "qvsa-agent: '%s' is not HOST:PORT\n", optarg);
				return 2;
			}
			break;
		case 'c':
			fd = strtol(optarg, &end, 10);
			if (*end || end == optarg || fd < 0 || fd > 1024 || nfds == 2) {
				fprintf(stderr, "qvsa-agent: --console-fd takes a descriptor number, at most twice\n");
				return 2;
			}
			o.console_fds[nfds++] = (int)fd;
			break;
		case 'n': o.network = false; break;
		case 'p': o.poweroff = false; break;
		case 'C': o.cloud_init = true; break;
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
	/* after cloud-init the OS has the network, and cloud-init's power_state
	 * (cloud-final, ordered after the agent) powers off */
	if (o.cloud_init) {
		o.network = false;
		o.poweroff = false;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("QVSA-AGENT: starting\n");
	fflush(stdout);

	struct agent_state st = { 0 };
	int r = agent_main(&o, &st);
	if (r < 0) {
		const char *channel = st.run.channel ? st.run.channel->name : NULL;
		fprintf(stderr, "qvsa-agent: %s failed: %s\n", st.stage, agent_error());
		char *json = agent_status_failure_via(st.stage, channel, agent_error());
		agent_print_status(json);
		free(json);
	}
	bool poweroff = o.poweroff && st.run.ud.poweroff;
	agent_state_free(&st);
	if (poweroff)
		agent_poweroff();
	return r < 0 ? 1 : 0;
}
