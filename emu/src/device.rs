//! The card: shared state, region access dispatch (config, BAR0 = eDMA
//! registers, BAR2 = L2 window, ROM), resets, power states and the card's
//! 10 ms tick. The vfio-user transport (`server.rs`) and the tests both
//! drive this API; nothing here knows about sockets.

use crate::boot::{self, Fw};
use crate::config::{self, ConfigSpace, Layout};
use crate::devmem::{self, DevMem, L2_BASE};
use crate::dma::{GuestMem, Perm};
use crate::edma::regs::Cs;
use crate::edma::{self, engine, Dir, Edma};
use crate::faults::Fault;
use crate::firmware::{self, FwJob};
use crate::iface;
use crate::inject::Inject;
use crate::irq::{self, IrqState};
use crate::link::Link;
use crate::msi::{self, Msi, Msix};
use crate::obs::Obs;
use crate::options::{Identity, Options};
use crate::rom;
use crate::vmsi::{self, Vmsi};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use vfio_bindings::bindings::vfio::*;

/// End of the eDMA register block inside BAR0: 4+4 channels on Metis; the
/// Synopsys identity's 64 KiB BAR keeps room for 8+8.
pub fn edma_block_end(identity: Identity) -> u64 {
    match identity {
        Identity::Metis => edma::regs::BLOCK_END_4 as u64,
        Identity::Synopsys => 0x2000,
    }
}

/// Period of the card's housekeeping (heartbeat, INTx re-evaluation).
pub const TICK: Duration = Duration::from_millis(10);

/// Everything mutable that MMIO, workers and firmware share, under one lock.
pub struct State {
    pub cfg: ConfigSpace,
    pub irq: IrqState,
    pub edma: Edma,
    pub fw: Fw,
    pub vmsi: Vmsi,
    pub inj: Inject,
}

pub struct Shared {
    pub opts: Options,
    pub st: Mutex<State>,
    pub mem: DevMem,
    pub guest: GuestMem,
    /// Held for reading while a chunk of data moves into host or device
    /// memory; a reset takes it for writing to wait out in-flight chunks.
    pub gate: RwLock<()>,
    pub obs: Obs,
    pub link: Link,
    /// Per channel (dir*8+ch): bumped to cancel the running worker.
    pub chan_epoch: Vec<AtomicU64>,
    pub fw_epoch: AtomicU64,
    /// Bumped on every reset (delayed interrupts check it).
    pub reset_gen: AtomicU64,
    /// Mirror of Command.BusMaster for the lock-free DMA path.
    pub bme: AtomicBool,
    pub rom: Vec<u8>,
    pub fw_tx: Mutex<Option<Sender<FwJob>>>,
    /// A walker waiting to fetch an element at the host's first write into
    /// it (`inject torn-fetch`); `fetch_watch_on` keeps host writes cheap
    /// while nobody waits.
    pub fetch_watch: Mutex<Option<engine::FetchWatch>>,
    pub fetch_watch_on: AtomicBool,
    /// The channels' walker threads.
    pub workers: crate::edma::worker::Workers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    /// VFIO_USER_DEVICE_RESET (system reset, S3 resume): everything.
    Vfio,
    /// Function Level Reset through PCIe DevCtl.
    Flr,
    /// `inject surprise-reset`: the card loses power internally; the link
    /// (and so config space) stays up, as seen in field report R2.
    Surprise,
    /// D3hot->D0 with NoSoftRst- (`--d3-loses-state`).
    D3,
}

impl ResetKind {
    pub fn name(self) -> &'static str {
        match self {
            ResetKind::Vfio => "vfio",
            ResetKind::Flr => "flr",
            ResetKind::Surprise => "surprise",
            ResetKind::D3 => "d3",
        }
    }
}

/// Resets the card: cancels DMA (nothing reaches memory after this returns),
/// drops engine programming, firmware state and device memory; the
/// bootloader then writes a fresh interface structure.
pub fn reset_card(sh: &Arc<Shared>, st: &mut State, kind: ResetKind) {
    sh.reset_gen.fetch_add(1, Ordering::SeqCst);
    engine::cancel_all(sh);
    sh.fw_epoch.fetch_add(1, Ordering::SeqCst);
    // Wait for any chunk copy in progress (workers hold the gate for reading
    // and never take the state lock while holding it).
    drop(sh.gate.write().unwrap());
    sh.mem.zero_all();
    st.edma = Edma::new(sh.opts.channels);
    st.fw = Fw::new();
    st.vmsi = Vmsi::default();
    st.irq.reset();
    // Pending MSI messages belonged to the card's state before the reset.
    msi::set_pending(&mut st.cfg, 0);
    match kind {
        ResetKind::Vfio => st.cfg.reset(false),
        ResetKind::Flr | ResetKind::D3 => st.cfg.reset(true),
        ResetKind::Surprise => {}
    }
    sh.bme.store(st.cfg.bus_master(), Ordering::SeqCst);
    sh.obs
        .with(|c| *c.resets.entry(kind.name()).or_insert(0) += 1);
    sh.obs
        .event("reset", serde_json::json!({"reset": kind.name()}));
    if sh.opts.identity == Identity::Metis {
        boot::bootloader_start(sh, st, "reset");
    }
    irq::update_intx(sh, st);
}

/// The card's 10 ms housekeeping: the running firmware's heartbeat store and
/// the INTx level, which depends on virtual-MSI words only the host clears.
fn tick(sh: &Arc<Shared>) {
    let mut st = sh.st.lock().unwrap();
    if sh.opts.identity == Identity::Metis {
        boot::refresh_heartbeat(sh, &st);
    }
    vmsi::recheck(sh, &mut st);
    irq::update_intx(sh, &mut st);
}

fn spawn_ticker(sh: Weak<Shared>) {
    std::thread::Builder::new()
        .name("tick".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            let Some(sh) = sh.upgrade() else { break };
            tick(&sh);
        })
        .expect("spawn tick thread");
}

/// The emulated card.
pub struct Device {
    sh: Arc<Shared>,
}

impl Device {
    pub fn new(opts: Options) -> io::Result<Device> {
        opts.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut layout = Layout::new(
            opts.identity,
            opts.msix,
            opts.channels,
            opts.link,
            opts.d3_loses_state,
            opts.vsec,
        );
        layout.bar2_size = opts.bar2_size;
        let (vid, did) = layout.ids();
        let cfg = ConfigSpace::new(layout);
        let st = State {
            cfg,
            irq: IrqState::new(opts.msix),
            edma: Edma::new(opts.channels),
            fw: Fw::new(),
            vmsi: Vmsi::default(),
            inj: Inject::default(),
        };
        let sh = Arc::new(Shared {
            mem: DevMem::new(&devmem::map(opts.identity, opts.mem_size))?,
            guest: GuestMem::new(),
            gate: RwLock::new(()),
            obs: Obs::new(opts.log.as_deref(), opts.stderr_faults)?,
            link: Link::new(opts.link),
            chan_epoch: (0..16).map(|_| AtomicU64::new(0)).collect(),
            fw_epoch: AtomicU64::new(0),
            reset_gen: AtomicU64::new(0),
            bme: AtomicBool::new(false),
            rom: rom::build(layout.rom_size as usize, vid, did, 0x12_0000),
            fw_tx: Mutex::new(None),
            fetch_watch: Mutex::new(None),
            fetch_watch_on: AtomicBool::new(false),
            workers: crate::edma::worker::Workers::new(),
            st: Mutex::new(st),
            opts,
        });
        let tx = firmware::spawn_worker(Arc::downgrade(&sh));
        *sh.fw_tx.lock().unwrap() = Some(tx);
        sh.obs.event(
            "power_on",
            serde_json::json!({
                "identity": format!("{:?}", sh.opts.identity),
                "mem_size": sh.opts.mem_size,
                "channels": sh.opts.channels,
                "link": sh.opts.link.to_string(),
                "msix": sh.opts.msix,
                "if_layout": sh.opts.if_layout.name(),
                "boot_protocol": sh.opts.boot_protocol,
                "vsec": sh.opts.vsec,
            }),
        );
        if sh.opts.identity == Identity::Metis {
            let mut st = sh.st.lock().unwrap();
            boot::bootloader_start(&sh, &mut st, "power_on");
        }
        spawn_ticker(Arc::downgrade(&sh));
        Ok(Device { sh })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.sh
    }

    pub fn options(&self) -> &Options {
        &self.sh.opts
    }

    /// Size of each vfio region (index as in VFIO_PCI_*_REGION_INDEX).
    pub fn region_size(&self, region: u32) -> u64 {
        let l = self.sh.st.lock().unwrap().cfg.layout;
        match region {
            VFIO_PCI_BAR0_REGION_INDEX => l.bar0_size,
            VFIO_PCI_BAR2_REGION_INDEX => l.bar2_size,
            VFIO_PCI_ROM_REGION_INDEX => l.rom_size,
            VFIO_PCI_CONFIG_REGION_INDEX => config::CFG_SIZE as u64,
            _ => 0,
        }
    }

    // ---- region access ------------------------------------------------

    pub fn region_read(&self, region: u32, off: u64, data: &mut [u8]) {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let st = self.sh.st.lock().unwrap();
                st.cfg.read(off as usize, data);
                self.sh.obs.with(|c| c.cfg_reads += 1);
            }
            VFIO_PCI_BAR0_REGION_INDEX | VFIO_PCI_BAR2_REGION_INDEX => {
                self.bar_access(region, off, Access::Read(data))
            }
            VFIO_PCI_ROM_REGION_INDEX => {
                for (i, b) in data.iter_mut().enumerate() {
                    *b = self.sh.rom.get(off as usize + i).copied().unwrap_or(0);
                }
            }
            _ => data.fill(0xff),
        }
    }

    pub fn region_write(&self, region: u32, off: u64, data: &[u8]) {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self.config_write(off as usize, data),
            VFIO_PCI_BAR0_REGION_INDEX | VFIO_PCI_BAR2_REGION_INDEX => {
                self.bar_access(region, off, Access::Write(data))
            }
            _ => {}
        }
    }

    fn config_write(&self, off: usize, data: &[u8]) {
        let sh = &self.sh;
        let mut st = sh.st.lock().unwrap();
        sh.obs.with(|c| c.cfg_writes += 1);
        let msi0 = Msi::read(&st.cfg);
        let msix0 = Msix::read(&st.cfg);
        let pm0 = st.cfg.power_state();
        let cmd0 = st.cfg.command();
        let fx = st.cfg.write(off, data);
        sh.bme.store(st.cfg.bus_master(), Ordering::SeqCst);
        let msi1 = Msi::read(&st.cfg);
        let msix1 = Msix::read(&st.cfg);
        let pm1 = st.cfg.power_state();
        let cmd1 = st.cfg.command();
        if msi0.enabled != msi1.enabled || msi0.mme != msi1.mme {
            sh.obs.event(
                "msi",
                serde_json::json!({"enabled": msi1.enabled, "vectors": msi1.vectors(),
                    "addr": format!("{:#x}", msi1.addr), "data": format!("{:#x}", msi1.data)}),
            );
            if !msi1.enabled {
                crate::msi::set_pending(&mut st.cfg, 0);
            }
        }
        if msi1.mask != msi0.mask || (msi1.enabled && !msi0.enabled) {
            irq::msi_mask_changed(sh, &mut st);
        }
        if msix0.enabled != msix1.enabled || msix0.fn_mask != msix1.fn_mask {
            sh.obs.event(
                "msix",
                serde_json::json!({"enabled": msix1.enabled, "fn_mask": msix1.fn_mask}),
            );
            irq::msix_mask_changed(sh, &mut st);
        }
        if msi0.enabled != msi1.enabled
            || msix0.enabled != msix1.enabled
            || (cmd0 ^ cmd1) & config::CMD_INTX_DISABLE != 0
        {
            irq::update_intx(sh, &mut st);
        }
        if pm0 != pm1 {
            sh.obs.event(
                "power",
                serde_json::json!({"from": format!("D{pm0}"), "to": format!("D{pm1}")}),
            );
            if pm0 == 3 && pm1 == 0 && sh.opts.d3_loses_state {
                reset_card(sh, &mut st, ResetKind::D3);
            }
        }
        if fx.flr {
            reset_card(sh, &mut st, ResetKind::Flr);
        }
    }

    fn bar_access(&self, region: u32, off: u64, mut acc: Access) {
        let sh = &self.sh;
        let mut st = sh.st.lock().unwrap();
        let bar = if region == VFIO_PCI_BAR0_REGION_INDEX {
            0
        } else {
            2
        };
        if st.cfg.power_state() != 0 {
            sh.obs.fault(
                Fault::MmioLowPower,
                format!(
                    "BAR{bar} {} at {off:#x} while in D{}",
                    acc.verb(),
                    st.cfg.power_state()
                ),
            );
            acc.fail();
            return;
        }
        if bar == 0 {
            let space = if off < edma_block_end(sh.opts.identity) {
                RegSpace::Edma
            } else if msi::msix_loc(&st, off as u32).is_some() {
                RegSpace::Msix
            } else {
                RegSpace::Reserved
            };
            return self.reg_access(&mut st, space, off, acc);
        }
        drop(st);
        match sh.opts.identity {
            Identity::Metis => self.l2_access(off, acc),
            Identity::Synopsys => {
                if self.window_check(off, off, &mut acc) {
                    self.sh
                        .obs
                        .mmio(acc.is_write(), "bar2.window", "bar2", acc.len());
                    self.mem_access(off, acc);
                }
            }
        }
    }

    /// Register space: only naturally aligned 32-bit accesses are legal.
    fn reg_access(&self, st: &mut State, space: RegSpace, off: u64, mut acc: Access) {
        let sh = &self.sh;
        let len = acc.len();
        let o = off as u32;
        let name = match space {
            RegSpace::Edma => edma::regs::name(o & !3),
            RegSpace::Msix => "msix".to_string(),
            RegSpace::Reserved => "bar0.reserved".to_string(),
        };
        if len != 4 || !off.is_multiple_of(4) {
            let (f, what) = if len != 4 {
                (Fault::MmioWidth, format!("{len}-byte"))
            } else {
                (Fault::MmioUnaligned, "unaligned 4-byte".to_string())
            };
            sh.obs.fault(
                f,
                format!(
                    "{what} {} at BAR0 {off:#x} ({name}): registers take aligned 32-bit accesses only",
                    acc.verb()
                ),
            );
            acc.fail();
            return;
        }
        let class = match space {
            RegSpace::Edma => "edma",
            RegSpace::Msix | RegSpace::Reserved => "bar0.other",
        };
        sh.obs.mmio(acc.is_write(), &name, class, len);
        match acc {
            Access::Read(d) => {
                let v = match space {
                    RegSpace::Edma => st.edma.read(o),
                    RegSpace::Msix => msi::msix_loc(st, o)
                        .map(|r| msi::msix_read(st, r))
                        .unwrap_or(0),
                    RegSpace::Reserved => 0,
                };
                d.copy_from_slice(&v.to_le_bytes());
            }
            Access::Write(d) => {
                let v = u32::from_le_bytes(d.try_into().unwrap());
                match space {
                    RegSpace::Edma => engine::reg_write(sh, st, o, v),
                    RegSpace::Msix => {
                        if let Some(r) = msi::msix_loc(st, o) {
                            msi::msix_write(sh, st, r, v)
                        }
                    }
                    RegSpace::Reserved => {}
                }
            }
        }
    }

    /// BAR2 window rules: 1/2/4/8-byte naturally aligned, inside the BAR and
    /// device memory. A failed check faults and fails the access.
    fn window_check(&self, dev: u64, off: u64, acc: &mut Access) -> bool {
        let sh = &self.sh;
        let len = acc.len() as u64;
        if !matches!(len, 1 | 2 | 4 | 8) || !off.is_multiple_of(len) {
            sh.obs.fault(
                Fault::WindowAccess,
                format!(
                    "{len}-byte {} at BAR2 {off:#x}: window takes 1/2/4/8-byte aligned accesses",
                    acc.verb()
                ),
            );
            acc.fail();
            return false;
        }
        if off + len > sh.opts.bar2_size || !sh.mem.contains(dev, len) {
            sh.obs.fault(
                Fault::WindowRange,
                format!("BAR2 {off:#x} -> device address {dev:#x} is past the window"),
            );
            acc.fail();
            return false;
        }
        true
    }

    fn mem_access(&self, dev: u64, acc: Access) {
        match acc {
            Access::Read(d) => {
                self.sh.mem.read(dev, d);
            }
            Access::Write(d) => {
                self.sh.mem.write(dev, d);
                engine::host_wrote(&self.sh, dev, d.len() as u64);
            }
        }
    }

    /// Metis BAR2: L2 memory from offset 0, where the card notices two
    /// things: the host storing a command's opcode, and reads of the boot
    /// block's HEARTBEAT (refreshed first, as a firmware storing it every
    /// 10 ms would have).
    fn l2_access(&self, off: u64, mut acc: Access) {
        let sh = &self.sh;
        if !self.window_check(L2_BASE + off, off, &mut acc) {
            return;
        }
        sh.obs
            .mmio(acc.is_write(), iface::area_name(off), "bar2", acc.len());
        let end = off + acc.len() as u64;
        let covers = |a: u64, n: u64| off <= a && a + n <= end;
        let overlaps = |a: u64, n: u64| off < a + n && a < end;
        match acc {
            Access::Read(d) => {
                if overlaps(boot::off::HEARTBEAT, 4) {
                    let st = sh.st.lock().unwrap();
                    boot::refresh_heartbeat(sh, &st);
                }
                sh.mem.read(L2_BASE + off, d);
            }
            Access::Write(d) => {
                sh.mem.write(L2_BASE + off, d);
                engine::host_wrote(sh, L2_BASE + off, d.len() as u64);
                if covers(iface::CMD_OPCODE, 4) {
                    let i = (iface::CMD_OPCODE - off) as usize;
                    let opcode = u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
                    let mut st = sh.st.lock().unwrap();
                    boot::slot_written(sh, &mut st, opcode);
                }
            }
        }
    }

    // ---- DMA mappings, IRQs, reset (vfio-user messages) ----------------

    pub fn dma_map(
        &self,
        read: bool,
        write: bool,
        fd_offset: u64,
        iova: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let perm = Perm { read, write };
        let r = self.sh.guest.map(iova, size, fd_offset, perm, fd.as_ref());
        self.sh.obs.with(|c| {
            c.dma_maps += 1;
            c.dma_map_bytes += size;
        });
        self.sh.obs.event(
            "dma_map",
            serde_json::json!({"iova": format!("{iova:#x}"), "size": format!("{size:#x}"),
                "perm": perm.as_str(), "fd": fd.is_some(), "ok": r.is_ok()}),
        );
        r
    }

    pub fn dma_unmap(&self, iova: u64, size: u64, all: bool) {
        let n = if all {
            self.sh.guest.unmap_all()
        } else {
            self.sh.guest.unmap(iova, size)
        };
        self.sh.obs.with(|c| {
            c.dma_unmaps += 1;
            c.dma_unmap_bytes += size;
        });
        self.sh.obs.event(
            "dma_unmap",
            serde_json::json!({"iova": format!("{iova:#x}"), "size": format!("{size:#x}"), "all": all, "removed": n}),
        );
    }

    pub fn set_irqs(
        &self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        let mut st = self.sh.st.lock().unwrap();
        irq::set_irqs(&self.sh, &mut st, index, flags, start, count, fds)
    }

    /// VFIO_USER_DEVICE_RESET.
    pub fn vfio_reset(&self) {
        let mut st = self.sh.st.lock().unwrap();
        reset_card(&self.sh, &mut st, ResetKind::Vfio);
    }

    /// `inject surprise-reset`.
    pub fn surprise_reset(&self) {
        let mut st = self.sh.st.lock().unwrap();
        reset_card(&self.sh, &mut st, ResetKind::Surprise);
    }

    // ---- convenience API for tests and the control socket ---------------

    pub fn cfg_read(&self, off: usize, len: usize) -> u32 {
        let mut b = [0u8; 4];
        self.region_read(VFIO_PCI_CONFIG_REGION_INDEX, off as u64, &mut b[..len]);
        u32::from_le_bytes(b)
    }

    pub fn cfg_write(&self, off: usize, len: usize, v: u32) {
        self.region_write(
            VFIO_PCI_CONFIG_REGION_INDEX,
            off as u64,
            &v.to_le_bytes()[..len],
        );
    }

    /// MMIO read of `len` bytes (1..=8) from BAR `bar` (0 or 2).
    pub fn mmio_read(&self, bar: u32, off: u64, len: usize) -> u64 {
        let mut b = [0u8; 8];
        self.region_read(bar, off, &mut b[..len]);
        u64::from_le_bytes(b)
    }

    pub fn mmio_write(&self, bar: u32, off: u64, len: usize, v: u64) {
        self.region_write(bar, off, &v.to_le_bytes()[..len]);
    }

    pub fn read32(&self, bar: u32, off: u64) -> u32 {
        self.mmio_read(bar, off, 4) as u32
    }

    pub fn write32(&self, bar: u32, off: u64, v: u32) {
        self.mmio_write(bar, off, 4, v as u64)
    }

    /// Backdoor into device memory (not a bus access).
    pub fn mem_write(&self, addr: u64, data: &[u8]) -> bool {
        self.sh.mem.write(addr, data)
    }

    pub fn mem_read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.sh.mem.read(addr, &mut v).then_some(v)
    }

    pub fn fault_count(&self, f: Fault) -> u64 {
        self.sh.obs.fault_count(f)
    }

    pub fn total_faults(&self) -> u64 {
        self.sh.obs.total_faults()
    }

    pub fn summary_line(&self) -> String {
        self.sh.obs.summary_line()
    }

    /// Flushes the event log file.
    pub fn flush_log(&self) {
        self.sh.obs.flush()
    }

    /// Device state summary for `stats`.
    pub fn state_json(&self) -> serde_json::Value {
        let st = self.sh.st.lock().unwrap();
        let msi = Msi::read(&st.cfg);
        let msix = Msix::read(&st.cfg);
        let reg = vmsi::Registration::read(&self.sh);
        let half = |d: Dir| {
            let r = st.edma.dir(d);
            let chans: Vec<serde_json::Value> = r
                .ch
                .iter()
                .map(|c| {
                    // "ctrl1" has always left CS to "cs".
                    serde_json::json!({"cs": c.ctrl1.cs() as u32, "llp": format!("{:#x}", c.llp),
                        "ctrl1": format!("{:#x}", u32::from(c.ctrl1.with_cs(Cs::Idle))), "hung": c.hung,
                        "pending_doorbell": c.pending_doorbell, "reprogrammed": c.prog})
                })
                .collect();
            serde_json::json!({"engine_en": u32::from(r.engine_en),
                "int_status": format!("{:#x}", u32::from(r.int_status)),
                "int_mask": format!("{:#x}", u32::from(r.int_mask)), "channels": chans})
        };
        serde_json::json!({
            "fw": {
                "state": st.fw.state.name(),
                "fail_reason": st.fw.fail_reason,
                "fw_version": format!("{:#x}", st.fw.fw_version),
                "if_version": format!("{:#x}", st.fw.fw_if_version),
                "heartbeat": st.fw.heartbeat(),
                "answered": st.fw.answered,
                "busy": st.fw.busy,
                "hung": st.fw.hung,
                "boot_protocol": self.sh.opts.boot_protocol,
                "if_layout": self.sh.opts.if_layout.name(),
            },
            "vmsi": {"ctrl": reg.ctrl, "target": format!("{:#x}", reg.target), "size": reg.size,
                     "set": st.vmsi.set.keys().collect::<Vec<_>>(), "level": st.vmsi.level()},
            "power_state": format!("D{}", st.cfg.power_state()),
            "bus_master": st.cfg.bus_master(),
            "msi": {"enabled": msi.enabled, "vectors": msi.vectors(), "addr": format!("{:#x}", msi.addr),
                    "data": format!("{:#x}", msi.data), "mask": format!("{:#x}", msi.mask),
                    "pending": format!("{:#x}", msi.pending),
                    "eventfds": st.irq.msi_fds.iter().filter(|f| f.is_some()).count()},
            "msix": {"present": msix.present, "enabled": msix.enabled,
                     "eventfds": st.irq.msix_fds.iter().filter(|f| f.is_some()).count()},
            "intx": {"eventfd": st.irq.intx_fd.is_some(), "level": st.irq.intx_level, "masked": st.irq.intx_masked},
            "edma": {
                "wr": half(Dir::Wr),
                "rd": half(Dir::Rd),
            },
            "dma_mappings": self.sh.guest.count(),
            "armed": st.inj.armed_json(),
        })
    }
}

enum RegSpace {
    Edma,
    Msix,
    Reserved,
}

enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Access<'_> {
    fn len(&self) -> usize {
        match self {
            Access::Read(d) => d.len(),
            Access::Write(d) => d.len(),
        }
    }
    fn is_write(&self) -> bool {
        matches!(self, Access::Write(_))
    }
    fn verb(&self) -> &'static str {
        if self.is_write() {
            "write"
        } else {
            "read"
        }
    }
    /// A faulted access: reads return all-ones (as an unsupported request
    /// completes on PCIe), writes are dropped.
    fn fail(&mut self) {
        if let Access::Read(d) = self {
            d.fill(0xff);
        }
    }
}
