#!/bin/sh
# configs: all
# Independent check of the eDMA model: upstream dw-edma (which nobody here
# wrote) drives the emulated engine through the dmaengine slave API
# (tests/kmod/edma_check.ko) and the data must round-trip intact.
. /lib/metis/lib.sh

bdf=$(for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = 0x16c3 ] && [ "$(cat $d/device)" = 0xedda ] && basename $d; done | head -1)
check_eq synopsys_identity_enumerated 1 "$([ -n "$bdf" ] && echo 1)"
# virt-dma is built in on some configurations and a module on others.
[ -f /lib/metis/virt-dma.ko ] && insmod /lib/metis/virt-dma.ko
check insmod_dw_edma insmod /lib/metis/dw-edma.ko
check insmod_dw_edma_pcie insmod /lib/metis/dw-edma-pcie.ko
check_eq dw_edma_pcie_bound dw-edma-pcie "$(bound_driver $bdf)"
insmod /lib/metis/edma_check.ko
# Translate the module's KTAP into our TAP lines.
dmesg | sed 's/^\[[^]]*\] *//' | grep -E '^(not )?ok [0-9]+ edma_' | while read -r st a b rest; do
    if [ "$st" = ok ]; then echo "@@TAP ok dwedma.$b"; else echo "@@TAP not ok dwedma.$(echo "$rest" | cut -d' ' -f1) $rest"; fi
done
summary=$(dmesg | grep -o 'edma_check: pass:[0-9]* fail:[0-9]*' | tail -1)
check_eq edma_check_summary_present 1 "$([ -n "$summary" ] && echo 1)"
check_eq edma_check_no_failures "fail:0" "$(echo "$summary" | grep -o 'fail:[0-9]*')"
# A failed transfer is easier to explain with the engine's own view of it.
case $summary in *fail:0) ;; *)
    echo "@@NOTE card1 engine after a failed dw-edma case: $(host card 1 stats | grep -o '"edma":.*' | cut -c1-1500)" ;;
esac
rmmod edma_check 2>/dev/null
check rmmod_dw_edma_pcie rmmod dw_edma_pcie
check_eq synopsys_card_faults 0 "$(card_stat 1 faults_total)"
