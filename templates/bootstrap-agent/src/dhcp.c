/* Network bring-up: interfaces up, then busybox udhcpc on each Ethernet
 * interface until one gets a lease. Addresses, routes and resolv.conf are
 * applied by /usr/share/udhcpc/default.script. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define AGENT_BUSYBOX "/bin/busybox"
#define AGENT_UDHCPC_SCRIPT "/usr/share/udhcpc/default.script"

static int agent_link_up(const char *ifname)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return agent_fail_errno(errno, "setting '%s' up", ifname);
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (r == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	int e = errno;
	close(fd);
	return r < 0 ? agent_fail_errno(e, "setting '%s' up", ifname) : 0;
}

/* Ethernet interfaces only (ARPHRD_ETHER == 1): skips lo, sit0, tunnels. */
static int agent_is_ether(const struct dirent *d)
{
	char path[512], *type = NULL;
	if (d->d_name[0] == '.' || strcmp(d->d_name, "lo") == 0)
		return 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/type", d->d_name);
	if (agent_read_file(path, 64, &type) < 0)
		return 0;
	int ok = atoi(type) == 1;
	free(type);
	return ok;
}

/* A NIC set up reports its link (carrier) a moment later: e1000's watchdog
 * takes ~1-2 s. What it sends before is dropped, so a DHCP discover sent at
 * once is lost and udhcpc's next one comes only after its -T pause. Wait for
 * the carrier, but not forever: a driver may not report one. */
#define AGENT_CARRIER_WAIT_MS 5000
#define AGENT_CARRIER_POLL_MS 50

static void agent_wait_carrier(const char *ifname)
{
	char path[512];
	snprintf(path, sizeof(path), "/sys/class/net/%s/carrier", ifname);
	for (int waited = 0; waited < AGENT_CARRIER_WAIT_MS; waited += AGENT_CARRIER_POLL_MS) {
		char *text = NULL;
		bool up = agent_read_file(path, 16, &text) == 0 && atoi(text) == 1;
		free(text);
		if (up)
			return;
		usleep(AGENT_CARRIER_POLL_MS * 1000);
	}
}

static int agent_dhcp(const char *ifname)
{
	char *const argv[] = { AGENT_BUSYBOX, "udhcpc", "-i", (char *)ifname, "-n", "-q",
			       "-t", "5", "-T", "2", "-s", AGENT_UDHCPC_SCRIPT, NULL };
	return agent_run(argv, false);
}

int agent_network_up(unsigned rounds, char *ret_ifname, size_t ifname_size)
{
	struct agent_buf tried = { 0 }; /* ", "-separated interface names, for the error */
	agent_link_up("lo"); /* best effort: nothing here needs loopback */
	for (unsigned round = 1; round <= rounds; round++) {
		struct dirent **names = NULL;
		int n = scandir("/sys/class/net", &names, agent_is_ether, alphasort);
		if (n < 0)
			return agent_fail_errno(errno, "listing '/sys/class/net'");
		int found = -1;
		for (int i = 0; i < n && found < 0; i++) {
			const char *ifname = names[i]->d_name;
			if (round == 1)
				agent_buf_printf(&tried, "%s%s", tried.len ? ", " : "", ifname);
			if (agent_link_up(ifname) < 0) {
				fprintf(stderr, "qvsa-agent: %s\n", agent_error());
				continue;
			}
			agent_wait_carrier(ifname);
			fprintf(stderr, "qvsa-agent: DHCP on %s (round %u/%u)\n", ifname, round, rounds);
			if (agent_dhcp(ifname) == 0)
				found = i;
		}
		if (found >= 0)
			snprintf(ret_ifname, ifname_size, "%s", names[found]->d_name);
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
		if (found >= 0) {
			agent_buf_free(&tried);
			return 0;
		}
		if (round < rounds)
			sleep(2); /* the NIC driver may still be probing, or the DHCP server slow */
	}
	if (tried.len == 0)
		agent_fail("no Ethernet interface appeared besides lo");
	else
		agent_fail("no DHCP lease on %s after %u rounds", tried.data, rounds);
	agent_buf_free(&tried);
	return -1;
}
