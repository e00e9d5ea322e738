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
rmmod metis
