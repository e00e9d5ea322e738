//! Decoded `struct metis_info`.

use crate::sys;
use std::fmt;

macro_rules! raw_enum {
    (
        $(#[$m:meta])*
        $name:ident { $($(#[$vm:meta])* $variant:ident = $c:path => $text:literal),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
            /// A value this version of the crate does not know.
            Unknown(u32),
        }

        impl $name {
            /// Decodes the raw ABI value.
            pub fn from_raw(v: u32) -> Self {
                $(if v == $c as u32 { return Self::$variant; })*
                Self::Unknown(v)
            }
            /// Decodes the lower-case name, as [`Self::name`] and the
            /// driver's sysfs attributes spell it; `None` for any other text.
            pub fn from_name(s: &str) -> Option<Self> {
                $(if s == $text { return Some(Self::$variant); })*
                None
            }
            /// The raw ABI value.
            pub fn raw(self) -> u32 {
                match self {
                    $(Self::$variant => $c as u32,)*
                    Self::Unknown(v) => v,
                }
            }
            /// Lower-case name, as printed by `metisctl`.
            pub fn name(self) -> String {
                match self {
                    $(Self::$variant => $text.to_string(),)*
                    Self::Unknown(v) => format!("unknown({v})"),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }
    };
}

raw_enum! {
    /// How the driver learns of completions (`enum metis_irq_mode`).
    IrqMode {
        /// No interrupt: completion is polled.
        Poll = sys::METIS_IRQ_POLL => "poll",
        /// Legacy INTx.
        Intx = sys::METIS_IRQ_INTX => "intx",
        /// MSI.
        Msi = sys::METIS_IRQ_MSI => "msi",
        /// MSI-X.
        Msix = sys::METIS_IRQ_MSIX => "msix",
    }
}

raw_enum! {
    /// What sits between the card and memory (`enum metis_iommu_mode`).
    IommuMode {
        /// No IOMMU in front of the card.
        None = sys::METIS_IOMMU_NONE => "none",
        /// Identity domain.
        Passthrough = sys::METIS_IOMMU_PASSTHROUGH => "passthrough",
        /// DMA addresses are IOVAs.
        Translated = sys::METIS_IOMMU_TRANSLATED => "translated",
    }
}

raw_enum! {
    /// Firmware state (`enum metis_fw_state`).
    FwState {
        /// Card off.
        Off = sys::METIS_FW_OFF => "off",
        /// Boot ROM waiting for an image.
        Bootloader = sys::METIS_FW_BOOTLOADER => "bootloader",
        /// Image being checked and started.
        Booting = sys::METIS_FW_BOOTING => "booting",
        /// Firmware running: commands work.
        Ready = sys::METIS_FW_READY => "ready",
        /// Firmware failed to boot.
        Failed = sys::METIS_FW_FAILED => "failed",
    }
}

raw_enum! {
    /// Who loads the card's firmware (`enum metis_fw_owner`).
    FwOwner {
        /// The driver boots the firmware file, and boots it again after
        /// every reset and resume.
        Kernel = sys::METIS_FW_KERNEL => "kernel",
        /// Userspace (the vendor runtime) boots the firmware and tells the
        /// driver with [`crate::Device::firmware_changed`]; the driver sends
        /// the firmware no commands.
        Runtime = sys::METIS_FW_RUNTIME => "runtime",
    }
}

/// Firmware version, `major | minor << 8 | patch << 16` in the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FwVersion(pub u32);

impl FwVersion {
    /// Major version (bits 0..8).
    pub fn major(self) -> u8 {
        (self.0 & 0xff) as u8
    }
    /// Minor version (bits 8..16).
    pub fn minor(self) -> u8 {
        ((self.0 >> 8) & 0xff) as u8
    }
    /// Patch level (bits 16..24).
    pub fn patch(self) -> u8 {
        ((self.0 >> 16) & 0xff) as u8
    }
}

impl fmt::Display for FwVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major(), self.minor(), self.patch())
    }
}

/// Firmware interface version, `major << 16 | minor` in the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IfVersion(pub u32);

impl IfVersion {
    /// Major version (bits 16..32).
    pub fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// Minor version (bits 0..16).
    pub fn minor(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for IfVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

/// What the card and the driver are (`METIS_IOCTL_INFO`), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// ABI version of the driver (`METIS_ABI_VERSION`).
    pub abi_version: u32,
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// PCI revision.
    pub revision: u8,
    /// Interrupt mode in use.
    pub irq_mode: IrqMode,
    /// IOMMU mode in front of the card.
    pub iommu_mode: IommuMode,
    /// Firmware state.
    pub fw_state: FwState,
    /// Who loads the firmware.
    pub fw_owner: FwOwner,
    /// Firmware version.
    pub fw_version: FwVersion,
    /// Firmware interface version.
    pub fw_if_version: IfVersion,
    /// Device-to-host DMA channels.
    pub wr_channels: u32,
    /// Host-to-device DMA channels.
    pub rd_channels: u32,
    /// Interrupt vectors in use (0 when polling).
    pub irq_vectors: u32,
    /// Card resets since probe.
    pub reset_count: u32,
    /// Device memory, bytes.
    pub mem_size: u64,
    /// Device memory not allocated to any file, bytes.
    pub mem_free: u64,
    /// Bytes moved host to device since probe.
    pub bytes_to_device: u64,
    /// Bytes moved device to host since probe.
    pub bytes_from_device: u64,
}

impl Info {
    /// Decodes the raw struct.
    pub fn from_raw(r: &sys::metis_info) -> Self {
        Info {
            abi_version: r.abi_version,
            vendor_id: r.vendor_id,
            device_id: r.device_id,
            revision: r.revision,
            irq_mode: IrqMode::from_raw(u32::from(r.irq_mode)),
            iommu_mode: IommuMode::from_raw(u32::from(r.iommu_mode)),
            fw_state: FwState::from_raw(u32::from(r.fw_state)),
            fw_owner: FwOwner::from_raw(r.fw_owner),
            fw_version: FwVersion(r.fw_version),
            fw_if_version: IfVersion(r.fw_if_version),
            wr_channels: r.wr_channels,
            rd_channels: r.rd_channels,
            irq_vectors: r.irq_vectors,
            reset_count: r.reset_count,
            mem_size: r.mem_size,
            mem_free: r.mem_free,
            bytes_to_device: r.bytes_to_device,
            bytes_from_device: r.bytes_from_device,
        }
    }

    /// True if the driver speaks the ABI version this crate was built for.
    pub fn abi_compatible(&self) -> bool {
        self.abi_version == sys::METIS_ABI_VERSION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_as_documented() {
        // major | minor << 8 | patch << 16
        let v = FwVersion(1 | 2 << 8 | 3 << 16);
        assert_eq!((v.major(), v.minor(), v.patch()), (1, 2, 3));
        assert_eq!(v.to_string(), "1.2.3");
        // major << 16 | minor
        let i = IfVersion(4 << 16 | 17);
        assert_eq!((i.major(), i.minor()), (4, 17));
        assert_eq!(i.to_string(), "4.17");
    }

    #[test]
    fn enums_round_trip_and_keep_unknown_values() {
        for v in 0..6 {
            assert_eq!(FwState::from_raw(v).raw(), v);
            assert_eq!(IrqMode::from_raw(v).raw(), v);
            assert_eq!(IommuMode::from_raw(v).raw(), v);
            assert_eq!(FwOwner::from_raw(v).raw(), v);
        }
        assert_eq!(FwState::from_raw(3), FwState::Ready);
        assert_eq!(FwState::from_raw(9).name(), "unknown(9)");
        assert_eq!(IrqMode::from_raw(3).to_string(), "msix");
        assert_eq!(IommuMode::from_raw(2).to_string(), "translated");
        assert_eq!(FwOwner::from_raw(0), FwOwner::Kernel);
        assert_eq!(FwOwner::from_raw(1), FwOwner::Runtime);
        assert_eq!(FwOwner::Kernel.to_string(), "kernel");
        assert_eq!(FwOwner::Runtime.name(), "runtime");
        // fw_owner is a full u32 in the ABI: no value may be truncated.
        assert_eq!(FwOwner::from_raw(u32::MAX), FwOwner::Unknown(u32::MAX));
        assert_eq!(FwOwner::from_raw(2).name(), "unknown(2)");
    }

    #[test]
    fn names_round_trip() {
        for v in 0..5 {
            let s = FwState::from_raw(v);
            assert_eq!(FwState::from_name(&s.name()), Some(s));
            let m = IrqMode::from_raw(v);
            let expect = (v < 4).then_some(m);
            assert_eq!(IrqMode::from_name(&m.name()), expect);
        }
        assert_eq!(FwState::from_name("ready"), Some(FwState::Ready));
        assert_eq!(FwState::from_name("unknown"), None);
        assert_eq!(IrqMode::from_name("msix"), Some(IrqMode::Msix));
        assert_eq!(
            IommuMode::from_name("passthrough"),
            Some(IommuMode::Passthrough)
        );
        assert_eq!(FwOwner::from_name("runtime"), Some(FwOwner::Runtime));
        assert_eq!(FwOwner::from_name("Runtime"), None);
    }

    #[test]
    fn info_decodes_every_field() {
        let raw = sys::metis_info {
            size: core::mem::size_of::<sys::metis_info>() as u32,
            abi_version: 1,
            vendor_id: 0x1f9d,
            device_id: 0x1100,
            revision: 2,
            irq_mode: 3,
            iommu_mode: 1,
            fw_state: 3,
            fw_version: 0x030201,
            fw_if_version: 0x10002,
            wr_channels: 4,
            rd_channels: 5,
            irq_vectors: 13,
            reset_count: 6,
            fw_owner: 1,
            mem_size: 1 << 30,
            mem_free: 1 << 29,
            bytes_to_device: 7,
            bytes_from_device: 8,
            ..Default::default()
        };
        let i = Info::from_raw(&raw);
        assert!(i.abi_compatible());
        assert_eq!(i.vendor_id, 0x1f9d);
        assert_eq!(i.device_id, 0x1100);
        assert_eq!(i.revision, 2);
        assert_eq!(i.irq_mode, IrqMode::Msix);
        assert_eq!(i.iommu_mode, IommuMode::Passthrough);
        assert_eq!(i.fw_state, FwState::Ready);
        assert_eq!(i.fw_owner, FwOwner::Runtime);
        assert_eq!(i.fw_version.to_string(), "1.2.3");
        assert_eq!(i.fw_if_version.to_string(), "1.2");
        assert_eq!((i.wr_channels, i.rd_channels, i.irq_vectors), (4, 5, 13));
        assert_eq!(i.reset_count, 6);
        assert_eq!((i.mem_size, i.mem_free), (1 << 30, 1 << 29));
        assert_eq!((i.bytes_to_device, i.bytes_from_device), (7, 8));
    }

    fn info_with_owner(raw_owner: u32) -> Info {
        Info::from_raw(&sys::metis_info {
            fw_state: sys::METIS_FW_BOOTLOADER as u8,
            fw_owner: raw_owner,
            ..Default::default()
        })
    }

    #[test]
    fn fw_owner_decodes_from_offset_44() {
        // A driver of the first version zeroed this word (`reserved`): it
        // must read as kernel-owned, which such a driver always is.
        assert_eq!(info_with_owner(0).fw_owner, FwOwner::Kernel);
        assert_eq!(
            info_with_owner(sys::METIS_FW_RUNTIME).fw_owner,
            FwOwner::Runtime
        );
        let i = info_with_owner(7);
        assert_eq!(i.fw_owner, FwOwner::Unknown(7));
        assert_eq!(i.fw_owner.raw(), 7);
        // The owner is a word of its own, not mixed up with fw_state.
        assert_eq!(i.fw_state, FwState::Bootloader);

        // Decoding from the bytes the driver writes, not just the struct.
        let mut bytes = [0u8; core::mem::size_of::<sys::metis_info>()];
        bytes[44..48].copy_from_slice(&1u32.to_ne_bytes());
        // SAFETY: metis_info is plain integers; every bit pattern is valid
        // and the array has its exact size (read_unaligned ignores alignment).
        let raw: sys::metis_info = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(Info::from_raw(&raw).fw_owner, FwOwner::Runtime);
    }
}
