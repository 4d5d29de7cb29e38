/* qvsa-agent's platform channels (docs/channels.md): how the agent finds out
 * where it runs (DMI, labelled media) and takes the personalization code from
 * that platform's own channel. One constant table row per channel
 * (channel.c), one file per channel family (ch_*.c). */
#ifndef QVSA_AGENT_CHANNEL_H
#define QVSA_AGENT_CHANNEL_H

#include "agent.h"

/* ---- platform identity (dmi.c) ---- */

/* The SMBIOS strings the kernel shows in /sys/class/dmi/id. */
struct agent_dmi {
	char *sys_vendor;        /* owned, trimmed; "" when absent, never NULL once read */
	char *product_name;      /* owned, as above */
	char *product_uuid;      /* owned, as above */
	char *product_serial;    /* owned, as above */
	char *chassis_asset_tag; /* owned, as above */
	char *board_vendor;      /* owned, as above */
};

/* Read the files in <root>/sys/class/dmi/id; a missing or unreadable file is "". */
void agent_dmi_read(const char *root, struct agent_dmi *ret);
void agent_dmi_free(struct agent_dmi *d);
/* Whether DMI names each platform (the rules of docs/channels.md). */
bool agent_dmi_openstack(const struct agent_dmi *d);
bool agent_dmi_ec2(const struct agent_dmi *d);
bool agent_dmi_gce(const struct agent_dmi *d);
bool agent_dmi_oci(const struct agent_dmi *d);
bool agent_dmi_azure(const struct agent_dmi *d);

/* ---- media (media.c) ---- */

/* What sits on a medium, as far as its first sectors tell. */
enum agent_fs {
	AGENT_FS_NONE,    /* nothing recognised */
	AGENT_FS_ISO9660, /* a primary volume descriptor (maybe with UDF beside it) */
	AGENT_FS_UDF,     /* UDF only (Azure's provisioning DVD) */
	AGENT_FS_VFAT,    /* FAT12/16/32 */
	AGENT_FS_DIR,     /* a directory standing in for a mounted medium */
};

/* One medium that may carry a channel's files. */
struct agent_medium {
	enum agent_fs fs;  /* what it holds */
	bool udf;          /* a UDF volume recognition sequence is present (mount udf first) */
	char label[33];    /* ISO9660 volume id, UDF volume id or FAT label, trimmed; "" if none */
	char name[64];     /* block device name ("sr0"), or "dir" */
	char source[512];  /* a directory (AGENT_FS_DIR), else the /sys/class/block name to mount */
};

/* The media found at one moment. */
struct agent_media {
	size_t n;                     /* entries used */
	struct agent_medium m[16];    /* in discovery order */
};

/* Recognise the filesystem on fd (ISO9660, UDF, FAT) and its label. */
int agent_fs_probe(int fd, struct agent_medium *ret);
/* Add a directory as a mounted medium with the given label. */
void agent_media_add_dir(struct agent_media *media, const char *dir, const char *label);
/* Add every subdirectory of dir as a medium labelled with its name (testing). */
int agent_media_add_dirs(struct agent_media *media, const char *dir);
/* Scan /sys/class/block once and add every medium with a recognised filesystem. */
int agent_media_scan(struct agent_media *media);
/* Make m's files readable: a directory is used as it is, a device is mounted
 * read-only at mountpoint. ret_dir (PATH_MAX) receives the directory. */
int agent_medium_open(const struct agent_medium *m, const char *mountpoint, char *ret_dir, size_t size);
/* Undo agent_medium_open (unmount; nothing for a directory). */
void agent_medium_close(const struct agent_medium *m, const char *mountpoint);
/* Read dir/rel, at most 1 MiB. missing_ok: return 1 when it does not exist. */
int agent_medium_read(const char *dir, const char *rel, bool missing_ok, char **ret_text);

/* ---- small parsers (base64.c, xmltext.c) ---- */

/* Strict standard base64 (blanks and line breaks between groups allowed,
 * padding required, no stray bits). The result is NUL-terminated and must not
 * contain NUL bytes (it is text). */
int agent_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);

/* Text of the first element at path ("A/B/C", local names, namespace
 * prefixes ignored), entities decoded, blanks trimmed. The whole document
 * must be well-formed. 0 and a new string; 1 when absent; -1 if malformed. */
int agent_xml_text(const char *doc, const char *path, char **ret);
/* OVF environment property: the value= of the first
 * Environment/PropertySection/Property whose key= is key. 0, 1, -1 as above. */
int agent_xml_ovf_property(const char *doc, const char *key, char **ret);
/* s with & < > " ' escaped for XML text or attributes (new string). */
char *agent_xml_escape(const char *s);

/* ---- metadata services (meta.c) ---- */

/* Where a channel talks to and how the run is set up; all borrowed. */
struct agent_chan_env {
	const char *root;                 /* --root prefix, "" on the appliance */
	const char *mountpoint;           /* where device media are mounted */
	const char *metadata_host;        /* metadata service address ("169.254.169.254") */
	uint16_t metadata_port;           /* its port (80) */
	const char *wireserver_host;      /* Azure wireserver address ("168.63.129.16") */
	uint16_t wireserver_port;         /* its port (80) */
	int meta_pause_ms;                /* pause between metadata attempts (1000) */
	int console_fds[2];               /* terminals the console channel uses; -1 unused */
	const char *console_paths[2];     /* terminals to open when console_fds are unused; NULL unused */
	const char *image_platform_url;   /* the image's PLATFORM_URL (shown at the prompt), or NULL */
};

#define AGENT_META_MAX (1u << 20)

/* One request to a metadata service: METHOD path with the extra header lines
 * headers ("Name: value\r\n"..., may be NULL) and body (may be NULL). Connect
 * timeout 2 s, 3 attempts for connection failures, 3xx refused. 0 with the
 * status and a new body; -1 with the reason recorded. */
int agent_meta_request(const struct agent_chan_env *env, const char *host, uint16_t port,
		       const char *method, const char *path, const char *headers, const char *body,
		       int *ret_status, char **ret_body);
/* The request bytes agent_meta_request sends (new string; public for tests). */
char *agent_meta_build(const char *host, uint16_t port, const char *method, const char *path,
		       const char *headers, const char *body);

/* ---- channels (channel.c, ch_*.c) ---- */

/* What a channel handed over. Everything owned; wiped and freed by
 * agent_delivery_free. */
struct agent_delivery {
	char *user_data;    /* user-data text (may hold the code), or NULL */
	char *perscode;     /* the code given directly (OVF property, console), or NULL */
	char *platform_url; /* platform URL given directly, or NULL */
	char *ca_pem;       /* extra CA PEM given directly (console), or NULL */
};
void agent_delivery_free(struct agent_delivery *d);

/* One channel: a constant table row. */
struct agent_channel {
	const char *name;               /* "ec2": status line, logs, docs */
	const char *datasources[3];     /* cloud-init datasource names that select it; NULL-terminated */
	bool network;                   /* reads a metadata service: needs DMI and the network */
	bool last_resort;               /* always planned, always last (console) */
	/* DMI names the platform; NULL when DMI is not a condition. */
	bool (*identify)(const struct agent_dmi *dmi);
	/* m is this channel's medium; NULL when the channel has none. */
	bool (*medium)(const struct agent_medium *m);
	/* Take the delivery; m is the medium found (NULL for the others).
	 * 0 delivered, 1 nothing here (next channel), -1 present but broken. */
	int (*fetch)(const struct agent_chan_env *env, const struct agent_medium *m,
		     struct agent_delivery *ret);
	/* Tell the platform the VM is up, once the network is; NULL if not needed. */
	int (*ready)(const struct agent_chan_env *env);
};

/* Every channel, in the default order. */
size_t agent_channels(const struct agent_channel *const **ret);
const struct agent_channel *agent_channel_find(const char *name);

/* The channels to try, in order, each with its medium. */
struct agent_plan {
	size_t n;                                /* entries used */
	const struct agent_channel *ch[16];      /* borrowed table rows */
	const struct agent_medium *medium[16];   /* borrowed from the media list, or NULL */
};

/* Order the table by the datasource_list in cfg (the text of
 * 90-qvsa-datasource.cfg, or NULL when the file is absent: all channels),
 * keep media channels whose medium is in media and network channels DMI
 * names, console last. -1 if cfg is malformed. */
int agent_plan_make(const char *cfg, const struct agent_dmi *dmi, const struct agent_media *media,
		    struct agent_plan *ret);
/* Whether finding media is worth waiting for (drivers may still be probing). */
enum agent_media_wait {
	AGENT_MEDIA_DONE = 0, /* a listed media channel has its medium, or none could have one */
	AGENT_MEDIA_MAYBE,    /* a channel any platform may offer lacks its medium (NoCloud, config
			       * drive, OVF): worth waiting only while block devices still appear */
	AGENT_MEDIA_EXPECTED, /* DMI names a platform whose channel comes on a medium (Azure's DVD)
			       * and it is not there yet: worth waiting for */
};
enum agent_media_wait agent_plan_media_wait(const char *cfg, const struct agent_dmi *dmi,
					    const struct agent_media *media);

/* What running the plan produced. */
struct agent_run {
	bool bring_up_network;                /* in: run DHCP before the first network channel */
	bool network_up;                      /* out: DHCP ran and succeeded */
	const struct agent_channel *channel;  /* out: the channel that delivered the code, or NULL */
	struct agent_userdata ud;             /* out: its user-data with direct values applied (code wiped on free) */
	size_t reached;                       /* out: plan entries tried (ready is due for those) */
	const char *stage;                    /* out: failing stage ("channel", "network", "code") */
};

/* Try the plan's channels in order until one delivers a code. -1 with
 * run->stage and the reason recorded. */
int agent_channels_run(const struct agent_chan_env *env, const struct agent_plan *plan,
		       struct agent_run *run);
/* Report Ready for each channel tried that needs it; failures are printed
 * and do not count. */
void agent_channels_ready(const struct agent_chan_env *env, const struct agent_plan *plan,
			  const struct agent_run *run);
void agent_run_free(struct agent_run *run);

/* The channel functions, public for the tests. */
int agent_ch_nocloud(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_configdrive(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_openstack(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_ec2(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_gce(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_oci(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_azure(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_azure_ready(const struct agent_chan_env *env);
int agent_ch_vmware(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
int agent_ch_console(const struct agent_chan_env *env, const struct agent_medium *m, struct agent_delivery *ret);
/* Azure: user-data from ovf-env.xml text; 1 when it has no CustomData. */
int agent_azure_ovf_parse(const char *xml, char **ret_user_data);
/* Azure: the Health report for a goal state document (new string). */
int agent_azure_health(const char *goal_state, char **ret_xml);
/* vSphere: the delivery from ovf-env.xml text. */
int agent_vmware_ovf_parse(const char *xml, struct agent_delivery *ret);

/* ---- after cloud-init (cloudinit.c) ---- */

/* The datasource line and the raw user-data cloud-init stored under
 * root/var/lib/cloud/instance; each NULL when its file does not exist. */
int agent_cloudinit_read(const char *root, char **ret_datasource, char **ret_user_data);
/* The channel whose datasources name the class in a datasource line
 * ("DataSourceEc2Local: ..." is Ec2: ec2), or NULL when no channel does (an
 * unknown class, DataSourceNone, a malformed line). ret_name receives the
 * class name as written, for messages. */
const struct agent_channel *agent_cloudinit_channel(const char *datasource, char *ret_name, size_t size);
/* Take the code from cloud-init's user-data for ch: 0 with run->channel and
 * run->ud set; 1 when user_data is NULL, blank or holds no code at all
 * (fall back to the channels); -1 when it holds a broken qvsa: section
 * (run->stage "code", run->channel ch, the reason recorded). */
int agent_cloudinit_take(const struct agent_channel *ch, const char *user_data, struct agent_run *run);
/* plan with ch first (with its medium; left out when it needs one and none
 * is in media), ch's own entry removed from the rest. */
void agent_cloudinit_plan(const struct agent_channel *ch, const struct agent_media *media,
			  const struct agent_plan *plan, struct agent_plan *ret);

/* ---- status (record.c) ---- */

/* Status lines naming the channel that delivered (channel may be NULL). */
char *agent_status_success_via(const char *version, const char *channel, const struct agent_components *c);
char *agent_status_failure_via(const char *stage, const char *channel, const char *reason);

#endif
