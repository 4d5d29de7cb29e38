#!/usr/bin/env bash
# Build and verify as an ordinary user, with the embedded defaults (issue 14).
#
#   tests/integration/nonroot.sh [QVSA]
#
# QVSA: the qvsa binary (default build/qvsa). As root, creates a throwaway
# user (removed on every exit path) and gives it a copy of this checkout with
# the binary at build/qvsa; as an ordinary user, runs as itself. Then, as
# that user, with a normal PATH (/usr/local/bin:/usr/bin:/bin: no sbin) and
# a clean environment:
#   - `qvsa build recipes/qvsa.yaml --target kvm` must pass through the
#     host-tool assembly (a user namespace maps the user to root for tar and
#     mke2fs), not the libguestfs fallback, and make the same disk bytes as a
#     root build when one is given (NONROOT_COMPARE=path/to/kvm.qcow2);
#   - `qvsa verify ... --target kvm` (one boot under TCG) must PASS, its QEMU
#     running as the user;
#   - every file either command made is the user's, and no process of the
#     user is left.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
qvsa=$(realpath "${1:-$top/build/qvsa}")
cd "$top"

for tool in qemu-system-x86_64 unshare pgrep; do
	command -v "$tool" >/dev/null || { echo "nonroot: skipped ($tool is not installed)"; exit 0; }
done
[ -x "$qvsa" ] || { echo "nonroot: $qvsa is not built (make all)" >&2; exit 2; }
[ -x templates/bootstrap-agent/rootfs/usr/sbin/qvsa-agent ] || { echo "nonroot: the agent is not built (make all)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/qvsa-nonroot-XXXXXX)
chmod 755 "$work"
user="" made_user=""
cleanup() {
	if [ -n "$user" ]; then # what a failed step left running, by pid
		for p in $(pgrep -u "$user" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	fi
	[ -n "$made_user" ] && userdel "$made_user" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
passed=0 failed=0
ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
show() { sed 's/^/    /' "$@" | tail -15; }

home=$work/home
src=$work/src
mkdir -p "$home" "$src/build"
# The checkout as the user gets it: tracked and built files, no .git, no build folder.
tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$src"
cp "$qvsa" "$src/build/qvsa"
if [ "$(id -u)" = 0 ]; then
	user=qvsa-nr-$$
	useradd --no-create-home --home-dir "$home" --shell /bin/sh "$user" || { echo "nonroot: useradd failed" >&2; exit 1; }
	made_user=$user
	chown -R "$user:" "$home" "$src"
	as_user() { su -s /bin/sh "$user" -c "$1"; }
else
	user=$(id -un)
	as_user() { sh -c "$1"; }
fi
uid=$(id -u "$user")
env_user="env -i HOME=$home PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8"
out=$src/out
art=$out/$(cat VERSION)/$(cat VERSION)-kvm.qcow2

# 1. Build.
if as_user "cd $src && $env_user build/qvsa build recipes/qvsa.yaml --target kvm --out $out --accel tcg" \
	>"$work/build.log" 2>&1 && [ -f "$art" ]; then
	if grep -q "host tools" "$work/build.log"; then
		ok "build as $user: host-tool assembly in a user namespace ($(grep -o 'built .* in [0-9.]*s' "$work/build.log"))"
	else
		bad "build as $user passed, but not through the host tools"; show "$work/build.log"
	fi
	if [ -n "${NONROOT_COMPARE:-}" ]; then
		if cmp -s "$art" "$NONROOT_COMPARE"; then ok "same bytes as $NONROOT_COMPARE"; else bad "differs from $NONROOT_COMPARE"; fi
	fi
else
	bad "build as $user"; show "$work/build.log"; exit 1
fi

# 2. Verify, watching the QEMU's owner.
as_user "cd $src && $env_user build/qvsa verify recipes/qvsa.yaml --out $out --target kvm --accel tcg" \
	>"$work/verify.log" 2>&1 &
vpid=$!
qemu_users=""
while kill -0 "$vpid" 2>/dev/null; do
	for q in $(pgrep -f "guest=qvsa-verify-" 2>/dev/null); do
		grep -qs "$home" "/proc/$q/cmdline" && qemu_users+=" $(stat -c %u "/proc/$q")"
	done
	sleep 0.2
done
wait "$vpid"
rc=$?
qemu_users=$(tr ' ' '\n' <<<"$qemu_users" | sort -u | tr '\n' ' ')
if [ "$rc" = 0 ] && grep -q "PASS" "$work/verify.log"; then
	ok "verify as $user: PASS"
else
	bad "verify as $user: exit $rc"; show "$work/verify.log"
fi
case "$qemu_users" in
" ") bad "no QEMU of the run was seen" ;;
" $uid ") ok "its QEMU ran as $user (uid $uid)" ;;
*) bad "its QEMU ran as uid(s)$qemu_users, expected $uid" ;;
esac

# 3. Everything made is the user's; nothing of the user still runs.
if [ "$(id -u)" = 0 ]; then
	foreign=$(find "$home" "$out" ! -user "$user" -printf '%p ' | head -c 400)
	[ -z "$foreign" ] && ok "every file made is $user's" || bad "files not $user's: $foreign"
fi
sleep 0.5
left=$(pgrep -u "$user" -a 2>/dev/null | grep -v -e "pgrep" | head -5)
if [ "$(id -u)" = 0 ]; then
	[ -z "$left" ] && ok "no process of $user left" || bad "left running: $left"
fi

echo "nonroot: $passed passed, $failed failed"
[ "$failed" = 0 ]
