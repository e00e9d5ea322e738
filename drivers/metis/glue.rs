// SPDX-License-Identifier: GPL-2.0

//! The only place that calls C directly.
//!
//! Everything here fills a gap in the 7.3 Rust abstractions (see
//! `docs/design.md`); each function should be replaced by the proper
//! abstraction once one exists upstream.

use kernel::{
    bindings,
    device::Bound,
    pci, //
};

fn raw(pdev: &pci::Device<Bound>) -> *mut bindings::pci_dev {
    // CAST: `pci::Device` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>`, which is
    // `#[repr(transparent)]` over `bindings::pci_dev`.
    core::ptr::from_ref(pdev)
        .cast_mut()
        .cast::<bindings::pci_dev>()
}

/// Stops the function from mastering the bus.
///
/// Called at unbind once the engine is stopped, so that nothing the card
/// still has queued can reach host memory after the driver lets go of it.
pub(crate) fn clear_master(pdev: &pci::Device<Bound>) {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed, and the device is
    // bound, which `pci_clear_master` requires.
    unsafe { bindings::pci_clear_master(raw(pdev)) };
}

/// Balances the `pci_enable_device_mem()` done at probe.
pub(crate) fn disable_device(pdev: &pci::Device<Bound>) {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed; probe enabled the
    // device exactly once, and this is called exactly once at unbind.
    unsafe { bindings::pci_disable_device(raw(pdev)) };
}
