#!/bin/bash
# DKMS build step for metis (dkms.conf MAKE[0]): KERNELVER KERNEL-BUILD-DIR.
#
# A Rust module needs more from the kernel tree than a C one: the Rust
# metadata of the kernel crates, and the very rustc (and, for a kernel built
# with clang, the clang) that built the kernel. Each is checked first, so a
# missing piece is named in DKMS's make.log instead of surfacing as a
# compiler error. Kernels built for another architecture (an RK3588 image
# prepared on a PC) are cross-built with the usual Debian cross compiler.
set -euo pipefail
kver=$1 kdir=$2
die() { echo "metis: $*" >&2; exit 1; }
conf() { sed -n "s/^$1=//p" "$kdir/.config" | tr -d '"'; }

[ -f "$kdir/.config" ] ||
    die "no build tree for kernel $kver at $kdir; install that kernel's headers package"
[ "$(conf CONFIG_RUST)" = y ] ||
    die "kernel $kver is built without Rust support (CONFIG_RUST); metis needs a kernel with CONFIG_RUST=y"
[ -f "$kdir/rust/libkernel.rmeta" ] ||
    die "the tree at $kdir has no Rust metadata (rust/libkernel.rmeta): its headers were packaged without what out-of-tree Rust modules need; point /lib/modules/$kver/build at the kernel's full build tree"

want=$(conf CONFIG_RUSTC_VERSION_TEXT)
have=$(rustc --version 2>/dev/null) ||
    die "no rustc found; kernel $kver was built with \"$want\", install that version"
[ "$have" = "$want" ] ||
    die "kernel $kver was built with \"$want\" but rustc here is \"$have\"; Rust modules must be built with the kernel's own rustc"

args=()
karch=
[ "$(conf CONFIG_ARM64)" = y ] && karch=aarch64
[ "$(conf CONFIG_X86_64)" = y ] && karch=x86_64
case $karch in
    "$(uname -m)") ;;
    aarch64) args+=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) ;;
    x86_64) args+=(ARCH=x86_64 CROSS_COMPILE=x86_64-linux-gnu-) ;;
    *) die "kernel $kver is neither x86_64 nor arm64, the architectures metis supports" ;;
esac
if [ "$(conf CONFIG_CC_IS_CLANG)" = y ]; then
    major=$(( $(conf CONFIG_CLANG_VERSION) / 10000 ))
    if command -v "clang-$major" >/dev/null; then
        args+=("LLVM=-$major")
    elif command -v clang >/dev/null; then
        args+=(LLVM=1)
    else
        die "kernel $kver was built with clang $major; install clang-$major and lld-$major"
    fi
fi

exec make -C "$kdir" M="$PWD" "${args[@]}" modules
