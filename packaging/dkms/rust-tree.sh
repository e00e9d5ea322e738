#!/bin/bash
# Gives DKMS a kernel build tree with the Rust metadata that Debian's header
# packages leave out (no rust/*.rmeta, no proc-macro libraries, no
# scripts/target.json), regenerated from the matching linux-source package.
#
#   rust-tree.sh KERNELVER KERNEL-BUILD-DIR      prints the tree to build against
#   rust-tree.sh --check KERNELVER KERNEL-BUILD-DIR
#                                                 0 if it could; else one line why, exit 1
#   rust-tree.sh --remove KERNELVER               drops KERNELVER's tree
#
# Why this is sound (docs/install.md, "Debian kernels"): a Rust symbol's name
# is its crate's disambiguator, which hashes the crate name and the rustc
# version string, plus its path, which needs the same source and .config. So
# the same source package version, the headers' own .config and the rustc
# named by CONFIG_RUSTC_VERSION_TEXT give every exported name Debian's
# Module.symvers lists. Debian's kernel has no MODVERSIONS, so a tree from
# another kernel version would load and misbehave silently: a tree is keyed on
# the exact kernel release and headers package version, and never reused
# across them.
#
# Trees live in $METIS_RUST_TREES (default /var/lib/metis-dkms/trees), one
# directory per kernel release; the kernel's postrm hook removes it with the
# kernel. Unpacking and building need about 2 GB in $TMPDIR (default /var/tmp)
# for a few minutes.
set -euo pipefail
FORMAT=1
TREES=${METIS_RUST_TREES:-/var/lib/metis-dkms/trees}

mode=build
case ${1:-} in
    --check) mode=check; shift ;;
    --remove) rm -rf "${TREES:?}/${2:?usage: rust-tree.sh --remove KERNELVER}" \
        "$TREES/$2.partial"; exit 0 ;;
esac
[ $# -eq 2 ] || { echo "usage: rust-tree.sh [--check] KERNELVER KERNEL-BUILD-DIR" >&2; exit 2; }
kver=$1 kdir=$2
die() { echo "metis: kernel $kver: $*" >&2; exit 1; }
conf() { sed -n "s/^$1=//p" "$kdir/.config" | tr -d '"'; }

[ -f "$kdir/.config" ] || die "no build tree at $kdir; install linux-headers-$kver"
[ "$(conf CONFIG_RUST)" = y ] ||
    die "built without Rust support (CONFIG_RUST), so it can't load a Rust module; metis is skipped for it"

# The headers package and the source package of the very same version.
real=$(readlink -f "$kdir")
hpkg=$(dpkg-query -S "$real/.config" 2>/dev/null | cut -d: -f1) ||
    die "$real is not from a Debian headers package and has no Rust metadata (rust/libkernel.rmeta); build against the kernel's full build tree instead"
hver=$(dpkg-query -W -f '${Version}' "$hpkg")
series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$kver")
spkg=linux-source-$series
# Unpacked is enough (its files are there): apt may configure the headers, and
# so run DKMS, before it configures the source package of the same upgrade.
sver=$(dpkg-query -W -f '${db:Status-Status} ${Version}\n' "$spkg" 2>/dev/null |
    awk '$1 ~ /^(installed|unpacked|half-configured|triggers-awaited|triggers-pending)$/ { print $2 }' ||
    true)
[ -n "$sver" ] ||
    die "its Rust metadata is rebuilt from $spkg $hver, which is not installed: apt install $spkg=$hver"
[ "$sver" = "$hver" ] ||
    die "its Rust metadata must be rebuilt from $spkg $hver, but $sver is installed: apt install $spkg=$hver"
tarball=/usr/src/$spkg.tar.xz
[ -f "$tarball" ] || die "$spkg is installed but $tarball is missing; reinstall $spkg"

# The compilers the kernel was built with.
want=$(conf CONFIG_RUSTC_VERSION_TEXT)
have=$(rustc --version 2>/dev/null) ||
    die "no rustc found; it was built with \"$want\": install that rustc (on Debian trixie: apt install rustc rust-src)"
[ "$have" = "$want" ] ||
    die "it was built with \"$want\" but rustc here is \"$have\"; Rust modules need the kernel's own rustc (on Debian trixie, the rustc of trixie, not of trixie-backports)"
cc=$(conf CONFIG_CC_VERSION_TEXT | cut -d' ' -f1)
if [ "$(conf CONFIG_ARM64)" = y ]; then
    karch=arm64 triplet=aarch64-linux-gnu
elif [ "$(conf CONFIG_X86_64)" = y ]; then
    karch=x86 triplet=x86_64-linux-gnu
else
    die "neither x86_64 nor arm64, the architectures metis supports"
fi
[ "$(conf CONFIG_CC_IS_GCC)" = y ] && [ "${cc#"$triplet"-}" != "$cc" ] ||
    die "it was built with \"$(conf CONFIG_CC_VERSION_TEXT)\", which this script does not know how to match"
command -v "$cc" >/dev/null ||
    die "it was built with $cc, which is not installed: apt install ${cc#"$triplet"-}-${triplet//_/-}"
for tool in bindgen make flex bison bc pahole; do
    command -v "$tool" >/dev/null || die "$tool is needed to rebuild its Rust metadata; install it"
done
hostcc=gcc
command -v gcc-14 >/dev/null && hostcc=gcc-14

stamp="format $FORMAT, $hpkg $hver, $want"
tree=$TREES/$kver
# --check is quiet when all is well: dkms.conf runs it whenever DKMS reads it.
[ "$mode" = check ] && exit 0
if [ -f "$tree/.metis-stamp" ] && [ "$(cat "$tree/.metis-stamp")" = "$stamp" ]; then
    echo "$tree"
    exit 0
fi

# One builder per kernel at a time.
mkdir -p "$TREES"
exec 9>"$TREES/.$kver.lock"
flock 9
if [ -f "$tree/.metis-stamp" ] && [ "$(cat "$tree/.metis-stamp")" = "$stamp" ]; then
    echo "$tree"
    exit 0
fi

start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/metis-rust-tree.XXXXXX")
trap 'rm -rf "$work" "$tree.partial"' EXIT
echo "metis: kernel $kver: rebuilding its Rust metadata from $spkg $hver with $have (a few minutes, once per kernel)" >&2
tar -xf "$tarball" -C "$work"
src=$(echo "$work"/linux-source-*)
out=$work/out
mkdir -p "$out"
cp "$kdir/.config" "$out/.config"
args=(-C "$src" O="$out" ARCH="$karch" CROSS_COMPILE="$triplet-" CC="$cc" HOSTCC="$hostcc")
make "${args[@]}" olddefconfig >"$work/olddefconfig.log" 2>&1 ||
    { tail -20 "$work/olddefconfig.log" >&2; die "olddefconfig of $spkg failed"; }
make "${args[@]}" -j"$(nproc)" modules_prepare >"$work/prepare.log" 2>&1 ||
    { tail -30 "$work/prepare.log" >&2; die "modules_prepare of $spkg failed (log above)"; }
[ -f "$out/rust/libkernel.rmeta" ] || die "modules_prepare made no rust/libkernel.rmeta"

# The tree: the headers as packaged (the -common part stays shared through its
# symlinks), the regenerated rust/, and a scripts/ of our own: the packaged
# scripts with the host programs and target.json built here on top (a
# cross-built kernel's packaged scripts are binaries for the other arch).
rm -rf "$tree.partial"
cp -a "$real" "$tree.partial"
# Debian's links into linux-kbuild are relative: point them at their targets,
# and make scripts/ a copy.
for l in "$tree.partial"/*; do
    [ -L "$l" ] || continue
    t=$(readlink -f "$real/${l##*/}")
    rm "$l"
    if [ "${l##*/}" = scripts ]; then cp -aL "$t" "$l"; else ln -s "$t" "$l"; fi
done
cp -a "$out/scripts/." "$tree.partial/scripts/"
mkdir -p "$tree.partial/rust"
cp -a "$out"/rust/*.rmeta "$out"/rust/*.so "$tree.partial/rust/"
strip --strip-debug "$tree.partial"/rust/*.so 2>/dev/null || true
sed -i "s|^KBUILD_OUTPUT=.*|KBUILD_OUTPUT=$tree|" "$tree.partial/Makefile"
echo "$stamp" >"$tree.partial/.metis-stamp"
rm -rf "$tree"
mv "$tree.partial" "$tree"
echo "metis: kernel $kver: Rust metadata ready in $(( $(date +%s) - start )) s, $(du -sh "$tree" | cut -f1) in $tree" >&2
echo "$tree"
