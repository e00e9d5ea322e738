#!/bin/sh
# configs: all
# PCIe errors reported through AER (issue 4): the kernel's aer_inject fakes
# an error report from the root port above the card, and the kernel's AER
# recovery calls the driver's error handlers as for a real link error.
# A corrected error changes nothing. A non-fatal and a fatal error each stop
# the card (error_detected), the root port resets the link, and the driver
# brings the card back (slot_reset, resume): firmware booted again, device
# memory reported lost (ESTALE), DMA data-checked after each. A job on the
# card when a fatal error arrives fails with EIO and succeeds when retried.
# No card faults, and the module is never reloaded.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
dmesg -c >/dev/null
sleep 1
check aer_injector_present test -c /dev/aer_inject

metis_test /dev/metis0 sleep 3 kept ". /lib/metis/lib.sh; aer_cycle corrected"
check corrected_error_logged dmesg_has "severity=Correctable"
metis_test /dev/metis0 sleep 2 lost ". /lib/metis/lib.sh; aer_cycle nonfatal"
check nonfatal_stopped_card dmesg_has "PCIe error reported; stopping the card"
metis_test /dev/metis0 sleep 2 lost ". /lib/metis/lib.sh; aer_cycle fatal"
check fatal_logged dmesg_has "severity=Uncorrectable (Fatal)"
check card_back_logged dmesg_has "card back after an external reset"
metis_test /dev/metis0 sleep-inflight ". /lib/metis/lib.sh; aer_cycle fatal" eio
check_eq recoveries_all_successful 0 "$(dmesg | grep -c 'AER: device recovery failed')"
check cmd_after_errors metisctl cmd echo after-aer
check rmmod rmmod metis
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
