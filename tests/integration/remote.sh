#!/bin/bash
# `qvsa verify --connect URI` through a real libvirtd, not the embedded
# driver: the test starts /usr/sbin/libvirtd in its own mount namespace
# (its /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt are folders of this test), listening only on a unix
# socket in a temp folder, and verifies kvm and vmware through
# qemu+unix:///system?socket=...: disks and media go up through a storage
# pool and the stream API, the console through libvirt's console stream.
# Then: every volume and the pool qvsa made are gone, no domain is left; a
# wrong code fails through the same connection; a URI naming another host
# is refused.
#
#   tests/integration/remote.sh QVSA [OUT_DIR]
#
# QVSA: the qvsa binary; OUT_DIR: a build's --out folder holding the
# targets' artifacts (default: built here). QVSA_REMOTE_TARGETS: the targets
# (default "kvm vmware"; e.g. "aws hyperv-gen2" adds NVMe, guestfwd relays,
# UEFI variables and typing at the console). Needs root (the daemon's mount
# namespace, QEMU as root). One TCG boot per target, plus one.
set -euo pipefail
qvsa=$(readlink -f "${1:?usage: remote.sh QVSA [OUT_DIR]}")
out=${2:-}
read -r -a targets <<<"${QVSA_REMOTE_TARGETS:-kvm vmware}"
first=${targets[0]}
target_args=()
for t in "${targets[@]}"; do target_args+=(--target "$t"); done
cd "$(dirname "$0")/../.."
fail() { echo "remote: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "remote: SKIP: needs root (a private libvirtd)"; exit 0; }
[ -x /usr/sbin/libvirtd ] || { echo "remote: SKIP: /usr/sbin/libvirtd missing (libvirt-daemon-system)"; exit 0; }
command -v unshare >/dev/null || fail "unshare missing (util-linux)"

tmp=$(mktemp -d /tmp/qvsa-remote.XXXXXX)
export QVSA_CACHE_DIR=$tmp/qvsa-cache
sock=$tmp/sock/libvirt-sock
uri="qemu+unix:///system?socket=$sock"
daemon=
have_virsh() { command -v virsh >/dev/null; }
cleanup() {
	set +e
	if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
		# Domains outlive their libvirtd: end any before the daemon.
		if have_virsh; then
			for d in $(virsh -q -c "$uri" list --name 2>/dev/null); do virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1; done
		fi
		for p in "$tmp"/run/qemu/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	[ -n "${QVSA_REMOTE_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The daemon's own configuration: root QEMU without cgroups, virtlogd or a
# seccomp sandbox (guestfwd spawns the relay), no default network.
mkdir -p "$tmp"/{etc,sock,run,lib/images,cache,log}
cp -a /etc/libvirt/. "$tmp/etc/"
rm -f "$tmp"/etc/qemu/networks/autostart/*
cat >"$tmp/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$tmp/sock"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
EOF
cat >"$tmp/etc/qemu.conf" <<EOF
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
seccomp_sandbox = 0
EOF
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
# unshare without --fork execs: $! is the daemon itself.
unshare -m --propagation private sh -c '
	set -e
	mount --bind "$1/etc" /etc/libvirt
	mount --bind "$1/run" /run/libvirt
	mount --bind "$1/lib" /var/lib/libvirt
	mount --bind "$1/cache" /var/cache/libvirt
	mount --bind "$1/log" /var/log/libvirt
	exec /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p "$1/libvirtd.pid"
' sh "$tmp" >"$tmp/libvirtd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$daemon" 2>/dev/null || { cat "$tmp/libvirtd.log" >&2; fail "libvirtd exited at start"; }
	sleep 0.1
done
[ -S "$sock" ] || fail "libvirtd made no socket $sock within 10 s"
echo "remote: private libvirtd (pid $daemon) on $sock"

if [ -z "$out" ]; then
	out=$tmp/out
	"$qvsa" build recipes/qvsa.yaml "${target_args[@]}" --out "$out" -q >/dev/null ||
		fail "building ${targets[*]} failed"
fi
set_dir=$out/qVSA-1.0
for t in "${targets[@]}"; do
	ls "$set_dir/qVSA-1.0-$t".* >/dev/null 2>&1 || fail "no $t artifact in $set_dir"
done
sums() { sha256sum "$set_dir"/qVSA-1.0-*; }
before=$(sums)

# Nothing of a run may stay on the daemon's side.
pool_dir=$tmp/lib/images/qvsa-verify
assert_clean() {
	if [ -d "$pool_dir" ] && [ -n "$(ls -A "$pool_dir")" ]; then fail "$1: volumes left in the pool: $(ls "$pool_dir")"; fi
	[ ! -e "$pool_dir" ] || fail "$1: the pool's folder $pool_dir is still there"
	[ -z "$(ls "$tmp/etc/storage" 2>/dev/null | grep -v autostart)" ] || fail "$1: a pool definition is left: $(ls "$tmp/etc/storage")"
	if have_virsh; then
		[ -z "$(virsh -q -c "$uri" list --all --name)" ] || fail "$1: domains left: $(virsh -q -c "$uri" list --all --name)"
		[ -z "$(virsh -q -c "$uri" pool-list --all --name)" ] || fail "$1: pools left: $(virsh -q -c "$uri" pool-list --all --name)"
	fi
	[ ! -e "$QVSA_CACHE_DIR/libvirt" ] || fail "$1: the embedded driver was used ($QVSA_CACHE_DIR/libvirt exists)"
}

t0=$(date +%s)
if ! "$qvsa" verify recipes/qvsa.yaml "${target_args[@]}" --out "$out" --accel tcg --connect "$uri" \
	-j 2 >"$tmp/pass.out" 2>"$tmp/pass.err"; then
	cat "$tmp/pass.out" "$tmp/pass.err" >&2
	tail -20 "$tmp/libvirtd.log" >&2
	fail "verify through $uri failed"
fi
for t in "${targets[@]}"; do
	grep -qE "^ *$t .*PASS" "$tmp/pass.out" || { cat "$tmp/pass.out" >&2; fail "no PASS for $t"; }
	grep -q 'QVSA-AGENT: starting' "$QVSA_CACHE_DIR/last-console-$t.log" ||
		fail "the console stream gave no agent line (last-console-$t.log)"
done
assert_clean "after the pass"
[ "$(sums)" = "$before" ] || fail "an artifact changed"
echo "remote: ${targets[*]} PASS through $uri in $(($(date +%s) - t0))s; pool, volumes and domains gone"

# A wrong code fails through the remote connection too: well-formed, so the
# guest takes it to the stub over HTTPS, which refuses it.
rc=0
"$qvsa" verify recipes/qvsa.yaml --target "$first" --out "$out" --accel tcg --connect "$uri" --perscode 1234567 \
	>"$tmp/neg.out" 2>"$tmp/neg.err" || rc=$?
[ "$rc" = 1 ] || { cat "$tmp/neg.err" >&2; fail "a wrong code gave exit $rc, expected 1"; }
grep -q 'rejected the personalization code' "$tmp/neg.err" || { cat "$tmp/neg.err" >&2; fail "a wrong code: unexpected reason"; }
assert_clean "after the wrong code"
echo "remote: a wrong code fails through $uri (exit 1, platform rejected it); nothing left"

# A libvirt on another host cannot reach this machine's stub: refused before anything starts.
rc=0
"$qvsa" verify recipes/qvsa.yaml --target "$first" --out "$out" --accel tcg --connect qemu+ssh://build7.invalid/system \
	>/dev/null 2>"$tmp/host.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'another host' "$tmp/host.err" || { cat "$tmp/host.err" >&2; fail "another host: exit $rc"; }
echo "remote: a URI naming another host is refused (exit 2)"
[ "$(sums)" = "$before" ] || fail "an artifact changed"
echo "remote: PASS"
