#!/bin/sh
# configs: all
# The module binds to the card, reports what it found, and lets go of it
# cleanly on rmmod and on sysfs unbind, repeatedly.
. /lib/metis/lib.sh

bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
check_eq card_enumerated 0x120000 "$(cat /sys/bus/pci/devices/$bdf/class 2>/dev/null)"

check insmod insmod /lib/metis/metis.ko
check_eq bound_after_insmod metis "$(bound_driver $bdf)"
check probe_reported_card dmesg_has "Metis rev 0x02: eDMA wr 4 rd 4, 1024 MiB device memory"
check probe_reported_layout dmesg_has "1.6.2 interface structure"
check firmware_booted dmesg_has "firmware 1.2.3 (interface 1.0)"

for i in 1 2 3; do
    echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
    check_eq "unbound_$i" none "$(bound_driver $bdf)"
    echo "$bdf" >/sys/bus/pci/drivers/metis/bind
    check_eq "rebound_$i" metis "$(bound_driver $bdf)"
done

check rmmod rmmod metis
check_eq unbound_after_rmmod none "$(bound_driver $bdf)"
check card_released dmesg_has "card released"
check insmod_again insmod /lib/metis/metis.ko
check_eq bound_again metis "$(bound_driver $bdf)"
check rmmod_again rmmod metis
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
