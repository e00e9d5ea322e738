//! eDMA register file: offsets (verified against the compiled layout of
//! dw-edma-v0-regs.h, see dw-edma-and-peers.md §1.3), storage and decode.
//! Behaviour with side effects (doorbells, engine enable) is returned as an
//! `Action` for the engine to carry out.

use super::Dir;

pub const CTRL_DATA_ARB_PRIOR: u32 = 0x000;
pub const CTRL: u32 = 0x008;
pub const WR_ENGINE_EN: u32 = 0x00c;
pub const WR_DOORBELL: u32 = 0x010;
pub const WR_CH_ARB_WEIGHT: u32 = 0x018;
pub const RD_ENGINE_EN: u32 = 0x02c;
pub const RD_DOORBELL: u32 = 0x030;
pub const RD_CH_ARB_WEIGHT: u32 = 0x038;
pub const WR_INT_STATUS: u32 = 0x04c;
pub const WR_INT_MASK: u32 = 0x054;
pub const WR_INT_CLEAR: u32 = 0x058;
pub const WR_ERR_STATUS: u32 = 0x05c;
pub const WR_DONE_IMWR: u32 = 0x060;
pub const WR_ABORT_IMWR: u32 = 0x068;
pub const WR_IMWR_DATA: u32 = 0x070;
pub const WR_LL_ERR_EN: u32 = 0x090;
pub const RD_INT_STATUS: u32 = 0x0a0;
pub const RD_INT_MASK: u32 = 0x0a8;
pub const RD_INT_CLEAR: u32 = 0x0ac;
pub const RD_ERR_STATUS: u32 = 0x0b4;
pub const RD_LL_ERR_EN: u32 = 0x0c4;
pub const RD_DONE_IMWR: u32 = 0x0cc;
pub const RD_ABORT_IMWR: u32 = 0x0d4;
pub const RD_IMWR_DATA: u32 = 0x0dc;
pub const VIEWPORT_SEL: u32 = 0x0fc;
pub const WR_CHGROUP: u32 = 0x100;
pub const RD_CHGROUP: u32 = 0x104;
pub const WR_HSHAKE_CNT: u32 = 0x108;
pub const RD_HSHAKE_CNT: u32 = 0x118;
pub const WR_PWR_EN: u32 = 0x128;
pub const RD_PWR_EN: u32 = 0x168;
pub const CH_BASE: u32 = 0x200;
pub const CH_STRIDE: u32 = 0x200;
/// Read channel registers sit 0x100 after the write channel's.
pub const CH_RD_OFFSET: u32 = 0x100;
/// End of the used register block with 8+8 channels.
pub const BLOCK_END: u32 = 0x1200;
/// End of the block with 4+4 channels (Metis).
pub const BLOCK_END_4: u32 = CH_BASE + 4 * CH_STRIDE;

// Per-channel register offsets.
pub const CH_CONTROL1: u32 = 0x00;
pub const CH_CONTROL2: u32 = 0x04;
pub const TRANSFER_SIZE: u32 = 0x08;
pub const SAR_LO: u32 = 0x0c;
pub const SAR_HI: u32 = 0x10;
pub const DAR_LO: u32 = 0x14;
pub const DAR_HI: u32 = 0x18;
pub const LLP_LO: u32 = 0x1c;
pub const LLP_HI: u32 = 0x20;

// ch_control1 and LL element control bits.
pub const CB: u32 = 1 << 0;
pub const TCB: u32 = 1 << 1;
pub const LLP: u32 = 1 << 2;
pub const LIE: u32 = 1 << 3;
pub const RIE: u32 = 1 << 4;
pub const CS_SHIFT: u32 = 5;
pub const CS_MASK: u32 = 3 << CS_SHIFT;
pub const CCS: u32 = 1 << 8;
pub const LLE: u32 = 1 << 9;

/// Channel status (ch_control1 [6:5]).
pub const CS_IDLE: u32 = 0;
pub const CS_RUNNING: u32 = 1;
/// Halted after an abort (vendor macros call 2 HALT).
pub const CS_HALTED: u32 = 2;
pub const CS_STOPPED: u32 = 3;

/// Doorbell: channel in [2:0], stop request in bit 31.
pub const DOORBELL_CH_MASK: u32 = 0x7;
pub const DOORBELL_STOP: u32 = 1 << 31;

/// int_status / int_mask / int_clear: DONE [7:0], ABORT [23:16].
pub const INT_BITS: u32 = 0x00ff_00ff;

pub fn done_bit(ch: usize) -> u32 {
    1 << ch
}
pub fn abort_bit(ch: usize) -> u32 {
    1 << (16 + ch)
}

#[derive(Clone, Debug, Default)]
pub struct Chan {
    /// ch_control1 without the CS field.
    pub ctrl1: u32,
    pub ctrl2: u32,
    pub size: u32,
    pub sar: u64,
    pub dar: u64,
    pub llp: u64,
    pub cs: u32,
    /// A doorbell arrived while running; honoured when the walk stops.
    pub pending_doorbell: bool,
    /// Counts host writes to CH_CONTROL1 and LLP. The list walker snapshots it
    /// with CCS and LLP and drops its own update of those registers when the
    /// host reprogrammed the channel meanwhile (dw-edma starts the next
    /// descriptor from the done interrupt, while the walker is still following
    /// the link element behind it).
    pub prog: u64,
    /// Injected hang: running forever.
    pub hung: bool,
    /// Injected wedge: hung and deaf to stop requests and engine disable until a reset.
    pub stuck: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DirRegs {
    pub engine_en: u32,
    pub int_status: u32,
    pub int_mask: u32,
    /// Error status; write side uses only `err_lo`.
    pub err_lo: u32,
    pub err_hi: u32,
    pub done_imwr: u64,
    pub abort_imwr: u64,
    pub imwr_data: [u32; 4],
    pub ll_err_en: u32,
    pub arb_weight: u64,
    pub chgroup: u32,
    pub hshake: u64,
    pub pwr_en: [u32; 8],
    pub ch: Vec<Chan>,
}

impl DirRegs {
    /// IMWR data of a channel: even channels in [15:0], odd in [31:16].
    pub fn imwr_data_of(&self, ch: usize) -> u32 {
        (self.imwr_data[ch / 2] >> (16 * (ch % 2))) & 0xffff
    }
}

#[derive(Clone, Debug)]
pub struct Edma {
    pub nch: usize,
    pub arb_prior: u32,
    pub viewport: u32,
    pub d: [DirRegs; 2],
}

/// What a register write asks the engine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Doorbell(Dir, u32),
    /// engine_en changed: (direction, was enabled, is enabled)
    Engine(Dir, bool, bool),
    /// int_mask changed the local interrupt state.
    IntState,
    /// int_clear: the host handled interrupts (status bits may have dropped).
    IntClear,
    /// Write to a read-only register.
    ReadOnly,
}

fn set_lo(v: &mut u64, x: u32) {
    *v = (*v & !0xffff_ffff) | x as u64;
}
fn set_hi(v: &mut u64, x: u32) {
    *v = (*v & 0xffff_ffff) | (x as u64) << 32;
}

/// Decoded register location.
enum Loc {
    Global(u32),
    Chan(Dir, usize, u32),
    Reserved,
}

impl Edma {
    pub fn new(nch: usize) -> Edma {
        let mk = || DirRegs {
            ch: vec![Chan::default(); nch],
            ..Default::default()
        };
        Edma {
            nch,
            arb_prior: 0,
            viewport: 0,
            d: [mk(), mk()],
        }
    }

    pub fn dir(&self, d: Dir) -> &DirRegs {
        &self.d[d as usize]
    }
    pub fn dir_mut(&mut self, d: Dir) -> &mut DirRegs {
        &mut self.d[d as usize]
    }
    pub fn chan_mut(&mut self, d: Dir, ch: usize) -> &mut Chan {
        &mut self.d[d as usize].ch[ch]
    }

    /// Any status bit set and not masked (drives INTx when MSI is off).
    pub fn local_pending(&self) -> bool {
        self.d
            .iter()
            .any(|d| d.int_status & !d.int_mask & INT_BITS != 0)
    }

    fn locate(&self, off: u32) -> Loc {
        if (CH_BASE..BLOCK_END).contains(&off) {
            let rel = off - CH_BASE;
            let n = (rel / CH_STRIDE) as usize;
            let within = rel % CH_STRIDE;
            let (dir, reg) = if within < CH_RD_OFFSET {
                (Dir::Wr, within)
            } else {
                (Dir::Rd, within - CH_RD_OFFSET)
            };
            if n < self.nch && reg <= LLP_HI {
                Loc::Chan(dir, n, reg)
            } else {
                Loc::Reserved
            }
        } else if off < CH_BASE {
            Loc::Global(off)
        } else {
            Loc::Reserved
        }
    }

    pub fn read(&self, off: u32) -> u32 {
        match self.locate(off) {
            Loc::Reserved => 0,
            Loc::Chan(d, n, reg) => {
                let c = &self.dir(d).ch[n];
                match reg {
                    CH_CONTROL1 => (c.ctrl1 & !CS_MASK) | c.cs << CS_SHIFT,
                    CH_CONTROL2 => c.ctrl2,
                    TRANSFER_SIZE => c.size,
                    SAR_LO => c.sar as u32,
                    SAR_HI => (c.sar >> 32) as u32,
                    DAR_LO => c.dar as u32,
                    DAR_HI => (c.dar >> 32) as u32,
                    LLP_LO => c.llp as u32,
                    LLP_HI => (c.llp >> 32) as u32,
                    _ => 0,
                }
            }
            Loc::Global(g) => self.read_global(g),
        }
    }

    fn read_global(&self, g: u32) -> u32 {
        let (w, r) = (&self.d[0], &self.d[1]);
        match g {
            CTRL_DATA_ARB_PRIOR => self.arb_prior,
            // write channel count [3:0], read channel count [19:16]
            CTRL => self.nch as u32 | (self.nch as u32) << 16,
            WR_ENGINE_EN => w.engine_en,
            RD_ENGINE_EN => r.engine_en,
            WR_DOORBELL | RD_DOORBELL | WR_INT_CLEAR | RD_INT_CLEAR => 0,
            WR_CH_ARB_WEIGHT => w.arb_weight as u32,
            0x01c => (w.arb_weight >> 32) as u32,
            RD_CH_ARB_WEIGHT => r.arb_weight as u32,
            0x03c => (r.arb_weight >> 32) as u32,
            WR_INT_STATUS => w.int_status,
            WR_INT_MASK => w.int_mask,
            WR_ERR_STATUS => w.err_lo,
            WR_DONE_IMWR => w.done_imwr as u32,
            0x064 => (w.done_imwr >> 32) as u32,
            WR_ABORT_IMWR => w.abort_imwr as u32,
            0x06c => (w.abort_imwr >> 32) as u32,
            0x070..=0x07c => w.imwr_data[((g - WR_IMWR_DATA) / 4) as usize],
            WR_LL_ERR_EN => w.ll_err_en,
            RD_INT_STATUS => r.int_status,
            RD_INT_MASK => r.int_mask,
            RD_ERR_STATUS => r.err_lo,
            0x0b8 => r.err_hi,
            RD_LL_ERR_EN => r.ll_err_en,
            RD_DONE_IMWR => r.done_imwr as u32,
            0x0d0 => (r.done_imwr >> 32) as u32,
            RD_ABORT_IMWR => r.abort_imwr as u32,
            0x0d8 => (r.abort_imwr >> 32) as u32,
            0x0dc..=0x0e8 => r.imwr_data[((g - RD_IMWR_DATA) / 4) as usize],
            VIEWPORT_SEL => self.viewport,
            WR_CHGROUP => w.chgroup,
            RD_CHGROUP => r.chgroup,
            WR_HSHAKE_CNT => w.hshake as u32,
            0x10c => (w.hshake >> 32) as u32,
            RD_HSHAKE_CNT => r.hshake as u32,
            0x11c => (r.hshake >> 32) as u32,
            0x128..=0x144 => w.pwr_en[((g - WR_PWR_EN) / 4) as usize],
            0x168..=0x184 => r.pwr_en[((g - RD_PWR_EN) / 4) as usize],
            _ => 0,
        }
    }

    pub fn write(&mut self, off: u32, v: u32) -> Action {
        match self.locate(off) {
            Loc::Reserved => Action::None,
            Loc::Chan(d, n, reg) => {
                let c = &mut self.d[d as usize].ch[n];
                match reg {
                    CH_CONTROL1 => {
                        c.ctrl1 = v & !CS_MASK;
                        c.prog += 1;
                    }
                    CH_CONTROL2 => c.ctrl2 = v,
                    TRANSFER_SIZE => c.size = v,
                    SAR_LO => set_lo(&mut c.sar, v),
                    SAR_HI => set_hi(&mut c.sar, v),
                    DAR_LO => set_lo(&mut c.dar, v),
                    DAR_HI => set_hi(&mut c.dar, v),
                    LLP_LO => {
                        set_lo(&mut c.llp, v);
                        c.prog += 1;
                    }
                    LLP_HI => {
                        set_hi(&mut c.llp, v);
                        c.prog += 1;
                    }
                    _ => {}
                }
                Action::None
            }
            Loc::Global(g) => self.write_global(g, v),
        }
    }

    fn write_global(&mut self, g: u32, v: u32) -> Action {
        let nmask = (1u32 << self.nch) - 1;
        let chan_bits = nmask | nmask << 16;
        match g {
            CTRL_DATA_ARB_PRIOR => self.arb_prior = v,
            CTRL | WR_INT_STATUS | RD_INT_STATUS | WR_ERR_STATUS | RD_ERR_STATUS | 0x0b8 => {
                return Action::ReadOnly
            }
            WR_ENGINE_EN | RD_ENGINE_EN => {
                let d = if g == WR_ENGINE_EN { Dir::Wr } else { Dir::Rd };
                let r = &mut self.d[d as usize];
                let was = r.engine_en & 1 != 0;
                r.engine_en = v & 1;
                return Action::Engine(d, was, v & 1 != 0);
            }
            WR_DOORBELL => return Action::Doorbell(Dir::Wr, v),
            RD_DOORBELL => return Action::Doorbell(Dir::Rd, v),
            WR_CH_ARB_WEIGHT => set_lo(&mut self.d[0].arb_weight, v),
            0x01c => set_hi(&mut self.d[0].arb_weight, v),
            RD_CH_ARB_WEIGHT => set_lo(&mut self.d[1].arb_weight, v),
            0x03c => set_hi(&mut self.d[1].arb_weight, v),
            WR_INT_MASK | RD_INT_MASK => {
                let d = if g == WR_INT_MASK { 0 } else { 1 };
                self.d[d].int_mask = v & chan_bits;
                return Action::IntState;
            }
            WR_INT_CLEAR | RD_INT_CLEAR => {
                let d = if g == WR_INT_CLEAR { 0 } else { 1 };
                let r = &mut self.d[d];
                let clr = v & chan_bits;
                r.int_status &= !clr;
                // Clearing a channel's ABORT also clears its error bits.
                for ch in 0..self.nch {
                    if clr & abort_bit(ch) != 0 {
                        let m = !(1u32 << ch | 1 << (16 + ch));
                        r.err_lo &= m;
                        r.err_hi &= m;
                    }
                }
                return Action::IntClear;
            }
            WR_DONE_IMWR => set_lo(&mut self.d[0].done_imwr, v),
            0x064 => set_hi(&mut self.d[0].done_imwr, v),
            WR_ABORT_IMWR => set_lo(&mut self.d[0].abort_imwr, v),
            0x06c => set_hi(&mut self.d[0].abort_imwr, v),
            0x070..=0x07c => self.d[0].imwr_data[((g - WR_IMWR_DATA) / 4) as usize] = v,
            WR_LL_ERR_EN => self.d[0].ll_err_en = v,
            RD_LL_ERR_EN => self.d[1].ll_err_en = v,
            RD_DONE_IMWR => set_lo(&mut self.d[1].done_imwr, v),
            0x0d0 => set_hi(&mut self.d[1].done_imwr, v),
            RD_ABORT_IMWR => set_lo(&mut self.d[1].abort_imwr, v),
            0x0d8 => set_hi(&mut self.d[1].abort_imwr, v),
            0x0dc..=0x0e8 => self.d[1].imwr_data[((g - RD_IMWR_DATA) / 4) as usize] = v,
            VIEWPORT_SEL => self.viewport = v,
            WR_CHGROUP => self.d[0].chgroup = v,
            RD_CHGROUP => self.d[1].chgroup = v,
            WR_HSHAKE_CNT => set_lo(&mut self.d[0].hshake, v),
            0x10c => set_hi(&mut self.d[0].hshake, v),
            RD_HSHAKE_CNT => set_lo(&mut self.d[1].hshake, v),
            0x11c => set_hi(&mut self.d[1].hshake, v),
            0x128..=0x144 => self.d[0].pwr_en[((g - WR_PWR_EN) / 4) as usize] = v,
            0x168..=0x184 => self.d[1].pwr_en[((g - RD_PWR_EN) / 4) as usize] = v,
            _ => {}
        }
        Action::None
    }
}

/// Register name for statistics ("edma.wr_doorbell", "edma.rd3.llp_lo").
pub fn name(off: u32) -> String {
    if (CH_BASE..BLOCK_END).contains(&off) {
        let rel = off - CH_BASE;
        let n = rel / CH_STRIDE;
        let within = rel % CH_STRIDE;
        let (d, reg) = if within < CH_RD_OFFSET {
            ("wr", within)
        } else {
            ("rd", within - CH_RD_OFFSET)
        };
        let r = match reg {
            CH_CONTROL1 => "ch_control1",
            CH_CONTROL2 => "ch_control2",
            TRANSFER_SIZE => "transfer_size",
            SAR_LO => "sar_lo",
            SAR_HI => "sar_hi",
            DAR_LO => "dar_lo",
            DAR_HI => "dar_hi",
            LLP_LO => "llp_lo",
            LLP_HI => "llp_hi",
            _ => "reserved",
        };
        return format!("edma.{d}{n}.{r}");
    }
    let s = match off {
        CTRL_DATA_ARB_PRIOR => "ctrl_data_arb_prior",
        CTRL => "ctrl",
        WR_ENGINE_EN => "wr_engine_en",
        WR_DOORBELL => "wr_doorbell",
        WR_CH_ARB_WEIGHT => "wr_ch_arb_weight_lo",
        0x01c => "wr_ch_arb_weight_hi",
        RD_ENGINE_EN => "rd_engine_en",
        RD_DOORBELL => "rd_doorbell",
        RD_CH_ARB_WEIGHT => "rd_ch_arb_weight_lo",
        0x03c => "rd_ch_arb_weight_hi",
        WR_INT_STATUS => "wr_int_status",
        WR_INT_MASK => "wr_int_mask",
        WR_INT_CLEAR => "wr_int_clear",
        WR_ERR_STATUS => "wr_err_status",
        WR_DONE_IMWR => "wr_done_imwr_lo",
        0x064 => "wr_done_imwr_hi",
        WR_ABORT_IMWR => "wr_abort_imwr_lo",
        0x06c => "wr_abort_imwr_hi",
        0x070 => "wr_ch01_imwr_data",
        0x074 => "wr_ch23_imwr_data",
        0x078 => "wr_ch45_imwr_data",
        0x07c => "wr_ch67_imwr_data",
        WR_LL_ERR_EN => "wr_linked_list_err_en",
        RD_INT_STATUS => "rd_int_status",
        RD_INT_MASK => "rd_int_mask",
        RD_INT_CLEAR => "rd_int_clear",
        RD_ERR_STATUS => "rd_err_status_lo",
        0x0b8 => "rd_err_status_hi",
        RD_LL_ERR_EN => "rd_linked_list_err_en",
        RD_DONE_IMWR => "rd_done_imwr_lo",
        0x0d0 => "rd_done_imwr_hi",
        RD_ABORT_IMWR => "rd_abort_imwr_lo",
        0x0d8 => "rd_abort_imwr_hi",
        0x0dc => "rd_ch01_imwr_data",
        0x0e0 => "rd_ch23_imwr_data",
        0x0e4 => "rd_ch45_imwr_data",
        0x0e8 => "rd_ch67_imwr_data",
        VIEWPORT_SEL => "viewport_sel",
        WR_CHGROUP => "wr_engine_chgroup",
        RD_CHGROUP => "rd_engine_chgroup",
        WR_HSHAKE_CNT => "wr_engine_hshake_cnt_lo",
        0x10c => "wr_engine_hshake_cnt_hi",
        RD_HSHAKE_CNT => "rd_engine_hshake_cnt_lo",
        0x11c => "rd_engine_hshake_cnt_hi",
        0x128..=0x144 => return format!("edma.wr_ch{}_pwr_en", (off - WR_PWR_EN) / 4),
        0x168..=0x184 => return format!("edma.rd_ch{}_pwr_en", (off - RD_PWR_EN) / 4),
        _ => "reserved",
    };
    format!("edma.{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_halves() {
        let mut e = Edma::new(4);
        assert_eq!(e.read(CTRL), 0x0004_0004);
        // per-channel 64-bit registers are 4-aligned halves
        e.write(CH_BASE + CH_STRIDE + CH_RD_OFFSET + LLP_LO, 0x1000);
        e.write(CH_BASE + CH_STRIDE + CH_RD_OFFSET + LLP_HI, 0x2);
        assert_eq!(e.d[1].ch[1].llp, 0x2_0000_1000);
        e.write(RD_DONE_IMWR, 0xfee0_0000);
        e.write(0x0d0, 0x1);
        assert_eq!(e.d[1].done_imwr, 0x1_fee0_0000);
        // odd channel imwr data sits in [31:16]
        e.write(WR_IMWR_DATA, 0x4021_4020);
        assert_eq!(e.d[0].imwr_data_of(0), 0x4020);
        assert_eq!(e.d[0].imwr_data_of(1), 0x4021);
        // CS is read-only
        e.write(CH_BASE + CH_CONTROL1, CS_MASK | LLE | CCS);
        assert_eq!(e.read(CH_BASE + CH_CONTROL1), LLE | CCS);
        // channels past the configured count read 0
        e.write(CH_BASE + 5 * CH_STRIDE + LLP_LO, 0x55);
        assert_eq!(e.read(CH_BASE + 5 * CH_STRIDE + LLP_LO), 0);
        assert_eq!(name(0x0cc), "edma.rd_done_imwr_lo");
        assert_eq!(name(0x0300 + 0x1c), "edma.rd0.llp_lo");
    }

    #[test]
    fn clear_is_write_one() {
        let mut e = Edma::new(4);
        e.d[0].int_status = done_bit(1) | abort_bit(2);
        e.d[0].err_lo = 1 << 2;
        assert!(e.local_pending());
        e.write(WR_INT_MASK, done_bit(1) | abort_bit(2));
        assert!(!e.local_pending());
        e.write(WR_INT_CLEAR, abort_bit(2));
        assert_eq!(e.d[0].int_status, done_bit(1));
        assert_eq!(e.d[0].err_lo, 0);
        assert_eq!(e.write(WR_INT_STATUS, 0), Action::ReadOnly);
    }
}
