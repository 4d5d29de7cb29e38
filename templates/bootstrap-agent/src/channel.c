/* The channel table and the plan: which channels to try, in which order
 * (docs/channels.md, "Order"), and running them until one delivers a code. */
#include "channel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool agent_medium_nocloud(const struct agent_medium *m) { return strcasecmp(m->label, "cidata") == 0; }

static bool agent_medium_configdrive(const struct agent_medium *m) { return strcasecmp(m->label, "config-2") == 0; }

/* Azure's DVD is UDF (the volume id rd_rdfe_stable.<date>); DMI decides the rest. */
static bool agent_medium_azure(const struct agent_medium *m)
{
	return strncasecmp(m->label, "rd_rdfe_stable", 14) == 0 || m->fs == AGENT_FS_UDF;
}

/* vSphere's ISO transport labels its CD "OVF ENV"; the spellings cloud-init accepts. */
static bool agent_medium_vmware(const struct agent_medium *m)
{
	return strcasecmp(m->label, "OVF ENV") == 0 || strcasecmp(m->label, "OVFENV") == 0 ||
	       strcasecmp(m->label, "OVF-TRANSPORT") == 0;
}

static const struct agent_channel agent_table[] = {
	{ .name = "nocloud", .datasources = { "NoCloud" }, .medium = agent_medium_nocloud, .fetch = agent_ch_nocloud },
	{ .name = "configdrive", .datasources = { "ConfigDrive" }, .medium = agent_medium_configdrive,
	  .fetch = agent_ch_configdrive },
	{ .name = "openstack", .datasources = { "OpenStack" }, .network = true, .identify = agent_dmi_openstack,
	  .fetch = agent_ch_openstack },
	{ .name = "ec2", .datasources = { "Ec2" }, .network = true, .identify = agent_dmi_ec2, .fetch = agent_ch_ec2 },
	{ .name = "gce", .datasources = { "GCE" }, .network = true, .identify = agent_dmi_gce, .fetch = agent_ch_gce },
	{ .name = "oci", .datasources = { "Oracle" }, .network = true, .identify = agent_dmi_oci, .fetch = agent_ch_oci },
	{ .name = "azure", .datasources = { "Azure" }, .identify = agent_dmi_azure, .medium = agent_medium_azure,
	  .fetch = agent_ch_azure, .ready = agent_ch_azure_ready },
	{ .name = "vmware", .datasources = { "OVF", "VMware" }, .medium = agent_medium_vmware, .fetch = agent_ch_vmware },
	{ .name = "console", .datasources = { "None" }, .last_resort = true, .fetch = agent_ch_console },
};
#define AGENT_NCHANNELS (sizeof(agent_table) / sizeof(agent_table[0]))

static const struct agent_channel *const agent_rows[AGENT_NCHANNELS] = {
	&agent_table[0], &agent_table[1], &agent_table[2], &agent_table[3], &agent_table[4],
	&agent_table[5], &agent_table[6], &agent_table[7], &agent_table[8],
};

size_t agent_channels(const struct agent_channel *const **ret)
{
	*ret = agent_rows;
	return AGENT_NCHANNELS;
}

const struct agent_channel *agent_channel_find(const char *name)
{
	for (size_t i = 0; i < AGENT_NCHANNELS; i++)
		if (strcmp(agent_table[i].name, name) == 0)
			return &agent_table[i];
	return NULL;
}

void agent_delivery_free(struct agent_delivery *d)
{
	if (!d)
		return;
	char *secret[] = { d->user_data, d->perscode };
	for (size_t i = 0; i < 2; i++)
		if (secret[i])
			explicit_bzero(secret[i], strlen(secret[i]));
	free(d->user_data);
	free(d->perscode);
	free(d->platform_url);
	free(d->ca_pem);
	*d = (struct agent_delivery){ 0 };
}

/* The channels cfg's datasource_list selects, in its order (console excluded).
 * cfg NULL: the whole table. */
static int agent_candidates(const char *cfg, const struct agent_channel **ret, size_t *ret_n)
{
	size_t n = 0;
	if (!cfg) {
		for (size_t i = 0; i < AGENT_NCHANNELS; i++)
			if (!agent_table[i].last_resort)
				ret[n++] = &agent_table[i];
		*ret_n = n;
		return 0;
	}
	const char *line = cfg, *list = NULL;
	while (line && *line && !list) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, "datasource_list:", 16) == 0)
			list = line + 16;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!list)
		return agent_fail("datasource config: no datasource_list:");
	list += strspn(list, " \t");
	const char *end = *list == '[' ? strchr(list, ']') : NULL;
	if (!end)
		return agent_fail("datasource config: datasource_list is not a [ ... ] list");
	for (const char *p = list + 1; p < end;) {
		size_t len = strcspn(p, ",]");
		const char *s = p, *e = p + len;
		p = e + (*e == ',');
		while (s < e && strchr(" \t\r\n\"'", *s))
			s++;
		while (e > s && strchr(" \t\r\n\"'", e[-1]))
			e--;
		if (s == e)
			continue;
		for (const char *c = s; c < e; c++)
			if (!isalnum((unsigned char)*c))
				return agent_fail("datasource config: bad datasource name");
		for (size_t i = 0; i < AGENT_NCHANNELS; i++) {
			const struct agent_channel *ch = &agent_table[i];
			bool named = false, dup = false;
			for (size_t k = 0; ch->datasources[k]; k++)
				named |= strlen(ch->datasources[k]) == (size_t)(e - s) &&
					 strncasecmp(ch->datasources[k], s, (size_t)(e - s)) == 0;
			for (size_t k = 0; k < n; k++)
				dup |= ret[k] == ch;
			if (named && !dup && !ch->last_resort)
				ret[n++] = ch;
		}
	}
	*ret_n = n;
	return 0;
}

/* The first medium that is ch's, or NULL. */
static const struct agent_medium *agent_medium_of(const struct agent_channel *ch, const struct agent_media *media)
{
	for (size_t i = 0; media && i < media->n; i++)
		if (ch->medium(&media->m[i]))
			return &media->m[i];
	return NULL;
}

int agent_plan_make(const char *cfg, const struct agent_dmi *dmi, const struct agent_media *media,
		    struct agent_plan *ret)
{
	const struct agent_channel *cand[AGENT_NCHANNELS];
	size_t n;
	if (agent_candidates(cfg, cand, &n) < 0)
		return -1;
	struct agent_plan p = { 0 };
	for (size_t i = 0; i < n; i++) {
		const struct agent_medium *m = NULL;
		if (cand[i]->identify && !cand[i]->identify(dmi))
			continue; /* never wait on a service this platform does not have */
		if (cand[i]->medium && !(m = agent_medium_of(cand[i], media)))
			continue;
		p.medium[p.n] = m;
		p.ch[p.n++] = cand[i];
	}
	for (size_t i = 0; i < AGENT_NCHANNELS; i++)
		if (agent_table[i].last_resort)
			p.ch[p.n++] = &agent_table[i];
	*ret = p;
	return 0;
}

enum agent_media_wait agent_plan_media_wait(const char *cfg, const struct agent_dmi *dmi,
					    const struct agent_media *media)
{
	const struct agent_channel *cand[AGENT_NCHANNELS];
	size_t n;
	enum agent_media_wait want = AGENT_MEDIA_DONE;
	if (agent_candidates(cfg, cand, &n) < 0)
		return AGENT_MEDIA_DONE;
	for (size_t i = 0; i < n; i++) {
		if (!cand[i]->medium || (cand[i]->identify && !cand[i]->identify(dmi)))
			continue;
		if (agent_medium_of(cand[i], media))
			return AGENT_MEDIA_DONE; /* a medium arrived: the drivers are up */
		if (cand[i]->identify)
			want = AGENT_MEDIA_EXPECTED;
		else if (want == AGENT_MEDIA_DONE)
			want = AGENT_MEDIA_MAYBE;
	}
	return want;
}

/* Prefix the recorded error with the channel's name. */
static int agent_chan_fail(const struct agent_channel *ch)
{
	char why[768];
	snprintf(why, sizeof(why), "%s", agent_error());
	return agent_fail("%s: %s", ch->name, why);
}

/* User-data parsed, then what the channel gave directly on top of it. */
static int agent_apply(struct agent_delivery *d, struct agent_userdata *ud)
{
	if (d->user_data && agent_userdata_parse(d->user_data, ud) < 0) {
		/* with the code given directly, user-data may carry just other settings */
		if (!d->perscode || ud->perscode)
			return -1;
	}
	if (d->perscode) {
		if (ud->perscode)
			explicit_bzero(ud->perscode, strlen(ud->perscode));
		free(ud->perscode);
		ud->perscode = d->perscode;
		d->perscode = NULL;
	}
	if (d->platform_url) {
		free(ud->platform_url);
		ud->platform_url = d->platform_url;
		d->platform_url = NULL;
	}
	if (d->ca_pem) {
		struct agent_buf b = { 0 };
		if (ud->ca_pem) {
			agent_buf_puts(&b, ud->ca_pem);
			if (b.len && b.data[b.len - 1] != '\n')
				agent_buf_puts(&b, "\n");
		}
		agent_buf_puts(&b, d->ca_pem);
		free(ud->ca_pem);
		ud->ca_pem = agent_buf_steal(&b);
	}
	return 0;
}

int agent_channels_run(const struct agent_chan_env *env, const struct agent_plan *plan, struct agent_run *run)
{
	struct agent_buf tried = { 0 };
	for (size_t i = 0; i < plan->n; i++) {
		const struct agent_channel *ch = plan->ch[i];
		if (ch->network && run->bring_up_network && !run->network_up) {
			char ifname[64];
			run->stage = "network";
			if (agent_network_up(3, ifname, sizeof(ifname)) < 0) {
				agent_buf_free(&tried);
				return -1;
			}
			fprintf(stderr, "qvsa-agent: network up on %s\n", ifname);
			run->network_up = true;
		}
		run->reached = i + 1;
		agent_buf_printf(&tried, "%s%s", tried.len ? ", " : "", ch->name);
		fprintf(stderr, "qvsa-agent: trying channel %s\n", ch->name);
		struct agent_delivery d = { 0 };
		int r = ch->fetch(env, plan->medium[i], &d);
		if (r < 0) {
			agent_buf_free(&tried);
			run->stage = "channel";
			return agent_chan_fail(ch);
		}
		if (r == 1) {
			fprintf(stderr, "qvsa-agent: channel %s: nothing delivered\n", ch->name);
			continue;
		}
		run->channel = ch;
		agent_buf_free(&tried);
		r = agent_apply(&d, &run->ud);
		agent_delivery_free(&d);
		if (r < 0) {
			run->stage = "code";
			return agent_chan_fail(ch);
		}
		fprintf(stderr, "qvsa-agent: channel %s delivered the code\n", ch->name);
		return 0;
	}
	run->stage = "channel";
	agent_fail("no channel delivered a personalization code (tried: %s)", tried.len ? tried.data : "none");
	agent_buf_free(&tried);
	return -1;
}

void agent_channels_ready(const struct agent_chan_env *env, const struct agent_plan *plan,
			  const struct agent_run *run)
{
	for (size_t i = 0; i < run->reached && i < plan->n; i++) {
		const struct agent_channel *ch = plan->ch[i];
		if (!ch->ready)
			continue;
		fprintf(stderr, "qvsa-agent: reporting ready to %s\n", ch->name);
		if (ch->ready(env) < 0)
			fprintf(stderr, "qvsa-agent: %s: ready report failed: %s\n", ch->name, agent_error());
		else
			fprintf(stderr, "qvsa-agent: %s: ready report accepted\n", ch->name);
	}
}

void agent_run_free(struct agent_run *run)
{
	if (run->ud.perscode)
		explicit_bzero(run->ud.perscode, strlen(run->ud.perscode));
	agent_userdata_free(&run->ud);
	run->channel = NULL;
}
