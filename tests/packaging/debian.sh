#!/usr/bin/env bash
# metis-dkms on Debian's own Rust-enabled kernels (issue 17), in a throwaway
# overlay of a plain trixie root (tests/packaging/debian-root.sh):
#   * `apt install ./metis-dkms_*.deb` pulls what it needs from trixie alone;
#   * a Debian kernel without the linux-source of its version is skipped
#     with one line that says so, and its installation does not fail;
#   * with linux-source installed, DKMS builds metis.ko for Debian's amd64
#     kernel and, cross-built, for its arm64 kernel: the Rust metadata is
#     rebuilt once per kernel (time and size printed) and kept per kernel;
#   * the modules match their kernel (vermagic, Rust imports all exported by
#     the kernel's Module.symvers);
#   * with another rustc (trixie-backports') the build is refused by name;
#   * with a signing key configured, DKMS signs the module (Secure Boot);
#   * removing a kernel removes its tree; removing metis-dkms removes the
#     modules and every tree.
# The kernel images and DKMS-built modules are copied to
# $METIS_CACHE/debian-kernels/KVER/ for run.py's --distro boots.
#
#   tests/packaging/debian.sh [DEB-DIR]   (default: builds the packages)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${METIS_CACHE:-$HOME/.cache/metis}
export METIS_CACHE=$CACHE
root=$(bash "$HERE/debian-root.sh")
out=${1:-}
if [ -z "$out" ]; then
    out=$CACHE/deb
    bash "$REPO/packaging/deb/build.sh" "$out" >/dev/null
fi
mkdir -p "$CACHE/debian-archives/partial" "$CACHE/debian-kernels"

# shellcheck source=../harness/toolroot.sh
. "$REPO/tests/harness/toolroot.sh"
METIS_TOOLROOT_SCRATCH=1 _chroot_exec "$root" bash -s "$out" "$CACHE" <<'EOF'
set -euo pipefail
out=$1 cache=$2
export DEBIAN_FRONTEND=noninteractive
fail() { echo "debian: FAIL: $*"; exit 1; }
ok() { echo "debian: ok: $*"; }
apt_() { apt-get -o Dir::Cache::Archives="$cache/debian-archives/" -y -q "$@" >>/tmp/apt.log 2>&1 ||
    { tail -30 /tmp/apt.log; fail "apt-get $*"; }; }
t0=$(date +%s)

apt_ install "$out"/metis-dkms_*_all.deb
ok "metis-dkms installed from trixie alone: $(rustc --version)"

# The newest Rust-enabled kernel series in trixie-backports.
kseries=7.3
kver=$(apt-cache search --names-only "^linux-headers-$kseries\.[0-9]*\+deb13-amd64\$" |
    sed -n 's/^linux-headers-\([^ ]*\)-amd64 .*/\1/p' | sort -V | tail -1)
[ -n "$kver" ] || fail "no linux-headers-$kseries.*-amd64 in trixie-backports"
ka=$kver-amd64 kb=$kver-arm64
hver=$(apt-cache policy "linux-headers-$ka" | sed -n 's/^  Candidate: //p')
echo "debian: kernel $ka and $kb, packages $hver"

# The trees rust-tree.sh makes are cached between runs like the kernels, keyed
# on the script that makes them: a run seeds /var/lib/metis-dkms/trees from
# the cache (rust-tree.sh still checks each one's stamp) and saves new ones.
tree_cache=$cache/debian-trees/$(sha256sum /usr/src/metis-*/rust-tree.sh | cut -c1-12)
seed_trees() {
    local k
    for k in "$@"; do
        [ -d "$tree_cache/$k" ] || continue
        mkdir -p /var/lib/metis-dkms/trees && cp -a "$tree_cache/$k" "/var/lib/metis-dkms/trees/$k"
    done
}
dkms_build() {  # KVER
    local t=/var/lib/metis-dkms/trees/$1
    # (A no-op when the headers' own install has built it.)
    dkms autoinstall -k "$1" >/tmp/dkms-$1.log 2>&1 ||
        { cat /tmp/dkms-$1.log; tail -40 /var/lib/dkms/metis/*/build/make.log; fail "dkms autoinstall $1"; }
    local how
    how=$(grep -h "Rust metadata ready" /var/lib/dkms/metis/*/"$1"/*/log/make.log 2>/dev/null | sed 's/^metis: //' || true)
    echo "debian: note: ${how:-kernel $1: Rust metadata from the cache ($(du -sh "$t" | cut -f1))}"
    if [ ! -d "$tree_cache/$1" ] && [ -d "$t" ]; then
        mkdir -p "$tree_cache" && rm -rf "$tree_cache/$1.partial" &&
            cp -a "$t" "$tree_cache/$1.partial" && mv "$tree_cache/$1.partial" "$tree_cache/$1"
    fi
}

seed_trees "$ka" "$kb"

# Headers without linux-source: skipped, with the reason, and the install goes on.
apt_ install -t trixie-backports "linux-headers-$ka"
grep -q "linux-source-$kseries $hver, which is not installed" /tmp/apt.log ||
    { grep -n "metis" /tmp/apt.log | tail -20; fail "no line naming the missing linux-source"; }
[ ! -e "/lib/modules/$ka/updates/dkms/metis.ko" ] || fail "built without linux-source"
ok "without linux-source-$kseries the kernel is skipped, its install goes on: $(grep -m1 "linux-source-$kseries $hver" /tmp/apt.log)"

# With it: DKMS builds, the Rust metadata rebuilt once.
apt_ install -t trixie-backports "linux-source-$kseries=$hver"
dkms_build "$ka"

# A module that belongs to its kernel: vermagic, every Rust import exported by
# the kernel (names carry the rustc's hash), a signature from DKMS's MOK key.
module_ok() {  # KVER ELF-MACHINE-NAME
    local m=/lib/modules/$1/updates/dkms/metis.ko
    [ -f "$m.xz" ] && { xz -dc "$m.xz" >/tmp/metis-$1.ko; m=/tmp/metis-$1.ko; }
    [ -f "$m" ] || { cat "/tmp/dkms-$1.log"; fail "no metis.ko for $1"; }
    [ "$(modinfo -F vermagic "$m" | cut -d' ' -f1)" = "$1" ] || fail "$1: vermagic $(modinfo -F vermagic "$m")"
    readelf -h "$m" | grep -q "Machine: *$2" || fail "$1: not a $2 module: $(readelf -h "$m" | grep Machine)"
    nm -u "$m" | awk '{ print $2 }' | sort -u >/tmp/imports
    cut -f2 "/usr/src/linux-headers-$1/Module.symvers" | sort -u >/tmp/exports
    comm -23 /tmp/imports /tmp/exports >/tmp/missing
    [ ! -s /tmp/missing ] || { head /tmp/missing; fail "$1: $(wc -l </tmp/missing) imports the kernel does not export"; }
    [ "$(modinfo -F sig_id "$m")" = PKCS#7 ] || fail "$1: not signed"
    ok "$1: metis.ko ($2), vermagic matches, $(grep -c '^_R' /tmp/imports) Rust and $(grep -vc '^_R' /tmp/imports) C imports all exported, signed ($(modinfo -F signer "$m"))"
    mkdir -p "$cache/debian-kernels/$1"
    cp "$m" "$cache/debian-kernels/$1/metis.ko"
}
module_ok "$ka" "Advanced Micro Devices X86-64"
# The oldest rustc a supported kernel uses (trixie's 1.85) builds the driver without a warning.
log=$(ls /var/lib/dkms/metis/*/"$ka"/*/log/make.log)
! grep -E "^(warning|error)" "$log" || fail "$(rustc --version) warns about the driver ($log)"
ok "$(rustc --version) builds the driver without a warning"

# The kernel itself, as a user installs it (its postinst runs DKMS, a no-op now).
apt_ install -t trixie-backports "linux-image-$ka"
cp "/boot/vmlinuz-$ka" "$cache/debian-kernels/$ka/vmlinuz"
cp "/boot/config-$ka" "$cache/debian-kernels/$ka/config"

# A second kernel installed after the package (arm64, cross-built): its own tree.
apt_ install -t trixie-backports "linux-headers-$kb:arm64" gcc-14-aarch64-linux-gnu
dkms_build "$kb"
module_ok "$kb" AArch64
[ -d "/var/lib/metis-dkms/trees/$ka" ] && [ -d "/var/lib/metis-dkms/trees/$kb" ] ||
    fail "each kernel keeps its own tree"
# Its image only (an arm64 kernel is not for this machine to boot).
deb=$cache/debian-archives/linux-binary-${kb}_${hver//:/%3a}_arm64.deb
[ -f "$deb" ] || (cd "$cache/debian-archives" && apt-get download -q "linux-binary-$kb:arm64" >/dev/null 2>&1) ||
    fail "download linux-binary-$kb"
dpkg-deb -x "$deb" /tmp/kb
cp "/tmp/kb/usr/lib/modules/$kb/vmlinuz" "$cache/debian-kernels/$kb/vmlinuz"
cp "/usr/src/linux-headers-$kb/.config" "$cache/debian-kernels/$kb/config"

# Another rustc (trixie-backports'): refused by name, before any compiling.
apt_ install -t trixie-backports rustc
if bash /usr/src/metis-*/dkms-make.sh --check "$ka" "/lib/modules/$ka/build" 2>/tmp/rustc.err; then
    fail "accepted $(rustc --version) for a kernel built with 1.85.1"
fi
grep -q "but rustc here is \"$(rustc --version)\"" /tmp/rustc.err || { cat /tmp/rustc.err; fail "rustc mismatch not named"; }
ok "another rustc is refused in one line: $(cat /tmp/rustc.err)"

# Removing a kernel removes its tree; removing the package removes the rest.
apt_ purge "linux-image-$ka" "linux-binary-$ka" "linux-modules-$ka"
[ ! -e "/var/lib/metis-dkms/trees/$ka" ] || fail "the tree of the removed kernel $ka is still there"
[ -d "/var/lib/metis-dkms/trees/$kb" ] || fail "removing $ka took $kb's tree too"
ok "removing kernel $ka removed its tree, $kb's stays"
apt_ purge metis-dkms
for k in "$ka" "$kb"; do
    [ ! -e "/lib/modules/$k/updates/dkms/metis.ko" ] && [ ! -e "/lib/modules/$k/updates/dkms/metis.ko.xz" ] ||
        fail "metis.ko left in $k after removal"
done
[ ! -e /var/lib/metis-dkms ] || fail "/var/lib/metis-dkms left after removal"
ok "removing metis-dkms removed the modules and every tree"
echo "$kver" >"$cache/debian-kernels/tested"
echo "debian: note: $(( $(date +%s) - t0 )) s in all"
EOF
