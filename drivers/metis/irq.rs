// SPDX-License-Identifier: GPL-2.0

//! Interrupt setup: vector allocation, the handler, and the probe-time
//! self-test that falls back to polling when interrupts do not arrive.
//!
//! One vector serves every source: the engine's IMWR has a single address
//! per direction, and with fewer vectors than sources the card folds
//! everything onto vector 0 anyway (`docs/hw-interface.md`). The handler
//! finds the source by reading the status registers.

use kernel::{
    device::Bound,
    irq, pci,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

use crate::card::Card;

/// How the card tells the host that something completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum IrqMode {
    /// No interrupt: waiters read the status registers.
    Poll = 0,
    /// Legacy line interrupt; the engine's local interrupt is unmasked.
    Intx = 1,
    /// MSI; the engine signals with IMWR writes of the MSI message.
    Msi = 2,
    /// MSI-X; as MSI.
    MsiX = 3,
}

impl IrqMode {
    pub(crate) fn from_raw(v: u32) -> Self {
        match v {
            1 => Self::Intx,
            2 => Self::Msi,
            3 => Self::MsiX,
            _ => Self::Poll,
        }
    }
}

/// Storm detection works on windows of this many interrupts.
const WINDOW: u32 = 1000;
/// A window in which at least this many interrupts found nothing pending is a storm window.
const STORM_UNHANDLED: u32 = 900;
/// Storm windows in a row after which the vector is treated as storming: 5000
/// interrupts, far below the 99 900 in 100 000 at which the kernel's
/// spurious-interrupt detector disables a line itself, far above the odd
/// duplicate message of a healthy card.
const STORM_WINDOWS: u32 = 5;

/// The interrupt handler: takes events off the card and wakes waiters.
///
/// The counters are only touched by the handler, which the kernel never runs
/// concurrently with itself for one interrupt.
pub(crate) struct MetisIrq {
    card: Arc<Card>,
    /// Interrupts in the current window, and how many of them found nothing to do.
    seen: Atomic<u32>,
    unhandled: Atomic<u32>,
    /// Storm windows in a row.
    storm_windows: Atomic<u32>,
}

impl MetisIrq {
    pub(crate) fn new(card: Arc<Card>) -> Self {
        Self {
            card,
            seen: Atomic::new(0),
            unhandled: Atomic::new(0),
            storm_windows: Atomic::new(0),
        }
    }

    /// Counts one interrupt; true when the vector has been storming long enough.
    fn storming(&self, handled: bool) -> bool {
        if !handled {
            self.unhandled.fetch_add(1, Relaxed);
        }
        if self.seen.fetch_add(1, Relaxed) + 1 < WINDOW {
            return false;
        }
        self.seen.store(0, Relaxed);
        if self.unhandled.xchg(0, Relaxed) < STORM_UNHANDLED {
            self.storm_windows.store(0, Relaxed);
            return false;
        }
        self.storm_windows.fetch_add(1, Relaxed) + 1 == STORM_WINDOWS
    }
}

impl irq::Handler for MetisIrq {
    fn handle(&self) -> irq::IrqReturn {
        let handled = self.card.service();
        if handled {
            self.card.irqs.fetch_add(1, Relaxed);
        }
        // A shared INTx line legitimately brings other devices' interrupts.
        let msi = matches!(self.card.edma.irq_mode(), IrqMode::Msi | IrqMode::MsiX);
        if msi && self.storming(handled) {
            self.card.storm_fallback(STORM_WINDOWS * WINDOW);
            return irq::IrqReturn::Handled;
        }
        if handled {
            irq::IrqReturn::Handled
        } else {
            // Shared INTx line, or a spurious or duplicate message.
            irq::IrqReturn::None
        }
    }
}

impl Card {
    /// The card floods its vector with messages that signal nothing: mask the
    /// vector and complete jobs by polling from now on (until the module is
    /// reloaded), instead of spending the CPU in the handler.
    fn storm_fallback(&self, count: u32) {
        crate::glue::disable_irq_nosync(self.irq_number.load(Relaxed));
        self.edma.set_irq_mode(IrqMode::Poll);
        // Waiters sleeping for an interrupt switch to polling.
        self.edma.event_cv.notify_all();
        dev_err!(
            self.pdev,
            "interrupt storm: nearly all of the last {} interrupts had nothing pending; vector \
             masked, completions are polled until the driver is reloaded\n",
            count
        );
    }
}

/// Which interrupt types to try, from the `irq_mode` parameter.
pub(crate) fn wanted_types(pdev: &pci::Device<Bound>) -> Option<pci::IrqTypes> {
    let t = pci::IrqTypes::default();
    match crate::glue::irq_mode_param() {
        1 => Some(t.with(pci::IrqType::MsiX)),
        2 => Some(t.with(pci::IrqType::Msi)),
        3 => Some(t.with(pci::IrqType::Intx)),
        4 => None,
        0 => Some(pci::IrqTypes::all()),
        other => {
            dev_warn!(
                pdev,
                "irq_mode={} is not 0..4; using automatic selection\n",
                other
            );
            Some(pci::IrqTypes::all())
        }
    }
}

pub(crate) fn mode_of(t: pci::IrqType) -> IrqMode {
    match t {
        pci::IrqType::MsiX => IrqMode::MsiX,
        pci::IrqType::Msi => IrqMode::Msi,
        pci::IrqType::Intx => IrqMode::Intx,
    }
}

pub(crate) fn mode_name(m: IrqMode) -> &'static str {
    match m {
        IrqMode::Poll => "polling",
        IrqMode::Intx => "INTx",
        IrqMode::Msi => "MSI",
        IrqMode::MsiX => "MSI-X",
    }
}
