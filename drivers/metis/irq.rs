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
    time::Delta,
};

use crate::{
    card::Card,
    glue,
    vmsi, //
};

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
    /// Takes pending events off the card (the engine's status registers and
    /// the virtual-MSI table) and latches them. Returns whether anything was pending.
    ///
    /// Called from the interrupt handler and by pollers; safe in atomic context.
    pub(crate) fn service(&self) -> bool {
        let mut ev = self.edma.events.lock();
        let engine = self.edma.take_completions(&mut ev);
        // Every firmware source is counted for the vendor node's waits (device messages
        // and AI cores are not this driver's business otherwise).
        let sources = self.vmsi.take();
        if !engine && sources == 0 {
            return false;
        }
        ev.mailbox |= sources & (1 << vmsi::SRC_COMMAND) != 0;
        ev.sources.add(sources);
        drop(ev);
        self.edma.event_cv.notify_all();
        if sources != 0 {
            self.source_poll.notify_all();
        }
        true
    }

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

// TIMEOUT: the self-test moves 64 bytes; an interrupt that has not arrived
// after 200 ms is not coming.
const SELF_TEST_TIMEOUT: Delta = Delta::from_millis(200);

type IrqReg<'bound> = irq::Registration<'bound, MetisIrq>;

/// How completions reach the driver: a vector with its handler, or polling.
///
/// Fields drop in declaration order: the handler is freed before the vector
/// it was requested on.
pub(crate) struct Interrupts<'bound> {
    irq: Option<Pin<KBox<IrqReg<'bound>>>>,
    pub(crate) vectors: Option<KBox<pci::IrqVectorRegistration<'bound>>>,
    pub(crate) mode: IrqMode,
}

/// Allocates one vector of the wanted types and installs the handler.
pub(crate) fn setup_irq<'bound>(
    pdev: &'bound pci::Device<Bound>,
    card: &Arc<Card>,
) -> Result<Interrupts<'bound>> {
    let none = Interrupts {
        irq: None,
        vectors: None,
        mode: IrqMode::Poll,
    };
    let Some(types) = wanted_types(pdev) else {
        return Ok(none);
    };
    let vectors = match pdev.alloc_irq_vectors(1, 1, types) {
        Ok(v) => KBox::new(v, GFP_KERNEL)?,
        Err(e) => {
            dev_warn!(
                pdev,
                "no interrupt vector available ({:?}); completions will be polled\n",
                e
            );
            return Ok(none);
        }
    };
    let mode = mode_of(vectors.irq_type());
    // SAFETY: The registration lives in the box, which moves into `Interrupts` together with
    // the IRQ registration borrowing it; `Interrupts` declares (so drops) the IRQ registration
    // first, so the reference never outlives the box. The box's heap address does not change on
    // moves. (7.3 has no self-referential pin-init; nova-core does the same.)
    let vref: &'bound pci::IrqVectorRegistration<'bound> =
        unsafe { &*core::ptr::from_ref::<pci::IrqVectorRegistration<'bound>>(&*vectors) };
    let flags = if mode == IrqMode::Intx {
        irq::Flags::SHARED
    } else {
        irq::Flags::TRIGGER_NONE
    };
    card.irq_number.store(glue::irq_number(pdev, 0)?, Relaxed);
    let handler = MetisIrq::new(card.clone());
    // SAFETY: The registration is stored in `Metis` and dropped normally, never forgotten.
    let reg = unsafe {
        irq::Registration::new(
            vref.index(0)?.into(),
            flags,
            c"metis",
            Ok::<_, Error>(handler),
        )
    };
    let irq = KBox::pin_init(reg, GFP_KERNEL)?;
    Ok(Interrupts {
        irq: Some(irq),
        vectors: Some(vectors),
        mode,
    })
}

impl<'bound> Interrupts<'bound> {
    /// Enables the engine's signalling for the chosen mode and proves that
    /// completions arrive: a 64-byte round trip through the engine. When the
    /// interrupt never comes, frees it and falls back to polling.
    ///
    /// On failure the card is quiesced before the interrupt is freed (R2.4).
    pub(crate) fn prove(mut self, pdev: &'bound pci::Device<Bound>, card: &Card) -> Result<Self> {
        match self.self_test(pdev, card) {
            Ok(()) => Ok(self),
            Err(e) => {
                card.quiesce();
                Err(e)
            }
        }
    }

    fn self_test(&mut self, pdev: &'bound pci::Device<Bound>, card: &Card) -> Result {
        let msi = match self.mode {
            IrqMode::Msi | IrqMode::MsiX => Some(glue::msi_msg(pdev, 0)?),
            _ => None,
        };
        card.edma.on(self.mode, msi)?;
        card.adopt_interface()?;
        if self.mode != IrqMode::Poll {
            match card.self_test(pdev.as_ref(), SELF_TEST_TIMEOUT) {
                Ok(()) => {
                    dev_info!(
                        pdev,
                        "interrupt self-test passed ({})\n",
                        mode_name(self.mode)
                    );
                    return Ok(());
                }
                Err(e) if e == ETIMEDOUT => {
                    // The engine finished but the interrupt never came: typical of a VM whose
                    // interrupt remapping drops the card's IMWR writes (field report R3).
                    dev_warn!(
                        pdev,
                        "interrupt self-test: no {} interrupt within {} ms; falling back to \
                         polling (DMA works, at some CPU cost). Check interrupt remapping / VFIO \
                         setup, or load with irq_mode=4 to skip this test\n",
                        mode_name(self.mode),
                        SELF_TEST_TIMEOUT.as_millis()
                    );
                    card.quiesce();
                    self.irq = None;
                    self.vectors = None;
                    self.mode = IrqMode::Poll;
                    card.edma.on(IrqMode::Poll, None)?;
                    card.forget_events();
                }
                Err(e) => return Err(e),
            }
        }
        card.self_test(pdev.as_ref(), SELF_TEST_TIMEOUT)
            .inspect_err(|e| {
                dev_err!(
                    pdev,
                    "eDMA self-test failed in polling mode too ({:?})\n",
                    e
                )
            })
    }
}
