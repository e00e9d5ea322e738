// SPDX-License-Identifier: GPL-2.0

//! PCI driver: probe, unbind and the per-card data.

use kernel::{
    device::{
        Bound,
        Core, //
    },
    dma::{
        Device as _,
        DmaMask, //
    },
    io::Io,
    pci,
    prelude::*, //
};

use crate::{
    glue,
    regs::{
        self,
        bar0,
        edma, //
    },
    vsec,
};

/// Axelera AI's PCI vendor ID (not in `pci_ids.h` yet).
const PCI_VENDOR_ID_AXELERA: u16 = 0x1f9d;
/// The Metis AIPU.
const PCI_DEVICE_ID_METIS: u32 = 0x1100;

// SAFETY: `pci::Vendor` is `#[repr(transparent)]` over `u16` and any 16-bit value is a vendor ID.
const AXELERA: pci::Vendor = unsafe { core::mem::transmute::<u16, pci::Vendor>(PCI_VENDOR_ID_AXELERA) };

pub(crate) struct MetisDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <MetisDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(AXELERA, PCI_DEVICE_ID_METIS), ())]
);

type Bar0<'bound> = pci::Bar<'bound, { regs::BAR0_SIZE }>;
type Bar2<'bound> = pci::Bar<'bound, { regs::BAR2_SIZE }>;

/// One bound Metis card.
pub(crate) struct Metis<'bound> {
    pdev: &'bound pci::Device<Bound>,
    bar0: Bar0<'bound>,
    bar2: Bar2<'bound>,
}

/// Fails with a message that tells the user what to do when a BAR is missing or short.
///
/// On RK3588 boards the root port's memory window is often smaller than the
/// card's 32 MiB BAR2 (field report R1.1); the kernel then leaves the BAR
/// unassigned or truncated and mapping it would fail with a bare `-ENOMEM`.
fn check_bar(pdev: &pci::Device<Bound>, bar: u32, needed: usize) -> Result {
    let start = pdev.resource_start(bar)?;
    let len = pdev.resource_len(bar)?;
    let needed_len = u64::try_from(needed).map_err(|_| EINVAL)?;
    if start != 0 && len >= needed_len {
        return Ok(());
    }
    dev_err!(
        pdev,
        "BAR{} is {} KiB at {:#x} but the card needs {} KiB: the PCIe memory window of the \
         upstream port is too small or the BAR was not assigned. On a Rock 5B / RK3588 board \
         apply the metis PCIe window overlay (dts-overlays/, see docs/rk3588.md)\n",
        bar,
        len / 1024,
        start,
        needed / 1024
    );
    Err(ENOSPC)
}

impl Metis<'_> {
    /// Masks every eDMA interrupt source and stops both engines.
    ///
    /// Used at probe, before anything else touches the engine (a previous
    /// driver may have left it running), and at unbind, before the IRQs and
    /// DMA memory go away.
    fn quiesce_edma(&self) {
        let all = edma::WR_INT_MASK::zeroed()
            .with_const_done::<0xff>()
            .with_const_abort::<0xff>()
            .into_raw();
        self.bar2.write_reg(edma::WR_INT_MASK::from_raw(all));
        self.bar2.write_reg(edma::RD_INT_MASK::from_raw(all));
        self.bar2.write_reg(edma::WR_INT_CLEAR::from_raw(all));
        self.bar2.write_reg(edma::RD_INT_CLEAR::from_raw(all));
        self.bar2.write_reg(edma::WR_ENGINE_EN::zeroed());
        self.bar2.write_reg(edma::RD_ENGINE_EN::zeroed());
    }

    fn mem_size(&self) -> u64 {
        let lo = self.bar0.read(bar0::MEM_SIZE_LO).value().get();
        let hi = self.bar0.read(bar0::MEM_SIZE_HI).value().get();
        u64::from(hi) << 32 | u64::from(lo)
    }
}

impl pci::Driver for MetisDriver {
    type IdInfo = ();
    type Data<'bound> = Metis<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        check_bar(pdev, 0, regs::BAR0_SIZE)?;
        check_bar(pdev, 2, regs::BAR2_SIZE)?;

        let loc = vsec::find_edma(pdev)?;
        if loc.map != vsec::MapFormat::Unrolled || loc.bar != 2 || loc.offset != 0 {
            dev_err!(
                pdev,
                "unsupported eDMA layout {:?} in BAR{} at {:#x}: this driver handles the unrolled \
                 eDMA map at the start of BAR2\n",
                loc.map,
                loc.bar,
                loc.offset
            );
            return Err(ENODEV);
        }

        pdev.enable_device_mem()?;
        // SAFETY: Nothing allocates or maps DMA memory for this device yet, so the mask can't
        // change under a concurrent mapping.
        let mask = unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<64>()) };
        if let Err(e) = mask {
            dev_err!(pdev, "the platform can't give the card 64-bit DMA\n");
            glue::disable_device(pdev);
            return Err(e);
        }

        let bars = pdev
            .iomap_region_sized::<{ regs::BAR0_SIZE }>(0, c"metis-bar0")
            .and_then(|b0| Ok((b0, pdev.iomap_region_sized::<{ regs::BAR2_SIZE }>(2, c"metis-bar2")?)));
        let (bar0, bar2) = match bars {
            Ok(b) => b,
            Err(e) => {
                dev_err!(pdev, "can't map the BARs ({:?}); another driver may own them\n", e);
                glue::disable_device(pdev);
                return Err(e);
            }
        };
        let metis = Metis { pdev, bar0, bar2 };
        metis.quiesce_edma();
        pdev.set_master();

        let magic = metis.bar0.read(bar0::MAGIC).magic().get();
        if magic != regs::INTERFACE_MAGIC {
            dev_err!(
                pdev,
                "interface area magic is {:#06x}, expected {:#06x}: the card did not come out of \
                 reset; power-cycle the machine\n",
                magic,
                regs::INTERFACE_MAGIC
            );
            glue::clear_master(pdev);
            return Err(EIO);
        }

        let ctrl = metis.bar2.read(edma::CTRL);
        dev_info!(
            pdev,
            "Metis rev {:#04x}: eDMA {:?} wr {} rd {} (engine reports wr {} rd {}), {} MiB device \
             memory, card state {}\n",
            pdev.revision_id(),
            loc.map,
            loc.wr_channels,
            loc.rd_channels,
            ctrl.wr_channels().get(),
            ctrl.rd_channels().get(),
            metis.mem_size() >> 20,
            metis.bar0.read(bar0::STATE).state().get()
        );
        Ok(metis)
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.quiesce_edma();
        glue::clear_master(pdev);
    }
}

impl Drop for Metis<'_> {
    fn drop(&mut self) {
        // The BARs are unmapped after this returns (field drop order); nothing touches them in
        // between, and the device no longer masters the bus, so disabling it first is safe.
        glue::disable_device(self.pdev);
        dev_info!(self.pdev, "card released\n");
    }
}
