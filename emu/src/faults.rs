//! Fault kinds: everything a driver can do that real hardware would punish
//! (bus error, IOMMU fault, lost interrupt, aborted DMA). Each occurrence is
//! counted, logged as an event, and the offending access has no effect.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Register access that is not 4 bytes wide (e.g. a 64-bit read at 0xcc).
    MmioWidth,
    /// 4-byte register access at an offset that is not a multiple of 4.
    MmioUnaligned,
    /// BAR access while the function is not in D0.
    MmioLowPower,
    /// Write to a read-only interface register.
    RegReadOnly,
    /// BAR2 window access that is not 1/2/4/8 bytes naturally aligned.
    WindowAccess,
    /// BAR2 window access past the end of device memory.
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
    /// DOORBELL written with something other than 1.
    MailboxBadDoorbell,
    /// DOORBELL rung while a command is still executing.
    MailboxBusy,
    /// WIN_BASE not 4 KiB aligned or past the end of memory.
    WinBaseInvalid,
    /// RESET written with a value other than "RSET".
    ResetBadKey,
}

pub const ALL_FAULTS: [Fault; 21] = [
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
    Fault::MailboxBadDoorbell,
    Fault::MailboxBusy,
    Fault::WinBaseInvalid,
    Fault::ResetBadKey,
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
            Fault::MailboxBadDoorbell => "mailbox_bad_doorbell",
            Fault::MailboxBusy => "mailbox_busy",
            Fault::WinBaseInvalid => "win_base_invalid",
            Fault::ResetBadKey => "reset_bad_key",
        }
    }

    pub fn from_name(s: &str) -> Option<Fault> {
        ALL_FAULTS.iter().copied().find(|f| f.name() == s)
    }
}
