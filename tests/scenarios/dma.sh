#!/bin/sh
# configs: all
# The /dev/metisN ABI end to end (tests/guest/metis_test.c): argument
# validation, region ownership, data-checked DMA from 1 byte to 64 MiB with
# unaligned buffers, concurrent jobs, firmware commands. No card faults.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
check_eq node_mode "crw-rw----" "$(ls -l /dev/metis0 | cut -c1-10)"
check_eq node_parent "$bdf" "$(basename "$(readlink /sys/class/misc/metis0/device)")"
metis_test /dev/metis0
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
