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
check lost_irq_job_completes metisctl --timeout-ms 2000 cmd checksum --len 64K
check lost_irq_reported dmesg_has "lost interrupt"
rmmod metis
