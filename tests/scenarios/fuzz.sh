#!/bin/sh
# configs: x86-translated arm64-translated
# The ioctl fuzzer (tests/guest/metis_fuzz.c; security review, campaign):
# seeded random ioctls from four unprivileged processes in the card's group,
# first alone, then while root resets the card and unbinds and binds it under
# them. Every result must be an allowed errno, no call that breaks the ABI's
# rules may succeed, no foreign handle may work, no worker may die or hang,
# no device memory may leak; afterwards the card passes the data suite, and
# the boot's kmemleak scan (x86 debug kernel) finds nothing.
# Then the vendor-ABI node's fuzzer the same way (alone, then under churn).
# METIS_FUZZ_SEED overrides the seed (printed in the notes) to reproduce a run.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
seed=${METIS_FUZZ_SEED:-20261202}
# 100 000 on the arm64 release kernel (fast); on the x86_64 debug kernel (KASAN,
# kmemleak, lockdep: slower, and on CI's critical path) 15 000, or 100 000 with
# METIS_SOAK=1.
case $METIS_CONFIG in
arm64-*) count=100000 ;;
*) [ "$METIS_SOAK" = 1 ] && count=100000 || count=15000 ;;
esac
count=${METIS_FUZZ_COUNT:-$count}
grant() {  # what the packaged udev rule does: group metis (here gid 1000), 0660
    for i in $(seq 50); do [ -e /dev/metis0 ] && break; sleep 0.1; done
    chgrp 1000 /dev/metis0 && chmod 0660 /dev/metis0
}
check insmod insmod /lib/metis/metis.ko
grant
echo "@@NOTE fuzz: seed $seed, $count ioctls alone, $((count / 2)) under resets and rebinds"

metis_fuzz /dev/metis0 "$seed" "$count" 4 --uid 65534 --gid 1000 | sed 's/^@@TAP \([a-z ]*\) fuzz_/@@TAP \1 alone_fuzz_/'

# churn DONE GRANT: three rounds of a reset, an unbind and a bind under the workers
# (GRANT gives the node back to their group), then DONE exists.
churn() {
    rm -f "$1"
    for i in 1 2 3; do
        sleep 2
        metisctl reset >/dev/null 2>&1
        sleep 2
        echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
        sleep 0.3
        echo "$bdf" >/sys/bus/pci/drivers/metis/bind
        $2
    done
    touch "$1"
}
churn /tmp/churn-done grant &
churner=$!
metis_fuzz /dev/metis0 $((seed + 1)) $((count / 2)) 4 --uid 65534 --gid 1000 --rebind /tmp/churn-done |
    sed 's/^@@TAP \([a-z ]*\) fuzz_/@@TAP \1 churn_fuzz_/'
wait $churner
check_eq still_bound metis "$(bound_driver "$bdf")"

# The card still does its job: the whole data suite, as root.
metis_test /dev/metis0 | sed 's/^@@TAP \([a-z ]*\) /@@TAP \1 after_fuzz_/'
check rmmod rmmod metis

# The vendor-ABI node (docs/vendor-abi.md) through its own fuzzer
# (tests/guest/vendor_test.c: every vendor number, random sizes, bytes and
# pointers, transfers that run, files closed and reopened), unprivileged in the
# node's group as its udev rule makes it, alone and then while root resets the
# card and unbinds and binds it under the workers.
vnode=/dev/metis-$(echo "$bdf" | awk -F'[:.]' '{ printf "%x-%x-%x", "0x" $1, "0x" $2, "0x" $3 }')
vgrant() {
    for i in $(seq 50); do [ -e "$vnode" ] && break; sleep 0.1; done
    chgrp 1000 "$vnode" && chmod 0660 "$vnode"
}
vcount=$((count / 5))
check insmod_vendor insmod /lib/metis/metis.ko vendor_abi=1.6.2
vgrant
run_as 65534 1000 vendor_test "$vnode" fuzz "$seed" "$vcount" 1.6.2 |
    sed 's/^@@TAP \([a-z ]*\) vendor_/@@TAP \1 alone_vendor_/'
churn /tmp/vchurn-done vgrant &
churner=$!
run_as 65534 1000 vendor_test "$vnode" fuzz $((seed + 2)) $((vcount / 2)) 1.6.2 --churn /tmp/vchurn-done |
    sed 's/^@@TAP \([a-z ]*\) vendor_/@@TAP \1 churn_vendor_/'
wait $churner
check_eq still_bound_vendor metis "$(bound_driver "$bdf")"
check rmmod_vendor rmmod metis
