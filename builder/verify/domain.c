#include "domain.h"

#include "cleanup.h"
#include "err.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* How one disk bus is expressed for libvirt 9.0 / QEMU 7.2. */
struct bus_info {
	const char *name;       /* libvirt bus name (or "nvme") */
	const char *dev_prefix; /* target dev prefix: vd, sd, hd; NULL when not a libvirt disk */
	const char *cdrom_dev;  /* target dev of the media as a CD-ROM; NULL: the bus has no CD-ROM */
	const char *summary;    /* emulated controller as QEMU names it, for messages */
	bool readonly_ok;       /* QEMU accepts a read-only disk here (ide-hd refuses one) */
	bool needs_pc;          /* only the i440fx machine has this controller */
};

/* libvirt 9.0 has no NVMe disk bus, so nvme is passed to QEMU as extra
 * arguments. virtio-blk and NVMe have no CD-ROM device: media go in as a
 * read-only disk there. On IDE the CD-ROM is the secondary master (hdc),
 * where PCs have always had it. */
static const struct bus_info buses[] = {
	{"virtio", "vd", NULL, "virtio-blk", true, false},
	{"scsi", "sd", "sdb", "scsi", true, false},
	{"sata", "sd", "sdb", "ahci", false, false},
	{"ide", "hd", "hdc", "ide", false, true},
	{"nvme", NULL, NULL, "nvme", true, false},
};

/* NIC models: libvirt's name, QEMU's device when the NIC is passed as QEMU
 * arguments (a guest network with forwards), and the name in the summary. */
static const struct nic_info {
	const char *model;   /* libvirt <model type=...> as a target names it */
	const char *device;  /* QEMU -device driver */
	const char *summary; /* for messages */
} nics[] = {
	{"virtio", "virtio-net-pci", "virtio-net"}, {"e1000", "e1000", "e1000"},
	{"e1000e", "e1000e", "e1000e"},             {"vmxnet3", "vmxnet3", "vmxnet3"},
	{"rtl8139", "rtl8139", "rtl8139"},
};

/* Every NIC goes without its option ROM (iPXE): verify boots from the disk,
 * and under TCG the firmware's loading and starting iPXE costs ~1 s of every
 * boot (NIC_NO_ROM names the rule for the two ways a NIC is written). */
/* PCI slot of a NIC passed as QEMU arguments: free on both pc and q35 (q35's
 * own devices sit at 0x1f, the NVMe disks at 0x1d/0x1e) and far above the
 * low slots libvirt hands out. */
#define NIC_SLOT 0x1c
/* netdev id of that NIC. */
#define NIC_NETDEV "qvsa-net0"

/* PCI slot of the first NVMe controller (the seed's is the next). */
#define NVME_FIRST_SLOT 0x1d

/* SCSI controller models as QEMU calls the device (libvirt model -> device). */
static const struct {
	const char *model;
	const char *device;
} scsi_models[] = {
	{"virtio-scsi", "virtio-scsi"}, {"vmpvscsi", "pvscsi"},   {"lsilogic", "lsi53c895a"},
	{"lsisas1068", "mptsas1068"},   {"lsisas1078", "megasas"},
};

static const struct nic_info *nic_find(const char *model)
{
	for (size_t i = 0; model && i < ELEMENTSOF(nics); i++)
		if (strcmp(nics[i].model, model) == 0)
			return &nics[i];
	return NULL;
}

static const struct bus_info *bus_find(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(buses); i++)
		if (strcmp(buses[i].name, name) == 0)
			return &buses[i];
	return NULL;
}

bool domain_bus_supported(const char *bus) { return bus_find(bus) != NULL; }

/* QEMU formats QEMU reads but libvirt 9.0's storage format list lacks. */
static const char *const formats_unknown_to_libvirt[] = {"vhdx"};

bool domain_format_known(const char *format)
{
	for (size_t i = 0; i < ELEMENTSOF(formats_unknown_to_libvirt); i++)
		if (strcmp(formats_unknown_to_libvirt[i], format) == 0)
			return false;
	return true;
}

void domain_devices(const char *bus, const char *controller, const char *nic_model, char *buf, size_t len)
{
	const struct bus_info *b = bus_find(bus);
	const char *disk = b ? b->summary : (bus ? bus : "?");
	if (b && strcmp(b->name, "scsi") == 0) {
		disk = controller ? controller : "scsi";
		for (size_t i = 0; controller && i < ELEMENTSOF(scsi_models); i++)
			if (strcmp(scsi_models[i].model, controller) == 0)
				disk = scsi_models[i].device;
	}
	const struct nic_info *n = nic_find(nic_model);
	const char *nic = n ? n->summary : nic_model ? nic_model : "?";
	snprintf(buf, len, "%s + %s", disk, nic);
}

/* The entity for an XML special character, or NULL. */
static const char *xml_entity(char c)
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '\'': return "&apos;";
	case '"': return "&quot;";
	default: return NULL;
	}
}

char *domain_xml_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += xml_entity(*p) ? 6 : 1;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		abort();
	for (const char *p = s; *p; p++) {
		const char *e = xml_entity(*p);
		if (e)
			o = stpcpy(o, e);
		else
			*o++ = *p;
	}
	*o = 0;
	return out;
}

/* Write s XML-escaped; with qemu_opt also double ',' as QEMU's option syntax needs. */
static void put_text(FILE *f, const char *s, bool qemu_opt)
{
	for (; *s; s++) {
		const char *e = xml_entity(*s);
		if (e)
			fputs(e, f);
		else
			fputc(*s, f);
		if (qemu_opt && *s == ',')
			fputc(',', f);
	}
}

static void put_esc(FILE *f, const char *s) { put_text(f, s, false); }

/* The boot disk's backing image: read-only to QEMU; with relabel='no' a
 * system libvirt does not chown it to its QEMU user (and never back). */
static void put_backing(FILE *f, const struct domain_spec *s)
{
	fputs("      <backingStore type='file'>\n        <format type='", f);
	put_esc(f, s->backing_format);
	fputs("'/>\n        <source file='", f);
	put_esc(f, s->backing_path);
	if (s->no_relabel)
		fputs("'/>\n", f);
	else
		fputs("'>\n          <seclabel model='dac' relabel='no'/>\n        </source>\n", f);
	fputs("        <backingStore/>\n      </backingStore>\n", f);
}

/* One libvirt disk; device is "disk" or "cdrom". With pool it is volume
 * there, else the file path. scsi_target >= 0 pins it to that SCSI target,
 * LUN 0 (pvscsi has no other LUNs). backing (may be NULL) describes the
 * disk's backing image. */
static void put_disk(FILE *f, const char *device, const char *path, const char *pool, const char *volume,
		     const char *format, const char *dev, const char *bus, bool ro, int scsi_target,
		     const struct domain_spec *backing)
{
	fprintf(f, "    <disk type='%s' device='%s'>\n      <driver name='qemu' type='", pool ? "volume" : "file",
		device);
	put_esc(f, format);
	if (pool) {
		/* libvirt reads the volume's backing chain from its qcow2 header. */
		fputs("'/>\n      <source pool='", f);
		put_esc(f, pool);
		fputs("' volume='", f);
		put_esc(f, volume);
	} else {
		fputs("'/>\n      <source file='", f);
		put_esc(f, path);
	}
	fputs("'/>\n", f);
	if (backing)
		put_backing(f, backing);
	fprintf(f, "      <target dev='%s' bus='%s'/>\n", dev, bus);
	if (ro)
		fputs("      <readonly/>\n", f);
	if (scsi_target >= 0)
		fprintf(f, "      <address type='drive' controller='0' bus='0' target='%d' unit='0'/>\n", scsi_target);
	fputs("    </disk>\n", f);
}

/* QEMU arguments for one NVMe controller with one namespace backed by path.
 * libvirt does not know these devices, so they get fixed PCI slots at the
 * top of the root bus, far from the low slots libvirt hands out. */
static void put_nvme(FILE *f, unsigned idx, const char *path, const char *format, bool ro, bool boot)
{
	fputs("    <qemu:arg value='-drive'/>\n    <qemu:arg value='file=", f);
	put_text(f, path, true);
	fputs(",format=", f);
	put_text(f, format, true);
	fprintf(f, ",if=none,id=qvsa-nvme%u%s'/>\n", idx, ro ? ",readonly=on" : "");
	fprintf(f,
		"    <qemu:arg value='-device'/>\n    <qemu:arg value='nvme,drive=qvsa-nvme%u,serial=qvsa%u,addr=0x%x%s'/>\n",
		idx, idx, NVME_FIRST_SLOT + idx, boot ? ",bootindex=1" : "");
}

/* A guest network with forwards goes to QEMU as arguments: libvirt 9.0's
 * <interface type='user'> has no guestfwd (nor net= before 9.x's <ip>). */
static bool nic_as_args(const struct domain_spec *s)
{
	return s->net_prefix || s->net_host || s->n_fwds > 0;
}

/* The user-mode NIC as QEMU arguments: -netdev user with the network and
 * its forwards, -device on a fixed PCI slot (see NIC_SLOT), without its
 * option ROM (see NIC_NO_ROM). */
static void put_nic_args(FILE *f, const struct domain_spec *s, const struct nic_info *nic)
{
	fputs("    <qemu:arg value='-netdev'/>\n    <qemu:arg value='user,id=" NIC_NETDEV, f);
	if (s->net_prefix) {
		fputs(",net=", f);
		put_text(f, s->net_prefix, true);
	}
	if (s->net_host) {
		fputs(",host=", f);
		put_text(f, s->net_host, true);
	}
	for (size_t i = 0; i < s->n_fwds; i++) {
		fputs(",guestfwd=tcp:", f);
		put_text(f, s->fwds[i].addr, true);
		fprintf(f, ":%u-cmd:", s->fwds[i].port);
		put_text(f, s->fwds[i].command, true);
	}
	fprintf(f,
		"'/>\n    <qemu:arg value='-device'/>\n    <qemu:arg value='%s,netdev=" NIC_NETDEV
		",addr=0x%x,romfile='/>\n",
		nic->device, NIC_SLOT);
}

/* <sysinfo> with the given SMBIOS strings (libvirt's names: system
 * manufacturer/product/serial/uuid, baseBoard manufacturer, chassis asset). */
static void put_sysinfo(FILE *f, const struct domain_smbios *m)
{
	const struct {
		const char *section, *entry, *value;
	} rows[] = {
		{"system", "manufacturer", m->manufacturer}, {"system", "product", m->product},
		{"system", "serial", m->serial},	     {"system", "uuid", m->uuid},
		{"baseBoard", "manufacturer", m->board_manufacturer}, {"chassis", "asset", m->asset_tag},
	};
	fputs("  <sysinfo type='smbios'>\n", f);
	for (size_t i = 0; i < ELEMENTSOF(rows);) {
		const char *section = rows[i].section;
		bool open = false;
		for (; i < ELEMENTSOF(rows) && strcmp(rows[i].section, section) == 0; i++) {
			if (!rows[i].value)
				continue;
			if (!open)
				fprintf(f, "    <%s>\n", section);
			open = true;
			fprintf(f, "      <entry name='%s'>", rows[i].entry);
			put_esc(f, rows[i].value);
			fputs("</entry>\n", f);
		}
		if (open)
			fprintf(f, "    </%s>\n", section);
	}
	fputs("  </sysinfo>\n", f);
}

static bool smbios_any(const struct domain_smbios *m)
{
	return m && (m->manufacturer || m->product || m->uuid || m->serial || m->asset_tag || m->board_manufacturer);
}

/* <serial> or <console> (element) on the log file, or on the console
 * socket with the log file beside it; target is the element's <target>. */
static void put_chardev(FILE *f, const struct domain_spec *s, const char *element, const char *target)
{
	if (s->console_stream) {
		/* libvirt's console stream (virDomainOpenConsole) takes only a pty. */
		fprintf(f, "    <%s type='pty'>\n", element);
	} else if (s->console_socket) {
		/* QEMU listens (mode='bind') without waiting for a client; its
		 * logfile= keeps every byte the guest writes, connected or not. */
		fprintf(f, "    <%s type='unix'>\n      <source mode='bind' path='", element);
		put_esc(f, s->console_socket);
		fputs("'/>\n      <log file='", f);
		put_esc(f, s->console_path);
		fputs("' append='off'/>\n", f);
	} else {
		fprintf(f, "    <%s type='file'>\n      <source path='", element);
		put_esc(f, s->console_path);
		fputs("'/>\n", f);
	}
	fprintf(f, "      %s\n    </%s>\n", target, element);
}

/* An IPv4 network "a.b.c.d/n" into address and mask. */
static bool cidr_parse(const char *cidr, uint32_t *ret_net, uint32_t *ret_mask)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	size_t alen = slash ? (size_t)(slash - cidr) : 0;
	if (!slash || alen >= sizeof(addr))
		return false;
	memcpy(addr, cidr, alen);
	addr[alen] = 0;
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	struct in_addr a;
	if (*end || end == slash + 1 || bits < 1 || bits > 30 || inet_pton(AF_INET, addr, &a) != 1)
		return false;
	*ret_mask = ~0u << (32 - bits);
	*ret_net = ntohl(a.s_addr) & *ret_mask;
	return true;
}

/* QEMU refuses host= and guestfwd addresses outside net= with a terse
 * message at start; say which one here. */
static int check_network(const struct domain_spec *s)
{
	uint32_t net = 0x0a000200, mask = 0xffffff00; /* QEMU's default 10.0.2.0/24 */
	if (s->net_prefix && !cidr_parse(s->net_prefix, &net, &mask))
		return err_input("domain XML: guest network '%s': expected an IPv4 network a.b.c.d/n", s->net_prefix);
	const char *who[] = {"host address", "forwarded address"};
	for (size_t i = 0; i <= s->n_fwds; i++) {
		const char *addr = i == 0 ? s->net_host : s->fwds[i - 1].addr;
		if (i > 0 && (!addr || !s->fwds[i - 1].command || s->fwds[i - 1].port == 0 ||
			      s->fwds[i - 1].port > 65535))
			return err_input("domain XML: forward %zu needs an address, a port 1-65535 and a command", i);
		struct in_addr a;
		if (addr && (inet_pton(AF_INET, addr, &a) != 1 || (ntohl(a.s_addr) & mask) != net))
			return err_input("domain XML: %s '%s' is not an IPv4 address inside the guest network %s",
					 who[i > 0], addr, s->net_prefix ? s->net_prefix : "10.0.2.0/24");
	}
	return 0;
}

static int check_required(const struct domain_spec *s)
{
	const struct {
		const char *field, *value;
	} req[] = {
		{"name", s->name},	       {"accel", s->accel},	    {"machine", s->machine},
		{"disk_path", s->disk_path},   {"disk_format", s->disk_format}, {"disk_bus", s->disk_bus},
		{"nic_model", s->nic_model},   {"console_path", s->console_stream ? "-" : s->console_path},
	};
	for (size_t i = 0; i < ELEMENTSOF(req); i++)
		if (!req[i].value || !*req[i].value)
			return err_input("domain XML: missing %s", req[i].field);
	if (s->uefi && !s->nvram_path)
		return err_input("domain XML: UEFI boot needs an nvram path");
	if (s->pool && (!s->disk_volume || (s->seed_path && !s->seed_volume)))
		return err_input("domain XML: disks in pool '%s' need their volume names", s->pool);
	if (s->backing_path && !s->backing_format)
		return err_input("domain XML: a backing image needs its format");
	if (s->console_socket && strlen(s->console_socket) > DOMAIN_SOCKET_PATH_MAX)
		return err_input("domain XML: console socket path '%s' is longer than %d bytes", s->console_socket,
				 DOMAIN_SOCKET_PATH_MAX);
	if (nic_as_args(s) && !nic_find(s->nic_model))
		return err_input("domain XML: NIC model '%s' has no QEMU device here (a guest network with "
				 "forwards needs virtio, e1000, e1000e, vmxnet3 or rtl8139)", s->nic_model);
	return check_network(s);
}

/* The boot disk and the media, for buses libvirt knows. */
static void put_disks(FILE *f, const struct domain_spec *s, const struct bus_info *bus)
{
	char dev[8];
	snprintf(dev, sizeof(dev), "%sa", bus->dev_prefix);
	bool scsi = strcmp(bus->name, "scsi") == 0;
	put_disk(f, "disk", s->disk_path, s->pool, s->disk_volume, s->disk_format, dev, bus->name, false,
		 scsi ? 0 : -1, s->backing_path ? s : NULL);
	if (!s->seed_path)
		return;
	if (s->seed_cdrom && bus->cdrom_dev) {
		put_disk(f, "cdrom", s->seed_path, s->pool, s->seed_volume, "raw", bus->cdrom_dev, bus->name, true,
			 scsi ? 1 : -1, NULL);
		return;
	}
	/* ide-hd cannot use a read-only drive; the seed is a throwaway copy then. */
	snprintf(dev, sizeof(dev), "%sb", bus->dev_prefix);
	put_disk(f, "disk", s->seed_path, s->pool, s->seed_volume, "raw", dev, bus->name, bus->readonly_ok,
		 scsi ? 1 : -1, NULL);
}

int domain_xml(const struct domain_spec *s, char **ret_xml)
{
	if (check_required(s) < 0)
		return -1;
	const char *type;
	if (strcmp(s->accel, "kvm") == 0)
		type = "kvm";
	else if (strcmp(s->accel, "tcg") == 0)
		type = "qemu";
	else
		return err_input("domain XML: accelerator '%s': expected kvm or tcg", s->accel);
	const struct bus_info *bus = bus_find(s->disk_bus);
	if (!bus)
		return err_input("domain XML: disk bus '%s': expected virtio, scsi, sata, ide or nvme", s->disk_bus);
	if (bus->needs_pc && strcmp(s->machine, "pc") != 0)
		return err_input("domain XML: disk bus '%s' needs machine 'pc', not '%s'", bus->name, s->machine);
	bool nvme = bus->dev_prefix == NULL, nic_args = nic_as_args(s);
	const struct domain_smbios *smbios = smbios_any(s->smbios) ? s->smbios : NULL;

	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return err_errno(errno, "domain XML");

	fprintf(f, "<domain type='%s' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n  <name>", type);
	put_esc(f, s->name);
	fputs("</name>\n", f);
	if (smbios && smbios->uuid) {
		/* libvirt refuses a <sysinfo> UUID that differs from the domain's. */
		fputs("  <uuid>", f);
		put_esc(f, smbios->uuid);
		fputs("</uuid>\n", f);
	}
	fprintf(f, "  <memory unit='MiB'>%u</memory>\n  <vcpu>%u</vcpu>\n",
		s->memory_mib ? s->memory_mib : DOMAIN_MEMORY_MIB, s->vcpus ? s->vcpus : DOMAIN_VCPUS);
	if (smbios)
		put_sysinfo(f, smbios);

	/* Boot from the image's own disk through its own bootloader: never <kernel>. */
	fprintf(f, "  <os%s>\n    <type arch='x86_64' machine='", s->uefi ? " firmware='efi'" : "");
	put_esc(f, s->machine);
	fputs("'>hvm</type>\n", f);
	if (s->uefi) {
		fputs("    <firmware>\n      <feature enabled='no' name='secure-boot'/>\n"
		      "      <feature enabled='no' name='enrolled-keys'/>\n    </firmware>\n    <nvram>", f);
		put_esc(f, s->nvram_path);
		fputs("</nvram>\n", f);
	}
	fputs("    <boot dev='hd'/>\n", f);
	if (smbios)
		fputs("    <smbios mode='sysinfo'/>\n", f);
	fputs("  </os>\n", f);
	fputs("  <features>\n    <acpi/>\n  </features>\n  <clock offset='utc'/>\n", f);
	fputs("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
	      "  <on_crash>destroy</on_crash>\n", f);

	fputs("  <devices>\n", f);
	if (strcmp(bus->name, "scsi") == 0) {
		fputs("    <controller type='scsi' index='0'", f);
		if (s->disk_controller) {
			fputs(" model='", f);
			put_esc(f, s->disk_controller);
			fputc('\'', f);
		}
		fputs("/>\n", f);
	}
	fputs("    <controller type='usb' model='none'/>\n", f);
	if (!nvme)
		put_disks(f, s, bus);
	if (!nic_args) {
		fputs("    <interface type='user'>\n      <model type='", f);
		put_esc(f, s->nic_model);
		fputs("'/>\n      <rom enabled='no'/>\n    </interface>\n", f);
	}
	put_chardev(f, s, "serial", "<target port='0'/>");
	put_chardev(f, s, "console", "<target type='serial' port='0'/>");
	fputs("    <memballoon model='none'/>\n  </devices>\n", f);
	if (s->no_relabel)
		fputs("  <seclabel type='none' model='dac'/>\n", f);

	fputs("  <qemu:commandline>\n", f);
	if (nvme) {
		put_nvme(f, 0, s->disk_path, s->disk_format, false, true);
		if (s->seed_path)
			put_nvme(f, 1, s->seed_path, "raw", true, false);
	}
	if (nic_args)
		put_nic_args(f, s, nic_find(s->nic_model));
	/* The driver passes "-sandbox off" (VM_SECCOMP_LINE), which installs
	 * nothing: QEMU applies every -sandbox it is given, so this is the filter in force. */
	fprintf(f, "    <qemu:arg value='-sandbox'/>\n    <qemu:arg value='%s'/>\n",
		s->n_fwds ? DOMAIN_SANDBOX_SPAWN : DOMAIN_SANDBOX);
	fputs("  </qemu:commandline>\n", f);
	fputs("</domain>\n", f);
	if (fclose(f) != 0)
		return err_errno(errno, "domain XML");
	*ret_xml = TAKE_PTR(buf);
	return 0;
}
