//! Fault kinds: everything a driver can do that real hardware would punish
//! (bus error, IOMMU fault, lost interrupt, aborted DMA). Each occurrence is
//! counted, logged as an event, and the offending access has no effect.

use crate::dma::DmaError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Register access that is not 4 bytes wide (e.g. a 64-bit read at 0xcc).
    MmioWidth,
    /// 4-byte register access at an offset that is not a multiple of 4.
    MmioUnaligned,
    /// BAR access while the function is not in D0.
    MmioLowPower,
    /// Write to a read-only eDMA register.
    RegReadOnly,
    /// BAR2 window access that is not 1/2/4/8 bytes naturally aligned.
    WindowAccess,
    /// BAR2 window access past the end of the BAR or of device memory.
    WindowRange,
    /// DMA to/from a host address nobody mapped (IOMMU translation fault).
    DmaUnmapped,
    /// DMA without the needed permission (write into a read-only mapping...).
    DmaPerm,
    /// DMA into a mapping QEMU gave without a file descriptor (unsupported).
    DmaNoFd,
    /// DMA while Bus Master Enable is clear.
    DmaNoBusMaster,
    /// Device-side address outside device memory.
    DevRange,
    /// IMWR that does not match the MSI message the host programmed.
    ImwrMismatch,
    /// Interrupt message while Bus Master Enable is clear.
    IrqNoBusMaster,
    /// MSI/MSI-X message for a vector QEMU gave no eventfd for (INTx without
    /// an eventfd is only logged as a lost interrupt).
    IrqNoEventfd,
    /// Doorbell while the direction's engine is disabled.
    DoorbellEngineDisabled,
    /// Doorbell naming a channel that does not exist.
    DoorbellBadChannel,
    /// Linked list that cannot be walked (bad LLP, no progress, garbage).
    LlMalformed,
    /// A new command written into the command slot while one is executing.
    MailboxBusy,
    /// A firmware source fired while the host-driver area holds no usable
    /// virtual-MSI registration (`ctrl` 0, `target` 0 or a table too small
    /// for the source): the R1.2 failure.
    VmsiUnregistered,
}

pub const ALL_FAULTS: [Fault; 19] = [
    Fault::MmioWidth,
    Fault::MmioUnaligned,
    Fault::MmioLowPower,
    Fault::RegReadOnly,
    Fault::WindowAccess,
    Fault::WindowRange,
    Fault::DmaUnmapped,
    Fault::DmaPerm,
    Fault::DmaNoFd,
    Fault::DmaNoBusMaster,
    Fault::DevRange,
    Fault::ImwrMismatch,
    Fault::IrqNoBusMaster,
    Fault::IrqNoEventfd,
    Fault::DoorbellEngineDisabled,
    Fault::DoorbellBadChannel,
    Fault::LlMalformed,
    Fault::MailboxBusy,
    Fault::VmsiUnregistered,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::MmioWidth => "mmio_width",
            Fault::MmioUnaligned => "mmio_unaligned",
            Fault::MmioLowPower => "mmio_low_power",
            Fault::RegReadOnly => "reg_read_only",
            Fault::WindowAccess => "window_access",
            Fault::WindowRange => "window_range",
            Fault::DmaUnmapped => "dma_unmapped",
            Fault::DmaPerm => "dma_perm",
            Fault::DmaNoFd => "dma_no_fd",
            Fault::DmaNoBusMaster => "dma_no_bus_master",
            Fault::DevRange => "dev_range",
            Fault::ImwrMismatch => "imwr_mismatch",
            Fault::IrqNoBusMaster => "irq_no_bus_master",
            Fault::IrqNoEventfd => "irq_no_eventfd",
            Fault::DoorbellEngineDisabled => "doorbell_engine_disabled",
            Fault::DoorbellBadChannel => "doorbell_bad_channel",
            Fault::LlMalformed => "ll_malformed",
            Fault::MailboxBusy => "mailbox_busy",
            Fault::VmsiUnregistered => "vmsi_unregistered",
        }
    }

    pub fn from_name(s: &str) -> Option<Fault> {
        ALL_FAULTS.iter().copied().find(|f| f.name() == s)
    }

    /// The IOMMU fault a failed card DMA counts as.
    pub fn of_dma(e: &DmaError) -> Fault {
        match e {
            DmaError::Unmapped { .. } => Fault::DmaUnmapped,
            DmaError::Perm { .. } => Fault::DmaPerm,
            DmaError::NoFd { .. } => Fault::DmaNoFd,
        }
    }
}
