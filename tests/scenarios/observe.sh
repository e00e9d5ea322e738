#!/bin/sh
# configs: all
# Observability (docs/observability.md): the sysfs attributes and the debugfs
# files of a card, read and checked against what the scenario did.
# - every attribute exists, is world-readable and read-only, and agrees with
#   METIS_IOCTL_INFO;
# - after N jobs the per-channel statistics, the byte totals and the trace
#   say N (and the trace can be cleared);
# - a reset changes the count and the reason; a channel that ignores stop
#   shows up as running in the decoded registers and in the busy list while
#   its job waits, then as a timeout in the statistics and the trace, and the
#   recovery reset with its reason;
# - reading everything in a loop during a data-checked stress run, a reset
#   and an unbind changes no result and leaves no splat;
# - the files vanish with unbind and rmmod and come back with bind.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
S=/sys/bus/pci/devices/$bdf/metis
D=/sys/kernel/debug/metis/$bdf
ATTRS="driver_version firmware_version interface_version firmware_state firmware_owner irq_mode
irq_vectors iommu_mode reset_count last_reset_reason mem_size mem_free bytes_to_device
bytes_from_device dma_channels"
DFILES="edma lists interface vmsi stats trace"

exists() { [ -e "$1" ] && echo yes || echo no; }
# stat_sum DIR KEY: KEY summed over the channels of DIR (wr or rd) in debugfs stats.
stat_sum() {
    grep "^$1 " "$D/stats" | grep -o " $2=[0-9]*" | cut -d= -f2 | awk '{t+=$1} END {print t+0}'
}
jstr() {  # KEY: a string of the JSON in $info
    echo "$info" | grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*: *"//; s/"$//'
}
# wait_for CMD...: up to 10 s for CMD to succeed.
wait_for() {
    for i in $(seq 100); do "$@" && return 0; sleep 0.1; done
    return 1
}
reader() {  # reads every file in a loop until /tmp/stop-reading exists
    while [ ! -e /tmp/stop-reading ]; do
        for a in $ATTRS; do cat "$S/$a"; done
        for f in $DFILES; do cat "$D/$f"; done
    done >/dev/null 2>&1
}
start_reader() { rm -f /tmp/stop-reading; reader & READER=$!; }
stop_reader() { touch /tmp/stop-reading; wait "$READER"; }

check_eq no_attrs_before_probe no "$(exists "$S")"
check insmod insmod /lib/metis/metis.ko

# --- sysfs: every attribute, and what METIS_IOCTL_INFO says ------------------
n=0
for a in $ATTRS; do
    n=$((n + 1))
    if v=$(cat "$S/$a" 2>&1) && [ -n "$v" ]; then tap_ok "attr_$a"; else tap_fail "attr_$a" "empty or unreadable: $v"; fi
done
check_eq attr_count "$n" "$(ls "$S" | wc -l)"
check_eq attrs_world_readable_read_only "$n" "$(ls -l "$S" | grep -c '^-r--r--r--')"
check_eq attr_write_refused 1 "$(echo 1 2>/dev/null >"$S/reset_count" && echo 0 || echo 1)"
info=$(metisctl --json info)
check_eq attr_firmware_state "$(jstr fw_state)" "$(cat "$S/firmware_state")"
check_eq attr_firmware_version "$(jstr fw_version)" "$(cat "$S/firmware_version")"
check_eq attr_interface_version "$(jstr fw_if_version)" "$(cat "$S/interface_version")"
check_eq attr_firmware_owner "$(jstr fw_owner)" "$(cat "$S/firmware_owner")"
check_eq attr_irq_mode "$(jstr irq_mode)" "$(cat "$S/irq_mode")"
check_eq attr_iommu_mode "$(jstr iommu_mode)" "$(cat "$S/iommu_mode")"
check_eq attr_irq_vectors "$(echo "$info" | json_num irq_vectors)" "$(cat "$S/irq_vectors")"
check_eq attr_mem_size "$(echo "$info" | json_num mem_size)" "$(cat "$S/mem_size")"
check_eq attr_mem_free "$(echo "$info" | json_num mem_free)" "$(cat "$S/mem_free")"
check_eq attr_dma_channels "$(echo "$info" | json_num wr_channels) $(echo "$info" | json_num rd_channels)" \
    "$(cat "$S/dma_channels")"
check_eq attr_reset_count_zero 0 "$(cat "$S/reset_count")"
check_eq attr_no_reset_yet none "$(cat "$S/last_reset_reason")"
check_eq attr_driver_version_is_the_tools "metisctl $(cat "$S/driver_version")" "$(metisctl --version)"
# The node's sysfs entry hangs off the same PCI device.
check_eq node_under_the_card yes "$(exists "/sys/bus/pci/devices/$bdf/misc/metis0")"
case $(grep -o 'iommu[^ ]*\|intel_iommu[^ ]*' /proc/cmdline | tr '\n' ' ') in
*iommu.passthrough=1* | *iommu=pt*) want_iommu=passthrough ;;
*) want_iommu= ;;
esac
[ -n "$want_iommu" ] && check_eq attr_iommu_mode_matches_cmdline "$want_iommu" "$(cat "$S/iommu_mode")"

# --- debugfs: the files, and statistics after N jobs --------------------------
for f in $DFILES; do check "debugfs_$f" test -r "$D/$f"; done
check_eq interface_as_published yes "$(grep -q '^master_version=' "$D/interface" && echo yes)"
check_eq vmsi_registered "registered=yes" "$(grep -o '^registered=[a-z]*' "$D/vmsi")"
check_eq edma_engine_on 2 "$(grep -c '^[wr][rd]: engine=on' "$D/edma")"
idle() { grep ' ch[0-3] status=' "$D/edma" | grep -vc 'status=running'; }
check_eq edma_idle_channels 8 "$(idle)"
check_eq lists_none_busy "no channel is busy" "$(cat "$D/lists")"

N=5 LEN=65536
jobs0=$(stat_sum wr jobs) bytes0=$(stat_sum wr bytes) from0=$(cat "$S/bytes_from_device")
echo 1 >"$D/trace"
check_eq trace_cleared 0 "$(wc -l <"$D/trace")"
for i in $(seq $N); do
    r=$(metis_test /dev/metis0 job $LEN 2000)
    [ "$r" = "job: ok" ] || tap_fail "job_$i" "$r"
done
check_eq stats_wr_jobs_counted $((jobs0 + N)) "$(stat_sum wr jobs)"
check_eq stats_wr_bytes_counted $((bytes0 + N * LEN)) "$(stat_sum wr bytes)"
check_eq attr_bytes_from_device_counted $((from0 + N * LEN)) "$(cat "$S/bytes_from_device")"
check_eq trace_holds_the_jobs $N "$(grep -c "dir=wr ch=[0-3] len=$LEN elements=[0-9]* duration_us=[0-9]* result=ok" "$D/trace")"
check_eq trace_numbered_from_1 "seq=1 seq=$N" "$(head -1 "$D/trace" | cut -d' ' -f1) $(tail -1 "$D/trace" | cut -d' ' -f1)"
check_eq stats_no_failures 0 "$(($(stat_sum wr errors) + $(stat_sum wr timeouts) + $(stat_sum rd errors) + $(stat_sum rd timeouts)))"

# --- reset: count and reason -------------------------------------------------
check metisctl_reset metisctl reset
check_eq attr_reset_counted 1 "$(cat "$S/reset_count")"
check_eq attr_reset_reason_requested requested "$(cat "$S/last_reset_reason")"
check_eq attr_ready_after_reset ready "$(cat "$S/firmware_state")"

# --- a channel that ignores stop ---------------------------------------------
echo 1 >"$D/trace"
to0=$(grep '^wr ch0 ' "$D/stats" | grep -o ' timeouts=[0-9]*' | cut -d= -f2)
r=$(host card 0 inject stuck-channel wr 0)
case $r in *'"ok":true'*) tap_ok arm_stuck_channel ;; *) tap_fail arm_stuck_channel "card said: $r" ;; esac
metis_test /dev/metis0 job 1048576 3000 >/tmp/stuck-job.out &
job=$!
running() { grep -q '^wr ch0 status=running' "$D/edma"; }
check stuck_channel_shown_running wait_for running
check_eq stuck_channel_busy "busy=wr:0x01,rd:0x00" "$(grep -o 'busy=[^ ]*' "$D/edma")"
check_eq stuck_channel_list_shown yes \
    "$(grep -q '^wr ch0: list at 0x[0-9a-f]*, [0-9]* slots, run in slots [0-9]*\.\.[0-9]*' "$D/lists" &&
        grep -q '^  \[[0-9]*\] data cb=[01] .*size=' "$D/lists" && echo yes)"
grep -e '^wr ch0' -e 'busy=' "$D/edma" | sed 's/^/@@NOTE stuck edma: /'
head -3 "$D/lists" | sed 's/^/@@NOTE stuck lists: /'
wait $job
check_eq stuck_job_timed_out "job: ETIMEDOUT" "$(cat /tmp/stuck-job.out)"
recovered() { [ "$(cat "$S/reset_count")" = 2 ] && [ "$(cat "$S/firmware_state")" = ready ]; }
check stuck_recovered wait_for recovered
check_eq attr_reset_reason_recovery "recovery: eDMA channel ignores stop requests" \
    "$(cat "$S/last_reset_reason")"
check_eq trace_shows_timeout 1 "$(grep -c 'dir=wr ch=0 len=1048576 .*result=timeout' "$D/trace")"
grep result=timeout "$D/trace" | sed 's/^/@@NOTE stuck trace: /'
check_eq stats_timeout_counted $((to0 + 1)) \
    "$(grep '^wr ch0 ' "$D/stats" | grep -o ' timeouts=[0-9]*' | cut -d= -f2)"
check_eq channel_idle_after_recovery 8 "$(idle)"

# --- reading in a loop changes no result -------------------------------------
rd0=$(stat_sum rd jobs) wr0=$(stat_sum wr jobs)
start_reader
out=$(metis_test /dev/metis0 stress 5)
check_eq stress_while_reading_ok ok "$(echo "$out" | sed -n 's/.*last result: //p')"
rounds=$(echo "$out" | sed -n 's/^stress: \([0-9]*\) round trips.*/\1/p')
check_eq stress_rd_jobs_counted $((rd0 + ${rounds:-0})) "$(stat_sum rd jobs)"
check_eq stress_wr_jobs_counted $((wr0 + ${rounds:-0})) "$(stat_sum wr jobs)"
echo "@@NOTE observe: $rounds round trips of 3 MiB in 5 s with every file read in a loop"
check reset_while_reading metisctl reset
check_eq reset_counted_while_reading 3 "$(cat "$S/reset_count")"
check dma_after_reset_while_reading metisctl dma bench --sizes 256K --iters 1

# --- metisctl on top ----------------------------------------------------------
# status needs neither root nor the node: nobody can't open /dev/metis0.
nobody() { run_as 65534 65534 "$@"; }
check_eq nobody_is_nobody 65534 "$(nobody id -u)"
check_eq nobody_cannot_open_node 1 "$(nobody metisctl info >/dev/null 2>&1; echo $?)"
st=$(nobody metisctl --json status 2>&1)
check_eq status_as_nobody_state ready "$(echo "$st" | grep -o '"firmware_state": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"')"
check_eq status_as_nobody_resets 3 "$(echo "$st" | json_num reset_count)"
check_eq status_as_nobody_bdf "$bdf" "$(echo "$st" | grep -o '"bdf": *"[^"]*"' | cut -d'"' -f4)"
check status_text metisctl status
check_eq status_text_reason requested "$(metisctl status | sed -n 's/^last_reset_reason *//p')"
check_eq stats_needs_root 1 "$(nobody metisctl stats >/dev/null 2>&1; echo $?)"
check_eq stats_json_wr_jobs "$(stat_sum wr jobs)" \
    "$(metisctl --json stats | grep -o '"jobs": *[0-9]*' | grep -o '[0-9]*$' | head -4 | awk '{t+=$1} END {print t+0}')"
check_eq trace_json_lines "$(wc -l <"$D/trace")" "$(metisctl --json trace | grep -c '"seq"')"
check metisctl_trace_clear metisctl trace --clear
check_eq metisctl_trace_cleared 0 "$(wc -l <"$D/trace")"
check doctor_ok sh -c 'metisctl doctor >/tmp/doctor.txt 2>&1'
check doctor_reports_resets grep -q "^info .*: 3 card reset(s) since the driver bound it, the last: requested" /tmp/doctor.txt

# --- the files follow the binding --------------------------------------------
echo "$bdf" >/sys/bus/pci/drivers/metis/unbind
stop_reader
check_eq attrs_gone_after_unbind no "$(exists "$S")"
check_eq debugfs_gone_after_unbind no "$(exists "$D")"
echo "$bdf" >/sys/bus/pci/drivers/metis/bind
check_eq attrs_back_after_bind yes "$(exists "$S/firmware_state")"
check_eq debugfs_back_after_bind yes "$(exists "$D/stats")"
check_eq fresh_count_after_bind 0 "$(cat "$S/reset_count")"
check rmmod rmmod metis
check_eq debugfs_root_gone_after_rmmod no "$(exists /sys/kernel/debug/metis)"
check_eq attrs_gone_after_rmmod no "$(exists "$S")"
