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
    io::{
        poll::read_poll_timeout,
        Io, //
    },
    pci,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    time::Delta,
};

use crate::{
    boot::{
        self,
        FwState, //
    },
    card::{
        Card,
        EdmaBar,
        L2Bar, //
    },
    ffi::Cdev,
    fw::{
        self,
        FwInfo,
        FwOwner, //
    },
    glue, iface,
    inspect::{
        self,
        CardDir, //
    },
    irq::{
        mode_name,
        setup_irq,
        Interrupts,
        IrqMode, //
    },
    regs::{
        self,
        edma as edma_regs, //
    },
    vsec,
};

/// Axelera AI's PCI vendor ID (not in `pci_ids.h` yet).
const PCI_VENDOR_ID_AXELERA: u16 = 0x1f9d;
/// The Metis AIPU.
const PCI_DEVICE_ID_METIS: u32 = 0x1100;

// SAFETY: `pci::Vendor` is `#[repr(transparent)]` over `u16` and any 16-bit value is a vendor ID.
const AXELERA: pci::Vendor =
    unsafe { core::mem::transmute::<u16, pci::Vendor>(PCI_VENDOR_ID_AXELERA) };

// TIMEOUT: the bootloader is up as soon as the reset completes; allow slow hosts a second.
const RESET_TIMEOUT: Delta = Delta::from_secs(1);

pub(crate) struct MetisDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <MetisDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(AXELERA, PCI_DEVICE_ID_METIS), ())]
);

/// One bound Metis card: what probe built, in teardown order.
///
/// Fields drop in declaration order, which is the order the field reports
/// require (R2.4): the node goes first (no new opens; open files fail with
/// `ENODEV`), then the card is stopped (gate closed, in-flight work failed,
/// virtual-MSI registration withdrawn, engine off), then the interrupt is freed
/// (waiting for a running handler), the card's DMA memory is freed while the
/// device is still bound (open files may keep the `Card` alive longer), and
/// the device is disabled last.
pub(crate) struct Metis<'bound> {
    _debugfs: Option<CardDir>,
    _vendor: Option<crate::vendor::VendorNodes>,
    _cdev: Cdev,
    stop: CardStop,
    _interrupts: Interrupts<'bound>,
    _dma_memory: DmaMemory,
    _enabled: Enabled<'bound>,
}

/// Stops the card when dropped: refuses new work, fails what is in flight,
/// ends runtime PM and quiesces every source of interrupts and DMA. Idempotent,
/// so unbind can run it early.
struct CardStop(Arc<Card>);

impl CardStop {
    fn run(&self) {
        self.0.close();
        // Async jobs of files still open finish now (they fail, the gate being closed):
        // none runs on after unbind, or after the module is gone (security review M5).
        if let Some(shared) = crate::shared() {
            shared.jobs.flush();
        }
        self.0.quiesce();
        self.0.rpm_stop();
    }
}

impl Drop for CardStop {
    fn drop(&mut self) {
        self.run();
    }
}

/// Frees the DMA memory the card holds (the virtual-MSI table) and unmaps
/// the buffers files registered and the dma-bufs the card keeps attached, when dropped: after the interrupt is gone and
/// every job has left, before the device is unbound.
struct DmaMemory(Arc<Card>);

impl Drop for DmaMemory {
    fn drop(&mut self) {
        self.0.registered.lock().clear();
        self.0.attachments.lock().clear();
        self.0.vmsi.release();
    }
}

/// Balances `pci_enable_device_mem()` (and bus mastering) when dropped.
struct Enabled<'bound>(&'bound pci::Device<Bound>);

impl Drop for Enabled<'_> {
    fn drop(&mut self) {
        glue::clear_master(self.0);
        glue::disable_device(self.0);
        dev_info!(self.0, "card released\n");
    }
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
         upstream port is too small or the BAR was not assigned. On a Rock 5B, Orange Pi 5 Plus \
         or other RK3588 board with the card in the x4 slot (pcie@fe150000), enable the \
         rk3588-metis-pcie3x4-window device-tree overlay shipped with the driver, which \
         gives that slot a 64 MiB window\n",
        bar,
        len / 1024,
        start,
        needed / 1024
    );
    Err(ENOSPC)
}

impl Metis<'_> {
    pub(crate) fn card(&self) -> &Card {
        &self.stop.0
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

        report_vsec(pdev);
        pdev.enable_device_mem()?;
        probe_enabled(pdev, Enabled(pdev))
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // Order matters (field report R2.4): refuse new work and fail what is in flight, then
        // stop the card raising interrupts and doing DMA; the IRQ is freed and memory released
        // only afterwards, in `Drop`.
        this.stop.run();
    }
}

/// Says what the Synopsys DMA capability describes. The card's known layout
/// is used whatever it says: its contents on silicon are not known, and the
/// vendor's driver ignores it.
fn report_vsec(pdev: &pci::Device<Bound>) {
    match vsec::find_edma(pdev) {
        Ok(Some(loc))
            if loc.map == vsec::MapFormat::Unrolled
                && loc.bar == 0
                && loc.offset == 0
                && loc.wr_channels == 4
                && loc.rd_channels == 4 =>
        {
            dev_dbg!(pdev, "Synopsys DMA capability matches the known layout\n")
        }
        Ok(Some(loc)) => dev_info!(
            pdev,
            "the Synopsys DMA capability describes {:?} in BAR{} at {:#x} with {}+{} channels; \
             using the card's known layout instead (eDMA at BAR0 offset 0, 4+4 channels)\n",
            loc.map,
            loc.bar,
            loc.offset,
            loc.wr_channels,
            loc.rd_channels
        ),
        Ok(None) | Err(_) => dev_info!(
            pdev,
            "no usable Synopsys DMA capability; using the card's known layout (eDMA at BAR0 \
             offset 0, 4+4 channels)\n"
        ),
    }
}

/// Everything after `pci_enable_device_mem`, as named steps that each return
/// what they build. On failure the values built so far drop in reverse
/// order, the same order as [`Metis`]'s fields.
fn probe_enabled<'bound>(
    pdev: &'bound pci::Device<Core<'_>>,
    enabled: Enabled<'bound>,
) -> Result<Metis<'bound>> {
    set_dma_limits(pdev)?;
    let (bar0, bar2) = map_bars(pdev)?;
    let owner = choose_owner(pdev, &bar2)?;
    let iface = iface::read(pdev.as_ref(), &bar2)?;
    let card = Card::new(
        pdev,
        bar0.into_devres()?,
        bar2.into_devres()?,
        iface,
        owner,
        4,
        4,
    )?;
    card.edma.off()?;
    pdev.set_master();
    // What AER recovery restores after a link reset (`ffi.rs: pci_slot_reset`).
    if let Err(e) = glue::save_state(pdev) {
        dev_warn!(
            pdev,
            "could not save config space ({:?}); the card may not come back after a PCIe \
             error\n",
            e
        );
    }
    // Declared before the interrupts, so that on failure it drops after them.
    let dma_memory = DmaMemory(card.clone());
    let interrupts = setup_irq(pdev, &card)?.prove(pdev, &card)?;
    // Declared after the interrupts, so that on failure it drops (stopping the card) first.
    let stop = CardStop(card.clone());
    card.recover_lost.store(true, Relaxed);
    let fw = match owner {
        FwOwner::Kernel => boot_kernel_owned(pdev, &card)?,
        FwOwner::Runtime => adopt_runtime_owned(&card)?,
    };
    {
        let mut st = card.status.lock();
        st.iommu_mode = glue::iommu_mode(pdev);
        st.irq_vectors = u32::from(interrupts.vectors.is_some());
    }
    card.open_gate();
    card.rpm_start(pdev);
    let cdev = Cdev::register(pdev, card.clone())?;
    let vendor = match crate::shared().and_then(|s| s.vendor.as_ref()) {
        Some((level, _)) => Some(crate::vendor::register(pdev, &card, *level)?),
        None => None,
    };
    announce(pdev, &card, cdev.index(), &fw, interrupts.mode)?;
    Ok(Metis {
        _debugfs: debug_files(pdev, &card),
        _vendor: vendor,
        _cdev: cdev,
        stop,
        _interrupts: interrupts,
        _dma_memory: dma_memory,
        _enabled: enabled,
    })
}

/// The card's debugfs directory; a card works without it.
fn debug_files(pdev: &pci::Device<Core<'_>>, card: &Arc<Card>) -> Option<CardDir> {
    let root = &crate::shared()?.debugfs;
    inspect::create(root, card.clone())
        .inspect_err(|e| {
            dev_warn!(
                pdev,
                "no debugfs directory ({:?}); the card works without it\n",
                e
            )
        })
        .ok()
}

/// 64-bit DMA, and the largest segment the transfer code builds.
fn set_dma_limits(pdev: &pci::Device<Core<'_>>) -> Result {
    // SAFETY: Nothing allocates or maps DMA memory for this device yet, so the mask can't
    // change under a concurrent mapping.
    unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<64>()) }
        .inspect_err(|_| dev_err!(pdev, "the platform can't give the card 64-bit DMA\n"))?;
    // SAFETY: As above. A list element moves up to 4 GiB - 1; the transfer code splits longer
    // runs at 2 GiB, so that is the largest segment the DMA layer should build.
    unsafe { pdev.dma_set_max_seg_size(1 << 31) };
    Ok(())
}

/// Maps BAR0 (eDMA) and BAR2 (L2) and checks that the engine came out of reset.
fn map_bars<'bound>(
    pdev: &'bound pci::Device<Core<'_>>,
) -> Result<(EdmaBar<'bound>, L2Bar<'bound>)> {
    let bar0 = pdev.iomap_region_sized::<{ regs::BAR0_SIZE }>(0, c"metis-edma")?;
    let bar2 = pdev.iomap_region_sized::<{ regs::BAR2_SIZE }>(2, c"metis-l2")?;
    let ctrl = bar0.read(edma_regs::CTRL);
    let (hw_wr, hw_rd) = (ctrl.wr_channels().get(), ctrl.rd_channels().get());
    if hw_wr < 4 || hw_rd < 4 {
        dev_err!(
            pdev,
            "the eDMA engine reports {} write and {} read channels where a Metis has 4 and 4: \
             the card did not come out of reset; power-cycle the machine\n",
            hw_wr,
            hw_rd
        );
        return Err(EIO);
    }
    Ok((bar0, bar2))
}

/// Decides who loads the firmware. A kernel-owned card whose firmware
/// already runs (driver reloaded, kexec) is reset, so that it boots exactly
/// the firmware this driver validates, from a clean state, and publishes the
/// bootloader's interface structure. A runtime-owned card is left alone.
fn choose_owner(pdev: &pci::Device<Core<'_>>, bar2: &L2Bar<'_>) -> Result<FwOwner> {
    let (owner, why) = fw::choose_owner(glue::fw_owner_param(), boot::has_protocol(bar2)?)
        .map_err(|why| {
            dev_err!(pdev, "{}\n", why);
            EINVAL
        })?;
    dev_info!(pdev, "firmware is {}: {}\n", owner.name(), why);
    if owner == FwOwner::Kernel && boot::state_of(bar2)? != FwState::Bootloader {
        glue::reset_function_locked(pdev).inspect_err(|e| {
            dev_err!(
                pdev,
                "card reset failed ({:?}); power-cycle the machine\n",
                e
            )
        })?;
        read_poll_timeout(
            || boot::state_of(bar2),
            |s| *s == FwState::Bootloader,
            Delta::from_millis(1),
            RESET_TIMEOUT,
        )
        .inspect_err(|_| dev_err!(pdev, "card did not return to its bootloader after reset\n"))?;
    }
    Ok(owner)
}

/// The line that tells the user what probe found.
fn announce(
    pdev: &pci::Device<Bound>,
    card: &Card,
    index: u32,
    fw: &FwInfo,
    mode: IrqMode,
) -> Result {
    let iommu = glue::iommu_mode(pdev).name();
    let ifc = card.l2.iface.lock().as_ref().copied().ok_or(ENODEV)?;
    if ifc.dma_vm {
        // The vendor's 1.6.2 driver then leaves the IMWR registers to the firmware; this
        // driver programs them itself, which the known flag does not forbid.
        dev_info!(
            pdev,
            "the firmware offers its DMA-VM service (dma_vm {:#x}); not used\n",
            iface::DMA_VM_SUPPORTED
        );
    }
    let mem = card.status.lock().mem_size;
    match card.fw.owner {
        FwOwner::Kernel => dev_info!(
            pdev,
            "metis{}: Metis rev {:#04x}: eDMA wr {} rd {}, {} MiB device memory, firmware \
             {}.{}.{} (interface {}.{}), {}, {}, {} interface structure\n",
            index,
            pdev.revision_id(),
            card.edma.wr_channels(),
            card.edma.rd_channels(),
            mem >> 20,
            fw.version & 0xff,
            (fw.version >> 8) & 0xff,
            fw.version >> 16,
            fw.if_version >> 16,
            fw.if_version & 0xffff,
            mode_name(mode),
            iommu,
            ifc.layout.name()
        ),
        FwOwner::Runtime => dev_info!(
            pdev,
            "metis{}: Metis rev {:#04x}: eDMA wr {} rd {}, runtime-owned firmware ({}), {}, {}, \
             {} interface structure\n",
            index,
            pdev.revision_id(),
            card.edma.wr_channels(),
            card.edma.rd_channels(),
            if card.fw.lost.load(Relaxed) {
                "none loaded yet"
            } else {
                "running"
            },
            mode_name(mode),
            iommu,
            ifc.layout.name()
        ),
    }
    Ok(())
}

/// Kernel-owned: boots the validated firmware file and sets up the device
/// memory the firmware leaves to the host.
fn boot_kernel_owned(pdev: &pci::Device<Bound>, card: &Card) -> Result<FwInfo> {
    card.fetch_firmware(pdev.as_ref())?;
    let fw = card.boot_firmware(pdev.as_ref())?;
    let bb = card.boot_block()?;
    let (ddr_base, fw_load_addr, lists) = {
        let ifc = card.l2.iface.lock();
        let ifc = ifc.as_ref().ok_or(ENODEV)?;
        (ifc.memory_map[0], ifc.fw_load_addr, ifc.desc.span())
    };
    let mem = bb.ddr_size;
    let ddr_end = ddr_base.checked_add(mem).ok_or(EPROTO)?;
    if bb.user_mem_base < ddr_base || bb.user_mem_base > ddr_end {
        dev_err!(
            pdev,
            "the firmware's free device memory starts at {:#x}, outside its DDR ({:#x}, {} MiB)\n",
            bb.user_mem_base,
            ddr_base,
            mem >> 20
        );
        return Err(EPROTO);
    }
    // Users' regions take DMA and FILL commands: they must not reach the firmware's image
    // or the L2 that holds the descriptor lists, which program host DMA (security review L8).
    let user = bb.user_mem_base..ddr_end;
    let image = fw_load_addr..fw_load_addr.saturating_add(u64::from(bb.fw_max_size));
    for (what, r) in [("firmware image", image), ("descriptor lists", lists)] {
        if user.start < r.end && r.start < user.end {
            dev_err!(
                pdev,
                "the firmware's free device memory ({:#x}..{:#x}) overlaps its {} \
                 ({:#x}..{:#x}); refusing the card: update its firmware\n",
                user.start,
                user.end,
                what,
                r.start,
                r.end
            );
            return Err(EPROTO);
        }
    }
    *card.mem.lock() = crate::mem::DevMem::new(bb.user_mem_base, ddr_end);
    let mut st = card.status.lock();
    st.mem_size = mem;
    st.fw_state = FwState::Ready;
    st.fw_version = fw.version;
    st.fw_if_version = fw.if_version;
    Ok(fw)
}

/// Runtime-owned: the firmware and the card's memory are the runtime's. A
/// firmware already running (its version published) is adopted as it is;
/// otherwise open files are told the runtime must load one.
fn adopt_runtime_owned(card: &Card) -> Result<FwInfo> {
    let version = card.l2.iface.lock().as_ref().ok_or(ENODEV)?.fw_version();
    // 0.0: no firmware runs yet.
    let running = version != 0;
    let fw = FwInfo {
        version,
        if_version: 0,
    };
    card.fw.lost.store(!running, Relaxed);
    let mut st = card.status.lock();
    st.mem_size = 0;
    st.fw_state = if running {
        FwState::Ready
    } else {
        FwState::Bootloader
    };
    st.fw_version = fw.version;
    st.fw_if_version = 0;
    Ok(fw)
}
