#!/usr/bin/env bash
# Builds (or reuses) a Rust-enabled 7.3 kernel for ARCH (x86_64|arm64) and
# FLAVOUR (release|debug) from the fragments in kunit/config/, inside the
# toolchain root. The build tree lives in the cache, keyed by every input.
#
#   kernel.sh ARCH FLAVOUR      prints the build directory
#   kernel.sh source            unpacks the kernel source (once) and prints its path
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/toolroot.sh"

# The kernel depends on the compilers and the source, not on the rest of the
# root: key it on those packages' versions so adding a tool to the root does
# not force a rebuild.
kernel_tool_versions() {
    grep -E '^(gcc-14|gcc-aarch64-linux-gnu|clang-19|lld-19|rustc|rust-src|bindgen|libclang-19-dev|linux-source-7.3|binutils)[[:space:]]' \
        "$(toolroot_path)/versions.txt"
}

# The test kernel's patches for ARCH, in name order: kunit/patches/ARCH/*.patch
# (guest-kernel fixes the tests need, written for upstream; the module never
# depends on them).
kernel_patches() {
    local f
    for f in "$METIS_REPO/kunit/patches/$1"/*.patch; do
        [ -f "$f" ] && echo "$f"
    done
    return 0
}

# Names and contents of ARCH's patches; empty without patches, so that the key
# of an arch without any stays what it was.
kernel_patches_digest() {
    local f
    for f in $(kernel_patches "$1"); do
        echo "${f##*/}"
        cat "$f"
    done
}

kernel_dir() {
    local arch=$1 flavour=$2 key
    toolroot_ensure
    key=$( { kernel_tool_versions; cat "$METIS_REPO/kunit/config/common.config" \
        "$METIS_REPO/kunit/config/$arch.config" "$METIS_REPO/kunit/config/$flavour.config"
        kernel_patches_digest "$arch"; } |
        sha256sum | cut -c1-12)
    echo "$METIS_CACHE/linux-$arch-$flavour-$key"
}

kernel_image() {
    case $1 in
        x86_64) echo "$2/arch/x86/boot/bzImage" ;;
        arm64) echo "$2/arch/arm64/boot/Image" ;;
    esac
}

# Unpacks Debian's linux-source-7.3 into the cache once; prints its path.
source_ensure() {
    local src=$METIS_CACHE/linux-source-7.3
    if [ ! -f "$src/Makefile" ]; then
        mkdir -p "$METIS_CACHE"
        exec 7>"$METIS_CACHE/.linux-source.lock"
        flock 7
        [ -f "$src/Makefile" ] || toolroot_run bash -c '
            set -e
            rm -rf "$1.partial"; mkdir -p "$1.partial"
            tar -xJf /usr/src/linux-source-7.3.tar.xz -C "$1.partial" --strip-components=1
            mv "$1.partial" "$1"' _ "$src" >&2
        flock -u 7
    fi
    echo "$src"
}

# The tree ARCH builds from: the pristine unpacked source, or, when ARCH has
# patches, a copy of its own (unpacked again, never hard-linked to the pristine
# one) with them applied, named after them. A patch that no longer applies
# fails here, loudly.
source_for() {
    local arch=$1 src dst
    src=$(source_ensure)
    [ -n "$(kernel_patches "$arch")" ] || { echo "$src"; return 0; }
    dst=$src-$(kernel_patches_digest "$arch" | sha256sum | cut -c1-12)
    if [ ! -f "$dst/.metis-patched" ]; then
        exec 7>"$METIS_CACHE/.linux-source.lock"
        flock 7
        # Inside the root the repository is /src/metis.
        [ -f "$dst/.metis-patched" ] || toolroot_run bash -c '
            set -e
            command -v patch >/dev/null || { echo "the toolchain root has no patch(1)" >&2; exit 1; }
            dst=$1; shift
            rm -rf "$dst.partial"; mkdir -p "$dst.partial"
            tar -xJf /usr/src/linux-source-7.3.tar.xz -C "$dst.partial" --strip-components=1
            for p in "$@"; do
                echo "applying ${p##*/}"
                patch -p1 --forward --batch --quiet -d "$dst.partial" <"$p"
            done
            touch "$dst.partial/.metis-patched"
            mv "$dst.partial" "$dst"' _ "$dst" \
            $(kernel_patches "$arch" | sed "s:^$METIS_REPO/:/src/metis/:") >&2
        flock -u 7
    fi
    echo "$dst"
}

kernel_ensure() {
    local arch=$1 flavour=$2 dir
    dir=$(kernel_dir "$arch" "$flavour")
    # A built kernel still needs its source tree (out-of-tree modules build against it).
    [ -f "$dir/.metis-built" ] && { source_for "$arch" >/dev/null; echo "$dir"; return 0; }
    toolroot_ensure
    local src
    src=$(source_for "$arch")
    mkdir -p "$METIS_CACHE"
    exec 8>"$METIS_CACHE/.kernel-$arch-$flavour.lock"
    flock 8
    if [ ! -f "$dir/.metis-built" ]; then
        log "building the $arch/$flavour kernel, once (10 to 20 min on 2 cores); log: $dir.log"
        local t0=$SECONDS
        mkdir -p "$dir"
        toolroot_run bash -c '
            set -euo pipefail
            arch=$1 flavour=$2 dir=$3 src=$4
            case $arch in
                x86_64) mk="ARCH=x86_64"; img=bzImage ;;
                arm64) mk="ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-"; img=Image ;;
            esac
            # Rust and KASAN together need clang: the version bindgen uses as libclang.
            [ "$flavour" = debug ] && mk="$mk LLVM=-19"
            echo "$mk" >"$dir/.metis-make-args"
            cd "$src"
            make O="$dir" $mk tinyconfig >/dev/null
            frag=/src/metis/kunit/config
            KCONFIG_CONFIG="$dir/.config" scripts/kconfig/merge_config.sh -m -O "$dir" \
                "$dir/.config" "$frag/common.config" "$frag/$arch.config" "$frag/$flavour.config" >/dev/null
            make O="$dir" $mk olddefconfig >/dev/null
            # Every requested option must have survived olddefconfig.
            missing=0
            for f in "$frag/common.config" "$frag/$arch.config" "$frag/$flavour.config"; do
                while IFS= read -r line; do
                    case $line in CONFIG_*=n) opt=${line%%=*}
                        grep -q "^$opt=" "$dir/.config" && { echo "not disabled: $line"; missing=1; } ;;
                    CONFIG_*) grep -qx "$line" "$dir/.config" || { echo "not set: $line"; missing=1; } ;;
                    esac
                done <"$f"
            done
            [ $missing = 0 ] || { echo "kernel config is missing requested options" >&2; exit 1; }
            make O="$dir" $mk -j"$(nproc)" $img modules
            make O="$dir" $mk INSTALL_MOD_PATH="$dir/modinst" INSTALL_MOD_STRIP=1 modules_install >/dev/null
        ' _ "$arch" "$flavour" "$dir" "$src" >"$dir.log" 2>&1 || {
            grep -E 'not set|not disabled|error|Error' "$dir.log" | head -40 >&2; return 1; }
        touch "$dir/.metis-built"
        log "$arch/$flavour kernel built in $((SECONDS - t0)) s"
    fi
    flock -u 8
    echo "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ "$*" = source ]; then source_ensure; exit; fi
    [ $# -eq 2 ] || { echo "usage: $0 x86_64|arm64 release|debug | $0 source" >&2; exit 2; }
    kernel_ensure "$1" "$2"
fi
