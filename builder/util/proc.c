#include "proc.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

/* Grow *buf by reading fd once; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t slurp_once(int fd, char **buf, size_t *len, size_t *cap)
{
	if (*cap - *len < 4097) {
		size_t ncap = *cap ? *cap * 2 : 8192;
		char *n = realloc(*buf, ncap);
		if (!n)
			return -1;
		*buf = n;
		*cap = ncap;
	}
	ssize_t r = read(fd, *buf + *len, *cap - *len - 1);
	if (r > 0) {
		*len += (size_t)r;
		(*buf)[*len] = 0;
	}
	return r;
}

/* The last non-empty line of text, copied into dst. */
static void last_line(const char *text, char *dst, size_t dstlen)
{
	dst[0] = 0;
	if (!text)
		return;
	const char *end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > text && start[-1] != '\n')
		start--;
	size_t n = (size_t)(end - start);
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, start, n);
	dst[n] = 0;
}

/* System tools (depmod, mke2fs, sfdisk, debugfs) live in the sbin folders,
 * which an ordinary user's PATH often lacks: search them after PATH. */
static const char *const sbin_dirs[] = { "/usr/local/sbin", "/usr/sbin", "/sbin" };

char *proc_find(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/bin:/bin");
	if (!copy)
		return NULL;
	char full[4096];
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		struct stat st;
		snprintf(full, sizeof(full), "%s/%s", dir, prog);
		if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
			return strdup(full);
	}
	for (size_t i = 0; i < ELEMENTSOF(sbin_dirs); i++) {
		struct stat st;
		snprintf(full, sizeof(full), "%s/%s", sbin_dirs[i], prog);
		if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
			return strdup(full);
	}
	return NULL;
}

/* "running 'depmod': not found in PATH (/usr/bin:/bin) nor in /usr/local/sbin, /usr/sbin, /sbin". */
static int not_found(const char *prog)
{
	const char *path = getenv("PATH");
	if (strchr(prog, '/'))
		return err_fail("running '%s': no such executable", prog);
	return err_fail("running '%s': not found in PATH (%s) nor in %s, %s, %s; is it installed?", prog, path && *path ? path : "unset, so /usr/bin:/bin", sbin_dirs[0], sbin_dirs[1],
			sbin_dirs[2]);
}

int proc_run(const char *const *argv, const char *cwd, char **ret_out)
{
	return proc_run_input(argv, cwd, NULL, ret_out);
}

int proc_run_input(const char *const *argv, const char *cwd, const char *input, char **ret_out)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	_cleanup_free_ char *exe = proc_find(argv[0]);
	if (!exe)
		return not_found(argv[0]);
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return err_errno(errno, "running '%s': pipe", argv[0]);

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, input ? input : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);

	pid_t pid;
	int rc = posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	if (rc != 0) {
		close(outp[0]);
		close(errp[0]);
		return err_errno(rc, "running '%s'", argv[0]);
	}

	_cleanup_free_ char *out = NULL, *errtxt = NULL;
	size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
	struct pollfd pf[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(pf, 2, -1) < 0) {
			/* Ctrl-C reaches the whole process group, but SIGTERM (or a
			 * signal to qvsa alone) does not: pass it on, then wait. */
			if (errno == EINTR && qvsa_interrupted)
				kill(pid, SIGTERM);
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = i == 0 ? slurp_once(pf[i].fd, &out, &olen, &ocap)
					   : slurp_once(pf[i].fd, &errtxt, &elen, &ecap);
			if (r <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			}
		}
	}

	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return err_errno(errno, "running '%s': waitpid", argv[0]);
	}
	if (qvsa_interrupted)
		return err_fail("running '%s': interrupted", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[512];
		last_line(errtxt, line, sizeof(line));
		if (!line[0])
			last_line(out, line, sizeof(line));
		if (WIFSIGNALED(status))
			return err_fail("running '%s': killed by signal %d%s%s", argv[0], WTERMSIG(status),
					line[0] ? ": " : "", line);
		return err_fail("running '%s': exit %d%s%s", argv[0], WEXITSTATUS(status), line[0] ? ": " : "",
				line);
	}
	if (ret_out) {
		if (!out)
			out = strdup("");
		*ret_out = TAKE_PTR(out);
	}
	return 0;
}

int proc_have(const char *prog)
{
	_cleanup_free_ char *exe = proc_find(prog);
	return exe != NULL;
}
