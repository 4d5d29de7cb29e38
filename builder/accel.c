#include "accel.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

extern char **environ;

#define PROBE_TIMEOUT_S 20
#define QEMU_BINARY "qemu-system-x86_64"

int accel_check_arg(const char *want)
{
	if (strcmp(want, "auto") && strcmp(want, "kvm") && strcmp(want, "tcg"))
		return err_input("--accel '%s': expected auto, kvm or tcg", want);
	return 0;
}

/* Boot vmlinuz under KVM with no root filesystem: a working KVM prints the
 * kernel banner on the serial port within a second or two (then the kernel
 * panics and -no-reboot ends QEMU); a broken one prints nothing. */
static int probe_kvm(const char *vmlinuz)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 0;
	const char *argv[] = {QEMU_BINARY, "-accel", "kvm", "-machine", "pc", "-cpu", "host", "-m", "256",
			      "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
			      "-nodefaults", "-kernel", vmlinuz, "-append", "console=ttyS0 panic=-1 loglevel=4", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, QEMU_BINARY, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return 0;
	}
	char buf[8192];
	size_t len = 0;
	int works = 0;
	double t0 = now_monotonic();
	while (!works && !qvsa_interrupted) {
		int left = (int)((PROBE_TIMEOUT_S - (now_monotonic() - t0)) * 1000);
		if (left <= 0)
			break;
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, left) <= 0)
			continue;
		ssize_t r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		if (strstr(buf, "Linux version"))
			works = 1;
		if (len > sizeof(buf) / 2) { /* keep the tail; the banner is short */
			memmove(buf, buf + len - 64, 64);
			len = 64;
		}
	}
	close(pfd[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return works;
}

int accel_resolve(const char *want, const char *cache_dir, const char *vmlinuz, const char **ret)
{
	if (accel_check_arg(want) < 0)
		return -1;
	if (strcmp(want, "tcg") == 0) {
		*ret = "tcg";
		return 0;
	}
	bool have_dev = access("/dev/kvm", R_OK | W_OK) == 0;
	if (strcmp(want, "kvm") == 0) {
		if (!have_dev)
			return err_input("--accel kvm: /dev/kvm is missing or not accessible");
		*ret = "kvm";
		return 0;
	}
	if (!have_dev) {
		log_notice("KVM not available (/dev/kvm missing): using TCG software emulation (slower)");
		*ret = "tcg";
		return 0;
	}

	/* Cache the verdict: a probe costs up to PROBE_TIMEOUT_S when KVM is broken. */
	struct utsname u;
	uname(&u);
	struct stat kst = {0};
	stat(vmlinuz, &kst);
	char key[65];
	_cleanup_free_ char *keytext = xasprintf("%s %s %lld %lld", u.release, vmlinuz, (long long)kst.st_size,
						 (long long)kst.st_mtime);
	sha256_hex(keytext, strlen(keytext), key);
	_cleanup_free_ char *path = xasprintf("%s/accel-probe-%.16s", cache_dir, key);
	_cleanup_free_ char *cached = NULL;
	bool works;
	if (fs_exists(path) && fs_read_file(path, &cached, NULL) == 0 &&
	    (strncmp(cached, "kvm", 3) == 0 || strncmp(cached, "tcg", 3) == 0)) {
		works = strncmp(cached, "kvm", 3) == 0;
	} else {
		err_clear();
		double t0 = log_phase_begin("accel", "probing KVM with a short boot (up to %ds, once)", PROBE_TIMEOUT_S);
		works = probe_kvm(vmlinuz);
		log_phase_end("accel", t0, true);
		if (check_interrupted() < 0)
			return -1;
		fs_mkdir_p(cache_dir, 0755);
		if (fs_write_file_atomic(path, works ? "kvm\n" : "tcg\n", 4, 0644) < 0)
			err_clear(); /* a cache we cannot write only costs a probe next time */
	}
	if (works) {
		*ret = "kvm";
	} else {
		log_notice("KVM is present but a probe guest did not boot under it: using TCG (slower)");
		*ret = "tcg";
	}
	return 0;
}
