#!/usr/bin/env bash
# The debian base tier (make integration-debian): builds recipes/qvsa-debian.yaml
# for kvm and vmware from an empty cache (mmdebstrap of Debian 12 with systemd
# and cloud-init), builds again from the cached root tree, verifies both
# artifacts under the embedded libvirt with real cloud-init, checks the
# sysprep with libguestfs tools (virt-ls, virt-cat), that virt-inspector
# names Debian 12, that every cloud-config qvsa writes passes cloud-init's
# own validator, boots a UEFI target (GRUB EFI), and converts the OVA with
# virt-v2v. Slow: ~10 minutes
# under TCG. QVSA_SKIP_INTEGRATION=1 skips it (say why when you do).
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
qvsa=$top/build/qvsa

if [ -n "${QVSA_SKIP_INTEGRATION:-}" ]; then
	echo "integration-debian: skipped (QVSA_SKIP_INTEGRATION is set)"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "integration-debian: skipped: base 'debian' builds as root"
	exit 0
fi

work=$(mktemp -d /var/tmp/qvsa-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
# A cache of its own: the first build really runs mmdebstrap; the KVM probe's verdict is reused.
export QVSA_CACHE_DIR=$work/cache
mkdir -p "$QVSA_CACHE_DIR"
cp -a "${XDG_CACHE_HOME:-$HOME/.cache}"/qvsa/accel-probe-* "$QVSA_CACHE_DIR/" 2>/dev/null
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
recipe=recipes/qvsa-debian.yaml
out=$work/out
version=$(cat VERSION)
set_dir=$out/$version
qcow=$set_dir/$version-kvm.qcow2
ova=$set_dir/$version-vmware.ova
passed=0 failed=0
ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
now() { date +%s.%N; }

# 1. First build: mmdebstrap (unshare or root mode, said once), kvm and vmware.
t0=$(now)
if "$qvsa" build "$recipe" --target kvm --target vmware --out "$out" >"$work/build1.log" 2>&1; then
	t1=$(now)
	mode=$(grep -o "mmdebstrap in [a-z]* mode" "$work/build1.log")
	if [ -f "$qcow" ] && [ -f "$ova" ] && [ -n "$mode" ]; then
		ok "first build in $(secs "$t0" "$t1") s ($mode): $(du -h --apparent-size "$qcow" | cut -f1) qcow2, $(du -h --apparent-size "$ova" | cut -f1) OVA"
	else
		bad "first build: artifacts or the mmdebstrap mode notice missing"
	fi
else
	bad "first build: $(tail -3 "$work/build1.log")"
	echo "integration-debian: $passed passed, $failed failed"
	exit 1
fi
tree=$(ls -d "$QVSA_CACHE_DIR"/debian/*/tree | head -1)

# 2. Second build: the cached root tree, nothing downloaded, the same bytes.
sha_before=$(sha256sum "$qcow" | cut -d' ' -f1)
t0=$(now)
if "$qvsa" build "$recipe" --target kvm --target vmware --out "$out" >"$work/build2.log" 2>&1; then
	t1=$(now)
	if grep -q "reusing the cached root tree" "$work/build2.log" && ! grep -q "mmdebstrap in" "$work/build2.log"; then
		if [ "$(sha256sum "$qcow" | cut -d' ' -f1)" = "$sha_before" ]; then
			ok "cached rebuild in $(secs "$t0" "$t1") s, reusing the root tree, byte-identical qcow2"
		else
			bad "cached rebuild: the qcow2 differs from the first build's"
		fi
	else
		bad "cached rebuild did not reuse the root tree: $(head -3 "$work/build2.log")"
	fi
else
	bad "cached rebuild: $(tail -3 "$work/build2.log")"
fi

# 3. Sysprep, read with libguestfs's own tools from the artifact as shipped.
if virt-ls --format=qcow2 -a "$qcow" -lR /var /etc >"$work/ls.txt" 2>"$work/ls.err"; then
	probs=""
	grep -q "ssh_host_" "$work/ls.txt" && probs="$probs ssh-host-keys"
	grep -E "^-.* /var/lib/apt/lists/[^/]+$" "$work/ls.txt" | grep -v "/lock$" | grep -q . && probs="$probs apt-lists"
	grep -E "^-.* /var/cache/apt/.*\.(bin|deb)$" "$work/ls.txt" | grep -q . && probs="$probs apt-caches"
	grep -E "^-.* /var/lib/cloud/" "$work/ls.txt" | grep -q . && probs="$probs cloud-init-state"
	grep -q " /var/lib/systemd/random-seed$" "$work/ls.txt" && probs="$probs random-seed"
	# Logs: regular files under /var/log with a size other than 0 (virt-ls -l: TYPE MODE SIZE PATH).
	awk '$1 == "-" && $4 ~ /^\/var\/log\// && $3 != 0' "$work/ls.txt" >"$work/logs.txt"
	[ -s "$work/logs.txt" ] && probs="$probs logs($(wc -l <"$work/logs.txt"))"
	if [ -z "$probs" ] && grep -q " /etc/machine-id$" "$work/ls.txt"; then
		ok "sysprep (virt-ls): no SSH host keys, apt lists or caches, cloud-init state, random seed or logs"
	else
		bad "sysprep (virt-ls):$probs"
	fi
else
	bad "virt-ls: $(tail -2 "$work/ls.err")"
fi
if virt-cat --format=qcow2 -a "$qcow" /etc/machine-id >"$work/mid" 2>"$work/cat.err" &&
	virt-cat --format=qcow2 -a "$qcow" /etc/shadow >"$work/shadow" 2>>"$work/cat.err"; then
	rootpw=$(awk -F: '$1 == "root" { print $2 }' "$work/shadow")
	if [ ! -s "$work/mid" ] && { [ "$rootpw" = "*" ] || [ "${rootpw#!}" != "$rootpw" ]; }; then
		ok "sysprep (virt-cat): /etc/machine-id empty, root has no password"
	else
		bad "sysprep (virt-cat): machine-id $(wc -c <"$work/mid") bytes, root password field not locked"
	fi
else
	bad "virt-cat: $(tail -2 "$work/cat.err")"
fi
if "$qvsa" inspect "$qcow" --accel tcg >"$work/inspect.txt" 2>&1; then
	if grep -q "^# sysprep" "$work/inspect.txt" && ! grep -A20 "^# sysprep" "$work/inspect.txt" | grep -q "FAIL"; then
		ok "qvsa inspect reports sysprep: $(grep -A20 '^# sysprep' "$work/inspect.txt" | grep -c ': ok') checks ok"
	else
		bad "qvsa inspect sysprep: $(grep -A20 '^# sysprep' "$work/inspect.txt" | tr '\n' ' ')"
	fi
else
	bad "qvsa inspect: $(tail -2 "$work/inspect.txt")"
fi

# 4. virt-inspector names Debian 12.
if virt-inspector --format=qcow2 -a "$qcow" >"$work/inspector.xml" 2>"$work/inspector.err"; then
	distro=$(xmllint --xpath 'string(//operatingsystem/distro)' "$work/inspector.xml" 2>/dev/null)
	major=$(xmllint --xpath 'string(//operatingsystem/major_version)' "$work/inspector.xml" 2>/dev/null)
	if [ "$distro" = debian ] && [ "$major" = 12 ]; then
		ok "virt-inspector: distro $distro, major version $major"
	else
		bad "virt-inspector: distro '$distro', major version '$major'"
	fi
else
	bad "virt-inspector: $(tail -2 "$work/inspector.err")"
fi

# 5. Every cloud-config qvsa writes passes cloud-init's own validator.
if tests/integration/cloudinit-schema.sh "$tree" >"$work/schema.log" 2>&1; then
	ok "cloud-init schema: $(tail -1 "$work/schema.log")"
else
	bad "cloud-init schema: $(grep -i fail "$work/schema.log" | head -3 | tr '\n' ' ')"
fi

# 6. Both artifacts boot and personalize through real cloud-init.
t0=$(now)
if "$qvsa" verify "$recipe" --target kvm --target vmware --out "$out" --json >"$work/verify.json" 2>"$work/verify.err"; then
	t1=$(now)
	summary=$(python3 - "$work/verify.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
ok = [r for r in runs if r.get("passed") and r.get("base") == "debian"
      and (r.get("base_check") or "").startswith("cloud-init done, no errors")]
print(len(ok), "; ".join("%s: boot %ss, %s" % (r["target"], r["seconds"].get("boot"), r["base_check"]) for r in runs))
PY
)
	if [ "${summary%% *}" = 2 ]; then
		ok "verify kvm and vmware in $(secs "$t0" "$t1") s, both PASS through real cloud-init (${summary#* })"
	else
		bad "verify: ${summary:-no report}; $(head -c 600 "$work/verify.json")"
	fi
else
	bad "verify: $(tail -5 "$work/verify.err" | tr '\n' ' ')"
fi
cp "$work/verify.json" "${QVSA_DEBIAN_REPORT:-/dev/null}" 2>/dev/null

# 7. UEFI: hyperv-gen2 gets its own GPT disk with GRUB EFI on the ESP; the
# code comes at the console there (no datasource: cloud-init stays off).
if "$qvsa" build "$recipe" --target hyperv-gen2 --out "$out" >"$work/uefi.log" 2>&1 &&
	"$qvsa" verify "$recipe" --target hyperv-gen2 --out "$out" --json >"$work/uefi.json" 2>"$work/uefi.err" &&
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))[0]; sys.exit(not (r["passed"] and r["base"] == "debian"))' "$work/uefi.json"; then
	ok "UEFI (hyperv-gen2, GRUB EFI, console channel): PASS, $(grep -o '"base_check": "[^"]*"' "$work/uefi.json")"
else
	bad "UEFI hyperv-gen2: $(tail -3 "$work/uefi.log" "$work/uefi.err" | tr '\n' ' ')"
fi

# 8. A full virt-v2v conversion of the OVA.
mkdir -p "$work/v2v"
t0=$(now)
if virt-v2v -i ova "$ova" -o local -os "$work/v2v" >"$work/v2v.log" 2>&1; then
	t1=$(now)
	if ls "$work/v2v"/*-sda >/dev/null 2>&1 && ls "$work/v2v"/*.xml >/dev/null 2>&1; then
		ok "virt-v2v -i ova -o local converted the OVA in $(secs "$t0" "$t1") s"
	else
		bad "virt-v2v: no disk or domain XML in the output: $(ls "$work/v2v")"
	fi
else
	bad "virt-v2v: $(grep -iE "error|fail" "$work/v2v.log" | tail -3 | tr '\n' ' ')"
fi

echo "integration-debian: $passed passed, $failed failed"
[ "$failed" = 0 ]
