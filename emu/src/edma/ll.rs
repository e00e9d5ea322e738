//! Linked-list elements and where a list pointer points.
//!
//! Data element (24 bytes): control u32, transfer_size u32, sar u64, dar u64.
//! Link element (in a 24-byte slot): control u32 (LLP | TCB), reserved u32,
//! llp u64 at +8.
//!
//! A list pointer (the LLP register, or a link element's llp) is either a
//! device memory address or a PCI bus address inside BAR2 (how upstream
//! dw-edma-pcie places lists in the EDDA layout). The Metis identity tries
//! device memory first; the Synopsys identity, whose driver always programs
//! bus addresses, tries BAR2 first.

use crate::options::Identity;

pub const ELEM_SIZE: u64 = 24;
/// List pointers must be 8-byte aligned (the element's 64-bit fields sit at
/// +8 and +16 and dw-edma writes them with 8-byte stores).
pub const LL_ALIGN: u64 = 8;
/// Elements walked without moving a byte before the list counts as a loop.
pub const NO_PROGRESS_LIMIT: u32 = 65536;
/// BAR2 offset where the device-memory window begins (Metis identity).
pub const WINDOW_OFFSET: u64 = 0x10000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    pub control: u32,
    pub size: u32,
    pub sar: u64,
    pub dar: u64,
}

impl Elem {
    pub fn parse(b: &[u8; 24]) -> Elem {
        Elem {
            control: u32::from_le_bytes(b[0..4].try_into().unwrap()),
            size: u32::from_le_bytes(b[4..8].try_into().unwrap()),
            sar: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            dar: u64::from_le_bytes(b[16..24].try_into().unwrap()),
        }
    }

    /// Link target of a link element (the 64-bit field at +8).
    pub fn llp(&self) -> u64 {
        self.sar
    }

    pub fn data(control: u32, size: u32, sar: u64, dar: u64) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&control.to_le_bytes());
        b[4..8].copy_from_slice(&size.to_le_bytes());
        b[8..16].copy_from_slice(&sar.to_le_bytes());
        b[16..24].copy_from_slice(&dar.to_le_bytes());
        b
    }

    pub fn link(control: u32, llp: u64) -> [u8; 24] {
        Self::data(control, 0, llp, 0)
    }
}

/// What the engine needs to know to resolve a list pointer.
#[derive(Clone, Copy, Debug)]
pub struct LlCtx {
    pub identity: Identity,
    pub mem_size: u64,
    pub bar2_base: u64,
    pub bar2_size: u64,
    pub win_base: u64,
}

impl LlCtx {
    fn in_bar2(&self, p: u64) -> Option<u64> {
        (self.bar2_base != 0 && p >= self.bar2_base && p - self.bar2_base < self.bar2_size)
            .then(|| p - self.bar2_base)
    }

    fn in_mem(&self, p: u64) -> Option<u64> {
        p.checked_add(ELEM_SIZE)
            .is_some_and(|e| e <= self.mem_size)
            .then_some(p)
    }

    fn bar2_to_dev(&self, off: u64) -> Result<u64, String> {
        let dev = match self.identity {
            Identity::Synopsys => off,
            Identity::Metis => {
                if off < WINDOW_OFFSET {
                    return Err(format!(
                        "list pointer at BAR2 offset {off:#x} is inside the register block"
                    ));
                }
                // an absurd WIN_BASE wraps to an address past memory
                self.win_base.wrapping_add(off - WINDOW_OFFSET)
            }
        };
        self.in_mem(dev)
            .ok_or_else(|| format!("BAR2 offset {off:#x} maps past device memory"))
    }

    /// Device memory address of the element a list pointer designates.
    pub fn resolve(&self, p: u64) -> Result<u64, String> {
        if !p.is_multiple_of(LL_ALIGN) {
            return Err(format!(
                "list pointer {p:#x} is not {LL_ALIGN}-byte aligned"
            ));
        }
        match self.identity {
            Identity::Synopsys => {
                if let Some(off) = self.in_bar2(p) {
                    return self.bar2_to_dev(off);
                }
                self.in_mem(p)
            }
            Identity::Metis => {
                if let Some(d) = self.in_mem(p) {
                    return Ok(d);
                }
                match self.in_bar2(p) {
                    Some(off) => return self.bar2_to_dev(off),
                    None => None,
                }
            }
        }
        .ok_or_else(|| {
            format!(
                "list pointer {p:#x} is neither in device memory (size {:#x}) nor in BAR2 ({:#x}+{:#x})",
                self.mem_size, self.bar2_base, self.bar2_size
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(identity: Identity) -> LlCtx {
        LlCtx {
            identity,
            mem_size: 1 << 30,
            bar2_base: 0xfc00_0000,
            bar2_size: 32 << 20,
            win_base: 0x4000_0000 - (32 << 20),
        }
    }

    #[test]
    fn resolve_metis() {
        let c = ctx(Identity::Metis);
        assert_eq!(c.resolve(0x0800_0000), Ok(0x0800_0000));
        assert!(c.resolve(0x0800_0004).is_err());
        assert!(c.resolve(1 << 30).is_err());
        // BAR2 bus address in the window
        assert_eq!(c.resolve(0xfc01_0000), Ok(c.win_base));
        // BAR2 bus address in the register block
        assert!(c.resolve(0xfc00_0100).is_err());
    }

    #[test]
    fn resolve_synopsys() {
        let c = ctx(Identity::Synopsys);
        assert_eq!(c.resolve(0xfc20_0000), Ok(0x20_0000));
        assert_eq!(c.resolve(0x1000), Ok(0x1000));
    }

    #[test]
    fn elements_roundtrip() {
        let b = Elem::data(1 | 8, 4096, 0x1000, 0x2000_0000);
        let e = Elem::parse(&b);
        assert_eq!(e.size, 4096);
        assert_eq!(e.dar, 0x2000_0000);
        let l = Elem::parse(&Elem::link(4 | 2, 0xabc0));
        assert_eq!(l.llp(), 0xabc0);
    }
}
