//! eDMA register file: the one declaration of the engine's registers under
//! the driver's names (`drivers/metis/regs.rs`, module `edma`), with offsets
//! verified against the compiled layout of dw-edma-v0-regs.h (see
//! dw-edma-and-peers.md §1.3); their fields as bitfield types, storage and
//! decode. Behaviour with side effects (doorbells, engine enable) is returned
//! as an `Action` for the engine to carry out.

use super::Dir;
use bitfield_struct::bitfield;

/// Registers the engine has once.
// The driver's register names, so that both sides grep alike.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineReg {
    CTRL_DATA_ARB_PRIOR,
    /// Channel counts ([`Ctrl`]).
    CTRL,
    /// The read half's second error word; the write half has only one.
    RD_ERR_STATUS_HI,
    VIEWPORT_SEL,
}
pub use EngineReg::*;

/// Words of CH_IMWR_DATA per half: one per channel pair of 8.
pub const IMWR_DATA_WORDS: usize = 4;
/// Words of CH_PWR_EN per half: one per channel of 8.
pub const PWR_EN_WORDS: usize = 8;

/// Registers each half of the engine has, each at its own offset.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirReg {
    /// [`EngineEn`].
    ENGINE_EN,
    /// [`Doorbell`].
    DOORBELL,
    CH_ARB_WEIGHT_LO,
    CH_ARB_WEIGHT_HI,
    /// [`IntBits`], read-only.
    INT_STATUS,
    /// [`IntBits`]; gates local (INTx) delivery only.
    INT_MASK,
    /// [`IntBits`], write 1 to clear.
    INT_CLEAR,
    /// [`ErrStatus`], read-only (the read half's low word).
    ERR_STATUS,
    DONE_IMWR_LO,
    DONE_IMWR_HI,
    ABORT_IMWR_LO,
    ABORT_IMWR_HI,
    /// [`ImwrData`] of channel pair n (channels 2n and 2n+1).
    CH_IMWR_DATA(usize),
    /// [`LlErrEn`].
    LL_ERR_EN,
    ENGINE_CHGROUP,
    ENGINE_HSHAKE_CNT_LO,
    ENGINE_HSHAKE_CNT_HI,
    /// Power enable of channel n.
    CH_PWR_EN(usize),
}
pub use DirReg::*;

/// Registers of one channel, in each half's block for that channel.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChReg {
    /// [`ChControl1`].
    CH_CONTROL1,
    CH_CONTROL2,
    CH_TRANSFER_SIZE,
    CH_SAR_LO,
    CH_SAR_HI,
    CH_DAR_LO,
    CH_DAR_HI,
    CH_LLP_LO,
    CH_LLP_HI,
}
pub use ChReg::*;

/// Channel 0's register block in the write and the read half (the driver's
/// `ChBase`); channel n's is `CH_STRIDE` · n above it.
const CH_BASE: [u32; 2] = [0x200, 0x300];
pub const CH_STRIDE: u32 = 0x200;
/// Span of one half's block of a channel.
const CH_SPAN: u32 = CH_BASE[1] - CH_BASE[0];
/// End of the used register block with 8+8 channels.
pub const BLOCK_END: u32 = CH_BASE[0] + 8 * CH_STRIDE;
/// End of the block with 4+4 channels (Metis).
pub const BLOCK_END_4: u32 = CH_BASE[0] + 4 * CH_STRIDE;

impl EngineReg {
    const ALL: [EngineReg; 4] = [CTRL_DATA_ARB_PRIOR, CTRL, RD_ERR_STATUS_HI, VIEWPORT_SEL];

    pub const fn offset(self) -> u32 {
        match self {
            CTRL_DATA_ARB_PRIOR => 0x000,
            CTRL => 0x008,
            RD_ERR_STATUS_HI => 0x0b8,
            VIEWPORT_SEL => 0x0fc,
        }
    }

    fn stat_name(self) -> &'static str {
        match self {
            CTRL_DATA_ARB_PRIOR => "ctrl_data_arb_prior",
            CTRL => "ctrl",
            RD_ERR_STATUS_HI => "rd_err_status_hi",
            VIEWPORT_SEL => "viewport_sel",
        }
    }
}

impl DirReg {
    /// Offsets in the write half and in the read half.
    const fn offsets(self) -> [u32; 2] {
        match self {
            ENGINE_EN => [0x00c, 0x02c],
            DOORBELL => [0x010, 0x030],
            CH_ARB_WEIGHT_LO => [0x018, 0x038],
            CH_ARB_WEIGHT_HI => [0x01c, 0x03c],
            INT_STATUS => [0x04c, 0x0a0],
            INT_MASK => [0x054, 0x0a8],
            INT_CLEAR => [0x058, 0x0ac],
            ERR_STATUS => [0x05c, 0x0b4],
            DONE_IMWR_LO => [0x060, 0x0cc],
            DONE_IMWR_HI => [0x064, 0x0d0],
            ABORT_IMWR_LO => [0x068, 0x0d4],
            ABORT_IMWR_HI => [0x06c, 0x0d8],
            CH_IMWR_DATA(n) => [0x070 + 4 * n as u32, 0x0dc + 4 * n as u32],
            LL_ERR_EN => [0x090, 0x0c4],
            ENGINE_CHGROUP => [0x100, 0x104],
            ENGINE_HSHAKE_CNT_LO => [0x108, 0x118],
            ENGINE_HSHAKE_CNT_HI => [0x10c, 0x11c],
            CH_PWR_EN(n) => [0x128 + 4 * n as u32, 0x168 + 4 * n as u32],
        }
    }

    /// Offset in BAR0 of this register of half `d`.
    pub const fn at(self, d: Dir) -> u32 {
        self.offsets()[d as usize]
    }

    fn all() -> impl Iterator<Item = DirReg> {
        [
            ENGINE_EN,
            DOORBELL,
            CH_ARB_WEIGHT_LO,
            CH_ARB_WEIGHT_HI,
            INT_STATUS,
            INT_MASK,
            INT_CLEAR,
            ERR_STATUS,
            DONE_IMWR_LO,
            DONE_IMWR_HI,
            ABORT_IMWR_LO,
            ABORT_IMWR_HI,
            LL_ERR_EN,
            ENGINE_CHGROUP,
            ENGINE_HSHAKE_CNT_LO,
            ENGINE_HSHAKE_CNT_HI,
        ]
        .into_iter()
        .chain((0..IMWR_DATA_WORDS).map(CH_IMWR_DATA))
        .chain((0..PWR_EN_WORDS).map(CH_PWR_EN))
    }

    /// Statistics name without the "edma." prefix: dw-edma-v0-regs.h's field
    /// names, which the `stats` output has always used.
    fn stat_name(self, d: Dir) -> String {
        let s = match (self, d) {
            (ENGINE_EN, _) => "engine_en",
            (DOORBELL, _) => "doorbell",
            (CH_ARB_WEIGHT_LO, _) => "ch_arb_weight_lo",
            (CH_ARB_WEIGHT_HI, _) => "ch_arb_weight_hi",
            (INT_STATUS, _) => "int_status",
            (INT_MASK, _) => "int_mask",
            (INT_CLEAR, _) => "int_clear",
            (ERR_STATUS, Dir::Wr) => "err_status",
            (ERR_STATUS, Dir::Rd) => "err_status_lo",
            (DONE_IMWR_LO, _) => "done_imwr_lo",
            (DONE_IMWR_HI, _) => "done_imwr_hi",
            (ABORT_IMWR_LO, _) => "abort_imwr_lo",
            (ABORT_IMWR_HI, _) => "abort_imwr_hi",
            (CH_IMWR_DATA(n), _) => {
                return format!("{}_ch{}{}_imwr_data", d.name(), 2 * n, 2 * n + 1)
            }
            (LL_ERR_EN, _) => "linked_list_err_en",
            (ENGINE_CHGROUP, _) => "engine_chgroup",
            (ENGINE_HSHAKE_CNT_LO, _) => "engine_hshake_cnt_lo",
            (ENGINE_HSHAKE_CNT_HI, _) => "engine_hshake_cnt_hi",
            (CH_PWR_EN(n), _) => return format!("{}_ch{n}_pwr_en", d.name()),
        };
        format!("{}_{s}", d.name())
    }
}

impl ChReg {
    const ALL: [ChReg; 9] = [
        CH_CONTROL1,
        CH_CONTROL2,
        CH_TRANSFER_SIZE,
        CH_SAR_LO,
        CH_SAR_HI,
        CH_DAR_LO,
        CH_DAR_HI,
        CH_LLP_LO,
        CH_LLP_HI,
    ];

    /// Offset inside the channel's block.
    const fn within(self) -> u32 {
        match self {
            CH_CONTROL1 => 0x00,
            CH_CONTROL2 => 0x04,
            CH_TRANSFER_SIZE => 0x08,
            CH_SAR_LO => 0x0c,
            CH_SAR_HI => 0x10,
            CH_DAR_LO => 0x14,
            CH_DAR_HI => 0x18,
            CH_LLP_LO => 0x1c,
            CH_LLP_HI => 0x20,
        }
    }

    /// Offset in BAR0 of this register of channel `ch` of half `d`.
    pub const fn at(self, d: Dir, ch: usize) -> u32 {
        CH_BASE[d as usize] + ch as u32 * CH_STRIDE + self.within()
    }

    fn stat_name(self) -> &'static str {
        match self {
            CH_CONTROL1 => "ch_control1",
            CH_CONTROL2 => "ch_control2",
            CH_TRANSFER_SIZE => "transfer_size",
            CH_SAR_LO => "sar_lo",
            CH_SAR_HI => "sar_hi",
            CH_DAR_LO => "dar_lo",
            CH_DAR_HI => "dar_hi",
            CH_LLP_LO => "llp_lo",
            CH_LLP_HI => "llp_hi",
        }
    }
}

/// A register of the block, decoded from its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Engine(EngineReg),
    Dir(Dir, DirReg),
    /// Channel numbers go up to the 8+8 block, whatever the configured count.
    Ch(Dir, usize, ChReg),
}

/// Where an offset falls in the channel blocks: half, channel, offset in
/// that half's block.
fn ch_slot(off: u32) -> Option<(Dir, usize, u32)> {
    if !(CH_BASE[0]..BLOCK_END).contains(&off) {
        return None;
    }
    let rel = off - CH_BASE[0];
    let (ch, within) = ((rel / CH_STRIDE) as usize, rel % CH_STRIDE);
    Some(if within < CH_SPAN {
        (Dir::Wr, ch, within)
    } else {
        (Dir::Rd, ch, within - CH_SPAN)
    })
}

impl Reg {
    /// The register at `off`; None for reserved offsets.
    pub fn at(off: u32) -> Option<Reg> {
        if let Some((d, ch, within)) = ch_slot(off) {
            return ChReg::ALL
                .into_iter()
                .find(|r| r.within() == within)
                .map(|r| Reg::Ch(d, ch, r));
        }
        if let Some(r) = EngineReg::ALL.into_iter().find(|r| r.offset() == off) {
            return Some(Reg::Engine(r));
        }
        DirReg::all().find_map(|r| {
            [Dir::Wr, Dir::Rd]
                .into_iter()
                .find(|&d| r.at(d) == off)
                .map(|d| Reg::Dir(d, r))
        })
    }

    pub fn offset(self) -> u32 {
        match self {
            Reg::Engine(r) => r.offset(),
            Reg::Dir(d, r) => r.at(d),
            Reg::Ch(d, ch, r) => r.at(d, ch),
        }
    }
}

/// Register name for statistics ("edma.wr_doorbell", "edma.rd3.llp_lo").
pub fn name(off: u32) -> String {
    match (Reg::at(off), ch_slot(off)) {
        (Some(Reg::Engine(r)), _) => format!("edma.{}", r.stat_name()),
        (Some(Reg::Dir(d, r)), _) => format!("edma.{}", r.stat_name(d)),
        (Some(Reg::Ch(d, ch, r)), _) => format!("edma.{}{ch}.{}", d.name(), r.stat_name()),
        (None, Some((d, ch, _))) => format!("edma.{}{ch}.reserved", d.name()),
        (None, None) => "edma.reserved".into(),
    }
}

/// CTRL: channel counts implemented by the engine.
#[bitfield(u32)]
pub struct Ctrl {
    #[bits(4)]
    pub wr_channels: u8,
    #[bits(12)]
    __: u16,
    #[bits(4)]
    pub rd_channels: u8,
    #[bits(12)]
    __: u16,
}

/// ENGINE_EN.
#[bitfield(u32)]
pub struct EngineEn {
    pub enable: bool,
    #[bits(31)]
    __: u32,
}

/// DOORBELL: starts (or, with `stop`, halts) a channel.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct Doorbell {
    #[bits(3)]
    pub ch: u8,
    #[bits(28)]
    __: u32,
    pub stop: bool,
}

/// The bit of channel `ch` in the one-bit-per-channel fields below.
pub const fn ch_bit(ch: usize) -> u8 {
    1 << ch
}

/// The bits of channels 0..nch.
pub fn ch_mask(nch: usize) -> u8 {
    (0..nch).fold(0, |m, ch| m | ch_bit(ch))
}

/// INT_STATUS, INT_MASK and INT_CLEAR: one bit per channel for each cause.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct IntBits {
    pub done: u8,
    __: u8,
    pub abort: u8,
    __: u8,
}

impl IntBits {
    /// Channel `ch`'s DONE bit.
    pub const fn done_of(ch: usize) -> IntBits {
        IntBits::new().with_done(ch_bit(ch))
    }

    /// Channel `ch`'s ABORT bit.
    pub const fn abort_of(ch: usize) -> IntBits {
        IntBits::new().with_abort(ch_bit(ch))
    }

    /// These bits of the channels in `chans` only.
    pub fn only(self, chans: u8) -> IntBits {
        IntBits::new()
            .with_done(self.done() & chans)
            .with_abort(self.abort() & chans)
    }

    pub fn union(self, o: IntBits) -> IntBits {
        IntBits::new()
            .with_done(self.done() | o.done())
            .with_abort(self.abort() | o.abort())
    }

    pub fn without(self, o: IntBits) -> IntBits {
        IntBits::new()
            .with_done(self.done() & !o.done())
            .with_abort(self.abort() & !o.abort())
    }

    pub fn is_empty(self) -> bool {
        self.done() == 0 && self.abort() == 0
    }
}

/// Channel `ch`'s DONE bit as a register value.
pub fn done_bit(ch: usize) -> u32 {
    IntBits::done_of(ch).into()
}

/// Channel `ch`'s ABORT bit as a register value.
pub fn abort_bit(ch: usize) -> u32 {
    IntBits::abort_of(ch).into()
}

/// ERR_STATUS (the read half's low word): why a channel aborted.
#[bitfield(u32)]
pub struct ErrStatus {
    /// Application (data transfer) error.
    pub data: u8,
    __: u8,
    /// Linked-list element fetch error.
    pub ll_fetch: u8,
    __: u8,
}

/// RD_ERR_STATUS_HI: completions the read half's requests got back.
#[bitfield(u32)]
pub struct ErrStatusHi {
    pub unsupported_request: u8,
    __: u8,
    pub completer_abort: u8,
    __: u8,
}

impl ErrStatus {
    fn clear_ch(&mut self, ch: usize) {
        self.set_data(self.data() & !ch_bit(ch));
        self.set_ll_fetch(self.ll_fetch() & !ch_bit(ch));
    }
}

impl ErrStatusHi {
    fn clear_ch(&mut self, ch: usize) {
        self.set_unsupported_request(self.unsupported_request() & !ch_bit(ch));
        self.set_completer_abort(self.completer_abort() & !ch_bit(ch));
    }
}

/// CH_IMWR_DATA: the IMWR data of a channel pair.
#[bitfield(u32)]
pub struct ImwrData {
    pub even: u16,
    pub odd: u16,
}

/// LL_ERR_EN: abort IMWR in linked-list mode, one bit per channel.
#[bitfield(u32)]
pub struct LlErrEn {
    pub ch: u8,
    #[bits(24)]
    __: u32,
}

/// Channel status in [`ChControl1::cs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cs {
    Idle,
    Running,
    /// Halted after an abort (vendor macros call 2 HALT).
    Halted,
    Stopped,
}

impl Cs {
    const fn into_bits(self) -> u8 {
        self as u8
    }

    const fn from_bits(v: u8) -> Cs {
        match v {
            0 => Cs::Idle,
            1 => Cs::Running,
            2 => Cs::Halted,
            _ => Cs::Stopped,
        }
    }
}

/// CH_CONTROL1.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct ChControl1 {
    /// Cycle bit (non-LL mode; in LL mode elements carry their own).
    pub cb: bool,
    pub tcb: bool,
    pub llp: bool,
    /// Local interrupt (status latch, INTx) on completion.
    pub lie: bool,
    /// Remote interrupt (IMWR) on completion.
    pub rie: bool,
    /// Read-only: the engine's.
    #[bits(2)]
    pub cs: Cs,
    #[bits(1)]
    __: u8,
    /// Consumer cycle state: elements whose CB equals it belong to the engine.
    pub ccs: bool,
    /// Linked-list mode.
    pub lle: bool,
    #[bits(2)]
    __: u8,
    #[bits(5)]
    pub func: u8,
    #[bits(15)]
    __: u16,
}

/// A 64-bit quantity as its two 32-bit register halves.
#[bitfield(u64)]
pub struct Halves {
    pub lo: u32,
    pub hi: u32,
}

fn lo(v: u64) -> u32 {
    Halves::from(v).lo()
}
fn hi(v: u64) -> u32 {
    Halves::from(v).hi()
}
fn set_lo(v: &mut u64, x: u32) {
    *v = Halves::from(*v).with_lo(x).into();
}
fn set_hi(v: &mut u64, x: u32) {
    *v = Halves::from(*v).with_hi(x).into();
}

#[derive(Clone, Debug, Default)]
pub struct Chan {
    /// As the host wrote it, with the engine's CS.
    pub ctrl1: ChControl1,
    pub ctrl2: u32,
    pub size: u32,
    pub sar: u64,
    pub dar: u64,
    pub llp: u64,
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
    pub engine_en: EngineEn,
    pub int_status: IntBits,
    pub int_mask: IntBits,
    pub err: ErrStatus,
    /// The read half only: the write half has no second error word.
    pub err_hi: ErrStatusHi,
    pub done_imwr: u64,
    pub abort_imwr: u64,
    pub imwr_data: [ImwrData; IMWR_DATA_WORDS],
    pub ll_err_en: LlErrEn,
    pub arb_weight: u64,
    pub chgroup: u32,
    pub hshake: u64,
    pub pwr_en: [u32; PWR_EN_WORDS],
    pub ch: Vec<Chan>,
}

impl DirRegs {
    /// IMWR data of a channel.
    pub fn imwr_data_of(&self, ch: usize) -> u32 {
        let w = self.imwr_data[ch / 2];
        u32::from(if ch.is_multiple_of(2) {
            w.even()
        } else {
            w.odd()
        })
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
    Doorbell(Dir, Doorbell),
    /// engine_en changed: (direction, was enabled, is enabled)
    Engine(Dir, bool, bool),
    /// int_mask changed the local interrupt state.
    IntState,
    /// int_clear: the host handled interrupts (status bits may have dropped).
    IntClear,
    /// Write to a read-only register.
    ReadOnly,
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
            .any(|d| !d.int_status.without(d.int_mask).is_empty())
    }

    /// The register at `off`; channels past the configured count are reserved.
    fn decode(&self, off: u32) -> Option<Reg> {
        Reg::at(off).filter(|r| !matches!(r, Reg::Ch(_, ch, _) if *ch >= self.nch))
    }

    pub fn read(&self, off: u32) -> u32 {
        match self.decode(off) {
            None => 0,
            Some(Reg::Ch(d, n, r)) => {
                let c = &self.dir(d).ch[n];
                match r {
                    CH_CONTROL1 => c.ctrl1.into(),
                    CH_CONTROL2 => c.ctrl2,
                    CH_TRANSFER_SIZE => c.size,
                    CH_SAR_LO => lo(c.sar),
                    CH_SAR_HI => hi(c.sar),
                    CH_DAR_LO => lo(c.dar),
                    CH_DAR_HI => hi(c.dar),
                    CH_LLP_LO => lo(c.llp),
                    CH_LLP_HI => hi(c.llp),
                }
            }
            Some(Reg::Engine(r)) => match r {
                CTRL_DATA_ARB_PRIOR => self.arb_prior,
                CTRL => Ctrl::new()
                    .with_wr_channels(self.nch as u8)
                    .with_rd_channels(self.nch as u8)
                    .into(),
                RD_ERR_STATUS_HI => self.dir(Dir::Rd).err_hi.into(),
                VIEWPORT_SEL => self.viewport,
            },
            Some(Reg::Dir(d, r)) => self.read_dir(d, r),
        }
    }

    fn read_dir(&self, d: Dir, r: DirReg) -> u32 {
        let x = self.dir(d);
        match r {
            ENGINE_EN => x.engine_en.into(),
            DOORBELL | INT_CLEAR => 0,
            CH_ARB_WEIGHT_LO => lo(x.arb_weight),
            CH_ARB_WEIGHT_HI => hi(x.arb_weight),
            INT_STATUS => x.int_status.into(),
            INT_MASK => x.int_mask.into(),
            ERR_STATUS => x.err.into(),
            DONE_IMWR_LO => lo(x.done_imwr),
            DONE_IMWR_HI => hi(x.done_imwr),
            ABORT_IMWR_LO => lo(x.abort_imwr),
            ABORT_IMWR_HI => hi(x.abort_imwr),
            CH_IMWR_DATA(n) => x.imwr_data[n].into(),
            LL_ERR_EN => x.ll_err_en.into(),
            ENGINE_CHGROUP => x.chgroup,
            ENGINE_HSHAKE_CNT_LO => lo(x.hshake),
            ENGINE_HSHAKE_CNT_HI => hi(x.hshake),
            CH_PWR_EN(n) => x.pwr_en[n],
        }
    }

    pub fn write(&mut self, off: u32, v: u32) -> Action {
        match self.decode(off) {
            None => Action::None,
            Some(Reg::Ch(d, n, r)) => {
                let c = &mut self.d[d as usize].ch[n];
                match r {
                    CH_CONTROL1 => {
                        c.ctrl1 = ChControl1::from(v).with_cs(c.ctrl1.cs());
                        c.prog += 1;
                    }
                    CH_CONTROL2 => c.ctrl2 = v,
                    CH_TRANSFER_SIZE => c.size = v,
                    CH_SAR_LO => set_lo(&mut c.sar, v),
                    CH_SAR_HI => set_hi(&mut c.sar, v),
                    CH_DAR_LO => set_lo(&mut c.dar, v),
                    CH_DAR_HI => set_hi(&mut c.dar, v),
                    CH_LLP_LO => {
                        set_lo(&mut c.llp, v);
                        c.prog += 1;
                    }
                    CH_LLP_HI => {
                        set_hi(&mut c.llp, v);
                        c.prog += 1;
                    }
                }
                Action::None
            }
            Some(Reg::Engine(r)) => match r {
                CTRL_DATA_ARB_PRIOR => {
                    self.arb_prior = v;
                    Action::None
                }
                CTRL | RD_ERR_STATUS_HI => Action::ReadOnly,
                VIEWPORT_SEL => {
                    self.viewport = v;
                    Action::None
                }
            },
            Some(Reg::Dir(d, r)) => self.write_dir(d, r, v),
        }
    }

    fn write_dir(&mut self, d: Dir, r: DirReg, v: u32) -> Action {
        let (nch, chans) = (self.nch, ch_mask(self.nch));
        let x = &mut self.d[d as usize];
        match r {
            ENGINE_EN => {
                let was = x.engine_en.enable();
                x.engine_en = EngineEn::new().with_enable(EngineEn::from(v).enable());
                return Action::Engine(d, was, x.engine_en.enable());
            }
            DOORBELL => return Action::Doorbell(d, Doorbell::from(v)),
            INT_STATUS | ERR_STATUS => return Action::ReadOnly,
            INT_MASK => {
                x.int_mask = IntBits::from(v).only(chans);
                return Action::IntState;
            }
            INT_CLEAR => {
                let clr = IntBits::from(v).only(chans);
                x.int_status = x.int_status.without(clr);
                // Clearing a channel's ABORT also clears its error bits.
                for ch in (0..nch).filter(|&ch| clr.abort() & ch_bit(ch) != 0) {
                    x.err.clear_ch(ch);
                    x.err_hi.clear_ch(ch);
                }
                return Action::IntClear;
            }
            CH_ARB_WEIGHT_LO => set_lo(&mut x.arb_weight, v),
            CH_ARB_WEIGHT_HI => set_hi(&mut x.arb_weight, v),
            DONE_IMWR_LO => set_lo(&mut x.done_imwr, v),
            DONE_IMWR_HI => set_hi(&mut x.done_imwr, v),
            ABORT_IMWR_LO => set_lo(&mut x.abort_imwr, v),
            ABORT_IMWR_HI => set_hi(&mut x.abort_imwr, v),
            CH_IMWR_DATA(n) => x.imwr_data[n] = v.into(),
            LL_ERR_EN => x.ll_err_en = v.into(),
            ENGINE_CHGROUP => x.chgroup = v,
            ENGINE_HSHAKE_CNT_LO => set_lo(&mut x.hshake, v),
            ENGINE_HSHAKE_CNT_HI => set_hi(&mut x.hshake, v),
            CH_PWR_EN(n) => x.pwr_en[n] = v,
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_halves() {
        let mut e = Edma::new(4);
        assert_eq!(e.read(CTRL.offset()), 0x0004_0004);
        // per-channel 64-bit registers are 4-aligned halves
        e.write(CH_LLP_LO.at(Dir::Rd, 1), 0x1000);
        e.write(CH_LLP_HI.at(Dir::Rd, 1), 0x2);
        assert_eq!(e.d[1].ch[1].llp, 0x2_0000_1000);
        e.write(DONE_IMWR_LO.at(Dir::Rd), 0xfee0_0000);
        e.write(DONE_IMWR_HI.at(Dir::Rd), 0x1);
        assert_eq!(e.d[1].done_imwr, 0x1_fee0_0000);
        // odd channel imwr data sits in [31:16]
        e.write(CH_IMWR_DATA(0).at(Dir::Wr), 0x4021_4020);
        assert_eq!(e.d[0].imwr_data_of(0), 0x4020);
        assert_eq!(e.d[0].imwr_data_of(1), 0x4021);
        // CS is read-only
        let c = ChControl1::new().with_lle(true).with_ccs(true);
        e.write(CH_CONTROL1.at(Dir::Wr, 0), c.with_cs(Cs::Stopped).into());
        assert_eq!(e.read(CH_CONTROL1.at(Dir::Wr, 0)), c.into_bits());
        // channels past the configured count read 0
        e.write(CH_LLP_LO.at(Dir::Wr, 5), 0x55);
        assert_eq!(e.read(CH_LLP_LO.at(Dir::Wr, 5)), 0);
        assert_eq!(name(0x0cc), "edma.rd_done_imwr_lo");
        assert_eq!(name(0x0300 + 0x1c), "edma.rd0.llp_lo");
        assert_eq!(name(0x05c), "edma.wr_err_status");
        assert_eq!(name(0x0e4), "edma.rd_ch45_imwr_data");
        assert_eq!(name(0x0230), "edma.wr0.reserved");
        assert_eq!(name(0x0004), "edma.reserved");
    }

    #[test]
    fn every_offset_decodes_back() {
        for off in (0..BLOCK_END).step_by(4) {
            if let Some(r) = Reg::at(off) {
                assert_eq!(r.offset(), off, "{r:?}");
            }
        }
    }

    #[test]
    fn clear_is_write_one() {
        let mut e = Edma::new(4);
        e.d[0].int_status = IntBits::done_of(1).union(IntBits::abort_of(2));
        e.d[0].err.set_data(ch_bit(2));
        assert!(e.local_pending());
        e.write(INT_MASK.at(Dir::Wr), done_bit(1) | abort_bit(2));
        assert!(!e.local_pending());
        e.write(INT_CLEAR.at(Dir::Wr), abort_bit(2));
        assert_eq!(e.d[0].int_status, IntBits::done_of(1));
        assert_eq!(u32::from(e.d[0].err), 0);
        assert_eq!(e.write(INT_STATUS.at(Dir::Wr), 0), Action::ReadOnly);
    }
}
