//! Linked-list elements and where a list pointer points (the driver's
//! `ll.rs` builds them).
//!
//! Data element (24 bytes): control u32, transfer_size u32, sar u64, dar u64.
//! Link element (in a 24-byte slot): control u32 (LLP | TCB), reserved u32,
//! llp u64 at +8.
//!
//! A list pointer (the LLP register, or a link element's llp) is a device
//! address on the Metis identity (the descriptor area in L2, or DDR: the
//! engine fetches lists from the card's side). The Synopsys identity, whose
//! upstream driver programs PCI bus addresses inside BAR2 (EDDA layout),
//! tries BAR2 first and then its flat device memory.

use crate::devmem::DevMem;
use crate::options::Identity;
use bitfield_struct::bitfield;

/// Bytes per element slot.
pub const ELEMENT_SIZE: u64 = 24;
/// List pointers must be 8-byte aligned (the element's 64-bit fields sit at
/// +8 and +16 and dw-edma writes them with 8-byte stores).
pub const LL_ALIGN: u64 = 8;
/// Elements walked without moving a byte before the list counts as a loop.
pub const NO_PROGRESS_LIMIT: u32 = 65536;

/// An element's control word.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct Control {
    /// Cycle bit: the element belongs to the engine when it equals CCS.
    pub cb: bool,
    /// Toggle cycle bit (link elements): flip CCS when following the link.
    pub tcb: bool,
    /// Marks a link element.
    pub llp: bool,
    /// Local interrupt (status latch, INTx) when this element completes.
    pub lie: bool,
    /// Remote interrupt (IMWR) when this element completes.
    pub rie: bool,
    #[bits(27)]
    __: u32,
}

// The driver's names for the control bits, for code that plays the driver
// and builds lists (the tests).
pub const CTRL_CB: u32 = Control::new().with_cb(true).into_bits();
pub const CTRL_TCB: u32 = Control::new().with_tcb(true).into_bits();
pub const CTRL_LLP: u32 = Control::new().with_llp(true).into_bits();
pub const CTRL_LIE: u32 = Control::new().with_lie(true).into_bits();
pub const CTRL_RIE: u32 = Control::new().with_rie(true).into_bits();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    pub control: Control,
    pub size: u32,
    pub sar: u64,
    pub dar: u64,
}

impl Element {
    /// Decodes a fetched slot (a copy: the host may rewrite the list while
    /// the engine walks it).
    pub fn parse(b: &[u8; ELEMENT_SIZE as usize]) -> Element {
        // Fixed ranges of a fixed-size array: the conversions cannot fail.
        Element {
            control: Control::from(u32::from_le_bytes(b[0..4].try_into().unwrap())),
            size: u32::from_le_bytes(b[4..8].try_into().unwrap()),
            sar: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            dar: u64::from_le_bytes(b[16..24].try_into().unwrap()),
        }
    }

    /// Link target of a link element (the 64-bit field at +8).
    pub fn llp(&self) -> u64 {
        self.sar
    }

    pub fn data(control: u32, size: u32, sar: u64, dar: u64) -> [u8; ELEMENT_SIZE as usize] {
        let mut b = [0u8; ELEMENT_SIZE as usize];
        b[0..4].copy_from_slice(&control.to_le_bytes());
        b[4..8].copy_from_slice(&size.to_le_bytes());
        b[8..16].copy_from_slice(&sar.to_le_bytes());
        b[16..24].copy_from_slice(&dar.to_le_bytes());
        b
    }

    pub fn link(control: u32, llp: u64) -> [u8; ELEMENT_SIZE as usize] {
        Self::data(control, 0, llp, 0)
    }
}

/// What the engine needs to know to resolve a list pointer.
#[derive(Clone, Copy, Debug)]
pub struct LlCtx {
    pub identity: Identity,
    pub bar2_base: u64,
    pub bar2_size: u64,
}

impl LlCtx {
    fn in_bar2(&self, p: u64) -> Option<u64> {
        (self.bar2_base != 0 && p >= self.bar2_base && p - self.bar2_base < self.bar2_size)
            .then(|| p - self.bar2_base)
    }

    /// Device memory address of the element a list pointer designates.
    pub fn resolve(&self, p: u64, mem: &DevMem) -> Result<u64, String> {
        if !p.is_multiple_of(LL_ALIGN) {
            return Err(format!(
                "list pointer {p:#x} is not {LL_ALIGN}-byte aligned"
            ));
        }
        // The Synopsys window maps BAR2 offset x to device address x.
        let dev = match self.identity {
            Identity::Synopsys => self.in_bar2(p).unwrap_or(p),
            Identity::Metis => p,
        };
        if mem.contains(dev, ELEMENT_SIZE) {
            Ok(dev)
        } else {
            Err(format!(
                "list pointer {p:#x} is not in device memory ({})",
                mem.ranges()
                    .iter()
                    .map(|(b, s)| format!("{b:#x}+{s:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(identity: Identity) -> (LlCtx, DevMem) {
        let mem = DevMem::new(&crate::devmem::map(identity, 1 << 30)).unwrap();
        let c = LlCtx {
            identity,
            bar2_base: 0xfc00_0000,
            bar2_size: 32 << 20,
        };
        (c, mem)
    }

    #[test]
    fn resolve_metis() {
        let (c, m) = ctx(Identity::Metis);
        assert_eq!(c.resolve(0x0801_0000, &m), Ok(0x0801_0000));
        assert_eq!(c.resolve(0x1_0000_0000, &m), Ok(0x1_0000_0000));
        assert!(c.resolve(0x0801_0004, &m).is_err(), "misaligned");
        assert!(c.resolve(0x0a00_0000, &m).is_err(), "past L2");
        assert!(c.resolve(0x1000, &m).is_err(), "nothing at low addresses");
        // a PCI bus address in BAR2 is not a device address
        assert!(c.resolve(0xfc01_0000, &m).is_err());
    }

    #[test]
    fn resolve_synopsys() {
        let (c, m) = ctx(Identity::Synopsys);
        assert_eq!(c.resolve(0xfc20_0000, &m), Ok(0x20_0000));
        assert_eq!(c.resolve(0x1000, &m), Ok(0x1000));
    }

    #[test]
    fn elements_roundtrip() {
        let b = Element::data(CTRL_CB | CTRL_LIE, 4096, 0x1000, 0x2000_0000);
        assert_eq!(&b[0..8], &[9, 0, 0, 0, 0, 0x10, 0, 0]);
        let e = Element::parse(&b);
        assert_eq!(e.control, Control::new().with_cb(true).with_lie(true));
        assert_eq!(e.size, 4096);
        assert_eq!(e.sar, 0x1000);
        assert_eq!(e.dar, 0x2000_0000);
        let l = Element::parse(&Element::link(CTRL_LLP | CTRL_TCB, 0x1_0000_abc0));
        assert!(l.control.llp() && l.control.tcb() && !l.control.cb());
        assert_eq!(l.llp(), 0x1_0000_abc0);
    }
}
