#!/usr/bin/env bash
# Runs the README's two commands the way a new user meets them: in a throwaway
# Debian root of the host's own release that holds only what a new machine of
# this project's kind comes with, on a fresh clone of HEAD, with an empty cache.
# Whatever `make demo` or `make check` needs beyond that, they must install
# themselves; if they don't, this fails here before it fails a user.
#
#   tests/harness/fresh.sh [--cache DIR] [--keep] [demo|check|both]   (default: both)
#
#   --cache DIR   the cache the run starts from; must be empty or absent (default: a new
#                 directory in the work area). Pointing it at the host's own cache
#                 leaves the kernels built by the run there for later runs.
#   --keep        keep the work area (root, clone, logs) afterwards
#   METIS_FRESH_WORK   where the work area goes (default /var/tmp/metis-fresh.PID)
#
# What the root starts with (the machine kind's own tools, per the workplace's
# machine description): the host's rustup toolchain (read-only, with its
# cargo-nextest), build-essential (gcc, g++, make, libc6-dev), Python 3, git, perl,
# curl, qemu-utils, the host's added certificate authorities, and the host's
# libclang-cpp (libclang-cpp14 here), whose file name once fooled the libclang check. Output: one line per command
# with its time and result; logs stay in the work area.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

cache="" keep=0 what=both
while [ $# -gt 0 ]; do
    case $1 in
    --cache) [ $# -ge 2 ] || { echo "fresh: --cache needs a directory" >&2; exit 2; }
        cache=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    demo | check | both) what=$1; shift ;;
    *) echo "usage: $0 [--cache DIR] [--keep] [demo|check|both]" >&2; exit 2 ;;
    esac
done

work=${METIS_FRESH_WORK:-/var/tmp/metis-fresh.$$}
if [ -d "$work" ] && [ -n "$(ls -A "$work")" ]; then
    echo "fresh: the work area $work is not empty" >&2
    exit 2
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$work/root
own_cache=0
[ -n "$cache" ] || { cache=$work/cache; own_cache=1; }
if [ -d "$cache" ] && [ -n "$(ls -A "$cache")" ]; then
    echo "fresh: the cache $cache is not empty; a fresh run starts from nothing" >&2
    exit 2
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
say() { printf '[fresh %5ds] %s\n' "$SECONDS" "$*" >&2; }

run_pid=""
cleanup() {
    # Interrupted during a command: unshare does not pass SIGTERM on, but its
    # end takes the namespace's first process, and with it every process the
    # command started, down with it.
    if [ -n "$run_pid" ]; then
        kill -KILL "$run_pid" 2>/dev/null && { wait "$run_pid" 2>/dev/null || true; }
    fi
    if [ $keep = 1 ]; then say "kept $work"; return; fi
    # Mounts and processes live in the run's own namespaces and are gone with it.
    rm -rf --one-file-system "$root" 2>/dev/null || true
    [ $own_cache = 0 ] || rm -rf --one-file-system "$cache" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# For the mirror and host_install; their logs go to the work area.
METIS_CACHE=$work
# shellcheck source=toolroot.sh
. "$HERE/toolroot.sh"
host_install debootstrap
. /etc/os-release
release=${VERSION_CODENAME:?the host names no Debian release}
base="build-essential,python3,git,perl,curl,ca-certificates,xz-utils,qemu-utils,procps,file,mount"
# The host's libclang-cpp (a different library from the libclang bindgen loads),
# so that a check that mistakes one for the other fails here too.
cpp=$(dpkg-query -W -f='${Package} ${Status}\n' 'libclang-cpp*' 2>/dev/null |
    awk '/install ok installed/ && $1 !~ /-dev$/ { print $1; exit }') || true
[ -z "$cpp" ] || base="$base,$cpp"
say "debootstrap $release (minbase + $base) from $MIRROR into $root"
debootstrap --variant=minbase --include="$base" "$release" "$root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# The update suite, as a new machine's apt has it.
echo "deb $MIRROR $release-updates main" >"$root/etc/apt/sources.list.d/updates.list"
# A new machine trusts the certificate authorities the workplace added to the host's
# store (its network may inspect TLS); so does the root.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >>"$work/debootstrap.log" 2>&1
fi

say "fresh clone of $(git -C "$REPO" rev-parse --short HEAD)"
mkdir -p "$root/work"
git clone -q --no-hardlinks "$REPO" "$root/work/metis"

run_in_root() {
    local cmd=$1 logf=$2
    # Own PID namespace: whatever the commands leave running (background kernel
    # builds, QEMU) ends with them.
    unshare --pid --mount --fork --kill-child -- bash -c '
        set -e
        root=$1 cache=$2 cmd=$3
        mount --make-rprivate /
        # The root must be a mount point of its own: the toolchain root inside it
        # makes its mounts private from "/".
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sys "$root/sys"
        mount -t tmpfs tmp "$root/tmp"
        mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin" "$root$cache"
        mount --bind -o ro "$HOME/.rustup" "$root/root/.rustup"
        mount --bind -o ro "$HOME/.cargo/bin" "$root/root/.cargo/bin"
        mount --bind "$cache" "$root$cache"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
            PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            METIS_CACHE="$cache" bash -c "cd /work/metis && $cmd"
    ' _ "$root" "$cache" "$cmd" >"$logf" 2>&1 &
    run_pid=$!
    local rc=0
    wait "$run_pid" || rc=$?
    run_pid=""
    return $rc
}

status=0
for step in demo check; do
    [ "$what" = both ] || [ "$what" = "$step" ] || continue
    t=$SECONDS
    say "make $step (log: $work/$step.log)"
    if run_in_root "make $step" "$work/$step.log"; then r=passed; else r=FAILED; status=1; fi
    echo "make $step: $r in $((SECONDS - t)) s (log: $work/$step.log)"
    [ $r = passed ] || { tail -30 "$work/$step.log" >&2; keep=1; break; }
done
exit $status
