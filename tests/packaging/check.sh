#!/usr/bin/env bash
# Builds the Debian packages (packaging/deb/build.sh) and installs them in a
# throwaway copy of the toolchain root, where the cached test kernels stand in
# for installed kernels:
#   * installing metis-dkms registers the source; installing a kernel (the
#     kernel package's DKMS hook) builds and installs metis.ko for it, for the
#     x86_64 kernel and, cross-built, for the arm64 one (a kernel upgrade);
#   * the built modules bind 1f9d:1100 and match their kernel's vermagic;
#   * a kernel without Rust support is skipped without failing its install;
#   * the build step names what is missing (Rust metadata, the kernel's rustc);
#   * metis-dev's header compiles, metisctl runs;
#   * removing metis-dkms removes the module from every kernel.
#
#   tests/packaging/check.sh X86_64-KERNEL-TREE ARM64-KERNEL-TREE
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KX=$1 KA=$2
CACHE=${METIS_CACHE:-$HOME/.cache/metis}
OUT=$CACHE/deb
rm -rf "$OUT"
bash "$REPO/packaging/deb/build.sh" "$OUT" >/dev/null

METIS_TOOLROOT_SCRATCH=1 bash "$REPO/tests/harness/toolroot.sh" bash -s "$OUT" "$KX" "$KA" <<'EOF'
set -euo pipefail
out=$1 kx=$2 ka=$3
fail() { echo "packaging: FAIL: $*"; exit 1; }
ok() { echo "packaging: ok: $*"; }
kver_of() { sed -n 's/^#define UTS_RELEASE "\(.*\)"/\1/p' "$1/include/generated/utsrelease.h"; }

dpkg -i "$out"/metis-dkms_*_all.deb "$out"/metis-dev_*_all.deb "$out"/metisctl_*_amd64.deb \
    >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
ver=$(dpkg-query -W -f '${Version}' metis-dkms); ver=${ver%-*}
dkms status -m metis | grep -q "metis/$ver: added" || fail "metis/$ver not registered with DKMS"
ok "installed, metis/$ver registered with DKMS"
getent group metis >/dev/null || fail "group metis missing"
getent group axelera >/dev/null || fail "group axelera missing"
[ -f /usr/lib/udev/rules.d/60-metis.rules ] || fail "udev rule missing"
[ -f /usr/lib/udev/rules.d/61-metis-vendor.rules ] || fail "vendor udev rule missing"
[ -f /usr/share/metis/dts-overlays/rk3588-metis-pcie3x4-window.dtbo ] || fail "overlay missing"

# A kernel package runs /etc/kernel/postinst.d/dkms KVER once /lib/modules/KVER/build exists.
install_kernel() {  # NAME TREE
    mkdir -p "/lib/modules/$1"
    ln -sfn "$2" "/lib/modules/$1/build"
    /etc/kernel/postinst.d/dkms "$1" >/tmp/hook-$1.log 2>&1 || { cat /tmp/hook-$1.log; fail "kernel hook for $1"; }
}
check_module() {  # NAME TREE ELF-MACHINE
    m=/lib/modules/$1/updates/dkms/metis.ko
    [ -f "$m" ] || { cat /tmp/hook-$1.log; tail -30 /var/lib/dkms/metis/$ver/build/make.log 2>/dev/null; fail "no $m"; }
    modinfo -F alias "$m" | grep -qi "pci:v00001F9Dd00001100" || fail "$m does not bind 1f9d:1100"
    [ "$(modinfo -F vermagic "$m" | cut -d' ' -f1)" = "$(kver_of "$2")" ] || fail "$m vermagic differs from its kernel"
    file -L "$m" | grep -q "$3" || fail "$m is not a $3 module: $(file -L "$m")"
    dkms status -m metis -k "$1" | grep -q "installed" || fail "dkms does not list $1 as installed"
    ok "kernel $1: metis.ko built and installed ($3)"
}
install_kernel 7.3.4-metis-x86 "$kx"
check_module 7.3.4-metis-x86 "$kx" x86-64
install_kernel 7.3.4-metis-arm64 "$ka"
check_module 7.3.4-metis-arm64 "$ka" aarch64

# A kernel without Rust support: skipped with a notice, its install goes on.
mkdir -p /tmp/norust/include
printf 'CONFIG_PCI=y\nCONFIG_PCI_MSI=y\nCONFIG_X86_64=y\n' >/tmp/norust/.config
install_kernel 7.3.4-norust /tmp/norust
[ ! -e /lib/modules/7.3.4-norust/updates/dkms/metis.ko ] || fail "built for a kernel without Rust"
grep -qi "BUILD_EXCLUSIVE" /tmp/hook-7.3.4-norust.log || { cat /tmp/hook-7.3.4-norust.log; fail "no notice for the kernel without Rust"; }
grep -q "metis: kernel 7.3.4-norust: built without Rust support" /tmp/hook-7.3.4-norust.log ||
    { cat /tmp/hook-7.3.4-norust.log; fail "the notice does not say why"; }
ok "kernel without CONFIG_RUST skipped with a notice"

# The build step's own checks, each with the reason in its message.
src=/usr/src/metis-$ver
mkdir -p /tmp/fake/rust
sed 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.0.0 (old)"/' "$kx/.config" >/tmp/fake/.config
(cd "$src" && bash dkms-make.sh fake /tmp/fake) >/tmp/nometa.log 2>&1 && fail "built without Rust metadata"
grep -q "no Rust metadata" /tmp/nometa.log || { cat /tmp/nometa.log; fail "missing metadata not named"; }
touch /tmp/fake/rust/libkernel.rmeta
(cd "$src" && bash dkms-make.sh fake /tmp/fake) >/tmp/rustc.log 2>&1 && fail "built with another rustc"
grep -q 'built with "rustc 1.0.0 (old)" but rustc here is' /tmp/rustc.log || { cat /tmp/rustc.log; fail "rustc mismatch not named"; }
ok "missing Rust metadata and a rustc mismatch are named"

printf '#include <linux/metis.h>\nint main(void) { return sizeof(struct metis_info) == 0; }\n' >/tmp/h.c
gcc -Wall -Werror -o /tmp/h /tmp/h.c && /tmp/h || fail "metis-dev header"
metisctl --help >/dev/null || fail "metisctl --help"
if metisctl --device /dev/metis0 info >/tmp/ctl.log 2>&1; then fail "metisctl info without a card"; fi
grep -q "/dev/metis0" /tmp/ctl.log || { cat /tmp/ctl.log; fail "metisctl does not name the missing device"; }
ok "header compiles, metisctl runs and names a missing device"

dpkg -r metis-dkms >/tmp/rm.log 2>&1 || { cat /tmp/rm.log; fail "dpkg -r"; }
for k in 7.3.4-metis-x86 7.3.4-metis-arm64; do
    [ ! -e /lib/modules/$k/updates/dkms/metis.ko ] || fail "module left in $k after removal"
done
! dkms status -m metis | grep -q . || fail "dkms still lists metis"
ok "removal takes the module out of every kernel"
EOF
