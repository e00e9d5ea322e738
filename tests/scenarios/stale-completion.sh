#!/bin/sh
# configs: all
# Security review H1: a completion that beats the driver's stop must not be
# credited to the next job on the same channel (that job would return, and
# unmap its buffer, while the card still writes into it). The card is armed
# so that a job on write channel 0 hangs and the stop sent at its timeout
# finds the transfer just finished (done status, and its message when message
# interrupts are on). The next job on that channel hangs too: it must time out
# like its own transfer, not succeed on the first job's completion. Then the
# channel must carry data again. Polling keeps the status in the register;
# with message interrupts the card delays its messages so that the stale one
# arrives after the stop, as on a busy bus.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
f0=$(card_stat 0 faults_total)

arm() {  # NAME INJECTION...: arms an injection on card 0; the card must accept it
    n=$1; shift
    r=$(host card 0 inject "$@")
    case $r in *'"ok":true'*) tap_ok "$n" ;; *) tap_fail "$n" "card said: $r" ;; esac
}
armed_left() {  # INJECTION-KEY: what of it is still armed on card 0
    host card 0 stats | grep -o "\"$1\":\[[^]]*\]"
}

stale_case() {  # MODE TIMEOUT-MS MODULE-ARGS...
    mode=$1 tmo=$2; shift 2
    check "${mode}_insmod" insmod /lib/metis/metis.ko "$@"
    arm "${mode}_arm_hang_a" hang-channel wr 0
    arm "${mode}_arm_done_on_stop" done-on-stop wr 0
    [ "$mode" = msi ] && arm "${mode}_arm_delay" delay-irq 2 400
    check_eq "${mode}_hung_job_times_out" "job: ETIMEDOUT" "$(metis_test /dev/metis0 job 1048576 "$tmo")"
    # The first job reached the channel: both injections were consumed there.
    check_eq "${mode}_first_job_hung_on_wr0" '"hang_channel":[]' "$(armed_left hang_channel)"
    check_eq "${mode}_completion_beat_the_stop" '"done_on_stop":[]' "$(armed_left done_on_stop)"
    arm "${mode}_arm_hang_b" hang-channel wr 0
    check_eq "${mode}_next_job_not_credited_with_stale_done" "job: ETIMEDOUT" \
        "$(metis_test /dev/metis0 job 1048576 "$tmo")"
    check_eq "${mode}_second_job_hung_on_wr0" '"hang_channel":[]' "$(armed_left hang_channel)"
    host card 0 clear >/dev/null
    check "${mode}_channel_carries_data_again" metisctl dma bench --sizes 256K --iters 1
    check "${mode}_rmmod" rmmod metis
}
stale_case poll 300 irq_mode=4
stale_case msi 1500 irq_mode=2
check_eq stale_card_faults "$f0" "$(card_stat 0 faults_total)"
