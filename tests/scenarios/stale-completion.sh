#!/bin/sh
# configs: all
# Security review H1: a completion that beats the driver's stop must not be
# credited to the next job on the same channel (that job would return, and
# unmap its buffer, while the card still writes into it). The card is armed
# so that a job on write channel 0 hangs and the stop sent at its timeout
# finds the transfer just finished (done status, and its message when message
# interrupts are on). The next job on that channel hangs too: it must time out
# like its own transfer, not succeed on the first job's completion. Then the
# channel must carry data again. Polling (the status stays in the register)
# and the automatic interrupt mode (the message races the stop).
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
f0=$(card_stat 0 faults_total)

stale_case() {  # MODE MODULE-ARGS...
    mode=$1; shift
    check "${mode}_insmod" insmod /lib/metis/metis.ko "$@"
    host card 0 inject hang-channel wr 0 >/dev/null
    host card 0 inject done-on-stop wr 0 >/dev/null
    check_eq "${mode}_hung_job_times_out" "job: ETIMEDOUT" "$(metis_test /dev/metis0 job 1048576 300)"
    host card 0 inject hang-channel wr 0 >/dev/null
    check_eq "${mode}_next_job_not_credited_with_stale_done" "job: ETIMEDOUT" \
        "$(metis_test /dev/metis0 job 1048576 300)"
    check "${mode}_channel_carries_data_again" metisctl dma bench --sizes 256K --iters 1
    check "${mode}_rmmod" rmmod metis
}
stale_case poll irq_mode=4
stale_case auto
check_eq stale_card_faults "$f0" "$(card_stat 0 faults_total)"
