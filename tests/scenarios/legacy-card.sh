#!/bin/sh
# configs: x86-none arm64-none
# cards: --if-layout 1.4 --no-vsec
# A card whose firmware writes the 1.4.x interface structure (padding where
# 1.6.2 has the 0xFD1F header and the dma_vm flag) and which has no Synopsys
# DMA capability: the driver works from the card's known layout, says what it
# found, and moves data (checked) and runs commands as on any other card.
# Only on the no-IOMMU configurations: what differs here is the card's layout,
# and the IOMMU paths are the same as on every other card (CI time).
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
dmesg -c >/dev/null
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
check layout_named dmesg_has "1.4.x interface structure"
check no_vsec_reported dmesg_has "no usable Synopsys DMA capability; using the card's known layout"
check dma_verified metisctl dma bench --sizes 4K..1M --iters 1
check checksum metisctl cmd checksum --len 1M
check run_xor metisctl cmd run --op xor --len 256K
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
