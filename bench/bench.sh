#!/bin/bash
# make bench: qvsa's writers against the script they replace, on one disk, in
# one run; then the whole build and verify of the example recipe. docs/bench.md
# says what is measured and how to read it.
#
# Knobs (environment):
#   BENCH_QUICK=1         a ~100 MB payload on a 1 GiB disk (development)
#   BENCH_PAYLOAD_MB=N    payload size in MB (default 1000, quick 100)
#   BENCH_DISK_GB=N       disk size in GiB (default: twice the payload, at least 1)
#   BENCH_ROUNDS=N        alternating rounds of naive script and qvsa (default 3)
#   BENCH_VERIFY=0        skip `qvsa verify --all` of the example recipe
#   BENCH_EXAMPLE=0       skip the example recipe altogether
#   BENCH_JOBS=N          qvsa build -j (default: nproc)
#   BENCH_ACCEL=A         qvsa --accel (default auto)
#   BENCH_RESULTS=DIR     where the JSON goes (default bench/results)
#   BENCH_TMPDIR=DIR      where the scratch folder is made (default $TMPDIR or /tmp)
#   BENCH_KEEP=1          keep the scratch folder (logs, times.tsv)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
qvsa=$top/build/qvsa
ver=$(cat "$top/VERSION")
# The recipe's targets, in the order naive.sh writes them.
targets="kvm, openstack, nutanix, oci, vmware, azure, azure-gen2, hyperv, hyperv-gen2, gcp, aws, xen"

quick=${BENCH_QUICK:-0}
[ "$quick" = 1 ] && def_mb=100 || def_mb=1000
payload_mb=${BENCH_PAYLOAD_MB:-$def_mb}
disk_gb=${BENCH_DISK_GB:-$(( (2 * payload_mb + 1023) / 1024 ))}
(( disk_gb >= 1 )) || disk_gb=1
rounds=${BENCH_ROUNDS:-3}
verify=${BENCH_VERIFY:-1}
example=${BENCH_EXAMPLE:-1}
jobs=${BENCH_JOBS:-$(nproc)}
accel=${BENCH_ACCEL:-auto}
results=${BENCH_RESULTS:-$top/bench/results}

for tool in qemu-img pigz gzip openssl sha256sum /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (make deps installs it)" >&2; exit 2; }
done
[ -x "$qvsa" ] || { echo "bench: $qvsa not built (make all)" >&2; exit 2; }

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/qvsa-bench.XXXXXX")
cleanup() {
	local rc=$?
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: scratch kept in $work" >&2; else rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

times=$work/times.tsv   # ROUND KIND KEY VALUE
meta=$work/meta.tsv     # KEY VALUE
sizes=$work/sizes.tsv   # SIDE FILE BYTES
: >"$times"; : >"$meta"; : >"$sizes"
say() { printf '[bench] %s\n' "$*" >&2; }
put() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$times"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# timed ROUND KIND KEY CMD...: wall time of CMD, output discarded.
timed() {
	local r=$1 kind=$2 key=$3 t0
	shift 3
	t0=$EPOCHREALTIME
	"$@" >/dev/null
	put "$r" "$kind" "$key" "$(elapsed "$t0" "$EPOCHREALTIME")"
}

# qvsa_run ROUND KIND LOG CMD...: one qvsa command under /usr/bin/time -v;
# records its wall time and peak RSS; returns its status.
qvsa_run() {
	local r=$1 kind=$2 log=$3 t0 rc=0
	shift 3
	t0=$EPOCHREALTIME
	/usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1 || rc=$?
	put "$r" "$kind" wall "$(elapsed "$t0" "$EPOCHREALTIME")"
	put "$r" "$kind" maxrss_kb "$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log.time")"
	if ((rc)); then
		echo "bench: '$*' failed (exit $rc); its output ends:" >&2
		tail -30 "$log" >&2
	fi
	return $rc
}

# The phase times `qvsa build` prints: "built V (id) in Xs: prepare Ps, assemble As, write Ws".
qvsa_phases() {
	local r=$1 kind=$2 log=$3 line
	line=$(grep -E '^built .* in [0-9.]+s: ' "$log" | tail -1) ||
		{ echo "bench: no 'built ... in Ns' line in $log" >&2; tail -20 "$log" >&2; return 1; }
	put "$r" "$kind" build "$(sed -E 's/.* in ([0-9.]+)s: .*/\1/' <<<"$line")"
	local ph
	for ph in prepare assemble write; do
		put "$r" "$kind" "$ph" "$(sed -E "s/.*[ ,]$ph ([0-9.]+)s.*/\1/" <<<"$line")"
	done
}

sizes_of() { # SIDE DIR
	local f
	for f in "$2"/*; do printf '%s\t%s\t%s\n' "$1" "${f##*/}" "$(stat -c %s "$f")" >>"$sizes"; done
}

# --- 1. the input: a payload of the host's real binaries and text, and a recipe carrying it.
say "payload: ${payload_mb} MB of /usr/bin, /usr/lib/modules, /usr/share/doc (shuffled, fixed seed); disk ${disk_gb} GiB"
recipe_dir=$work/recipe
mkdir -p "$recipe_dir"
head -c 65536 /dev/zero >"$work/seed"   # a fixed --random-source: the same shuffle on every run
# find's complaints (a file vanishing under it) cost nothing here: what it lists is the input.
find /usr/bin /usr/lib/modules /usr/share/doc -type f -readable -printf '%s\t%H/%P\n' >"$work/files" 2>/dev/null || true
sort -R --random-source="$work/seed" "$work/files" |
	awk -F'\t' -v lim=$((payload_mb * 1000000)) 'tot < lim { tot += $1; print substr($2, 2) }' >"$work/payload.list"
tar -cf "$recipe_dir/payload.tar" -C / --ignore-failed-read --verbatim-files-from -T "$work/payload.list"
payload_bytes=$(stat -c %s "$recipe_dir/payload.tar")
(( payload_bytes < payload_mb * 1000000 * 9 / 10 )) &&
	say "warning: the host has only $((payload_bytes / 1000000)) MB of such files"
cat >"$recipe_dir/bench.yaml" <<YAML
# Generated by bench/bench.sh: the example recipe's settings plus a payload.
include: $top/recipes/common.yaml
name: qvsa-bench
version: $ver
disk:
  size: ${disk_gb}G
files:
  - source: payload.tar
    dest: /opt/bench/payload.tar
targets: [$targets]
YAML

qcow2_compress=0
grep -Eq '^[[:space:]]*compress:[[:space:]]*"?(true|yes)"?' "$top/targets/kvm.yaml" && qcow2_compress=1
export NAIVE_QCOW2_COMPRESS=$qcow2_compress
export QVSA_CACHE_DIR=${QVSA_CACHE_DIR:-$HOME/.cache/qvsa}
qb=("$qvsa" build "$recipe_dir/bench.yaml" -j "$jobs" --accel "$accel")

# --- 2. one build for the disk; its aws .raw artifact is the assembled disk as is.
say "first qvsa build of the bench recipe (caches warm up; not a round)"
qvsa_run 0 qvsa-first "$work/first.log" "${qb[@]}" --out "$work/first"
qvsa_phases 0 qvsa-first "$work/first.log"
cp --sparse=always "$work/first/$ver/$ver-aws.raw" "$work/disk.raw"
ls "$work/first/$ver" | grep -v -e '^manifest.json$' >"$work/qvsa.names"
rm -rf "$work/first"
data_bytes=$(python3 "$here/extents.py" "$work/disk.raw" "$work/dense.bin")
say "disk: $(stat -c %s "$work/disk.raw") bytes, $data_bytes bytes of data (allocated extents)"

# --- 3. alternating rounds: naive script, qvsa, reference rates.
naive_round() {
	local r=$1 out=$work/naive
	say "round $r: naive script"
	"$here/naive.sh" "$work/disk.raw" "$out" "$ver" "$times" "$r"
	timed "$r" naive-after sync sync
	if [ "$r" = 1 ]; then
		sizes_of naive "$out"
		ls "$out" >"$work/naive.names"
		diff -u "$work/naive.names" "$work/qvsa.names" >&2 ||
			{ echo "bench: the naive script and qvsa do not write the same set of files" >&2; exit 1; }
	fi
	rm -rf "$out"
}
qvsa_round() {
	local r=$1 out=$work/qvsa
	say "round $r: qvsa build"
	qvsa_run "$r" qvsa "$work/qvsa-$r.log" "${qb[@]}" --out "$out"
	qvsa_phases "$r" qvsa "$work/qvsa-$r.log"
	timed "$r" qvsa-after sync sync
	[ "$r" = 1 ] && sizes_of qvsa "$out/$ver"
	rm -rf "$out"
}
refs_round() {
	local r=$1 n
	n=$(nproc)
	say "round $r: reference rates (deflate 1 and $n cores, sha256sum, openssl)"
	timed "$r" ref gzip-1 gzip -6 -c "$work/dense.bin"
	timed "$r" ref pigz-all pigz -6 -p "$n" -c "$work/dense.bin"
	timed "$r" ref sha256sum sha256sum "$work/dense.bin"
	timed "$r" ref openssl-sha256 openssl dgst -sha256 "$work/dense.bin"
}
for ((r = 1; r <= rounds; r++)); do
	if ((r % 2)); then
		naive_round "$r"; qvsa_round "$r"; refs_round "$r"
	else
		refs_round "$r"; qvsa_round "$r"; naive_round "$r"
	fi
done

# --- 4. the example recipe, all targets: whole build, and verify --all.
if [ "$example" = 1 ]; then
	say "example recipe: qvsa build (all targets)"
	ex=("$top/recipes/qvsa.yaml" --out "$work/example" --accel "$accel")
	qvsa_run 0 example-build "$work/example-build.log" "$qvsa" build "${ex[@]}" -j "$jobs"
	qvsa_phases 0 example-build "$work/example-build.log"
	if [ "$verify" = 1 ]; then
		say "example recipe: qvsa verify --all (boots every artifact)"
		vrc=0
		qvsa_run 0 example-verify "$work/example-verify.log" "$qvsa" verify "${ex[@]}" --all || vrc=$?
		put 0 example-verify exit "$vrc"
	fi
	rm -rf "$work/example"
fi

# --- 5. the table and the JSON.
{
	printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'commit\t%s\n' "$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
	printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'nproc\t%s\n' "$(nproc)"
	printf 'quick\t%s\n' "$quick"
	printf 'rounds\t%s\n' "$rounds"
	printf 'jobs\t%s\n' "$jobs"
	printf 'accel\t%s\n' "$accel"
	printf 'version\t%s\n' "$ver"
	printf 'payload_bytes\t%s\n' "$payload_bytes"
	printf 'disk_bytes\t%s\n' "$(stat -c %s "$work/disk.raw")"
	printf 'data_bytes\t%s\n' "$data_bytes"
	printf 'qcow2_compress\t%s\n' "$qcow2_compress"
	printf 'verify\t%s\n' "$([ "$example" = 1 ] && echo "$verify" || echo 0)"
} >"$meta"
mkdir -p "$results"
json=$results/bench-$(date -u +%Y%m%dT%H%M%SZ)$([ "$quick" = 1 ] && echo -quick || true).json
python3 "$here/report.py" "$meta" "$times" "$sizes" "$json"
say "results: $json"
