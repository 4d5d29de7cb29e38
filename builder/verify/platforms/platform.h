/* How verification plays each platform a target ships to: the identity the
 * VM shows (SMBIOS), the media the platform attaches, the metadata services
 * it runs at their real addresses, and what the guest must do there. One
 * constant table of operations per platform (one file each in this folder);
 * a target names its row with verify.platform. */
#ifndef QVSA_PLATFORM_H
#define QVSA_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The SMBIOS strings a platform's VMs carry (what cloud-init's ds-identify
 * and the agent read from /sys/class/dmi/id). Each may be NULL. */
struct platform_smbios {
	const char *manufacturer;       /* system manufacturer: sys_vendor */
	const char *product;            /* system product: product_name */
	const char *uuid;               /* system UUID: product_uuid (also the domain's UUID) */
	const char *serial;             /* system serial: product_serial */
	const char *asset_tag;          /* chassis asset tag: chassis_asset_tag */
	const char *board_manufacturer; /* baseboard manufacturer: board_vendor */
};

/* What one verification hands its platform. All borrowed for the call:
 * platform_start/platform_prepare keep copies for the services' lifetime. */
struct platform_env {
	const char *tmpdir;       /* the run's temporary folder; media are written here; required */
	const char *instance_id;  /* deterministic instance id (meta-data, goal state); required */
	const char *hostname;     /* guest host name; may be NULL */
	const char *user_data;    /* cloud-config to deliver: qvsa: (perscode, platform_url), ca_certs:, power_state:; required */
	const char *perscode;     /* the code alone (OVF property, console); required */
	const char *platform_url; /* the stub's URL (OVF property qvsa.platform_url); may be NULL */
};

/* A metadata service address in the guest's network, forwarded by QEMU to a
 * server on the host's loopback. */
struct platform_fwd {
	const char *addr;    /* guest-side address, e.g. "169.254.169.254" */
	unsigned port;       /* guest-side port, e.g. 80 */
	uint16_t local_port; /* the emulator's port on 127.0.0.1 */
};

/* What the emulation saw (strings inside, always NUL-terminated). */
struct platform_report {
	bool delivered;          /* a metadata service served the user-data (media channels: false) */
	unsigned refused;        /* requests refused for breaking the platform's rules */
	char refused_why[256];   /* the first refusal, e.g. "GET /latest/user-data without a token (IMDSv1)" */
	bool ready;              /* Azure: a valid Ready health report arrived */
	char ready_detail[256];  /* why a health report was not accepted, or "" */
};

struct platform;
struct platform_ops;
struct httpd_request;
struct httpd_response;

/* Public facts of one platform (the table row). */
struct platform_ops {
	const char *name;        /* verify.platform in a target file, e.g. "ec2" */
	const char *channel;     /* the agent channel that must deliver the code, e.g. "ec2" */
	const char *description; /* one line for docs and messages */
	const char *net_prefix;  /* the guest's network (QEMU net=), e.g. "169.254.169.0/24"; NULL: 10.0.2.0/24 */
	const char *host_addr;   /* the host's loopback seen from that network, e.g. "169.254.169.2"; NULL: 10.0.2.2 */
	struct platform_smbios smbios; /* the identity the VM shows */
	bool media_cdrom;        /* media go in as a CD-ROM where the disk bus has one */
	bool console;            /* no channel: verify types the answers at the agent's console prompt */
	bool needs_ready;        /* the guest must report Ready (Azure's wireserver) */
	/* Write the platform's media image to path; NULL when it has none. */
	int (*make_media)(const struct platform_env *env, const char *path);
	/* Set up the platform's metadata services with platform_serve (see
	 * platform_impl.h); platform_start then makes them listen. env is p's
	 * own copy, valid until platform_stop. NULL when it has none. */
	int (*start)(const struct platform_env *env, struct platform *p);
};

/* The guest network (QEMU net=) and the host's address in it, defaults
 * resolved: every caller reads them here, never from the row directly. */
const char *platform_net_prefix(const struct platform_ops *ops);
const char *platform_host_addr(const struct platform_ops *ops);

/* The row called name, or NULL. */
const struct platform_ops *platform_find(const char *name);
/* Every name, comma separated, for messages ("nocloud, configdrive, ..."). */
const char *platform_names(void);

/* Run the platform for one verification: media written into env->tmpdir,
 * services started. Returns 0, or -1 with an error recorded. */
int platform_start(const struct platform_ops *ops, const struct platform_env *env, struct platform **ret);
/* The media image to attach, or NULL. */
const char *platform_media(const struct platform *p);
/* The forwarded service addresses (owned by p). */
size_t platform_fwds(const struct platform *p, const struct platform_fwd **ret);
/* What the services saw so far. */
void platform_report(struct platform *p, struct platform_report *ret);
/* Stop the services, free; accepts NULL. Media files stay (they are in tmpdir). */
void platform_stop(struct platform *p);

/* platform_start without listening: media written, services set up but
 * not bound (platform_fwds reports local port 0). For unit tests, which
 * hand requests to the services with platform_call. Stop with platform_stop. */
int platform_prepare(const struct platform_ops *ops, const struct platform_env *env, struct platform **ret);
/* Hand one request to the service at guest address addr:port, exactly as
 * its server would. resp must be zeroed; the caller frees resp->body.
 * Returns 0, or -1 with an error recorded when no service is there. */
int platform_call(struct platform *p, const char *addr, unsigned port, const struct httpd_request *rq,
		  struct httpd_response *resp);

#endif
