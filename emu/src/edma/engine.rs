//! The eDMA engine: doorbells, the linked-list walker with the CB/CCS cycle
//! bit protocol, non-LL transfers, data movement through the IOMMU view of
//! guest memory, aborts and interrupts.
//!
//! Each doorbell on an idle channel hands the run to the channel's worker
//! thread (`worker.rs`), which walks the list until it stops. Workers never hold the state lock while moving data;
//! they re-check the channel's epoch (bumped by reset, engine disable and
//! stop) under the DMA gate before every chunk, so nothing reaches host or
//! device memory after a reset returns.

use super::ll::{Element, LlCtx, ELEMENT_SIZE, NO_PROGRESS_LIMIT};
use super::regs::*;
use super::Dir;
use crate::config::{
    ConfigSpace, STATUS, STATUS_RECEIVED_MASTER_ABORT, STATUS_RECEIVED_TARGET_ABORT,
};
use crate::device::{Shared, State};
use crate::dma::{DmaError, Perm};
use crate::faults::Fault;
use crate::inject::Inject;
use crate::irq;
use crate::link::{LinkDir, Pacer, READ_LATENCY};
use crate::msi::{Msi, Msix};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Bytes moved per step: bounds the time a reset waits for a worker and the
/// granularity of bandwidth sharing between channels.
pub const CHUNK: u64 = 64 * 1024;

/// Why a channel aborted.
#[derive(Debug, Clone)]
pub enum AbortCause {
    Dma(DmaError),
    NoBusMaster,
    DevRange(u64, u64),
    Malformed(String),
    Injected,
}

enum XferErr {
    Abort(AbortCause),
    Cancelled,
}

impl AbortCause {
    fn fault(&self) -> Option<(Fault, String)> {
        Some(match self {
            AbortCause::Dma(e) => (Fault::of_dma(e), e.to_string()),
            AbortCause::NoBusMaster => (Fault::DmaNoBusMaster, "Bus Master Enable clear".into()),
            AbortCause::DevRange(a, n) => (
                Fault::DevRange,
                format!("device range {a:#x}+{n:#x} outside device memory"),
            ),
            AbortCause::Malformed(s) => (Fault::LlMalformed, s.clone()),
            AbortCause::Injected => return None,
        })
    }

    /// Latches the error status bits of channel `ch` of half `r`.
    fn latch_err(&self, r: &mut DirRegs, dir: Dir, ch: usize) {
        let bit = ch_bit(ch);
        let (e, hi) = (&mut r.err, &mut r.err_hi);
        match (self, dir) {
            (AbortCause::Malformed(_), _) => e.set_ll_fetch(e.ll_fetch() | bit),
            (AbortCause::DevRange(..), _) => e.set_data(e.data() | bit),
            (AbortCause::Dma(DmaError::Perm { .. }), Dir::Rd) => {
                hi.set_completer_abort(hi.completer_abort() | bit)
            }
            (_, Dir::Rd) => hi.set_unsupported_request(hi.unsupported_request() | bit),
            (_, Dir::Wr) => e.set_data(e.data() | bit),
        }
    }
}

fn chan_idx(dir: Dir, ch: usize) -> usize {
    dir as usize * 8 + ch
}

pub fn epoch(sh: &Shared, dir: Dir, ch: usize) -> u64 {
    sh.chan_epoch[chan_idx(dir, ch)].load(Ordering::SeqCst)
}

fn live(sh: &Shared, dir: Dir, ch: usize, ep: u64) -> bool {
    epoch(sh, dir, ch) == ep
}

/// Invalidates a channel's worker; the caller waits on the gate afterwards.
fn cancel(sh: &Shared, dir: Dir, ch: usize) {
    sh.chan_epoch[chan_idx(dir, ch)].fetch_add(1, Ordering::SeqCst);
    let mut w = sh.fetch_watch.lock().unwrap();
    if matches!(&*w, Some(w) if w.dir == dir && w.ch == ch) {
        *w = None;
        sh.fetch_watch_on.store(false, Ordering::SeqCst);
    }
}

/// Cancels every channel and waits for in-flight chunks (reset).
pub fn cancel_all(sh: &Shared) {
    for d in [Dir::Wr, Dir::Rd] {
        for ch in 0..8 {
            cancel(sh, d, ch);
        }
    }
}

pub fn ll_ctx(sh: &Shared, cfg: &ConfigSpace) -> LlCtx {
    LlCtx {
        identity: sh.opts.identity,
        bar2_base: cfg.bar2_base(),
        bar2_size: cfg.layout.bar2_size,
    }
}

/// A register write to the eDMA block, with its side effects.
pub fn reg_write(sh: &Arc<Shared>, st: &mut State, off: u32, v: u32) {
    match st.edma.write(off, v) {
        Action::None => {}
        Action::ReadOnly => sh.obs.fault(
            Fault::RegReadOnly,
            format!("write {v:#x} to read-only {}", name(off)),
        ),
        Action::IntState => irq::update_intx(sh, st),
        Action::IntClear => {
            crate::vmsi::recheck(sh, st);
            irq::update_intx(sh, st);
        }
        Action::Engine(d, was, now) => {
            if was && !now {
                engine_disabled(sh, st, d);
            }
        }
        Action::Doorbell(d, db) => doorbell(sh, st, d, db),
    }
}

/// The card's own side clears both engines' enables, as a firmware that
/// reinitialises the DMA block would (injection `engine-off`): what the host's
/// write of 0 does, and the host must enable them again.
pub fn firmware_engine_off(sh: &Arc<Shared>, st: &mut State) {
    for d in [Dir::Wr, Dir::Rd] {
        let r = st.edma.dir_mut(d);
        let was = r.engine_en.enable();
        r.engine_en = EngineEn::new();
        if was {
            engine_disabled(sh, st, d);
        }
    }
}

/// Disabling an engine soft-resets its channels: running transfers stop
/// where they are (no interrupt), CS reads stopped.
fn engine_disabled(sh: &Arc<Shared>, st: &mut State, d: Dir) {
    for ch in 0..st.edma.nch {
        halt(sh, st, d, ch);
    }
    drop(sh.gate.write().unwrap());
    sh.obs.event(
        "engine",
        serde_json::json!({"dir": d.name(), "enabled": false}),
    );
}

/// Halts one channel where it is: its transfer is cancelled, no interrupt,
/// CS reads stopped, and any latched doorbell or injected hang is dropped.
fn halt(sh: &Arc<Shared>, st: &mut State, d: Dir, ch: usize) {
    if st.edma.dir(d).ch[ch].stuck {
        sh.obs.event(
            "inject",
            serde_json::json!({"what": "stop ignored by stuck channel", "dir": d.name(), "ch": ch}),
        );
        return;
    }
    cancel(sh, d, ch);
    let c = st.edma.chan_mut(d, ch);
    if c.ctrl1.cs() == Cs::Running {
        c.ctrl1.set_cs(Cs::Stopped);
    }
    c.pending_doorbell = false;
    c.hung = false;
}

fn doorbell(sh: &Arc<Shared>, st: &mut State, d: Dir, db: Doorbell) {
    let (v, ch) = (u32::from(db), usize::from(db.ch()));
    if ch >= st.edma.nch {
        sh.obs.fault(
            Fault::DoorbellBadChannel,
            format!("{}_doorbell {v:#x}: channel {ch} does not exist", d.name()),
        );
        return;
    }
    if !st.edma.dir(d).engine_en.enable() {
        sh.obs.fault(
            Fault::DoorbellEngineDisabled,
            format!(
                "{}_doorbell ch{ch} while {}_engine_en is 0",
                d.name(),
                d.name()
            ),
        );
        return;
    }
    if db.stop() {
        let c = &st.edma.dir(d).ch[ch];
        if c.ctrl1.cs() == Cs::Running && !c.stuck && Inject::take(&mut st.inj.done_on_stop, d, ch)
        {
            // The transfer won the race against the stop: the channel is
            // stopped and its done status (and message) is on its way.
            halt(sh, st, d, ch);
            drop(sh.gate.write().unwrap());
            sh.obs.event(
                "inject",
                serde_json::json!({"what": "done-on-stop", "dir": d.name(), "ch": ch}),
            );
            let remote = st.edma.dir(d).done_imwr != 0
                && (Msi::read(&st.cfg).enabled || Msix::read(&st.cfg).enabled);
            sh.obs.with(|c| c.transfers_done += 1);
            done_irq(sh, st, d, ch, remote);
            return;
        }
        // Stop request: the channel halts where it is, without interrupt.
        halt(sh, st, d, ch);
        drop(sh.gate.write().unwrap());
        sh.obs.event(
            "doorbell_stop",
            serde_json::json!({"dir": d.name(), "ch": ch}),
        );
        return;
    }
    sh.obs.with(|c| c.chan(d, ch).doorbells += 1);
    if st.edma.dir(d).ch[ch].ctrl1.cs() == Cs::Running {
        sh.obs.with(|c| c.chan(d, ch).doorbells_latched += 1);
        if Inject::take(&mut st.inj.missed_doorbell, d, ch) {
            sh.obs.event(
                "inject",
                serde_json::json!({"what": "missed-doorbell", "dir": d.name(), "ch": ch}),
            );
            return;
        }
        // Latched: the walker re-checks the list when it would stop.
        st.edma.chan_mut(d, ch).pending_doorbell = true;
        return;
    }
    sh.obs.with(|c| {
        c.jobs += 1;
        c.chan(d, ch).runs += 1;
    });
    let c = st.edma.chan_mut(d, ch);
    c.ctrl1.set_cs(Cs::Running);
    c.pending_doorbell = false;
    if Inject::take(&mut st.inj.stuck, d, ch) {
        let c = st.edma.chan_mut(d, ch);
        c.hung = true;
        c.stuck = true;
        sh.obs.event(
            "inject",
            serde_json::json!({"what": "stuck-channel", "dir": d.name(), "ch": ch}),
        );
        return;
    }
    if Inject::take(&mut st.inj.hang, d, ch) {
        st.edma.chan_mut(d, ch).hung = true;
        sh.obs.event(
            "inject",
            serde_json::json!({"what": "hang-channel", "dir": d.name(), "ch": ch}),
        );
        return;
    }
    let ep = epoch(sh, d, ch);
    sh.workers.kick(sh, d, ch, ep);
}

pub(super) fn run(sh: Arc<Shared>, d: Dir, ch: usize, ep: u64) {
    let lle = {
        let st = sh.st.lock().unwrap();
        if !live(&sh, d, ch, ep) {
            return;
        }
        st.edma.dir(d).ch[ch].ctrl1.lle()
    };
    let mut pacer = Pacer::default();
    if lle {
        run_ll(&sh, d, ch, ep, &mut pacer);
    } else {
        run_single(&sh, d, ch, ep, &mut pacer);
    }
}

/// Non-LL mode: one block from the channel's SAR/DAR/transfer_size.
fn run_single(sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64, pacer: &mut Pacer) {
    let (sar, dar, size, inj) = {
        let mut st = sh.st.lock().unwrap();
        if !live(sh, d, ch, ep) {
            return;
        }
        let inj = Inject::take(&mut st.inj.abort, d, ch);
        let c = &st.edma.dir(d).ch[ch];
        (c.sar, c.dar, c.size, inj)
    };
    if inj {
        return abort(sh, d, ch, ep, AbortCause::Injected);
    }
    match transfer(sh, d, ch, ep, sar, dar, size as u64, pacer) {
        Err(XferErr::Cancelled) => {}
        Err(XferErr::Abort(c)) => abort(sh, d, ch, ep, c),
        Ok(()) => {
            pacer.finish();
            let mut st = sh.st.lock().unwrap();
            if !live(sh, d, ch, ep) {
                return;
            }
            let c = st.edma.chan_mut(d, ch);
            c.size = 0;
            c.sar = sar.wrapping_add(size as u64);
            c.dar = dar.wrapping_add(size as u64);
            c.ctrl1.set_cs(Cs::Stopped);
            c.pending_doorbell = false;
            let ctrl = c.ctrl1;
            sh.obs.with(|c| {
                c.elements += 1;
                c.chan(d, ch).elements += 1;
                c.transfers_done += 1
            });
            if ctrl.lie() || ctrl.rie() {
                done_irq(sh, &mut st, d, ch, ctrl.rie());
            }
        }
    }
}

/// An element the engine fetched ahead of its walk ([`prefetch`]).
struct Ahead {
    /// Where it was (the channel's LLP when it was fetched).
    llp: u64,
    raw: [u8; ELEMENT_SIZE as usize],
    /// The channel's `prog` then: a reprogrammed channel drops what it fetched.
    prog: u64,
}

/// LL mode: walk elements from LLP while their CB matches CCS.
fn run_ll(sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64, pacer: &mut Pacer) {
    let mut idle: u32 = 0;
    let mut ahead: Option<Ahead> = None;
    loop {
        let (llp, ccs, prog, corrupt, ctx) = {
            let mut st = sh.st.lock().unwrap();
            if !live(sh, d, ch, ep) {
                return;
            }
            let corrupt = Inject::take(&mut st.inj.corrupt, d, ch);
            let ctx = ll_ctx(sh, &st.cfg);
            let c = &st.edma.dir(d).ch[ch];
            (c.llp, c.ctrl1.ccs(), c.prog, corrupt, ctx)
        };
        let mut raw = [0u8; ELEMENT_SIZE as usize];
        match ahead.take() {
            Some(a) if a.llp == llp && a.prog == prog => raw = a.raw,
            _ => {
                let at = match ctx.resolve(llp, &sh.mem) {
                    Ok(a) => a,
                    Err(why) => {
                        return abort(sh, d, ch, ep, AbortCause::Malformed(format!("LLP: {why}")))
                    }
                };
                // One fetch into a copy: the host may rewrite the element meanwhile.
                match torn_fetch(sh, d, ch, ep, at) {
                    Watched::Snapshot(snap) => raw = snap,
                    Watched::No => {
                        sh.mem.read(at, &mut raw);
                    }
                    Watched::Gone => return,
                }
                sh.obs.with(|c| c.chan(d, ch).list_bytes += ELEMENT_SIZE);
            }
        }
        if corrupt {
            // Garbage fetch: all bits set looks like a link element (LLP bit)
            // pointing nowhere, which the validation below must reject.
            raw = [0xff; ELEMENT_SIZE as usize];
            sh.obs.event(
                "inject",
                serde_json::json!({"what": "corrupt-desc", "dir": d.name(), "ch": ch}),
            );
        }
        let e = Element::parse(&raw);
        if e.control.llp() {
            // Link element: its CB is not compared (dw-edma writes !CB).
            idle += 1;
            if idle > NO_PROGRESS_LIMIT {
                return abort(sh, d, ch, ep, no_progress(llp));
            }
            if let Err(why) = ctx.resolve(e.llp(), &sh.mem) {
                return abort(
                    sh,
                    d,
                    ch,
                    ep,
                    AbortCause::Malformed(format!("link element at {llp:#x}: {why}")),
                );
            }
            link_stall(sh, d, ch, ep);
            let mut st = sh.st.lock().unwrap();
            if !live(sh, d, ch, ep) {
                return;
            }
            let c = st.edma.chan_mut(d, ch);
            if c.prog != prog {
                if after_reprogram(sh, c) {
                    continue;
                }
                return;
            }
            follow_link(sh, c, &e, d, ch);
            continue;
        }
        if e.control.cb() != ccs {
            // Producer has not handed this element over: stop here, LLP
            // stays on it so the next doorbell resumes at this element.
            pacer.finish();
            let mut st = sh.st.lock().unwrap();
            if !live(sh, d, ch, ep) {
                return;
            }
            if stop_unless_rung(sh, st.edma.chan_mut(d, ch)) {
                continue;
            }
            return;
        }
        let inj = {
            let mut st = sh.st.lock().unwrap();
            if !live(sh, d, ch, ep) {
                return;
            }
            let c = st.edma.chan_mut(d, ch);
            if c.prog != prog {
                if after_reprogram(sh, c) {
                    continue;
                }
                return;
            }
            c.size = e.size;
            c.sar = e.sar;
            c.dar = e.dar;
            Inject::take(&mut st.inj.abort, d, ch)
        };
        if inj {
            return abort(sh, d, ch, ep, AbortCause::Injected);
        }
        if !hold(sh, d, ch, ep, |i| &mut i.data_stall_ms, "data-stall") {
            return;
        }
        match transfer(sh, d, ch, ep, e.sar, e.dar, e.size as u64, pacer) {
            Err(XferErr::Cancelled) => return,
            Err(XferErr::Abort(c)) => return abort(sh, d, ch, ep, c),
            Ok(()) => {}
        }
        if e.size == 0 {
            idle += 1;
            if idle > NO_PROGRESS_LIMIT {
                return abort(sh, d, ch, ep, no_progress(llp));
            }
        } else {
            idle = 0;
        }
        let irq = e.control.lie() || e.control.rie();
        if irq {
            // The interrupt must not overtake the modelled wire time.
            pacer.finish();
        }
        let mut st = sh.st.lock().unwrap();
        if !live(sh, d, ch, ep) {
            return;
        }
        watch_behind_link(sh, &mut st, &ctx, d, ch, llp.wrapping_add(ELEMENT_SIZE));
        let c = st.edma.chan_mut(d, ch);
        let reprogrammed = c.prog != prog;
        if !reprogrammed {
            c.llp = llp.wrapping_add(ELEMENT_SIZE);
        }
        c.size = 0;
        c.sar = e.sar.wrapping_add(e.size as u64);
        c.dar = e.dar.wrapping_add(e.size as u64);
        sh.obs.with(|c| {
            c.elements += 1;
            c.chan(d, ch).elements += 1;
        });
        if irq {
            if !reprogrammed && may_prefetch(sh, &st, d, ch) {
                if let Some((a, owned)) = prefetch(sh, &mut st, &ctx, d, ch, &mut idle) {
                    if owned {
                        ahead = Some(a);
                    } else if !stop_unless_rung(sh, st.edma.chan_mut(d, ch)) {
                        // Stopped at the element it fetched, before the host learns of the
                        // completion; no next step for a `walk-lag` to delay. (A doorbell
                        // that came meanwhile has the walk look again.)
                        st.inj.walk_lag_ms[d as usize][ch] = 0;
                        done_irq(sh, &mut st, d, ch, e.control.rie());
                        return;
                    }
                }
            }
            done_irq(sh, &mut st, d, ch, e.control.rie());
        }
        if reprogrammed && !after_reprogram(sh, st.edma.chan_mut(d, ch)) {
            return;
        }
        if irq && st.inj.walk_lag_ms[d as usize][ch] != 0 {
            drop(st);
            if !hold(sh, d, ch, ep, |i| &mut i.walk_lag_ms, "walk-lag") {
                return;
            }
        }
    }
}

/// Whether the walker fetches ahead now: not while an injection needs the fetch to
/// happen late (`link-stall`, `torn-fetch` and its watch).
fn may_prefetch(sh: &Shared, st: &State, d: Dir, ch: usize) -> bool {
    st.inj.link_stall_ms[d as usize][ch] == 0
        && st.inj.torn_fetch[d as usize][ch] == 0
        && !sh.fetch_watch_on.load(Ordering::SeqCst)
}

/// What the engine holds by the time the done interrupt of the element it just
/// moved reaches the host: hardware fetches its list ahead of the transfer, so
/// a link behind the element is followed, and the data element after it read,
/// before the host can react to the interrupt and rewrite them (dw-edma writes
/// the next chunk into the same list from its done interrupt). Returns that
/// element, and whether its cycle bit hands it to the engine; `None` leaves the
/// fetch to the walk (a link that does not resolve aborts there, after the
/// interrupt, as on hardware).
fn prefetch(
    sh: &Shared,
    st: &mut State,
    ctx: &LlCtx,
    d: Dir,
    ch: usize,
    idle: &mut u32,
) -> Option<(Ahead, bool)> {
    // A link, then the element it points at; a second link in a row is the walk's.
    for _ in 0..2 {
        let (llp, ccs, prog) = {
            let c = &st.edma.dir(d).ch[ch];
            (c.llp, c.ctrl1.ccs(), c.prog)
        };
        let at = ctx.resolve(llp, &sh.mem).ok()?;
        let mut raw = [0u8; ELEMENT_SIZE as usize];
        sh.mem.read(at, &mut raw);
        let e = Element::parse(&raw);
        if !e.control.llp() {
            sh.obs.with(|c| c.chan(d, ch).list_bytes += ELEMENT_SIZE);
            return Some((Ahead { llp, raw, prog }, e.control.cb() == ccs));
        }
        ctx.resolve(e.llp(), &sh.mem).ok()?;
        *idle += 1;
        if *idle > NO_PROGRESS_LIMIT {
            return None;
        }
        sh.obs.with(|c| c.chan(d, ch).list_bytes += ELEMENT_SIZE);
        follow_link(sh, st.edma.chan_mut(d, ch), &e, d, ch);
    }
    None
}

/// The walk goes on at link `link`'s target, with CCS flipped if it says so.
fn follow_link(sh: &Shared, c: &mut Chan, link: &Element, d: Dir, ch: usize) {
    if link.control.tcb() {
        c.ctrl1.set_ccs(!c.ctrl1.ccs());
    }
    c.llp = link.llp();
    sh.obs.with(|c| c.chan(d, ch).links += 1);
}

/// Where the walk would stop: a doorbell latched while it ran has it look again
/// (returns true, the doorbell taken); otherwise the channel stops there.
fn stop_unless_rung(sh: &Shared, c: &mut Chan) -> bool {
    if c.pending_doorbell {
        c.pending_doorbell = false;
        return true;
    }
    c.ctrl1.set_cs(Cs::Stopped);
    sh.obs.with(|c| c.transfers_done += 1);
    false
}

/// The host wrote CH_CONTROL1 or LLP while the walk was between its snapshot
/// of them and acting on what it fetched (dw-edma starts a channel's next
/// descriptor from the done interrupt, while the walk is still following the
/// link behind it). What was fetched is no longer the host's list, so the
/// walker drops it: it starts again from the host's registers if the doorbell
/// that goes with them has come (returns true), else it stops, and that
/// doorbell starts a new walk. Nothing runs without the host's doorbell.
fn after_reprogram(sh: &Arc<Shared>, c: &mut Chan) -> bool {
    sh.obs.event(
        "reprogrammed_behind_walk",
        serde_json::json!({"pending_doorbell": c.pending_doorbell}),
    );
    stop_unless_rung(sh, c)
}

/// A walker's wait for the host's first write into an element (`inject torn-fetch`).
#[derive(Debug)]
pub struct FetchWatch {
    dir: Dir,
    ch: usize,
    /// Where the element is in device memory.
    at: u64,
    /// The element as it was right after the host's first write into it.
    snap: Option<[u8; ELEMENT_SIZE as usize]>,
}

/// How long a walker waits for the host to write into a watched element.
const TORN_FETCH_WAIT: Duration = Duration::from_secs(2);

enum Watched {
    /// Not watched (or the host never wrote): fetch the element as it is.
    No,
    /// The element as the host's first write left it.
    Snapshot([u8; ELEMENT_SIZE as usize]),
    /// The channel was stopped or reset meanwhile.
    Gone,
}

/// When the data element the walker just moved is followed by the link that
/// `inject torn-fetch` counts down to, the element behind that link is
/// watched from now on: before the host learns (by the done interrupt, or by
/// polling the status) that it may rewrite the list.
fn watch_behind_link(sh: &Shared, st: &mut State, ctx: &LlCtx, d: Dir, ch: usize, next: u64) {
    let n = st.inj.torn_fetch[d as usize][ch];
    if n == 0 {
        return;
    }
    let Ok(at) = ctx.resolve(next, &sh.mem) else {
        return;
    };
    let mut raw = [0u8; ELEMENT_SIZE as usize];
    sh.mem.read(at, &mut raw);
    let link = Element::parse(&raw);
    if !link.control.llp() {
        return;
    }
    st.inj.torn_fetch[d as usize][ch] = n - 1;
    if n > 1 {
        return;
    }
    let Ok(target) = ctx.resolve(link.llp(), &sh.mem) else {
        return;
    };
    *sh.fetch_watch.lock().unwrap() = Some(FetchWatch {
        dir: d,
        ch,
        at: target,
        snap: None,
    });
    sh.fetch_watch_on.store(true, Ordering::SeqCst);
}

/// The host wrote `[addr, addr + len)` of device memory (through BAR2): a
/// watched element it touched for the first time is fetched now.
pub fn host_wrote(sh: &Shared, addr: u64, len: u64) {
    if !sh.fetch_watch_on.load(Ordering::SeqCst) {
        return;
    }
    let mut w = sh.fetch_watch.lock().unwrap();
    if let Some(w) = w.as_mut() {
        if w.snap.is_none() && addr < w.at + ELEMENT_SIZE && w.at < addr + len {
            let mut raw = [0u8; ELEMENT_SIZE as usize];
            sh.mem.read(w.at, &mut raw);
            w.snap = Some(raw);
        }
    }
}

/// The fetch of the element at `at`, when `inject torn-fetch` watches it:
/// waits for the host's first write into it and returns the element as that
/// write left it.
fn torn_fetch(sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64, at: u64) -> Watched {
    if !sh.fetch_watch_on.load(Ordering::SeqCst) {
        return Watched::No;
    }
    {
        let w = sh.fetch_watch.lock().unwrap();
        if !matches!(&*w, Some(w) if w.dir == d && w.ch == ch && w.at == at) {
            return Watched::No;
        }
    }
    let start = std::time::Instant::now();
    let snap = loop {
        let snap = sh.fetch_watch.lock().unwrap().as_ref().and_then(|w| w.snap);
        if snap.is_some() || start.elapsed() >= TORN_FETCH_WAIT {
            break snap;
        }
        if !live(sh, d, ch, ep) {
            break None;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    sh.fetch_watch_on.store(false, Ordering::SeqCst);
    *sh.fetch_watch.lock().unwrap() = None;
    if !live(sh, d, ch, ep) {
        return Watched::Gone;
    }
    let control = snap.map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    sh.obs.event(
        "inject",
        serde_json::json!({"what": "torn-fetch", "dir": d.name(), "ch": ch,
            "at": format!("{at:#x}"), "host_wrote": snap.is_some(),
            "control": control.map(|c| format!("{c:#x}"))}),
    );
    match snap {
        Some(s) => Watched::Snapshot(s),
        None => Watched::No,
    }
}

/// The `link-stall` injection: holds the walker on a fetched link element
/// until released by `link-release` or for the armed time at most.
fn link_stall(sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64) {
    hold(sh, d, ch, ep, |i| &mut i.link_stall_ms, "link-stall");
}

/// Holds the walker where it is while the stall `which` picks is armed for
/// the channel: until `link-release`, the armed time, or the channel being
/// stopped or reset (returns false then: the walk is over).
fn hold(
    sh: &Arc<Shared>,
    d: Dir,
    ch: usize,
    ep: u64,
    which: fn(&mut Inject) -> &mut [[u64; 8]; 2],
    name: &str,
) -> bool {
    let limit = {
        let mut st = sh.st.lock().unwrap();
        std::mem::take(&mut which(&mut st.inj)[d as usize][ch])
    };
    if limit == 0 {
        return true;
    }
    sh.obs.event(
        "inject",
        serde_json::json!({"what": name, "dir": d.name(), "ch": ch, "ms": limit}),
    );
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(limit) {
        std::thread::sleep(Duration::from_millis(1));
        let mut st = sh.st.lock().unwrap();
        if std::mem::take(&mut st.inj.link_release[d as usize][ch]) {
            break;
        }
        if !live(sh, d, ch, ep) {
            return false;
        }
    }
    true
}

fn no_progress(llp: u64) -> AbortCause {
    AbortCause::Malformed(format!(
        "{NO_PROGRESS_LIMIT} elements without moving data (loop near {llp:#x})"
    ))
}

/// Moves `size` bytes for one element. Write channels: SAR device, DAR host.
/// Read channels: SAR host, DAR device.
#[allow(clippy::too_many_arguments)]
fn transfer(
    sh: &Shared,
    d: Dir,
    ch: usize,
    ep: u64,
    sar: u64,
    dar: u64,
    size: u64,
    pacer: &mut Pacer,
) -> Result<(), XferErr> {
    let (host, dev) = match d {
        Dir::Wr => (dar, sar),
        Dir::Rd => (sar, dar),
    };
    if !sh.mem.contains(dev, size) {
        return Err(XferErr::Abort(AbortCause::DevRange(dev, size)));
    }
    if size == 0 {
        return Ok(());
    }
    let (need, ldir) = match d {
        Dir::Wr => (Perm::W, LinkDir::Upstream),
        Dir::Rd => (Perm::R, LinkDir::Downstream),
    };
    if d == Dir::Rd {
        pacer.add(READ_LATENCY);
    }
    let mut done = 0u64;
    while done < size {
        let n = CHUNK.min(size - done);
        if !sh.bme.load(Ordering::SeqCst) {
            return Err(XferErr::Abort(AbortCause::NoBusMaster));
        }
        let pieces = sh
            .guest
            .resolve(host.wrapping_add(done), n, need)
            .map_err(|e| XferErr::Abort(AbortCause::Dma(e)))?;
        let end = sh.link.reserve(ldir, n);
        {
            let _g = sh.gate.read().unwrap();
            if !live(sh, d, ch, ep) {
                return Err(XferErr::Cancelled);
            }
            let mut off = dev + done;
            for p in &pieces {
                let hs = p.slice().map_err(|e| XferErr::Abort(AbortCause::Dma(e)))?;
                let ds = sh
                    .mem
                    .slice(off, p.len as u64)
                    .ok_or(XferErr::Abort(AbortCause::DevRange(dev, size)))?;
                // Both sides change under the copy (the guest, other workers,
                // the BAR2 window): volatile slice to volatile slice.
                match d {
                    Dir::Wr => ds.copy_to_volatile_slice(hs),
                    Dir::Rd => hs.copy_to_volatile_slice(ds),
                }
                off += p.len as u64;
            }
        }
        sh.obs.with(|c| {
            match d {
                Dir::Wr => c.bytes_d2h += n,
                Dir::Rd => c.bytes_h2d += n,
            }
            c.chan(d, ch).bytes += n;
        });
        pacer.account(end);
        done += n;
    }
    Ok(())
}

/// Issues a channel's IMWR and counts it for the channel.
fn send_imwr(
    sh: &Arc<Shared>,
    st: &mut State,
    addr: u64,
    data: u32,
    d: Dir,
    ch: usize,
    what: &str,
) {
    let source = format!("edma.{}{ch}.{what}", d.name());
    let ok = irq::imwr(sh, st, addr, data, d, ch, &source);
    sh.obs.with(|c| {
        let cc = c.chan(d, ch);
        cc.imwrs += 1;
        if !ok {
            cc.imwr_mismatch += 1;
        }
    });
}

/// DONE: status latches; IMWR to the done address when RIE asked for it.
fn done_irq(sh: &Arc<Shared>, st: &mut State, d: Dir, ch: usize, rie: bool) {
    let r = st.edma.dir_mut(d);
    r.int_status = r.int_status.union(IntBits::done_of(ch));
    if rie {
        let r = st.edma.dir(d);
        let (addr, data) = (r.done_imwr, r.imwr_data_of(ch));
        send_imwr(sh, st, addr, data, d, ch, "done");
    }
    irq::update_intx(sh, st);
}

/// ABORT: channel halts, error and status bits latch, IMWR to the abort
/// address if enabled (LL mode: linked_list_err_en bit; non-LL: RIE).
fn abort(sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64, cause: AbortCause) {
    let mut st = sh.st.lock().unwrap();
    if !live(sh, d, ch, ep) {
        return;
    }
    match cause.fault() {
        Some((f, why)) => sh
            .obs
            .fault(f, format!("{}{ch}: {why} -> channel aborted", d.name())),
        None => sh.obs.event(
            "inject",
            serde_json::json!({"what": "abort", "dir": d.name(), "ch": ch}),
        ),
    }
    if let (Dir::Rd, AbortCause::Dma(e)) = (d, &cause) {
        // A read the IOMMU refused comes back as an Unsupported Request
        // (unmapped) or Completer Abort (permission) completion: the
        // requester logs Received Master / Target Abort in PCI Status.
        let bit = match e {
            DmaError::Perm { .. } => STATUS_RECEIVED_TARGET_ABORT,
            _ => STATUS_RECEIVED_MASTER_ABORT,
        };
        st.cfg.set_bits16(STATUS, bit, true);
    }
    let c = st.edma.chan_mut(d, ch);
    c.ctrl1.set_cs(Cs::Halted);
    c.pending_doorbell = false;
    let remote = if c.ctrl1.lle() {
        st.edma.dir(d).ll_err_en.ch() & ch_bit(ch) != 0
    } else {
        c.ctrl1.rie()
    };
    let r = st.edma.dir_mut(d);
    cause.latch_err(r, d, ch);
    r.int_status = r.int_status.union(IntBits::abort_of(ch));
    sh.obs.with(|c| c.transfers_aborted += 1);
    if remote {
        let r = st.edma.dir(d);
        let (addr, data) = (r.abort_imwr, r.imwr_data_of(ch));
        send_imwr(sh, &mut st, addr, data, d, ch, "abort");
    }
    irq::update_intx(sh, &mut st);
}
