/* The media channels that carry cloud-init's files as they are: NoCloud's
 * cidata (user-data, meta-data) and OpenStack's config drive, config-2
 * (openstack/latest/user_data). */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>

/* Mount m, read rel, unmount. 1 when rel is absent and missing_ok. */
static int agent_media_file(const struct agent_chan_env *env, const struct agent_medium *m, const char *rel,
			    bool missing_ok, char **ret_text)
{
	char dir[4096];
	if (agent_medium_open(m, env->mountpoint, dir, sizeof(dir)) < 0)
		return -1;
	fprintf(stderr, "qvsa-agent: reading %s from %s (label %s)\n", rel,
		m->fs == AGENT_FS_DIR ? m->source : m->name, m->label);
	int r = agent_medium_read(dir, rel, missing_ok, ret_text);
	agent_medium_close(m, env->mountpoint);
	return r;
}

int agent_ch_nocloud(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret)
{
	/* a NoCloud seed without user-data is not a seed: that is an error, not "nothing" */
	return agent_media_file(env, m, "user-data", false, &ret->user_data) < 0 ? -1 : 0;
}

int agent_ch_configdrive(const struct agent_chan_env *env, const struct agent_medium *m,
			 struct agent_delivery *ret)
{
	/* a config drive without user_data is an instance launched without any */
	return agent_media_file(env, m, "openstack/latest/user_data", true, &ret->user_data);
}
