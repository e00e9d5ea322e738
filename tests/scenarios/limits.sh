#!/bin/sh
# configs: x86-translated
# Memory limits (issue 13's campaign; tests/guest/metis_test.c, limits_suite):
# an unprivileged process in a memory cgroup limited to 32 MiB, with
# RLIMIT_MEMLOCK at 256 KiB. An export beyond the cgroup's limit fails with
# ENOMEM (its pages are charged to the cgroup, and over the limit the driver
# gives up rather than calling the cgroup's OOM killer), a pin beyond
# RLIMIT_MEMLOCK with ENOMEM; the process lives on and what fits still works;
# the cgroup saw no OOM kill. Only the x86 debug kernel has memory cgroups.
. /lib/metis/lib.sh
check insmod insmod /lib/metis/metis.ko
cg=/sys/fs/cgroup
mkdir -p $cg
mount -t cgroup2 none $cg 2>/dev/null
check memcg_available grep -qw memory $cg/cgroup.controllers
echo +memory >$cg/cgroup.subtree_control
mkdir -p $cg/metis-small
echo 32M >$cg/metis-small/memory.max
metis_test /dev/metis0 limits $cg/metis-small/cgroup.procs
check_eq no_oom_kill 0 "$(grep '^oom_kill ' $cg/metis-small/memory.events | cut -d' ' -f2)"
rmdir $cg/metis-small
check rmmod rmmod metis
