#!/usr/bin/env bash
# The whole test suite (README: `make check`). Installs the toolchain root and
# builds the kernels on first use (cached in $METIS_CACHE), then runs:
#   1. userspace: cargo fmt/clippy/test for the emulator and tools
#   2. the device-tree overlays (tests/dts/check.sh) and the module: rustfmt
#      check and a CLIPPY=1 build against each kernel
#   3. the packages: build, install, DKMS for both kernels (tests/packaging/check.sh)
#   4. the QEMU matrix: every scenario in tests/scenarios on each configuration;
#      beside it, metis-dkms on Debian's own kernels (tests/packaging/debian.sh),
#      then those kernels booted with their DKMS-built module (probe, dma,
#      teardown) on every configuration they can run
# Exits non-zero if anything fails.
#
#   METIS_CONFIGS="x86-none arm64-none"   limit the matrix
#   METIS_SCENARIOS="probe dw-edma"       limit the scenarios
#   METIS_SOAK=1                          long soaks too (100 S3 cycles on x86-translated)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"
t0=$SECONDS
stamp() { printf '[check %4ds] %s\n' $((SECONDS - t0)) "$*"; }

stamp "host prerequisites"
# bindgen (userspace/metis/build.rs) loads libclang itself (libclang.so.N, from
# libclang1-N), which is not libclang-cpp.so.N: ask dpkg for the package, not the
# file system for a name that looks like it.
# shellcheck source=toolroot.sh
. "$HERE/toolroot.sh"
host_install libclang-dev

stamp "toolchain root"
bash "$HERE/toolroot.sh" >/dev/null

# Kernels build in the background while the userspace tests run, in a process
# group of their own so that an early failure here stops them too.
stamp "kernels (x86_64 ${METIS_FLAVOUR_X86_64:-debug}, arm64 ${METIS_FLAVOUR_ARM64:-release})"
setsid bash -c 'bash "$1/kernel.sh" x86_64 "$2" >/dev/null && bash "$1/kernel.sh" arm64 "$3" >/dev/null' \
    _ "$HERE" "${METIS_FLAVOUR_X86_64:-debug}" "${METIS_FLAVOUR_ARM64:-release}" &
kpid=$!
stop_kernels() { kill -TERM -- "-$kpid" 2>/dev/null || true; }
trap stop_kernels EXIT

stamp "ABI: uapi header layout pinned to the module's numbers"
gcc -Wall -Werror -o /tmp/metis-abi-check tests/abi/abi_check.c && /tmp/metis-abi-check
bash "$HERE/toolroot.sh" aarch64-linux-gnu-gcc -Wall -Werror -c -o /tmp/abi-arm64.o /src/metis/tests/abi/abi_check.c

stamp "userspace: fmt, clippy, tests"
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
if ! cargo test -q --workspace >/tmp/metis-cargo-test.log 2>&1; then
    tail -40 /tmp/metis-cargo-test.log
    echo "cargo test failed"
    exit 1
fi
grep -E "^test result" /tmp/metis-cargo-test.log
(cd "$HERE" && python3 -m unittest -q test_perf_report)

stamp "waiting for kernels"
wait $kpid || { echo "kernel build failed (logs: $METIS_CACHE/linux-*.log)"; exit 1; }
trap - EXIT

stamp "device-tree overlays against the upstream board trees"
bash tests/dts/check.sh

stamp "module: rustfmt check and clippy"
KX=$(bash "$HERE/kernel.sh" x86_64 "${METIS_FLAVOUR_X86_64:-debug}")
KA=$(bash "$HERE/kernel.sh" arm64 "${METIS_FLAVOUR_ARM64:-release}")
bash "$HERE/toolroot.sh" sh -c "cd /src/metis && rustfmt --edition 2021 --config-path $KX/../linux-source-7.3/.rustfmt.toml --check drivers/metis/*.rs"
# With the KUnit suites (what the guests load) and without them (what DKMS
# builds): code only the tests use is dead, and a warning, in the second.
for k in "$KX" "$KA"; do
    for kunit in 1 0; do
        bash "$HERE/toolroot.sh" make -s -C "$k" M=/src/metis MO="$k.metis-clippy$kunit" $(cat "$k/.metis-make-args") \
            $([ $kunit = 1 ] && echo METIS_KUNIT=1) CLIPPY=1 KCFLAGS=-Werror modules 2>&1 | tee /tmp/metis-clippy.log
        if grep -qE "^(warning|error)" /tmp/metis-clippy.log; then
            echo "module build (KUnit $kunit) has warnings"
            exit 1
        fi
    done
done

stamp "packaging: Debian packages, DKMS builds for both kernels, removal"
bash tests/packaging/check.sh "$KX" "$KA"

# Debian's kernels: apt and dpkg in a throwaway root, mostly waiting on I/O, beside
# the guests, which leave a core idle much of the time.
stamp "QEMU matrix; beside it, metis-dkms on Debian's kernels (log: $METIS_CACHE/debian.log)"
bash tests/packaging/debian.sh "$METIS_CACHE/deb" >"$METIS_CACHE/debian.log" 2>&1 &
dpid=$!
mrc=0
python3 "$HERE/run.py" matrix ${METIS_CONFIGS:+--configs $METIS_CONFIGS} ${METIS_SCENARIOS:+--scenarios $METIS_SCENARIOS} ||
    mrc=$?
stamp "Debian kernels"
drc=0
wait $dpid || drc=$?
grep -E "^debian: " "$METIS_CACHE/debian.log" || true
if [ $drc -ne 0 ]; then
    tail -30 "$METIS_CACHE/debian.log"
    echo "metis-dkms on Debian's kernels failed (log: $METIS_CACHE/debian.log)"
    exit 1
fi
# arm64-translated needs Debian's virtio_iommu, a module the guest does not load.
python3 "$HERE/run.py" matrix --distro "$(cat "$METIS_CACHE/debian-kernels/tested")" \
    --configs x86-none x86-translated x86-pt arm64-none --scenarios probe dma teardown || exit 1
[ $mrc -eq 0 ] || exit $mrc
stamp "done"
