#!/bin/sh
# configs: all
# The emulated card must catch what real hardware faults on: a 64-bit read of
# the eDMA's rd_done_imwr pair at BAR0 0xcc (R1.3), a 16-bit read of an eDMA
# register, and a 64-bit read of L2 at BAR2 0xcc that is not 8-byte aligned
# (the other reading of R1.3: the vendor maps BAR2 at page offset 0).
# Each must show up as exactly one fault event on the card.
. /lib/metis/lib.sh
expect_faults 0 3

bdf=$(metis_bdfs | head -1)
before=$(card_stat 0 faults_total)

mmio_probe "$bdf" 0 0xcc 8 >/dev/null
check_eq edma_64bit_read_faults $((before + 1)) "$(card_stat 0 faults_total)"

mmio_probe "$bdf" 0 0x0c 2 >/dev/null
check_eq edma_16bit_read_faults $((before + 2)) "$(card_stat 0 faults_total)"

mmio_probe "$bdf" 2 0xcc 8 >/dev/null
check_eq l2_misaligned_64bit_read_faults $((before + 3)) "$(card_stat 0 faults_total)"

# Correct accesses right after are not faults: the interface structure's
# header at BAR2 0 (1.6.2 layout), and an aligned 64-bit read of L2 memory.
check_eq aligned_32bit_read_ok 0xfd1f "$(mmio_probe "$bdf" 2 0x0 4)"
mmio_probe "$bdf" 2 0x208 8 >/dev/null
check_eq no_fault_for_aligned_access $((before + 3)) "$(card_stat 0 faults_total)"
