/* The libvirt domain that verification boots: a pure function from a small
 * description to domain XML, so it can be unit-tested without QEMU. */
#ifndef QVSA_DOMAIN_H
#define QVSA_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

/* Guest RAM and vCPUs for a verification boot unless the image's base says
 * otherwise (base_ops.verify_vcpus, verify_memory_mib). One vCPU: the tiny
 * base boots serially, and under TCG a second one only costs host CPU (its
 * bring-up and IPIs; measured 7.3 s instead of 8.4-9.0 s of QEMU CPU time up
 * to the agent), which the boots running side by side share. A base that
 * starts services in parallel wants 2 (FACTS: a stock Debian with cloud-init
 * takes ~30 s longer on one). */
#define DOMAIN_MEMORY_MIB 1024
#define DOMAIN_VCPUS 1
/* Every verification domain's name starts with this (stale ones are found by it). */
#define DOMAIN_NAME_PREFIX "qvsa-verify-"
/* QEMU's seccomp sandbox for a verification VM: libvirt's own set (obsolete
 * system calls, privilege changes, process creation and resource control
 * denied). */
#define DOMAIN_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
/* ... and for one whose guestfwd runs `qvsa __relay` (relay.h): slirp forks,
 * calls setsid() (a privilege change to QEMU's filter) and execs the relay,
 * so only those two groups are allowed. */
#define DOMAIN_SANDBOX_SPAWN "on,obsolete=deny,resourcecontrol=deny"

/* The SMBIOS identity the VM shows, as cloud-init's ds-identify and the agent
 * read it from /sys/class/dmi/id. Each string may be NULL (not set). */
struct domain_smbios {
	const char *manufacturer;       /* system manufacturer: sys_vendor */
	const char *product;            /* system product: product_name */
	const char *uuid;               /* system UUID: product_uuid; also the domain's <uuid> */
	const char *serial;             /* system serial: product_serial */
	const char *asset_tag;          /* chassis asset tag: chassis_asset_tag */
	const char *board_manufacturer; /* baseboard manufacturer: board_vendor */
};

/* A guest-side TCP address that QEMU's user network hands to a command:
 * QEMU runs the command once per guest connection, with the connection on
 * its stdin and stdout (guestfwd=tcp:ADDR:PORT-cmd:COMMAND). */
struct domain_fwd {
	const char *addr;    /* guest-side IPv4 address inside the guest network; required */
	unsigned port;       /* guest-side TCP port, 1..65535 */
	const char *command; /* command line (glib shell quoting), e.g. from relay_command(); required */
};

/* Longest unix socket path (sun_path holds 108 bytes with the NUL). */
#define DOMAIN_SOCKET_PATH_MAX 107

/* What to boot. Every string is borrowed from the caller and must stay valid
 * for the call; none is copied. */
struct domain_spec {
	const char *name;             /* domain name; required */
	const char *accel;            /* "kvm" or "tcg"; required */
	unsigned memory_mib;          /* 0: DOMAIN_MEMORY_MIB */
	unsigned vcpus;               /* 0: DOMAIN_VCPUS */
	const char *machine;          /* QEMU machine type "pc" | "q35"; required */
	bool uefi;                    /* boot through OVMF instead of SeaBIOS */
	const char *nvram_path;       /* UEFI variable store to create; required when uefi, else ignored */
	const char *disk_path;        /* absolute path of the image to boot; required */
	const char *disk_format;      /* its QEMU format, e.g. "qcow2"; required */
	const char *backing_path;     /* disk_path's backing image (the artifact), stated so libvirt
				       * neither probes nor relabels it; NULL: none */
	const char *backing_format;   /* its QEMU format; required with backing_path */
	const char *disk_bus;         /* virtio | scsi | sata | ide | nvme; required */
	const char *disk_controller;  /* scsi controller model (e.g. "vmpvscsi"); NULL: bus default */
	const char *seed_path;        /* media image (NoCloud seed, config drive, OVF or Azure DVD) attached
				       * after the boot disk; NULL: none */
	bool seed_cdrom;              /* attach seed_path as a CD-ROM where the bus has one (scsi, sata,
				       * ide); virtio and nvme have none: a read-only disk there */
	const char *nic_model;        /* libvirt NIC model, e.g. "virtio"; required */
	const struct domain_smbios *smbios; /* SMBIOS identity; NULL: QEMU's defaults */
	const char *net_prefix;       /* guest network for QEMU user networking (net=), e.g.
				       * "169.254.169.0/24"; NULL: QEMU's 10.0.2.0/24 */
	const char *net_host;         /* the host's address in it (host=), e.g. "169.254.169.2";
				       * NULL: QEMU's default (.2 of the network) */
	const struct domain_fwd *fwds; /* n_fwds guest addresses forwarded to commands; may be NULL when
				       * n_fwds is 0 */
	size_t n_fwds;                /* entries in fwds */
	const char *console_path;     /* serial console log file; required unless console_stream */
	const char *console_socket;   /* unix socket QEMU listens on for the serial console, so text can
				       * be typed (console_type); the log still goes to console_path;
				       * NULL: the serial writes only the file */
	bool no_relabel;              /* QEMU runs as root (embedded driver): skip libvirt's
				       * DAC relabelling and its xattrs on our files */
	const char *pool;             /* storage pool holding disk_volume and seed_volume (a libvirt
				       * that shares no files with us, remote.h): libvirt disks name
				       * <source pool= volume=>; NULL: files by path */
	const char *disk_volume;      /* the boot disk's volume in pool (disk_path is still its path on
				       * the libvirt host, for the nvme bus); required with pool */
	const char *seed_volume;      /* the media's volume in pool; required with pool and seed_path */
	bool console_stream;          /* the serial is a pty, read and typed on through libvirt's console
				       * stream (vm_start_console); console_path and console_socket
				       * are then unused */
};

/* The domain XML for spec. Returns 0, or -1 with an error recorded for an
 * unknown accel or bus or a missing field. *ret_xml (caller frees) is written
 * only on success. */
int domain_xml(const struct domain_spec *spec, char **ret_xml) __attribute__((nonnull));

/* True if libvirt 9.0 can name this QEMU disk format in domain XML (it has
 * no "vhdx", although QEMU reads it). */
bool domain_format_known(const char *format) __attribute__((nonnull));

/* True if libvirt/QEMU here can emulate this disk bus. */
bool domain_bus_supported(const char *bus);

/* Human summary of the emulated devices, e.g. "virtio-blk + virtio-net" or
 * "pvscsi + vmxnet3", written to buf (always NUL-terminated). */
void domain_devices(const char *bus, const char *controller, const char *nic_model, char *buf, size_t len)
	__attribute__((nonnull(4)));

/* Text with & < > ' " replaced by XML entities. Caller frees; never NULL. */
char *domain_xml_escape(const char *s) __attribute__((nonnull, returns_nonnull));

#endif
