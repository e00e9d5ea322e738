//! Interrupt delivery: eventfds from SET_IRQS, MSI (with per-vector masking
//! and pending bits), MSI-X, level-triggered INTx with VFIO's automask
//! semantics, IMWR validation, and the drop/delay injections.

use crate::config::{CMD_INTX_DISABLE, STATUS, STATUS_INTX};
use crate::device::{Shared, State};
use crate::edma::Dir;
use crate::faults::Fault;
use crate::msi::{self, Msi, Msix};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vfio_bindings::bindings::vfio::*;

pub const MSI_VECTORS: usize = 32;

/// Vector of an eDMA channel in the known map: read ch n -> 4+n, write ch
/// n -> 8+n (channels past 3 have no slot and use 0).
pub fn edma_vector(dir: Dir, ch: usize) -> u32 {
    match (dir, ch) {
        (Dir::Rd, 0..=3) => 4 + ch as u32,
        (Dir::Wr, 0..=3) => 8 + ch as u32,
        _ => 0,
    }
}

pub struct IrqState {
    pub intx_fd: Option<File>,
    /// VFIO INTx is automasked after each trigger until the user unmasks.
    pub intx_masked: bool,
    /// Last computed INTx level (for edge accounting).
    pub intx_level: bool,
    intx_unmask_stop: Option<Arc<AtomicBool>>,
    pub msi_fds: Vec<Option<File>>,
    pub msix_fds: Vec<Option<File>>,
    /// MSI-X table as written through BAR0 (QEMU normally intercepts it).
    pub msix_table: Vec<[u32; 4]>,
    pub msix_table_written: bool,
    pub msix_pending: u64,
}

impl IrqState {
    pub fn new(msix: u32) -> IrqState {
        IrqState {
            intx_fd: None,
            intx_masked: false,
            intx_level: false,
            intx_unmask_stop: None,
            msi_fds: (0..MSI_VECTORS).map(|_| None).collect(),
            msix_fds: (0..msix).map(|_| None).collect(),
            // vector control: masked at reset
            msix_table: vec![[0, 0, 0, 1]; msix as usize],
            msix_table_written: false,
            msix_pending: 0,
        }
    }

    /// Device reset: the table and pending state go back to power-on values;
    /// eventfds stay (they belong to the VMM, not the card).
    pub fn reset(&mut self) {
        for e in self.msix_table.iter_mut() {
            *e = [0, 0, 0, 1];
        }
        self.msix_table_written = false;
        self.msix_pending = 0;
        self.intx_level = false;
    }
}

impl Drop for IrqState {
    fn drop(&mut self) {
        if let Some(s) = self.intx_unmask_stop.take() {
            s.store(true, Ordering::SeqCst);
        }
    }
}

fn signal(fd: &File) -> io::Result<()> {
    let mut f: &File = fd;
    f.write_all(&1u64.to_le_bytes())
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Msi(u32),
    Msix(u32),
}

impl Target {
    fn name(self) -> String {
        match self {
            Target::Msi(v) => format!("msi.{v}"),
            Target::Msix(v) => format!("msix.{v}"),
        }
    }
}

/// Sends a message interrupt, applying drop/delay injections first.
fn emit(sh: &Arc<Shared>, st: &mut State, t: Target, source: &str) {
    if st.inj.drop_irq > 0 {
        st.inj.drop_irq -= 1;
        sh.obs.irq_lost(&t.name(), source, "injected drop-irq");
        return;
    }
    if st.inj.delay_irq > 0 {
        st.inj.delay_irq -= 1;
        let ms = st.inj.delay_ms;
        let sh2 = sh.clone();
        let gen = sh.reset_gen.load(Ordering::SeqCst);
        let source = source.to_string();
        sh.obs.event(
            "irq_delayed",
            serde_json::json!({"target": t.name(), "source": source, "ms": ms}),
        );
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            let mut st = sh2.st.lock().unwrap();
            if sh2.reset_gen.load(Ordering::SeqCst) == gen {
                emit_now(&sh2, &mut st, t, &source);
            } else {
                sh2.obs
                    .irq_lost(&t.name(), &source, "card reset while delayed");
            }
        });
        return;
    }
    emit_now(sh, st, t, source);
}

fn emit_now(sh: &Arc<Shared>, st: &mut State, t: Target, source: &str) {
    if !st.cfg.bus_master() {
        sh.obs.fault(
            Fault::IrqNoBusMaster,
            format!("{} from {source} with Bus Master Enable clear", t.name()),
        );
        sh.obs.irq_lost(&t.name(), source, "bus master disabled");
        return;
    }
    match t {
        Target::Msi(v) => {
            let m = Msi::read(&st.cfg);
            if !m.enabled {
                sh.obs.irq_lost(&t.name(), source, "MSI disabled");
                return;
            }
            if m.mask & (1 << v) != 0 {
                msi::set_pending(&mut st.cfg, m.pending | 1 << v);
                sh.obs.with(|c| c.irqs_pended += 1);
                sh.obs.event(
                    "irq_pending",
                    serde_json::json!({"target": t.name(), "source": source}),
                );
                return;
            }
            send_fd(
                sh,
                st.irq.msi_fds.get(v as usize).and_then(|f| f.as_ref()),
                t,
                source,
            );
        }
        Target::Msix(v) => {
            let x = Msix::read(&st.cfg);
            if !x.enabled {
                sh.obs.irq_lost(&t.name(), source, "MSI-X disabled");
                return;
            }
            let vec_masked = st.irq.msix_table_written
                && st
                    .irq
                    .msix_table
                    .get(v as usize)
                    .is_some_and(|e| e[3] & 1 != 0);
            if x.fn_mask || vec_masked {
                st.irq.msix_pending |= 1 << v;
                sh.obs.with(|c| c.irqs_pended += 1);
                sh.obs.event(
                    "irq_pending",
                    serde_json::json!({"target": t.name(), "source": source}),
                );
                return;
            }
            send_fd(
                sh,
                st.irq.msix_fds.get(v as usize).and_then(|f| f.as_ref()),
                t,
                source,
            );
        }
    }
}

fn send_fd(sh: &Shared, fd: Option<&File>, t: Target, source: &str) {
    match fd {
        Some(fd) => match signal(fd) {
            Ok(()) => sh.obs.irq_sent(&t.name(), source),
            Err(e) => sh
                .obs
                .irq_lost(&t.name(), source, &format!("eventfd write: {e}")),
        },
        None => {
            sh.obs.fault(
                Fault::IrqNoEventfd,
                format!("{} from {source}: no eventfd from SET_IRQS", t.name()),
            );
            sh.obs.irq_lost(&t.name(), source, "no eventfd");
        }
    }
}

/// The MSI-X vector a source with known-map vector `v` uses: `v` if the host
/// wired an interrupt to it, else vector 0 (a driver that allocates fewer
/// vectors than the map has shares vector 0 among all sources).
fn msix_vector(st: &State, v: u32) -> u32 {
    let wired = st.irq.msix_fds.get(v as usize).is_some_and(|f| f.is_some());
    if wired {
        v
    } else {
        0
    }
}

/// Interrupt raised by the card itself through its MSI/MSI-X capability
/// (virtual-MSI sources, storms). With neither enabled it is the INTx
/// level logic's job, so callers also call `update_intx`.
pub fn raise_internal(sh: &Arc<Shared>, st: &mut State, vector: u32, source: &str) {
    let x = Msix::read(&st.cfg);
    if x.enabled {
        let v = msix_vector(st, vector);
        emit(sh, st, Target::Msix(v), source);
        return;
    }
    let m = Msi::read(&st.cfg);
    if m.enabled {
        let v = if vector < m.vectors() { vector } else { 0 };
        emit(sh, st, Target::Msi(v), source);
    }
}

/// An eDMA IMWR: a posted memory write of `data` to `addr`. Delivered only if
/// it is exactly the MSI message the host programmed (vector in low bits).
/// Returns false when it matched no message (fault, interrupt lost).
pub fn imwr(
    sh: &Arc<Shared>,
    st: &mut State,
    addr: u64,
    data: u32,
    dir: Dir,
    ch: usize,
    source: &str,
) -> bool {
    let x = Msix::read(&st.cfg);
    if x.enabled {
        if st.irq.msix_table_written {
            let hit = st
                .irq
                .msix_table
                .iter()
                .position(|e| (e[0] as u64 | (e[1] as u64) << 32) == addr && e[2] == data);
            match hit {
                Some(v) => emit(sh, st, Target::Msix(v as u32), source),
                None => {
                    sh.obs.fault(
                        Fault::ImwrMismatch,
                        format!(
                            "{source}: IMWR addr {addr:#x} data {data:#x} matches no MSI-X entry"
                        ),
                    );
                    sh.obs.irq_lost("msix", source, "imwr mismatch");
                    return false;
                }
            }
        } else {
            // QEMU virtualises the MSI-X table, so the card never sees the
            // messages: deliver by the known vector map, unverified, or to
            // vector 0 when the host wired no interrupt for that vector (a
            // driver that shares one vector programs its message everywhere).
            let v = msix_vector(st, edma_vector(dir, ch));
            sh.obs.with(|c| c.imwr_unverified += 1);
            emit(sh, st, Target::Msix(v), source);
        }
        return true;
    }
    let m = Msi::read(&st.cfg);
    match m.match_imwr(addr, data) {
        Ok(v) => {
            emit(sh, st, Target::Msi(v), source);
            true
        }
        Err(why) => {
            sh.obs
                .fault(Fault::ImwrMismatch, format!("{source}: {why}"));
            sh.obs.irq_lost("msi", source, "imwr mismatch");
            false
        }
    }
}

/// Is INTx asserted: MSI and MSI-X off and any unmasked eDMA status set or
/// any virtual-MSI word the card set not yet seen cleared (model rule of
/// hw-interface.md).
pub fn intx_level(st: &State) -> bool {
    if Msi::read(&st.cfg).enabled || Msix::read(&st.cfg).enabled {
        return false;
    }
    st.edma.local_pending() || st.vmsi.level()
}

/// Re-evaluates INTx after any state change that can move the level.
pub fn update_intx(sh: &Arc<Shared>, st: &mut State) {
    let level = intx_level(st);
    let rising = level && !st.irq.intx_level;
    st.irq.intx_level = level;
    st.cfg.set_bits16(STATUS, STATUS_INTX, level);
    if !level || st.cfg.command() & CMD_INTX_DISABLE != 0 || st.irq.intx_masked {
        return;
    }
    match &st.irq.intx_fd {
        Some(fd) => {
            if signal(fd).is_ok() {
                st.irq.intx_masked = true;
                sh.obs.irq_sent("intx", "level");
            }
        }
        None => {
            // Not a fault: QEMU drops the INTx eventfd while MSI is being
            // switched on/off, and a level raised in that window is simply
            // seen when INTx is wired again.
            if rising {
                sh.obs.irq_lost("intx", "level", "no INTx eventfd");
            }
        }
    }
}

/// Guest changed MSI mask bits: deliver what became unmasked and pending.
pub fn msi_mask_changed(sh: &Arc<Shared>, st: &mut State) {
    let m = Msi::read(&st.cfg);
    let release = m.pending & !m.mask;
    if release == 0 || !m.enabled {
        return;
    }
    msi::set_pending(&mut st.cfg, m.pending & m.mask);
    for v in 0..32 {
        if release & (1 << v) != 0 {
            emit_now(sh, st, Target::Msi(v), "pending-unmask");
        }
    }
}

/// MSI-X function mask or a vector's mask cleared: deliver pending vectors.
pub fn msix_mask_changed(sh: &Arc<Shared>, st: &mut State) {
    let x = Msix::read(&st.cfg);
    if !x.enabled || x.fn_mask || st.irq.msix_pending == 0 {
        return;
    }
    for v in 0..st.irq.msix_table.len() {
        let bit = 1u64 << v;
        let masked = st.irq.msix_table_written && st.irq.msix_table[v][3] & 1 != 0;
        if st.irq.msix_pending & bit != 0 && !masked {
            st.irq.msix_pending &= !bit;
            emit_now(sh, st, Target::Msix(v as u32), "pending-unmask");
        }
    }
}

/// `inject storm VEC COUNT`: COUNT interrupts on VEC as fast as possible,
/// through whichever mechanism is enabled, with the same vector fallback as
/// the card's own sources (INTx: COUNT eventfd writes).
///
/// A storm models a card gone wrong, not something the driver asked for: with
/// Bus Master Enable clear its messages are held back as on real hardware (the
/// host's way of silencing such a card), which is no fault of the driver.
pub fn storm(sh: &Arc<Shared>, vector: u32, count: u64, gap_us: u64) -> u64 {
    for i in 0..count {
        if gap_us > 0 && i > 0 {
            std::thread::sleep(std::time::Duration::from_micros(gap_us));
        }
        let mut st = sh.st.lock().unwrap();
        let message = Msix::read(&st.cfg).enabled || Msi::read(&st.cfg).enabled;
        if message && !st.cfg.bus_master() {
            sh.obs.irq_lost("msi", "storm", "bus master disabled");
        } else if message {
            raise_internal(sh, &mut st, vector, "storm");
        } else if let Some(fd) = &st.irq.intx_fd {
            if signal(fd).is_ok() {
                sh.obs.irq_sent("intx", "storm");
            }
        } else {
            sh.obs
                .irq_lost("none", "storm", "no interrupt mechanism enabled");
        }
    }
    sh.obs.event(
        "storm",
        serde_json::json!({"vector": vector, "count": count}),
    );
    count
}

/// VFIO SET_IRQS.
pub fn set_irqs(
    sh: &Arc<Shared>,
    st: &mut State,
    index: u32,
    flags: u32,
    start: u32,
    count: u32,
    fds: Vec<File>,
) -> io::Result<()> {
    let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    let inval = || io::Error::from_raw_os_error(libc::EINVAL);
    sh.obs.event(
        "set_irqs",
        serde_json::json!({"index": index, "flags": flags, "start": start, "count": count, "fds": fds.len()}),
    );
    match index {
        VFIO_PCI_INTX_IRQ_INDEX => match (action, data) {
            (VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD) => {
                st.irq.intx_fd = if count == 0 {
                    None
                } else {
                    fds.into_iter().next()
                };
                st.irq.intx_masked = false;
                update_intx(sh, st);
            }
            (VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE) => {
                if count == 0 {
                    st.irq.intx_fd = None;
                } else if let Some(fd) = &st.irq.intx_fd {
                    let _ = signal(fd);
                }
            }
            (VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_DATA_NONE) => {
                if count > 0 {
                    st.irq.intx_masked = true;
                }
            }
            (VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_NONE) => {
                if count > 0 {
                    intx_unmasked(sh, st);
                }
            }
            (VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD) => {
                if let Some(s) = st.irq.intx_unmask_stop.take() {
                    s.store(true, Ordering::SeqCst);
                }
                if count > 0 {
                    if let Some(fd) = fds.into_iter().next() {
                        let stop = Arc::new(AtomicBool::new(false));
                        st.irq.intx_unmask_stop = Some(stop.clone());
                        spawn_unmask_watcher(sh.clone(), fd, stop);
                    }
                }
            }
            _ => return Err(inval()),
        },
        VFIO_PCI_MSI_IRQ_INDEX | VFIO_PCI_MSIX_IRQ_INDEX => {
            let msix = index == VFIO_PCI_MSIX_IRQ_INDEX;
            let slots = if msix {
                &mut st.irq.msix_fds
            } else {
                &mut st.irq.msi_fds
            };
            match (action, data) {
                (VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD) => {
                    if count == 0 {
                        slots.iter_mut().for_each(|s| *s = None);
                        return Ok(());
                    }
                    if start as usize + count as usize > slots.len() {
                        return Err(inval());
                    }
                    let nfds = fds.len();
                    let mut it = fds.into_iter();
                    for i in 0..count as usize {
                        // Fewer fds than vectors: the missing ones are unassigned.
                        slots[start as usize + i] = if i < nfds { it.next() } else { None };
                    }
                }
                (VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE) => {
                    if count == 0 {
                        slots.iter_mut().for_each(|s| *s = None);
                    } else {
                        for i in start..start.saturating_add(count).min(slots.len() as u32) {
                            if let Some(fd) = &slots[i as usize] {
                                let _ = signal(fd);
                            }
                        }
                    }
                }
                // VFIO does not mask MSI/MSI-X through SET_IRQS; accept and ignore.
                (VFIO_IRQ_SET_ACTION_MASK, _) | (VFIO_IRQ_SET_ACTION_UNMASK, _) => {}
                _ => return Err(inval()),
            }
        }
        // Error and request notifiers are advertised with count 0.
        _ => {}
    }
    Ok(())
}

/// The host unmasked INTx (its handler is done): the card looks at its
/// virtual-MSI words again before deciding whether the line is still up.
fn intx_unmasked(sh: &Arc<Shared>, st: &mut State) {
    st.irq.intx_masked = false;
    crate::vmsi::recheck(sh, st);
    update_intx(sh, st);
}

/// With KVM, QEMU hands an eventfd that fires when the guest EOIs the INTx
/// interrupt; reading it unmasks INTx. Polled with a timeout so the thread
/// ends when the eventfd is replaced or the device goes away.
fn spawn_unmask_watcher(sh: Arc<Shared>, fd: File, stop: Arc<AtomicBool>) {
    // A weak reference: the watcher must not keep the device alive.
    let weak = Arc::downgrade(&sh);
    drop(sh);
    std::thread::spawn(move || {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, 100) };
            if r > 0 && pfd.revents & libc::POLLIN != 0 {
                let mut b = [0u8; 8];
                use std::io::Read;
                let _ = (&fd).read(&mut b);
                let Some(sh) = weak.upgrade() else { break };
                let mut st = sh.st.lock().unwrap();
                intx_unmasked(&sh, &mut st);
            } else if r < 0 {
                break;
            }
        }
    });
}
