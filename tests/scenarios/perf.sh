#!/bin/sh
# configs: arm64-none x86-translated
# cards: --identity metis --link unlimited | --identity synopsys --link unlimited
# What a DMA job costs, counted exactly by the emulated cards: metis on card 0
# and upstream dw-edma (tests/kmod/edma_bench.ko) on card 1, same engine model,
# same sizes, directions and queue depths, interleaved in one boot. Each cell
# runs twice (n1 and n2 jobs) between counter snapshots, so what a run costs
# once cancels out (tests/harness/perf_report.py): per-job MMIO writes and
# reads, interrupts, engine runs, elements and DMA map messages, next to the
# fewest a linked-list job needs. Pass A: the link unlimited (what the host
# side costs); pass B: Gen1 x1 (how close a job gets to the wire). Figures go
# to the run's perf.md/perf.json and notes; docs/performance.md shows them.
# The checks are what holds whatever the machine's speed: every counted job
# moved its bytes once, the guest's interrupt count agrees with the card's,
# and every bench run succeeded. METIS_SOAK=1 runs the whole matrix.
. /lib/metis/lib.sh
check insmod insmod /lib/metis/metis.ko
[ -f /lib/metis/virt-dma.ko ] && insmod /lib/metis/virt-dma.ko
check insmod_dw_edma insmod /lib/metis/dw-edma.ko
check insmod_dw_edma_pcie insmod /lib/metis/dw-edma-pcie.ko
# Measurement mode: per-access events are not logged while cells run.
check_eq quiet_card0 true "$(host card 0 quiet on | grep -o '"quiet": *true' | grep -o true)"
check_eq quiet_card1 true "$(host card 1 quiet on | grep -o '"quiet": *true' | grep -o true)"

n1=2
# iters N: jobs of the long run for a size (more for small jobs, whose
# per-job figures are the noisiest).
iters() {
    case $1 in
        4K) echo 200 ;;
        64K) echo 100 ;;
        1M) echo 30 ;;
        *) echo 6 ;;
    esac
}
bytes() {
    case $1 in
        *K) echo $((${1%K} * 1024)) ;;
        *M) echo $((${1%M} * 1048576)) ;;
        *) echo "$1" ;;
    esac
}

# metis_cell SIZE DIR QD BUF LINK [BATCH]
metis_cell() {
    # metisctl times dma-bufs one synchronous job at a time, one direction at a time.
    [ "$4" = dmabuf ] && { [ "$3" != 1 ] || [ "$2" = bidir ]; } && return
    k=${6:-1}
    # Jobs, in whole batches: the short run is one batch (or n1 jobs), the long one more.
    if [ "$k" -gt 1 ]; then n1c=$k; else n1c=$n1; fi
    n2=$(( ($(iters "$1") + k - 1) / k * k + n1c))
    buf=$4 opt="--align page"
    case $4 in
        odd) opt="--align odd" ;;
        dmabuf) opt="--buffer dmabuf" ;;
        registered) opt="--buffer registered" ;;
    esac
    cell="peer=metis size=$(bytes "$1") dir=$2 qd=$3 buf=$buf link=$5 n1=$n1c n2=$n2"
    [ "$k" -gt 1 ] && cell="$cell batch=$k"
    ok=1
    for run in a:$n1c b:$n2; do
        p=${run%%:*} n=${run#*:}
        host perf-snap 0 "$cell#${p}0" >/dev/null
        # --iters and --warmup count submissions: batches of k jobs.
        # shellcheck disable=SC2086
        metisctl dma bench --sizes "$1" --dir "$2" --qd "$3" $opt --iters $((n / k)) \
            --batch "$k" --warmup 2 --no-verify --out /tmp/perf.json >/tmp/perf.out 2>&1 || ok=0
        host perf-snap 0 "$cell#${p}1" >/dev/null
    done
    echo "@@PERF $cell $(tr -d '\n ' </tmp/perf.json)"
    name="perf_metis_$1_$2_qd$3_$4_$5$([ "$k" -gt 1 ] && echo "_batch$k")"
    [ $ok = 1 ] && tap_ok "$name" || tap_fail "$name" "$(tail -2 /tmp/perf.out | tr '\n' ' ')"
}

# edma_cell SIZE DIR QD MAP LINK
edma_cell() {
    n2=$(($(iters "$1") + n1))
    cell="peer=dw-edma size=$(bytes "$1") dir=$2 qd=$3 buf=$4 link=$5 n1=$n1 n2=$n2"
    ok=1
    for run in a:$n1 b:$n2; do
        p=${run%%:*} n=${run#*:}
        seen=$(dmesg | grep -c "edma_bench: ")
        host perf-snap 1 "$cell#${p}0" >/dev/null
        insmod /lib/metis/edma_bench.ko size="$(bytes "$1")" dir="$2" qd="$3" map="$4" \
            iters="$n" warmup=2 2>/tmp/edma.err || ok=0
        host perf-snap 1 "$cell#${p}1" >/dev/null
        rmmod edma_bench 2>/dev/null
        # The module reports its run in the log (see edma_bench_init).
        dmesg | grep "edma_bench: " | tail -n +$((seen + 1)) >/tmp/edma.run
        grep -q " jobs=" /tmp/edma.run && ! grep -q " failed: " /tmp/edma.run || ok=0
    done
    line=$(dmesg | grep "edma_bench: size=$(bytes "$1") dir=$2 qd=$3 map=$4 jobs=" | tail -1)
    echo "@@PERF $cell {$(echo "$line" | grep -o '[a-z0-9_]*=[0-9][0-9]*' | grep -v '^size=\|^qd=' |
        sed 's/\([a-z0-9_]*\)=\([0-9]*\)/"\1":\2/' | paste -sd, -)}"
    [ $ok = 1 ] && tap_ok "perf_dwedma_$1_$2_qd$3_$4_$5" ||
        tap_fail "perf_dwedma_$1_$2_qd$3_$4_$5" "$(dmesg | grep edma_bench | tail -1)"
}

# pass LINK SIZES DIRS QDS METIS-BUFS DWEDMA-MAPS
pass() {
    host card 0 link "$1" >/dev/null
    host card 1 link "$1" >/dev/null
    for size in $2; do for dir in $3; do for qd in $4; do
        for b in $5; do metis_cell "$size" "$dir" "$qd" "$b" "$1"; done
        for m in $6; do edma_cell "$size" "$dir" "$qd" "$m" "$1"; done
    done; done; done
}

# Buffers: metis pins and maps a user buffer per job (page: page-aligned, odd:
# 16 bytes in), or uses one registered once (registered) or a dma-buf it
# exported (dmabuf); dw-edma maps per job (job) or once (once).
if [ "$METIS_SOAK" = 1 ]; then
    pass unlimited "4K 64K 1M 16M" "to from bidir" "1 4 16" "page odd dmabuf registered" "job once"
    pass gen1x1 "1M 16M" "to from bidir" "1 4" "page registered" "job once"
else
    pass unlimited "4K 1M" "to from" "1 4" "page registered" "job once"
    pass unlimited "1M" "bidir" "4" "registered" "once"
    pass gen1x1 "1M" "to bidir" "4" "registered" "once"
fi
# Batches of 16 jobs (METIS_IOCTL_DMA_BATCH): one doorbell and one interrupt each.
host card 0 link unlimited >/dev/null
for dir in to from; do for b in page registered; do
    metis_cell 4K "$dir" 1 "$b" unlimited 16
done; done
metis_cell 4K to 4 registered unlimited 16
[ "$METIS_SOAK" = 1 ] && for size in 64K 1M; do
    metis_cell "$size" to 1 registered unlimited 16
    metis_cell "$size" from 4 registered unlimited 16
done
host card 0 quiet off >/dev/null
host card 1 quiet off >/dev/null
check rmmod_dw_edma_pcie rmmod dw_edma_pcie
check_eq card0_faults 0 "$(card_stat 0 faults_total)"
check_eq card1_faults 0 "$(card_stat 1 faults_total)"
