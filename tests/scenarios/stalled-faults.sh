#!/bin/sh
# configs: arm64-none arm64-translated
# Page faults that never end (security review M4, L5; tests/guest/stall_test.c):
# userfaultfd holds a fault, as a FUSE daemon that never answers would, in the
# pin of a DMA buffer and in the copies of MEM_ALLOC's and WAIT's answers to
# user memory. Meanwhile a reset and an unbind complete, and the file's other
# jobs complete, show in poll() and are reaped. Let go, each held call ends.
# arm64 only: its test kernel has CONFIG_USERFAULTFD (kunit/config/arm64.config);
# the code paths are the same on x86. No card faults, no splat.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
bdf=$(metis_bdfs | head -1)
check insmod insmod /lib/metis/metis.ko
stall_test /dev/metis0
check_eq bound_again metis "$(bound_driver $bdf)"
check dma_after_stalls metisctl dma bench --sizes 1M --iters 1
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
