// SPDX-License-Identifier: GPL-2.0

//! Admission of work to the card, and outages.
//!
//! Every operation that touches the hardware or maps memory for it holds an
//! [`Admission`]; a reset, a system sleep or a reset from outside holds an
//! [`Outage`], which waits for the admitted work to leave and keeps new work
//! waiting until it ends. Unbind closes the gate and waits for everyone to
//! leave, so holding either proves the device is still bound: both hand out
//! the bound device, and no call site needs `unsafe` for it.
//!
//! An outage that spans two callbacks (suspend and resume, `reset_prepare`
//! and `reset_done`) is parked as a [`ParkedOutage`] in between: the second
//! callback ends only an outage the first one actually began.

use kernel::{
    device::{
        Bound,
        Device, //
    },
    new_condvar, new_mutex, pci,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
};

/// The gate's bookkeeping, free of locks so that its rules can be unit-tested.
///
/// # Invariants
///
/// `users` counts the live [`Admission`]s, [`OwnedAdmission`]s, [`Outage`]s
/// and [`ParkedOutage`]s; `outage` is true exactly while one outage exists.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GateState {
    open: bool,
    outage: bool,
    users: u32,
}

/// What a request to enter finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Entered.
    In,
    /// An outage is in progress: wait for it to end and ask again.
    Wait,
    /// Unbind has begun (or probe has not finished): `ENODEV`.
    Closed,
}

impl GateState {
    fn admit(&mut self) -> Entry {
        if !self.open {
            return Entry::Closed;
        }
        if self.outage {
            return Entry::Wait;
        }
        self.users += 1;
        Entry::In
    }

    fn begin_outage(&mut self) -> Entry {
        let e = self.admit();
        if e == Entry::In {
            self.outage = true;
        }
        e
    }

    fn leave(&mut self) {
        // The invariant makes this a counted exit; saturating keeps an impossible
        // extra exit from wrapping into "busy forever" for unbind.
        self.users = self.users.saturating_sub(1);
    }

    fn end_outage(&mut self) {
        self.outage = false;
        self.leave();
    }

    /// The outage holder is the only user left.
    fn alone(&self) -> bool {
        self.users <= 1
    }
}

/// Admission of work to one card; see the module documentation.
#[pin_data]
pub(crate) struct Gate {
    pdev: ARef<pci::Device>,
    #[pin]
    state: Mutex<GateState>,
    /// Signalled whenever someone leaves or an outage ends.
    #[pin]
    cv: CondVar,
}

/// One operation admitted to the card; see [`Gate::enter`].
pub(crate) struct Admission<'a>(&'a Gate);

/// An outage of the card; see [`Gate::begin_outage`]. Ends when dropped.
pub(crate) struct Outage<'a>(&'a Gate);

/// An outage begun by one callback and ended by another; see [`Outage::park`].
///
/// Dropping it without [`Gate::resume_outage`] leaves the card closed to
/// new work until unbind, which is what a failed recovery needs.
pub(crate) struct ParkedOutage(());

impl Gate {
    pub(crate) fn new(pdev: ARef<pci::Device>) -> impl PinInit<Self> {
        pin_init!(Self {
            pdev,
            state <- new_mutex!(GateState::default(), "metis_gate"),
            cv <- new_condvar!("metis_gate_cv"),
        })
    }

    /// Lets work in (end of probe).
    pub(crate) fn open(&self) {
        self.state.lock().open = true;
    }

    /// Refuses new work from now on; those inside stay until they leave.
    pub(crate) fn close(&self) {
        self.state.lock().open = false;
        self.cv.notify_all();
    }

    /// Whether unbind has begun.
    pub(crate) fn closed(&self) -> bool {
        !self.state.lock().open
    }

    /// Whether an outage is in progress.
    pub(crate) fn in_outage(&self) -> bool {
        self.state.lock().outage
    }

    /// Admits one operation, waiting while an outage is in progress. Fails
    /// with `ENODEV` once the card is going away and `ERESTARTSYS` on a
    /// signal (or the freezer: the call is restarted after system sleep).
    pub(crate) fn enter(&self) -> Result<Admission<'_>> {
        let mut g = self.state.lock();
        loop {
            match g.admit() {
                // INVARIANT: counted in `users` just now.
                Entry::In => return Ok(Admission(self)),
                Entry::Closed => return Err(ENODEV),
                Entry::Wait => {
                    if self.cv.wait_interruptible(&mut g) {
                        return Err(ERESTARTSYS);
                    }
                }
            }
        }
    }

    /// Admits one operation if that needs no wait: `None` during an outage and
    /// once the card is going away. For readers that must not delay anyone (debugfs).
    pub(crate) fn try_enter(&self) -> Option<Admission<'_>> {
        match self.state.lock().admit() {
            // INVARIANT: counted in `users` just now.
            Entry::In => Some(Admission(self)),
            Entry::Closed | Entry::Wait => None,
        }
    }

    /// Makes the caller the only one to enter until the outage ends: new
    /// work waits; work already inside is waited for by [`Outage::wait_alone`].
    ///
    /// Concurrent outages take turns. Not interruptible: PM and PCI callers
    /// can't take a signal for an answer. Fails with `ENODEV` once unbind has begun.
    pub(crate) fn begin_outage(&self) -> Result<Outage<'_>> {
        let mut g = self.state.lock();
        loop {
            match g.begin_outage() {
                // INVARIANT: counted in `users` and `outage` set just now.
                Entry::In => return Ok(Outage(self)),
                Entry::Closed => return Err(ENODEV),
                Entry::Wait => self.cv.wait(&mut g),
            }
        }
    }

    /// Takes back an outage parked by an earlier callback.
    pub(crate) fn resume_outage(&self, parked: ParkedOutage) -> Outage<'_> {
        // The count and the flag moved from `parked` to the returned outage.
        let ParkedOutage(()) = parked;
        Outage(self)
    }

    /// Waits until nobody is inside (unbind, after [`Self::close`]). An
    /// outage in progress counts, and must have ended or been given up.
    pub(crate) fn wait_empty(&self) {
        let mut g = self.state.lock();
        while g.users > 0 {
            self.cv.wait(&mut g);
        }
    }

    fn leave(&self) {
        self.state.lock().leave();
        self.cv.notify_all();
    }

    /// The device, bound for as long as `'a`.
    ///
    /// # Safety
    ///
    /// The caller must hold an entry of this gate for `'a`.
    unsafe fn bound(&self) -> &Device<Bound> {
        let dev: &Device = self.pdev.as_ref();
        // SAFETY: `dev` is a valid, referenced device. It is bound: the caller holds an entry,
        // and unbind closes the gate and waits in `wait_empty` for every entry to leave before
        // the device is unbound.
        unsafe { Device::<Bound>::from_raw(core::ptr::from_ref(dev).cast_mut().cast()) }
    }
}

impl Admission<'_> {
    /// The device, bound while the admission lives (DMA mappings need it).
    pub(crate) fn device(&self) -> &Device<Bound> {
        // SAFETY: `self` is an entry of the gate, held for the returned borrow.
        unsafe { self.0.bound() }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl<'a> Outage<'a> {
    /// The device, bound while the outage lives.
    pub(crate) fn device(&self) -> &Device<Bound> {
        // SAFETY: `self` is an entry of the gate, held for the returned borrow.
        unsafe { self.0.bound() }
    }

    /// Waits until the outage is the only user left.
    pub(crate) fn wait_alone(&self) {
        let mut g = self.0.state.lock();
        while !g.alone() {
            self.0.cv.wait(&mut g);
        }
    }

    /// As [`Self::wait_alone`], for at most `limit`; whether it got there.
    pub(crate) fn wait_alone_for(&self, limit: Delta) -> bool {
        let start = Instant::<Monotonic>::now();
        let mut g = self.0.state.lock();
        while !g.alone() {
            let elapsed = start.elapsed();
            if elapsed >= limit {
                return false;
            }
            let ms = u32::try_from((limit - elapsed).as_millis()).unwrap_or(u32::MAX);
            let _ = self
                .0
                .cv
                .wait_interruptible_timeout(&mut g, msecs_to_jiffies(ms.max(1)));
        }
        true
    }

    /// Keeps the outage going after the callback that began it returns.
    pub(crate) fn park(self) -> ParkedOutage {
        core::mem::forget(self);
        ParkedOutage(())
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        self.0.state.lock().end_outage();
        self.0.cv.notify_all();
    }
}

/// Something that has a gate (the card).
pub(crate) trait HasGate {
    fn gate(&self) -> &Gate;
}

/// An admission that owns a reference to what it was admitted to, for work
/// that outlives the call that started it (async jobs).
///
/// # Invariants
///
/// Holds one entry of `owner`'s gate, left in `Drop`.
pub(crate) struct OwnedAdmission<C: HasGate> {
    owner: Arc<C>,
}

impl<C: HasGate> OwnedAdmission<C> {
    /// Enters `owner`'s gate as [`Gate::enter`] does.
    pub(crate) fn new(owner: Arc<C>) -> Result<Self> {
        core::mem::forget(owner.gate().enter()?);
        // INVARIANT: the entry just made now belongs to this value.
        Ok(Self { owner })
    }

    pub(crate) fn owner(&self) -> &Arc<C> {
        &self.owner
    }

    pub(crate) fn device(&self) -> &Device<Bound> {
        // SAFETY: `self` holds an entry of the gate for the returned borrow.
        unsafe { self.owner.gate().bound() }
    }
}

impl<C: HasGate> Drop for OwnedAdmission<C> {
    fn drop(&mut self) {
        self.owner.gate().leave();
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_gate)]
mod tests {
    use super::{
        Entry,
        GateState, //
    };

    fn open() -> GateState {
        GateState {
            open: true,
            ..Default::default()
        }
    }

    #[test]
    fn closed_until_probe_opens_it() {
        let mut g = GateState::default();
        assert_eq!(g.admit(), Entry::Closed);
        assert_eq!(g.begin_outage(), Entry::Closed);
        assert_eq!(g.users, 0);
    }

    #[test]
    fn users_wait_for_an_outage_and_come_back_after_it() {
        let mut g = open();
        assert_eq!(g.admit(), Entry::In);
        assert_eq!(g.begin_outage(), Entry::In);
        assert!(!g.alone());
        assert_eq!(g.admit(), Entry::Wait);
        // A second outage takes its turn.
        assert_eq!(g.begin_outage(), Entry::Wait);
        g.leave();
        assert!(g.alone());
        g.end_outage();
        assert_eq!(g, open());
        assert_eq!(g.admit(), Entry::In);
    }

    #[test]
    fn unbind_refuses_everyone_and_counts_to_zero() {
        let mut g = open();
        assert_eq!(g.admit(), Entry::In);
        assert_eq!(g.begin_outage(), Entry::In);
        g.open = false;
        assert_eq!(g.admit(), Entry::Closed);
        assert_eq!(g.begin_outage(), Entry::Closed);
        g.leave();
        g.end_outage();
        assert_eq!(g.users, 0);
        assert!(!g.outage);
    }

    // The bug the parked outage removes: after a permanent PCIe error closed the
    // gate, suspend found it closed and began nothing; resume must then end nothing.
    // With `ParkedOutage` the end is only reachable from a begin that succeeded, so
    // here the state is simply never touched.
    #[test]
    fn a_refused_outage_leaves_nothing_to_end() {
        let mut g = open();
        g.open = false;
        assert_eq!(g.begin_outage(), Entry::Closed);
        assert_eq!(g.users, 0);
        assert!(!g.outage);
    }

    #[test]
    fn an_extra_exit_does_not_wrap() {
        let mut g = open();
        g.leave();
        assert_eq!(g.users, 0);
    }
}
