#!/bin/sh
# configs: all
# Recovery without reloading the module, driven by the emulator's fault
# injection. Each fault is followed by a data-checked DMA and a firmware
# command on the same driver instance:
# - a hung channel: the job times out, the channel is stopped, no reset;
# - an aborted transfer: the job fails with EIO, no reset;
# - a channel that ignores stop: the card is cut off the bus and reset (R4);
# - firmware that stops answering: detected by its heartbeat, card reset;
# - a surprise reset of the card: detected on the next timeout, card reset;
# - an interrupt storm during DMA: the vector is masked, jobs complete by
#   polling, no data is lost and the kernel never disables the line itself;
# - a function reset from outside (sysfs): jobs fail with EIO, card back.
# Recovery times go to the notes.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
check insmod insmod /lib/metis/metis.ko
resets() { metisctl --json info | json_num reset_count; }
works() {  # NAME
    check "$1_then_dma_ok" metisctl dma bench --sizes 256K --iters 1
    check "$1_then_cmd_ok" metisctl cmd echo "after-$1"
}
fails() {  # NAME METISCTL-ARGS...: the command must fail (exit 1)
    name=$1; shift
    check_eq "${name}_job_fails" 1 "$(metisctl --timeout-ms 500 "$@" >/tmp/fail.out 2>&1; echo $?)"
}
recovered_note() {  # NAME
    echo "@@NOTE recovery $1: $(dmesg | grep -o 'recovered from .* in [0-9]* ms' | tail -1)"
}
bench4k="dma bench --sizes 4K --iters 1 --dir to --no-verify"
dmesg -c >/dev/null

host card 0 inject hang-channel rd 0 >/dev/null
fails hang $bench4k
check hang_timed_out dmesg_has "timed out after 500 ms"
check_eq hang_no_reset 0 "$(resets)"
works hang

host card 0 inject abort rd 0 >/dev/null
fails abort $bench4k
check_eq abort_no_reset 0 "$(resets)"
works abort

dmesg -c >/dev/null
host card 0 inject stuck-channel rd 0 >/dev/null
fails stuck $bench4k
check stuck_cut_off dmesg_has "does not stop; the card is cut off the bus"
check stuck_recovered dmesg_has "recovered from \"eDMA channel ignores stop requests\""
check_eq stuck_one_reset 1 "$(resets)"
recovered_note stuck-channel
works stuck

dmesg -c >/dev/null
host card 0 inject fw-hang >/dev/null
fails fwhang cmd echo hello
check fwhang_detected dmesg_has "firmware stopped (no heartbeat"
check fwhang_recovered dmesg_has "recovered from \"firmware stopped answering\""
check_eq fwhang_second_reset 2 "$(resets)"
recovered_note firmware-hang
works fwhang

# The card forgets everything by itself; the driver notices at the next
# command (the scrub of a new region gets the bootloader's answer) or when a
# job times out, having rung a doorbell of the disabled engine (a card fault
# the emulator counts, declared below).
dmesg -c >/dev/null
f0=$(card_stat 0 faults_total)
host card 0 inject surprise-reset >/dev/null
fails surprise $bench4k
check surprise_detected dmesg_has "left the running state by itself"
check surprise_recovered dmesg_has "recovered from \"the card reset itself\""
check_eq surprise_third_reset 3 "$(resets)"
f1=$(card_stat 0 faults_total)
check surprise_faults_bounded test $((f1 - f0)) -le 4
expect_faults 0 $((f1 - f0))
recovered_note surprise-reset
works surprise

# An interrupt storm while DMA runs.
dmesg -c >/dev/null
metis_test /dev/metis0 stress 15 >/tmp/storm-stress.out 2>&1 &
pid=$!
sleep 2
irq0=$(metis_irq_count)
t0=$(date +%s)
# Messages 200 us apart: fewer coalesce in the eventfd than back to back, and
# how many reach the handler depends on the host's speed, so the storm goes on
# in rounds of 5000 until the driver reacts (it needs 5000 in a row with
# nothing pending) or 200 000 have been sent.
sent=0 rounds=0
while [ $rounds -lt 40 ] && ! dmesg_has "interrupt storm:"; do
    host card 0 inject storm 0 5000 200 >/tmp/storm.out
    n=$(json_num sent </tmp/storm.out)
    sent=$((sent + ${n:-0}))
    rounds=$((rounds + 1))
done
t1=$(date +%s)
check_eq storm_sent $((rounds * 5000)) $sent
wait $pid
irq1=$(metis_irq_count)
echo "@@NOTE storm: $sent messages in $((t1 - t0)) s, the guest took $((irq1 - irq0)) interrupts; $(cat /tmp/storm-stress.out)"
check storm_detected dmesg_has "interrupt storm:"
check storm_no_corruption_during grep -q "last result: ok" /tmp/storm-stress.out
check_eq storm_now_polling 1 "$(metisctl info | grep -ci "irq.*poll")"
works storm

# A function reset from outside the driver (sysfs) while DMA runs.
dmesg -c >/dev/null
metis_test /dev/metis0 stress 10 >/tmp/ext-stress.out 2>&1 &
pid=$!
sleep 2
echo 1 >/sys/bus/pci/devices/$bdf/reset
wait $pid
check external_reset_logged dmesg_has "card back after an external reset"
check external_reset_job_failed grep -q -e "Input/output error" -e "Stale" /tmp/ext-stress.out
check_eq external_reset_counted 4 "$(resets)"
works external

check rmmod rmmod metis
