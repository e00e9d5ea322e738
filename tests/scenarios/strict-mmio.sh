#!/bin/sh
# configs: all
# The emulated card must catch what real hardware faults on: a 64-bit read of
# a 64-bit eDMA register pair (R1.3: the vendor's runtime read rd_done_imwr,
# BAR0 0xcc, that way) and a 16-bit read of an eDMA register. Each must show
# up as exactly one fault event on the card. (A 64-bit access that is not
# 8-byte aligned, R1.3's exact shape, faults in the CPU on arm64 and is split
# by QEMU before it reaches the card, so it is not checked here.)
. /lib/metis/lib.sh
expect_faults 0 2

bdf=$(metis_bdfs | head -1)
before=$(card_stat 0 faults_total)

mmio_probe "$bdf" 0 0x60 8 >/dev/null
check_eq edma_64bit_read_faults $((before + 1)) "$(card_stat 0 faults_total)"

mmio_probe "$bdf" 0 0x0c 2 >/dev/null
check_eq edma_16bit_read_faults $((before + 2)) "$(card_stat 0 faults_total)"

# Correct accesses right after are not faults: the interface structure's
# header at BAR2 0 (1.6.2 layout), and an aligned 64-bit read of L2, which is
# memory, not registers.
check_eq aligned_32bit_read_ok 0xfd1f "$(mmio_probe "$bdf" 2 0x0 4)"
mmio_probe "$bdf" 2 0x208 8 >/dev/null
check_eq no_fault_for_aligned_access $((before + 2)) "$(card_stat 0 faults_total)"
