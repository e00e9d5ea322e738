#!/bin/sh
# configs: all
# The /dev/metisN ABI end to end (tests/guest/metis_test.c): argument
# validation, region ownership, data-checked DMA from 1 byte to 64 MiB with
# unaligned buffers, concurrent jobs, firmware commands, registered buffers,
# batches, lists rewritten while the engine may fetch them. No card faults.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
check_eq node_mode "crw-rw----" "$(ls -l /dev/metis0 | cut -c1-10)"
check_eq node_parent "$bdf" "$(basename "$(readlink /sys/class/misc/metis0/device)")"
metis_test /dev/metis0
# What a caller can make the driver log, it can't make it log without limit:
# 400 refused dma-buf fds and 40 self-inflicted timeouts may leave at most a
# burst of 5 lines and one "suppressed" line per 5 s they take (before the
# limit: a line per call).
dmesg -c >/dev/null
t0=$(date +%s)
metis_test /dev/metis0 flood 400
secs=$(( $(date +%s) - t0 ))
lines=$(dmesg | grep -c "metis 0000")
echo "@@NOTE flood: $lines kernel log lines in $secs s"
check log_flood_limited test "$lines" -le $(( 6 * (secs / 5 + 2) ))
# Async jobs of all files together are capped per card (security review M7).
metis_test /dev/metis0 card-cap
# Pinned buffers count against RLIMIT_MEMLOCK (M6).
metis_test /dev/metis0 memlock
# Registered buffers: pinned and mapped once, checked, limited, data both ways.
metis_test /dev/metis0 registered
# Batches: every field checked, all entries or none, each entry's bytes where
# it says, to the card before back, longer than a ring, async.
metis_test /dev/metis0 batch
# A command abandoned by its caller finishes before the next one (H2).
metis_test /dev/metis0 cmd-abandon
# Lists are handed to the engine whole, and a channel to a new job only once
# the engine has stopped walking the last one (emulator torn-fetch; where the
# card sees one element per page).
metis_test /dev/metis0 torn-fetch
# Device memory is zeroed before its next owner gets it (H3).
metis_test /dev/metis0 scrub
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
