// SPDX-License-Identifier: GPL-2.0

//! Reading the Synopsys DMA vendor-specific extended capability. Its contents
//! on a real card are not known, so the driver only reports what it says.
//!
//! `pci_find_vsec_capability()` only matches when the device's vendor is the
//! capability's vendor, which is never true on a Metis card (vendor Axelera,
//! capability defined by Synopsys), so the extended capability list is walked
//! here.

use kernel::{
    io::Io,
    pci,
    prelude::*, //
};

/// Extended capability ID of a vendor-specific extended capability.
const PCI_EXT_CAP_ID_VNDR: u32 = 0x0b;
/// First extended capability in configuration space.
const PCI_EXT_CAP_START: usize = 0x100;
/// Capabilities sit in the 4 KiB extended configuration space.
const PCI_CFG_SPACE_EXP_SIZE: usize = 0x1000;
/// A capability list can't hold more entries than this (each needs 4 bytes).
const MAX_EXT_CAPS: usize = (PCI_CFG_SPACE_EXP_SIZE - PCI_EXT_CAP_START) / 4;

/// VSEC ID, revision and length of the Synopsys DMA capability.
const DMA_VSEC_ID: u32 = 0x6;
const DMA_VSEC_REV: u32 = 0x0;
const DMA_VSEC_LEN: u32 = 0x18;

/// eDMA register map formats, as encoded in the capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapFormat {
    /// eDMA v0 with one channel window selected through a viewport.
    Legacy,
    /// eDMA v0 with a register block per channel.
    Unrolled,
    /// HDMA with the eDMA-compatible map.
    HdmaCompat,
    /// Native HDMA map.
    HdmaNative,
}

impl MapFormat {
    fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Legacy),
            1 => Some(Self::Unrolled),
            5 => Some(Self::HdmaCompat),
            7 => Some(Self::HdmaNative),
            _ => None,
        }
    }
}

/// What the Synopsys DMA capability says about the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EdmaLocation {
    /// Register map format.
    pub(crate) map: MapFormat,
    /// BAR holding the register block.
    pub(crate) bar: u32,
    /// Offset of the register block in that BAR.
    pub(crate) offset: u64,
    /// Number of write (device to host) channels.
    pub(crate) wr_channels: u32,
    /// Number of read (host to device) channels.
    pub(crate) rd_channels: u32,
}

/// Decodes the vendor header and the four capability dwords that follow it.
///
/// Returns `None` when the header is not the Synopsys DMA capability and
/// `Err(EINVAL)` when it is but its content can't be used.
pub(crate) fn decode(header: u32, dw: [u32; 4]) -> Option<Result<EdmaLocation>> {
    let id = header & 0xffff;
    let rev = (header >> 16) & 0xf;
    let len = header >> 20;
    if id != DMA_VSEC_ID || rev != DMA_VSEC_REV || len != DMA_VSEC_LEN {
        return None;
    }
    let Some(map) = MapFormat::from_raw(dw[0] & 0x7) else {
        return Some(Err(EINVAL));
    };
    let bar = (dw[0] >> 8) & 0x7;
    let wr_channels = dw[1] & 0x3ff;
    let rd_channels = (dw[1] >> 16) & 0x3ff;
    if bar > 5 || wr_channels == 0 || rd_channels == 0 {
        return Some(Err(EINVAL));
    }
    Some(Ok(EdmaLocation {
        map,
        bar,
        offset: u64::from(dw[3]) << 32 | u64::from(dw[2]),
        wr_channels,
        rd_channels,
    }))
}

/// Walks the extended capabilities of `pdev` for the Synopsys DMA capability;
/// `None` when the card has none.
pub(crate) fn find_edma(pdev: &pci::Device<kernel::device::Bound>) -> Result<Option<EdmaLocation>> {
    let cfg = pdev.config_space_extended().inspect_err(|_| {
        dev_err!(
            pdev,
            "no extended configuration space: the Synopsys DMA capability can't be read (is the card behind a PCIe root port with ECAM/MMCONFIG?)\n"
        )
    })?;
    let mut pos = PCI_EXT_CAP_START;
    for _ in 0..MAX_EXT_CAPS {
        let hdr = cfg.try_read32(pos)?;
        // An all-zero or all-ones header ends the list (no capabilities or the device is gone).
        if hdr == 0 || hdr == u32::MAX {
            break;
        }
        if hdr & 0xffff == PCI_EXT_CAP_ID_VNDR {
            let vhdr = cfg.try_read32(pos + 0x4)?;
            let dw = [
                cfg.try_read32(pos + 0x8)?,
                cfg.try_read32(pos + 0xc)?,
                cfg.try_read32(pos + 0x10)?,
                cfg.try_read32(pos + 0x14)?,
            ];
            if let Some(found) = decode(vhdr, dw) {
                return found.map(Some).inspect_err(|_| {
                    dev_err!(
                        pdev,
                        "Synopsys DMA capability at {:#x} is malformed ({:#010x} {:#010x})\n",
                        pos,
                        dw[0],
                        dw[1]
                    )
                });
            }
        }
        let next = (hdr >> 20) as usize;
        // The next pointer must move forward and stay dword aligned, or the list is corrupt.
        if next < PCI_EXT_CAP_START || next <= pos || next & 0x3 != 0 {
            break;
        }
        pos = next;
    }
    Ok(None)
}

#[cfg(metis_kunit)]
#[kunit_tests(metis_vsec)]
mod tests {
    use super::*;

    const HDR: u32 = 0x0180_0006;

    #[test]
    fn decodes_metis_capability() {
        let loc = decode(HDR, [0x0000_0201, 0x0004_0004, 0x10, 0x1]);
        assert_eq!(
            loc,
            Some(Ok(EdmaLocation {
                map: MapFormat::Unrolled,
                bar: 2,
                offset: 0x1_0000_0010,
                wr_channels: 4,
                rd_channels: 4,
            }))
        );
    }

    #[test]
    fn ignores_other_vendor_capabilities() {
        // Same ID, other revision or length: not ours.
        assert_eq!(decode(0x0181_0006, [0x201, 0x40004, 0, 0]), None);
        assert_eq!(decode(0x0200_0006, [0x201, 0x40004, 0, 0]), None);
        assert_eq!(decode(0x0180_0020, [0x201, 0x40004, 0, 0]), None);
    }

    #[test]
    fn rejects_unusable_content() {
        assert_eq!(decode(HDR, [0x0000_0203, 0x40004, 0, 0]), Some(Err(EINVAL)));
        assert_eq!(decode(HDR, [0x0000_0601, 0x40004, 0, 0]), Some(Err(EINVAL)));
        assert_eq!(decode(HDR, [0x0000_0201, 0x40000, 0, 0]), Some(Err(EINVAL)));
        assert_eq!(decode(HDR, [0x0000_0201, 0x00004, 0, 0]), Some(Err(EINVAL)));
    }
}
