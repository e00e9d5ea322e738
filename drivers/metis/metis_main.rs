// SPDX-License-Identifier: GPL-2.0

//! Driver for the Axelera Metis AI accelerator (M.2 and PCIe cards).
//!
//! The card is a PCIe endpoint with a DesignWare eDMA engine in BAR0 and a
//! window onto its L2 memory in BAR2, where the firmware publishes its
//! interface structure. The contract this driver follows, tagged known or
//! model item by item, is `docs/hw-interface.md`.

mod boot;
mod card;
mod crc32;
mod driver;
mod edma;
mod ffi;
mod file;
mod fw;
mod fw_image;
mod gate;
mod glue;
mod iface;
mod inspect;
mod irq;
mod jobs;
mod ll;
mod mem;
mod pm;
mod ratelimit;
mod regs;
mod reset;
mod stats;
mod sysfs;
mod uapi;
mod vmsi;
mod vsec;

use kernel::{
    debugfs,
    driver::Registration,
    prelude::*, //
    InPlaceModule,
};

/// The driver's version (sysfs `driver_version`); the packages carry the same
/// (`packaging/deb/build.sh` checks).
pub(crate) const DRIVER_VERSION: &str = "0.1.0";

/// `/sys/kernel/debug/metis/`, the parent of each card's directory.
///
/// Set before the driver is registered and cleared after it is unregistered
/// (see [`MetisModule`]), so no probe runs while it changes.
static mut DEBUGFS_ROOT: Option<debugfs::Dir> = None;

/// The debugfs root, for probe.
pub(crate) fn debugfs_root() -> Option<&'static debugfs::Dir> {
    let root = &raw const DEBUGFS_ROOT;
    // SAFETY: Only probe calls this, and probe runs only while the driver is registered, when
    // `DEBUGFS_ROOT` does not change (see `DEBUGFS_ROOT`).
    unsafe { (*root).as_ref() }
}

/// Clears [`DEBUGFS_ROOT`] when dropped, which is after the driver registration.
struct DebugfsRoot;

impl Drop for DebugfsRoot {
    fn drop(&mut self) {
        // SAFETY: Dropped after `_driver` (field order): the driver is unregistered, so no
        // probe runs and every card's directory (which holds a reference to the root) is gone.
        unsafe { DEBUGFS_ROOT = None };
    }
}

/// The module: the PCI driver registration (through [`ffi::MetisAdapter`], which
/// adds the power-management and error callbacks), then the debugfs root.
#[pin_data]
struct MetisModule {
    #[pin]
    _driver: Registration<ffi::MetisAdapter>,
    _debugfs: DebugfsRoot,
}

impl InPlaceModule for MetisModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Module init runs alone: the driver is not registered yet, so nothing reads it.
        unsafe { DEBUGFS_ROOT = Some(debugfs::Dir::new(c"metis")) };
        try_pin_init!(Self {
            _driver <- Registration::new(c"metis", module),
            _debugfs: DebugfsRoot,
        })
    }
}

module! {
    type: MetisModule,
    name: "metis",
    authors: ["The metis developers"],
    description: "Axelera Metis AIPU PCIe driver",
    license: "GPL",
    firmware: ["axelera/metis-fw-if1.bin"],
    params: {
        irq_mode: i32 {
            default: 0,
            description: "Interrupt mode: 0 auto (MSI-X, MSI, INTx, polling), 1 MSI-X, 2 MSI, 3 INTx, 4 polling",
        },
        fw_owner: i32 {
            default: 0,
            description: "Who loads the card's firmware: 0 auto (the driver, when the card's bootloader advertises the boot protocol it implements; else userspace), 1 the driver, 2 userspace (the vendor runtime)",
        },
        autosuspend_ms: i32 {
            default: -1,
            description: "Runtime PM: put a card nobody has open into D3hot after this many ms idle; -1 (default) keeps it powered (a wake costs a firmware boot on cards that lose it in D3hot)",
        },
    },
}
