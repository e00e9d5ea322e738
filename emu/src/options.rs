//! Emulator options shared by the binary, the control socket and the tests.

use crate::link::LinkSpec;
use std::path::PathBuf;

/// Which PCI identity the card presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The Metis card of `docs/hw-interface.md` (1f9d:1100).
    Metis,
    /// A bare Synopsys eDMA endpoint (16c3:edda), what upstream `dw_edma_pcie`
    /// binds to: eDMA registers at BAR0 offset 0, BAR2 a plain window onto
    /// device memory from device address 0, no firmware.
    Synopsys,
}

impl std::str::FromStr for Identity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "metis" => Ok(Identity::Metis),
            "synopsys" => Ok(Identity::Synopsys),
            _ => Err(format!("unknown identity '{s}' (metis|synopsys)")),
        }
    }
}

/// Which firmware generation's interface structure the card publishes: they
/// differ in the first 0xb0 bytes (1.6.2's header) and in `dma_vm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfLayout {
    V16,
    V14,
}

impl IfLayout {
    pub fn name(self) -> &'static str {
        match self {
            IfLayout::V16 => "1.6",
            IfLayout::V14 => "1.4",
        }
    }
}

impl std::str::FromStr for IfLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.6" => Ok(IfLayout::V16),
            "1.4" => Ok(IfLayout::V14),
            _ => Err(format!("unknown interface layout '{s}' (1.6|1.4)")),
        }
    }
}

/// Everything that shapes one emulated card.
#[derive(Clone, Debug)]
pub struct Options {
    /// Device memory size in bytes.
    pub mem_size: u64,
    /// Channels per direction (1..=4 on Metis, 1..=8 on Synopsys).
    pub channels: usize,
    pub link: LinkSpec,
    /// MSI-X vectors (0 = no MSI-X capability, as on the real card).
    pub msix: u32,
    pub identity: Identity,
    /// D3hot->D0 resets the card (NoSoftRst-) instead of keeping state.
    pub d3_loses_state: bool,
    /// Size of BAR2 (32 MiB on the real card); smaller values model a board
    /// whose PCIe window could only fit a truncated BAR (field report R1.1).
    pub bar2_size: u64,
    /// Interface structure layout the bootloader and firmware publish.
    pub if_layout: IfLayout,
    /// The bootloader publishes the model boot block (BOOT_MAGIC at BAR2
    /// 0x400). Off: the block stays zero, as on a real card whose boot
    /// protocol we do not know.
    pub boot_protocol: bool,
    /// Offer the Synopsys DMA VSEC in the extended capability chain.
    pub vsec: bool,
    /// Event log as JSON lines.
    pub log: Option<PathBuf>,
    /// Print each fault to stderr (the binary turns this on; tests keep quiet).
    pub stderr_faults: bool,
}

pub const MIN_MEM: u64 = 64 << 20;
pub const MAX_MEM: u64 = 16 << 30;
pub const MAX_MSIX: u32 = 64;

impl Default for Options {
    fn default() -> Self {
        Options {
            mem_size: 1 << 30,
            channels: 4,
            link: LinkSpec::default(),
            msix: 0,
            identity: Identity::Metis,
            d3_loses_state: false,
            bar2_size: 32 << 20,
            if_layout: IfLayout::V16,
            boot_protocol: true,
            vsec: true,
            log: None,
            stderr_faults: false,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_MEM..=MAX_MEM).contains(&self.mem_size) {
            return Err(format!(
                "--mem-size must be between 64M and 16G, got {}",
                self.mem_size
            ));
        }
        if !self.mem_size.is_multiple_of(4096) {
            return Err("--mem-size must be a multiple of 4 KiB".into());
        }
        if !(1..=8).contains(&self.channels) {
            return Err("--channels must be 1..8".into());
        }
        if !self.bar2_size.is_power_of_two() || !(1 << 20..=256 << 20).contains(&self.bar2_size) {
            return Err("--bar2-size must be a power of two from 1M to 256M".into());
        }
        if self.identity == Identity::Metis {
            // 4+4 channels end at 0xa00: more would not fit the 4 KiB BAR0.
            if self.channels > 4 {
                return Err("--channels must be 1..4 for the metis identity".into());
            }
            // BAR2 is a window onto L2 and cannot be larger than it.
            if self.bar2_size > crate::devmem::L2_SIZE {
                return Err("--bar2-size must be at most 32M for the metis identity".into());
            }
        }
        if self.msix > MAX_MSIX {
            return Err(format!("--msix must be 0..{MAX_MSIX}"));
        }
        Ok(())
    }
}

/// Parses "1G", "512M", "4096", "0x1000", "64K".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K') | Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') | Some('m') => (&s[..s.len() - 1], 1u64 << 20),
        Some('G') | Some('g') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    let v = parse_u64(num)?;
    v.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' overflows"))
}

/// Parses a decimal or 0x-prefixed hexadecimal number.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    r.map_err(|_| format!("bad number '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("0x1000").unwrap(), 4096);
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn metis_limits() {
        let ok = Options::default();
        assert!(ok.validate().is_ok());
        let five = Options {
            channels: 5,
            ..Options::default()
        };
        assert!(five.validate().is_err());
        let syn = Options {
            identity: Identity::Synopsys,
            ..five.clone()
        };
        assert!(syn.validate().is_ok());
        let big_bar = Options {
            bar2_size: 64 << 20,
            ..Options::default()
        };
        assert!(big_bar.validate().is_err());
        assert_eq!("1.4".parse::<IfLayout>(), Ok(IfLayout::V14));
        assert!("2.0".parse::<IfLayout>().is_err());
    }
}
