#!/bin/bash
# DKMS build step for metis (dkms.conf MAKE[0]):
#
#   dkms-make.sh KERNELVER KERNEL-BUILD-DIR           builds metis.ko
#   dkms-make.sh --check KERNELVER KERNEL-BUILD-DIR   0 if it can be built; else
#                                                     one line saying why, exit 1
#
# A Rust module needs more from the kernel tree than a C one: the Rust
# metadata of the kernel crates, and the very rustc (and, for a kernel built
# with clang, the clang) that built the kernel. Debian's header packages ship
# no Rust metadata: rust-tree.sh rebuilds it from the matching linux-source
# package, once per kernel. Each need is checked first, so a missing piece is
# named in one line (dkms.conf runs --check, so that such a kernel is skipped
# rather than failing its installation) instead of surfacing as a compiler
# error. Kernels built for another architecture (an RK3588 image prepared on
# a PC) are cross-built with the usual Debian cross compiler.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=build
[ "${1:-}" = --check ] && { mode=check; shift; }
kver=$1 kdir=$2
die() { echo "metis: kernel $kver: $*" >&2; exit 1; }
conf() { sed -n "s/^$1=//p" "$kdir/.config" | tr -d '"'; }

[ -f "$kdir/.config" ] ||
    die "no build tree at $kdir; install that kernel's headers package"
[ "$(conf CONFIG_RUST)" = y ] ||
    die "built without Rust support (CONFIG_RUST); metis needs a kernel with CONFIG_RUST=y"
[ "$(conf CONFIG_PCI_MSI)" = y ] || die "built without PCI MSI support (CONFIG_PCI_MSI)"

if [ ! -f "$kdir/rust/libkernel.rmeta" ]; then
    if [ -n "$(dpkg-query -S "$(readlink -f "$kdir")/.config" 2>/dev/null)" ]; then
        # A Debian headers package: rebuild what it left out.
        if [ "$mode" = check ]; then
            bash "$here/rust-tree.sh" --check "$kver" "$kdir" >/dev/null || exit 1
        else
            kdir=$(bash "$here/rust-tree.sh" "$kver" "$kdir")
        fi
    else
        die "the tree at $kdir has no Rust metadata (rust/libkernel.rmeta): its headers were packaged without what out-of-tree Rust modules need; point /lib/modules/$kver/build at the kernel's full build tree"
    fi
fi

want=$(conf CONFIG_RUSTC_VERSION_TEXT)
have=$(rustc --version 2>/dev/null) ||
    die "no rustc found; it was built with \"$want\", install that version"
[ "$have" = "$want" ] ||
    die "it was built with \"$want\" but rustc here is \"$have\"; Rust modules must be built with the kernel's own rustc"

args=()
karch=
[ "$(conf CONFIG_ARM64)" = y ] && karch=aarch64
[ "$(conf CONFIG_X86_64)" = y ] && karch=x86_64
case $karch in
    "$(uname -m)") ;;
    aarch64) args+=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) ;;
    x86_64) args+=(ARCH=x86_64 CROSS_COMPILE=x86_64-linux-gnu-) ;;
    *) die "neither x86_64 nor arm64, the architectures metis supports" ;;
esac
if [ "$(conf CONFIG_CC_IS_CLANG)" = y ]; then
    major=$(( $(conf CONFIG_CLANG_VERSION) / 10000 ))
    if command -v "clang-$major" >/dev/null; then
        args+=("LLVM=-$major")
    elif command -v clang >/dev/null; then
        args+=(LLVM=1)
    else
        die "it was built with clang $major; install clang-$major and lld-$major"
    fi
fi
[ "$mode" = check ] && exit 0

exec make -C "$kdir" M="$PWD" "${args[@]}" modules
