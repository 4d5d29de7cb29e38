/* cloud-init NoCloud seeds: user-data / meta-data text and the "cidata"
 * ISO9660 image verification attaches to the VM. Nothing random or
 * wall-clock goes into a seed: the same parameters give the same bytes. */
#ifndef QVSA_SEED_H
#define QVSA_SEED_H

#include <stdbool.h>

/* What goes into a seed. */
struct seed_params {
	const char *instance_id;  /* meta-data instance-id; required */
	const char *hostname;     /* meta-data local-hostname; may be NULL */
	const char *perscode;     /* personalization code (digits); required */
	const char *platform_url; /* overrides the image's platform URL; may be NULL */
	const char *proxy;        /* HTTP proxy URL for the agent; may be NULL */
	const char *ca_pem;       /* CA certificate(s), PEM, for user-data ca_certs: trusted:; may be NULL */
	bool poweroff;            /* add cloud-init power_state: poweroff after first boot */
};

/* The #cloud-config user-data document (qvsa: section, ca_certs: when
 * ca_pem is set, power_state: when poweroff is). Caller frees. */
int seed_user_data(const struct seed_params *p, char **ret_text);
/* The meta-data document. Caller frees. */
int seed_meta_data(const struct seed_params *p, char **ret_text);
/* Write an ISO9660 (+Rock Ridge/Joliet) image with volume id "cidata" holding
 * user-data and meta-data, to path (atomically). */
int seed_write_iso(const struct seed_params *p, const char *path);
/* The same image from documents already made (the platforms hand their own
 * user-data). */
int seed_write_iso_docs(const char *user_data, const char *meta_data, const char *path);

#endif
