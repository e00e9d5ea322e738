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

/// Everything that shapes one emulated card.
#[derive(Clone, Debug)]
pub struct Options {
    /// Device memory size in bytes.
    pub mem_size: u64,
    /// Channels per direction (1..=8).
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
}
