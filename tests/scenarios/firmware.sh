#!/bin/sh
# configs: all
# Firmware checks happen before the card sees anything (R1.4): a file built
# for another interface version or with a bad checksum is refused with one
# line naming the problem, and the card's bootloader never gets a BOOT
# command. A card whose firmware never reports ready fails probe cleanly.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
boots() { n=$(host card 0 stats | grep -o '"fw_commands":{[^}]*}' | grep -o '"BOOT":[0-9]*' | cut -d: -f2); echo "${n:-0}"; }
b0=$(boots)

# refused NAME FILE MESSAGE: probe with FILE fails, says MESSAGE, and the
# card never receives a BOOT command.
refused() {
    dmesg -c >/dev/null
    insmod /lib/metis/metis.ko firmware="$2"
    check_eq "${1}_not_bound" none "$(bound_driver $bdf)"
    check "${1}_explained" dmesg_has "$3"
    check_eq "${1}_never_sent_to_card" "$b0" "$(boots)"
    rmmod metis
}

refused mismatch axelera/metis-fw-if2.bin "implements interface 2.0 but this driver implements interface 1.x"
refused badcrc axelera/metis-fw-badcrc.bin "is not a valid Metis image (BadPayloadCrc)"
refused missing axelera/does-not-exist.bin "can't load firmware axelera/does-not-exist.bin"

dmesg -c >/dev/null
host card 0 inject fw-no-ready >/dev/null
insmod /lib/metis/metis.ko
check_eq no_ready_not_bound none "$(bound_driver $bdf)"
check no_ready_explained dmesg_has "firmware did not start"
rmmod metis

# After all that, a good image still boots.
dmesg -c >/dev/null
insmod /lib/metis/metis.ko
check_eq good_bound metis "$(bound_driver $bdf)"
check good_booted dmesg_has "firmware 1.2.3 (interface 1.0)"

# A firmware update that turns out to be the wrong file: `metisctl fw load`
# is refused before the card is touched, and the card keeps running.
fw=/lib/firmware/axelera/metis-fw-if1.bin
cp $fw /tmp/good.bin
cp /lib/firmware/axelera/metis-fw-if2.bin $fw
b1=$(boots)
dmesg -c >/dev/null
check_eq reload_wrong_file_fails 1 "$(metisctl fw load >/dev/null 2>&1; echo $?)"
check reload_wrong_file_explained dmesg_has "implements interface 2.0"
check_eq reload_wrong_file_not_sent "$b1" "$(boots)"
check_eq reload_wrong_file_no_reset 0 "$(metisctl --json info | json_num reset_count)"
check still_running_after_refused_reload metisctl cmd echo still-here
cp /tmp/good.bin $fw
check reload_good_file metisctl fw load
check_eq reload_booted_once $((b1 + 1)) "$(boots)"

# Firmware that does not come back after a reset: the reset fails with the
# card marked failed, and the next reset recovers it without a module reload.
host card 0 inject fw-no-ready >/dev/null
check_eq reset_without_firmware_fails 1 "$(metisctl reset >/dev/null 2>&1; echo $?)"
check_eq fw_state_failed 1 "$(metisctl fw status | grep -ci failed)"
check reset_recovers metisctl reset
check_eq fw_ready_again 1 "$(metisctl fw status | grep -ci ready)"
check echo_after_recovery metisctl cmd echo recovered
rmmod metis
