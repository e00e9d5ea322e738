#!/bin/sh
# configs: all
# B11: a firmware that publishes an area outside BAR2 or an impossible
# virtual-MSI count is refused with one line that names the field and the
# value, before anything uses it (the vendor driver trusts these and turns a
# bad firmware into a kernel out-of-bounds access); so is free device memory
# that overlaps the firmware's image. No splat; the card works
# again once its firmware publishes sane values. Each injection takes effect
# when the card next writes its structure: the bootloader's after a reset,
# the firmware's when the driver boots it.
. /lib/metis/lib.sh
bdf=$(metis_bdfs | head -1)
fresh_card() { echo 1 >/sys/bus/pci/devices/$bdf/reset; }

refused() {  # NAME MESSAGE
    dmesg -c >/dev/null
    insmod /lib/metis/metis.ko
    check_eq "${1}_not_bound" none "$(bound_driver $bdf)"
    check "${1}_explained" dmesg_has "$2"
    rmmod metis 2>/dev/null
}

host card 0 inject bad-area hdrv >/dev/null
fresh_card
refused bootloader_hdrv "the card's firmware published a bad host-driver area (0x"

fresh_card
host card 0 inject bad-vmsi-count >/dev/null
refused firmware_vmsi "the card's firmware published a bad num_vmsi (0x1388)"

fresh_card
host card 0 inject bad-area desc >/dev/null
refused firmware_desc "the card's firmware published a bad descriptor area (0x"

# Security review L8: free device memory that starts over the firmware's own
# image (users could DMA and FILL over it) is refused too.
fresh_card
host card 0 inject bad-mem-base >/dev/null
refused mem_base_over_firmware "the firmware's free device memory (0x101000000..0x"
host card 0 clear >/dev/null

check_eq no_kernel_warning 0 "$(dmesg | grep -c -e 'WARNING:' -e 'BUG:' -e 'Oops')"

# Sane values again: the card works.
fresh_card
dmesg -c >/dev/null
check insmod insmod /lib/metis/metis.ko
check_eq bound metis "$(bound_driver $bdf)"
check checksum metisctl cmd checksum --len 64K
check rmmod rmmod metis
