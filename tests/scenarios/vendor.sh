#!/bin/sh
# configs: all
# The vendor-ABI node (docs/vendor-abi.md; tests/guest/vendor_test.c): off by
# default; vendor_abi=1.4.16 and =1.6.2 name it as that vendor driver did, in
# class metis with its version, mode 0660; the commands offered so far behave
# as the vendor's ABI says except where the vendor's had holes (clean errors),
# physical addresses only for CAP_SYS_ADMIN, peer-to-peer DMA and user physical
# addresses refused; transfers with user memory and dma-heap buffers; the card
# unbound under an open node leaves ENODEV, and the node comes back on bind.
# Our /dev/metis0 works beside it. Then the vendor runtime's whole sequence on
# a runtime-owned card, across the card losing its firmware. No card faults
# but the two transfers past the card's memory made on purpose.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
bdf=$(metis_bdfs | head -1)
# metis-D:B:S and metis-D-B-S, from the PCI address (hex, no leading zeros).
name=$(echo "$bdf" | awk -F'[:.]' '{ printf "%x:%x:%x", "0x" $1, "0x" $2, "0x" $3 }')
colon=/dev/metis-$name
dash=/dev/metis-$(echo "$name" | tr : -)
# How the runtime's card loses its firmware under it: S3 (x86), and a card reset.
case $METIS_CONFIG in
    x86-*) s3=". /lib/metis/lib.sh; s3_cycle" ;;
    *) s3= ;;
esac

check insmod_default insmod /lib/metis/metis.ko
check_eq vendor_off_by_default "no no" \
    "$([ -e /sys/class/metis ] && echo yes || echo no) $([ -e "$colon" ] && echo yes || echo no)"
check rmmod_default rmmod metis

dmesg -c >/dev/null
check_eq bad_level_refused failed "$(insmod /lib/metis/metis.ko vendor_abi=2.0 2>/dev/null || echo failed)"
check bad_level_explained dmesg_has "vendor_abi=2.0 is not a level this driver presents"

for level in 1.4.16 1.6.2; do
    dmesg -c >/dev/null
    check "insmod_$level" insmod /lib/metis/metis.ko vendor_abi=$level
    check_eq "class_version_$level" "$level" "$(cat /sys/class/metis/version)"
    check_eq "colon_node_$level" "crw-rw----" "$(ls -l "$colon" | cut -c1-10)"
    if [ $level = 1.6.2 ]; then
        check_eq dash_node_1.6.2 "crw-rw----" "$(ls -l "$dash" | cut -c1-10)"
        node=$dash
    else
        check_eq no_dash_node_1.4.16 no "$([ -e "$dash" ] && echo yes || echo no)"
        node=$colon
    fi
    check "reach_logged_$level" dmesg_has "vendor ABI $level offered"
    check_eq "doctor_reach_$level" 1 \
        "$(metisctl doctor 2>/dev/null | grep -c "vendor-ABI node $level on (vendor_abi=), IOMMU")"
    # Our own node works beside it, and moves what the vendor's statistics count.
    check "own_node_$level" metisctl dma bench --sizes 1M --iters 1 --warmup 0
    vendor_test "$node" $level "$bdf"
    # Seeded random calls from three processes (the seed is the date of this test).
    vendor_test "$node" fuzz 20261202 3000 $level
    vendor_test "$node" unbind "$bdf" $level
    check "rmmod_$level" rmmod metis
    check_eq "class_gone_$level" no "$([ -e /sys/class/metis ] && echo yes || echo no)"

    # The vendor runtime on a card handed to it (fw_owner=2; a real card's bootloader
    # always makes it so): its firmware uploaded and booted through the node, its work,
    # then the card loses its firmware (S3 on x86, then a reset) under the open node and
    # mapping, poll says so, and the runtime does it all again each time.
    check "insmod_runtime_$level" insmod /lib/metis/metis.ko vendor_abi=$level fw_owner=2
    check "to_bootloader_$level" metisctl reset
    f0=$(card_stat 0 faults_total)
    rounds=2
    if [ -n "$s3" ]; then
        vendor_test "$node" runtime $level "$s3" "metisctl reset >/dev/null"
        rounds=3
    else
        vendor_test "$node" runtime $level "metisctl reset >/dev/null"
    fi
    # One transfer past the card's memory per round, on purpose: the card's fault.
    check_eq "runtime_faults_$level" $rounds "$(( $(card_stat 0 faults_total) - f0 ))"
    expect_faults 0 $rounds
    faults0=$((faults0 + rounds))
    check "rmmod_runtime_$level" rmmod metis
done
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
