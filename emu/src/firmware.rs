//! Card firmware model: the bootloader state machine, image validation and
//! the mailbox commands (docs/hw-interface.md "Commands", "Boot").
//!
//! Commands run on one firmware worker thread, so the guest sees a real
//! asynchronous completion: CMD_STATUS reads BUSY (4) from the doorbell
//! until the command completes, then CMD_SEQ increments, FW_IRQ_STATUS bit0
//! latches and vector 12 fires (if unmasked).

use crate::device::{Shared, State};
use crate::faults::Fault;
use crate::fwimage::{self, BootPolicy, FailReason, Header};
use crate::irq;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub const MAGIC: u32 = 0x0000_FD1F;
pub const IF_LAYOUT: u32 = 1;
/// Device-physical base of the interface region (model value).
pub const IF_BASE: u64 = 0x0180_0000;
pub const IF_SIZE: u32 = 0x1000;
pub const FW_LOAD_ADDR: u64 = fwimage::DEFAULT_LOAD_ADDR;
pub const FW_MAX_SIZE: u64 = fwimage::DEFAULT_MAX_SIZE;
pub const USER_MEM_BASE: u64 = 32 << 20;
/// Interface major the bootloader boots.
pub const IF_MAJOR: u16 = 1;
/// Time from BOOT to READY/FAILED (contract: within 50 ms).
pub const BOOT_TIME: Duration = Duration::from_millis(20);
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(10);
/// Fixed command latency and device-internal memory bandwidth for the
/// modelled duration of CHECKSUM / FILL / RUN.
pub const CMD_LATENCY: Duration = Duration::from_micros(20);
pub const INTERNAL_BW: f64 = 8e9;
pub const RESET_KEY: u32 = 0x5253_4554; // "RSET"

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwState {
    Off = 0,
    Bootloader = 1,
    Booting = 2,
    Ready = 3,
    Failed = 4,
}

impl FwState {
    pub fn name(self) -> &'static str {
        match self {
            FwState::Off => "OFF",
            FwState::Bootloader => "BOOTLOADER",
            FwState::Booting => "BOOTING",
            FwState::Ready => "READY",
            FwState::Failed => "FAILED",
        }
    }
}

pub mod op {
    pub const BOOT: u32 = 1;
    pub const ECHO: u32 = 2;
    pub const CHECKSUM: u32 = 3;
    pub const FILL: u32 = 4;
    pub const RUN: u32 = 5;
    pub fn name(o: u32) -> String {
        match o {
            BOOT => "BOOT".into(),
            ECHO => "ECHO".into(),
            CHECKSUM => "CHECKSUM".into(),
            FILL => "FILL".into(),
            RUN => "RUN".into(),
            _ => format!("op{o}"),
        }
    }
}

pub mod status {
    pub const OK: u32 = 0;
    pub const BAD_OPCODE: u32 = 1;
    pub const BAD_ARGS: u32 = 2;
    pub const NOT_READY: u32 = 3;
    pub const BUSY: u32 = 4;
    pub const FAILED: u32 = 5;
}

/// FW_IRQ_STATUS bits.
pub const IRQ_CMD_DONE: u32 = 1 << 0;
pub const IRQ_DEVICE_MSG: u32 = 1 << 1;

pub const MSG_LEN: usize = 256;

#[derive(Clone, Debug)]
pub struct Fw {
    pub state: FwState,
    pub fail_reason: u32,
    pub fw_version: u32,
    pub fw_if_version: u32,
    hb_frozen: u32,
    ready_at: Option<Instant>,
    pub hung: bool,
    pub cmd_opcode: u32,
    pub cmd_size: u32,
    pub cmd_msg: [u8; MSG_LEN],
    pub cmd_status: u32,
    pub cmd_seq: u32,
    pub busy: bool,
    pub irq_status: u32,
    pub irq_mask: u32,
    pub win_base: u64,
}

impl Default for Fw {
    fn default() -> Self {
        Self::new()
    }
}

impl Fw {
    /// State after reset: bootloader waiting for an image, interrupts masked.
    pub fn new() -> Fw {
        Fw {
            state: FwState::Bootloader,
            fail_reason: 0,
            fw_version: 0,
            fw_if_version: 0,
            hb_frozen: 0,
            ready_at: None,
            hung: false,
            cmd_opcode: 0,
            cmd_size: 0,
            cmd_msg: [0; MSG_LEN],
            cmd_status: status::OK,
            cmd_seq: 0,
            busy: false,
            irq_status: 0,
            irq_mask: 0x3,
            win_base: 0,
        }
    }

    /// HEARTBEAT: +1 every 10 ms while the firmware runs (READY, not hung).
    pub fn heartbeat(&self) -> u32 {
        match self.ready_at {
            Some(t) => self
                .hb_frozen
                .wrapping_add((t.elapsed().as_millis() / HEARTBEAT_PERIOD.as_millis()) as u32),
            None => self.hb_frozen,
        }
    }

    /// Firmware stops: heartbeat freezes, commands never complete.
    pub fn hang(&mut self) {
        self.hb_frozen = self.heartbeat();
        self.ready_at = None;
        self.hung = true;
    }

    /// Mailbox interrupt level: a status bit set and not masked.
    pub fn irq_pending(&self) -> bool {
        self.irq_status & !self.irq_mask & (IRQ_CMD_DONE | IRQ_DEVICE_MSG) != 0
    }
}

/// One command handed to the firmware thread (a snapshot of the slot).
pub struct FwJob {
    epoch: u64,
    opcode: u32,
    size: u32,
    msg: [u8; MSG_LEN],
    state: FwState,
}

/// What a command produced.
#[derive(Default)]
struct Outcome {
    status: u32,
    result: Option<Vec<u8>>,
    boot: Option<Result<Header, FailReason>>,
    /// BOOT rejected before starting: back to where we were.
    boot_revert: Option<FwState>,
}

impl Outcome {
    fn status(s: u32) -> Outcome {
        Outcome {
            status: s,
            ..Default::default()
        }
    }
}

pub fn spawn_worker(sh: Weak<Shared>) -> Sender<FwJob> {
    let (tx, rx) = channel::<FwJob>();
    std::thread::Builder::new()
        .name("firmware".into())
        .spawn(move || {
            for job in rx {
                let Some(sh) = sh.upgrade() else { break };
                execute(&sh, job);
            }
        })
        .expect("spawn firmware thread");
    tx
}

/// DOORBELL register write.
pub fn doorbell(sh: &Arc<Shared>, st: &mut State, v: u32) {
    if v != 1 {
        sh.obs.fault(
            Fault::MailboxBadDoorbell,
            format!("DOORBELL written with {v:#x} (expected 1)"),
        );
        return;
    }
    if st.fw.busy {
        sh.obs.fault(
            Fault::MailboxBusy,
            format!(
                "DOORBELL for {} while {} is still executing",
                op::name(st.fw.cmd_opcode),
                "the previous command"
            ),
        );
        return;
    }
    let opcode = st.fw.cmd_opcode;
    st.fw.busy = true;
    st.fw.cmd_status = status::BUSY;
    sh.obs
        .with(|c| *c.fw_commands.entry(op::name(opcode)).or_insert(0) += 1);
    if st.fw.hung {
        sh.obs.event(
            "fw",
            serde_json::json!({"what": "command swallowed by hung firmware", "op": op::name(opcode)}),
        );
        return;
    }
    let before = st.fw.state;
    if opcode == op::BOOT && matches!(before, FwState::Bootloader | FwState::Failed) {
        st.fw.state = FwState::Booting;
        st.fw.fail_reason = 0;
        st.fw.fw_version = 0;
        st.fw.fw_if_version = 0;
        sh.obs.event("boot", serde_json::json!({"what": "booting"}));
        if std::mem::take(&mut st.inj.fw_no_ready) {
            sh.obs
                .event("inject", serde_json::json!({"what": "fw-no-ready"}));
            return;
        }
    }
    let job = FwJob {
        epoch: sh.fw_epoch.load(Ordering::SeqCst),
        opcode,
        size: st.fw.cmd_size,
        msg: st.fw.cmd_msg,
        state: if opcode == op::BOOT {
            before
        } else {
            st.fw.state
        },
    };
    if let Some(tx) = sh.fw_tx.lock().unwrap().as_ref() {
        let _ = tx.send(job);
    }
}

fn u64_at(m: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(m[o..o + 8].try_into().unwrap())
}
fn u32_at(m: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(m[o..o + 4].try_into().unwrap())
}

fn execute(sh: &Arc<Shared>, job: FwJob) {
    let t0 = Instant::now();
    let live = || sh.fw_epoch.load(Ordering::SeqCst) == job.epoch;
    let mut work_bytes = 0u64;
    let out = match job.opcode {
        op::BOOT => boot(sh, &job),
        op::ECHO | op::CHECKSUM | op::FILL | op::RUN if job.state != FwState::Ready => {
            Outcome::status(status::NOT_READY)
        }
        op::ECHO => {
            if job.size as usize > MSG_LEN {
                Outcome::status(status::BAD_ARGS)
            } else {
                Outcome {
                    status: status::OK,
                    result: Some(job.msg[..job.size as usize].to_vec()),
                    ..Default::default()
                }
            }
        }
        op::CHECKSUM => {
            let (addr, len) = (u64_at(&job.msg, 0), u64_at(&job.msg, 8));
            if job.size < 16 || !sh.mem.contains(addr, len) {
                Outcome::status(status::BAD_ARGS)
            } else {
                work_bytes = len;
                match crc_range(sh, addr, len, &live) {
                    Some(crc) => ok_u32(crc),
                    None => return,
                }
            }
        }
        op::FILL => {
            let (addr, len, pat) = (
                u64_at(&job.msg, 0),
                u64_at(&job.msg, 8),
                u32_at(&job.msg, 16),
            );
            if job.size < 20 || !sh.mem.contains(addr, len) {
                Outcome::status(status::BAD_ARGS)
            } else {
                work_bytes = len;
                if !fill(sh, addr, len, pat, &live) {
                    return;
                }
                Outcome::status(status::OK)
            }
        }
        op::RUN => {
            let m = &job.msg;
            let (inp, outp, len, rop, key) = (
                u64_at(m, 0),
                u64_at(m, 8),
                u64_at(m, 16),
                u32_at(m, 24),
                u32_at(m, 28),
            );
            if job.size < 32 || rop > 3 || !sh.mem.contains(inp, len) || !sh.mem.contains(outp, len)
            {
                Outcome::status(status::BAD_ARGS)
            } else {
                work_bytes = 2 * len;
                if !run_op(sh, inp, outp, len, rop, key, &live) {
                    return;
                }
                match crc_range(sh, outp, len, &live) {
                    Some(crc) => ok_u32(crc),
                    None => return,
                }
            }
        }
        _ => Outcome::status(status::BAD_OPCODE),
    };
    let model = CMD_LATENCY + Duration::from_secs_f64(work_bytes as f64 / INTERNAL_BW);
    if let Some(rest) = model.checked_sub(t0.elapsed()) {
        std::thread::sleep(rest);
    }
    complete(sh, job.epoch, job.opcode, out);
}

fn ok_u32(v: u32) -> Outcome {
    Outcome {
        status: status::OK,
        result: Some(v.to_le_bytes().to_vec()),
        ..Default::default()
    }
}

fn boot(sh: &Shared, job: &FwJob) -> Outcome {
    if job.state == FwState::Ready || job.state == FwState::Booting || job.state == FwState::Off {
        // Already running (or not startable): a second BOOT fails, state kept.
        return Outcome::status(status::FAILED);
    }
    if job.size < 4 {
        return Outcome {
            status: status::BAD_ARGS,
            boot_revert: Some(job.state),
            ..Default::default()
        };
    }
    std::thread::sleep(BOOT_TIME);
    let image_size = u32_at(&job.msg, 0) as u64;
    let policy = BootPolicy {
        max_size: FW_MAX_SIZE,
        load_addr: FW_LOAD_ADDR,
        if_major: IF_MAJOR,
    };
    let n = image_size
        .min(FW_MAX_SIZE)
        .min(sh.mem.size() - FW_LOAD_ADDR);
    let mut img = vec![0u8; n as usize];
    sh.mem.read(FW_LOAD_ADDR, &mut img);
    let r = fwimage::validate(&img, image_size, &policy);
    Outcome {
        status: if r.is_ok() {
            status::OK
        } else {
            status::FAILED
        },
        boot: Some(r),
        ..Default::default()
    }
}

/// Chunk for firmware memory work: bounds how long a reset waits.
const FW_CHUNK: u64 = 1 << 20;

fn crc_range(sh: &Shared, addr: u64, len: u64, live: &dyn Fn() -> bool) -> Option<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; FW_CHUNK.min(len) as usize];
    let mut done = 0;
    while done < len {
        if !live() {
            return None;
        }
        let n = FW_CHUNK.min(len - done) as usize;
        sh.mem.read(addr + done, &mut buf[..n]);
        h.update(&buf[..n]);
        done += n as u64;
    }
    Some(h.finalize())
}

fn fill(sh: &Shared, addr: u64, len: u64, pat: u32, live: &dyn Fn() -> bool) -> bool {
    let pb = pat.to_le_bytes();
    let chunk: Vec<u8> = (0..FW_CHUNK.min(len) as usize).map(|i| pb[i % 4]).collect();
    let mut done = 0;
    while done < len {
        let n = FW_CHUNK.min(len - done) as usize;
        let _g = sh.gate.read().unwrap();
        if !live() {
            return false;
        }
        // chunk starts at a multiple of 4 bytes from addr, so the pattern phase holds
        sh.mem.write(addr + done, &chunk[..n]);
        done += n as u64;
    }
    true
}

/// RUN transform, byte i of the range (absolute index from the start).
fn transform(op: u32, key: u32, i: u64, b: u8) -> u8 {
    match op {
        0 => b,
        1 => !b,
        2 => b ^ key as u8,
        _ => b.wrapping_add((key as u64).wrapping_add(i) as u8),
    }
}

fn run_op(
    sh: &Shared,
    inp: u64,
    outp: u64,
    len: u64,
    op: u32,
    key: u32,
    live: &dyn Fn() -> bool,
) -> bool {
    let mut buf = vec![0u8; FW_CHUNK.min(len) as usize];
    // Overlap with output after input: process from the end (memmove rule).
    let backwards = outp > inp && outp < inp + len;
    let nchunks = len.div_ceil(FW_CHUNK);
    for k in 0..nchunks {
        let idx = if backwards { nchunks - 1 - k } else { k };
        let start = idx * FW_CHUNK;
        let n = FW_CHUNK.min(len - start) as usize;
        let _g = sh.gate.read().unwrap();
        if !live() {
            return false;
        }
        sh.mem.read(inp + start, &mut buf[..n]);
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = transform(op, key, start + j as u64, *b);
        }
        sh.mem.write(outp + start, &buf[..n]);
    }
    true
}

fn complete(sh: &Arc<Shared>, epoch: u64, opcode: u32, out: Outcome) {
    let mut st = sh.st.lock().unwrap();
    if sh.fw_epoch.load(Ordering::SeqCst) != epoch || st.fw.hung {
        return;
    }
    if let Some(prev) = out.boot_revert {
        st.fw.state = prev;
    }
    if let Some(b) = out.boot {
        match b {
            Ok(h) => {
                st.fw.state = FwState::Ready;
                st.fw.fw_version = h.fw_version_reg();
                st.fw.fw_if_version = h.if_version_reg();
                st.fw.hb_frozen = 0;
                st.fw.ready_at = Some(Instant::now());
                sh.obs.event(
                    "boot",
                    serde_json::json!({"what": "ready", "fw_version": format!("{}.{}.{}", h.fw_major, h.fw_minor, h.fw_patch), "if_version": format!("{}.{}", h.if_major, h.if_minor)}),
                );
            }
            Err(r) => {
                st.fw.state = FwState::Failed;
                st.fw.fail_reason = r as u32;
                sh.obs.event(
                    "boot",
                    serde_json::json!({"what": "failed", "reason": r as u32, "reason_name": format!("{r:?}")}),
                );
            }
        }
    }
    if let Some(r) = out.result {
        st.fw.cmd_msg[..r.len()].copy_from_slice(&r);
    }
    st.fw.cmd_status = out.status;
    st.fw.cmd_seq = st.fw.cmd_seq.wrapping_add(1);
    st.fw.busy = false;
    sh.obs.event(
        "fw_cmd",
        serde_json::json!({"op": op::name(opcode), "status": out.status, "seq": st.fw.cmd_seq}),
    );
    raise_fw_irq(sh, &mut st, IRQ_CMD_DONE);
}

/// Latches FW_IRQ_STATUS bits and signals them if unmasked.
pub fn raise_fw_irq(sh: &Arc<Shared>, st: &mut State, bits: u32) {
    st.fw.irq_status |= bits;
    signal_unmasked(sh, st, bits);
    irq::update_intx(sh, st);
}

/// Sends the message interrupt for each of `bits` that is set and unmasked.
pub fn signal_unmasked(sh: &Arc<Shared>, st: &mut State, bits: u32) {
    let live = bits & st.fw.irq_status & !st.fw.irq_mask;
    if live & IRQ_CMD_DONE != 0 {
        irq::raise_internal(sh, st, irq::VEC_MAILBOX, "mailbox");
    }
    if live & IRQ_DEVICE_MSG != 0 {
        irq::raise_internal(sh, st, irq::VEC_DEVICE_MSG, "device-msg");
    }
}
