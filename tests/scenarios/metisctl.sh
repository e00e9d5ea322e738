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
# Usage errors exit 2 and touch nothing.
check_eq metisctl_usage_error 2 "$(metisctl dma bench --sizes nonsense >/dev/null 2>&1; echo $?)"
check rmmod rmmod metis
