#!/bin/sh
# configs: all
# METIS_IOCTL_RESET (tests/guest/metis_test.c, reset mode): the card is reset
# and its firmware rebooted without reloading the module; regions become
# lost once (ESTALE); a job on the card when the reset comes fails with EIO;
# a uevent and a log line tell userspace. Without CAP_SYS_ADMIN a caller may
# reset only a card it has to itself (reset-perm). Opening the card never
# waits for a reset (M2). A reset or an unbind while a FILL runs lets it
# answer before withdrawing the virtual-MSI registration. No card faults.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
boots0=$(card_stat 0 BOOT)
check insmod insmod /lib/metis/metis.ko
dmesg -c >/dev/null
metis_test /dev/metis0 reset
check reset_logged dmesg_has "card reset done in"
metis_test /dev/metis0 reset-perm
# Probe, four resets and the two of reset-perm each boot the firmware once.
check_eq card_saw_seven_boots $(( ${boots0:-0} + 7 )) "$(card_stat 0 BOOT)"
# A reset, then an unbind, while a 768 MiB FILL runs: the command answers before
# the registration is withdrawn (no vmsi_unregistered card fault: R1.2, counted
# at the end); the card works after.
bdf=$(metis_bdfs | head -1)
metis_test /dev/metis0 fill-stop "metisctl reset >/dev/null"
metis_test /dev/metis0 fill-stop "echo $bdf >/sys/bus/pci/drivers/metis/unbind"
echo "$bdf" >/sys/bus/pci/drivers/metis/bind
check dma_after_fill_stops metisctl dma bench --sizes 1M --iters 1

# Security review M2: open() runs under the misc core's global lock and must
# not wait there for the card. A reset whose firmware never reports ready
# holds the card for the 5 s boot timeout; meanwhile opening the card returns
# at once (calls on the file wait instead), and so does opening another misc
# device. Then the card is brought back.
up_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
other=$(ls /sys/class/misc | grep -v '^metis' | while read -r m; do [ -c "/dev/$m" ] && echo "$m"; done | head -1)
host card 0 inject fw-no-ready >/dev/null
metisctl reset >/dev/null 2>&1 &
rp=$!
sleep 1
t0=$(up_cs)
exec 7</dev/metis0
t1=$(up_cs)
check_eq open_during_outage_returns_at_once 1 "$(( t1 - t0 < 100 ))"
if [ -n "$other" ]; then
    t0=$(up_cs)
    exec 8</dev/$other
    t1=$(up_cs)
    exec 8<&-
    check_eq "other_misc_open_not_blocked_$other" 1 "$(( t1 - t0 < 100 ))"
fi
exec 7<&-
wait $rp
host card 0 clear >/dev/null
check reset_after_failed_boot metisctl reset
check dma_after_failed_boot metisctl dma bench --sizes 256K --iters 1
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
