#!/usr/bin/env bash
# A signed release, checked as a customer would (docs/release.md): no boot,
# `qvsa verify ARTIFACT --offline --manifest manifest.json --pubkey KEY.pub`.
#
#   tests/integration/release.sh [QVSA [OUT]]
#
# QVSA: the qvsa binary (default build/qvsa). OUT: a build's --out folder
# (holding qVSA-X.Y/manifest.json) made by the caller; its manifest is
# copied and signed here with a fresh key, its artifacts never modified.
# Without OUT the script builds kvm, vmware and aws itself with --sign
# (host-tool assembly, a few seconds). Every file of the set must pass,
# under its own name and renamed; each tampering must fail with exit 1
# naming what differs:
#   - one byte of an artifact changed;
#   - the stamp (/etc/qvsa-release) edited inside a raw artifact, the
#     manifest re-hashed to match: unsigned (signature fails), then
#     re-signed with the right key (the stamp check fails);
#   - the manifest re-signed with a foreign key.
# Also: per-target builds merged with `qvsa manifest merge` give the same
# entries as one build of all three targets.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
qvsa=$(realpath "${1:-$top/build/qvsa}")
given_out=${2:-}
cd "$top"

for tool in debugfs sfdisk sha256sum; do
	command -v "$tool" >/dev/null || { echo "release: skipped ($tool is not installed)"; exit 0; }
done
[ -x "$qvsa" ] || { echo "release: $qvsa is not built (make all)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/qvsa-release-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
export QVSA_CACHE_DIR=${QVSA_CACHE_DIR:-$work/cache}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
version=$(cat VERSION)
passed=0 failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
# run NAME EXPECTED_EXIT CMD...: run, keep output in $work/NAME.{out,err}, check the exit code.
run() {
	local name=$1 want=$2
	shift 2
	"$@" >"$work/$name.out" 2>"$work/$name.err"
	local rc=$?
	if [ "$rc" != "$want" ]; then
		bad "$name: exit $rc, expected $want"
		sed 's/^/    /' "$work/$name.err" "$work/$name.out" | tail -20
		return 1
	fi
	return 0
}
# expect_fail NAME NEEDLE CMD...: exit 1 and stderr naming NEEDLE.
expect_fail() {
	local name=$1 needle=$2
	shift 2
	run "$name" 1 "$@" || return
	if grep -q -- "$needle" "$work/$name.err"; then
		ok "$name: refused ($(sed 's/^qvsa: //' "$work/$name.err" | head -1 | cut -c1-150))"
	else
		bad "$name: exit 1 but the message lacks '$needle': $(head -1 "$work/$name.err")"
	fi
}

run keygen 0 "$qvsa" keygen "$work/release.key" || exit 1
run keygen-foreign 0 "$qvsa" keygen "$work/foreign.key" || exit 1
key=$work/release.key pub=$work/release.key.pub

# The set: built here with --sign, or the caller's build signed here.
set=$work/set
if [ -n "$given_out" ]; then
	src=$(realpath "$given_out")/$version
	[ -f "$src/manifest.json" ] || { echo "release: $src/manifest.json not found" >&2; exit 2; }
	mkdir -p "$set"
	cp "$src/manifest.json" "$set/"
	for f in "$src/$version"-*; do ln -s "$f" "$set/"; done
	run sign 0 "$qvsa" sign "$set/manifest.json" --key "$key" || exit 1
else
	if run build 0 "$qvsa" build recipes/qvsa.yaml --target kvm --target vmware --target aws --out "$work/out" \
		--accel tcg --sign "$key"; then
		ok "build --sign: $(grep -c "^  [a-z]" "$work/build.out") lines of report, signature $(grep -o 'manifest.json.sig' "$work/build.out")"
	else
		exit 1
	fi
	ln -s "$work/out/$version" "$set"
fi
manifest=$set/manifest.json
[ "$(stat -c %s "$manifest.sig")" = 64 ] && ok "manifest.json.sig: a raw 64-byte Ed25519 signature" ||
	bad "manifest.json.sig is $(stat -c %s "$manifest.sig") bytes"
if command -v openssl >/dev/null; then
	if openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$manifest" -sigfile "$manifest.sig" >/dev/null 2>&1; then
		ok "stock openssl pkeyutl verifies the signature (no qvsa needed)"
	else
		bad "openssl pkeyutl does not verify the signature"
	fi
fi
check() { "$qvsa" verify "$1" --offline --manifest "${2:-$manifest}" --pubkey "${3:-$pub}"; }

# 1. Every file of the set, as published and renamed.
n=0
for a in "$set/$version"-*; do
	n=$((n + 1))
	name=$(basename "$a")
	run "check-$name" 0 check "$a" && ok "offline verify: $name"
done
[ "$n" -gt 0 ] || bad "no artifacts in $set"
ova=$(ls "$set/$version"-*.ova 2>/dev/null | head -1)
renamed=${ova:-$(ls "$set/$version"-* | head -1)}
for new in "appliance.${renamed##*.}" "$(basename "${renamed%.*}") (1).${renamed##*.}"; do
	cp --sparse=always "$(realpath "$renamed")" "$work/$new"
	if run "renamed-$n" 0 check "$work/$new" && grep -q "OK: $(basename "$renamed")" "$work/renamed-$n.out"; then
		ok "offline verify of a renamed copy: '$new' is $(basename "$renamed")"
	else
		bad "renamed '$new': $(cat "$work/renamed-$n.out")"
	fi
	n=$((n + 1))
done

# 2. One byte of an artifact changed.
victim=$(ls "$set/$version"-* | head -1)
cp --sparse=always "$(realpath "$victim")" "$work/byte.$(basename "$victim")"
size=$(stat -c %s "$work/byte.$(basename "$victim")")
printf '\x5a' | dd of="$work/byte.$(basename "$victim")" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_fail one-byte "is not listed in manifest" check "$work/byte.$(basename "$victim")"

# 3. The stamp edited inside a raw artifact, the manifest re-hashed to match.
raw=$(ls "$set/$version"-*.raw 2>/dev/null | head -1)
if [ -z "$raw" ]; then
	bad "stamp tampering: the set has no raw artifact (build aws)"
else
	forged=$work/forged
	mkdir -p "$forged"
	fraw=$forged/$(basename "$raw")
	cp --sparse=always "$(realpath "$raw")" "$fraw"
	start=$(sfdisk --dump "$fraw" | sed -n 's/.*start= *\([0-9]*\),.*bootable.*/\1/p;' | head -1)
	[ -n "$start" ] || start=$(sfdisk --dump "$fraw" | sed -n 's/.*start= *\([0-9]*\),.*/\1/p' | tail -1)
	dev="$fraw?offset=$((start * 512))"
	debugfs -R "cat /etc/qvsa-release" "$dev" 2>/dev/null | sed 's/^BOOTSTRAP_VERSION=.*/BOOTSTRAP_VERSION="qVSA-9.9"/' >"$work/stamp"
	printf 'rm /etc/qvsa-release\nwrite %s /etc/qvsa-release\n' "$work/stamp" >"$work/debugfs.cmd"
	debugfs -w -f "$work/debugfs.cmd" "$dev" >/dev/null 2>&1
	if debugfs -R "cat /etc/qvsa-release" "$dev" 2>/dev/null | grep -q 'qVSA-9.9'; then
		old=$(sha256sum "$(realpath "$raw")" | cut -d' ' -f1)
		new=$(sha256sum "$fraw" | cut -d' ' -f1)
		sed "s/$old/$new/" "$manifest" >"$forged/manifest.json"
		cp "$manifest.sig" "$forged/manifest.json.sig"
		expect_fail stamp-rehashed-unsigned "signature does not verify" check "$fraw" "$forged/manifest.json"
		run resign 0 "$qvsa" sign "$forged/manifest.json" --key "$key"
		expect_fail stamp-rehashed-resigned "stamp does not match.*BOOTSTRAP_VERSION 'qVSA-9.9'" \
			check "$fraw" "$forged/manifest.json"
	else
		bad "stamp tampering: debugfs could not rewrite /etc/qvsa-release in $fraw"
	fi
fi

# 4. The manifest re-signed with a foreign key.
mkdir -p "$work/foreign"
cp "$manifest" "$work/foreign/manifest.json"
run sign-foreign 0 "$qvsa" sign "$work/foreign/manifest.json" --key "$work/foreign.key"
expect_fail foreign-key "signature does not verify with public key" check "$victim" "$work/foreign/manifest.json"

# 5. Bad usage is exit 2, not a verdict.
run no-pubkey 2 "$qvsa" verify "$victim" --offline --manifest "$manifest" && ok "--manifest without --pubkey: exit 2"
run pub-as-key 2 "$qvsa" sign "$work/foreign/manifest.json" --key "$pub" &&
	grep -q "not a PEM private key" "$work/pub-as-key.err" && ok "sign with a public key: exit 2, named"
if grep -q "BEGIN\|MC4CAQAw" "$work"/*.err; then bad "a key's PEM text appears in a message"; else ok "no key material in any message"; fi

# 6. Per-target builds (as CI jobs) merged: the same entries as one build.
if [ -z "$given_out" ]; then
	for t in kvm vmware aws; do
		run "job-$t" 0 "$qvsa" build recipes/qvsa.yaml --target "$t" --out "$work/job-$t" --accel tcg || break
	done
	mkdir -p "$work/merged"
	if run merge 0 "$qvsa" manifest merge "$work/merged/manifest.json" "$work"/job-*/"$version"/manifest.json; then
		jq_files() { grep -o '"\(file\|sha256\)": "[^"]*"' "$1" | sort; }
		if [ "$(jq_files "$work/merged/manifest.json")" = "$(jq_files "$manifest")" ]; then
			ok "manifest merge of 3 per-target builds: the same files and SHA-256s as one build"
		else
			bad "merged entries differ from the one build's"
		fi
		run merge-sign 0 "$qvsa" sign "$work/merged/manifest.json" --key "$key"
		run merged-check 0 check "$set/$version-kvm.qcow2" "$work/merged/manifest.json" &&
			ok "offline verify against the merged, signed manifest"
	fi
	sed 's/"recipe_sha256": "./"recipe_sha256": "0/' "$work/job-aws/$version/manifest.json" >"$work/other.json"
	run merge-conflict 2 "$qvsa" manifest merge "$work/bad.json" "$work/job-kvm/$version/manifest.json" "$work/other.json" &&
		grep -q "recipe_sha256 differs" "$work/merge-conflict.err" && ok "merge refuses another recipe checksum (exit 2)"
fi

echo "release: $passed passed, $failed failed"
[ "$failed" = 0 ]
