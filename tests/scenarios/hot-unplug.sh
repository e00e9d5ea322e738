#!/bin/sh
# configs: x86-none x86-translated arm64-none arm64-translated
# cards: --mem-size 1G
# QEMU device_del while DMA runs: the PCIe hotplug path unbinds the driver
# under load (the vendor driver froze the machine on remove, R2.3). The
# in-flight job fails with ENODEV, nothing splats, and the module unloads.
# A second file stays open, idle, until after the device is gone: its close
# releases the driver's last reference to the card, which must not free DMA
# memory then (the device is unbound; on arm64 with a translating IOMMU that
# corrupted memory).
# On arm64 lockdep reports pciehp's reset_lock against the PCI core's
# rescan/remove lock during the unplug (a kernel report, nothing of metis in
# it); it switches lock checking off for the rest of this boot, which is
# accepted here and only here.
. /lib/metis/lib.sh
echo "@@LOCKDEP-OFF-OK reset_lock.*pciehp_ist"
bdf=$(metis_bdfs | head -1)
check insmod insmod /lib/metis/metis.ko
metis_test /dev/metis0 stress 60 >/tmp/stress.out 2>&1 &
pid=$!
( exec 9<>/dev/metis0; while [ ! -e /tmp/unplugged ]; do sleep 0.2; done; exec 9<&- ) &
holder=$!
sleep 3
reply=$(host qmp device_del '{"id":"metis0"}')
check_eq device_del_accepted 1 "$(echo "$reply" | grep -c '"return"')"
gone=0
for i in $(seq 1 60); do
    [ -e /sys/bus/pci/devices/$bdf ] || { gone=1; break; }
    sleep 1
done
check_eq device_removed 1 "$gone"
wait $pid
touch /tmp/unplugged
wait $holder
check_eq idle_file_closed_after_unplug 0 "$?"
check_eq stress_exit_clean 0 "$?"
check stress_saw_enodev grep -q "No such device" /tmp/stress.out
cat /tmp/stress.out
check_eq node_gone 0 "$(ls /dev/metis* 2>/dev/null | wc -l)"
check rmmod rmmod metis
