// SPDX-License-Identifier: GPL-2.0

//! Driver for the Axelera Metis AI accelerator (M.2 and PCIe cards).
//!
//! The card is a PCIe endpoint with a host interface area in BAR0 and a
//! DesignWare eDMA engine plus a device-memory window in BAR2. The register
//! contract this driver follows is documented in `docs/hw-interface.md`.

mod card;
mod crc32;
mod driver;
mod edma;
mod file;
mod fw;
mod fw_image;
mod glue;
mod irq;
mod ll;
mod mem;
mod regs;
mod reset;
mod uapi;
mod vsec;

kernel::module_pci_driver! {
    type: driver::MetisDriver,
    name: "metis",
    authors: ["The metis developers"],
    description: "Axelera Metis AIPU PCIe driver",
    license: "GPL",
    firmware: ["axelera/metis-fw-if1.bin"],
}
