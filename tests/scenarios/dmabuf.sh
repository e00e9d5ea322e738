#!/bin/sh
# configs: all
# cards: --identity metis
# Zero-copy buffers (tests/guest/dmabuf_test.c): buffers the driver exports
# as dma-bufs (validation, O_CLOEXEC and access-mode fds, mmap with CPU-access
# syncs, the card reading and writing them, async; an answer that can't be
# written leaves no fd behind) and the access the fd allows (a read-only fd
# is never written by the card); implicit sync (the card waits for a sw_sync
# fence of another user, publishes its own, which sync_file readers and
# DMA_BUF_IOCTL_SYNC wait for); and dma-bufs from another
# exporter (/dev/dma_heap/system) DMA'd both ways, every byte checked; 10 000
# export/close cycles (kmemleak runs at the end of the boot); a buffer
# outlives the card's unbind and keeps the module loaded. vivid, a V4L2
# driver, imports an exported buffer with V4L2_MEMORY_DMABUF and captures a
# frame into it, which the card then reads. Buffers held across a system
# sleep still work for the card. No card faults. Boots alone: the real S3
# on x86 should not shape the scenarios that follow it.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
dmabuf_test /dev/metis0
dmabuf_test /dev/metis0 cycles 10000
dmabuf_test /dev/metis0 cache
# The card keeps a dma-buf attached and mapped across jobs: 45 jobs on the same
# buffers cost the card's IOMMU view about as many map messages as 5 (each run
# maps its two buffers once; virtio-iommu sends one per contiguous run of pages,
# which differs between the runs' buffers: allowed twice as many, where mapping
# per job would take nine times as many; none at all without a translating IOMMU).
bench() {
    metisctl dma bench --buffer dmabuf --sizes 64K --dir both --iters "$1" --warmup 0 \
        --no-verify >/dev/null 2>&1
}
m0=$(card_stat 0 dma_maps); bench 5
m1=$(card_stat 0 dma_maps); bench 45
m2=$(card_stat 0 dma_maps)
check dmabuf_maps_once_per_buffer test "$((m2 - m1))" -le "$((2 * (m1 - m0)))"
echo "@@NOTE dmabuf maps: $((m1 - m0)) map messages for 5 jobs each way, $((m2 - m1)) for 45"

# A real importer nobody here wrote: vivid captures a frame into our buffer.
check load_vivid load_module vivid
video=""
for d in /sys/class/video4linux/video*; do
    if [ "$(cat $d/name 2>/dev/null | cut -c1-5)" = "vivid" ] && [ -z "$video" ]; then
        video=/dev/$(basename $d)
    fi
done
check vivid_capture_node test -c "$video"
dmabuf_test /dev/metis0 vivid "$video"
rmmod vivid

# Zero-copy throughput next to the pinned user-buffer path, data checked at each size.
if metisctl dma bench --dmabuf --sizes 64K..16M --iters 3 >/tmp/bench-dmabuf.txt 2>&1; then
    tap_ok metisctl_bench_dmabuf
else
    tap_fail metisctl_bench_dmabuf "$(tail -3 /tmp/bench-dmabuf.txt | tr '\n' ' ')"
fi
sed 's/^/@@NOTE bench-dmabuf: /' /tmp/bench-dmabuf.txt

dmabuf_test /dev/metis0 hold "echo $bdf >/sys/bus/pci/drivers/metis/unbind"
check_eq held_across_unbind none "$(bound_driver $bdf)"
echo "$bdf" >/sys/bus/pci/drivers/metis/bind
check_eq rebound metis "$(bound_driver $bdf)"

# Buffers held across a system sleep (real S3 on x86, pm_test elsewhere).
case $METIS_CONFIG in
    x86-*) dmabuf_test /dev/metis0 sleep ". /lib/metis/lib.sh; s3_cycle" ;;
    *) dmabuf_test /dev/metis0 sleep ". /lib/metis/lib.sh; pm_test_cycle" ;;
esac

dmabuf_test /dev/metis0 hold "! rmmod metis 2>/dev/null"
check rmmod_after_last_buffer rmmod metis
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
