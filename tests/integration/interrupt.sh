#!/usr/bin/env bash
# Interrupted builds leave a consistent release and no litter (issue 14).
#
#   tests/integration/interrupt.sh [QVSA]
#
# QVSA: the qvsa binary (default build/qvsa). Builds three targets (two
# disks: bios and uefi; host-tool assembly, seconds each) into a scratch
# out dir, then rebuilds with another SOURCE_DATE_EPOCH (so every byte of
# the new set differs) and stops the rebuild with SIGINT and SIGTERM at
# each phase, and with SIGKILL at two. It waits on the test hook
# QVSA_TEST_PAUSE_AT=PHASE (build_out.h: qvsa says "test hook: paused at
# PHASE" and waits for a signal), never on a sleep. After each:
#   - exit 130/143 and "qvsa: interrupted" (SIGINT/SIGTERM);
#   - the version folder is the old set, unchanged: `sha256sum -c SHA256SUMS`
#     passes and manifest.json lists exactly the files beside it;
#   - SIGINT/SIGTERM: no .qvsa-tmp-* folder and no registered run left;
#     SIGKILL: the next build removes what the killed one registered (its
#     private out-dir folder and its work folder) and says so.
# Also: a completed rebuild publishes the new set whole; a --target build
# into a full set keeps the rest (same build id); a second build into a
# locked out dir fails at once naming the holder's pid; an unwritable out
# dir fails before any work.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
qvsa=$(realpath "${1:-$top/build/qvsa}")
cd "$top"

for tool in sha256sum python3 debugfs sfdisk; do
	command -v "$tool" >/dev/null || { echo "interrupt: skipped ($tool is not installed)"; exit 0; }
done
[ -x "$qvsa" ] || { echo "interrupt: $qvsa is not built (make all)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/qvsa-interrupt-XXXXXX)
bg_pid=""
cleanup() {
	[ -n "$bg_pid" ] && kill -KILL "$bg_pid" 2>/dev/null
	[ -n "${ro_mount:-}" ] && umount "$ro_mount" 2>/dev/null
	[ -n "${ro_attr:-}" ] && chattr -i "$ro_attr" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export QVSA_CACHE_DIR=${QVSA_CACHE_DIR:-$work/cache}
epoch_old=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
epoch_new=$((epoch_old + 86400))
version=$(cat VERSION)
out=$work/out
ver=$out/$version
runs=$QVSA_CACHE_DIR/runs
build=("$qvsa" build recipes/qvsa.yaml --out "$out" --accel tcg --target kvm --target aws --target azure-gen2)
passed=0 failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
show() { sed 's/^/    /' "$@" | tail -15; }

# The version folder is a consistent set: every sum checks, and the manifest
# lists exactly the artifacts there (plus manifest.json, its .sig, SHA256SUMS).
consistent() {
	[ -f "$ver/manifest.json" ] && [ -f "$ver/SHA256SUMS" ] || { echo "no manifest or SHA256SUMS"; return 1; }
	(cd "$ver" && sha256sum -c --quiet SHA256SUMS) || return 1
	python3 - "$ver" <<-'EOF'
		import json, os, sys
		d = sys.argv[1]
		listed = sorted(a["file"] for a in json.load(open(os.path.join(d, "manifest.json")))["artifacts"])
		there = sorted(f for f in os.listdir(d) if f not in ("manifest.json", "manifest.json.sig", "SHA256SUMS"))
		sums = sorted(l.split()[1] for l in open(os.path.join(d, "SHA256SUMS")))
		if listed != there or sums != there:
		    sys.exit("manifest %s / SHA256SUMS %s / folder %s differ" % (listed, sums, there))
	EOF
}
build_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build_id"])' "$ver/manifest.json"; }
litter() { find "$out" -maxdepth 1 -name '.qvsa-tmp-*' | tr '\n' ' '; }

# Start a rebuild that pauses at $1; sets bg_pid. Returns 1 if it never pauses.
start_paused() {
	local phase=$1 name=$2
	SOURCE_DATE_EPOCH=$epoch_new QVSA_TEST_PAUSE_AT=$phase "${build[@]}" >"$work/$name.out" 2>"$work/$name.err" &
	bg_pid=$!
	for _ in $(seq 600); do
		grep -qs "test hook: paused at $phase" "$work/$name.err" && return 0
		kill -0 "$bg_pid" 2>/dev/null || break
		sleep 0.1
	done
	bad "$name: never paused at $phase"
	show "$work/$name.err"
	return 1
}

# 1. The set the rebuilds must not damage.
if SOURCE_DATE_EPOCH=$epoch_old "${build[@]}" >"$work/base.out" 2>"$work/base.err" && consistent; then
	ok "base build: a consistent set"
else
	bad "base build"; show "$work/base.err"; exit 1
fi
old_id=$(build_id)
cp "$ver/manifest.json" "$work/manifest.old"

# 2. SIGINT and SIGTERM at each phase: the old set, nothing left.
for phase in prepare assemble write publish; do
	for sig in INT TERM; do
		name=$phase-$sig
		start_paused "$phase" "$name" || continue
		pid=$bg_pid
		t0=$(date +%s.%N)
		kill -"$sig" "$pid"
		wait "$pid"
		rc=$?
		bg_pid=""
		secs=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
		want=$([ "$sig" = INT ] && echo 130 || echo 143)
		why=""
		[ "$rc" = "$want" ] || why="exit $rc, expected $want"
		[ -z "$why" ] && ! tail -1 "$work/$name.err" | grep -qx "qvsa: interrupted" && why="last line is not 'qvsa: interrupted'"
		[ -z "$why" ] && ! cmp -s "$ver/manifest.json" "$work/manifest.old" && why="the published manifest changed"
		[ -z "$why" ] && { c=$(consistent 2>&1) || why="inconsistent: $c"; }
		[ -z "$why" ] && [ -n "$(litter)" ] && why="left $(litter)"
		[ -z "$why" ] && ls "$runs"/"$pid"-* >/dev/null 2>&1 && why="left its run registry file"
		if [ -z "$why" ]; then
			ok "SIG$sig at $phase: exit $rc in ${secs}s, old set intact, nothing left"
		else
			bad "SIG$sig at $phase: $why"; show "$work/$name.err"
		fi
	done
done

# 3. SIGKILL: litter stays registered; the next build removes it and says so.
for phase in assemble write; do
	name=$phase-KILL
	start_paused "$phase" "$name" || continue
	pid=$bg_pid
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	bg_pid=""
	reg=$(ls "$runs"/"$pid"-* 2>/dev/null | head -1)
	left=$(litter)
	why=""
	[ -n "$reg" ] || why="no run registry file for pid $pid"
	[ -z "$why" ] && [ -z "$left" ] && why="no private folder was left to clean (the test proves nothing)"
	[ -z "$why" ] && ! cmp -s "$ver/manifest.json" "$work/manifest.old" && why="the published manifest changed"
	[ -z "$why" ] && { c=$(consistent 2>&1) || why="inconsistent after kill -9: $c"; }
	if [ -n "$why" ]; then
		bad "SIGKILL at $phase: $why"; show "$work/$name.err"; continue
	fi
	paths=$(sed -n 's/^path //p' "$reg")
	# The next run: a build of the old set again (same bytes: it stays the old set).
	if ! SOURCE_DATE_EPOCH=$epoch_old "${build[@]}" >"$work/$name-next.out" 2>"$work/$name-next.err"; then
		bad "SIGKILL at $phase: the next build failed"; show "$work/$name-next.err"; continue
	fi
	notice=$(grep "removed what killed runs left behind" "$work/$name-next.err")
	for p in $paths; do
		[ -e "$p" ] && why="$why $p still there;"
		echo "$notice" | grep -qF "$p" || why="$why notice does not name $p;"
	done
	[ -e "$reg" ] && why="$why registry file still there;"
	[ -n "$(litter)" ] && why="$why left $(litter);"
	[ -n "$(ls -A "$runs" 2>/dev/null)" ] && why="$why runs/ not empty: $(ls "$runs");"
	{ c=$(consistent 2>&1) && cmp -s "$ver/manifest.json" "$work/manifest.old"; } || why="$why set not the old one: ${c:-manifest differs};"
	if [ -z "$why" ]; then
		ok "SIGKILL at $phase: the next build removed $(echo "$paths" | wc -w) registered paths and said so"
	else
		bad "SIGKILL at $phase:$why"; show "$work/$name-next.err"
	fi
done

# 4. Two builds into one out dir: the second fails at once, naming the holder.
if start_paused prepare lock-holder; then
	holder=$bg_pid
	t0=$(date +%s.%N)
	SOURCE_DATE_EPOCH=$epoch_new "${build[@]}" >"$work/lock.out" 2>"$work/lock.err"
	rc=$?
	secs=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
	if [ "$rc" = 1 ] && grep -q "out dir '$out' is in use by another qvsa build (pid $holder)" "$work/lock.err"; then
		ok "concurrent build refused in ${secs}s: $(head -1 "$work/lock.err" | cut -c1-120)"
	else
		bad "concurrent build: exit $rc"; show "$work/lock.err"
	fi
	kill -INT "$holder"; wait "$holder"; bg_pid=""
fi

# 5. A completed rebuild publishes the new set whole; a --target build keeps the rest.
if SOURCE_DATE_EPOCH=$epoch_new "${build[@]}" >"$work/new.out" 2>"$work/new.err" && c=$(consistent 2>&1) &&
	[ "$(build_id)" != "$old_id" ] && [ -z "$(litter)" ]; then
	ok "rebuild published the new set (build id $old_id -> $(build_id))"
else
	bad "rebuild: ${c:-}"; show "$work/new.err"
fi
cp "$ver/manifest.json" "$work/manifest.new"
if SOURCE_DATE_EPOCH=$epoch_new "$qvsa" build recipes/qvsa.yaml --out "$out" --accel tcg --target kvm \
	>"$work/one.out" 2>"$work/one.err" && consistent >/dev/null && cmp -s "$ver/manifest.json" "$work/manifest.new"; then
	ok "--target kvm into the full set: the others kept, same manifest"
else
	bad "--target kvm into the full set"; show "$work/one.err"; diff "$work/manifest.new" "$ver/manifest.json" | head
fi

# 6. An unwritable out dir fails before any work (exit 2, nothing prepared).
ro=$work/ro
mkdir -p "$ro"
how=""
if mount --bind "$ro" "$ro" 2>/dev/null; then
	ro_mount=$ro
	mount -o remount,bind,ro "$ro" 2>/dev/null && how="read-only bind mount"
fi
if [ -z "$how" ] && chattr +i "$ro" 2>/dev/null; then
	ro_attr=$ro
	how="chattr +i"
fi
ro_cmd=("$qvsa")
if [ -z "$how" ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 0755 "$ro" "$work"
	ro_cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups env QVSA_CACHE_DIR="$work/nobody-cache" "$qvsa")
	how="user nobody"
fi
if [ -z "$how" ]; then
	echo "SKIP: unwritable out dir (no bind mount, chattr or setpriv here)"
else
	"${ro_cmd[@]}" build recipes/qvsa.yaml --out "$ro/out" --accel tcg --target kvm >"$work/ro.out" 2>"$work/ro.err"
	rc=$?
	if [ "$rc" = 2 ] && grep -q "out dir '$ro/out' is not writable" "$work/ro.err" && ! grep -q '^\[' "$work/ro.err"; then
		ok "unwritable out dir ($how): exit 2 before any work: $(tail -1 "$work/ro.err" | cut -c1-120)"
	else
		bad "unwritable out dir ($how): exit $rc"; show "$work/ro.err"
	fi
fi

echo "interrupt: $passed passed, $failed failed"
[ "$failed" = 0 ]
