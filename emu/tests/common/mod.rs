//! Shared helpers: a device with fake guest RAM (a memfd, as QEMU's
//! memory-backend-memfd), eventfds standing in for QEMU's interrupt
//! eventfds, and register-level helpers that program the card like a driver.
#![allow(dead_code)]

use metis_emu::config::*;
use metis_emu::dma::memfd;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use metis_emu::firmware::{self, op};
use metis_emu::mailbox::*;
use metis_emu::{Device, Options};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::*;

pub const MSI_ADDR: u64 = 0xfee0_0000;
pub const MSI_MSG_DATA: u16 = 0x4020;
/// Guest RAM as seen by the card: IOVA base and size of the test memfd.
pub const IOVA: u64 = 0x1_0000_0000;
pub const GUEST_SIZE: u64 = 32 << 20;
/// Where tests put linked lists and data in device memory.
pub const LL_WR: u64 = 0x0800_0000;
pub const LL_RD: u64 = 0x0810_0000;
pub const DEV_DATA: u64 = 0x0400_0000;

pub struct Rig {
    pub dev: Device,
    pub ram: File,
    pub msi: Vec<File>,
}

pub fn small_opts() -> Options {
    Options {
        mem_size: 256 << 20,
        ..Options::default()
    }
}

pub fn eventfd() -> File {
    // SAFETY: plain syscall; the fd is owned by the File.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    unsafe { File::from_raw_fd(fd) }
}

/// Reads and resets an eventfd counter (0 if it never fired).
pub fn fired(f: &File) -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    match (&*f).read(&mut b) {
        Ok(8) => u64::from_le_bytes(b),
        _ => 0,
    }
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > Duration::from_secs(10) {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Rig {
    /// Device + guest RAM mapped read-write at IOVA + bus mastering on.
    pub fn new(opts: Options) -> Rig {
        let dev = Device::new(opts).unwrap();
        let ram = memfd(GUEST_SIZE).unwrap();
        dev.dma_map(
            true,
            true,
            0,
            IOVA,
            GUEST_SIZE,
            Some(ram.try_clone().unwrap()),
        )
        .unwrap();
        dev.cfg_write(COMMAND, 2, (CMD_MEM | CMD_BUS_MASTER) as u32);
        Rig {
            dev,
            ram,
            msi: Vec::new(),
        }
    }

    pub fn metis() -> Rig {
        Rig::new(small_opts())
    }

    /// Programs and enables MSI with `n` vectors (power of two) and hands
    /// the card one eventfd per vector, like QEMU does.
    pub fn enable_msi(&mut self, n: u32) {
        let d = &self.dev;
        d.cfg_write(MSI_ADDR_LO, 4, MSI_ADDR as u32);
        d.cfg_write(MSI_ADDR_HI, 4, (MSI_ADDR >> 32) as u32);
        d.cfg_write(MSI_DATA, 2, MSI_MSG_DATA as u32);
        let mme = n.trailing_zeros();
        let ctrl = d.cfg_read(MSI_CTRL, 2);
        d.cfg_write(MSI_CTRL, 2, (ctrl & !0x70) | mme << 4 | 1);
        self.msi = (0..n).map(|_| eventfd()).collect();
        let fds: Vec<File> = self.msi.iter().map(|f| f.try_clone().unwrap()).collect();
        d.set_irqs(
            VFIO_PCI_MSI_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            n,
            fds,
        )
        .unwrap();
    }

    pub fn guest_write(&self, iova: u64, data: &[u8]) {
        self.ram.write_all_at(data, iova - IOVA).unwrap();
    }

    pub fn guest_read(&self, iova: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.ram.read_exact_at(&mut v, iova - IOVA).unwrap();
        v
    }

    // ---- eDMA (BAR2 offset 0 on the Metis identity) ----

    pub fn edma_bar(&self) -> u32 {
        match self.dev.options().identity {
            metis_emu::Identity::Metis => VFIO_PCI_BAR2_REGION_INDEX,
            metis_emu::Identity::Synopsys => VFIO_PCI_BAR0_REGION_INDEX,
        }
    }

    pub fn er(&self, off: u32) -> u32 {
        self.dev.read32(self.edma_bar(), off as u64)
    }

    pub fn ew(&self, off: u32, v: u32) {
        self.dev.write32(self.edma_bar(), off as u64, v)
    }

    pub fn ch_reg(dir: Dir, ch: usize, reg: u32) -> u32 {
        CH_BASE + CH_STRIDE * ch as u32 + if dir == Dir::Rd { CH_RD_OFFSET } else { 0 } + reg
    }

    pub fn cr(&self, dir: Dir, ch: usize, reg: u32) -> u32 {
        self.er(Self::ch_reg(dir, ch, reg))
    }

    pub fn cw(&self, dir: Dir, ch: usize, reg: u32, v: u32) {
        self.ew(Self::ch_reg(dir, ch, reg), v)
    }

    pub fn cs(&self, dir: Dir, ch: usize) -> u32 {
        (self.cr(dir, ch, CH_CONTROL1) & CS_MASK) >> CS_SHIFT
    }

    pub fn int_status(&self, dir: Dir) -> u32 {
        self.er(if dir == Dir::Wr {
            WR_INT_STATUS
        } else {
            RD_INT_STATUS
        })
    }

    /// dw-edma style channel setup for REMOTE (IMWR) interrupts: engine on,
    /// local interrupts masked, IMWR address/data from the MSI message with
    /// the channel's vector, linked_list_err_en, then CCS|LLE and LLP.
    pub fn setup_channel(&self, dir: Dir, ch: usize, vector: u32, llp: u64) {
        let (en, mask, done, abort, data, llerr) = match dir {
            Dir::Wr => (
                WR_ENGINE_EN,
                WR_INT_MASK,
                WR_DONE_IMWR,
                WR_ABORT_IMWR,
                WR_IMWR_DATA,
                WR_LL_ERR_EN,
            ),
            Dir::Rd => (
                RD_ENGINE_EN,
                RD_INT_MASK,
                RD_DONE_IMWR,
                RD_ABORT_IMWR,
                RD_IMWR_DATA,
                RD_LL_ERR_EN,
            ),
        };
        self.ew(en, 1);
        self.ew(mask, self.er(mask) | done_bit(ch) | abort_bit(ch));
        self.ew(done, MSI_ADDR as u32);
        self.ew(done + 4, (MSI_ADDR >> 32) as u32);
        self.ew(abort, MSI_ADDR as u32);
        self.ew(abort + 4, (MSI_ADDR >> 32) as u32);
        let reg = data + 4 * (ch as u32 / 2);
        let shift = 16 * (ch as u32 % 2);
        let v = (self.er(reg) & !(0xffff << shift)) | ((MSI_MSG_DATA as u32 | vector) << shift);
        self.ew(reg, v);
        self.ew(llerr, self.er(llerr) | 1 << ch);
        self.cw(dir, ch, CH_CONTROL1, CCS | LLE);
        self.cw(dir, ch, LLP_LO, llp as u32);
        self.cw(dir, ch, LLP_HI, (llp >> 32) as u32);
    }

    pub fn doorbell(&self, dir: Dir, ch: usize) {
        self.ew(
            if dir == Dir::Wr {
                WR_DOORBELL
            } else {
                RD_DOORBELL
            },
            ch as u32,
        );
    }

    pub fn wait_stopped(&self, dir: Dir, ch: usize) -> u32 {
        let mut cs = 0;
        wait_until("channel to leave running", || {
            cs = self.cs(dir, ch);
            cs == CS_STOPPED || cs == CS_HALTED
        });
        cs
    }

    // ---- mailbox ----

    pub fn b0r(&self, off: u32) -> u32 {
        self.dev.read32(VFIO_PCI_BAR0_REGION_INDEX, off as u64)
    }

    pub fn b0w(&self, off: u32, v: u32) {
        self.dev.write32(VFIO_PCI_BAR0_REGION_INDEX, off as u64, v)
    }

    /// Runs one mailbox command; returns (status, first 256 bytes of CMD_MSG).
    pub fn cmd(&self, opcode: u32, args: &[u8]) -> (u32, Vec<u8>) {
        let seq = self.b0r(R_CMD_SEQ);
        let mut padded = args.to_vec();
        padded.resize(args.len().div_ceil(4) * 4, 0);
        for (i, w) in padded.chunks(4).enumerate() {
            self.b0w(
                R_CMD_MSG + 4 * i as u32,
                u32::from_le_bytes(w.try_into().unwrap()),
            );
        }
        self.b0w(R_CMD_SIZE, args.len() as u32);
        self.b0w(R_CMD_OPCODE, opcode);
        self.b0w(R_DOORBELL, 1);
        wait_until("command completion", || self.b0r(R_CMD_SEQ) != seq);
        let st = self.b0r(R_CMD_STATUS);
        let msg: Vec<u8> = (0..64)
            .flat_map(|i| self.b0r(R_CMD_MSG + 4 * i).to_le_bytes())
            .collect();
        (st, msg)
    }

    /// Places `image` at FW_LOAD_ADDR (backdoor) and boots it.
    pub fn boot(&self, image: &[u8]) -> u32 {
        assert!(self.dev.mem_write(firmware::FW_LOAD_ADDR, image));
        let (st, _) = self.cmd(op::BOOT, &(image.len() as u32).to_le_bytes());
        st
    }

    pub fn boot_default(&self) {
        let img = metis_emu::fwimage::build(&Default::default());
        assert_eq!(self.boot(&img), firmware::status::OK);
        assert_eq!(self.b0r(R_STATE), firmware::FwState::Ready as u32);
    }
}

pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed as u32) as u8
                ^ (i >> 8) as u8
        })
        .collect()
}
