/* The OVF 1.0 descriptor inside a qVSA OVA: written from a few parameters,
 * and read back for the OVA's check by a small XML reader that insists on
 * well-formed XML. */
#ifndef QVSA_OVF_H
#define QVSA_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The appliance an OVF descriptor describes. */
struct ovf_params {
	const char *version;     /* "qVSA-X.Y": Name, FullVersion; Version is X.Y */
	const char *vendor;      /* ProductSection Vendor */
	const char *disk_file;   /* OVA member holding the stream-optimized VMDK */
	uint64_t disk_file_size; /* its size in bytes (File ovf:size) */
	uint64_t capacity;       /* virtual disk size in bytes (Disk ovf:capacity) */
	bool uefi;               /* boot with EFI firmware instead of BIOS */
	const char *hw_version;  /* virtual hardware version: VirtualSystemType vmx-N */
	unsigned cpus;           /* virtual CPUs */
	unsigned memory_mib;     /* memory in MiB */
	unsigned os_id;          /* OperatingSystemSection ovf:id (CIM OSType), e.g. 96 "Debian 64-Bit" */
	const char *os_type;     /* vmw:osType, e.g. "debian10_64Guest" */
	const char *os_description; /* its Description: the image's PRETTY_NAME, e.g. "qVSA 1.0" */
	const char *network;     /* logical network name, e.g. "VM Network" */
};

/* The ProductSection class of qVSA's own properties: vSphere hands each to
 * the guest as CLASS.KEY in the OVF environment. */
#define OVF_CLASS "qvsa"
/* Key (class.key) of the OVF property that carries the personalization code. */
#define OVF_PERSCODE_KEY OVF_CLASS ".perscode"
/* Key of the base64 cloud-config property: cloud-init's OVF datasource
 * convention, so it stands in a ProductSection without a class. */
#define OVF_USER_DATA_KEY "user-data"

/* The descriptor text, newly allocated. Deterministic: no dates, no ids. */
char *ovf_write(const struct ovf_params *p);

#define OVF_MAX_FILES 8

/* One entry of the References section. */
struct ovf_file {
	char *id;      /* ovf:id */
	char *href;    /* ovf:href: the OVA member's name */
	uint64_t size; /* ovf:size in bytes */
};

/* What the OVA check needs from a descriptor. Strings are owned; NULL if absent. */
struct ovf_info {
	struct ovf_file files[OVF_MAX_FILES]; /* References, in order */
	size_t n_files;                       /* entries in files */
	uint64_t capacity;                    /* the first Disk's capacity in bytes */
	char *disk_file_ref;                  /* its ovf:fileRef */
	char *disk_format;                    /* its ovf:format URI */
	char *version;                        /* ProductSection Version */
	char *full_version;                   /* ProductSection FullVersion */
	bool has_perscode;                    /* user-configurable property OVF_PERSCODE_KEY */
	bool has_user_data;                   /* user-configurable property OVF_USER_DATA_KEY */
	bool iso_transport;                   /* VirtualHardwareSection ovf:transport lists "iso" */
	unsigned os_id;                       /* OperatingSystemSection ovf:id (0 if absent) */
	char *os_description;                 /* its Description */
	bool has_pvscsi;                      /* a ResourceType 6 VirtualSCSI controller */
	bool has_vmxnet3;                     /* a ResourceType 10 VmxNet3 NIC */
};

/* Parse a descriptor (len bytes, not NUL-terminated necessarily) and fill
 * *ret. Not well-formed XML, or a missing section or element, records an
 * error "OVF descriptor 'what': line N: reason". */
int ovf_read(const char *xml, size_t len, const char *what, struct ovf_info *ret);
void ovf_info_clear(struct ovf_info *i);

#endif
