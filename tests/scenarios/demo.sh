#!/bin/sh
# configs: none
# cards: 
# The README's demo: load the module, show what it found on the emulated card,
# and use it from userspace.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
echo "== emulated card at $bdf: vendor $(cat /sys/bus/pci/devices/$bdf/vendor) device $(cat /sys/bus/pci/devices/$bdf/device) class $(cat /sys/bus/pci/devices/$bdf/class)"
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
echo "== driver log:"; dmesg | grep "metis 0000"
echo "== metisctl info:"; metisctl info
echo "== a firmware command on data moved by DMA:"
check checksum metisctl cmd checksum --len 1M
echo "== card counters:"; host card 0 stats | cut -c1-400
check rmmod rmmod metis
