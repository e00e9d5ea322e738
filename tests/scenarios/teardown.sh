#!/bin/sh
# configs: all
# Ordered teardown under load (R2.4): unbinding the card while DMA runs fails
# the in-flight job with ENODEV, the open file keeps failing cleanly, nothing
# splats, and the card works again after rebinding. rmmod with an open file
# is refused (the file holds the module); rmmod during an interrupt storm
# completes.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
check insmod insmod /lib/metis/metis.ko

metis_test /dev/metis0 stress 30 >/tmp/stress.out 2>&1 &
pid=$!
sleep 3
check_eq rmmod_refused_while_open 1 "$(rmmod metis 2>/dev/null; echo $?)"
echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
check_eq unbound_under_load none "$(bound_driver $bdf)"
wait $pid
check_eq stress_exit_clean 0 "$?"
check stress_saw_enodev grep -q "No such device" /tmp/stress.out
cat /tmp/stress.out

echo "$bdf" >/sys/bus/pci/drivers/metis/bind
check_eq rebound metis "$(bound_driver $bdf)"

# Registered buffers of an open file, one under a job held on the card: unbind
# unmaps them all (DMA-API debugging on x86 reports a mapping left behind), the
# job and the file's later calls fail with ENODEV.
rm -f /tmp/unbound
metis_test /dev/metis0 registered-hold /tmp/unbound >/tmp/hold.out 2>&1 &
hpid=$!
for i in $(seq 100); do grep -q "holding" /tmp/hold.out && break; sleep 0.1; done
sleep 0.5
echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
touch /tmp/unbound
wait $hpid
cat /tmp/hold.out
check_eq unbound_with_registered none "$(bound_driver $bdf)"
echo "$bdf" >/sys/bus/pci/drivers/metis/bind
check_eq rebound_after_registered metis "$(bound_driver $bdf)"
host card 0 clear >/dev/null
metis_test /dev/metis0 stress 2 >/tmp/stress2.out 2>&1
check after_rebind_dma_works grep -q "last result: ok" /tmp/stress2.out

for i in 1 2 3 4 5; do
    echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
    echo "$bdf" >/sys/bus/pci/drivers/metis/bind
done
check_eq bind_loop_bound metis "$(bound_driver $bdf)"

# rmmod while the card storms interrupts: the handler and the vector are torn
# down under fire, nothing splats, and the card works after a fresh insmod.
host card 0 inject storm 0 50000 >/tmp/storm.out &
spid=$!
usleep 300000
check rmmod_during_storm rmmod metis
wait $spid
check storm_delivered grep -q '"sent":50000' /tmp/storm.out
check insmod_after_storm insmod /lib/metis/metis.ko
metis_test /dev/metis0 stress 2 >/tmp/stress3.out 2>&1
check after_storm_dma_works grep -q "last result: ok" /tmp/stress3.out
check rmmod rmmod metis

# Security review M5: rmmod right after closing a file whose async job is still
# finishing (a channel that ignores stop: the job times out, then its work item
# runs the recovery reset). The work item must be done before the module goes.
for i in 1; do
    insmod /lib/metis/metis.ko
    host card 0 inject stuck-channel rd 0 >/dev/null
    metis_test /dev/metis0 close-inflight 200 | sed "s/^@@TAP \(.*\) close_inflight_/@@TAP \1 close_inflight_${i}_/"
    check_eq "close_inflight_${i}_unloaded" no "$(grep -q '^metis ' /proc/modules && echo yes || echo no)"
    host card 0 clear >/dev/null
done
check insmod_after_close_inflight insmod /lib/metis/metis.ko
metis_test /dev/metis0 stress 2 >/tmp/stress4.out 2>&1
check after_close_inflight_dma_works grep -q "last result: ok" /tmp/stress4.out
check rmmod_final rmmod metis
