// SPDX-License-Identifier: GPL-2.0

//! Card reset: a function-level reset, after which the engine, the interrupt
//! signalling and the firmware are brought back without reloading the module.
//!
//! Order matters (field report R4): the reset stops the card *before* the
//! jobs that were using it let go of their host memory. Only then are those
//! jobs failed with `EIO`; the card is reopened once its firmware runs again.
//! Device memory does not survive, so every region becomes lost (`ESTALE`).

use kernel::{
    prelude::*,
    time::{
        delay::fsleep,
        Delta,
        Instant,
        Monotonic, //
    },
};

use crate::{
    boot::FwState,
    card::{
        Card,
        ResetReason, //
    },
    fw::{
        FwInfo,
        FwOwner, //
    },
    gate::Outage,
    glue,
    irq::IrqMode,
};

// TIMEOUT: the device lock is held by probe, remove, system sleep and sysfs resets, each of which
// finishes in well under a second on a healthy system.
const LOCK_WAIT: Delta = Delta::from_secs(5);
// TIMEOUT: a 64-byte round trip; a completion not seen after a second is not coming.
const ENGINE_TEST_TIMEOUT: Delta = Delta::from_secs(1);
// TIMEOUT: the bootloader is up as soon as the function reset completes; slack for slow hosts.
const BOOTLOADER_WAIT: Delta = Delta::from_secs(1);

impl Card {
    /// Masks every interrupt source of the card and stops its engine.
    pub(crate) fn quiesce(&self) {
        self.settle_command();
        // The firmware first, so that it writes no more virtual-MSI words.
        self.withdraw_vmsi();
        let _ = self.edma.off();
    }

    /// Cuts a card that no longer obeys off the bus at once (bus mastering off,
    /// so nothing it still has queued reaches host memory that its jobs are about
    /// to release, R4) and asks for a reset. Until the reset, no job may program
    /// the card: a channel that ignored its stop must not be handed to the next
    /// job, whose wait its late completion would end.
    pub(crate) fn cut_off(&self, why: &'static str) {
        glue::clear_master(&self.pdev);
        self.edma.stop_users(EIO);
        self.request_recovery(why);
    }

    /// After a timeout: a card that left the running state by itself (a surprise
    /// reset, a power glitch) is reset and brought back.
    pub(crate) fn check_health(&self) {
        // A runtime-owned card's state is the runtime's to judge (and not readable: the boot
        // block is ours, not the card's).
        if self.fw.owner == FwOwner::Runtime || self.status.lock().fw_state != FwState::Ready {
            // Probe or a reset is bringing the card up; it owns the recovery.
            return;
        }
        let state = self.boot_state();
        if matches!(state, Ok(s) if s != FwState::Ready) {
            dev_err!(
                self.pdev,
                "the card left the running state by itself (state {:?}); it will be reset\n",
                state
            );
            self.request_recovery("the card reset itself");
        }
    }

    /// Asks for a reset once the current operation has left the gate.
    pub(crate) fn request_recovery(&self, why: &'static str) {
        *self.recovery.lock() = Some(why);
    }

    /// Runs the reset [`Self::request_recovery`] asked for, if any. Called by
    /// file operations and jobs after they left the gate.
    pub(crate) fn recover_if_needed(&self) {
        let Some(why) = self.recovery.lock().take() else {
            return;
        };
        let start = Instant::<Monotonic>::now();
        if self.reset(ResetReason::Recovery(why)).is_ok() {
            dev_info!(
                self.pdev,
                "recovered from \"{}\" in {} ms\n",
                why,
                start.elapsed().as_millis()
            );
        }
    }

    /// Resets the card and boots the cached firmware; `why` goes to the log and to sysfs.
    ///
    /// Jobs running on the card fail with `EIO`; callers arriving meanwhile wait
    /// and then run on the fresh card. Fails with `ENODEV` if the card is being
    /// unbound, and with `EIO` if the firmware does not come back (the card then
    /// reports `METIS_FW_FAILED` and another reset may be tried).
    pub(crate) fn reset(&self, why: ResetReason) -> Result {
        let outage = self.gate.begin_outage()?;
        let start = Instant::<Monotonic>::now();
        dev_warn!(self.pdev, "resetting the card: {}\n", why);
        self.edma.stop_users(EIO);
        self.quiesce();
        if let Err(e) = self.function_reset() {
            // Not known to be stopped: cut it off the bus before its jobs let go of their memory.
            glue::clear_master(&self.pdev);
            self.edma.abort_users(EIO);
            self.wait_alone(&outage);
            self.status.lock().fw_state = FwState::Failed;
            dev_err!(
                self.pdev,
                "card reset failed ({:?}); the card is off the bus. Try `metisctl reset` again \
                 or power-cycle the machine\n",
                e
            );
            return Err(e);
        }
        let count = self.count_reset(why);
        // The card is stopped: jobs may now give back their memory.
        self.edma.abort_users(EIO);
        self.wait_alone(&outage);
        if self.closing() {
            return Err(ENODEV);
        }
        let res = self.reinit(&outage);
        self.set_fw_status(&res);
        res?;
        dev_info!(
            self.pdev,
            "card reset done in {} ms (reset {}); device memory allocated before it is lost\n",
            start.elapsed().as_millis(),
            count
        );
        glue::notify_reset(&self.pdev, count);
        Ok(())
    }

    /// Resets the PCI function, saving and restoring its configuration, and
    /// waits for the bootloader.
    fn function_reset(&self) -> Result {
        let start = Instant::<Monotonic>::now();
        loop {
            let res = self.pm.own_reset(|| glue::try_reset_function(&self.pdev));
            match res {
                Err(e) if e == EAGAIN => {
                    if self.closing() {
                        return Err(ENODEV);
                    }
                    if start.elapsed() > LOCK_WAIT {
                        return Err(EBUSY);
                    }
                    fsleep(Delta::from_millis(10));
                }
                r => break r?,
            }
        }
        match self.fw.owner {
            FwOwner::Kernel => self.wait_bootloader(BOOTLOADER_WAIT),
            // The PCI core waited for the function to answer again; what the card's own
            // bootloader does next is not known.
            FwOwner::Runtime => Ok(()),
        }
    }

    /// Brings a card fresh out of reset back to work: engine, interrupt
    /// signalling from the current MSI message, firmware.
    pub(crate) fn reinit(&self, outage: &Outage<'_>) -> Result<FwInfo> {
        let dev = outage.device();
        // The card lost its state, so its registration of the table too: a new table is
        // mapped afresh (see `Vmsi::renew`). On failure the old one serves.
        if let Err(e) = self.vmsi.renew(dev) {
            dev_warn!(
                self.pdev,
                "could not allocate a new interrupt table ({:?}); keeping the old one\n",
                e
            );
        }
        self.reinit_engine()?;
        if self.fw.owner == FwOwner::Runtime {
            // Nothing of the driver's moves data now (the firmware would have): prove the
            // engine and its completions work before userspace is told to load firmware.
            self.self_test(dev, ENGINE_TEST_TIMEOUT).inspect_err(|e| {
                dev_err!(
                    self.pdev,
                    "the DMA engine does not work after the reset ({:?})\n",
                    e
                )
            })?;
            self.firmware_lost();
            return Ok(FwInfo {
                version: 0,
                if_version: 0,
            });
        }
        self.boot_firmware(dev).inspect_err(|e| {
            dev_err!(
                self.pdev,
                "firmware did not come back after the reset ({:?})\n",
                e
            )
        })
    }

    /// Re-enables the engine and its interrupt signalling; the IMWR message is
    /// read again, since the kernel may have moved the vector meanwhile.
    pub(crate) fn reinit_engine(&self) -> Result {
        glue::set_master(&self.pdev);
        self.edma.off()?;
        let mode = self.edma.irq_mode();
        let msi = match mode {
            IrqMode::Msi | IrqMode::MsiX => Some(glue::msi_msg(&self.pdev, 0)?),
            IrqMode::Intx | IrqMode::Poll => None,
        };
        self.edma.on(mode, msi)?;
        // What the card publishes now (a reset brings back the bootloader's areas).
        self.adopt_interface()
    }

    /// Records the outcome of bringing the firmware back.
    pub(crate) fn set_fw_status(&self, res: &Result<FwInfo>) {
        let mut st = self.status.lock();
        match res {
            // Runtime-owned: the engine is back, the firmware is the runtime's to load.
            Ok(_) if self.fw.owner == FwOwner::Runtime => {
                st.fw_state = FwState::Bootloader;
                st.fw_version = 0;
                st.fw_if_version = 0;
            }
            Ok(fw) => {
                st.fw_state = FwState::Ready;
                st.fw_version = fw.version;
                st.fw_if_version = fw.if_version;
            }
            Err(_) => st.fw_state = FwState::Failed,
        }
    }

    /// Marks device memory lost (every region fails once with `ESTALE`); returns the reset count.
    pub(crate) fn count_reset(&self, why: ResetReason) -> u32 {
        let mut st = self.status.lock();
        st.reset_count = st.reset_count.wrapping_add(1);
        st.last_reset = Some(why);
        st.fw_state = FwState::Bootloader;
        st.reset_count
    }
}
