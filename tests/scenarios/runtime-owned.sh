#!/bin/sh
# configs: x86-none x86-translated arm64-none arm64-translated
# cards: --no-boot-protocol --d3-loses-state
# A card whose bootloader does not advertise the boot protocol this driver
# implements (as on a real Metis) gets runtime-owned firmware: the driver
# never sends it a model command, moves data and takes interrupts, and after
# the card loses its firmware (S3 on x86, a reset elsewhere) it restores the
# engine and the virtual-MSI registration and tells userspace through a
# uevent and POLLPRI. The runtime then loads the firmware: its own upload and
# boot are simulated on the card's side (inject runtime-boot: the vendor
# runtime does that through its mapping of the card), its kernel step is
# METIS_IOCTL_FW_CHANGED (metisctl fw changed). Not on x86-pt: passthrough
# maps DMA as no IOMMU does, and both x86-none and x86-translated run (CI time).
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
faults0=$(card_stat 0 faults_total)
unreg() { n=$(card_stat 0 vmsi_unregistered); echo "${n:-0}"; }
dmesg -c >/dev/null
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
check owner_logged dmesg_has "firmware is runtime-owned: the card's bootloader does not advertise"
check_eq info_owner runtime "$(metisctl --json info | grep -o '"fw_owner": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"')"
check_eq no_firmware_yet 1 "$(metisctl --json info | grep -c '"fw_state": *"bootloader"')"
check_eq cmd_refused 1 "$(metisctl cmd echo hi 2>&1 | grep -c -i 'not supported')"

# The runtime loads its firmware, then tells the driver.
host card 0 inject runtime-boot >/dev/null
sleep 0.3
check fw_changed metisctl fw changed
check_eq registered_after_changed 1 "$(host card 0 stats | grep -o '"ctrl": *[0-9]*' | head -1 | grep -o '[0-9]*$')"
w0=$(card_stat 0 vmsi_writes)
host card 0 inject device-msg >/dev/null
sleep 0.2
check_eq device_message_through_table 1 "$(( $(card_stat 0 vmsi_writes) > ${w0:-0} ))"

case $METIS_CONFIG in
    x86-*) lose=". /lib/metis/lib.sh; s3_cycle" ;;
    *) lose="metisctl reset" ;;
esac
metis_test /dev/metis0 fw-lost "$lose" ". /lib/metis/lib.sh; host card 0 inject runtime-boot >/dev/null; sleep 0.3"
check lost_logged dmesg_has "the card's firmware is gone; the runtime must load it again"
check_eq never_unregistered 0 "$(unreg)"
# The engine was reset with the card: enabled again by the driver alone.
check_eq engine_restored 2 "$(host card 0 stats | grep -o '"engine_en": *1' | wc -l)"
i0=$(metis_irq_count)
w0=$(card_stat 0 vmsi_writes)
host card 0 inject device-msg >/dev/null
sleep 0.2
check_eq message_after_reload_in_table 1 "$(( $(card_stat 0 vmsi_writes) > w0 ))"
[ "$(metisctl info | sed -n 's/^irq_mode *//p')" = poll ] ||
    check_eq message_after_reload_interrupts 1 "$(( $(metis_irq_count) > i0 ))"
# Only the runtime's two BOOTs reached the card: the driver sent nothing.
check_eq only_runtime_boots 2 "$(card_stat 0 BOOT)"
check_eq driver_sent_no_command "" "$(host card 0 stats | grep -o '"fw_commands":{[^}]*}' | grep -o '"[A-Z]*"' | grep -v BOOT)"
check_eq no_card_faults "$faults0" "$(card_stat 0 faults_total)"
check rmmod rmmod metis
