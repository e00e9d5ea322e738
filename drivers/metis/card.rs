// SPDX-License-Identifier: GPL-2.0

//! State of one card shared by the probe path, the interrupt handler and
//! (later) open files, which may all outlive each other.
//!
//! The BARs are device-managed: once the card is unbound every access path
//! sees `ENODEV` instead of touching unmapped registers. Register bursts run
//! under the RCU guard of the BAR and never sleep; waits happen outside it.

use kernel::{
    device::Bound,
    new_poll_condvar, pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_condvar,
        new_mutex,
        new_spinlock_irq,
        poll::PollCondVar,
        Arc,
        CondVar,
        Mutex,
        SpinLockIrq,
        SpinLockIrqGuard, //
    },
    time::{
        delay::fsleep,
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
};

use crate::{
    edma::{
        service_dir,
        Dir,
        Events, //
    },
    fw::FwOwner,
    gate::{
        Admission,
        Gate,
        HasGate,
        Outage,
        OwnedAdmission,
        ParkedOutage, //
    },
    iface::Iface,
    irq::IrqMode,
    mem::DevMem,
    regs::{
        self,
        edma, //
    },
    vmsi::{
        self,
        Vmsi, //
    },
};

/// BAR0: the eDMA registers.
pub(crate) type EdmaBar<'a> = pci::Bar<'a, { regs::BAR0_SIZE }>;
/// BAR2: the window onto L2, with the firmware's interface structure.
pub(crate) type L2Bar<'a> = pci::Bar<'a, { regs::BAR2_SIZE }>;

// TIMEOUT: a reset or suspend stops the card within a few hundred ms (FLR takes 100 ms).
const CARD_STOP_WAIT: Delta = Delta::from_secs(10);

/// The validated firmware image, kept for resets and resume.
pub(crate) struct FwStore {
    pub(crate) image: KVVec<u8>,
    /// Where the bootloader takes images, and how large they may be (fixed per card).
    pub(crate) load_addr: u64,
    pub(crate) max_size: u32,
}

/// What probe learned, for `METIS_IOCTL_INFO`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Status {
    pub(crate) mem_size: u64,
    pub(crate) fw_state: u32,
    pub(crate) fw_version: u32,
    pub(crate) fw_if_version: u32,
    pub(crate) iommu_mode: u32,
    pub(crate) irq_vectors: u32,
    /// Card resets since probe; also the generation of device-memory contents.
    pub(crate) reset_count: u32,
}

/// One bound card.
#[pin_data]
pub(crate) struct Card {
    pub(crate) pdev: ARef<pci::Device>,
    pub(crate) edma_bar: pci::DevresBar<{ regs::BAR0_SIZE }>,
    pub(crate) l2: pci::DevresBar<{ regs::BAR2_SIZE }>,
    /// The virtual-MSI table the firmware marks.
    #[pin]
    pub(crate) vmsi: Vmsi,
    /// What the running firmware (or the bootloader) published, checked.
    #[pin]
    pub(crate) iface: Mutex<Option<Iface>>,
    /// Who loads the firmware; fixed at probe.
    pub(crate) fw_owner: FwOwner,
    /// Runtime-owned: the firmware was lost and userspace has not loaded a new one yet.
    pub(crate) fw_lost: Atomic<bool>,
    /// Signalled when `fw_lost` changes; open files poll on it.
    #[pin]
    pub(crate) fw_event: PollCondVar,
    /// Events the interrupt handler (or a poller) took off the card.
    #[pin]
    pub(crate) events: SpinLockIrq<Events>,
    /// Signalled whenever `events` gains a bit.
    #[pin]
    pub(crate) event_cv: CondVar,
    /// Busy data channels, one bit per channel and direction.
    #[pin]
    pub(crate) busy: Mutex<[u8; 2]>,
    #[pin]
    pub(crate) busy_cv: CondVar,
    /// Serialises the firmware command slot.
    #[pin]
    pub(crate) mailbox: Mutex<()>,
    /// Admission of work, and outages.
    #[pin]
    pub(crate) gate: Gate,
    /// The outage of a system sleep, from suspend to resume.
    #[pin]
    pub(crate) sleep_outage: Mutex<Option<ParkedOutage>>,
    /// Device memory handed out to files.
    #[pin]
    pub(crate) mem: Mutex<DevMem>,
    #[pin]
    pub(crate) status: Mutex<Status>,
    /// The firmware image the card runs.
    #[pin]
    pub(crate) fw: Mutex<FwStore>,
    /// The MSI message last written to the IMWR registers.
    #[pin]
    pub(crate) imwr: Mutex<Option<(u64, u32)>>,
    pub(crate) bytes_to_device: Atomic<u64>,
    pub(crate) bytes_from_device: Atomic<u64>,
    /// Set while this driver resets the function itself, so that the PCI core's
    /// `reset_prepare`/`reset_done` callbacks know the reset is already handled.
    pub(crate) own_reset: Atomic<bool>,
    /// Open files keeping the card awake, and whether runtime PM is still
    /// managed (until unbind). One runtime-PM reference covers all files.
    #[pin]
    pub(crate) awake: Mutex<(u32, bool)>,
    /// Why the card must be reset once the current operation has left the gate.
    #[pin]
    pub(crate) recovery: Mutex<Option<&'static str>>,
    /// The outage of a reset from outside, from `reset_prepare` to `reset_done`.
    #[pin]
    pub(crate) external_outage: Mutex<Option<ParkedOutage>>,
    /// [`IrqMode`] as `u32`; changes only while no job runs (probe, fallback).
    irq_mode: Atomic<u32>,
    /// Linux interrupt number of vector 0 (0: none), for the storm fallback.
    pub(crate) irq_number: Atomic<u32>,
    /// Interrupts that found work, for diagnostics.
    pub(crate) irqs: Atomic<u64>,
    /// Completions recovered from the status registers after their interrupt never came.
    pub(crate) lost_irqs: Atomic<u64>,
    /// Whether a wait that times out looks for a completion whose interrupt was lost
    /// (off during the interrupt self-test, which must see interrupts arrive).
    pub(crate) recover_lost: Atomic<bool>,
    pub(crate) wr_channels: u32,
    pub(crate) rd_channels: u32,
}

impl Card {
    pub(crate) fn new(
        pdev: &pci::Device<Bound>,
        edma_bar: pci::DevresBar<{ regs::BAR0_SIZE }>,
        l2: pci::DevresBar<{ regs::BAR2_SIZE }>,
        iface: Iface,
        fw_owner: FwOwner,
        wr_channels: u32,
        rd_channels: u32,
    ) -> Result<Arc<Self>> {
        let vmsi = Vmsi::new(pdev.as_ref(), iface.vmsi_count)?;
        let pdev: &pci::Device = pdev;
        let gate_dev: ARef<pci::Device> = pdev.into();
        Arc::pin_init(
            pin_init!(Self {
                pdev: pdev.into(),
                edma_bar,
                l2,
                vmsi <- vmsi,
                iface <- new_mutex!(Some(iface), "metis_iface"),
                fw_owner,
                fw_lost: Atomic::new(false),
                fw_event <- new_poll_condvar!("metis_fw_event"),
                events <- new_spinlock_irq!(Events::default(), "metis_events"),
                event_cv <- new_condvar!("metis_event_cv"),
                busy <- new_mutex!([0u8; 2], "metis_busy"),
                busy_cv <- new_condvar!("metis_busy_cv"),
                mailbox <- new_mutex!((), "metis_mailbox"),
                gate <- Gate::new(gate_dev),
                sleep_outage <- new_mutex!(None, "metis_sleep_outage"),
                mem <- new_mutex!(DevMem::new(0, 0), "metis_mem"),
                status <- new_mutex!(Status::default(), "metis_status"),
                fw <- new_mutex!(
                    FwStore {
                        image: KVVec::new(),
                        load_addr: 0,
                        max_size: 0
                    },
                    "metis_fw"
                ),
                imwr <- new_mutex!(None, "metis_imwr"),
                bytes_to_device: Atomic::new(0),
                bytes_from_device: Atomic::new(0),
                own_reset: Atomic::new(false),
                recovery <- new_mutex!(None, "metis_recovery"),
                awake <- new_mutex!((0, false), "metis_awake"),
                external_outage <- new_mutex!(None, "metis_external_outage"),
                irq_mode: Atomic::new(IrqMode::Poll as u32),
                irq_number: Atomic::new(0),
                irqs: Atomic::new(0),
                lost_irqs: Atomic::new(0),
                recover_lost: Atomic::new(false),
                wr_channels,
                rd_channels,
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn irq_mode(&self) -> IrqMode {
        IrqMode::from_raw(self.irq_mode.load(Relaxed))
    }

    pub(crate) fn set_irq_mode(&self, mode: IrqMode) {
        self.irq_mode.store(mode as u32, Relaxed);
    }

    /// Runs a register burst on the eDMA registers; `ENODEV` once the card is unbound.
    pub(crate) fn with_edma<R>(&self, f: impl for<'a> FnOnce(&EdmaBar<'a>) -> R) -> Result<R> {
        let bar = self.edma_bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    /// Runs accesses to L2 (the interface structure); `ENODEV` once the card is unbound.
    pub(crate) fn with_l2<R>(&self, f: impl for<'a> FnOnce(&L2Bar<'a>) -> R) -> Result<R> {
        let bar = self.l2.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    /// Takes pending events off the card: reads each status register once,
    /// clears what it saw and latches it. Returns whether anything was pending.
    ///
    /// Called from the interrupt handler and by pollers; safe in atomic context.
    pub(crate) fn service(&self) -> bool {
        // Read, clear and latch in one section under the events lock, the
        // lock under which a channel's status is cleared before its doorbell
        // and after its stop: a read taken before such a clear can never be
        // latched after it.
        let mut ev = self.events.lock();
        let seen = self.with_edma(|b0| {
            let wr = service_dir::<edma::Wr>(b0);
            let rd = service_dir::<edma::Rd>(b0);
            (wr, rd)
        });
        // Other firmware sources (device messages, AI cores) are taken off the
        // table, which is all the driver does with them yet.
        let sources = self.vmsi.take();
        let mbox = sources & (1 << vmsi::SRC_COMMAND) != 0;
        // A card that does not answer (unbound) has nothing pending in its engine.
        let ((wd, wa), (rd, ra)) = seen.unwrap_or(((0, 0), (0, 0)));
        if wd | wa | rd | ra == 0 && sources == 0 {
            return false;
        }
        ev.done[Dir::Wr as usize] |= wd;
        ev.abort[Dir::Wr as usize] |= wa;
        ev.done[Dir::Rd as usize] |= rd;
        ev.abort[Dir::Rd as usize] |= ra;
        ev.mailbox |= mbox;
        drop(ev);
        self.event_cv.notify_all();
        true
    }

    /// Waits until `take` finds its event in the latched events, up to `timeout`.
    ///
    /// In polling mode the status registers are read here; otherwise the
    /// interrupt handler latches events and this only sleeps. A pending signal
    /// (or the freezer) ends the wait early with `ERESTARTSYS`, so the call is
    /// restarted after the signal or the system sleep; the caller must stop whatever it
    /// started before it lets go of the memory involved.
    ///
    /// During an outage (reset, resume, external reset) signals are ignored: the
    /// outage runs in whatever task triggered it (a shell writing sysfs `reset`,
    /// the task suspending the system), whose signals are not its business. Such
    /// a wait polls, since the condition variable only has interruptible timed waits.
    pub(crate) fn wait_event<T>(
        &self,
        timeout: Delta,
        mut take: impl FnMut(&mut Events) -> Option<T>,
    ) -> Result<T> {
        let start = Instant::<Monotonic>::now();
        let mut poll_sleep = Delta::from_micros(20);
        loop {
            let deaf = kernel::current!().signal_pending() && self.gate.in_outage();
            let polling = deaf || self.irq_mode() == IrqMode::Poll;
            if polling {
                self.service();
            }
            let mut ev = self.events.lock();
            if ev.dead {
                return Err(ENODEV);
            }
            if let Some(e) = ev.aborted {
                return Err(e);
            }
            if let Some(v) = take(&mut ev) {
                return Ok(v);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                drop(ev);
                // Before giving up, read the status registers once: an event whose
                // interrupt was lost on the way is still latched on the card.
                if !polling && self.recover_lost.load(Relaxed) && self.service() {
                    if let Some(v) = take(&mut self.events.lock()) {
                        self.lost_irqs.fetch_add(1, Relaxed);
                        dev_warn!(
                            self.pdev,
                            "completion found in the status registers without its interrupt \
                             (lost interrupt); continuing\n"
                        );
                        return Ok(v);
                    }
                }
                return Err(ETIMEDOUT);
            }
            if polling {
                drop(ev);
                if !deaf && kernel::current!().signal_pending() {
                    return Err(ERESTARTSYS);
                }
                fsleep(poll_sleep);
                // Back off to 1 ms so a long transfer does not hog a CPU.
                poll_sleep = Delta::from_micros((poll_sleep.as_micros_ceil() * 2).min(1000));
                continue;
            }
            let left = timeout - elapsed;
            let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
            if let kernel::sync::CondVarTimeoutResult::Signal { .. } = self
                .event_cv
                .wait_interruptible_timeout(&mut ev, msecs_to_jiffies(ms))
            {
                drop(ev);
                // A signal that arrives during the sleep of an outage's wait is
                // ignored like one that was there before it: the next round
                // finds the signal and polls.
                if self.gate.in_outage() {
                    continue;
                }
                return Err(ERESTARTSYS);
            }
        }
    }

    /// Drops every latched event (the interrupt mode changed under them).
    pub(crate) fn forget_events(&self) {
        *self.events.lock() = Default::default();
    }

    /// Lets files submit work (end of probe).
    pub(crate) fn open_gate(&self) {
        self.events.lock().dead = false;
        self.gate.open();
    }

    /// Admits one operation from a file; see [`Gate::enter`].
    pub(crate) fn enter(&self) -> Result<Admission<'_>> {
        self.gate.enter()
    }

    /// As [`Self::enter`], for work that outlives the caller.
    pub(crate) fn enter_owned(self: &Arc<Self>) -> Result<OwnedAdmission<Card>> {
        OwnedAdmission::new(self.clone())
    }

    /// Whether unbind has started (the gate no longer admits anyone).
    pub(crate) fn closing(&self) -> bool {
        self.gate.closed()
    }

    /// Programs the card on behalf of a job (register writes that start or
    /// steer the engine or the firmware). Refused with the stop's error once a
    /// reset or suspend has begun to stop the card: the events lock is held
    /// across the burst, and the stop takes it before it touches the card.
    pub(crate) fn program_edma<R>(&self, f: impl for<'a> FnOnce(&EdmaBar<'a>) -> R) -> Result<R> {
        let _ev = self.may_program()?;
        self.with_edma(f)
    }

    /// As [`Self::program_edma`], with the latched events at hand, so that a
    /// burst can clear a channel's old events in the same section as it
    /// starts the channel.
    pub(crate) fn program_edma_events<R>(
        &self,
        f: impl for<'a> FnOnce(&EdmaBar<'a>, &mut Events) -> R,
    ) -> Result<R> {
        let mut ev = self.may_program()?;
        let bar = self.edma_bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar, &mut ev))
    }

    /// As [`Self::program_edma`], for the firmware's command slot in L2.
    pub(crate) fn program_l2<R>(&self, f: impl for<'a> FnOnce(&L2Bar<'a>) -> R) -> Result<R> {
        let _ev = self.may_program()?;
        self.with_l2(f)
    }

    /// The events lock, if jobs may still program the card.
    fn may_program(&self) -> Result<SpinLockIrqGuard<'_, Events>> {
        let ev = self.events.lock();
        match ev.stopping.or(ev.aborted) {
            Some(e) => Err(e),
            None => Ok(ev),
        }
    }

    /// First step of stopping the card under its users: no job may program it
    /// from now on; those waiting keep waiting until [`Self::abort_users`].
    pub(crate) fn stop_users(&self, err: Error) {
        self.events.lock().stopping = Some(err);
    }

    /// Waits (boundedly) until a reset or suspend that is stopping the card
    /// has stopped it, or the card is gone.
    pub(crate) fn wait_card_stopped(&self) {
        let start = Instant::<Monotonic>::now();
        let mut ev = self.events.lock();
        while ev.aborted.is_none() && !ev.dead && start.elapsed() < CARD_STOP_WAIT {
            let _ = self
                .event_cv
                .wait_interruptible_timeout(&mut ev, msecs_to_jiffies(100));
        }
    }

    /// Fails every waiter with `err` (the card was stopped under them).
    pub(crate) fn abort_users(&self, err: Error) {
        self.events.lock().aborted = Some(err);
        self.event_cv.notify_all();
        self.busy_cv.notify_all();
    }

    /// Waits until `outage` is the only user left, then clears the events the
    /// aborted users left behind.
    pub(crate) fn wait_alone(&self, outage: &Outage<'_>) {
        outage.wait_alone();
        let mut ev = self.events.lock();
        *ev = Events {
            dead: ev.dead,
            ..Default::default()
        };
    }

    /// Refuses new work, fails what is in flight and waits until no file
    /// operation uses the hardware any more.
    pub(crate) fn close(&self) {
        self.shut();
        self.wait_unused();
    }

    /// First half of [`Self::close`]: refuses new work and fails what is in flight.
    pub(crate) fn shut(&self) {
        self.gate.close();
        self.events.lock().dead = true;
        self.event_cv.notify_all();
        self.busy_cv.notify_all();
    }

    /// Second half of [`Self::close`]: waits until nobody uses the card. An
    /// outage in progress counts and must have ended (or been given up).
    pub(crate) fn wait_unused(&self) {
        self.gate.wait_empty();
    }
}

impl HasGate for Card {
    fn gate(&self) -> &Gate {
        &self.gate
    }
}
