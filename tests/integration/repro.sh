#!/usr/bin/env bash
# Bit-identical rebuilds: two builds of the example recipe with one
# SOURCE_DATE_EPOCH, into different --out folders and with different TMPDIRs
# (one on tmpfs where there is one: its readdir order is not ext4's), give
# byte-identical artifacts, manifest.json and SHA256SUMS. A build with
# another epoch must differ (else this test could not fail).
#
#   tests/integration/repro.sh [QVSA [OUT]]
#
# QVSA: the qvsa binary (default build/qvsa). OUT: a build's --out folder
# (holding qVSA-X.Y/manifest.json) made by the caller with the example
# recipe: it stands for the first build, and its epoch is read from its
# manifest. Without OUT both builds are made here. On a difference it names
# the file and prints the first differing offsets (cmp -l: offset, octal
# bytes). Exit 0: identical; 1: a difference; 2: cannot run.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
qvsa=$(realpath "${1:-$top/build/qvsa}")
given_out=${2:-}
cd "$top"

[ -x "$qvsa" ] || { echo "repro: $qvsa is not built (make all)" >&2; exit 2; }
# The libguestfs fallback (non-root, or QVSA_ASSEMBLE=guestfs) is not reproducible: docs/design.md.
if [ "$(id -u)" != 0 ] || [ "${QVSA_ASSEMBLE:-host}" = guestfs ]; then
	echo "repro: skipped (bit-identical rebuilds need the host-tool assembly: root, QVSA_ASSEMBLE unset or 'host')"
	exit 0
fi

work=$(mktemp -d /var/tmp/qvsa-repro-XXXXXX)
shm=
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=$(mktemp -d /dev/shm/qvsa-repro-XXXXXX)
other_pid=
trap '[ -n "$other_pid" ] && pkill -P "$other_pid" 2>/dev/null; wait; rm -rf "$work" ${shm:+"$shm"}' EXIT INT TERM
export QVSA_CACHE_DIR=${QVSA_CACHE_DIR:-$work/cache}
version=$(cat VERSION)
recipe=recipes/qvsa.yaml

# build NAME EPOCH TMPDIR [ARGS...]: build the example recipe into $work/NAME.
build() {
	local name=$1 epoch=$2 tmp=$3
	shift 3
	mkdir -p "$tmp"
	SOURCE_DATE_EPOCH=$epoch TMPDIR=$tmp "$qvsa" build "$recipe" --out "$work/$name" --accel tcg -q "$@" \
		>"$work/$name.log" 2>&1 && return 0
	echo "FAIL: build $name:"
	sed 's/^/    /' "$work/$name.log" | tail -20
	return 1
}

if [ -n "$given_out" ]; then
	a=$(realpath "$given_out")/$version
	epoch=$(sed -n 's/^ *"source_date_epoch": *\([0-9]*\).*/\1/p' "$a/manifest.json")
	[ -n "$epoch" ] || { echo "repro: no source_date_epoch in $a/manifest.json" >&2; exit 2; }
else
	epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
	build first "$epoch" "$work/tmp-first" -j 2 || exit 1
	a=$work/first/$version
fi
# The second build: another out folder, another TMPDIR (tmpfs if there is one) of another length.
build second-build "$epoch" "${shm:-$work}/tmp-second-build" -j 2 || exit 1
b=$work/second-build/$version
# Another epoch (below), built while the two are compared: cmp waits on the disk, the build on the CPU.
other=$((epoch + 86400))
build other-epoch "$other" "$work/tmp-other" --target kvm &
other_pid=$!

failed=0
files=$( (ls "$a"; ls "$b") | sort -u)
n=0
for f in $files; do
	n=$((n + 1))
	if [ ! -e "$a/$f" ] || [ ! -e "$b/$f" ]; then
		echo "FAIL: $f is in one build only"
		failed=1
	elif ! cmp -s "$a/$f" "$b/$f"; then
		echo "FAIL: $f differs ($(stat -c %s "$a/$f") and $(stat -c %s "$b/$f") bytes); first differing bytes (offset, octal):"
		cmp -l "$a/$f" "$b/$f" 2>&1 | head -8 | sed 's/^/    /'
		failed=1
	fi
done
if [ "$(echo "$files" | grep -c "^$version-")" -lt 13 ] || [ ! -e "$a/manifest.json" ] || [ ! -e "$a/SHA256SUMS" ]; then
	echo "FAIL: expected 13 artifacts, manifest.json and SHA256SUMS; compared: $(echo $files)"
	failed=1
fi

# Another epoch: the stamp and every time in the image change, so must the artifact.
if ! wait "$other_pid"; then
	failed=1
elif cmp -s "$a/$version-kvm.qcow2" "$work/other-epoch/$version/$version-kvm.qcow2"; then
	echo "FAIL: a build with SOURCE_DATE_EPOCH $other gave the same $version-kvm.qcow2 as $epoch"
	failed=1
fi

[ "$failed" = 0 ] && echo "PASS: $n files byte-identical across two builds (SOURCE_DATE_EPOCH $epoch, other out folder and TMPDIR${shm:+ on tmpfs}); another epoch changes them"
exit "$failed"
