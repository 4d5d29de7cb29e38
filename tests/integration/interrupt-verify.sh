#!/usr/bin/env bash
# Interrupted verifies leave nothing running and nothing on disk (issue 14).
#
#   tests/integration/interrupt-verify.sh [QVSA]
#
# QVSA: the qvsa binary (default build/qvsa). Builds the kvm target (host-tool
# assembly, seconds) into a scratch out dir, with its own cache (so its own
# embedded libvirt root and run registry) and its own TMPDIR (so every temp
# folder of verify, the one with the seed image among them, is in sight).
# Each case starts `qvsa verify` and waits until its QEMU runs (a process
# whose command line names the domain qvsa-verify-PID-kvm), then:
#   1. kill -9 of qvsa: its guardian kills the QEMU within 2 s (the time is
#      printed) and removes the domain's state files, the temp folders and
#      the registry file;
#   2. kill -9 of the guardian, then of qvsa (a whole process group killed,
#      the OOM killer): the QEMU is left running, so the next verify must
#      kill it, remove its domain and folders, say so in one line, and pass;
#   3. SIGINT and SIGTERM: exit 130/143 within 2 s, "qvsa: interrupted",
#      no QEMU, no domain files, no temp folder, no registry file.
# Three boots in all (~1 min under TCG).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
qvsa=$(realpath "${1:-$top/build/qvsa}")
cd "$top"

for tool in python3 qemu-system-x86_64 pgrep; do
	command -v "$tool" >/dev/null || { echo "interrupt-verify: skipped ($tool is not installed)"; exit 0; }
done
[ -x "$qvsa" ] || { echo "interrupt-verify: $qvsa is not built (make all)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/qvsa-interrupt-verify-XXXXXX)
started=() # the qvsa verify pids this test started
# Kill, by pid, what a failed case may have left: our qvsa processes and the QEMUs of their domains.
cleanup() {
	for p in "${started[@]}"; do
		kill -KILL "$p" 2>/dev/null
		for q in $(pgrep -f "guest=qvsa-verify-$p-" 2>/dev/null); do kill -KILL "$q" 2>/dev/null; done
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export QVSA_CACHE_DIR=$work/cache
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
runs=$QVSA_CACHE_DIR/runs
root=$QVSA_CACHE_DIR/libvirt
out=$work/out
art=$out/$(cat VERSION)/$(cat VERSION)-kvm.qcow2
verify=("$qvsa" verify "$art" --target kvm --accel tcg)
passed=0 failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
show() { sed 's/^/    /' "$@" | tail -15; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round($(now) - float(sys.argv[1]), 2))" "$1"; }
# A live (not zombie) process.
alive() { [ -e "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }
# Wait up to $2 seconds for process $1 to be gone; true if it is.
gone_within() {
	local end=$(($(date +%s%N) + ${2%.*} * 1000000000))
	while alive "$1"; do
		[ "$(date +%s%N)" -gt "$end" ] && return 1
		sleep 0.02
	done
}
# What run $1 (a qvsa pid) left: its QEMU, domain files, temp folders, registry file.
leftovers() {
	local p=$1 what=""
	for q in $(pgrep -f "guest=qvsa-verify-$p-kvm" 2>/dev/null); do alive "$q" && what+="QEMU $q; "; done
	[ -d "$root" ] && what+=$(find "$root" -name "*qvsa-verify-$p-*" -printf '%P; ')
	what+=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 -printf 'tmp %P; ')
	what+=$(find "$TMPDIR" "$QVSA_CACHE_DIR" -name '*.iso' -printf 'seed %p; ' 2>/dev/null)
	ls "$runs/$p"-* >/dev/null 2>&1 && what+="registry file; "
	echo "$what"
}

# Start a verify and wait until its QEMU runs; sets vpid and qpid.
start_boot() {
	local name=$1
	"${verify[@]}" >"$work/$name.out" 2>"$work/$name.err" &
	vpid=$!
	started+=("$vpid")
	qpid=""
	for _ in $(seq 1200); do
		qpid=$(pgrep -f "guest=qvsa-verify-$vpid-kvm" | head -1)
		[ -n "$qpid" ] && return 0
		kill -0 "$vpid" 2>/dev/null || break
		sleep 0.05
	done
	bad "$name: no QEMU ever ran"
	show "$work/$name.err"
	return 1
}

if "$qvsa" build recipes/qvsa.yaml --target kvm --out "$out" --accel tcg >"$work/build.out" 2>&1 && [ -f "$art" ]; then
	ok "built the kvm artifact"
else
	bad "build"; show "$work/build.out"; exit 1
fi

# 1. kill -9 of qvsa: the guardian acts at once.
if start_boot kill; then
	sleep 1 # into the boot: the QEMU is registered by pid too
	t0=$(now)
	kill -KILL "$vpid"
	wait "$vpid" 2>/dev/null
	if gone_within "$qpid" 2; then
		secs=$(since "$t0")
		sleep 0.3 # the guardian removes the files after the QEMU
		left=$(leftovers "$vpid")
		if [ -z "$left" ]; then
			ok "kill -9 during boot: QEMU gone ${secs}s after, nothing left"
		else
			bad "kill -9 during boot: QEMU gone in ${secs}s but left: $left"
		fi
	else
		bad "kill -9 during boot: QEMU $qpid still alive 2 s later"
	fi
fi

# 2. kill -9 of the guardian and qvsa: the next verify cleans, says so, passes.
if start_boot kill-all; then
	sleep 1
	guard=$(pgrep -P "$vpid" -f __guard)
	kill -KILL $guard "$vpid"
	wait "$vpid" 2>/dev/null
	sleep 1
	why=""
	[ -n "$guard" ] || why="no guardian process"
	[ -z "$why" ] && ! alive "$qpid" && why="the QEMU died anyway (the next run's part proves nothing)"
	[ -z "$why" ] && ! ls "$runs/$vpid"-* >/dev/null 2>&1 && why="no registry file"
	if [ -n "$why" ]; then
		bad "kill -9 of qvsa and its guardian: $why"
	else
		killed=$vpid killed_qemu=$qpid
		if "${verify[@]}" >"$work/next.out" 2>"$work/next.err" && grep -q "PASS" "$work/next.out"; then
			line=$(grep "removed what killed runs left behind" "$work/next.err")
			left=$(leftovers "$killed")
			why=""
			[ -n "$line" ] || why="no 'removed' line"
			[ -z "$why" ] && [ "$(echo "$line" | wc -l)" != 1 ] && why="more than one line"
			for want in "QEMU pid $killed_qemu" "domain qvsa-verify-$killed-kvm" "$TMPDIR/qvsa-verify-"; do
				[ -z "$why" ] && ! grep -qF "$want" <<<"$line" && why="the line does not name '$want'"
			done
			[ -z "$why" ] && alive "$killed_qemu" && why="QEMU $killed_qemu still alive"
			[ -z "$why" ] && [ -n "$left" ] && why="left: $left"
			if [ -z "$why" ]; then
				ok "the next verify removed the killed run's QEMU, domain and seed folder and passed: ${line#*] }"
			else
				bad "the next verify: $why"; show "$work/next.err"
			fi
		else
			bad "the next verify failed"; show "$work/next.err"
		fi
	fi
fi

# 3. SIGINT and SIGTERM during boot.
for sig in INT TERM; do
	start_boot "$sig" || continue
	sleep 1
	t0=$(now)
	kill -"$sig" "$vpid"
	wait "$vpid"
	rc=$?
	secs=$(since "$t0")
	want=$([ "$sig" = INT ] && echo 130 || echo 143)
	why=""
	[ "$rc" = "$want" ] || why="exit $rc, expected $want"
	[ -z "$why" ] && python3 -c "import sys; sys.exit(float(sys.argv[1]) > 2.0)" "$secs" || why=${why:-"took ${secs}s"}
	[ -z "$why" ] && ! tail -1 "$work/$sig.err" | grep -qx "qvsa: interrupted" && why="last line is not 'qvsa: interrupted'"
	[ -z "$why" ] && alive "$qpid" && why="QEMU $qpid still alive"
	left=$(leftovers "$vpid")
	[ -z "$why" ] && [ -n "$left" ] && why="left: $left"
	if [ -z "$why" ]; then
		ok "SIG$sig during boot: exit $rc in ${secs}s, no QEMU, nothing left"
	else
		bad "SIG$sig during boot: $why"; show "$work/$sig.err"
	fi
done

echo "interrupt-verify: $passed passed, $failed failed"
[ "$failed" = 0 ]
