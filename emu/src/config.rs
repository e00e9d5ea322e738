//! PCI configuration space (4 KiB, PCIe) with per-bit write semantics:
//! read-only bits ignore writes, RW bits store, RW1C bits clear on 1.
//! BAR sizing falls out of the write masks (writing all-ones reads back the
//! size mask with the type bits).

use crate::link::LinkSpec;
use crate::options::Identity;

pub const CFG_SIZE: usize = 4096;

// Standard header
pub const VENDOR_ID: usize = 0x00;
pub const COMMAND: usize = 0x04;
pub const STATUS: usize = 0x06;
pub const BAR0: usize = 0x10;
pub const BAR1: usize = 0x14;
pub const BAR2: usize = 0x18;
pub const ROM_BAR: usize = 0x30;

pub const CMD_MEM: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;
pub const STATUS_INTX: u16 = 1 << 3;
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Set by the requester when a completion came back Completer Abort.
pub const STATUS_RECEIVED_TARGET_ABORT: u16 = 1 << 12;
/// Set by the requester when a completion came back Unsupported Request.
pub const STATUS_RECEIVED_MASTER_ABORT: u16 = 1 << 13;

// Capability offsets (our layout)
pub const PM_CAP: usize = 0x40;
pub const MSI_CAP: usize = 0x50;
pub const PCIE_CAP: usize = 0x70;
pub const MSIX_CAP: usize = 0xb0;
pub const AER_CAP: usize = 0x100;
pub const LTR_CAP: usize = 0x140;
pub const L1SS_CAP: usize = 0x150;
pub const VSEC_CAP: usize = 0x180;

// PM
pub const PMCSR: usize = PM_CAP + 4;
pub const PMC_NO_SOFT_RESET: u16 = 1 << 3;

// MSI (64-bit, per-vector masking)
pub const MSI_CTRL: usize = MSI_CAP + 2;
pub const MSI_ADDR_LO: usize = MSI_CAP + 4;
pub const MSI_ADDR_HI: usize = MSI_CAP + 8;
pub const MSI_DATA: usize = MSI_CAP + 0xc;
pub const MSI_MASK: usize = MSI_CAP + 0x10;
pub const MSI_PENDING: usize = MSI_CAP + 0x14;
pub const MSI_CTRL_ENABLE: u16 = 1;
/// Multiple Message Capable = 5 (32 vectors).
pub const MSI_MMC: u16 = 5;

// PCIe
pub const PCIE_DEVCAP: usize = PCIE_CAP + 4;
pub const PCIE_DEVCTL: usize = PCIE_CAP + 8;
pub const PCIE_DEVSTA: usize = PCIE_CAP + 0xa;
pub const PCIE_LNKCAP: usize = PCIE_CAP + 0xc;
pub const PCIE_LNKCTL: usize = PCIE_CAP + 0x10;
pub const PCIE_LNKSTA: usize = PCIE_CAP + 0x12;
pub const PCIE_DEVCAP2: usize = PCIE_CAP + 0x24;
pub const PCIE_DEVCTL2: usize = PCIE_CAP + 0x28;
pub const PCIE_LNKCAP2: usize = PCIE_CAP + 0x2c;
pub const PCIE_LNKCTL2: usize = PCIE_CAP + 0x30;
pub const DEVCAP_FLR: u32 = 1 << 28;
pub const DEVCTL_FLR: u16 = 1 << 15;

// MSI-X
pub const MSIX_CTRL: usize = MSIX_CAP + 2;
pub const MSIX_CTRL_ENABLE: u16 = 1 << 15;
pub const MSIX_CTRL_FN_MASK: u16 = 1 << 14;

/// Sizes of the BARs and where the MSI-X table lives.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub identity: Identity,
    pub bar0_size: u64,
    pub bar2_size: u64,
    pub rom_size: u64,
    pub msix_vectors: u32,
    pub msix_table: u32,
    pub msix_pba: u32,
    pub channels: usize,
    pub link: LinkSpec,
    pub no_soft_reset: bool,
    /// Synopsys DMA VSEC present at 0x180.
    pub vsec: bool,
}

impl Layout {
    pub fn new(
        identity: Identity,
        msix_vectors: u32,
        channels: usize,
        link: LinkSpec,
        d3_loses_state: bool,
        vsec: bool,
    ) -> Layout {
        let (bar0_size, msix_table, msix_pba) = match identity {
            // 4 KiB eDMA block ending at 0xa00; the optional MSI-X table
            // (64 vectors at most) and PBA use the unused rest.
            Identity::Metis => (4096, 0xa00, 0xe00),
            // 64 KiB eDMA register BAR; MSI-X well past the 0x1200 block.
            Identity::Synopsys => (65536, 0x8000, 0x9000),
        };
        Layout {
            identity,
            bar0_size,
            bar2_size: 32 << 20,
            rom_size: 64 << 10,
            msix_vectors,
            msix_table,
            msix_pba,
            channels,
            link,
            no_soft_reset: !d3_loses_state,
            vsec,
        }
    }

    pub fn ids(&self) -> (u16, u16) {
        match self.identity {
            Identity::Metis => (0x1f9d, 0x1100),
            Identity::Synopsys => (0x16c3, 0xedda),
        }
    }
}

pub struct ConfigSpace {
    data: Box<[u8; CFG_SIZE]>,
    wmask: Box<[u8; CFG_SIZE]>,
    w1c: Box<[u8; CFG_SIZE]>,
    /// Bits that survive FLR and D3->D0 resets (AER sticky registers).
    sticky: Box<[u8; CFG_SIZE]>,
    init: Box<[u8; CFG_SIZE]>,
    pub layout: Layout,
}

/// Side effects of a config write the device has to act on.
#[derive(Default, Debug, Clone, Copy)]
pub struct WriteEffects {
    /// DevCtl "Initiate Function Level Reset" was written as 1.
    pub flr: bool,
}

impl ConfigSpace {
    pub fn new(layout: Layout) -> ConfigSpace {
        let mut c = ConfigSpace {
            data: Box::new([0; CFG_SIZE]),
            wmask: Box::new([0; CFG_SIZE]),
            w1c: Box::new([0; CFG_SIZE]),
            sticky: Box::new([0; CFG_SIZE]),
            init: Box::new([0; CFG_SIZE]),
            layout,
        };
        c.build();
        *c.init = *c.data;
        c
    }

    fn ro16(&mut self, off: usize, v: u16) {
        self.data[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn ro32(&mut self, off: usize, v: u32) {
        self.data[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn rw16(&mut self, off: usize, v: u16, mask: u16) {
        self.ro16(off, v);
        self.wmask[off..off + 2].copy_from_slice(&mask.to_le_bytes());
    }
    fn rw32(&mut self, off: usize, v: u32, mask: u32) {
        self.ro32(off, v);
        self.wmask[off..off + 4].copy_from_slice(&mask.to_le_bytes());
    }
    fn w1c16(&mut self, off: usize, mask: u16) {
        self.w1c[off..off + 2].copy_from_slice(&mask.to_le_bytes());
    }
    fn w1c32(&mut self, off: usize, mask: u32) {
        self.w1c[off..off + 4].copy_from_slice(&mask.to_le_bytes());
    }
    fn sticky32(&mut self, off: usize) {
        self.sticky[off..off + 4].copy_from_slice(&[0xff; 4]);
    }
    /// Extended capability header: id [15:0], version [19:16], next [31:20].
    fn ext_hdr(&mut self, off: usize, id: u16, ver: u8, next: usize) {
        self.ro32(off, id as u32 | (ver as u32) << 16 | (next as u32) << 20);
    }

    fn build(&mut self) {
        let l = self.layout;
        let (vid, did) = l.ids();
        self.ro16(0x00, vid);
        self.ro16(0x02, did);
        // Command: memory space, bus master, parity error response, SERR#,
        // INTx disable. No I/O BAR, so I/O space stays 0.
        self.rw16(
            COMMAND,
            0,
            CMD_MEM | CMD_BUS_MASTER | 1 << 6 | 1 << 8 | CMD_INTX_DISABLE,
        );
        self.ro16(STATUS, STATUS_CAP_LIST);
        // master data parity error, signaled/received target abort, received
        // master abort, signaled system error, detected parity error
        self.w1c16(
            STATUS,
            1 << 8 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 14 | 1 << 15,
        );
        self.ro32(0x08, 0x1200_0000 | 0x02); // class 12:00:00, revision 2
        self.rw32(0x0c, 0, 0xff); // cache line size RW, latency 0, header type 0
                                  // BAR0: 64-bit memory, non-prefetchable (type bits 0b100).
        self.rw32(BAR0, 0x4, !(l.bar0_size as u32 - 1));
        self.rw32(BAR1, 0, 0xffff_ffff);
        // BAR2: 32-bit memory, non-prefetchable.
        self.rw32(BAR2, 0x0, !(l.bar2_size as u32 - 1));
        self.ro16(0x2c, vid);
        self.ro16(0x2e, did);
        // Expansion ROM: address bits + enable bit.
        self.rw32(ROM_BAR, 0, !(l.rom_size as u32 - 1) | 1);
        self.data[0x34] = PM_CAP as u8;
        self.rw16(0x3c, 0x0100, 0x00ff); // interrupt line RW, pin INTA

        // PM v3: D1 supported, D3hot, NoSoftRst per option.
        self.data[PM_CAP] = 0x01;
        self.data[PM_CAP + 1] = MSI_CAP as u8;
        self.ro16(PM_CAP + 2, 0x0003 | 1 << 9);
        let nsr = if l.no_soft_reset {
            PMC_NO_SOFT_RESET
        } else {
            0
        };
        self.rw16(PMCSR, nsr, 0x0003);

        // MSI: 32 vectors, 64-bit, per-vector masking.
        self.data[MSI_CAP] = 0x05;
        self.data[MSI_CAP + 1] = PCIE_CAP as u8;
        self.rw16(
            MSI_CTRL,
            MSI_MMC << 1 | 1 << 7 | 1 << 8,
            MSI_CTRL_ENABLE | 0x7 << 4,
        );
        self.rw32(MSI_ADDR_LO, 0, 0xffff_fffc);
        self.rw32(MSI_ADDR_HI, 0, 0xffff_ffff);
        self.rw16(MSI_DATA, 0, 0xffff);
        self.rw32(MSI_MASK, 0, 0xffff_ffff);
        self.ro32(MSI_PENDING, 0);

        // PCIe v2 endpoint.
        self.data[PCIE_CAP] = 0x10;
        self.data[PCIE_CAP + 1] = if l.msix_vectors > 0 {
            MSIX_CAP as u8
        } else {
            0
        };
        self.ro16(PCIE_CAP + 2, 0x0002);
        // DevCap: MPS 512, extended tags, L0s/L1 acceptable latency no limit,
        // role-based error reporting, FLR.
        self.ro32(
            PCIE_DEVCAP,
            0x2 | 1 << 5 | 7 << 6 | 7 << 9 | 1 << 15 | DEVCAP_FLR,
        );
        // DevCtl: relaxed ordering, no snoop, MRRS 512; all but FLR writable.
        self.rw16(PCIE_DEVCTL, 1 << 4 | 1 << 11 | 2 << 12, 0x7fff);
        self.w1c16(PCIE_DEVSTA, 0x000f);
        let (speed, width) = l.link.speed_width();
        // LnkCap: speed, width, ASPM L0s+L1, exit latencies, ASPM optionality.
        self.ro32(
            PCIE_LNKCAP,
            speed as u32 | (width as u32) << 4 | 3 << 10 | 6 << 12 | 6 << 15 | 1 << 22,
        );
        self.rw16(PCIE_LNKCTL, 0, 0x01cb);
        // LnkSta: current speed/width, slot clock configuration.
        self.ro16(PCIE_LNKSTA, speed as u16 | (width as u16) << 4 | 1 << 12);
        // DevCap2: completion timeout ranges A-D + disable, LTR supported.
        self.ro32(PCIE_DEVCAP2, 0xf | 1 << 4 | 1 << 11);
        self.rw16(PCIE_DEVCTL2, 0, 0x041f);
        // LnkCap2: supported speeds vector up to the link generation.
        let speeds = ((1u32 << speed) - 1) << 1;
        self.ro32(PCIE_LNKCAP2, speeds);
        self.rw16(PCIE_LNKCTL2, speed as u16, 0x000f);

        if l.msix_vectors > 0 {
            self.data[MSIX_CAP] = 0x11;
            self.data[MSIX_CAP + 1] = 0;
            self.rw16(
                MSIX_CTRL,
                (l.msix_vectors - 1) as u16,
                MSIX_CTRL_ENABLE | MSIX_CTRL_FN_MASK,
            );
            self.ro32(MSIX_CAP + 4, l.msix_table); // BIR 0
            self.ro32(MSIX_CAP + 8, l.msix_pba); // BIR 0
        }

        // AER v2 (endpoint layout, 0x2c bytes).
        self.ext_hdr(AER_CAP, 0x0001, 2, LTR_CAP);
        let ue_bits = 0x03ff_f030; // bits 4,5,12..25
        self.w1c32(AER_CAP + 4, ue_bits);
        self.rw32(AER_CAP + 8, 0, ue_bits);
        self.rw32(AER_CAP + 0xc, 0x0046_2030, ue_bits);
        let ce_bits = 0x0000_f1c1;
        self.w1c32(AER_CAP + 0x10, ce_bits);
        self.rw32(AER_CAP + 0x14, 0x2000, ce_bits);
        for o in [4, 8, 0xc, 0x10, 0x14] {
            self.sticky32(AER_CAP + o);
        }

        // LTR.
        self.ext_hdr(LTR_CAP, 0x0018, 1, L1SS_CAP);
        self.rw32(LTR_CAP + 4, 0, 0x1fff_1fff);

        // L1 PM substates: PCI-PM L1.2/L1.1, ASPM L1.2/L1.1, L1SS supported,
        // common mode restore 40 us, T_power_on 50 us (scale 10 us, value 5).
        let after_l1ss = if l.vsec { VSEC_CAP } else { 0 };
        self.ext_hdr(L1SS_CAP, 0x001e, 1, after_l1ss);
        self.ro32(L1SS_CAP + 4, 0x1f | 0x28 << 8 | 1 << 16 | 5 << 19);
        self.rw32(L1SS_CAP + 8, 0, 0xe3ff_ff0f);
        self.rw32(L1SS_CAP + 0xc, 0, 0xfb);

        if !l.vsec {
            return;
        }
        // Synopsys DMA VSEC: ID 6, rev 0, length 0x18; both identities keep
        // the eDMA block at BAR0 offset 0.
        self.ext_hdr(VSEC_CAP, 0x000b, 1, 0);
        self.ro32(VSEC_CAP + 4, 0x018 << 20 | 0x6);
        self.ro32(VSEC_CAP + 8, 1); // map format 1 = eDMA unrolled, BAR 0
        self.ro32(
            VSEC_CAP + 0xc,
            l.channels as u32 | (l.channels as u32) << 16,
        );
        self.ro32(VSEC_CAP + 0x10, 0);
        self.ro32(VSEC_CAP + 0x14, 0);
    }

    /// Reads any number of bytes at any offset (out-of-range bytes read 0).
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.data.get(off + i).copied().unwrap_or(0);
        }
    }

    pub fn read8(&self, off: usize) -> u8 {
        self.data[off]
    }
    pub fn read16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.data[off], self.data[off + 1]])
    }
    pub fn read32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.data[off..off + 4].try_into().unwrap())
    }

    /// Applies a guest write byte by byte through the masks.
    pub fn write(&mut self, off: usize, bytes: &[u8]) -> WriteEffects {
        let mut fx = WriteEffects::default();
        let old_pm = self.data[PMCSR] & 3;
        for (i, &v) in bytes.iter().enumerate() {
            let a = off + i;
            if a >= CFG_SIZE {
                break;
            }
            if a == PCIE_DEVCTL + 1 && v & 0x80 != 0 {
                fx.flr = true;
            }
            let wm = self.wmask[a];
            let mut d = (self.data[a] & !wm) | (v & wm);
            d &= !(v & self.w1c[a]);
            self.data[a] = d;
        }
        // PMCSR: D2 is not supported; a write of 2 keeps the old state.
        if self.data[PMCSR] & 3 == 2 {
            self.data[PMCSR] = (self.data[PMCSR] & !3) | old_pm;
        }
        fx
    }

    /// Device-side update of a read-only 16-bit field (status bits).
    pub fn set_bits16(&mut self, off: usize, bits: u16, on: bool) {
        let v = self.read16(off);
        let v = if on { v | bits } else { v & !bits };
        self.ro16(off, v);
    }

    pub fn set32(&mut self, off: usize, v: u32) {
        self.ro32(off, v);
    }

    pub fn command(&self) -> u16 {
        self.read16(COMMAND)
    }

    pub fn bus_master(&self) -> bool {
        self.command() & CMD_BUS_MASTER != 0
    }

    /// PMCSR power state (0 = D0 .. 3 = D3hot).
    pub fn power_state(&self) -> u8 {
        self.data[PMCSR] & 3
    }

    /// Bus address BAR2 is programmed with (0 if unassigned).
    pub fn bar2_base(&self) -> u64 {
        (self.read32(BAR2) & !0xf) as u64
    }

    /// Power-on values again; `keep_sticky` keeps AER sticky registers (FLR,
    /// D3hot->D0 without NoSoftRst) while a full reset clears them.
    pub fn reset(&mut self, keep_sticky: bool) {
        for i in 0..CFG_SIZE {
            let keep = if keep_sticky { self.sticky[i] } else { 0 };
            self.data[i] = (self.data[i] & keep) | (self.init[i] & !keep);
        }
    }
}
