#!/bin/sh
# configs: x86-translated arm64-translated
# Signals (issue 13's campaign; tests/guest/metis_test.c, signals_suite): a
# sibling thread signals the caller at random moments while it runs DMA both
# ways (data checked), CMD, WAIT with and without a limit, and open/close.
# Without SA_RESTART each call ends in success or EINTR, with SA_RESTART in
# success; a WAIT restarted by a signal every few ms still ends after its own
# 700 ms (the driver writes the time left back); the card then passes a data
# check. No splat (the runner). METIS_SIGNALS_SEED overrides the seed.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
seed=${METIS_SIGNALS_SEED:-20261202}
check insmod insmod /lib/metis/metis.ko
metis_test /dev/metis0 signals 150 "$seed"
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
