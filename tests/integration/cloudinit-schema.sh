#!/usr/bin/env bash
# cloud-init's own validator over every cloud-config qvsa writes:
# `cloud-init schema --config-file FILE`, run by the cloud-init of a Debian
# root tree (the debian base's cached tree, CACHE/debian/KEY/tree), on
#  - each platform's user-data as its guest receives it, from the seed
#    verify makes (`qvsa __seed PLATFORM DIR`): read back from the media
#    with isoinfo/xmllint/base64, or the metadata service's answer, decoded
#    where base64;
#  - the templates' cloud.cfg.d files;
#  - each target's 90-qvsa-datasource.cfg as build writes it
#    (`qvsa __datasource TARGET`), which cloud-init's own loader and
#    ds-identify must also read back as the target's datasource list.
# One line per file; exit 1 naming every failure, 2 on bad usage.
#
# usage: tests/integration/cloudinit-schema.sh DEBIAN_ROOT_TREE
# The tree is never written: the script chroots into a private `cp -al`
# copy under a temp folder (a new file there never touches the tree's
# inodes) and removes the copy on every exit path. Needs root (chroot),
# isoinfo (genisoimage) and xmllint (libxml2-utils).
set -uo pipefail
if [ $# != 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 DEBIAN_ROOT_TREE (e.g. ~/.cache/qvsa/debian/KEY/tree)" >&2
	exit 2
fi
tree=$(cd "$1" && pwd) || exit 2
cd "$(dirname "$0")/../.." || exit 2
top=$PWD
qvsa=${QVSA:-$top/build/qvsa}
if [ ! -x "$tree/usr/bin/cloud-init" ]; then
	echo "cloudinit-schema: '$tree' has no /usr/bin/cloud-init: not a debian base tree" >&2
	exit 2
fi
[ -x "$qvsa" ] || { echo "cloudinit-schema: $qvsa is not built (make all)" >&2; exit 2; }
for tool in isoinfo xmllint base64 chroot; do
	command -v "$tool" >/dev/null || { echo "cloudinit-schema: skipped: $tool is not installed" >&2; exit 77; }
done
if [ "$(id -u)" != 0 ]; then
	echo "cloudinit-schema: skipped: chroot needs root" >&2
	exit 77
fi

work=$(mktemp -d /tmp/qvsa-cloudinit-schema-XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
copy=$work/root
cp -al "$tree" "$copy" || { echo "cloudinit-schema: cannot copy '$tree'" >&2; exit 1; }
# Files the validator reads live in the copy's own /tmp (a folder of its own, not shared).
rm -rf "$copy/tmp" && mkdir -m 1777 "$copy/tmp"
version=$(chroot "$copy" cloud-init --version 2>&1 | awk '{print $2}')
echo "cloud-init $version (from $tree)"

passed=0 failed=0 failures=""
ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() {
	echo "FAIL: $1"
	failed=$((failed + 1))
	failures="$failures
  $1"
}

# schema FILE: run `cloud-init schema` on a copy of FILE inside the root;
# its exit status, and its output on one line in $out.
nfile=0
schema() {
	local inside=/tmp/check-$nfile.yaml
	nfile=$((nfile + 1))
	cp "$1" "$copy$inside"
	out=$(chroot "$copy" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
		cloud-init schema --config-file "$inside" 2>&1)
	local rc=$?
	out=$(printf '%s' "$out" | tr '\n' ' ' | sed 's/  */ /g; s/ $//; s/ Cloud config schema deprecations:$//')
	[ "$rc" != 0 ] || out="valid cloud-config"
	return $rc
}

# check NAME FILE [NOTE]: FILE must be valid cloud-config.
check() {
	local name=$1 file=$2 note=${3:-} why
	if schema "$file"; then
		ok "$name: $out${note:+ ($note)}"
	else
		bad "$name: $out${note:+ ($note)}"
	fi
}

# --- 0. the validator validates: an invalid document is refused ---
printf '#cloud-config\npower_state:\n  mode: sideways\n' >"$work/control.yaml"
if schema "$work/control.yaml"; then
	bad "control: cloud-init schema accepted power_state.mode 'sideways': it validates nothing here ($out)"
elif [[ $out == *"power_state.mode"* ]]; then
	ok "control: an invalid cloud-config is refused ($out)"
else
	bad "control: cloud-init schema failed for another reason: $out"
fi
# What it says of a top-level key it has no schema for (qvsa: is the agent's, not cloud-init's).
printf '#cloud-config\nqvsa:\n  perscode: "4242424242"\nqvsa_unknown_probe: [1, 2]\n' >"$work/unknown.yaml"
schema "$work/unknown.yaml"
echo "INFO: top-level keys cloud-init has no schema for (qvsa:, qvsa_unknown_probe:): exit $?, '$out'" \
	"(cloud-init $version checks only the keys it knows; qvsa: is the agent's to read)"

# --- 1. every platform's user-data, as its guest receives it ---
for platform in nocloud configdrive openstack ec2 gce oci azure vmware console; do
	dir=$work/seed/$platform
	if ! "$qvsa" __seed "$platform" "$dir" >"$work/seed-$platform.out" 2>&1; then
		bad "seed $platform: qvsa __seed failed: $(tr '\n' ' ' <"$work/seed-$platform.out")"
		continue
	fi
	media=$(sed -n 's/^media //p' "$work/seed-$platform.out")
	served=$(sed -n 's/^served //p' "$work/seed-$platform.out")
	got=$dir/guest-user-data
	case $platform in
	nocloud) isoinfo -i "$media" -R -x /user-data >"$got"; how="the cidata ISO's user-data" ;;
	configdrive) isoinfo -i "$media" -R -x /openstack/latest/user_data >"$got"; how="config-2's openstack/latest/user_data" ;;
	vmware)
		isoinfo -i "$media" -R -x /ovf-env.xml >"$dir/ovf-env.xml"
		xmllint --xpath "string(//*[local-name()='Property'][@*[local-name()='key']='user-data']/@*[local-name()='value'])" \
			"$dir/ovf-env.xml" | base64 -d >"$got"
		how="ovf-env.xml's user-data property, base64-decoded" ;;
	azure)
		isoinfo -i "$media" -R -x /ovf-env.xml >"$dir/ovf-env.xml"
		xmllint --xpath "string(//*[local-name()='CustomData'])" "$dir/ovf-env.xml" | base64 -d >"$got"
		how="the provisioning DVD's ovf-env.xml CustomData, base64-decoded" ;;
	oci) base64 -d <"$served" >"$got"; how="IMDS v2 user_data, base64-decoded" ;;
	ec2 | gce | openstack) cp "$served" "$got"; how="the metadata service's answer" ;;
	console)
		echo "SKIP: seed console: no cloud-config (the code is typed at the console; cloud-init gets no user-data)"
		continue ;;
	esac
	if [ ! -s "$got" ]; then
		bad "seed $platform: nothing read from $how"
		continue
	fi
	if ! cmp -s "$got" "$dir/user-data"; then
		bad "seed $platform: $how differs from the user-data verify handed the platform"
		continue
	fi
	check "seed $platform user-data" "$got" "$how"
done

# --- 2. the templates' cloud.cfg.d files ---
for f in templates/*/rootfs/etc/cloud/cloud.cfg.d/*.cfg; do
	[ -e "$f" ] || continue
	check "$f" "$f"
	# Every module the file lists is one cloud-init has (an unknown one is skipped with a warning at boot).
	cp "$f" "$copy/tmp/modules.cfg"
	missing=$(chroot "$copy" env -i PATH=/usr/bin:/bin python3 -c '
import importlib.util, sys, yaml
c = yaml.safe_load(open("/tmp/modules.cfg")) or {}
for key in ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules"):
    for m in c.get(key) or []:
        name = m if isinstance(m, str) else m[0]
        if importlib.util.find_spec("cloudinit.config.cc_" + name) is None:
            print(key + ": " + name)
' 2>&1)
	if grep -q "^cloud_\(init\|config\|final\)_modules:" "$f"; then
		if [ -z "$missing" ]; then
			ok "$f: every module it lists exists in cloud-init $version"
		else
			bad "$f: modules cloud-init $version does not have: $(echo "$missing" | tr '\n' ' ')"
		fi
	fi
done

# --- 3. each target's datasource file, as build writes it ---
for t in targets/*.yaml; do
	target=$(basename "$t" .yaml)
	file=$work/ds-$target.cfg
	if ! "$qvsa" __datasource "$target" >"$file" 2>"$work/ds-$target.err"; then
		bad "datasource $target: qvsa __datasource failed: $(cat "$work/ds-$target.err")"
		continue
	fi
	size=$(wc -c <"$file")
	note="$size bytes"
	check "datasource $target" "$file" "$note"
	# cloud-init's own loader, as at boot: /etc/cloud/cloud.cfg then cloud.cfg.d/*.cfg.
	d=$copy/etc/cloud/cloud.cfg.d
	rm -f "$d/90-qvsa-datasource.cfg" # never write a shared inode: a new file
	cp "$file" "$d/90-qvsa-datasource.cfg"
	want=$(sed -n 's/^datasource_list: \[ *\(.*[^ ]\) *\]$/\1/p' "$file" | sed 's/, */,/g')
	got=$(chroot "$copy" env -i PATH=/usr/bin:/bin python3 -c '
from cloudinit import util
print(",".join(util.read_conf_with_confd("/etc/cloud/cloud.cfg").get("datasource_list") or []))' 2>&1)
	# ds-identify, which enables datasources before cloud-init starts, has its own line reader.
	# shellcheck disable=SC2016 # expanded by the shell inside the root
	di=$(chroot "$copy" env -i PATH=/usr/bin:/bin sh -c \
		'DI_MAIN=noop . /usr/lib/cloud-init/ds-identify; DI_KERNEL_CMDLINE=""; read_datasource_list; echo "$DI_DSLIST"' 2>&1 |
		tail -1 | tr ' ' ',')
	rm -f "$d/90-qvsa-datasource.cfg"
	if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$di" = "$want" ]; then
		ok "datasource $target: cloud-init and ds-identify read datasource_list [$got]"
	else
		bad "datasource $target: cloud-init reads datasource_list [$got], ds-identify [$di], the file says [$want]"
	fi
done

echo "cloudinit-schema: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
	echo "failures:$failures"
	exit 1
fi
exit 0
