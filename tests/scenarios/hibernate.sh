#!/bin/sh
# configs: all
# Hibernation (issue 4), without a swap device, so the machine keeps
# running and every device goes through the hibernation callbacks:
# - image: freeze, the memory snapshot, thaw; writing the image then fails
#   for want of swap. The card kept power: after thaw the firmware still runs
#   and device memory is kept.
# - pm_test=devices and pm_test=core: freeze, then restore as after booting
#   from an image. The driver cannot know what ran on the card between the
#   snapshot and the restore, so it resets the card, boots the cached
#   firmware and reports device memory lost (ESTALE).
# DMA is data-checked around every cycle; a job hung on the card at freeze
# fails with ESHUTDOWN and succeeds when retried after thaw. Resume-to-ready
# times are printed. No card faults.
# On arm64-translated the guest's virtio-iommu is restored by the test
# kernel's patch kunit/patches/arm64/0001 (docs/testing.md).
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
dmesg -c >/dev/null
sleep 1

metis_test /dev/metis0 sleep 3 kept ". /lib/metis/lib.sh; hibernate_cycle image"
check thaw_keeps_firmware dmesg_has "firmware kept running"
metis_test /dev/metis0 sleep 2 lost ". /lib/metis/lib.sh; hibernate_cycle devices"
metis_test /dev/metis0 sleep 2 lost ". /lib/metis/lib.sh; hibernate_cycle core"
check restore_reloads_firmware dmesg_has "firmware reloaded"
metis_test /dev/metis0 sleep-inflight ". /lib/metis/lib.sh; hibernate_cycle image"
times=$(dmesg | grep -o "resumed in [0-9]* ms" | grep -o "[0-9]*" | tr '\n' ' ')
echo "@@NOTE hibernation thaw/restore-to-ready (ms), in cycle order (3 thaw, 4 restore, 1 thaw): $times"
check rmmod rmmod metis
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
