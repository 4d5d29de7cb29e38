/* What the agent leaves behind: the QVSA-STATUS line and, on success, the
 * records under /etc/qvsa. The personalization code is never among them;
 * the channel that delivered it is. */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *agent_status_success_via(const char *version, const char *channel, const struct agent_components *c)
{
	struct agent_buf b = { 0 };
	agent_buf_puts(&b, "{\"status\":\"success\",");
	if (channel) {
		agent_buf_puts(&b, "\"channel\":");
		agent_buf_json_string(&b, channel);
		agent_buf_puts(&b, ",");
	}
	agent_buf_puts(&b, "\"version\":");
	agent_buf_json_string(&b, version);
	agent_buf_puts(&b, ",\"components\":{");
	for (size_t i = 0; i < c->n; i++) {
		if (i)
			agent_buf_puts(&b, ",");
		agent_buf_json_string(&b, c->name[i]);
		agent_buf_puts(&b, ":");
		agent_buf_json_string(&b, c->version[i]);
	}
	agent_buf_puts(&b, "}}");
	return agent_buf_steal(&b);
}

char *agent_status_success(const char *version, const struct agent_components *c)
{
	return agent_status_success_via(version, NULL, c);
}

char *agent_status_failure_via(const char *stage, const char *channel, const char *reason)
{
	struct agent_buf b = { 0 };
	agent_buf_puts(&b, "{\"status\":\"failure\",\"stage\":");
	agent_buf_json_string(&b, stage);
	if (channel) {
		agent_buf_puts(&b, ",\"channel\":");
		agent_buf_json_string(&b, channel);
	}
	agent_buf_puts(&b, ",\"reason\":");
	agent_buf_json_string(&b, reason);
	agent_buf_puts(&b, "}");
	return agent_buf_steal(&b);
}

char *agent_status_failure(const char *stage, const char *reason)
{
	return agent_status_failure_via(stage, NULL, reason);
}

char *agent_status_skipped(const char *version)
{
	struct agent_buf b = { 0 };
	agent_buf_puts(&b, "{\"status\":\"skipped\",\"version\":");
	agent_buf_json_string(&b, version);
	agent_buf_puts(&b, ",\"reason\":\"already personalized\"}");
	return agent_buf_steal(&b);
}

int agent_record_write(const char *root, const char *version, const struct agent_components *c)
{
	char *dir = agent_printf("%s/etc/qvsa", root);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		agent_fail_errno(errno, "creating '%s'", dir);
		free(dir);
		return -1;
	}
	struct agent_buf b = { 0 };
	for (size_t i = 0; i < c->n; i++)
		agent_buf_printf(&b, "%s=%s\n", c->name[i], c->version[i]);
	char *path = agent_printf("%s/components", dir);
	int r = agent_write_file_atomic(path, b.data ? b.data : "", b.len, 0644);
	agent_buf_free(&b);
	free(path);
	if (r == 0) {
		/* the marker goes last: it is what makes later boots skip personalization */
		agent_buf_printf(&b, "%s\n", version);
		path = agent_printf("%s/personalized", dir);
		r = agent_write_file_atomic(path, b.data, b.len, 0644);
		agent_buf_free(&b);
		free(path);
	}
	free(dir);
	sync();
	return r;
}
