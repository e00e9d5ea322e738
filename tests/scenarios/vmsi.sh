#!/bin/sh
# configs: all
# Virtual MSI (R1.2): every firmware boot clears the table's registration (a
# firmware that starts re-initialises its host-driver area), and the driver
# registers again after the boot, after a reset and after a resume, so the
# card never writes a word to an unregistered table. After unbind the
# registration is withdrawn: a message the card raises then is the R1.2
# fault, which the emulated card reports, and nothing reaches the host.
# (After a real S3 the table is also replaced: runtime-owned.sh, where no
# firmware upload hides a mapping the platform dropped.)
. /lib/metis/lib.sh
expect_faults 0 1
bdf=$(metis_bdfs | head -1)
unreg() { n=$(card_stat 0 vmsi_unregistered); echo "${n:-0}"; }
check insmod insmod /lib/metis/metis.ko
w0=$(card_stat 0 vmsi_writes)
check echo_after_boot metisctl cmd echo "registered after the boot"
check_eq command_signalled_through_table 1 "$(( $(card_stat 0 vmsi_writes) > w0 ))"
check reset metisctl reset
check echo_after_reset metisctl cmd echo "registered after the reset"
check suspend_resume pm_test_cycle
check echo_after_resume metisctl cmd echo "registered after resume"
check_eq never_unregistered 0 "$(unreg)"
check rmmod rmmod metis
host card 0 inject device-msg >/dev/null
sleep 0.2
check_eq withdrawn_on_unbind 1 "$(unreg)"
