#include "domain.h"

#include "cleanup.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

/* How one disk bus is expressed for libvirt 9.0 / QEMU 7.2. */
struct bus_info {
	const char *name;       /* libvirt bus name (or "nvme") */
	const char *dev_prefix; /* target dev prefix: vd, sd, hd; NULL when not a libvirt disk */
	const char *summary;    /* emulated controller as QEMU names it, for messages */
	bool readonly_ok;       /* QEMU accepts a read-only disk here (ide-hd refuses one) */
	bool needs_pc;          /* only the i440fx machine has this controller */
};

/* libvirt 9.0 has no NVMe disk bus, so nvme is passed to QEMU as extra arguments. */
static const struct bus_info buses[] = {
	{"virtio", "vd", "virtio-blk", true, false},
	{"scsi", "sd", "scsi", true, false},
	{"sata", "sd", "ahci", false, false},
	{"ide", "hd", "ide", false, true},
	{"nvme", NULL, "nvme", true, false},
};

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
	const char *nic = nic_model ? nic_model : "?";
	if (strcmp(nic, "virtio") == 0)
		nic = "virtio-net";
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

/* scsi_target >= 0 pins the disk to that SCSI target, LUN 0 (pvscsi has no other LUNs).
 * backing (may be NULL) describes the disk's backing image. */
static void put_disk(FILE *f, const char *path, const char *format, const char *dev, const char *bus, bool ro,
		     int scsi_target, const struct domain_spec *backing)
{
	fputs("    <disk type='file' device='disk'>\n      <driver name='qemu' type='", f);
	put_esc(f, format);
	fputs("'/>\n      <source file='", f);
	put_esc(f, path);
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

static int check_required(const struct domain_spec *s)
{
	const struct {
		const char *field, *value;
	} req[] = {
		{"name", s->name},	       {"accel", s->accel},	    {"machine", s->machine},
		{"disk_path", s->disk_path},   {"disk_format", s->disk_format}, {"disk_bus", s->disk_bus},
		{"nic_model", s->nic_model},   {"console_path", s->console_path},
	};
	for (size_t i = 0; i < ELEMENTSOF(req); i++)
		if (!req[i].value || !*req[i].value)
			return err_input("domain XML: missing %s", req[i].field);
	if (s->uefi && !s->nvram_path)
		return err_input("domain XML: UEFI boot needs an nvram path");
	if (s->backing_path && !s->backing_format)
		return err_input("domain XML: a backing image needs its format");
	return 0;
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
	bool nvme = bus->dev_prefix == NULL;

	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return err_errno(errno, "domain XML");

	fprintf(f, "<domain type='%s'%s>\n  <name>", type,
		nvme ? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" : "");
	put_esc(f, s->name);
	fprintf(f, "</name>\n  <memory unit='MiB'>%u</memory>\n  <vcpu>%u</vcpu>\n",
		s->memory_mib ? s->memory_mib : DOMAIN_MEMORY_MIB, s->vcpus ? s->vcpus : DOMAIN_VCPUS);

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
	fputs("    <boot dev='hd'/>\n  </os>\n", f);
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
	if (!nvme) {
		char dev[8];
		snprintf(dev, sizeof(dev), "%sa", bus->dev_prefix);
		bool scsi = strcmp(bus->name, "scsi") == 0;
		put_disk(f, s->disk_path, s->disk_format, dev, bus->name, false, scsi ? 0 : -1,
			 s->backing_path ? s : NULL);
		if (s->seed_path) {
			/* ide-hd cannot use a read-only drive; the seed is a throwaway copy then. */
			snprintf(dev, sizeof(dev), "%sb", bus->dev_prefix);
			put_disk(f, s->seed_path, "raw", dev, bus->name, bus->readonly_ok, scsi ? 1 : -1, NULL);
		}
	}
	fputs("    <interface type='user'>\n      <model type='", f);
	put_esc(f, s->nic_model);
	fputs("'/>\n    </interface>\n", f);
	fputs("    <serial type='file'>\n      <source path='", f);
	put_esc(f, s->console_path);
	fputs("'/>\n      <target port='0'/>\n    </serial>\n", f);
	fputs("    <console type='file'>\n      <source path='", f);
	put_esc(f, s->console_path);
	fputs("'/>\n      <target type='serial' port='0'/>\n    </console>\n", f);
	fputs("    <memballoon model='none'/>\n  </devices>\n", f);
	if (s->no_relabel)
		fputs("  <seclabel type='none' model='dac'/>\n", f);

	if (nvme) {
		fputs("  <qemu:commandline>\n", f);
		put_nvme(f, 0, s->disk_path, s->disk_format, false, true);
		if (s->seed_path)
			put_nvme(f, 1, s->seed_path, "raw", true, false);
		fputs("  </qemu:commandline>\n", f);
	}
	fputs("</domain>\n", f);
	if (fclose(f) != 0)
		return err_errno(errno, "domain XML");
	*ret_xml = TAKE_PTR(buf);
	return 0;
}
