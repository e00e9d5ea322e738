#!/bin/sh
# configs: all
# metisctl (userspace/metisctl) runs in the guest against the driver: info,
# firmware status, each firmware command (checked on the host side), and a
# short DMA benchmark with data verification. Figures go to the run's notes.
. /lib/metis/lib.sh
check insmod insmod /lib/metis/metis.ko
check metisctl_info metisctl info
check_eq metisctl_fw_ready 1 "$(metisctl fw status | grep -ci ready)"
check metisctl_echo metisctl cmd echo "hello from the guest"
check metisctl_checksum metisctl cmd checksum --len 1M
check metisctl_fill metisctl cmd fill --len 64K --pattern 0x12345678
for op in copy not xor add-index; do
    check "metisctl_run_$op" metisctl cmd run --op $op --len 256K
done
if metisctl dma bench --sizes 4K..4M --iters 3 >/tmp/bench.txt 2>&1; then
    tap_ok metisctl_dma_bench
else
    tap_fail metisctl_dma_bench "$(tail -3 /tmp/bench.txt | tr '\n' ' ')"
fi
sed 's/^/@@NOTE bench: /' /tmp/bench.txt
# The full benchmark range (4 KiB..64 MiB, both directions), for the notes.
if metisctl dma bench --sizes 4K..64M --iters 2 >/tmp/bench-full.txt 2>&1; then
    tap_ok metisctl_dma_bench_full
else
    tap_fail metisctl_dma_bench_full "$(tail -3 /tmp/bench-full.txt | tr '\n' ' ')"
fi
sed 's/^/@@NOTE bench-full: /' /tmp/bench-full.txt

# What one job costs on the card's side: MMIO accesses, engine runs (doorbells
# that started a channel), IMWR interrupts and interrupts sent, as the emulator
# counted them for a single DMA. A single-window job is one engine run and one
# interrupt: the list is written into L2 by the CPU, no descriptor copy.
per_job() {  # SIZE DIR
    host card 0 reset-stats >/dev/null
    metisctl dma bench --sizes "$1" --iters 1 --dir "$2" --no-verify >/dev/null 2>&1
    s=$(host card 0 stats)
    total() { echo "$s" | grep -o "\"$1\": *[0-9]*" | grep -o '[0-9]*$' | awk '{t+=$1} END {print t+0}'; }
    sum() { echo "$s" | grep -o "\"$1\":{[^}]*}" | head -1 | grep -o ':[0-9]*' | tr -d : | awk '{t+=$1} END {print t+0}'; }
    # The bench loads the region first, then times one transfer: two jobs.
    echo "@@NOTE per-job $2 $1 (2 jobs: load + timed): engine_runs=$(total runs) imwrs=$(total imwrs) irqs_sent=$(sum irqs_sent) mmio_reads=$(sum reads) mmio_writes=$(sum writes)"
}
per_job 4K to
per_job 4K from
per_job 1M to
per_job 1M from

check metisctl_reset metisctl reset
check_eq metisctl_reset_counted 1 "$(metisctl --json info | json_num reset_count)"
check metisctl_echo_after_reset metisctl cmd echo "after reset"

# doctor on a healthy card: nothing fails (the guest kernel's configuration is
# not readable and the emulated root port trains at 5 GT/s: warnings only).
bdf=$(metis_bdfs | head -1)
if metisctl doctor >/tmp/doctor.txt 2>&1; then tap_ok doctor_healthy; else
    tap_fail doctor_healthy "$(grep -v '^ok' /tmp/doctor.txt | head -3 | tr '\n' ' ')"; fi
check doctor_bars grep -q "^ok    $bdf: BAR0 4 KiB and BAR2 32 MiB assigned" /tmp/doctor.txt
check doctor_bound grep -q "^ok    $bdf: bound to metis, IOMMU $(metisctl info | sed -n 's/^iommu_mode *//p')" /tmp/doctor.txt
check doctor_firmware grep -q "^ok    /dev/metis0: firmware 1.2.3 (interface 1.0) ready" /tmp/doctor.txt
check doctor_interrupts grep -q "^ok    /dev/metis0: interrupts by msi" /tmp/doctor.txt
check doctor_module grep -q "^ok    module: metis is loaded" /tmp/doctor.txt
check doctor_firmware_file grep -q "^ok    firmware: /lib/firmware/axelera/metis-fw-if1.bin is present" /tmp/doctor.txt
# A kernel configuration without two of the options the runtime needs (R1.5).
printf 'CONFIG_RUST=y\nCONFIG_PCI_MSI=y\nCONFIG_DMA_SHARED_BUFFER=y\nCONFIG_DMABUF_HEAPS=y\nCONFIG_DMABUF_HEAPS_SYSTEM=y\nCONFIG_SYNC_FILE=y\n' >/tmp/kconfig
metisctl doctor --kernel-config /tmp/kconfig >/tmp/doctor2.txt 2>&1
check doctor_runtime_options grep -q "^WARN  kernel: CONFIG_DMABUF_HEAPS_CMA, CONFIG_SW_SYNC not set" /tmp/doctor2.txt

# Usage errors exit 2 and touch nothing.
check_eq metisctl_usage_error 2 "$(metisctl dma bench --sizes nonsense >/dev/null 2>&1; echo $?)"
check rmmod rmmod metis
