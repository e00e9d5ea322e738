//! MSI / MSI-X state as the guest programmed it, read straight from config
//! space (single source of truth), the IMWR validation rule, and the MSI-X
//! table and PBA the card exposes in BAR0 with `--msix`.

use crate::config::*;
use crate::device::{Shared, State};
use crate::irq;
use std::sync::Arc;

/// The MSI message the host programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    pub enabled: bool,
    /// Multiple Message Enable (log2 of the enabled vector count).
    pub mme: u8,
    pub addr: u64,
    pub data: u16,
    pub mask: u32,
    pub pending: u32,
}

impl Msi {
    pub fn read(cfg: &ConfigSpace) -> Msi {
        let ctrl = cfg.read16(MSI_CTRL);
        Msi {
            enabled: ctrl & MSI_CTRL_ENABLE != 0,
            mme: ((ctrl >> 4) & 7) as u8,
            addr: cfg.read32(MSI_ADDR_LO) as u64 | (cfg.read32(MSI_ADDR_HI) as u64) << 32,
            data: cfg.read16(MSI_DATA),
            mask: cfg.read32(MSI_MASK),
            pending: cfg.read32(MSI_PENDING),
        }
    }

    /// Enabled vector count. MME above MMC (5) is undefined in the spec; we
    /// clamp it to 32.
    pub fn vectors(&self) -> u32 {
        1 << self.mme.min(MSI_MMC as u8)
    }

    /// Checks an IMWR against the programmed message; returns the vector.
    ///
    /// Rule (hw-interface.md): address equal to the MSI address, data equal
    /// to the programmed data with a vector number below the enabled count in
    /// its low bits, MSI enabled.
    pub fn match_imwr(&self, addr: u64, data: u32) -> Result<u32, String> {
        if !self.enabled {
            return Err(format!(
                "IMWR addr {addr:#x} data {data:#x} while MSI is disabled"
            ));
        }
        if addr != self.addr {
            return Err(format!(
                "IMWR addr {addr:#x} != MSI address {:#x} (data {data:#x})",
                self.addr
            ));
        }
        let n = self.vectors();
        let low = n - 1;
        if data > 0xffff || (data & !low) != (self.data as u32 & !low) {
            return Err(format!(
                "IMWR data {data:#x} does not match MSI data {:#x} with {n} vector(s)",
                self.data
            ));
        }
        Ok(data & low)
    }
}

pub fn set_pending(cfg: &mut ConfigSpace, pending: u32) {
    cfg.set32(MSI_PENDING, pending);
}

/// MSI-X control bits (only meaningful with `--msix`).
#[derive(Clone, Copy, Debug)]
pub struct Msix {
    pub present: bool,
    pub enabled: bool,
    pub fn_mask: bool,
}

impl Msix {
    pub fn read(cfg: &ConfigSpace) -> Msix {
        if cfg.layout.msix_vectors == 0 {
            return Msix {
                present: false,
                enabled: false,
                fn_mask: false,
            };
        }
        let ctrl = cfg.read16(MSIX_CTRL);
        Msix {
            present: true,
            enabled: ctrl & MSIX_CTRL_ENABLE != 0,
            fn_mask: ctrl & MSIX_CTRL_FN_MASK != 0,
        }
    }
}

/// A 32-bit word of the MSI-X table (vector, word) or of the PBA.
pub enum MsixReg {
    Table(usize, usize),
    Pba(usize),
}

/// Where BAR0 offset `off` falls in the MSI-X table or PBA (None without
/// MSI-X or outside both).
pub fn msix_loc(st: &State, off: u32) -> Option<MsixReg> {
    let l = st.cfg.layout;
    if l.msix_vectors == 0 {
        return None;
    }
    let tend = l.msix_table + 16 * l.msix_vectors;
    if (l.msix_table..tend).contains(&off) {
        let rel = off - l.msix_table;
        return Some(MsixReg::Table(
            (rel / 16) as usize,
            ((rel % 16) / 4) as usize,
        ));
    }
    if (l.msix_pba..l.msix_pba + 8).contains(&off) {
        return Some(MsixReg::Pba(((off - l.msix_pba) / 4) as usize));
    }
    None
}

pub fn msix_read(st: &State, r: MsixReg) -> u32 {
    match r {
        MsixReg::Table(v, w) => st.irq.msix_table[v][w],
        MsixReg::Pba(w) => (st.irq.msix_pending >> (32 * w)) as u32,
    }
}

/// A table write the card sees (QEMU normally keeps the table to itself):
/// from then on IMWRs are checked against the entries.
pub fn msix_write(sh: &Arc<Shared>, st: &mut State, r: MsixReg, v: u32) {
    if let MsixReg::Table(n, w) = r {
        st.irq.msix_table[n][w] = if w == 3 { v & 1 } else { v };
        st.irq.msix_table_written = true;
        if w == 3 {
            irq::msix_mask_changed(sh, st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msi(mme: u8, data: u16) -> Msi {
        Msi {
            enabled: true,
            mme,
            addr: 0xfee0_0000,
            data,
            mask: 0,
            pending: 0,
        }
    }

    #[test]
    fn imwr_rules() {
        let m = msi(5, 0x4020);
        assert_eq!(m.match_imwr(0xfee0_0000, 0x4020), Ok(0));
        assert_eq!(m.match_imwr(0xfee0_0000, 0x402c), Ok(12));
        assert!(m.match_imwr(0xfee0_1000, 0x4020).is_err());
        assert!(m.match_imwr(0xfee0_0000, 0x4040).is_err());
        // only one vector enabled: any low bits set are a mismatch
        let one = msi(0, 0x4020);
        assert_eq!(one.match_imwr(0xfee0_0000, 0x4020), Ok(0));
        assert!(one.match_imwr(0xfee0_0000, 0x4021).is_err());
        let off = Msi {
            enabled: false,
            ..m
        };
        assert!(off.match_imwr(0xfee0_0000, 0x4020).is_err());
    }
}
