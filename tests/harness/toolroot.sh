#!/usr/bin/env bash
# Toolchain root: a Debian trixie (+backports) tree that holds everything the
# kernel, module and QEMU steps need, kept outside the repository and keyed by
# its inputs. Sourced by the other harness scripts; run directly to build it.
#
#   METIS_CACHE   cache directory (default ~/.cache/metis)
#
# Functions: toolroot_ensure, toolroot_run CMD..., toolroot_path
set -euo pipefail

METIS_REPO=${METIS_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
METIS_CACHE=${METIS_CACHE:-$HOME/.cache/metis}

# The Debian mirror the host itself uses (its apt sources), so that the root is
# fetched from wherever this machine is allowed to reach; METIS_DEBIAN_MIRROR
# overrides. Security and dated snapshot archives are skipped: the root needs
# the current trixie-backports.
host_debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        case $f in
        # deb822: per stanza, binary ("deb") and not disabled.
        *.sources) awk '
            function flush() { if (deb && on) for (u in uris) print uris[u]; delete uris; deb = 0; on = 1 }
            BEGIN { on = 1 }
            NF == 0 { flush(); next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "enabled:" { on = tolower($2) != "no" }
            tolower($1) == "uris:" { for (i = 2; i <= NF; i++) uris[i] = $i }
            END { flush() }' "$f" ;;
        *) awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' "$f" ;;
        esac
    done | grep -E '/debian/?$' | grep -vE 'security|snapshot' | head -1 | sed 's:/*$::' || true
}
MIRROR=${METIS_DEBIAN_MIRROR:-$(host_debian_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# Everything inside the root; changing this list changes the key.
TOOLROOT_PKGS_BPO="rustc rust-src rustfmt rust-clippy bindgen libclang-19-dev llvm-19 gcc make \
flex bison bc libelf-dev libssl-dev cpio python3 xz-utils kmod qemu-system-x86 qemu-system-arm \
gcc-aarch64-linux-gnu libc6-dev-arm64-cross device-tree-compiler busybox-static linux-source-7.3 \
dkms dpkg-dev debhelper pahole ca-certificates zstd clang-19 lld-19 cargo file"
TOOLROOT_VERSION=5

toolroot_key() {
    printf '%s\n%s\n%s\n' "$TOOLROOT_VERSION" "$TOOLROOT_PKGS_BPO" "$MIRROR" | sha256sum | cut -c1-12
}

toolroot_path() {
    echo "$METIS_CACHE/root-$(toolroot_key)"
}

log() { printf '[toolroot] %s\n' "$*" >&2; }

# Installs the Debian packages the host lacks (the README's commands install
# what they need themselves); apt's output goes to $METIS_CACHE/host-apt.log.
host_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    mkdir -p "$METIS_CACHE"
    log "installing ${missing[*]} on the host (log: $METIS_CACHE/host-apt.log)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        >"$METIS_CACHE/host-apt.log" 2>&1 || { tail -20 "$METIS_CACHE/host-apt.log" >&2; return 1; }
}

# A minimal trixie in DIR (made afresh) with trixie-backports listed and apt's
# settings APT-CONF; debootstrap's log is $METIS_CACHE/LOG-NAME.
bootstrap_trixie() {  # DIR LOG-NAME APT-CONF
    rm -rf "$1"
    mkdir -p "$METIS_CACHE"
    host_install debootstrap
    log "debootstrap trixie into $1"
    debootstrap --variant=minbase trixie "$1" "$MIRROR" >"$METIS_CACHE/$2" 2>&1 ||
        { tail -20 "$METIS_CACHE/$2" >&2; return 1; }
    echo "deb $MIRROR trixie-backports main" >"$1/etc/apt/sources.list.d/backports.list"
    printf '%s\n' "$3" >"$1/etc/apt/apt.conf.d/99metis"
}

toolroot_build() {
    local root=$1 tmp="$1.partial"
    bootstrap_trixie "$tmp" debootstrap.log 'APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "5";'
    log "installing packages"
    _chroot_exec "$tmp" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq -t trixie-backports $TOOLROOT_PKGS_BPO" \
        >"$METIS_CACHE/apt.log" 2>&1 || { tail -30 "$METIS_CACHE/apt.log" >&2; return 1; }
    log "installing libstd-rust-dev:arm64, fetching busybox-static:arm64"
    _chroot_exec "$tmp" sh -c "dpkg --add-architecture arm64 && apt-get update -qq && \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie-backports libstd-rust-dev:arm64 && \
        cd /tmp && apt-get download -qq busybox-static:arm64 && \
        mkdir -p /opt/busybox-arm64 && dpkg-deb -x busybox-static_*_arm64.deb /opt/busybox-arm64 && \
        rm -f busybox-static_*_arm64.deb" >>"$METIS_CACHE/apt.log" 2>&1 ||
        { tail -30 "$METIS_CACHE/apt.log" >&2; return 1; }
    _chroot_exec "$tmp" sh -c 'apt-get clean; dpkg-query -W' >"$tmp/versions.txt"
    mv "$tmp" "$root"
    log "ready: $root"
}

# Runs a command in ROOT with a private mount namespace: nothing leaks on the
# host and nothing needs cleaning up. The repository appears at /src/metis and
# the cache at the same absolute path as on the host. With
# METIS_TOOLROOT_SCRATCH=1 the root itself is a throwaway overlay (for
# installing packages in a test): what the command changes is gone when it ends.
_chroot_exec() {
    local root=$1; shift
    mkdir -p "$root/src/metis" "$root$METIS_CACHE"
    unshare --mount --fork --kill-child -- bash -c '
        set -e
        root=$1; repo=$2; cache=$3; shift 3
        mount --make-rprivate /
        if [ "${METIS_TOOLROOT_SCRATCH:-}" = 1 ]; then
            scratch=$(mktemp -d)
            mount -t tmpfs scratch "$scratch"
            mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
            mount -t overlay overlay \
                -o "lowerdir=$root,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
            root=$scratch/root
        fi
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sys "$root/sys" 2>/dev/null || true
        mount -t tmpfs tmp "$root/tmp"
        mount --bind "$repo" "$root/src/metis"
        # After the tmpfs: a cache under /tmp needs its mount point inside it.
        mkdir -p "$root$cache"
        mount --bind "$cache" "$root$cache"
        cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
        exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 LIBCLANG_PATH=/usr/lib/llvm-19/lib METIS_CACHE="$cache" \
            "$@"
    ' _ "$root" "$METIS_REPO" "$METIS_CACHE" "$@"
}

# Builds ROOT with BUILDER (a function given the path) unless it is there. One
# builder at a time: a second caller waits for the first.
root_ensure() {  # ROOT BUILDER
    local root=$1 builder=$2
    [ -d "$root" ] && return 0
    mkdir -p "$METIS_CACHE"
    (
        flock 9
        # Standard output belongs to whoever asked for a path: the build only logs.
        [ -d "$root" ] || "$builder" "$root" >&2
    ) 9>"$METIS_CACHE/.${root##*/}.lock"
}

toolroot_ensure() {
    root_ensure "$(toolroot_path)" toolroot_build
}

toolroot_run() {
    toolroot_ensure
    _chroot_exec "$(toolroot_path)" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ $# -eq 0 ]; then toolroot_ensure; toolroot_path; else toolroot_run "$@"; fi
fi
