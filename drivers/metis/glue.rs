// SPDX-License-Identifier: GPL-2.0

//! The only place that calls C directly.
//!
//! Everything here fills a gap in the 7.3 Rust abstractions (see
//! `docs/design.md`); each function should be replaced by the proper
//! abstraction once one exists upstream.

use kernel::{
    bindings,
    device::Bound,
    pci,
    prelude::*, //
};

mod shim {
    use kernel::ffi::{
        c_char,
        c_int,
        c_uint,
        c_void, //
    };

    // Declared by hand from drivers/metis/metis_shim.h (pointers as `c_void` so the
    // declarations do not depend on bindgen's layouts); keep the two in sync.
    unsafe extern "C" {
        pub(super) fn metis_shim_msi_msg(
            pdev: *mut c_void,
            vec: c_uint,
            addr: *mut u64,
            data: *mut u32,
        ) -> c_int;
        pub(super) fn metis_shim_iommu_mode(dev: *mut c_void) -> c_int;
        pub(super) fn metis_shim_firmware_name() -> *const c_char;
        pub(super) fn metis_shim_irq_mode_param() -> c_int;
    }
}

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

/// The MSI message (address, data) the kernel composed for vector `vec`.
///
/// Only meaningful while MSI or MSI-X vectors are allocated.
pub(crate) fn msi_msg(pdev: &pci::Device<Bound>, vec: u32) -> Result<(u64, u32)> {
    let (mut addr, mut data) = (0u64, 0u32);
    // SAFETY: `raw` is a valid `pci_dev` while `pdev` is borrowed; the out pointers are valid
    // for writes for the duration of the call.
    let ret = unsafe { shim::metis_shim_msi_msg(raw(pdev).cast(), vec, &mut addr, &mut data) };
    kernel::error::to_result(ret)?;
    Ok((addr, data))
}

/// What stands between the card's DMA and memory: 0 nothing, 1 an identity
/// (passthrough) IOMMU domain, 2 a translating domain.
pub(crate) fn iommu_mode(pdev: &pci::Device<Bound>) -> u32 {
    let dev: &kernel::device::Device = pdev.as_ref();
    // CAST: `device::Device` is a transparent wrapper over `bindings::device`.
    let raw_dev = core::ptr::from_ref(dev).cast_mut().cast::<kernel::ffi::c_void>();
    // SAFETY: `raw_dev` is valid while `pdev` is borrowed.
    let mode = unsafe { shim::metis_shim_iommu_mode(raw_dev) };
    u32::try_from(mode).unwrap_or(0)
}

/// The `firmware` module parameter, if set.
///
/// Strings can't be Rust module parameters in 7.3, so the shim declares it.
pub(crate) fn firmware_param() -> Option<&'static CStr> {
    // SAFETY: The shim returns NULL or the module parameter's NUL-terminated string, which
    // lives as long as the module and is read-only (permission 0444).
    let p = unsafe { shim::metis_shim_firmware_name() };
    if p.is_null() {
        return None;
    }
    // SAFETY: Checked non-NULL above; NUL-terminated per the shim's contract.
    Some(unsafe { CStr::from_char_ptr(p) })
}

/// The `irq_mode` module parameter: 0 auto, 1 MSI-X, 2 MSI, 3 INTx, 4 polling.
pub(crate) fn irq_mode_param() -> i32 {
    // SAFETY: Reads an int module parameter.
    unsafe { shim::metis_shim_irq_mode_param() }
}
