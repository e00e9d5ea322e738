//! Shared helpers: a device with fake guest RAM (a memfd, as QEMU's
//! memory-backend-memfd), eventfds standing in for QEMU's interrupt
//! eventfds, and register-level helpers that program the card like a driver.
#![allow(dead_code)]

use metis_emu::boot::{off, op, status, FwState, ANSWERED, FW_LOAD_ADDR};
use metis_emu::config::*;
use metis_emu::devmem::{DDR_BASE, L2_BASE};
use metis_emu::dma::memfd;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use metis_emu::iface::{
    self, CMD_MSG, CMD_OPCODE, CMD_SIZE, HOST_DRV_CTRL, HOST_DRV_TABLE_SIZE, HOST_DRV_TARGET,
};
use metis_emu::{Device, Options};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::*;

/// CH_CONTROL1 of a linked-list channel starting with cycle state 1.
pub const LL_CCS: u32 = ChControl1::new().with_ccs(true).with_lle(true).into_bits();

pub const MSI_ADDR: u64 = 0xfee0_0000;
pub const MSI_MSG_DATA: u16 = 0x4020;
/// Guest RAM as seen by the card: IOVA base and size of the test memfd.
pub const IOVA: u64 = 0x1_0000_0000;
pub const GUEST_SIZE: u64 = 32 << 20;
/// Where tests put linked lists (the published descriptor buffer in L2) and
/// data (DDR) in device memory.
pub const LL_WR: u64 = iface::DESC_BUF;
pub const LL_RD: u64 = iface::DESC_BUF + 0x1_0000;
pub const DEV_DATA: u64 = DDR_BASE + 0x0400_0000;
/// End of DDR with `small_opts`.
pub const DDR_END: u64 = DDR_BASE + (256 << 20);
/// Where tests keep the virtual-MSI table in guest RAM (1024 words).
pub const VMSI_TABLE: u64 = IOVA + 0x1f0_0000;

/// BAR2 offset of a device address in L2.
pub fn l2_off(dev: u64) -> u64 {
    dev - L2_BASE
}

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
    /// The card's logged events of `kind`.
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        let ev = metis_emu::control::handle(&self.dev, "events");
        ev["events"]
            .as_array()
            .map(|a| a.iter().filter(|e| e["kind"] == kind).cloned().collect())
            .unwrap_or_default()
    }

    /// Routes INTx to an eventfd (MSI stays off) and returns it.
    pub fn intx(&self) -> File {
        let fd = eventfd();
        self.dev
            .set_irqs(
                VFIO_PCI_INTX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                1,
                vec![fd.try_clone().unwrap()],
            )
            .unwrap();
        fd
    }

    /// What the VMM does once the guest acknowledged an INTx.
    pub fn unmask_intx(&self) {
        self.dev
            .set_irqs(
                VFIO_PCI_INTX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
                0,
                1,
                vec![],
            )
            .unwrap()
    }

    /// Whether the card asserts INTx (the status bit).
    pub fn intx_asserted(&self) -> bool {
        self.dev.cfg_read(STATUS, 2) & STATUS_INTX as u32 != 0
    }

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

    // ---- eDMA (BAR0 offset 0) ----

    pub fn er(&self, off: u32) -> u32 {
        self.dev.read32(VFIO_PCI_BAR0_REGION_INDEX, off as u64)
    }

    pub fn ew(&self, off: u32, v: u32) {
        self.dev.write32(VFIO_PCI_BAR0_REGION_INDEX, off as u64, v)
    }
    pub fn cr(&self, dir: Dir, ch: usize, reg: ChReg) -> u32 {
        self.er(reg.at(dir, ch))
    }

    pub fn cw(&self, dir: Dir, ch: usize, reg: ChReg, v: u32) {
        self.ew(reg.at(dir, ch), v)
    }

    pub fn ctrl1(&self, dir: Dir, ch: usize) -> ChControl1 {
        self.cr(dir, ch, CH_CONTROL1).into()
    }

    pub fn cs(&self, dir: Dir, ch: usize) -> Cs {
        self.ctrl1(dir, ch).cs()
    }

    pub fn int_status(&self, dir: Dir) -> u32 {
        self.er(INT_STATUS.at(dir))
    }

    /// dw-edma style channel setup for REMOTE (IMWR) interrupts: engine on,
    /// local interrupts masked, IMWR address/data from the MSI message with
    /// the channel's vector, linked_list_err_en, then CCS|LLE and LLP.
    pub fn setup_channel(&self, dir: Dir, ch: usize, vector: u32, llp: u64) {
        let (en, mask, done, abort) = (
            ENGINE_EN.at(dir),
            INT_MASK.at(dir),
            DONE_IMWR_LO.at(dir),
            ABORT_IMWR_LO.at(dir),
        );
        self.ew(en, 1);
        self.ew(mask, self.er(mask) | done_bit(ch) | abort_bit(ch));
        self.ew(done, MSI_ADDR as u32);
        self.ew(DONE_IMWR_HI.at(dir), (MSI_ADDR >> 32) as u32);
        self.ew(abort, MSI_ADDR as u32);
        self.ew(ABORT_IMWR_HI.at(dir), (MSI_ADDR >> 32) as u32);
        let reg = CH_IMWR_DATA(ch / 2).at(dir);
        let data = MSI_MSG_DATA | vector as u16;
        let w = ImwrData::from(self.er(reg));
        let w = if ch.is_multiple_of(2) {
            w.with_even(data)
        } else {
            w.with_odd(data)
        };
        self.ew(reg, w.into());
        let llerr = LlErrEn::from(self.er(LL_ERR_EN.at(dir)));
        self.ew(
            LL_ERR_EN.at(dir),
            llerr.with_ch(llerr.ch() | ch_bit(ch)).into(),
        );
        self.cw(dir, ch, CH_CONTROL1, LL_CCS);
        self.cw(dir, ch, CH_LLP_LO, llp as u32);
        self.cw(dir, ch, CH_LLP_HI, (llp >> 32) as u32);
    }

    pub fn doorbell(&self, dir: Dir, ch: usize) {
        self.ew(DOORBELL.at(dir), Doorbell::new().with_ch(ch as u8).into());
    }

    pub fn wait_stopped(&self, dir: Dir, ch: usize) -> Cs {
        let mut cs = Cs::Idle;
        wait_until("channel to leave running", || {
            cs = self.cs(dir, ch);
            cs == Cs::Stopped || cs == Cs::Halted
        });
        cs
    }

    // ---- BAR2: L2, interface structure, command slot ----

    pub fn b2r(&self, off: u64) -> u32 {
        self.dev.read32(VFIO_PCI_BAR2_REGION_INDEX, off)
    }

    pub fn b2w(&self, off: u64, v: u32) {
        self.dev.write32(VFIO_PCI_BAR2_REGION_INDEX, off, v)
    }

    /// `len` bytes of BAR2 from `off`, read as the driver does: aligned
    /// 32-bit loads.
    pub fn bar2_bytes(&self, off: u64, len: usize) -> Vec<u8> {
        let start = off & !3;
        let end = (off + len as u64).div_ceil(4) * 4;
        let words: Vec<u8> = (start..end)
            .step_by(4)
            .flat_map(|o| self.b2r(o).to_le_bytes())
            .collect();
        let skip = (off - start) as usize;
        words[skip..skip + len].to_vec()
    }

    pub fn state(&self) -> u32 {
        self.b2r(off::STATE)
    }

    /// Registers the virtual-MSI table like the driver: target low, target
    /// high, size, then ctrl = 1 last.
    pub fn register_vmsi_at(&self, table: u64) {
        self.b2w(HOST_DRV_TARGET, table as u32);
        self.b2w(HOST_DRV_TARGET + 4, (table >> 32) as u32);
        self.b2w(HOST_DRV_TABLE_SIZE, 4096);
        self.b2w(HOST_DRV_CTRL, 1);
    }

    pub fn register_vmsi(&self) {
        self.register_vmsi_at(VMSI_TABLE)
    }

    pub fn vmsi_word(&self, id: u32) -> u32 {
        u32::from_le_bytes(
            self.guest_read(VMSI_TABLE + 4 * id as u64, 4)
                .try_into()
                .unwrap(),
        )
    }

    pub fn clear_vmsi_word(&self, id: u32) {
        self.guest_write(VMSI_TABLE + 4 * id as u64, &[0; 4]);
    }

    /// Writes a command into the slot (msg, size, opcode last) without
    /// waiting for the answer.
    pub fn send(&self, opcode: u32, args: &[u8]) {
        let mut padded = args.to_vec();
        padded.resize(args.len().div_ceil(4) * 4, 0);
        for (i, w) in padded.chunks(4).enumerate() {
            self.b2w(
                CMD_MSG + 4 * i as u64,
                u32::from_le_bytes(w.try_into().unwrap()),
            );
        }
        self.b2w(CMD_SIZE, args.len() as u32);
        self.b2w(CMD_OPCODE, opcode);
    }

    /// Polls the opcode word until the card answers; returns the status.
    pub fn wait_answer(&self) -> u32 {
        let mut op = 0;
        wait_until("command answer", || {
            op = self.b2r(CMD_OPCODE);
            op & ANSWERED != 0
        });
        // The card stores the answer and then signals, both under its state
        // lock, while BAR2 reads do not take it: any locked access (config
        // space here) waits until the signal is out too.
        self.dev.cfg_read(0, 2);
        op & !ANSWERED
    }

    /// Runs one command; returns (status, the 256 bytes of msg).
    pub fn cmd(&self, opcode: u32, args: &[u8]) -> (u32, Vec<u8>) {
        self.send(opcode, args);
        let st = self.wait_answer();
        (st, self.bar2_bytes(CMD_MSG, 256))
    }

    /// Places `image` at the load address (backdoor) and boots it, registered
    /// with the bootloader first as the driver is (BOOT's answer is signalled).
    pub fn boot(&self, image: &[u8]) -> u32 {
        self.register_vmsi();
        assert!(self.dev.mem_write(FW_LOAD_ADDR, image));
        let (st, _) = self.cmd(op::BOOT, &(image.len() as u32).to_le_bytes());
        st
    }

    /// Boots the default image and registers the virtual-MSI table again, as
    /// the driver must after every boot.
    pub fn boot_default(&self) {
        let img = metis_emu::fw_image::build(&Default::default());
        assert_eq!(self.boot(&img), status::OK);
        assert_eq!(self.state(), FwState::Ready as u32);
        // BOOT's answer, signalled through the bootloader's registration: taken, as a
        // host's handler would.
        wait_until("boot signalled", || self.vmsi_word(12) == 1);
        self.clear_vmsi_word(12);
        for f in &self.msi {
            fired(f);
        }
        self.register_vmsi();
    }
}

pub fn args(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
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
