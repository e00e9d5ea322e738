#!/bin/sh
# configs: all
# METIS_IOCTL_RESET (tests/guest/metis_test.c, reset mode): the card is reset
# and its firmware rebooted without reloading the module; regions become
# lost once (ESTALE); a job on the card when the reset comes fails with EIO;
# a uevent and a log line tell userspace. Without CAP_SYS_ADMIN a caller may
# reset only a card it has to itself (reset-perm). No card faults.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
boots0=$(card_stat 0 BOOT)
check insmod insmod /lib/metis/metis.ko
dmesg -c >/dev/null
metis_test /dev/metis0 reset
check reset_logged dmesg_has "card reset done in"
metis_test /dev/metis0 reset-perm
# Probe, four resets and the two of reset-perm each boot the firmware once.
check_eq card_saw_seven_boots $(( ${boots0:-0} + 7 )) "$(card_stat 0 BOOT)"
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
