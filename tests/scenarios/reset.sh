#!/bin/sh
# configs: all
# METIS_IOCTL_RESET (tests/guest/metis_test.c, reset mode): the card is reset
# and its firmware rebooted without reloading the module; regions become
# lost once (ESTALE); a job on the card when the reset comes fails with EIO;
# a uevent and a log line tell userspace. No card faults.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
boots0=$(card_stat 0 BOOT)
check insmod insmod /lib/metis/metis.ko
dmesg -c >/dev/null
metis_test /dev/metis0 reset
check reset_logged dmesg_has "card reset done in"
# Probe and four resets each boot the firmware once.
check_eq card_saw_five_boots $(( ${boots0:-0} + 5 )) "$(card_stat 0 BOOT)"
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
