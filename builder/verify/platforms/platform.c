/* The platform table, and the lifecycle every row shares: media written
 * into the run's folder, services set up by the row and bound to loopback
 * ports, what they saw kept under a lock. Each row's emulation lives in its
 * own file here. */
#include "platform.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "platform_impl.h"

#include <libxml/parser.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Services one platform runs at most (Azure's wireserver; one metadata server elsewhere). */
#define PLATFORM_MAX_SERVICES 2

/* What real instances report (/sys/class/dmi/id). EC2 (Nitro): vendor and
 * board "Amazon EC2", product the instance type, UUID and serial the same
 * "ec2…" value (ds-identify wants both). The UUID is also the domain's. */
static const struct platform_ops table[] = {
	{
		.name = "nocloud", .channel = "nocloud", .description = "cloud-init NoCloud seed (cidata)",
		.make_media = nocloud_make_media,
	},
	{
		.name = "configdrive", .channel = "configdrive",
		.description = "OpenStack config drive (config-2) as Nutanix AHV attaches it",
		.smbios = { .manufacturer = "Nutanix", .product = "AHV" },
		.media_cdrom = true, .make_media = configdrive_make_media,
	},
	{
		.name = "openstack", .channel = "openstack", .description = "OpenStack metadata service",
		.net_prefix = PLATFORM_IMDS_NET, .host_addr = PLATFORM_IMDS_HOST,
		.smbios = { .manufacturer = "OpenStack Foundation", .product = "OpenStack Nova" },
		.start = openstack_start,
	},
	{
		.name = "ec2", .channel = "ec2", .description = "Amazon EC2 IMDSv2 (IMDSv1 disabled)",
		.net_prefix = PLATFORM_IMDS_NET, .host_addr = PLATFORM_IMDS_HOST,
		.smbios = { .manufacturer = "Amazon EC2", .product = "t3.micro",
			    .uuid = "ec2a61f4-7c3d-4b9e-8f21-5d0c6e9a3b72",
			    .serial = "ec2a61f4-7c3d-4b9e-8f21-5d0c6e9a3b72",
			    .board_manufacturer = "Amazon EC2" },
		.start = ec2_start,
	},
	{
		.name = "gce", .channel = "gce", .description = "Google Compute Engine metadata server",
		.net_prefix = PLATFORM_IMDS_NET, .host_addr = PLATFORM_IMDS_HOST,
		.smbios = { .manufacturer = "Google", .product = "Google Compute Engine",
			    .serial = "GoogleCloud-7A3C1E9F2B8D4C6A0E5F1D3B9C7A2E4F",
			    .board_manufacturer = "Google" },
		.start = gce_start,
	},
	{
		/* OCI VMs keep QEMU's own vendor and product; the asset tag names the cloud */
		.name = "oci", .channel = "oci", .description = "Oracle Cloud IMDSv2 (v1 disabled)",
		.net_prefix = PLATFORM_IMDS_NET, .host_addr = PLATFORM_IMDS_HOST,
		.smbios = { .asset_tag = "OracleCloud.com" },
		.start = oci_start,
	},
	{
		.name = "azure", .channel = "azure", .description = "Azure provisioning DVD and wireserver",
		.net_prefix = PLATFORM_WIRESERVER_NET, .host_addr = PLATFORM_WIRESERVER_HOST,
		/* Not the product "Virtual Machine" real Azure VMs report: with
		 * "Microsoft Corporation" it makes Linux's ata_piix leave IDE disks to
		 * Hyper-V's storvsc (piix_ignore_devices_quirk, a substring match), and
		 * QEMU has no VMBus, so the gen1 boot disk would vanish. QEMU's own
		 * product name stays; the asset tag is what identifies Azure. */
		.smbios = { .manufacturer = "Microsoft Corporation",
			    .asset_tag = "7783-7084-3265-9085-8269-3286-77",
			    .board_manufacturer = "Microsoft Corporation" },
		.media_cdrom = true, .needs_ready = true,
		.make_media = azure_make_media, .start = azure_start,
	},
	{
		.name = "vmware", .channel = "vmware", .description = "vSphere OVF environment (ISO transport)",
		.smbios = { .manufacturer = "VMware, Inc.", .product = "VMware7,1",
			    .board_manufacturer = "Intel Corporation" },
		.media_cdrom = true, .make_media = vmware_make_media,
	},
	{
		.name = "console", .channel = "console", .description = "the code typed at the console",
		.console = true,
	},
};

/* One registered service. */
struct platform_service {
	const char *addr;      /* guest-side address; static string */
	unsigned port;         /* guest-side port */
	httpd_handler handler; /* answers its requests */
	void *opaque;          /* handed to handler; owned through platform_own when it is state */
	struct httpd *httpd;   /* its server once listening, else NULL */
};

/* One run of one platform. */
struct platform {
	const struct platform_ops *ops;   /* the row; static */
	struct platform_env env;          /* copies of the caller's strings (below) */
	char *env_strings[6];             /* owned copies env points into */
	char *media;                      /* media image path, or NULL */
	struct platform_service services[PLATFORM_MAX_SERVICES]; /* registered by ops->start */
	struct platform_fwd fwds[PLATFORM_MAX_SERVICES];         /* what verify forwards, per service */
	size_t n_services;                /* entries used in services and fwds */
	void *state;                      /* the emulator's state, or NULL */
	void (*state_free)(void *);       /* frees state; may be NULL */
	pthread_mutex_t lock;             /* guards report (the servers' threads write it) */
	struct platform_report report;    /* what the services saw */
};

const struct platform_ops *platform_find(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* "nocloud, configdrive, ..." from the table, made once. */
static char platform_names_text[256];

static void platform_names_build(void)
{
	size_t off = 0;
	for (size_t i = 0; i < ELEMENTSOF(table); i++)
		off += (size_t)snprintf(platform_names_text + off, sizeof(platform_names_text) - off, "%s%s",
					i ? ", " : "", table[i].name);
}

const char *platform_names(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, platform_names_build);
	return platform_names_text;
}

const char *platform_net_prefix(const struct platform_ops *ops)
{
	return ops->net_prefix ? ops->net_prefix : PLATFORM_DEFAULT_NET;
}

const char *platform_host_addr(const struct platform_ops *ops)
{
	return ops->host_addr ? ops->host_addr : PLATFORM_DEFAULT_HOST;
}

static const char *platform_copy(struct platform *p, size_t slot, const char *s)
{
	return s ? (p->env_strings[slot] = xstrdup(s)) : NULL;
}

static int platform_check_env(const struct platform_ops *ops, const struct platform_env *env)
{
	const char *missing = !env->tmpdir ? "temporary folder" : !env->instance_id ? "instance id"
			    : !env->user_data ? "user-data" : !env->perscode ? "personalization code" : NULL;
	if (missing)
		return err_input("starting platform '%s': no %s", ops->name, missing);
	return 0;
}

int platform_prepare(const struct platform_ops *ops, const struct platform_env *env, struct platform **ret)
{
	if (platform_check_env(ops, env) < 0)
		return -1;
	struct platform *p = calloc(1, sizeof(*p));
	if (!p)
		return err_errno(ENOMEM, "starting platform '%s'", ops->name);
	p->ops = ops;
	pthread_mutex_init(&p->lock, NULL);
	p->env = (struct platform_env){
		.tmpdir = platform_copy(p, 0, env->tmpdir),
		.instance_id = platform_copy(p, 1, env->instance_id),
		.hostname = platform_copy(p, 2, env->hostname),
		.user_data = platform_copy(p, 3, env->user_data),
		.perscode = platform_copy(p, 4, env->perscode),
		.platform_url = platform_copy(p, 5, env->platform_url),
	};
	if (ops->make_media) {
		p->media = xasprintf("%s/platform-%s.img", p->env.tmpdir, ops->name);
		if (ops->make_media(&p->env, p->media) < 0)
			goto fail;
	}
	if (ops->start && ops->start(&p->env, p) < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	err_prefix("starting platform '%s'", ops->name);
	platform_stop(p);
	return -1;
}

int platform_start(const struct platform_ops *ops, const struct platform_env *env, struct platform **ret)
{
	struct platform *p;
	if (platform_prepare(ops, env, &p) < 0)
		return -1;
	/* libxml2 sets itself up once, before any server thread parses */
	xmlInitParser();
	for (size_t i = 0; i < p->n_services; i++) {
		struct platform_service *s = &p->services[i];
		const struct httpd_config c = { .handler = s->handler, .opaque = s->opaque };
		if (httpd_start(&c, &s->httpd) < 0) {
			err_prefix("starting platform '%s' service %s:%u", ops->name, s->addr, s->port);
			platform_stop(p);
			return -1;
		}
		p->fwds[i].local_port = httpd_port(s->httpd);
	}
	*ret = p;
	return 0;
}

const char *platform_media(const struct platform *p)
{
	return p->media;
}

size_t platform_fwds(const struct platform *p, const struct platform_fwd **ret)
{
	*ret = p->fwds;
	return p->n_services;
}

void platform_report(struct platform *p, struct platform_report *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->report;
	pthread_mutex_unlock(&p->lock);
}

void platform_stop(struct platform *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_services; i++)
		httpd_stop(p->services[i].httpd);
	if (p->state_free)
		p->state_free(p->state);
	for (size_t i = 0; i < ELEMENTSOF(p->env_strings); i++)
		free(p->env_strings[i]);
	free(p->media);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int platform_call(struct platform *p, const char *addr, unsigned port, const struct httpd_request *rq,
		  struct httpd_response *resp)
{
	for (size_t i = 0; i < p->n_services; i++) {
		const struct platform_service *s = &p->services[i];
		if (strcmp(s->addr, addr) == 0 && s->port == port) {
			s->handler(s->opaque, rq, resp);
			return 0;
		}
	}
	return err_input("calling platform '%s' at %s:%u: no service there", p->ops->name, addr, port);
}

int platform_serve(struct platform *p, const char *addr, unsigned port, httpd_handler handler, void *opaque)
{
	if (p->n_services == PLATFORM_MAX_SERVICES)
		return err_fail("setting up platform '%s' service %s:%u: too many services", p->ops->name, addr,
				port);
	p->services[p->n_services] = (struct platform_service){
		.addr = addr, .port = port, .handler = handler, .opaque = opaque,
	};
	p->fwds[p->n_services] = (struct platform_fwd){ .addr = addr, .port = port };
	p->n_services++;
	return 0;
}

void platform_own(struct platform *p, void *state, void (*free_fn)(void *))
{
	p->state = state;
	p->state_free = free_fn;
}

void platform_note_delivered(struct platform *p)
{
	pthread_mutex_lock(&p->lock);
	p->report.delivered = true;
	pthread_mutex_unlock(&p->lock);
}

void platform_note_refused(struct platform *p, const char *fmt, ...)
{
	pthread_mutex_lock(&p->lock);
	if (p->report.refused++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->report.refused_why, sizeof(p->report.refused_why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&p->lock);
}

void platform_note_ready(struct platform *p)
{
	pthread_mutex_lock(&p->lock);
	p->report.ready = true;
	pthread_mutex_unlock(&p->lock);
}

void platform_note_not_ready(struct platform *p, const char *fmt, ...)
{
	pthread_mutex_lock(&p->lock);
	if (!p->report.ready_detail[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->report.ready_detail, sizeof(p->report.ready_detail), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&p->lock);
}
