#!/usr/bin/env bash
# Builds metisctl as a fully static, stripped binary for a QEMU guest (busybox
# initramfs, no libc), for x86_64 or arm64.
#
#   userspace/build-guest.sh ARCH OUTDIR      ARCH: x86_64 | arm64 (or aarch64)
#
# Result: OUTDIR/metisctl, checked with `file` to be a static ELF of ARCH.
#
# Recipe: everything runs inside the project's Debian toolchain root
# (tests/harness/toolroot.sh), with Debian's own Rust toolchain:
#   * rustc + cargo 1.96 from trixie-backports (amd64),
#   * libstd-rust-dev:arm64 of the same version (Multi-Arch: same, so apt keeps
#     both architectures at rustc's exact version) for aarch64-unknown-linux-gnu,
#   * glibc's static libc.a (libc6-dev, libc6-dev-arm64-cross) linked in with
#     `-C target-feature=+crt-static`; linker gcc / aarch64-linux-gnu-gcc,
#   * libclang-19 for bindgen (metis' build script); for arm64 clang finds the
#     target's kernel headers itself (/usr/aarch64-linux-gnu/include, from
#     libc6-dev-arm64-cross) through the installed aarch64-linux-gnu gcc.
# The glibc static link is fine here: metisctl calls nothing that needs NSS
# or dlopen.
#
# Environment:
#   METIS_CACHE   cache directory (default ~/.cache/metis). Holds the cargo
#                 home (crates.io downloads) and the target directories
#                 cargo-target-ARCH, outside the repository.
set -euo pipefail

usage() {
    echo "usage: $0 x86_64|arm64 OUTDIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
ARCH=$1
OUTDIR=$2
case $ARCH in
x86_64)
    TRIPLE=x86_64-unknown-linux-gnu
    CC_BIN=gcc
    FILE_ARCH='x86-64'
    ;;
arm64 | aarch64)
    ARCH=arm64
    TRIPLE=aarch64-unknown-linux-gnu
    CC_BIN=aarch64-linux-gnu-gcc
    FILE_ARCH='ARM aarch64'
    ;;
*) usage ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
METIS_CACHE=${METIS_CACHE:-$HOME/.cache/metis}
export METIS_CACHE
STAGE=$METIS_CACHE/guest-bin/$ARCH

log() { printf '[build-guest %s] %s\n' "$ARCH" "$*" >&2; }

# Inside the toolchain root (second stage): build into $STAGE.
if [ "${METIS_IN_TOOLROOT:-}" = 1 ]; then
    TRIPLE_ENV=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
    export CARGO_HOME=$METIS_CACHE/cargo-home
    export CARGO_TARGET_DIR=$METIS_CACHE/cargo-target-$ARCH
    export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
    export CARGO_PROFILE_RELEASE_STRIP=symbols
    export CARGO_PROFILE_RELEASE_DEBUG=false
    export "CARGO_TARGET_${TRIPLE_ENV}_LINKER=$CC_BIN"
    # Only the target: build scripts and proc-macros stay dynamic host code.
    export "CARGO_TARGET_${TRIPLE_ENV}_RUSTFLAGS=-C target-feature=+crt-static"
    export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
    cd /src/metis
    log "cargo $(cargo --version | cut -d' ' -f2), rustc $(rustc --version | cut -d' ' -f2), target $TRIPLE"
    # Crates were fetched on the host (see below) unless METIS_FETCHED=0.
    if [ "${METIS_FETCHED:-0}" = 1 ]; then net=--frozen; else net=--locked; fi
    cargo build --release $net -p metisctl --target "$TRIPLE"
    mkdir -p "$STAGE"
    cp "$CARGO_TARGET_DIR/$TRIPLE/release/metisctl" "$STAGE/metisctl.tmp"
    mv "$STAGE/metisctl.tmp" "$STAGE/metisctl"
    file -b "$STAGE/metisctl" >"$STAGE/metisctl.file"
    exit 0
fi

# On the host (first stage): fetch the crates, run the build in the root,
# then check and copy. The root reaches package mirrors over plain HTTP only
# and lacks the host's CA setup, so crates.io is reached from the host: its
# cargo fills the shared cargo home and the root builds offline.
rm -f "$STAGE/metisctl" "$STAGE/metisctl.file"
fetched=0
if command -v cargo >/dev/null; then
    log "fetching crates on the host"
    CARGO_HOME=$METIS_CACHE/cargo-home cargo fetch --locked \
        --manifest-path "$REPO/Cargo.toml" --target "$TRIPLE"
    fetched=1
fi
METIS_REPO=$REPO bash "$REPO/tests/harness/toolroot.sh" \
    env METIS_IN_TOOLROOT=1 METIS_FETCHED=$fetched \
    bash /src/metis/userspace/build-guest.sh "$ARCH" /unused
desc=$(cat "$STAGE/metisctl.file")
log "$desc"
case $desc in
*"$FILE_ARCH"*) ;;
*) log "error: not a $FILE_ARCH binary"; exit 1 ;;
esac
case $desc in
*"statically linked"* | *"static-pie linked"*) ;;
*) log "error: not statically linked"; exit 1 ;;
esac
case $desc in
*"not stripped"*) log "error: not stripped"; exit 1 ;;
esac
mkdir -p "$OUTDIR"
cp "$STAGE/metisctl" "$OUTDIR/metisctl.tmp"
mv "$OUTDIR/metisctl.tmp" "$OUTDIR/metisctl"
log "wrote $OUTDIR/metisctl ($(stat -c %s "$OUTDIR/metisctl") bytes)"
