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
        atomic::Relaxed,
        Arc, //
    },
};

use crate::card::{
    Card,
    IrqMode, //
};

/// The interrupt handler: takes events off the card and wakes waiters.
pub(crate) struct MetisIrq {
    pub(crate) card: Arc<Card>,
}

impl irq::Handler for MetisIrq {
    fn handle(&self) -> irq::IrqReturn {
        if self.card.service() {
            self.card.irqs.fetch_add(1, Relaxed);
            irq::IrqReturn::Handled
        } else {
            // Shared INTx line, or a spurious or duplicate message.
            irq::IrqReturn::None
        }
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
