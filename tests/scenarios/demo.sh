#!/bin/sh
# configs: none
# cards: 
# The README's demo: load the module, show what it found on the emulated card,
# and use it from userspace. Lines marked @@SAY are the story `make demo` tells;
# the rest of the console is the full log.
. /lib/metis/lib.sh
say() { echo "@@SAY $*"; }
indent() { sed 's/^/@@SAY     /'; }
bdf=$(metis_bdfs | head -1)
say "The emulated Metis card sits at PCI $bdf" \
    "(vendor $(cat /sys/bus/pci/devices/$bdf/vendor), device $(cat /sys/bus/pci/devices/$bdf/device))."
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
say "insmod metis.ko: the driver probed it and logged:"
dmesg | grep "metis $bdf" | sed 's/^\[[^]]*\] *//; s/^metis [^ ]* //' | indent
say "metisctl info:"
metisctl info | indent
say "DMA to the card and back (1 MiB and 16 MiB, data checked; TCG speeds, not hardware's):"
check dma_bench sh -c 'metisctl dma bench --sizes 1M,16M --iters 3 >/tmp/bench.out 2>&1'
indent </tmp/bench.out
say "A firmware command on data moved there by DMA: the card's CRC32 of 1 MiB against the host's:"
check checksum sh -c 'metisctl cmd checksum --len 1M >/tmp/crc.out 2>&1'
indent </tmp/crc.out
stats=$(host card 0 stats)
say "What the emulated card counted: $(echo "$stats" | json_num host_to_device) bytes in," \
    "$(echo "$stats" | json_num device_to_host) bytes out, $(echo "$stats" | json_num faults_total) faults."
check rmmod rmmod metis
say "rmmod metis: unloaded cleanly."
