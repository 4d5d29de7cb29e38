#!/usr/bin/env bash
# Check every artifact of a build with readers qvsa did not write: qemu-img,
# tar, xmllint, sha256sum/sha1sum, od. Usage: conformance.sh DIR VERSION
# (DIR holds qVSA-X.Y-<target>.<ext>). Prints PASS:/FAIL: lines; exit 1 on any FAIL.
set -uo pipefail
dir=$1 version=$2
xy=${version#qVSA-}
fails=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
MiB=1048576 GiB=1073741824

# qemu-img's view: FILE FORMAT [qemu-img -f FORMAT] -> prints virtual size
vsize() { qemu-img info --output=json ${3:+-f $3} "$1" | sed -n 's/^ *"virtual-size": \([0-9]*\),*/\1/p' | head -1; }
fmt_of() { qemu-img info --output=json ${2:+-f $2} "$1" | sed -n 's/^ *"format": "\(.*\)",*/\1/p' | head -1; }

expect_size=$(vsize "$dir/$version-kvm.qcow2")
[ -n "$expect_size" ] || { fail "kvm artifact unreadable"; exit 1; }

for t in kvm openstack nutanix oci; do
	f=$dir/$version-$t.qcow2
	if [ "$(fmt_of "$f")" = qcow2 ] && qemu-img check -q "$f" &&
		qemu-img info --output=json "$f" | grep -q '"compat": "1.1"' && [ "$(vsize "$f")" = "$expect_size" ]; then
		pass "$t: qcow2 compat 1.1, clean, $expect_size bytes virtual"
	else fail "$t: qcow2 checks"; fi
done

# AWS: stream-optimized VMDK and raw, same virtual size.
f=$dir/$version-aws.vmdk
if [ "$(fmt_of "$f")" = vmdk ] && qemu-img info --output=json "$f" | grep -q '"create-type": "streamOptimized"' &&
	[ "$(vsize "$f")" = "$expect_size" ] && [ "$(stat -c %s "$dir/$version-aws.raw")" = "$expect_size" ]; then
	pass "aws: streamOptimized VMDK + raw, $expect_size bytes"
else fail "aws: vmdk/raw checks"; fi

# What ESXi requires of a streamOptimized VMDK (and qemu-img convert omits):
# gdOffset = GD_AT_END in the header; the last three sectors are a footer
# marker (type 3), a footer (a header copy with the real gdOffset) and an
# end-of-stream marker (all zero). Read with od, not qvsa; content against
# a raw disk (second argument) with qemu-img compare.
vmdk_stream_ok() {
	local f=$1 n
	n=$(stat -c %s "$f")
	[ "$(od -An -tx1 -j56 -N8 "$f" | tr -d ' \n')" = ffffffffffffffff ] || return 1
	[ "$(od -An -tu4 -j$((n - 1536 + 12)) -N4 "$f" | tr -d ' ')" = 3 ] || return 1
	[ "$(od -An -c -j$((n - 1024)) -N4 "$f" | tr -d ' ')" = KDMV ] || return 1
	[ "$(od -An -tx1 -j$((n - 1024 + 56)) -N8 "$f" | tr -d ' \n')" != ffffffffffffffff ] || return 1
	[ "$(od -An -v -tx1 -j$((n - 512)) -N512 "$f" | tr -d ' \n0')" = "" ] || return 1
	[ -z "${2:-}" ] || qemu-img compare -q -f vmdk -F raw "$f" "$2" >/dev/null 2>&1
}
if vmdk_stream_ok "$f" "$dir/$version-aws.raw"; then pass "aws: VMDK has GD_AT_END, footer marker, footer, end-of-stream marker; same content as the raw"
else fail "aws: VMDK stream end (footer/end-of-stream) or content"; fi

# VHD footer: cookie, checksum (one's complement of the byte sum without the checksum field), type.
vhd_footer_ok() { # FILE OFFSET WANT_TYPE
	local sum=0 i=0 b stored dtype
	local bytes
	bytes=$(od -An -tu1 -v -j "$2" -N 512 "$1")
	[ "$(dd if="$1" bs=1 skip="$2" count=8 2>/dev/null)" = conectix ] || return 1
	for b in $bytes; do
		if [ $i -lt 64 ] || [ $i -gt 67 ]; then sum=$((sum + b)); fi
		i=$((i + 1))
	done
	stored=$(od -An -tu4 --endian=big -j $(($2 + 64)) -N 4 "$1" | tr -d ' ')
	dtype=$(od -An -tu4 --endian=big -j $(($2 + 60)) -N 4 "$1" | tr -d ' ')
	[ $(((~sum) & 0xffffffff)) = "$stored" ] && [ "$dtype" = "$3" ]
}
for t in azure azure-gen2; do
	f=$dir/$version-$t.vhd
	size=$(stat -c %s "$f")
	if [ $(((size - 512) % MiB)) = 0 ] && vhd_footer_ok "$f" $((size - 512)) 2 &&
		[ "$(vsize "$f" x vpc)" = $((size - 512)) ] && [ $((size - 512)) = "$expect_size" ]; then
		pass "$t: fixed VHD, footer checksum valid, $((size - 512)) bytes = whole MiB"
	else fail "$t: fixed VHD checks"; fi
done
f=$dir/$version-xen.vhd
size=$(stat -c %s "$f")
if vhd_footer_ok "$f" 0 3 && vhd_footer_ok "$f" $((size - 512)) 3 && [ "$(fmt_of "$f")" = vpc ] &&
	[ "$(vsize "$f")" = "$expect_size" ]; then
	pass "xen: dynamic VHD, both footer copies valid, $expect_size bytes virtual"
else fail "xen: dynamic VHD checks"; fi

for t in hyperv hyperv-gen2; do
	f=$dir/$version-$t.vhdx
	if [ "$(fmt_of "$f")" = vhdx ] && qemu-img check -q "$f" && [ "$(vsize "$f")" = "$expect_size" ]; then
		pass "$t: VHDX clean, $expect_size bytes virtual"
	else fail "$t: vhdx checks"; fi
done

# GCE: gzip'd GNU tar, one member disk.raw, whole GiB.
f=$dir/$version-gcp.tar.gz
members=$(tar -tzf "$f")
magic=$(gzip -dc "$f" | head -c 512 | dd bs=1 skip=257 count=8 2>/dev/null | od -An -c | tr -s ' ')
rawsize=$(tar -tvzf "$f" | awk '{print $3}')
if [ "$members" = disk.raw ] && [ "$magic" = " u s t a r \0" ] && [ $((rawsize % GiB)) = 0 ]; then
	pass "gcp: GNU tar.gz with only disk.raw, $rawsize bytes (whole GiB)"
else fail "gcp: members '$members', magic '$magic', size $rawsize"; fi

# OVA: ustar; OVF first, then the manifest, then the disk; manifest digests; OVF well-formed and versioned.
f=$dir/$version-vmware.ova
ova=$(mktemp -d)
tar -xf "$f" -C "$ova"
order=$(tar -tf "$f" | tr '\n' ' ')
ustar=$(head -c 512 "$f" | dd bs=1 skip=257 count=6 2>/dev/null | od -An -c | tr -s ' ')
ovf=$(tar -tf "$f" | sed -n 1p) mf=$(tar -tf "$f" | sed -n 2p) disk=$(tar -tf "$f" | sed -n 3p)
digests_ok=1
while read -r line; do
	alg=${line%%(*} name=${line#*(} name=${name%%)*} hex=${line##*= }
	case $alg in SHA256) sum=$(sha256sum "$ova/$name" | cut -d' ' -f1) ;; SHA1) sum=$(sha1sum "$ova/$name" | cut -d' ' -f1) ;; *) sum=x ;; esac
	[ "$sum" = "$hex" ] || digests_ok=0
done <"$ova/$mf"
if [ "$ustar" = " u s t a r \0" ] && [[ $ovf == *.ovf ]] && [[ $mf == *.mf ]] && [[ $disk == *.vmdk ]] &&
	[ "$(wc -l <"$ova/$mf")" = 2 ] && [ $digests_ok = 1 ]; then
	pass "vmware: ustar OVA in order $order; manifest digests match"
else fail "vmware: OVA order '$order' magic '$ustar' digests_ok=$digests_ok"; fi
if command -v xmllint >/dev/null; then
	if xmllint --noout "$ova/$ovf" &&
		grep -Eq "<(ovf:)?FullVersion>$version</(ovf:)?FullVersion>" "$ova/$ovf" &&
		grep -Eq "<(ovf:)?Version>$xy</(ovf:)?Version>" "$ova/$ovf" &&
		grep -q "ovf:capacity=\"$expect_size\"" "$ova/$ovf" &&
		[ "$(xmllint --xpath "count(//*[local-name()='ProductSection'][@*[local-name()='class']='qvsa']/*[local-name()='Property'][@*[local-name()='key']='perscode'][@*[local-name()='userConfigurable']='true'])" "$ova/$ovf")" = 1 ] &&
		grep -q "ovf:transport=\"iso com.vmware.guestInfo\"" "$ova/$ovf" &&
		grep -q "ovf:size=\"$(stat -c %s "$ova/$disk")\"" "$ova/$ovf" &&
		[ "$(fmt_of "$ova/$disk")" = vmdk ] && [ "$(vsize "$ova/$disk")" = "$expect_size" ] &&
		vmdk_stream_ok "$ova/$disk"; then
		pass "vmware: OVF well-formed (xmllint), Version $xy / FullVersion $version, qvsa.perscode on the ISO transport, capacity and file size right"
	else fail "vmware: OVF checks"; fi
else
	echo "SKIP: vmware OVF well-formedness (xmllint absent; make deps installs libxml2-utils)"
fi
rm -rf "$ova"
exit $((fails > 0))
