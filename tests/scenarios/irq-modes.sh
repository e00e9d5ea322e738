#!/bin/sh
# configs: all
# Interrupt selection: automatic, forced INTx, forced polling, and the
# fallback to polling when the self-test interrupt never arrives (what a VM
# with broken interrupt remapping looks like, R3). Each mode must boot the
# firmware, which needs working DMA completions, and then moves data and runs
# a command, both checked: one vector (or none) serves every source, told
# apart by the eDMA status and the virtual-MSI table.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)

probe_with() {  # NAME EXPECTED-MODE ARGS...
    name=$1 mode=$2; shift 2
    dmesg -c >/dev/null
    insmod /lib/metis/metis.ko "$@"
    check_eq "${name}_bound" metis "$(bound_driver $bdf)"
    check "${name}_mode_${mode}" dmesg_has "(interface 1.0), $mode,"
    # One vector (or none) for every source: DMA completions come from the eDMA status,
    # command answers through the virtual-MSI table. Both data-checked.
    check "${name}_dma_verified" metisctl dma bench --sizes 64K --iters 1
    check "${name}_command_verified" metisctl cmd checksum --len 64K
    rmmod metis
}

case $METIS_CONFIG in
    arm64-*) auto=MSI ;;  # GICv3 ITS
    *) auto=MSI ;;
esac
probe_with auto "$auto"
probe_with intx INTx irq_mode=3
probe_with msi MSI irq_mode=2
probe_with poll polling irq_mode=4

# The card drops the next interrupt: the self-test notices and falls back.
host card 0 inject drop-irq 1 >/dev/null
probe_with fallback polling
check fallback_explained dmesg_has "falling back to polling"

# A completion whose interrupt is lost is found in the status registers when
# the job's timeout expires: the job succeeds and the log says what happened.
dmesg -c >/dev/null
insmod /lib/metis/metis.ko
host card 0 inject drop-irq 1 >/dev/null
check lost_irq_job_completes metisctl --timeout-ms 2000 cmd echo "lost interrupt" 
check lost_irq_reported dmesg_has "lost interrupt"
rmmod metis

# Interrupts that stop after the self-test passed (security review, "stalls"):
# each completion that sits in the status registers without its interrupt is
# taken when its job's own timeout expires; after three in a row the driver
# polls from then on and says so once. Jobs then complete at once.
S=/sys/bus/pci/devices/$bdf/metis
D=/sys/kernel/debug/metis/$bdf
dmesg -c >/dev/null
insmod /lib/metis/metis.ko
mode=$(cat "$S/irq_mode")
check_eq dead_irq_jobs_complete "dead-irq: 3/3" "$(metis_test /dev/metis0 dead-irq 3 300)"
check_eq dead_irq_polls poll "$(cat "$S/irq_mode")"
check_eq dead_irq_said_once 1 "$(dmesg | grep -c 'completions are polled from now on')"
check_eq dead_irq_counted 3 "$(grep -o ' lost_irqs=[0-9]*' "$D/stats" | cut -d= -f2 | awk '{t+=$1} END {print t+0}')"
t0=$(date +%s)
check_eq dead_irq_then_polled "job: ok" "$(metis_test /dev/metis0 job 1048576 10000)"
check_eq dead_irq_polled_fast 1 "$(( $(date +%s) - t0 < 5 ))"
host card 0 clear >/dev/null
check dead_irq_data_ok metisctl dma bench --sizes 1M --iters 1
rmmod metis

# A caller's own too-short timeouts are not lost interrupts: the mode stays.
dmesg -c >/dev/null
insmod /lib/metis/metis.ko
for i in 1 2 3 4 5; do metis_test /dev/metis0 job 4194304 1 >/dev/null; done
check_eq short_timeouts_keep_mode "$mode" "$(cat "$S/irq_mode")"
check_eq short_timeouts_not_lost 0 "$(dmesg | grep -c 'completions are polled from now on')"
check short_timeouts_then_data_ok metisctl dma bench --sizes 1M --iters 1
rmmod metis
