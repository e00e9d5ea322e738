#!/bin/sh
# configs: none
# cards: 
# The README's demo: load the module, show what it found on the emulated card.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
echo "== emulated card at $bdf: vendor $(cat /sys/bus/pci/devices/$bdf/vendor) device $(cat /sys/bus/pci/devices/$bdf/device) class $(cat /sys/bus/pci/devices/$bdf/class)"
echo "== resources:"; cat /sys/bus/pci/devices/$bdf/resource | head -3
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
echo "== kernel log:"; dmesg | grep -E "metis|kunit|# Subtest|ok [0-9]" | tail -40
echo "== card counters:"; host card 0 stats
check rmmod rmmod metis
