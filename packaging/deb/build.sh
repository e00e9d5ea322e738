#!/usr/bin/env bash
# Builds the Debian packages of metis into OUTDIR (default ~/.cache/metis/deb):
#
#   metis-dkms_V_all.deb      module source, built by DKMS for every installed
#                             kernel with Rust support (now and on kernel
#                             upgrades); udev rule; RK3588 device-tree overlays
#   metis-dev_V_all.deb       the ioctl ABI header, /usr/include/linux/metis.h
#   metisctl_V_amd64.deb      the CLI, a static binary
#   metisctl_V_arm64.deb
#
#   packaging/deb/build.sh [OUTDIR]
#
# Plain dpkg-deb, so it needs nothing beyond the toolchain root
# (tests/harness/toolroot.sh), where it runs. V comes from metisctl's Cargo.toml.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${METIS_CACHE:-$HOME/.cache/metis}
OUT=$(realpath -m "${1:-$CACHE/deb}")
V=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/userspace/metisctl/Cargo.toml" | head -1)
DEBV=$V-1
# The module reports its version in sysfs (driver_version); it must be the package's.
KV=$(sed -n 's/^pub(crate) const DRIVER_VERSION: &str = "\(.*\)";/\1/p' "$REPO/drivers/metis/metis_main.rs")
[ "$KV" = "$V" ] || { echo "drivers/metis/metis_main.rs DRIVER_VERSION ($KV) differs from metisctl's version ($V)" >&2; exit 1; }
MAINT="metis developers <metis-dev@lists.invalid>"
stage=$CACHE/build/deb-stage
rm -rf "$stage" && mkdir -p "$stage" "$OUT"

# metisctl for both architectures, as the QEMU guests get it.
for a in x86_64 arm64; do
    bash "$REPO/userspace/build-guest.sh" "$a" "$stage/bin-$a" >"$stage/metisctl-$a.log" 2>&1 ||
        { cat "$stage/metisctl-$a.log" >&2; exit 1; }
done

control() {  # DIR PACKAGE ARCH DEPENDS DESCRIPTION...
    local d=$1 p=$2 a=$3 dep=$4; shift 4
    mkdir -p "$d/DEBIAN"
    {
        echo "Package: $p"
        echo "Version: $DEBV"
        echo "Architecture: $a"
        echo "Maintainer: $MAINT"
        [ -n "$dep" ] && echo "Depends: $dep"
        echo "Section: kernel"
        echo "Priority: optional"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$d" | cut -f1)"
        printf 'Description: %s\n' "$1"; shift
        for line in "$@"; do printf ' %s\n' "$line"; done
    } >"$d/DEBIAN/control"
}

docs() {  # DIR PACKAGE
    mkdir -p "$1/usr/share/doc/$2"
    cat >"$1/usr/share/doc/$2/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: metis
Files: *
Copyright: The metis developers
License: GPL-2.0-only
 The kernel module is GPL-2.0; on Debian systems the full text of the GNU
 General Public License version 2 is in /usr/share/common-licenses/GPL-2.
EOF
}

# metis-dkms
d=$stage/metis-dkms
src=$d/usr/src/metis-$V
mkdir -p "$src/drivers/metis" "$src/include/metis" "$d/usr/lib/udev/rules.d" "$d/DEBIAN" \
    "$d/usr/share/metis/dts-overlays"
cp "$REPO/Kbuild" "$src/"
cp "$REPO"/drivers/metis/*.rs "$REPO"/drivers/metis/*.c "$src/drivers/metis/"
cp "$REPO"/include/metis/*.h "$src/include/metis/"
cp "$REPO/packaging/dkms/dkms-make.sh" "$REPO/packaging/dkms/rust-tree.sh" "$src/"
mkdir -p "$d/etc/kernel/postrm.d"
cat >"$d/etc/kernel/postrm.d/metis-dkms" <<'HOOK'
#!/bin/sh
# A removed kernel's Rust metadata, rebuilt for it by metis-dkms, goes with it.
[ -n "$1" ] || exit 0
rm -rf "/var/lib/metis-dkms/trees/$1" "/var/lib/metis-dkms/trees/.$1.lock"
exit 0
HOOK
chmod 0755 "$d/etc/kernel/postrm.d/metis-dkms"
sed "s/@VERSION@/$V/" "$REPO/packaging/dkms/dkms.conf.in" >"$src/dkms.conf"
cp "$REPO/udev/60-metis.rules" "$REPO/udev/61-metis-vendor.rules" "$d/usr/lib/udev/rules.d/"
cp "$REPO"/dts-overlays/*.dtso "$d/usr/share/metis/dts-overlays/"
docs "$d" metis-dkms
cp "$REPO/docs/install.md" "$d/usr/share/doc/metis-dkms/README.md"
cat >"$d/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
# Registers the source with DKMS and builds it for the running and the newest
# kernel that have a build tree (what dh_dkms installs).
case "\$1" in
    configure) /usr/lib/dkms/common.postinst metis $V "" "" "\$2" ;;
esac
if [ -d /run/udev ] && command -v udevadm >/dev/null; then
    udevadm control --reload-rules || true
fi
getent group metis >/dev/null || addgroup --system metis >/dev/null 2>&1 || groupadd --system metis
# The vendor runtime's group, for the opt-in vendor-ABI nodes (61-metis-vendor.rules).
getent group axelera >/dev/null || addgroup --system axelera >/dev/null 2>&1 || groupadd --system axelera
exit 0
EOF
cat >"$d/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
case "\$1" in
    remove|upgrade|deconfigure)
        if dkms status -m metis -v $V 2>/dev/null | grep -q .; then
            dkms remove -m metis -v $V --all
        fi ;;
esac
exit 0
EOF
cat >"$d/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
# The Rust metadata rebuilt for Debian kernels (rust-tree.sh).
case "$1" in
    remove|purge) rm -rf /var/lib/metis-dkms ;;
esac
exit 0
POSTRM
echo /etc/kernel/postrm.d/metis-dkms >"$d/DEBIAN/conffiles"
chmod 0755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm" "$d/DEBIAN/postrm"
control "$d" metis-dkms all \
    "dkms (>= 3.0.3), make, rustc, rust-src, bindgen, libclang-dev, gcc, flex, bison, bc, libelf-dev, libssl-dev, pahole, xz-utils" \
    "Axelera Metis AI accelerator driver (DKMS source)" \
    "The metis kernel module for Axelera Metis M.2 and PCIe cards, as source" \
    "that DKMS builds for each installed kernel with Rust support" \
    "(CONFIG_RUST), now and whenever a kernel is installed. The module must be" \
    "built with the rustc that built the kernel. Debian's header packages lack" \
    "the kernel's Rust metadata: it is rebuilt once per kernel from the" \
    "linux-source package of the same version (install it too). A kernel it" \
    "can't be built for is skipped with a one-line reason. Also installs the" \
    "udev rule for /dev/metisN (group metis) and device-tree overlays for" \
    "RK3588 boards."

# metis-dev
d=$stage/metis-dev
mkdir -p "$d/usr/include/linux"
cp "$REPO/uapi/linux/metis.h" "$d/usr/include/linux/"
docs "$d" metis-dev
control "$d" metis-dev all "" \
    "Axelera Metis AI accelerator driver (ioctl ABI header)" \
    "The C header of the metis driver's versioned ioctl interface for" \
    "programs that drive /dev/metisN directly."

# metisctl, one per architecture
for a in x86_64:amd64 arm64:arm64; do
    d=$stage/metisctl-${a#*:}
    mkdir -p "$d/usr/bin"
    install -m 0755 "$stage/bin-${a%%:*}/metisctl" "$d/usr/bin/metisctl"
    docs "$d" metisctl
    control "$d" metisctl "${a#*:}" "" \
        "Axelera Metis AI accelerator command-line tool" \
        "metisctl shows a card's information, loads its firmware, runs DMA" \
        "benchmarks, sends firmware commands and resets the card."
done

bash "$REPO/tests/harness/toolroot.sh" bash -c "
set -e
for o in /src/metis/dts-overlays/*.dtso; do
    dtc -q -@ -I dts -O dtb -o $stage/metis-dkms/usr/share/metis/dts-overlays/\$(basename \$o .dtso).dtbo \$o
done
for p in metis-dkms metis-dev metisctl-amd64 metisctl-arm64; do
    dpkg-deb --root-owner-group -Zxz --build $stage/\$p $OUT/ >/dev/null
done
"
ls -1 "$OUT"/*"_$DEBV"_*.deb
