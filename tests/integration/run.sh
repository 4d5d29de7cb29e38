#!/usr/bin/env bash
# Integration tier: really builds the example recipe and really boots it
# under libvirt (embedded QEMU driver). Slow: ~3-5 minutes under TCG.
# QVSA_SKIP_INTEGRATION=1 skips this tier (say why when you do).
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
qvsa=$top/build/qvsa

if [ -n "${QVSA_SKIP_INTEGRATION:-}" ]; then
	echo "integration: skipped (QVSA_SKIP_INTEGRATION is set)"
	exit 0
fi

work=$(mktemp -d /var/tmp/qvsa-it-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
out=$work/out
version=$(cat VERSION)
art=$out/$version/$version-kvm.qcow2
passed=0 failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
# run NAME EXPECTED_EXIT CMD...: run, keep output in $work/NAME.log, check the exit code.
run() {
	local name=$1 want=$2
	shift 2
	"$@" >"$work/$name.out" 2>"$work/$name.err"
	local rc=$?
	if [ "$rc" != "$want" ]; then
		bad "$name: exit $rc, expected $want"
		sed 's/^/    /' "$work/$name.err" | tail -40
		return 1
	fi
	return 0
}

# 1. A broken recipe: exit 2, one file:line:column message, nothing written.
cat >"$work/broken.yaml" <<'YAML'
name: broken
version: qVSA-1.0
disk:
  size: 256M
  partiton_table: mbr
personalization:
  platform_url: https://platform.example/
targets: [kvm]
YAML
if run broken-recipe 2 "$qvsa" build "$work/broken.yaml" --out "$work/broken-out"; then
	if grep -q "broken.yaml:5:3: .*partiton_table.*partition_table" "$work/broken-recipe.err" &&
		[ "$(wc -l <"$work/broken-recipe.err")" = 1 ] && [ ! -e "$work/broken-out" ]; then
		ok "broken recipe rejected with file:line:column ($(cat "$work/broken-recipe.err"))"
	else
		bad "broken recipe message: $(cat "$work/broken-recipe.err")"
	fi
fi

# 2. The driver audit: a recipe that drops a target's driver fails before any disk is assembled.
mkdir -p "$work/drop"
cat >"$work/drop/recipe.yaml" <<YAML
name: drop-driver
version: $version
base:
  modules:
    omit: [vmxnet3]
disk:
  size: 256M
personalization:
  platform_url: https://platform.example/
targets: [kvm, vmware]
YAML
if run driver-audit 1 "$qvsa" build "$work/drop/recipe.yaml" --out "$work/drop-out" --accel tcg; then
	if grep -q "driver audit .*(target vmware): initramfs lacks module vmxnet3" "$work/driver-audit.err" &&
		! grep -q "^\[assemble" "$work/driver-audit.err" && [ ! -e "$work/drop-out/$version" ] &&
		[ -z "$(find "$work/drop-out" -name '.qvsa-tmp-*' 2>/dev/null)" ]; then
		ok "driver audit: dropping vmxnet3 fails the vmware target before assembly"
	else
		bad "driver audit message: $(tail -2 "$work/driver-audit.err")"
	fi
fi

# 3. Build the example recipe: every target, writers two at a time.
if run build 0 "$qvsa" build recipes/qvsa.yaml --out "$out" --accel auto -j 2; then
	if [ "$(ls "$out/$version" | grep -c "^$version-")" = 13 ]; then
		ok "build wrote all 13 artifacts of 12 targets ($(sed -n 's/^built .* in \([0-9.]*s\).*/\1/p' "$work/build.out"))"
	else
		bad "build wrote: $(ls "$out/$version")"
	fi
	if (cd "$out/$version" && sha256sum -c --quiet SHA256SUMS) &&
		grep -q "\"sha256\": \"$(sha256sum "$art" | cut -d' ' -f1)\"" "$out/$version/manifest.json"; then
		ok "manifest.json and SHA256SUMS match the artifacts"
	else
		bad "manifest/SHA256SUMS do not match the artifacts"
	fi
	if tests/integration/conformance.sh "$out/$version" "$version" >"$work/conformance.out" 2>&1; then
		ok "conformance by other readers: $(grep -c '^PASS' "$work/conformance.out") checks"
	else
		bad "conformance:"
		grep -v '^PASS' "$work/conformance.out" | sed 's/^/    /'
	fi
fi

# 3b. Bit-identical rebuilds: a second build (another out folder, TMPDIR on tmpfs) equals the one above.
if [ -e "$out/$version/manifest.json" ]; then
	if tests/integration/repro.sh "$qvsa" "$out" >"$work/repro.out" 2>&1; then
		if grep -q "^repro: skipped" "$work/repro.out"; then
			cat "$work/repro.out"
		else
			ok "$(sed -n 's/^PASS: //p' "$work/repro.out")"
		fi
	else
		bad "rebuild differs:"
		sed 's/^/    /' "$work/repro.out" | head -40
	fi
fi

# 4. inspect reads the stamp from inside the image (also through a container: the OVA).
for a in "$art" "$out/$version/$version-vmware.ova"; do
	name=inspect-$(basename "$a")
	if run "$name" 0 "$qvsa" inspect "$a" --accel tcg; then
		if grep -q "^BOOTSTRAP_VERSION=\"$version\"" "$work/$name.out" && grep -q '^BUILD_ID="[0-9a-f]\{16\}"' "$work/$name.out"; then
			ok "inspect $(basename "$a") prints the stamp ($version)"
		else
			bad "inspect $(basename "$a") output lacks the stamp: $(head -5 "$work/$name.out")"
		fi
	fi
done

# 5. verify --all: every artifact as shipped boots with its platform's devices, gets its code
#    through that platform's own channel (SMBIOS identity, media, metadata services with the
#    platform's header and token rules, or the console prompt) and personalizes over HTTPS.
if run verify 0 "$qvsa" verify recipes/qvsa.yaml --out "$out" --all --accel tcg; then
	if [ "$(grep -c ' PASS$' "$work/verify.out")" = 13 ] && (cd "$out/$version" && sha256sum -c --quiet SHA256SUMS); then
		ok "verify --all: 13 artifacts of 12 targets PASS; artifacts unchanged"
		sed 's/^/    /' "$work/verify.out"
	else
		bad "verify output: $(cat "$work/verify.out")"
	fi
	want="aws:ec2/https aws:ec2/https azure:azure/https+ready azure-gen2:azure/https+ready gcp:gce/https
hyperv:console/https hyperv-gen2:console/https kvm:nocloud/https nutanix:configdrive/https oci:oci/https
openstack:openstack/https vmware:vmware/https xen:console/https"
	got=$(awk 'NR > 1 { print $1 ":" $7 }' "$work/verify.out" | sort | tr '\n' ' ')
	if [ "$got" = "$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')" ]; then
		ok "every target personalized through its own platform's channel over HTTPS, Azure's Ready report seen"
	else
		bad "channels: got '$got', want '$want'"
	fi
fi

# 5b. A guest told to trust another CA refuses the platform, and verify names why.
if run wrong-ca 1 "$qvsa" verify "$art" --accel tcg --wrong-ca; then
	if grep -q "refused the platform's certificate.*not signed by a trusted CA" "$work/wrong-ca.err"; then
		ok "wrong CA: $(grep -o "the appliance refused the platform's certificate.*" "$work/wrong-ca.err" | head -1 | cut -c1-150)"
	else
		bad "wrong CA: message lacks the reason: $(head -3 "$work/wrong-ca.err")"
	fi
fi

# 5c. libguestfs inspection (what virt-v2v and image importers run) names the OS.
if command -v virt-inspector >/dev/null; then
	if LIBGUESTFS_BACKEND_SETTINGS=force_tcg virt-inspector --format=qcow2 -a "$art" >"$work/inspector.xml" 2>"$work/inspector.err" &&
		grep -q "<distro>debian</distro>" "$work/inspector.xml" && grep -q "<name>linux</name>" "$work/inspector.xml"; then
		ok "virt-inspector names the OS: $(grep -o '<distro>[^<]*</distro>\|<product_name>[^<]*</product_name>\|<osinfo>[^<]*</osinfo>' "$work/inspector.xml" | tr -d '\n')"
	else
		bad "virt-inspector: $(head -c 600 "$work/inspector.xml" "$work/inspector.err")"
	fi
else
	bad "virt-inspector is missing (package libguestfs-tools)"
fi

# 6. A wrong personalization code fails with the platform's reason.
if run wrong-code 1 "$qvsa" verify "$art" --accel tcg --perscode 1111111111; then
	if grep -q "unknown personalization code" "$work/wrong-code.err"; then
		ok "wrong code: verify fails with the stub's reason"
	else
		bad "wrong code: message lacks the reason: $(head -3 "$work/wrong-code.err")"
	fi
fi

# 7. An image whose agent is broken: verify times out with a clear message.
# A recipe may not replace the agent (a reserved path), so the broken one
# comes as a template in a data folder of its own.
mkdir -p "$work/broken-agent" "$work/data/templates/broken-agent/rootfs/usr/sbin"
ln -s "$PWD/targets" "$work/data/targets"
ln -s "$PWD/templates/tiny-base" "$work/data/templates/tiny-base"
ln -s "$PWD/templates/bootstrap-agent" "$work/data/templates/bootstrap-agent"
cat >"$work/data/templates/broken-agent/rootfs/usr/sbin/qvsa-agent" <<'SH'
#!/bin/sh
echo "qvsa-agent: broken on purpose"
exit 1
SH
chmod 0755 "$work/data/templates/broken-agent/rootfs/usr/sbin/qvsa-agent"
cat >"$work/broken-agent/recipe.yaml" <<YAML
name: broken-agent
version: $version
disk:
  size: 256M
templates: [tiny-base, bootstrap-agent, broken-agent]
personalization:
  platform_url: https://platform.example/
targets: [kvm]
YAML
if QVSA_DATADIR="$work/data" run build-broken-agent 0 "$qvsa" build "$work/broken-agent/recipe.yaml" --out "$work/out2" --accel tcg; then
	if run broken-agent 1 "$qvsa" verify "$work/out2/$version/$version-kvm.qcow2" --accel tcg --timeout 40; then
		if grep -q "no QVSA-STATUS" "$work/broken-agent.err" && grep -q "broken on purpose" "$work/broken-agent.err"; then
			ok "broken agent: verify times out, names the cause and shows the console"
		else
			bad "broken agent: message: $(head -5 "$work/broken-agent.err")"
		fi
	fi
fi

# 8. Standalone sub-tiers, each its own script (they print their own
# PASS/FAIL lines): the signed set checked as a customer would, offline;
# verify through a private libvirtd (storage pool, streams), not the
# embedded driver; builds and boots interrupted and killed at each phase;
# build and verify as an ordinary user; the Debian package installed into a fresh root, checking an artifact there.
sub() {
	local name=$1
	shift
	if "$@" >"$work/$name.log" 2>&1; then
		ok "$name: $(tail -1 "$work/$name.log")"
	else
		bad "$name: $(tail -1 "$work/$name.log")"
		grep -E "FAIL|error" "$work/$name.log" | head -20 | sed 's/^/    /'
	fi
}
sub release tests/integration/release.sh "$qvsa" "$out"
sub remote tests/integration/remote.sh "$qvsa" "$out"
sub interrupt tests/integration/interrupt.sh "$qvsa"
sub interrupt-verify tests/integration/interrupt-verify.sh "$qvsa"
sub nonroot tests/integration/nonroot.sh "$qvsa"
if "$qvsa" keygen "$work/release.key" >/dev/null 2>&1 &&
	"$qvsa" sign "$out/$version/manifest.json" --key "$work/release.key" >/dev/null 2>&1; then
	sub deb tests/integration/deb.sh "$out/$version" "$work/release.key.pub"
else
	bad "deb: could not sign the set for the package test"
fi

echo "integration: $passed passed, $failed failed"
[ "$failed" = 0 ]
