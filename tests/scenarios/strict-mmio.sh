#!/bin/sh
# configs: all
# The emulated card must catch what real hardware faults on: a 64-bit read of
# a 64-bit eDMA register pair (R1.3) and a 16-bit read of a BAR0 register.
# Each must show up as exactly one fault event on the card.
. /lib/metis/lib.sh
expect_faults 0 2

bdf=$(metis_bdfs | head -1)
before=$(card_stat 0 faults_total)

mmio_probe "$bdf" 2 0x60 8 >/dev/null
check_eq edma_64bit_read_faults $((before + 1)) "$(card_stat 0 faults_total)"

mmio_probe "$bdf" 0 0x14 2 >/dev/null
check_eq bar0_16bit_read_faults $((before + 2)) "$(card_stat 0 faults_total)"

# A correct access right after is not a fault.
check_eq aligned_32bit_read_ok 0xfd1f "$(mmio_probe "$bdf" 0 0x0 4)"
check_eq no_fault_for_aligned_access $((before + 2)) "$(card_stat 0 faults_total)"
