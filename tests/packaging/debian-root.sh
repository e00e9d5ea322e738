#!/usr/bin/env bash
# A Debian user's machine, for tests/packaging/debian.sh: plain trixie
# (minbase), with trixie-backports enabled the way Debian documents it (not
# preferred: `apt install -t trixie-backports` picks it) and arm64 as a
# foreign architecture. Nothing of metis's own toolchain is in it: whatever
# metis-dkms needs must come in through its Depends. Built once, keyed by
# its inputs; each test run works in a throwaway overlay of it
# (METIS_TOOLROOT_SCRATCH=1), with apt's downloads kept in
# $METIS_CACHE/debian-archives so that a second run fetches nothing.
#
#   tests/packaging/debian-root.sh            prints the root's path (builds it if needed)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../harness/toolroot.sh
. "$HERE/../harness/toolroot.sh"

DEBROOT_VERSION=1

debroot_path() {
    printf '%s/debroot-%s\n' "$METIS_CACHE" \
        "$(printf '%s\n%s\n' "$DEBROOT_VERSION" "$MIRROR" | sha256sum | cut -c1-12)"
}

debroot_build() {
    local root=$1 tmp="$1.partial"
    bootstrap_trixie "$tmp" debroot-debootstrap.log 'Acquire::Retries "5";'
    _chroot_exec "$tmp" sh -c "dpkg --add-architecture arm64 && apt-get update -qq" \
        >"$METIS_CACHE/debroot-apt.log" 2>&1 || { tail -20 "$METIS_CACHE/debroot-apt.log" >&2; return 1; }
    mv "$tmp" "$root"
    log "ready: $root"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    root_ensure "$(debroot_path)" debroot_build
    debroot_path
fi
