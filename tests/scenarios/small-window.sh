#!/bin/sh
# configs: x86-none x86-translated arm64-none arm64-translated
# cards: --bar2-size 16M
# R1.1: when BAR2 is smaller than the card needs (an RK3588 root-port window
# of 14 MiB truncates it), probe fails with one line that says what it found,
# what it needs and what to change, instead of a bare -ENOMEM.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
insmod /lib/metis/metis.ko
check_eq small_bar_not_bound none "$(bound_driver $bdf)"
check small_bar_explained dmesg_has "BAR2 is 16384 KiB at"
check small_bar_needs dmesg_has "but the card needs 32768 KiB"
check small_bar_hint dmesg_has "pcie@fe150000"
check small_bar_names_overlay dmesg_has "rk3588-metis-pcie3x4-window device-tree overlay"
# metisctl doctor finds the same, from sysfs alone, and exits 1.
check_eq doctor_fails 1 "$(metisctl doctor >/tmp/doctor.txt 2>&1; echo $?)"
check doctor_small_bar grep -q "^FAIL  $bdf: BAR2 is 16 MiB at 0x[0-9a-f]*, the card needs 32 MiB: .*rk3588-metis-pcie3x4-window" /tmp/doctor.txt
check doctor_unbound grep -q "^FAIL  $bdf: no driver is bound to the card: see the BAR finding above" /tmp/doctor.txt
check rmmod rmmod metis
check_eq no_card_faults 0 "$(card_stat 0 faults_total)"
