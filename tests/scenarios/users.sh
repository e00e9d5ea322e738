#!/bin/sh
# configs: x86-translated arm64-translated
# Two unprivileged users on one card at once (issue 13's campaign;
# tests/guest/metis_test.c, multi_user): uids 65534 and 65533, both in the
# card's group, learn each other's region handle and job id and can neither
# write, read, checksum, free nor wait on them, nor reset the card under the
# other; meanwhile both move data through their own regions, every byte
# checked.
. /lib/metis/lib.sh
faults0=$(card_stat 0 faults_total)
check insmod insmod /lib/metis/metis.ko
for i in $(seq 50); do [ -e /dev/metis0 ] && break; sleep 0.1; done
chgrp 1000 /dev/metis0 && chmod 0660 /dev/metis0
metis_test /dev/metis0 multi-user 20
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
