#!/usr/bin/env bash
# Checks the device-tree overlays in dts-overlays/ against the upstream device
# trees of the boards they are for (from the kernel source in the cache):
# each overlay compiles, applies with fdtoverlay, and the result passes
# tests/dts/check_window.py. Runs in the toolchain root (cpp, dtc, fdtoverlay).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${METIS_CACHE:-$HOME/.cache/metis}
SRC=$(bash "$REPO/tests/harness/kernel.sh" source)
OUT=$CACHE/build/dts
mkdir -p "$OUT"

# The boards with a Metis-capable M.2 M-key slot on the RK3588 PCIe 3.0 x4 controller.
BOARDS="rk3588-rock-5b rk3588-rock-5b-plus rk3588-rock-5t rk3588-orangepi-5-plus"

bash "$REPO/tests/harness/toolroot.sh" bash -c "
set -euo pipefail
cd $SRC
for b in $BOARDS; do
    cpp -nostdinc -undef -D__DTS__ -x assembler-with-cpp -I include -I arch/arm64/boot/dts \
        -I arch/arm64/boot/dts/rockchip arch/arm64/boot/dts/rockchip/\$b.dts 2>/dev/null |
        dtc -q -@ -I dts -O dtb -o $OUT/\$b.dtb -
done
# The boards as shipped must fail the check (R1.1), or the check proves nothing.
for b in $BOARDS; do
    if python3 /src/metis/tests/dts/check_window.py $OUT/\$b.dtb $OUT/\$b.dtb >$OUT/\$b.base-check; then
        echo \"\$b: the check passes without the overlay\"; exit 1
    fi
    grep -q 'needs 64' $OUT/\$b.base-check
done
for o in /src/metis/dts-overlays/*.dtso; do
    n=\$(basename \$o .dtso)
    dtc -q -@ -I dts -O dtb -o $OUT/\$n.dtbo \$o
    for b in $BOARDS; do
        fdtoverlay -i $OUT/\$b.dtb -o $OUT/\$b+\$n.dtb $OUT/\$n.dtbo
        python3 /src/metis/tests/dts/check_window.py $OUT/\$b.dtb $OUT/\$b+\$n.dtb
    done
done
"
