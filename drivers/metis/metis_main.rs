// SPDX-License-Identifier: GPL-2.0

//! Driver for the Axelera Metis AI accelerator (M.2 and PCIe cards).
//!
//! The card is a PCIe endpoint with a DesignWare eDMA engine in BAR0 and a
//! window onto its L2 memory in BAR2, where the firmware publishes its
//! interface structure. The contract this driver follows, tagged known or
//! model item by item, is `docs/hw-interface.md`.

mod attach_cache;
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
mod registered;
mod regs;
mod reset;
mod stats;
mod sysfs;
mod uapi;
mod vendor;
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

/// What all cards share.
pub(crate) struct Shared {
    /// `/sys/kernel/debug/metis/`, the parent of each card's directory.
    pub(crate) debugfs: debugfs::Dir,
    /// The queue async DMA jobs run on.
    pub(crate) jobs: glue::JobQueue,
    /// With `vendor_abi=`: the level its nodes present, and their class.
    pub(crate) vendor: Option<(vendor::Level, glue::VendorClass)>,
}

/// Set in module init before the driver is registered, and cleared (the queue destroyed,
/// after draining) in module exit after it is unregistered.
static mut SHARED: Option<Shared> = None;

/// What all cards share; `None` only outside the module's lifetime.
///
/// Its users are probe and unbind (which run only while the driver is registered) and
/// file operations (an open file pins the module, so module exit can't run meanwhile).
pub(crate) fn shared() -> Option<&'static Shared> {
    let shared = &raw const SHARED;
    // SAFETY: `SHARED` changes only in module init and exit, when none of the users above can
    // run (see `SHARED`).
    unsafe { (*shared).as_ref() }
}

/// Sets [`SHARED`] up, and clears it when dropped, which is after the driver registration.
struct SharedGuard;

impl SharedGuard {
    fn new() -> Result<Self> {
        let vendor = match vendor::Level::from_param()? {
            Some(level) => Some((
                level,
                glue::VendorClass::create(level.version(), ffi::vendor_fops())?,
            )),
            None => None,
        };
        let shared = Shared {
            debugfs: debugfs::Dir::new(c"metis"),
            jobs: glue::JobQueue::new()?,
            vendor,
        };
        // SAFETY: Module init runs alone: the driver is not registered yet, so nothing reads it.
        unsafe { SHARED = Some(shared) };
        Ok(Self)
    }
}

impl Drop for SharedGuard {
    fn drop(&mut self) {
        // SAFETY: Dropped after `_driver` (field order): the driver is unregistered, so no probe
        // or unbind runs, every card's directory (which holds a reference to the root) is gone,
        // and no file is open (each pins the module). Destroying the queue waits for the work
        // items still running after their file was closed.
        unsafe { SHARED = None };
        glue::dmabuf_exit();
    }
}

/// The module: the PCI driver registration (through [`ffi::MetisAdapter`], which
/// adds the power-management and error callbacks), then the debugfs root.
#[pin_data]
struct MetisModule {
    #[pin]
    _driver: Registration<ffi::MetisAdapter>,
    _shared: SharedGuard,
}

impl InPlaceModule for MetisModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // `_shared` is set up first (so a failed registration clears it again) and
        // dropped last (declaration order).
        try_pin_init!(Self {
            _shared: SharedGuard::new()?,
            _driver <- Registration::new(c"metis", module),
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
