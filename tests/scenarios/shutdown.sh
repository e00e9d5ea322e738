#!/bin/sh
# configs: x86-none x86-translated arm64-none arm64-translated
# cards: --identity metis
# shutdown (reboot, kexec, power-off; issue 4): the guest powers off with
# the module loaded and DMA running. The driver's shutdown callback must
# leave the card stopped: engine disabled, no channel running, firmware
# interrupts masked. The runner checks the card's state at the moment QEMU
# lets go of it (tests/harness/run.py, poweroff_checks). Boots alone, since
# it has to be the last thing the guest does.
. /lib/metis/lib.sh
check insmod insmod /lib/metis/metis.ko
metis_test /dev/metis0 stress 600 >/tmp/stress.out 2>&1 &
sleep 2
n0=$(card_stat 0 transfers_done)
sleep 1
check dma_running_before_poweroff test "$(card_stat 0 transfers_done)" -gt "${n0:-0}"
echo "@@EXPECT-QUIESCED-AT-POWEROFF 0"
