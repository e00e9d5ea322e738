// SPDX-License-Identifier: GPL-2.0

//! The card's DesignWare eDMA engine (BAR0), driven from the host.
//!
//! A transfer is a linked list of data elements, one per contiguous run of
//! DMA addresses, written by the CPU into the channel's part of the
//! firmware's descriptor buffer in L2 (through BAR2, 32-bit stores), as the
//! vendor driver does by default: a job is then one engine run and one
//! interrupt. The part is a ring ([`Ring`]): a job appends its elements after
//! the last job's and rings the doorbell, so the channel's registers are set
//! up once, not per job. The ring ends in a link element back to its start
//! that flips the cycle bit, as upstream dw-edma's lists do; a job longer
//! than what is left of the ring runs up to the link, and on from the start
//! once the engine has consumed it.

use kernel::{
    device::{
        Bound,
        Device, //
    },
    dma::{
        Coherent,
        CoherentBox,
        DmaAddress, //
    },
    io::{
        poll::read_poll_timeout,
        register::WithBase,
        Io, //
    },
    new_condvar, new_mutex, new_spinlock_irq, pci,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
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
    card::{
        Card,
        EdmaBar,
        L2Bar, //
    },
    glue::MsiMsg,
    irq::IrqMode,
    ll,
    ratelimit::dev_warn_limited,
    regs::{
        self,
        edma::{
            self,
            ChannelStatus,
            Direction, //
        },
        Halves,
    },
    stats::{
        self,
        Outcome,
        TraceEntry, //
    },
};

// TIMEOUT: a reset or suspend stops the card within a few hundred ms (FLR takes 100 ms).
const CARD_STOP_WAIT: Delta = Delta::from_secs(10);

// TIMEOUT: a working interrupt path takes a latched completion within microseconds;
// one still latched after this long lost its interrupt.
const IRQ_GRACE: Delta = Delta::from_millis(20);
/// Lost interrupts in a row after which completions are polled.
const LOST_IRQS_TO_POLL: u32 = 3;

/// The end of a job's time: one timeout covers waiting for a channel and every window.
pub(crate) struct Deadline {
    start: Instant<Monotonic>,
    timeout: Delta,
}

impl Deadline {
    pub(crate) fn new(timeout: Delta) -> Self {
        Self {
            start: Instant::<Monotonic>::now(),
            timeout,
        }
    }

    /// Time left, or zero.
    pub(crate) fn remaining(&self) -> Delta {
        let left = self.timeout - self.start.elapsed();
        if left.is_negative() {
            Delta::ZERO
        } else {
            left
        }
    }

    /// Time left; `ETIMEDOUT` once none is. Only for waits that started nothing.
    pub(crate) fn left(&self) -> Result<Delta> {
        let left = self.remaining();
        if left.is_zero() {
            Err(ETIMEDOUT)
        } else {
            Ok(left)
        }
    }
}

/// Whether a wait's event came without its interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// It came with its interrupt, or the driver polls.
    No,
    /// Found in the status registers at the end of the wait; it may have completed just
    /// before the end of a too-short timeout.
    Unconfirmed,
    /// It sat in the status registers for [`IRQ_GRACE`] after the end of the wait.
    Confirmed,
}

/// One element's worth of a transfer: a contiguous run of host DMA addresses and
/// where on the card its bytes go to or come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) addr: DmaAddress,
    pub(crate) len: u32,
    /// Device address of the run's first byte.
    pub(crate) dev: u64,
}

/// Control bits of data elements that must raise the done interrupt.
fn irq_bits(mode: IrqMode) -> u32 {
    match mode {
        // IMWR goes out only for RIE; LIE latches the status we read back.
        IrqMode::Msi | IrqMode::MsiX => ll::CTRL_LIE | ll::CTRL_RIE,
        IrqMode::Intx | IrqMode::Poll => ll::CTRL_LIE,
    }
}

fn ring_doorbell<D: Direction>(b0: &EdmaBar<'_>, ch: u32) -> Result {
    b0.write(
        WithBase::of::<D>(),
        edma::DOORBELL::zeroed().try_with_ch(ch)?,
    );
    Ok(())
}

fn stop<D: Direction>(b0: &EdmaBar<'_>, ch: u32) -> Result {
    b0.write(
        WithBase::of::<D>(),
        edma::DOORBELL::zeroed().try_with_ch(ch)?.with_stop(true),
    );
    Ok(())
}

/// Programs a channel for list mode at `llp` (cycle state 1) and rings it.
fn start_list<D: Direction>(b0: &EdmaBar<'_>, ch: u32, llp: u64) -> Result {
    let idx = usize::try_from(ch)?;
    b0.write(
        edma::CH_CONTROL1::of::<D>().try_at(idx).ok_or(EINVAL)?,
        edma::CH_CONTROL1::zeroed().with_ccs(true).with_lle(true),
    );
    write_llp::<D>(b0, idx, llp)?;
    ring_doorbell::<D>(b0, ch)
}

/// Writes a channel's linked-list pointer as two halves, low first.
fn write_llp<D: Direction>(b0: &EdmaBar<'_>, idx: usize, v: u64) -> Result {
    let v = Halves::of(v);
    b0.write(
        edma::CH_LLP_LO::of::<D>().try_at(idx).ok_or(EINVAL)?,
        edma::CH_LLP_LO::from_raw(v.lo),
    );
    b0.write(
        edma::CH_LLP_HI::of::<D>().try_at(idx).ok_or(EINVAL)?,
        edma::CH_LLP_HI::from_raw(v.hi),
    );
    Ok(())
}

/// Clears a channel's done and abort bits, on the card and as latched.
///
/// Runs under the events lock (the caller's `ev`), which is also where the
/// status registers are read and latched ([`Card::service`]): a status read
/// taken before this clear can then never be latched after it. Done before a
/// channel's doorbell and after it is known stopped, so that a completion
/// seen on the channel belongs to the transfer started last (a late
/// completion of the previous job must not be credited to the next one).
/// A job's later windows are not cleared: see [`Card::transfer`].
fn forget_channel(b0: &EdmaBar<'_>, ev: &mut Events, dir: Dir, ch: u32) -> Result {
    let bit = 1u8.checked_shl(ch).ok_or(EINVAL)?;
    let bits = edma::INT_CLEAR::zeroed().with_done(bit).with_abort(bit);
    match dir {
        Dir::Wr => b0.write(WithBase::of::<edma::Wr>(), bits),
        Dir::Rd => b0.write(WithBase::of::<edma::Rd>(), bits),
    }
    ev.done[dir as usize] &= !bit;
    ev.abort[dir as usize] &= !bit;
    Ok(())
}

/// Channel status (`CS`) of `dir`'s channel `ch`.
fn channel_status<D: Direction>(b0: &EdmaBar<'_>, ch: u32) -> Result<ChannelStatus> {
    let idx = usize::try_from(ch)?;
    Ok(b0
        .read(edma::CH_CONTROL1::of::<D>().try_at(idx).ok_or(EINVAL)?)
        .status())
}

/// Engine direction at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Device to host.
    Wr = 0,
    /// Host to device.
    Rd = 1,
}

impl Dir {
    /// The engine's name for the half: `wr` (device to host) or `rd` (host to device).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dir::Wr => "wr",
            Dir::Rd => "rd",
        }
    }
}

/// Channels per direction the engine can have.
const MAX_CH: usize = 8;

/// List words written per hold of the events lock (8 elements).
const WORDS_PER_BURST: usize = 8 * ll::ELEMENT_WORDS;

// TIMEOUT: after the done message of a run's last element the engine fetches one more
// slot (in the card's own memory) and stops, within a microsecond; the handler that takes
// the completion runs microseconds after the message. A channel whose last completion was
// taken longer ago than this has stopped.
const STOPPED_AFTER_DONE_NS: u64 = 10_000;

/// Where a channel's list ring stands.
///
/// Each channel owns a part of the firmware's descriptor buffer, used as a
/// ring: data slots, then a link element back to the start that flips the
/// cycle state. A job appends its elements where the last one ended, ends
/// them with a terminator (or the link) carrying the opposite cycle bit, and
/// rings the doorbell: no register but the doorbell is written, and the
/// engine, stopped at the terminator, resumes there.
///
/// # Invariants
///
/// While `live`, the channel's CH_CONTROL1 and LLP were set up for the ring
/// at `area`, the engine has stopped or stops at `slot` (the slot after the
/// last job's run, `slot` < the link slot) with CCS equal to `cycle`, and
/// no completion of the channel is latched, on the card or in [`Events`].
#[derive(Clone, Default)]
pub(crate) struct Ring {
    live: bool,
    /// Device address of the ring (the channel's part of the descriptor buffer).
    area: u64,
    /// The next data slot, and the cycle bit its element gets.
    slot: usize,
    cycle: bool,
    /// When the channel's last done was latched (monotonic ns).
    done_ns: u64,
    /// The slots of the last run, its tail (terminator or link) included (debugfs).
    run: core::ops::Range<usize>,
}

impl Ring {
    /// The slots of the channel's last run, tail included, while the ring is live.
    pub(crate) fn last_run(&self) -> Option<core::ops::Range<usize>> {
        self.live.then(|| self.run.clone())
    }
}

/// Completion events latched from the status registers, one bit per channel.
#[derive(Default)]
pub(crate) struct Events {
    pub(crate) done: [u8; 2],
    pub(crate) abort: [u8; 2],
    /// Channels with a run in flight: the interrupt handler reads the status of
    /// these directions only (message interrupts).
    pub(crate) armed: [u8; 2],
    /// Each channel's list ring.
    pub(crate) rings: [[Ring; MAX_CH]; 2],
    pub(crate) mailbox: bool,
    /// The card is going away: every waiter fails with `ENODEV`.
    pub(crate) dead: bool,
    /// A reset or suspend is stopping the card: jobs may not program it any
    /// more (they fail with this error) but keep waiting until `aborted`.
    pub(crate) stopping: Option<Error>,
    /// The card was stopped under the waiters (reset: `EIO`, suspend: `ESHUTDOWN`): each
    /// fails with this error, and must not touch the engine any more.
    pub(crate) aborted: Option<Error>,
    /// The firmware's virtual-MSI sources below 32 (kept across resets).
    pub(crate) sources: Sources,
}

/// Marks of the firmware's virtual-MSI sources below 32 (0–3 AI cores, 12 firmware
/// message, 24 device message), as the vendor's ABI waits for them by number.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sources {
    /// Marks taken since probe.
    pub(crate) total: [u64; 32],
    /// Marks no `MSI` wait of the vendor node has taken yet (its per-source completion
    /// count: `CLEAN_MSI` clears it).
    pub(crate) pending: [u32; 32],
}

impl Sources {
    /// Counts the sources marked in `bits` (one bit each).
    pub(crate) fn add(&mut self, bits: u32) {
        for s in 0..32 {
            if bits & (1 << s) != 0 {
                self.total[s] = self.total[s].wrapping_add(1);
                self.pending[s] = self.pending[s].saturating_add(1);
            }
        }
    }
}

impl Events {
    /// A channel's run is over: no longer in flight; if `lost`, where the engine stopped
    /// in the channel's ring is unknown, and its next job sets the ring up again.
    fn end_run(&mut self, dir: Dir, ch: u32, lost: bool) {
        let d = dir as usize;
        self.armed[d] &= !1u8.checked_shl(ch).unwrap_or(0);
        if let Some(r) = usize::try_from(ch)
            .ok()
            .and_then(|i| self.rings[d].get_mut(i))
        {
            r.live &= !lost;
        }
    }
}

/// Writes the address words of a link element in the slot at BAR2 offset `off`
/// (its control word, the caller's, goes after).
fn write_link_address(l2: &L2Bar<'_>, off: usize, area: u64) -> Result {
    for (i, w) in ll::link_words(area).iter().enumerate() {
        l2.try_write32(*w, off + 4 + i * 4)?;
    }
    Ok(())
}

/// The DMA engine of one card: its registers (BAR0), the completion events
/// latched from them, the channel pool and the interrupt signalling it was set up with.
///
/// The BAR is device-managed: once the card is unbound every access sees
/// `ENODEV` instead of touching unmapped registers.
#[pin_data]
pub(crate) struct Edma {
    bar: pci::DevresBar<{ regs::BAR0_SIZE }>,
    /// Events the interrupt handler (or a poller) took off the card. Also the
    /// lock under which jobs program the card (see [`Self::may_program`]).
    #[pin]
    pub(crate) events: SpinLockIrq<Events>,
    /// Signalled whenever `events` gains a bit.
    #[pin]
    pub(crate) event_cv: CondVar,
    /// Busy data channels, one bit per channel and direction.
    #[pin]
    busy: Mutex<[u8; 2]>,
    #[pin]
    pub(crate) busy_cv: CondVar,
    /// The MSI message last written to the IMWR registers.
    #[pin]
    imwr: Mutex<Option<MsiMsg>>,
    /// [`IrqMode`] as `u32`; changes only while no job runs (probe), or to polling.
    irq_mode: Atomic<u32>,
    /// Completions in a row whose interrupt was lost.
    lost_in_row: Atomic<u32>,
    wr_channels: u32,
    rd_channels: u32,
}

impl Edma {
    pub(crate) fn new(
        bar: pci::DevresBar<{ regs::BAR0_SIZE }>,
        wr_channels: u32,
        rd_channels: u32,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            bar,
            events <- new_spinlock_irq!(Events::default(), "metis_events"),
            event_cv <- new_condvar!("metis_event_cv"),
            busy <- new_mutex!([0u8; 2], "metis_busy"),
            busy_cv <- new_condvar!("metis_busy_cv"),
            imwr <- new_mutex!(None, "metis_imwr"),
            irq_mode: Atomic::new(IrqMode::Poll as u32),
            lost_in_row: Atomic::new(0),
            wr_channels,
            rd_channels,
        })
    }

    /// Runs a register burst; `ENODEV` once the card is unbound.
    pub(crate) fn with<R>(&self, f: impl for<'a> FnOnce(&EdmaBar<'a>) -> R) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    pub(crate) fn irq_mode(&self) -> IrqMode {
        IrqMode::from_raw(self.irq_mode.load(Relaxed))
    }

    /// Switches how waiters learn of completions (probe, storm fallback).
    pub(crate) fn set_irq_mode(&self, mode: IrqMode) {
        self.irq_mode.store(mode as u32, Relaxed);
    }

    pub(crate) fn wr_channels(&self) -> u32 {
        self.wr_channels
    }

    pub(crate) fn rd_channels(&self) -> u32 {
        self.rd_channels
    }

    /// Takes pending completions off the engine: reads each direction's status
    /// once, clears what it saw and latches it in `ev`. Returns whether any was pending.
    ///
    /// The caller holds the events lock (`ev`), the lock under which a channel's
    /// status is cleared before its doorbell and after its stop: a read taken
    /// before such a clear can never be latched after it.
    ///
    /// With message interrupts only the directions with a run in flight are
    /// read (one read per interrupt when one direction is busy): the message
    /// is an edge, and a status nobody waits for would not raise another. A
    /// level interrupt (INTx) stays asserted while any status is latched, so
    /// then both are read.
    pub(crate) fn take_completions(&self, ev: &mut Events) -> bool {
        let all = matches!(self.irq_mode(), IrqMode::Intx);
        let [wr, rd] = ev.armed.map(|a| all || a != 0);
        let seen = self.with(|b0| {
            (
                if wr {
                    service_dir::<edma::Wr>(b0)
                } else {
                    (0, 0)
                },
                if rd {
                    service_dir::<edma::Rd>(b0)
                } else {
                    (0, 0)
                },
            )
        });
        // A card that does not answer (unbound) has nothing pending in its engine.
        let ((wd, wa), (rd, ra)) = seen.unwrap_or(((0, 0), (0, 0)));
        ev.done[Dir::Wr as usize] |= wd;
        ev.abort[Dir::Wr as usize] |= wa;
        ev.done[Dir::Rd as usize] |= rd;
        ev.abort[Dir::Rd as usize] |= ra;
        if wd | rd != 0 {
            let now = crate::glue::monotonic_ns();
            for (d, bits) in [(Dir::Wr, wd), (Dir::Rd, rd)] {
                for (ch, r) in ev.rings[d as usize].iter_mut().enumerate() {
                    if bits & (1 << ch) != 0 {
                        r.done_ns = now;
                    }
                }
            }
        }
        wd | wa | rd | ra != 0
    }

    /// Forgets every channel's ring: the engine was (or is about to be)
    /// disabled, reset or reprogrammed, so the next job of each channel sets
    /// its ring up again.
    fn forget_rings(&self) {
        let mut ev = self.events.lock();
        ev.rings = Default::default();
        ev.armed = [0; 2];
    }

    /// Waits for a free data channel of `dir` until `deadline`, and marks it busy.
    pub(crate) fn acquire_channel(&self, dir: Dir, deadline: &Deadline) -> Result<u32> {
        let count = self.data_channels(dir);
        let mut busy = self.busy.lock();
        loop {
            let ev = self.events.lock();
            if ev.dead {
                return Err(ENODEV);
            }
            if let Some(e) = ev.aborted.or(ev.stopping) {
                return Err(e);
            }
            drop(ev);
            let free = (0..count).find(|ch| busy[dir as usize] & (1 << ch) == 0);
            if let Some(ch) = free {
                busy[dir as usize] |= 1 << ch;
                return Ok(ch);
            }
            let left = deadline.left()?;
            let ms = u32::try_from(left.as_millis_ceil())
                .unwrap_or(u32::MAX)
                .max(1);
            if let kernel::sync::CondVarTimeoutResult::Signal { .. } = self
                .busy_cv
                .wait_interruptible_timeout(&mut busy, msecs_to_jiffies(ms))
            {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// The channels jobs hold, one bit each, per direction.
    pub(crate) fn busy_mask(&self) -> [u8; 2] {
        *self.busy.lock()
    }

    pub(crate) fn release_channel(&self, dir: Dir, ch: u32) {
        self.busy.lock()[dir as usize] &= !(1 << ch);
        self.busy_cv.notify_all();
    }

    /// Channels usable for data: all of them, since the CPU writes the lists.
    pub(crate) fn data_channels(&self, dir: Dir) -> u32 {
        match dir {
            Dir::Wr => self.wr_channels,
            Dir::Rd => self.rd_channels,
        }
    }

    /// Puts the engine into a known idle state: every interrupt source masked
    /// and cleared, both halves disabled.
    pub(crate) fn off(&self) -> Result {
        self.forget_rings();
        self.with(|b0| {
            off::<edma::Wr>(b0);
            off::<edma::Rd>(b0);
        })
    }

    /// Enables the engine and its interrupt signalling for `mode`, with the
    /// IMWR message `msi` (address, data) when `mode` is MSI or MSI-X.
    pub(crate) fn on(&self, mode: IrqMode, msi: Option<MsiMsg>) -> Result {
        self.set_irq_mode(mode);
        *self.imwr.lock() = msi;
        self.forget_rings();
        self.with(|b0| {
            on::<edma::Wr>(b0, self.wr_channels, mode, msi);
            on::<edma::Rd>(b0, self.rd_channels, mode, msi);
        })
    }

    /// Writes the engine's enables, interrupt masks and IMWR registers again with what
    /// [`Self::on`] programmed, rings untouched: the same values, so transfers in flight
    /// go on (a firmware the runtime booted may have reset them; `DYNMEM_LOAD`).
    pub(crate) fn restore(&self) -> Result {
        let mode = self.irq_mode();
        let msi = *self.imwr.lock();
        self.program(|b0| {
            on::<edma::Wr>(b0, self.wr_channels, mode, msi);
            on::<edma::Rd>(b0, self.rd_channels, mode, msi);
        })
    }

    /// Programs the card on behalf of a job (register writes that start or
    /// steer the engine or the firmware). Refused with the stop's error once a
    /// reset or suspend has begun to stop the card: the events lock is held
    /// across the burst, and the stop takes it before it touches the card.
    pub(crate) fn program<R>(&self, f: impl for<'a> FnOnce(&EdmaBar<'a>) -> R) -> Result<R> {
        let _ev = self.may_program()?;
        self.with(f)
    }

    /// As [`Self::program`], with the latched events at hand, so that a
    /// burst can clear a channel's old events in the same section as it
    /// starts the channel.
    pub(crate) fn program_events<R>(
        &self,
        f: impl for<'a> FnOnce(&EdmaBar<'a>, &mut Events) -> R,
    ) -> Result<R> {
        let mut ev = self.may_program()?;
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar, &mut ev))
    }

    /// The events lock, if jobs may still program the card.
    pub(crate) fn may_program(&self) -> Result<SpinLockIrqGuard<'_, Events>> {
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
}

impl Card {
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
        take: impl FnMut(&mut Events) -> Option<T>,
    ) -> Result<T> {
        self.wait_event_noting_lost(timeout, take, None)
            .map(|(v, _)| v)
    }

    /// As [`Self::wait_event`]; also says whether the event was found without its interrupt.
    ///
    /// `on_card` (if given) tells whether the awaited event is latched in the card's status
    /// registers without being taken: an event that sits there for [`IRQ_GRACE`] after the
    /// timeout without its interrupt taking it is a [`Lost::Confirmed`] interrupt. Without it,
    /// an event found at the end is [`Lost::Unconfirmed`]: it may also have completed just
    /// before the end of a caller's too-short timeout.
    fn wait_event_noting_lost<T>(
        &self,
        timeout: Delta,
        mut take: impl FnMut(&mut Events) -> Option<T>,
        on_card: Option<&dyn Fn() -> bool>,
    ) -> Result<(T, Lost)> {
        let start = Instant::<Monotonic>::now();
        let mut poll_sleep = Delta::from_micros(20);
        loop {
            let deaf = kernel::current!().signal_pending() && self.gate.in_outage();
            let polling = deaf || self.edma.irq_mode() == IrqMode::Poll;
            if polling {
                self.service();
            }
            let mut ev = self.edma.events.lock();
            if ev.dead {
                return Err(ENODEV);
            }
            if let Some(e) = ev.aborted {
                return Err(e);
            }
            if let Some(v) = take(&mut ev) {
                return Ok((v, Lost::No));
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                drop(ev);
                if !polling && self.recover_lost.load(Relaxed) {
                    if let Some(on_card) = on_card {
                        return self.take_late(&mut take, on_card);
                    }
                }
                // Before giving up, read the status registers once: an event whose
                // interrupt was lost on the way is still latched on the card.
                if !polling && self.recover_lost.load(Relaxed) && self.service() {
                    // The events lock is released before logging: the log limit's lock
                    // must never nest inside a lock the interrupt handler takes.
                    let found = take(&mut self.edma.events.lock());
                    if let Some(v) = found {
                        // Also what a caller's own too-short timeout looks like.
                        dev_warn_limited!(
                            self.log_limit,
                            self.pdev,
                            "completion found in the status registers at the end of the wait \
                             without its interrupt: lost interrupt (or a timeout too short for \
                             the transfer); continuing\n"
                        );
                        return Ok((v, Lost::Unconfirmed));
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
                .edma
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

    /// End of a timed-out wait whose event can be seen on the card: an event that is
    /// there gets [`IRQ_GRACE`] for its interrupt to take it; one still there after that
    /// is taken here and its interrupt counted as lost.
    fn take_late<T>(
        &self,
        take: &mut impl FnMut(&mut Events) -> Option<T>,
        on_card: &dyn Fn() -> bool,
    ) -> Result<(T, Lost)> {
        if !on_card() {
            return Err(ETIMEDOUT);
        }
        let start = Instant::<Monotonic>::now();
        loop {
            let mut ev = self.edma.events.lock();
            if let Some(v) = take(&mut ev) {
                // The interrupt came, late (or the caller's timeout was short).
                return Ok((v, Lost::No));
            }
            let elapsed = start.elapsed();
            if elapsed >= IRQ_GRACE || ev.dead || ev.aborted.is_some() {
                break;
            }
            let left = IRQ_GRACE - elapsed;
            let ms = u32::try_from(left.as_millis_ceil()).unwrap_or(1).max(1);
            // A signal ends the grace early; what the card holds is taken below either way.
            let _ = self
                .edma
                .event_cv
                .wait_interruptible_timeout(&mut ev, msecs_to_jiffies(ms));
        }
        self.service();
        let found = take(&mut self.edma.events.lock());
        match found {
            Some(v) => {
                self.note_lost_irq();
                Ok((v, Lost::Confirmed))
            }
            None => Err(ETIMEDOUT),
        }
    }

    /// One more completion whose interrupt never came; after [`LOST_IRQS_TO_POLL`] in a
    /// row, the interrupt path is given up on.
    fn note_lost_irq(&self) {
        let n = self
            .edma
            .lost_in_row
            .fetch_add(1, Relaxed)
            .saturating_add(1);
        if n < LOST_IRQS_TO_POLL || self.edma.irq_mode() == IrqMode::Poll {
            dev_warn_limited!(
                self.log_limit,
                self.pdev,
                "DMA completion sat in the status registers for {} ms without its interrupt: \
                 lost interrupt; continuing\n",
                IRQ_GRACE.as_millis()
            );
            return;
        }
        self.edma.set_irq_mode(IrqMode::Poll);
        // Waiters sleeping for an interrupt switch to polling.
        self.edma.event_cv.notify_all();
        dev_err!(
            self.pdev,
            "{} DMA completions in a row arrived without their interrupt: the card's \
             interrupts do not reach the CPU (interrupt remapping, a hypervisor, or the \
             platform's MSI setup); completions are polled from now on, until the driver is \
             reloaded. Try irq_mode=3 (INTx), or report this with `metisctl doctor`\n",
            n
        );
    }

    /// A completion arrived with its interrupt: the path works.
    fn note_irq_delivered(&self) {
        if self.edma.lost_in_row.load(Relaxed) != 0 {
            self.edma.lost_in_row.store(0, Relaxed);
        }
    }

    /// As [`Edma::program`], for the firmware's command slot in L2.
    ///
    /// Refused with `ENODEV` too once unbind has begun: what is written to L2 starts new
    /// work (a command, a window), and the waits of its callers already fail. A command
    /// posted then would find the slot still running the command whose caller's wait the
    /// unbind just failed.
    pub(crate) fn program_l2<R>(&self, f: impl for<'a> FnOnce(&L2Bar<'a>) -> R) -> Result<R> {
        let ev = self.edma.may_program()?;
        if ev.dead {
            return Err(ENODEV);
        }
        self.l2.with(f)
    }

    /// Rewrites the IMWR registers when the kernel has changed the vector's MSI
    /// message since they were written (x86 without interrupt remapping puts the
    /// target CPU in the address, so an affinity change moves it).
    fn refresh_imwr(&self) {
        if !matches!(self.edma.irq_mode(), IrqMode::Msi | IrqMode::MsiX) {
            return;
        }
        let Ok(msg) = crate::glue::msi_msg(&self.pdev, 0) else {
            return;
        };
        let mut cur = self.edma.imwr.lock();
        if *cur == Some(msg) {
            return;
        }
        *cur = Some(msg);
        dev_dbg!(
            self.pdev,
            "MSI message changed to {:#x}/{:#x}; IMWR reprogrammed\n",
            msg.addr,
            msg.data
        );
        let _ = self.edma.program(|b0| {
            write_imwr::<edma::Wr>(b0, msg);
            write_imwr::<edma::Rd>(b0, msg);
        });
    }

    /// Waits up to `left` (of the job's `timeout`) for the done (or abort) event of a
    /// channel; stops it on failure. Says whether the completion came without its interrupt.
    fn wait_channel(&self, dir: Dir, ch: u32, left: Delta, timeout: Delta) -> Result<bool> {
        let bit = 1u8 << ch;
        let on_card = || {
            let pending = self.edma.with(|b0| match dir {
                Dir::Wr => pending::<edma::Wr>(b0),
                Dir::Rd => pending::<edma::Rd>(b0),
            });
            matches!(pending, Ok(p) if p & bit != 0)
        };
        let take = |ev: &mut Events| {
            let d = dir as usize;
            if ev.abort[d] & bit != 0 {
                ev.abort[d] &= !bit;
                ev.done[d] &= !bit;
                // Where an aborted engine stopped in its list is unknown.
                ev.end_run(dir, ch, true);
                return Some(Err(EIO));
            }
            if ev.done[d] & bit != 0 {
                ev.done[d] &= !bit;
                ev.end_run(dir, ch, false);
                return Some(Ok(()));
            }
            None
        };
        let res = self.wait_event_noting_lost(left, take, Some(&on_card));
        match res {
            Ok((r, lost)) => {
                if lost == Lost::No && self.edma.irq_mode() != IrqMode::Poll {
                    self.note_irq_delivered();
                }
                r.map(|()| lost != Lost::No)
            }
            // The card was stopped under the job (reset, suspend): the channel is already
            // stopped, and a stop doorbell to the disabled engine would be a fault.
            Err(e) if self.edma.events.lock().aborted.is_some() => Err(e),
            Err(e) => {
                let name = match dir {
                    Dir::Wr => "write",
                    Dir::Rd => "read",
                };
                let had_stopped = self.channel_stopped(dir, ch);
                // Timed out or interrupted: the channel may still be moving
                // data into memory the caller is about to release.
                if !self.halt_channel(dir, ch) {
                    self.cut_off("eDMA channel ignores stop requests");
                    dev_err!(
                        self.pdev,
                        "eDMA {} channel {} does not stop; the card is cut off the bus and will be \
                         reset\n",
                        name,
                        ch
                    );
                }
                if e == ETIMEDOUT {
                    self.check_health();
                    dev_warn_limited!(
                        self.log_limit,
                        self.pdev,
                        "eDMA {} channel {} timed out after {} ms{}\n",
                        name,
                        ch,
                        timeout.as_millis(),
                        if had_stopped {
                            " (channel had stopped: completion interrupt lost)"
                        } else {
                            ""
                        }
                    );
                }
                Err(e)
            }
        }
    }

    /// Makes sure a channel handed to a new job has stopped walking the last
    /// job's list. The done interrupt of a window's last element comes before the
    /// engine has followed the window's link and stopped at slot 0; a new list
    /// written meanwhile could be fetched half-written. Usually one status read.
    fn settle_channel(&self, dir: Dir, ch: u32) -> Result {
        if self.channel_halts(dir, ch) || self.halt_channel(dir, ch) {
            return Ok(());
        }
        self.cut_off("eDMA channel ignores stop requests");
        dev_err!(
            self.pdev,
            "eDMA channel {} does not stop after its last job; the card is cut off the bus and \
             will be reset\n",
            ch
        );
        Err(EIO)
    }

    /// Stops a channel; once it has halted, whatever it reported (a completion can beat
    /// the stop) is forgotten before the channel goes to the next job. A card being
    /// stopped under us gets its status cleared by the reset. Says whether it halted.
    fn halt_channel(&self, dir: Dir, ch: u32) -> bool {
        self.stop_channel(dir, ch);
        if !self.channel_halts(dir, ch) {
            return false;
        }
        let _ = self
            .edma
            .program_events(|b0, ev| forget_channel(b0, ev, dir, ch));
        true
    }

    /// Whether a channel told to stop leaves the running state within a few milliseconds.
    fn channel_halts(&self, dir: Dir, ch: u32) -> bool {
        let cs = || {
            self.edma.with(|b0| match dir {
                Dir::Wr => channel_status::<edma::Wr>(b0, ch),
                Dir::Rd => channel_status::<edma::Rd>(b0, ch),
            })
        };
        read_poll_timeout(
            || Ok(cs()),
            // A card that no longer answers (unbound, in reset) can't be running anything.
            |v| !matches!(v, Ok(Ok(ChannelStatus::Running))),
            Delta::from_micros(100),
            Delta::from_millis(10),
        )
        .is_ok()
    }

    fn channel_stopped(&self, dir: Dir, ch: u32) -> bool {
        let cs = self.edma.with(|b0| match dir {
            Dir::Wr => channel_status::<edma::Wr>(b0, ch),
            Dir::Rd => channel_status::<edma::Rd>(b0, ch),
        });
        matches!(cs, Ok(Ok(ChannelStatus::Stopped)))
    }

    /// Halts a channel and forgets any event it raised.
    ///
    /// When a reset or suspend is already stopping the card, the channel is
    /// left to it: this then waits until the card is stopped, so that the
    /// caller releases its memory only afterwards (R4).
    pub(crate) fn stop_channel(&self, dir: Dir, ch: u32) {
        let stopped = self.edma.program(|b0| match dir {
            Dir::Wr => stop::<edma::Wr>(b0, ch),
            Dir::Rd => stop::<edma::Rd>(b0, ch),
        });
        if stopped.is_err() {
            self.edma.wait_card_stopped();
        }
        let mut ev = self.edma.events.lock();
        ev.done[dir as usize] &= !(1 << ch);
        ev.abort[dir as usize] &= !(1 << ch);
        // A stopped engine halts wherever it was in its list.
        ev.end_run(dir, ch, true);
    }

    /// Moves a pattern to the card and back through the engine (completing by
    /// interrupt, or by polling) and checks it. The card side is the driver's
    /// own scratch bytes in the descriptor buffer: nothing of the firmware's
    /// is touched.
    pub(crate) fn self_test(&self, dev: &Device<Bound>, timeout: Delta) -> Result {
        let mut pattern = [0u8; 64];
        for (i, b) in pattern.iter_mut().enumerate() {
            // CAST: truncation to a byte is the pattern.
            *b = (i as u8) ^ 0xa5;
        }
        let out: Coherent<[u8]> = CoherentBox::from_slice(dev, &pattern, GFP_KERNEL)?.into();
        let back: Coherent<[u8]> = CoherentBox::<[u8]>::zeroed_slice(dev, 64, GFP_KERNEL)?.into();
        let scratch = self.l2.iface.lock().as_ref().ok_or(ENODEV)?.desc.scratch();
        let seg = |addr| Segment {
            addr,
            len: 64,
            dev: scratch,
        };
        self.transfer(Dir::Rd, &[seg(out.dma_address())], timeout)?;
        self.transfer(Dir::Wr, &[seg(back.dma_address())], timeout)?;
        // SAFETY: Both transfers completed, so the card no longer accesses `back`.
        if unsafe { back.as_ref() } != &pattern[..] {
            dev_err!(
                self.pdev,
                "eDMA self-test read back different data: the card's DMA path is broken\n"
            );
            return Err(EIO);
        }
        Ok(())
    }

    /// Moves data between host segments and device memory on a free channel of
    /// `dir`: one list, one doorbell and one interrupt for as many segments as fit
    /// in the channel's ring (whatever jobs they belong to), more runs beyond.
    pub(crate) fn transfer(&self, dir: Dir, segs: &[Segment], timeout: Delta) -> Result {
        // One timeout for the whole job: waiting for a channel and every window.
        self.transfer_within(dir, segs, &Deadline::new(timeout))
    }

    /// As [`Self::transfer`], within a deadline the caller shares among several transfers
    /// (a job's two directions); a timeout is reported as the deadline's whole length.
    pub(crate) fn transfer_within(
        &self,
        dir: Dir,
        segs: &[Segment],
        deadline: &Deadline,
    ) -> Result {
        if segs.is_empty() {
            return Err(EINVAL);
        }
        deadline.left()?;
        self.refresh_imwr();
        let ch = self.edma.acquire_channel(dir, deadline)?;
        let start_ns = crate::glue::monotonic_ns();
        let start = Instant::<Monotonic>::now();
        let res = self.transfer_on(dir, ch, segs, deadline);
        let duration_ns = stats::nanos(start.elapsed());
        self.edma.release_channel(dir, ch);
        // A reset, suspend or unbind that stopped the card under the job fails it with
        // its own error; it stays recorded until the job has left the gate.
        let outcome = match &res {
            Err(_) if self.edma.events.lock().aborted.is_some() => Outcome::Aborted,
            r => Outcome::of(r),
        };
        self.stats.record(TraceEntry {
            start_ns,
            dir: Some(dir),
            // CAST: at most `stats::MAX_CHANNELS` (saturated otherwise: traced, not counted).
            ch: u8::try_from(ch).unwrap_or(u8::MAX),
            len: segs.iter().map(|s| u64::from(s.len)).sum(),
            elements: u32::try_from(segs.len()).unwrap_or(u32::MAX),
            duration_ns,
            outcome: Some(outcome),
            ..Default::default()
        });
        res.map(|_| ())
    }

    /// Runs a job on channel `ch`, appending its elements to the channel's ring
    /// ([`Ring`]) in runs: one run when it fits before the ring's link, else a run
    /// up to the link, whose completion is awaited before the ring's start is
    /// reused, and so on. Says whether a completion came without its interrupt.
    fn transfer_on(
        &self,
        dir: Dir,
        ch: u32,
        segs: &[Segment],
        deadline: &Deadline,
    ) -> Result<bool> {
        let mut lost = false;
        let desc = self.l2.iface.lock().as_ref().ok_or(ENODEV)?.desc;
        let part = desc.part(dir, ch)?;
        // Slots before the last carry data; the last holds the link back to the start.
        let link_slot = part.slots.checked_sub(1).filter(|n| *n > 0).ok_or(EINVAL)?;
        let idx = usize::try_from(ch)?;
        let (d, bit) = (dir as usize, 1u8.checked_shl(ch).ok_or(EINVAL)?);
        let irq = irq_bits(self.edma.irq_mode());
        let mut list = KVec::new();
        let mut rest = segs;
        while !rest.is_empty() {
            // Out of time between runs: the channel is idle, nothing to stop.
            deadline.left()?;
            let mut ring = self
                .edma
                .events
                .lock()
                .rings
                .get(d)
                .and_then(|r| r.get(idx))
                .ok_or(EINVAL)?
                .clone();
            if ring.live && ring.area != part.dev_addr {
                ring.live = false;
            }
            // Right after a completion the engine may still be fetching the slot it
            // stops at, and a doorbell that reaches it then can be missed (the
            // dw-edma doorbell race): within 10 us of it, wait for the channel to
            // show stopped first.
            let recent =
                crate::glue::monotonic_ns().saturating_sub(ring.done_ns) < STOPPED_AFTER_DONE_NS;
            if ring.live && recent && !self.channel_halts(dir, ch) {
                ring.live = false;
            }
            if !ring.live {
                // Stops whatever the channel still does, forgets its events, and
                // starts a ring at its part: the link's address once, here.
                self.settle_channel(dir, ch)?;
                let link_off = part.bar_off + link_slot * ll::ELEMENT_SIZE;
                self.program_l2(|l2| write_link_address(l2, link_off, part.dev_addr))??;
                ring = Ring {
                    live: false,
                    area: part.dev_addr,
                    slot: 0,
                    cycle: true,
                    done_ns: 0,
                    run: 0..0,
                };
            }
            let room = link_slot
                .checked_sub(ring.slot)
                .filter(|n| *n > 0)
                .ok_or(EINVAL)?;
            // A job that does not fit before the ring's link, but before the slot the
            // engine rests at, goes whole to the ring's start behind a link written where
            // the engine rests: one run instead of two, and no wait in between.
            let skip = ring.live && rest.len() > room && rest.len() < ring.slot;
            let (start, cycle) = if skip {
                (0, !ring.cycle)
            } else {
                (ring.slot, ring.cycle)
            };
            let (run, next) = rest.split_at(if skip {
                rest.len()
            } else {
                room.min(rest.len())
            });
            let wraps = !skip && start + run.len() == link_slot;
            list.clear();
            list.resize(run.len() * ll::ELEMENT_WORDS, 0u32, GFP_KERNEL)?;
            ll::build_elements(&mut list, run, dir, cycle, irq)?;
            let tail = ll::tail_control(cycle, wraps);
            let base = part.bar_off + start * ll::ELEMENT_SIZE;
            let rest_at = part.bar_off + ring.slot * ll::ELEMENT_SIZE;
            // The engine may fetch the run's first slot at any moment (it stops there,
            // or is just reaching it): that slot's control word, whose cycle bit hands
            // the run over, goes last, as in dw-edma's `dw_edma_v0_write_ll_data`; the
            // tail's goes before it, so the engine never runs past the run into slots
            // of an older lap. A skip's link goes after them all: the engine, stopped
            // where it rests, moves on to the run only through it.
            // The elements go in bursts: `program_l2` holds the events lock (interrupts
            // off) across each, and a list of hundreds of elements in one burst would hold
            // off the interrupt handler and the other direction's jobs for all of it.
            for from in (1..list.len()).step_by(WORDS_PER_BURST) {
                let words = list.get(from..list.len().min(from + WORDS_PER_BURST));
                self.program_l2(|l2| -> Result {
                    for (i, word) in words.into_iter().flatten().enumerate() {
                        l2.try_write32(*word, base + (from + i) * 4)?;
                    }
                    Ok(())
                })??;
            }
            self.program_l2(|l2| -> Result {
                l2.try_write32(tail, base + run.len() * ll::ELEMENT_SIZE)?;
                l2.try_write32(*list.first().ok_or(EINVAL)?, base)?;
                if skip {
                    write_link_address(l2, rest_at, part.dev_addr)?;
                    l2.try_write32(ll::tail_control(ring.cycle, true), rest_at)?;
                }
                Ok(())
            })??;
            let fresh = !ring.live;
            let after = Ring {
                live: true,
                area: part.dev_addr,
                slot: if wraps { 0 } else { start + run.len() },
                cycle: cycle != wraps,
                done_ns: 0,
                run: start..start + run.len() + 1,
            };
            self.edma.program_events(|b0, ev| -> Result {
                if fresh {
                    forget_channel(b0, ev, dir, ch)?;
                    match dir {
                        Dir::Wr => start_list::<edma::Wr>(b0, ch, part.dev_addr)?,
                        Dir::Rd => start_list::<edma::Rd>(b0, ch, part.dev_addr)?,
                    }
                } else {
                    match dir {
                        Dir::Wr => ring_doorbell::<edma::Wr>(b0, ch)?,
                        Dir::Rd => ring_doorbell::<edma::Rd>(b0, ch)?,
                    }
                }
                ev.armed[d] |= bit;
                if let Some(r) = ev.rings[d].get_mut(idx) {
                    *r = after;
                }
                Ok(())
            })??;
            // Even with no time left the wait runs (and gives up at once): only its
            // failure path stops the channel the doorbell just started.
            lost |= self.wait_channel(dir, ch, deadline.remaining(), deadline.timeout)?;
            rest = next;
        }
        Ok(lost)
    }
}

fn off<D: Direction>(b0: &EdmaBar<'_>) {
    let all = edma::INT_MASK::zeroed().with_done(0xff).with_abort(0xff);
    b0.write(WithBase::of::<D>(), all);
    b0.write(
        WithBase::of::<D>(),
        edma::INT_CLEAR::from_raw(all.into_raw()),
    );
    b0.write(WithBase::of::<D>(), edma::ENGINE_EN::zeroed());
}

fn on<D: Direction>(b0: &EdmaBar<'_>, channels: u32, mode: IrqMode, msi: Option<MsiMsg>) {
    let chans = ((1u32 << channels) - 1) as u8;
    b0.write(
        WithBase::of::<D>(),
        edma::ENGINE_EN::zeroed().with_enable(true),
    );
    // Local interrupts (INTx) need the status unmasked; with IMWR they stay
    // masked so the card does not also raise its line.
    let mask = match mode {
        IrqMode::Intx => edma::INT_MASK::zeroed()
            .with_done(!chans)
            .with_abort(!chans),
        _ => edma::INT_MASK::zeroed().with_done(0xff).with_abort(0xff),
    };
    b0.write(WithBase::of::<D>(), mask);
    b0.write(
        WithBase::of::<D>(),
        edma::LL_ERR_EN::zeroed().with_ch(chans),
    );
    if let Some(msg) = msi {
        write_imwr::<D>(b0, msg);
    }
}

/// Points the done/abort IMWR writes of every channel of `D` at the MSI message.
fn write_imwr<D: Direction>(b0: &EdmaBar<'_>, msg: MsiMsg) {
    let Halves { lo, hi } = Halves::of(msg.addr);
    // CAST: the card keeps 16 bits of MSI data, which is all MSI data has.
    let d = msg.data as u16;
    b0.write(WithBase::of::<D>(), edma::DONE_IMWR_LO::from_raw(lo));
    b0.write(WithBase::of::<D>(), edma::DONE_IMWR_HI::from_raw(hi));
    b0.write(WithBase::of::<D>(), edma::ABORT_IMWR_LO::from_raw(lo));
    b0.write(WithBase::of::<D>(), edma::ABORT_IMWR_HI::from_raw(hi));
    for pair in 0..4 {
        if let Some(loc) = edma::CH_IMWR_DATA::of::<D>().try_at(pair) {
            b0.write(loc, edma::CH_IMWR_DATA::zeroed().with_even(d).with_odd(d));
        }
    }
}

/// The channels of a direction whose done or abort status is latched, without clearing it.
fn pending<D: edma::Direction>(b0: &EdmaBar<'_>) -> u8 {
    let st = b0.read(edma::INT_STATUS::of::<D>());
    // All ones: the card does not answer (in reset or gone), nothing is pending.
    if st.into_raw() == u32::MAX {
        return 0;
    }
    // CAST: both fields are 8 bits wide.
    (st.done().get() | st.abort().get()) as u8
}

/// Reads a direction's interrupt status once, clears what it saw and
/// returns its (done, abort) channel bits.
pub(crate) fn service_dir<D: edma::Direction>(b0: &EdmaBar<'_>) -> (u8, u8) {
    let st = b0.read(edma::INT_STATUS::of::<D>());
    // All ones: the card does not answer (in reset or gone), nothing is pending.
    if st.into_raw() == 0 || st.into_raw() == u32::MAX {
        return (0, 0);
    }
    b0.write(
        WithBase::of::<D>(),
        edma::INT_CLEAR::from_raw(st.into_raw()),
    );
    // CAST: both fields are 8 bits wide.
    (st.done().get() as u8, st.abort().get() as u8)
}
