#!/bin/bash
# The script qvsa replaces: what a release engineer writes to turn one
# assembled raw disk into every target's artifact plus SHA256SUMS, one
# `qemu-img convert` per artifact with the options of targets/*.yaml,
# `tar --format=oldgnu -Sczf` for GCE, `sha256sum` over everything.
#
#   naive.sh DISK OUTDIR VERSION [TIMES ROUND]
#
# DISK is a raw disk whose size is a whole number of GiB (GCE's rule; it then
# meets every other target's alignment). Artifacts are named as qvsa names
# them (VERSION-TARGET.EXT). With TIMES, each step's wall time is appended to
# that file as "ROUND<TAB>naive<TAB>FORMAT:TARGET<TAB>SECONDS".
# NAIVE_QCOW2_COMPRESS=1 adds -c to the qcow2 converts (set by bench.sh when
# the qcow2 targets ship compressed, so both sides write the same thing).
set -euo pipefail

disk=$1 out=$2 ver=$3 times=${4:-} round=${5:-0}
compress=()
[ "${NAIVE_QCOW2_COMPRESS:-0}" = 1 ] && compress=(-c)

size=$(stat -c %s "$disk")
if (( size % (1024 * 1024 * 1024) )); then
	echo "naive.sh: $disk: size $size is not a whole number of GiB" >&2
	exit 2
fi
mkdir -p "$out"
scratch=$(mktemp -d "$out/.naive.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# step KEY CMD...: run CMD, record its wall time under KEY.
step() {
	local key=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@"
	t1=$EPOCHREALTIME
	if [ -n "$times" ]; then
		awk -v r="$round" -v k="$key" -v a="$t0" -v b="$t1" \
			'BEGIN { printf "%s\tnaive\t%s\t%.3f\n", r, k, b - a }' >>"$times"
	fi
}

conv() { # FORMAT OPTIONS OUT
	qemu-img convert -q -f raw -O "$1" -o "$2" "${@:4}" "$disk" "$3"
}

# OVA: streamOptimized VMDK, an OVF descriptor, a SHA-256 manifest, one ustar.
ova() {
	local d=$scratch/ova name=$ver-vmware vmdk
	mkdir -p "$d"
	vmdk=$name-disk1.vmdk
	conv vmdk subformat=streamOptimized,adapter_type=lsilogic,hwversion=14 "$d/$vmdk"
	cat >"$d/$name.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:id="file1" ovf:href="$vmdk" ovf:size="$(stat -c %s "$d/$vmdk")"/></References>
  <DiskSection><Info>Virtual disk</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="$size"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
  <NetworkSection><Info>Network</Info><Network ovf:name="VM Network"><Description>VM Network</Description></Network></NetworkSection>
  <VirtualSystem ovf:id="$name"><Info>qVSA</Info><Name>$name</Name>
    <VirtualHardwareSection><Info>Hardware</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>2 CPUs</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>2048 MB</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>SCSI</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>disk1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>eth0</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
OVF
	(cd "$d" && sha256sum --tag "$name.ovf" "$vmdk" | sed 's/^SHA256 (\(.*\)) = /SHA256(\1)= /' >"$name.mf")
	tar --format=ustar -cf "$out/$name.ova" -C "$d" "$name.ovf" "$name.mf" "$vmdk"
	rm -rf "$d"
}

# GCE: one member named disk.raw (a hard link, so no copy is timed), GNU sparse.
gce() {
	mkdir -p "$scratch/gce"
	ln "$disk" "$scratch/gce/disk.raw" 2>/dev/null || cp --sparse=always "$disk" "$scratch/gce/disk.raw"
	tar --format=oldgnu -Sczf "$out/$ver-gcp.tar.gz" -C "$scratch/gce" disk.raw
	rm -rf "$scratch/gce"
}

sums() {
	(cd "$out" && sha256sum -- "$ver"-* >SHA256SUMS)
}

all() {
	local t
	for t in kvm openstack nutanix oci; do
		step "qcow2:$t" conv qcow2 compat=1.1 "$out/$ver-$t.qcow2" "${compress[@]}"
	done
	step ova:vmware ova
	for t in azure azure-gen2; do
		step "vhd-fixed:$t" conv vpc subformat=fixed,force_size=on "$out/$ver-$t.vhd"
	done
	for t in hyperv hyperv-gen2; do
		step "vhdx:$t" conv vhdx subformat=dynamic "$out/$ver-$t.vhdx"
	done
	step gce:gcp gce
	step vmdk:aws conv vmdk subformat=streamOptimized,adapter_type=lsilogic "$out/$ver-aws.vmdk"
	step raw:aws cp --sparse=always "$disk" "$out/$ver-aws.raw"
	step vhd-dynamic:xen conv vpc subformat=dynamic,force_size=on "$out/$ver-xen.vhd"
	step sha256sum:all sums
}

step total:all all
