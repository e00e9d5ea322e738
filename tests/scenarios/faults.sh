#!/bin/sh
# configs: x86-none x86-translated
# cards: 
# Fault injection (issue 13; the arm64 kernel is built without it): every
# ioctl and open of /dev/metis0 is repeated with its 1st, 2nd, ... injection
# point failing (/proc/thread-self/fail-nth, with failslab and fail_page_alloc
# taking sleeping allocations too) until a run gets past all of them. Every
# failed run must unwind cleanly, regions stay usable, the card moves data
# correctly afterwards, and the boot's kmemleak scan finds nothing of ours.
# Then the same for probe: bind after bind with the nth point failing, each
# failed probe unwound, until a bind gets past them all.
# It boots alone: a fault injected into DMA-API debugging's own bookkeeping
# (an atomic allocation inside a mapping) switches that debugging off for the
# rest of the boot, which is accepted here and only here.
. /lib/metis/lib.sh
echo "@@ALLOW DMA-API: (cacheline tracking ENOMEM|debugging out of memory)"
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
for f in failslab fail_page_alloc; do
    echo N >/sys/kernel/debug/$f/ignore-gfp-wait
done
for f in failslab fail_page_alloc fail_usercopy; do
    echo 0 >/sys/kernel/debug/$f/verbose
done
echo N >/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem
# Only points with the driver's code on the stack count: the test's own reads and
# writes of fail-nth copy to and from user memory too (fail_usercopy), and must not
# take the point meant for the ioctl.
text=$(cat /sys/module/metis/sections/.text)
size=$(cat /sys/module/metis/coresize)
require() {  # DEPTH
    for f in failslab fail_page_alloc fail_usercopy; do
        echo "$text" >/sys/kernel/debug/$f/require-start
        printf '0x%x\n' $((text + size)) >/sys/kernel/debug/$f/require-end
        echo "$1" >/sys/kernel/debug/$f/stacktrace-depth
    done
}
require 32
metis_test /dev/metis0 failnth
# Probe with its nth allocation failing, bind after bind (every point up to 60,
# then every 5th; every point with METIS_SOAK=1). Only allocations the driver's
# own code makes (its text within the top 8 frames of the stack) fail: probe
# also runs ACPI's interrupt routing and the IRQ core's /proc registration,
# whose out-of-memory paths have bugs of their own (a KASAN use-after-free in
# ACPICA, a remove_proc_entry warning) that are not this driver's to test.
require 8
[ "$METIS_SOAK" = 1 ] && stride=1 || stride=5
metis_test /dev/metis0 probe-nth "$(metis_bdfs | head -1)" 60 "$stride"
for f in failslab fail_page_alloc fail_usercopy; do
    echo 0 >/sys/kernel/debug/$f/require-start
    echo 0xffffffffffffffff >/sys/kernel/debug/$f/require-end
done
for f in failslab fail_page_alloc; do
    echo Y >/sys/kernel/debug/$f/ignore-gfp-wait
done
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
