// SPDX-License-Identifier: GPL-2.0

//! Power management and PCI recovery: system sleep (suspend/resume and
//! hibernation's freeze/thaw/poweroff/restore), `shutdown`, resets the PCI
//! core does on someone else's behalf (sysfs `reset`, VFIO) and AER.
//!
//! Each is one outage of the card: admission closes, jobs in flight get a
//! bounded time to finish and are then failed, the card is stopped; later
//! the engine and, if the card lost it, the firmware are brought back.
//!
//! The driver-model tables are in `ffi.rs`, which forwards each callback here.

use kernel::{
    bindings,
    device::Bound,
    new_mutex, pci,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Mutex,
    },
    task::Task,
    time::{
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
    fw::FwOwner,
    gate::{
        Outage,
        ParkedOutage, //
    },
    glue,
};

// TIMEOUT: how long suspend lets running jobs finish before failing them with ESHUTDOWN; users
// expect the machine to sleep within a couple of seconds of asking.
const SUSPEND_DRAIN: Delta = Delta::from_secs(2);

/// Open files and runtime PM; see [`Card::file_wake`].
#[derive(Default)]
pub(crate) struct Awake {
    /// Open files.
    pub(crate) files: u32,
    /// Whether runtime PM is managed (from the end of probe until unbind).
    pub(crate) managed: bool,
}

/// The power-management state of a card.
#[pin_data]
pub(crate) struct PmState {
    /// Open files keeping the card awake; one runtime-PM reference covers all of them.
    #[pin]
    pub(crate) awake: Mutex<Awake>,
    /// The outage of a system sleep, from suspend to resume.
    #[pin]
    pub(crate) sleep_outage: Mutex<Option<ParkedOutage>>,
    /// The outage of a reset from outside, from `reset_prepare` to `reset_done`.
    #[pin]
    pub(crate) external_outage: Mutex<Option<ParkedOutage>>,
    /// The task that resets the function for this driver, while it does (null otherwise).
    /// The PCI core runs `reset_prepare`/`reset_done` in the resetting task, so these know
    /// the reset is already handled only when they run in this one: a reset another task
    /// (a root write to sysfs `reset`) does while this one waits for the device lock is
    /// external (security review L9).
    own_reset: Atomic<*mut bindings::task_struct>,
}

impl PmState {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            awake <- new_mutex!(Awake::default(), "metis_awake"),
            sleep_outage <- new_mutex!(None, "metis_sleep_outage"),
            external_outage <- new_mutex!(None, "metis_external_outage"),
            own_reset: Atomic::new(core::ptr::null_mut()),
        })
    }

    /// Runs `reset`, a reset of the function by this driver, as its own.
    pub(crate) fn own_reset<R>(&self, reset: impl FnOnce() -> R) -> R {
        self.own_reset.store(Task::current_raw(), Relaxed);
        let res = reset();
        self.own_reset.store(core::ptr::null_mut(), Relaxed);
        res
    }

    /// Whether the reset the PCI core reports is one this driver runs.
    fn is_own_reset(&self) -> bool {
        self.own_reset.load(Relaxed) == Task::current_raw()
    }
}

/// What brought the card back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Resume from suspend, or thaw after the hibernation image was written.
    Resume,
    /// Restore from a hibernation image: whatever ran meanwhile may have used the card.
    Restore,
}

impl Card {
    /// Stops the card for system sleep; nothing runs on it until [`Self::pm_resume`].
    ///
    /// Jobs get [`SUSPEND_DRAIN`] to finish; the rest fail with `ESHUTDOWN`
    /// (retry after resume).
    pub(crate) fn pm_suspend(&self) -> Result {
        let outage = self.gate.begin_outage()?;
        if !outage.wait_alone_for(SUSPEND_DRAIN) {
            dev_warn!(
                self.pdev,
                "suspend: jobs still running after {} ms are failed with ESHUTDOWN; \
                 userspace should retry them after resume\n",
                SUSPEND_DRAIN.as_millis()
            );
        }
        // Stopped before the jobs are failed: they may release their buffers only afterwards.
        self.edma.stop_users(ESHUTDOWN);
        self.quiesce();
        self.edma.abort_users(ESHUTDOWN);
        self.wait_alone(&outage);
        *self.pm.sleep_outage.lock() = Some(outage.park());
        Ok(())
    }

    /// Brings the card back after [`Self::pm_suspend`] and reopens it.
    ///
    /// A card that kept its firmware running (suspend-to-idle, a test cycle,
    /// thaw) only gets its engine back and keeps its memory. One that lost
    /// power is booted again from the cached image; its memory is gone and
    /// every region becomes lost. Errors are logged and the card stays open,
    /// reporting its firmware state, so that a reset can be tried.
    pub(crate) fn pm_resume(&self, wake: Wake) {
        let Some(parked) = self.pm.sleep_outage.lock().take() else {
            // Suspend stopped nothing (unbind had begun, or the link had failed for good).
            return;
        };
        let outage = self.gate.resume_outage(parked);
        let start = Instant::<Monotonic>::now();
        let kept = wake == Wake::Resume && self.firmware_still_running();
        let res = if kept {
            self.reinit_engine().map(|()| None)
        } else {
            self.pm_reboot(&outage).map(Some)
        };
        match res {
            Ok(None) => dev_info!(
                self.pdev,
                "resumed in {} ms; firmware kept running, device memory kept\n",
                start.elapsed().as_millis()
            ),
            Ok(Some(count)) => dev_info!(
                self.pdev,
                "resumed in {} ms; firmware reloaded (reset {}), device memory allocated before \
                 suspend is lost\n",
                start.elapsed().as_millis(),
                count
            ),
            Err(e) => dev_err!(
                self.pdev,
                "resume failed ({:?}); the card is unusable until `metisctl reset` succeeds\n",
                e
            ),
        }
        drop(outage);
    }

    fn firmware_still_running(&self) -> bool {
        if self.fw.owner == FwOwner::Runtime {
            // Only known facts: a card that kept its L2 kept our registration in it.
            return self.registration_intact();
        }
        let running = self.boot_block();
        let st = *self.status.lock();
        matches!(running, Ok(bb) if bb.state == FwState::Ready && bb.fw_version == st.fw_version)
    }

    /// Resets a card whose state is unknown (the PM core holds the device lock)
    /// and boots the firmware; returns the reset count.
    fn pm_reboot(&self, outage: &Outage<'_>) -> Result<u32> {
        self.reset_unless_fresh()?;
        let count = self.count_reset(ResetReason::Resume);
        let res = self.reinit(outage);
        self.set_fw_status(&res);
        res?;
        glue::notify_reset(&self.pdev, count);
        Ok(count)
    }

    /// Resets the function unless the card already sits in its bootloader, as
    /// it does after a power loss or a reset done by the PCI core. The caller
    /// holds the device lock (a PM or error-recovery callback).
    fn reset_unless_fresh(&self) -> Result {
        // A runtime-owned card's bootloader state is not readable: reset it regardless.
        let fresh = self.fw.owner == FwOwner::Kernel
            && self.boot_state().is_ok_and(|s| s == FwState::Bootloader);
        if fresh {
            return Ok(());
        }
        self.pm
            .own_reset(|| glue::reset_function_locked(&self.pdev))
    }

    /// `reset_prepare`: someone else resets the function; stop the card first.
    pub(crate) fn external_reset_prepare(&self) {
        if self.pm.is_own_reset() {
            return;
        }
        let Ok(outage) = self.gate.begin_outage() else {
            return;
        };
        dev_warn!(
            self.pdev,
            "function reset requested from outside the driver\n"
        );
        self.edma.stop_users(EIO);
        self.quiesce();
        *self.pm.external_outage.lock() = Some(outage.park());
    }

    /// AER `error_detected`: returns whether the card can be recovered by a reset.
    pub(crate) fn pci_error_detected(&self, permanent: bool) -> bool {
        if permanent {
            dev_err!(
                self.pdev,
                "PCIe link failed permanently; the card is gone until the next boot\n"
            );
            self.shut();
            // A recovery that failed half-way leaves its outage open; `resume` will not come.
            self.abandon_external_outage();
            self.wait_unused();
            return false;
        }
        dev_warn!(
            self.pdev,
            "PCIe error reported; stopping the card until the link is reset\n"
        );
        self.external_reset_prepare();
        true
    }

    /// Ends an external outage whose `reset_done` or AER `resume` will not
    /// come (the link failed for good): its jobs fail with `EIO`.
    fn abandon_external_outage(&self) {
        let Some(parked) = self.pm.external_outage.lock().take() else {
            return;
        };
        let outage = self.gate.resume_outage(parked);
        self.edma.abort_users(EIO);
        self.wait_alone(&outage);
    }

    /// `reset_done` (and AER `resume`): fail what ran on the card, bring it
    /// back and reopen it.
    ///
    /// A card whose firmware still runs was not reached by the reset (a link
    /// reset that did not propagate, a hook called without one); it may still
    /// be mid-transfer, so it is reset here before the jobs let go of their
    /// memory (R4).
    pub(crate) fn external_reset_done(&self) {
        if self.pm.is_own_reset() {
            return;
        }
        let Some(parked) = self.pm.external_outage.lock().take() else {
            return;
        };
        let outage = self.gate.resume_outage(parked);
        let reset = self.reset_unless_fresh();
        if reset.is_err() {
            glue::clear_master(&self.pdev);
        }
        let count = self.count_reset(ResetReason::External);
        self.edma.abort_users(EIO);
        self.wait_alone(&outage);
        let res = reset.and_then(|()| self.reinit(&outage));
        self.set_fw_status(&res);
        match res {
            Ok(_) => {
                dev_info!(
                    self.pdev,
                    "card back after an external reset (reset {}); device memory is lost\n",
                    count
                );
                glue::notify_reset(&self.pdev, count);
            }
            Err(e) => dev_err!(
                self.pdev,
                "card did not come back after an external reset ({:?}); try `metisctl reset`\n",
                e
            ),
        }
        drop(outage);
    }
}

impl Card {
    /// Starts runtime PM (end of probe).
    pub(crate) fn rpm_start(&self, pdev: &pci::Device<Bound>) {
        self.pm.awake.lock().managed = true;
        glue::rpm_enable(pdev);
    }

    /// Stops runtime PM (unbind); files closed later no longer touch it.
    pub(crate) fn rpm_stop(&self) {
        let mut a = self.pm.awake.lock();
        if !a.managed {
            return;
        }
        a.managed = false;
        glue::rpm_disable(&self.pdev, a.files > 0);
    }

    /// An open file keeps the card awake (its resume queued if it was runtime-suspended).
    pub(crate) fn file_wake(&self) -> Result {
        let mut a = self.pm.awake.lock();
        if a.managed && a.files == 0 {
            glue::rpm_get(&self.pdev)?;
        }
        a.files += 1;
        Ok(())
    }

    /// The last open file closing lets the card autosuspend.
    pub(crate) fn file_sleep(&self) {
        let mut a = self.pm.awake.lock();
        a.files -= 1;
        if a.managed && a.files == 0 {
            glue::rpm_put(&self.pdev);
        }
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_pm)]
mod tests {
    use super::*;
    use kernel::sync::{
        completion::Completion,
        Arc, //
    };

    #[pin_data]
    struct Probe {
        #[pin]
        pm: PmState,
        #[pin]
        done: Completion,
        /// What another task saw: -1 not yet, 0 not its own reset, 1 its own.
        seen: Atomic<i32>,
    }

    /// Security review L9: while this task resets the function, a reset that another task
    /// reports (a root write to sysfs `reset` that won the device lock meanwhile) is not
    /// taken for this one.
    #[test]
    fn own_reset_belongs_to_the_resetting_task() -> Result {
        let p = Arc::pin_init(
            pin_init!(Probe {
                pm <- PmState::new(),
                done <- Completion::new(),
                seen: Atomic::new(-1),
            }),
            GFP_KERNEL,
        )?;
        assert!(!p.pm.is_own_reset());
        let inside = p.pm.own_reset(|| -> Result<bool> {
            let other = p.clone();
            kernel::workqueue::system_highpri().try_spawn(GFP_KERNEL, move || {
                other
                    .seen
                    .store(i32::from(other.pm.is_own_reset()), Relaxed);
                other.done.complete_all();
            })?;
            p.done.wait_for_completion();
            Ok(p.pm.is_own_reset())
        })?;
        assert!(inside);
        assert_eq!(p.seen.load(Relaxed), 0);
        assert!(!p.pm.is_own_reset());
        Ok(())
    }
}
