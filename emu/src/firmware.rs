//! Card firmware model: the worker that executes commands from the slot
//! (docs/hw-interface.md "Commands", "Boot"): image validation for BOOT,
//! ECHO / CHECKSUM / FILL / RUN on device memory.
//!
//! Commands run on one firmware thread, so the host sees a real
//! asynchronous completion; `boot.rs` owns the slot and the answers.

use crate::boot::{self, op, status, FwState, BOOT_TIME, FW_LOAD_ADDR, FW_MAX_SIZE, IF_MAJOR};
use crate::device::Shared;
use crate::devmem::DDR_BASE;
use crate::fw_image::{self, BootPolicy, FailReason, Header};
use crate::iface::CMD_MSG_LEN;
use crate::vmsi;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Fixed command latency and device-internal memory bandwidth for the
/// modelled duration of CHECKSUM / FILL / RUN.
pub const CMD_LATENCY: Duration = Duration::from_micros(20);
pub const INTERNAL_BW: f64 = 8e9;

/// One command handed to the firmware thread (a snapshot of the slot).
pub struct FwJob {
    pub epoch: u64,
    pub opcode: u32,
    pub size: u32,
    pub msg: [u8; CMD_MSG_LEN],
    /// Firmware state when the command was written.
    pub state: FwState,
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

/// Queues a command for the firmware thread.
pub fn submit(sh: &Shared, job: FwJob) {
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
            if job.size as usize > CMD_MSG_LEN {
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
    let ddr_end = DDR_BASE + sh.opts.mem_size;
    let n = image_size.min(FW_MAX_SIZE).min(ddr_end - FW_LOAD_ADDR);
    let mut img = vec![0u8; n as usize];
    sh.mem.read(FW_LOAD_ADDR, &mut img);
    let r = fw_image::validate(&img, image_size, &policy);
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
        if pat == 0 {
            sh.mem.zero(addr + done, n as u64);
        } else {
            // chunk starts at a multiple of 4 bytes from addr, so the pattern phase holds
            sh.mem.write(addr + done, &chunk[..n]);
        }
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
    // The bootloader signals BOOT's answer through the registration it holds; the
    // firmware it starts begins with its own interface structure, registration cleared.
    let held = (opcode == op::BOOT).then(|| vmsi::Registration::read(sh));
    if let Some(prev) = out.boot_revert {
        boot::boot_reverted(sh, &mut st, prev);
    }
    if let Some(b) = out.boot {
        boot::boot_finished(sh, &mut st, b);
    }
    boot::answer(sh, &mut st, opcode, out.status, out.result.as_deref());
    if let Some(reg) = held {
        vmsi::signal_through(sh, &mut st, reg, vmsi::SRC_COMMAND, "boot.answer");
    }
}
