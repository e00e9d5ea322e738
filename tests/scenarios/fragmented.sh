#!/bin/sh
# configs: arm64-none
# cards: --identity metis --mem-size 2G
# mem: 2048
# Security review M8 (tests/guest/metis_test.c, fragmented): a 1 GiB DMA from
# a buffer whose pages are never neighbours in memory: without an IOMMU the
# card sees 262 145 elements (257 list windows), a 4 MiB segment list that
# kmalloc can't give. Both ways, data checked, no splat. The buffer maps a
# memfd page by page, one VMA per page: the map count limit is raised first.
# Before it, the per-file region cap (metis_test.c, regions: EDQUOT past
# METIS_MEM_MAX_REGIONS) and, with METIS_SOAK=1, M8's other trigger: 17 files
# of 4 096 regions, more than 65 536 in the card's table (about 3 minutes).
# arm64-none only: on the x86_64 debug kernel the boot takes 16 minutes and
# the 2 GiB guest runs out of memory at the end (KASAN's shadow, DMA-API
# debugging's entries), which is no finding about the driver.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
echo 400000 >/proc/sys/vm/max_map_count
check insmod insmod /lib/metis/metis.ko
files=1
[ "$METIS_SOAK" = 1 ] && files=17
metis_test /dev/metis0 regions $files
metis_test /dev/metis0 fragmented
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
