#!/bin/sh
# The bad-recipe corpus: `qvsa lint` on every tests/recipes/bad/CASE/recipe.yaml
# must exit 2 with exactly one line on stderr, "qvsa: FILE:LINE:COLUMN: ...",
# at the place CASE/expect names, matching its patterns, and nothing it
# forbids (secrets, file contents) anywhere in the output.
#
# CASE/expect, one directive a line:
#   at FILE:LINE:COLUMN   the exact place ({dir} is the case's folder, resolved)
#   match REGEX           an extended regex the message must match (each one)
#   forbid TEXT           a fixed string that must not appear on stdout or stderr
#   needs apt             skip unless apt's package lists know linux-image-amd64
#   needs kernel          skip unless a kernel is already in qvsa's cache
# A case with an executable gen.sh is copied to a temporary folder and gen.sh
# runs there first (for inputs too large to commit). Each lint must finish in
# 10 s. Usage: tests/recipes/run-bad.sh [CASE...]; QVSA=path/to/qvsa.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
qvsa=${QVSA:-$root/build/qvsa}
cache=${QVSA_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/qvsa}
[ -n "${XDG_CACHE_HOME:-}" ] && [ -z "${QVSA_CACHE_DIR:-}" ] && cache=$XDG_CACHE_HOME/qvsa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0 skip=0

have_apt() { apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; }
have_kernel() { have_apt && ls -d "$cache"/kernels/linux-image-* >/dev/null 2>&1; }

bad() { echo "FAIL $name: $*"; sed 's/^/    /' "$tmp/err" "$tmp/out"; fail=$((fail + 1)); }

if [ $# -gt 0 ]; then set -- $(for c in "$@"; do echo "$here/bad/$c/"; done); else set -- "$here"/bad/*/; fi
for dir in "$@"; do
	name=$(basename "$dir")
	expect=$dir/expect
	[ -f "$expect" ] || { echo "FAIL $name: no expect file"; fail=$((fail + 1)); continue; }
	if grep -qx 'needs apt' "$expect" && ! have_apt; then
		echo "SKIP $name: apt's package lists do not know linux-image-amd64"; skip=$((skip + 1)); continue
	fi
	if grep -qx 'needs kernel' "$expect" && ! have_kernel; then
		echo "SKIP $name: no kernel in $cache/kernels yet (a build downloads one)"; skip=$((skip + 1)); continue
	fi
	run=$dir
	if [ -x "$dir/gen.sh" ]; then
		run=$tmp/case-$name
		rm -rf "$run" && cp -a "$dir" "$run" && (cd "$run" && ./gen.sh) || { echo "FAIL $name: gen.sh"; fail=$((fail + 1)); continue; }
	fi
	real=$(cd "$run" && pwd -P)
	(cd "$run" && timeout 10 "$qvsa" lint recipe.yaml >"$tmp/out" 2>"$tmp/err")
	rc=$?
	[ $rc -eq 124 ] && { bad "lint took more than 10 s"; continue; }
	[ $rc -eq 2 ] || { bad "exit $rc, expected 2"; continue; }
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || { bad "expected exactly one line on stderr"; continue; }
	msg=$(sed 's/^qvsa: //' "$tmp/err")
	at=$(sed -n 's/^at //p' "$expect" | sed "s|{dir}|$real|")
	case $msg in
	"$at: "*) ;;
	*) bad "expected the message at '$at'"; continue ;;
	esac
	ok=1
	while IFS= read -r line; do
		case $line in
		"match "*)
			printf '%s\n' "$msg" | grep -Eq -- "${line#match }" || { bad "does not match /${line#match }/"; ok=0; break; } ;;
		"forbid "*)
			if grep -Fq -- "${line#forbid }" "$tmp/err" "$tmp/out"; then bad "shows forbidden '${line#forbid }'"; ok=0; break; fi ;;
		esac
	done <"$expect"
	[ $ok -eq 1 ] && pass=$((pass + 1))
done
echo "bad recipes: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
