/* --cloud-init (docs/channels.md, "After cloud-init"): on a systemd base
 * cloud-init has already found the datasource and fetched the user-data
 * before the agent runs. The agent names the channel by that datasource and
 * takes the code from the raw user-data cloud-init stored; the channels'
 * own fetches are the fallback. */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define AGENT_CI_DATASOURCE "/var/lib/cloud/instance/datasource"
#define AGENT_CI_USER_DATA "/var/lib/cloud/instance/user-data.txt"

/* Read root/rel into *ret, or leave it NULL when the file does not exist. */
static int agent_ci_file(const char *root, const char *rel, size_t max, char **ret)
{
	char *path = agent_printf("%s%s", root, rel);
	int r = 0;
	*ret = NULL;
	if (access(path, F_OK) == 0)
		r = agent_read_file(path, max, ret);
	else if (errno != ENOENT && errno != ENOTDIR)
		r = agent_fail_errno(errno, "reading '%s'", path);
	free(path);
	return r;
}

int agent_cloudinit_read(const char *root, char **ret_datasource, char **ret_user_data)
{
	char *ds = NULL, *ud = NULL;
	if (agent_ci_file(root, AGENT_CI_DATASOURCE, 4096, &ds) < 0)
		return -1;
	if (agent_ci_file(root, AGENT_CI_USER_DATA, AGENT_META_MAX, &ud) < 0) {
		free(ds);
		return -1;
	}
	*ret_datasource = ds;
	*ret_user_data = ud;
	return 0;
}

const struct agent_channel *agent_cloudinit_channel(const char *datasource, char *ret_name, size_t size)
{
	/* "DataSourceEc2Local: DataSourceEc2Local [...]": the class name comes first (size >= 1) */
	size_t n = strcspn(datasource, ": \t\r\n");
	size_t keep = n < size - 1 ? n : size - 1;
	memcpy(ret_name, datasource, keep);
	ret_name[keep] = 0;
	static const char prefix[] = "DataSource";
	if (n <= sizeof(prefix) - 1 || strncmp(datasource, prefix, sizeof(prefix) - 1) != 0)
		return NULL;
	const char *name = datasource + sizeof(prefix) - 1;
	n -= sizeof(prefix) - 1;
	/* the local stage's class (Ec2Local) and the network one (NoCloudNet, OVFNet)
	 * are the same datasource to cloud-init's datasource_list */
	static const char *const suffixes[] = { "Local", "Net" };
	for (size_t i = 0; i < 2; i++) {
		size_t k = strlen(suffixes[i]);
		if (n > k && strncmp(name + n - k, suffixes[i], k) == 0) {
			n -= k;
			break;
		}
	}
	const struct agent_channel *const *rows;
	size_t nrows = agent_channels(&rows);
	for (size_t i = 0; i < nrows; i++)
		for (size_t k = 0; rows[i]->datasources[k]; k++)
			if (strlen(rows[i]->datasources[k]) == n && strncasecmp(rows[i]->datasources[k], name, n) == 0)
				/* DataSourceNone: cloud-init found nothing, so there is no channel to name */
				return rows[i]->last_resort ? NULL : rows[i];
	return NULL;
}

int agent_cloudinit_take(const struct agent_channel *ch, const char *user_data, struct agent_run *run)
{
	if (!user_data || !user_data[strspn(user_data, " \t\r\n")])
		return 1;
	struct agent_userdata ud = { 0 };
	if (agent_userdata_parse(user_data, &ud) < 0) {
		if (!ud.malformed && !ud.perscode) {
			/* not ours (other cloud-config, a script): the code may come another way */
			agent_userdata_free(&ud);
			return 1;
		}
		char why[768];
		snprintf(why, sizeof(why), "%s", agent_error());
		if (ud.perscode)
			explicit_bzero(ud.perscode, strlen(ud.perscode));
		agent_userdata_free(&ud);
		run->channel = ch;
		run->stage = "code";
		return agent_fail("%s: cloud-init's user-data: %s", ch->name, why);
	}
	run->channel = ch;
	run->ud = ud;
	return 0;
}

void agent_cloudinit_plan(const struct agent_channel *ch, const struct agent_media *media,
			  const struct agent_plan *plan, struct agent_plan *ret)
{
	struct agent_plan p = { 0 };
	/* cloud-init identified the platform: no DMI condition, but a medium is still needed */
	const struct agent_medium *m = NULL;
	for (size_t i = 0; ch->medium && media && i < media->n && !m; i++)
		if (ch->medium(&media->m[i]))
			m = &media->m[i];
	if (!ch->medium || m) {
		p.medium[p.n] = m;
		p.ch[p.n++] = ch;
	}
	for (size_t i = 0; i < plan->n && p.n < sizeof(p.ch) / sizeof(p.ch[0]); i++) {
		if (plan->ch[i] == ch)
			continue;
		p.medium[p.n] = plan->medium[i];
		p.ch[p.n++] = plan->ch[i];
	}
	*ret = p;
}
