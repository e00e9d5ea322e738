# Helpers for guest scenarios: TAP results, the host channel, card lookup.
# Results are printed as "@@TAP ok NAME" / "@@TAP not ok NAME # why" and
# collected by tests/harness/run.py.

TAP_FAILED=0

tap_ok() { echo "@@TAP ok $1"; }
tap_fail() { echo "@@TAP not ok $1 # $2"; TAP_FAILED=1; }

# check NAME CMD...: passes when CMD succeeds.
check() {
    name=$1; shift
    if "$@" >/tmp/check.out 2>&1; then tap_ok "$name"; else
        # A failing suite's own "not ok" lines say what broke; lead with them.
        tap_fail "$name" "$({ grep 'not ok' /tmp/check.out; grep -v '@@TAP' /tmp/check.out; } |
            sed 's/@@TAP //' | tr '\n' ' ' | cut -c1-400)"; fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then tap_ok "$1"; else tap_fail "$1" "expected '$2', got '$3'"; fi
}

# The host channel is the guest's second serial port. ttyAMA1 first: a
# distribution's arm64 kernel also has 8250 ports (ttyS0-3) without hardware.
host_port() {
    for p in /dev/ttyAMA1 /dev/ttyS1; do
        [ -c "$p" ] && { echo "$p"; return; }
    done
}

# host REQUEST: sends one request line to the runner and prints its reply.
# Requests: "card N <control command>", "qmp <command> [json]", "sleep-ms N".
# Each request carries a sequence number that the reply repeats, so a retry
# after a lost line can't pair a request with a stale answer.
HOST_SEQ=0
host() {
    port=$(host_port)
    [ -n "$port" ] || { echo '{"error":"no host port"}'; return 1; }
    stty -F "$port" raw -echo 2>/dev/null
    exec 9<>"$port"
    for try in 1 2 3 4 5; do
        HOST_SEQ=$((HOST_SEQ + 1))
        echo "@$HOST_SEQ $*" >&9
        # Longer than the runner's own limit on a card request (60 s), so a slow
        # request (a long storm) is answered, never retried while it still runs.
        while read -r -t 90 tag reply <&9; do
            if [ "$tag" = "@$HOST_SEQ" ]; then
                exec 9<&-
                echo "$reply"
                return 0
            fi
        done
        echo "@@NOTE host request '$*' got no answer (try $try)" >/dev/console
    done
    exec 9<&-
    echo '{"error":"host did not answer"}'
    return 1
}

# json_num KEY: prints the first number stored under "KEY" in the JSON on stdin.
json_num() {
    grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'
}

# card_stat N KEY: one counter of card N.
card_stat() {
    host card "$1" stats | json_num "$2"
}

# expect_faults N COUNT: this scenario provokes COUNT fault events on card N.
expect_faults() { echo "@@EXPECT-FAULTS $1 $2"; }

# Lists the PCI addresses of Metis cards.
metis_bdfs() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = 0x1f9d ] && [ "$(cat "$d/device")" = 0x1100 ] && basename "$d"
    done
}

bound_driver() {
    if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
        basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
    else
        echo none
    fi
}

dmesg_has() { dmesg | grep -q -- "$1"; }

# metis_irq_count: metis interrupts taken so far, summed over CPUs.
metis_irq_count() {
    grep metis /proc/interrupts | awk '{t=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) t+=$i; print t}'
}

# s3_cycle: one real suspend to RAM (x86 q35 with S3 enabled), woken by the
# runner through QMP system_wakeup. Returns once the guest runs again.
s3_cycle() {
    echo deep >/sys/power/mem_sleep 2>/dev/null
    echo none >/sys/power/pm_test
    host wake-after-ms 300 >/dev/null
    echo mem >/sys/power/state
}

# pm_test_cycle: suspend and resume every device without leaving the running
# state (pm_test=devices); works on every architecture.
pm_test_cycle() {
    echo 0 >/sys/module/suspend/parameters/pm_test_delay 2>/dev/null
    echo devices >/sys/power/pm_test
    if grep -q deep /sys/power/mem_sleep 2>/dev/null; then
        echo mem >/sys/power/state
    else
        echo freeze >/sys/power/state
    fi
    echo none >/sys/power/pm_test
}

# load_module NAME: insmods an upstream module and its dependencies (the
# runner lists them, dependencies first, in /lib/metis/NAME.order).
load_module() {
    while read -r ko; do
        insmod "/lib/metis/$ko" 2>/dev/null || grep -q "^$(basename "$ko" .ko | tr - _) " /proc/modules || return 1
    done <"/lib/metis/$1.order"
}

# wait_log_grows PATTERN COUNT0: waits up to 30 s until the kernel log holds
# more than COUNT0 lines matching PATTERN.
wait_log_grows() {
    for i in $(seq 300); do
        [ "$(dmesg | grep -c -- "$1")" -gt "$2" ] && return 0
        sleep 0.1
    done
    echo "no new '$1' in the kernel log after 30 s"
    return 1
}

# aer_cycle KIND [BDF]: reports a PCIe error of KIND (corrected, nonfatal or
# fatal, see tests/guest/aer_inject.c) for the card at BDF (default: the
# first) and returns once the kernel's AER handling is done with it:
# successfully, or the call fails.
aer_cycle() {
    bdf=${2:-$(metis_bdfs | head -1)}
    case $1 in
        corrected) done_pat="severity=Correctable" ;;
        *) done_pat="AER: device recovery" ;;
    esac
    n0=$(dmesg | grep -c -- "$done_pat")
    f0=$(dmesg | grep -c "AER: device recovery failed")
    aer_inject "$bdf" "$1" || return 1
    wait_log_grows "$done_pat" "$n0" || return 1
    [ "$(dmesg | grep -c "AER: device recovery failed")" = "$f0" ]
}

# hibernate_cycle STAGE: one hibernation round trip of every device, with no
# swap device configured, so nothing is written and the machine keeps running.
#   image    freeze, the memory snapshot, thaw; then writing the image
#            fails for want of swap (the kernel says so, and this checks it)
#   devices  freeze, then restore, as after booting from an image
#            (pm_test=devices; pm_test=core adds the noirq phases)
#   core
hibernate_cycle() {
    echo 0 >/sys/module/suspend/parameters/pm_test_delay 2>/dev/null
    case $1 in
        image)
            n0=$(dmesg | grep -c "Cannot find swap device")
            echo none >/sys/power/pm_test
            echo disk >/sys/power/state 2>/dev/null && { echo "hibernation wrote an image"; return 1; }
            [ "$(dmesg | grep -c "Cannot find swap device")" -gt "$n0" ]
            ;;
        devices|core)
            echo "$1" >/sys/power/pm_test
            echo disk >/sys/power/state
            r=$?
            echo none >/sys/power/pm_test
            return $r
            ;;
    esac
}
