#!/bin/sh
# configs: x86-none x86-translated arm64-none arm64-translated
# cards: --mem-size 1G | --mem-size 2G
# Two cards at once, each independent: its own /dev node, memory, firmware,
# interrupt, and data that never crosses over.
. /lib/metis/lib.sh
check insmod insmod /lib/metis/metis.ko
check_eq two_nodes 2 "$(ls /dev/metis* | wc -l)"
check_eq card0_memory 1073741824 "$(metisctl --device /dev/metis0 --json info | tr -d ' ' | grep -o '"mem_size":[0-9]*' | cut -d: -f2)"
check_eq card1_memory 2147483648 "$(metisctl --device /dev/metis1 --json info | tr -d ' ' | grep -o '"mem_size":[0-9]*' | cut -d: -f2)"
metis_test /dev/metis0 stress 8 >/tmp/s0.out 2>&1 &
p0=$!
metis_test /dev/metis1 stress 8 >/tmp/s1.out 2>&1 &
p1=$!
wait $p0; r0=$?
wait $p1; r1=$?
check_eq card0_stress_clean "0 ok" "$r0 $(grep -o 'last result: ok' /tmp/s0.out | cut -d' ' -f3)"
check_eq card1_stress_clean "0 ok" "$r1 $(grep -o 'last result: ok' /tmp/s1.out | cut -d' ' -f3)"
cat /tmp/s0.out /tmp/s1.out
check metis1_suite metis_test /dev/metis1
check rmmod rmmod metis
check_eq card0_no_faults 0 "$(card_stat 0 faults_total)"
check_eq card1_no_faults 0 "$(card_stat 1 faults_total)"
