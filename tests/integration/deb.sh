#!/bin/bash
# The Debian package in a fresh Debian 12 root: `make deb`, then mmdebstrap
# a minimal bookworm with the package (its dependencies from the archive, or
# from this host's apt cache when it holds them), then run the installed
# qvsa there: --version, targets, lint of the shipped example, and the
# customer's offline check of an artifact when a signed set is given.
#
#   tests/integration/deb.sh [SIGNED_OUT_DIR PUBKEY]
#
# SIGNED_OUT_DIR: a qvsa out/qVSA-X.Y folder with manifest.json(.sig); PUBKEY
# its public key. Needs root (mmdebstrap's root mode, chroot).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "deb: SKIP: needs root for the chroot"; exit 0; }
command -v mmdebstrap >/dev/null || fail "mmdebstrap missing (make deps)"

make -s deb >/dev/null
ver=$(dpkg-parsechangelog -l debian/changelog -S Version)
deb=$PWD/build/deb/qvsa_${ver}_amd64.deb
[ -f "$deb" ] || fail "make deb left no $deb"
# The package's version is the binary's (checked on the installed one below).
want="qvsa $ver"

root=$(mktemp -d /tmp/qvsa-deb.XXXXXX)
trap '[ -n "${QVSA_DEB_KEEP:-}" ] || rm -rf "$root"' EXIT
mkdir -p "$root/cache"
# Reuse the debs `make deps` left in the host's cache; the rest downloads.
cp -l /var/cache/apt/archives/*.deb "$root/cache/" 2>/dev/null || cp /var/cache/apt/archives/*.deb "$root/cache/" 2>/dev/null || true
t0=$(date +%s)
mmdebstrap --variant=apt --verbose --skip=download/empty --skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in $root/cache /var/cache/apt/archives/" \
	--customize-hook="copy-in $deb /tmp" \
	--customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/$(basename "$deb")" \
	--customize-hook='rm -f "$1"/tmp/qvsa_*.deb' \
	bookworm "$root/rootfs" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main" >"$root/mmdebstrap.log" 2>&1 ||
	{ tail -20 "$root/mmdebstrap.log"; fail "mmdebstrap with the package failed"; }
echo "deb: fresh bookworm root with $(basename "$deb") in $(($(date +%s) - t0))s"

in_root() { chroot "$root/rootfs" env -i PATH=/usr/bin:/bin HOME=/root "$@"; }
[ -x "$root/rootfs/usr/bin/qvsa" ] || fail "the package installed no /usr/bin/qvsa"
[ -f "$root/rootfs/usr/share/man/man1/qvsa.1.gz" ] || fail "no man page qvsa(1)"
out=$(in_root qvsa --version) || fail "qvsa --version failed in the root"
[ "$out" = "$want" ] || fail "installed qvsa --version says '$out'"
n=$(in_root qvsa targets | grep -c -E '^(aws|azure|azure-gen2|gcp|hyperv|hyperv-gen2|kvm|nutanix|oci|openstack|vmware|xen) ') ||
	fail "qvsa targets failed in the root"
[ "$n" = 12 ] || fail "qvsa targets lists $n of the 12 targets"
in_root qvsa lint /usr/share/doc/qvsa/examples/recipes/qvsa.yaml >/dev/null ||
	fail "qvsa lint of the shipped example failed"
echo "deb: installed qvsa runs: --version, targets (12), lint of the example"

if [ $# -ge 2 ]; then
	set_dir=$1 pub=$2
	mkdir -p "$root/rootfs/srv/set"
	cp "$pub" "$root/rootfs/srv/set/key.pub"
	cp "$set_dir/manifest.json" "$set_dir/manifest.json.sig" "$root/rootfs/srv/set/"
	a=$(ls "$set_dir"/*.qcow2 | head -1)
	cp --sparse=always "$a" "$root/rootfs/srv/set/downloaded.img"
	in_root qvsa verify /srv/set/downloaded.img --offline --pubkey /srv/set/key.pub \
		--manifest /srv/set/manifest.json || fail "offline verify of $(basename "$a") failed in the root"
	echo "deb: installed qvsa verifies $(basename "$a") offline (renamed downloaded.img)"
fi
echo "deb: PASS"
