//! Model parts of the firmware interface (docs/hw-interface.md "Boot block",
//! "Commands"): the boot block the bootloader keeps in its MCUboot area at
//! BAR2 0x400, the firmware state machine behind it, and the command
//! protocol in the known command slot at BAR2 0xb0.
//!
//! The slot is plain L2 memory: the host writes msg, size and then the
//! opcode; the card notices the opcode store, snapshots the slot and hands
//! the command to the firmware worker (`firmware.rs`), which answers through
//! `answer` with the results in msg, then `opcode = 0x8000_0000 | status`,
//! then (all but BOOT) virtual-MSI source 12.

use crate::device::{Shared, State};
use crate::devmem::DDR_BASE;
use crate::faults::Fault;
use crate::firmware::{self, FwJob};
use crate::fw_image::{self, FailReason, Header};
use crate::iface::{self, CMD_MSG, CMD_MSG_LEN, CMD_OPCODE, CMD_SIZE};
use crate::vmsi;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Boot block fields (BAR2 offsets).
pub mod off {
    pub const MAGIC: u64 = 0x400;
    pub const PROTO: u64 = 0x404;
    pub const STATE: u64 = 0x408;
    pub const FAIL_REASON: u64 = 0x40c;
    pub const FW_MAX_SIZE: u64 = 0x410;
    pub const IF_VERSION_SUPPORTED: u64 = 0x414;
    pub const HEARTBEAT: u64 = 0x418;
    pub const FW_VERSION: u64 = 0x41c;
    pub const FW_IF_VERSION: u64 = 0x420;
    pub const DDR_SIZE: u64 = 0x428;
    pub const USER_MEM_BASE: u64 = 0x430;
    pub const END: u64 = 0x438;
}

pub const BOOT_MAGIC: u32 = 0x5042_544D; // "MTBP"
pub const BOOT_PROTO: u32 = 1;
pub const FW_LOAD_ADDR: u64 = fw_image::DEFAULT_LOAD_ADDR;
pub const FW_MAX_SIZE: u64 = fw_image::DEFAULT_MAX_SIZE;
const _: () = assert!(FW_LOAD_ADDR == DDR_BASE + (16 << 20));
pub const USER_MEM_BASE: u64 = DDR_BASE + (32 << 20);
/// Interface major the bootloader boots.
pub const IF_MAJOR: u16 = 1;
/// Time from BOOT to READY/FAILED (contract: within 50 ms).
pub const BOOT_TIME: Duration = Duration::from_millis(20);
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(10);
/// Set in the opcode word when the card has answered.
pub const ANSWERED: u32 = 0x8000_0000;

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

/// Firmware state as the card keeps it (the boot block is its published copy).
#[derive(Clone, Debug)]
pub struct Fw {
    pub state: FwState,
    pub fail_reason: u32,
    pub fw_version: u32,
    pub fw_if_version: u32,
    hb_frozen: u32,
    ready_at: Option<Instant>,
    pub hung: bool,
    /// A command is executing (its answer is not written yet).
    pub busy: bool,
    /// Commands answered since reset.
    pub answered: u32,
}

impl Default for Fw {
    fn default() -> Self {
        Self::new()
    }
}

impl Fw {
    /// State after reset: bootloader waiting for an image.
    pub fn new() -> Fw {
        Fw {
            state: FwState::Bootloader,
            fail_reason: 0,
            fw_version: 0,
            fw_if_version: 0,
            hb_frozen: 0,
            ready_at: None,
            hung: false,
            busy: false,
            answered: 0,
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
}

/// Writes the whole boot block from the firmware state (nothing with
/// `--no-boot-protocol`: the block then stays zero, as far as the host can
/// tell a bootloader that does not speak our protocol).
pub fn publish_block(sh: &Shared, st: &State) {
    if !sh.opts.boot_protocol {
        return;
    }
    let fw = &st.fw;
    let words: [(u64, u32); 9] = [
        (off::MAGIC, BOOT_MAGIC),
        (off::PROTO, BOOT_PROTO),
        (off::STATE, fw.state as u32),
        (off::FAIL_REASON, fw.fail_reason),
        (off::FW_MAX_SIZE, FW_MAX_SIZE as u32),
        (off::IF_VERSION_SUPPORTED, (IF_MAJOR as u32) << 16),
        (off::HEARTBEAT, fw.heartbeat()),
        (off::FW_VERSION, fw.fw_version),
        (off::FW_IF_VERSION, fw.fw_if_version),
    ];
    for (off, v) in words {
        iface::put_u32(sh, off, v);
    }
    iface::put_u64(sh, off::DDR_SIZE, sh.opts.mem_size);
    let user_mem_base = if st.inj.bad_mem_base {
        FW_LOAD_ADDR
    } else {
        USER_MEM_BASE
    };
    iface::put_u64(sh, off::USER_MEM_BASE, user_mem_base);
}

/// The running firmware's periodic HEARTBEAT store.
pub fn refresh_heartbeat(sh: &Shared, st: &State) {
    if sh.opts.boot_protocol && st.fw.state == FwState::Ready {
        iface::put_u32(sh, off::HEARTBEAT, st.fw.heartbeat());
    }
}

/// The bootloader starting after a card reset (memory already zero).
pub fn bootloader_start(sh: &Shared, st: &mut State, why: &str) {
    st.fw = Fw::new();
    iface::publish(sh, st, why);
    publish_block(sh, st);
}

/// The host stored `opcode` into the slot's opcode word.
pub fn slot_written(sh: &Arc<Shared>, st: &mut State, opcode: u32) {
    // The card's own answers and a host clearing the slot are not commands.
    if opcode == 0 || opcode & ANSWERED != 0 {
        return;
    }
    if st.fw.busy {
        sh.obs.fault(
            Fault::MailboxBusy,
            format!(
                "{} written to the command slot while a command is executing",
                op::name(opcode)
            ),
        );
        // Answered at once; the running command's answer follows later.
        write_answer(sh, st, status::BUSY, None);
        if opcode != op::BOOT {
            vmsi::signal(sh, st, vmsi::SRC_COMMAND, "fw.cmd");
        }
        return;
    }
    st.fw.busy = true;
    sh.obs
        .with(|c| *c.fw_commands.entry(op::name(opcode)).or_insert(0) += 1);
    if st.fw.hung {
        sh.obs.event(
            "fw",
            json!({"what": "command swallowed by hung firmware", "op": op::name(opcode)}),
        );
        return;
    }
    let size = iface::get_u32(sh, CMD_SIZE);
    let mut msg = [0u8; CMD_MSG_LEN];
    iface::get(sh, CMD_MSG, &mut msg);
    let before = st.fw.state;
    if opcode == op::BOOT && matches!(before, FwState::Bootloader | FwState::Failed) {
        st.fw.state = FwState::Booting;
        st.fw.fail_reason = 0;
        st.fw.fw_version = 0;
        st.fw.fw_if_version = 0;
        publish_block(sh, st);
        sh.obs.event("boot", json!({"what": "booting"}));
        if std::mem::take(&mut st.inj.fw_no_ready) {
            sh.obs.event("inject", json!({"what": "fw-no-ready"}));
            return;
        }
    }
    firmware::submit(
        sh,
        FwJob {
            epoch: sh.fw_epoch.load(Ordering::SeqCst),
            opcode,
            size,
            msg,
            state: before,
        },
    );
}

/// Stands in for the vendor runtime, which uploads and boots its firmware
/// through its own mapping of the card (closed source): the default image
/// goes to `fw_load_addr` and BOOT is posted in the command slot, as the
/// host would. False unless the card waits in its bootloader.
pub fn runtime_boot(sh: &Arc<Shared>, st: &mut State) -> bool {
    if !matches!(st.fw.state, FwState::Bootloader | FwState::Failed) {
        return false;
    }
    let image = fw_image::build(&fw_image::BuildSpec::default());
    let Ok(len) = u32::try_from(image.len()) else {
        return false;
    };
    if !sh.mem.write(FW_LOAD_ADDR, &image) {
        return false;
    }
    sh.obs
        .event("boot", json!({"what": "runtime upload", "bytes": len}));
    iface::put(sh, CMD_MSG, &len.to_le_bytes());
    iface::put_u32(sh, CMD_SIZE, 4);
    iface::put_u32(sh, CMD_OPCODE, op::BOOT);
    slot_written(sh, st, op::BOOT);
    true
}

/// BOOT finished: the new firmware re-initialises the interface structure
/// (virtual-MSI registration cleared) and publishes its versions; or the
/// bootloader reports why it refused the image.
pub fn boot_finished(sh: &Shared, st: &mut State, r: Result<Header, FailReason>) {
    match r {
        Ok(h) => {
            st.fw.state = FwState::Ready;
            st.fw.fw_version = h.fw_version_reg();
            st.fw.fw_if_version = h.if_version_reg();
            st.fw.hb_frozen = 0;
            st.fw.ready_at = Some(Instant::now());
            iface::publish(sh, st, "boot");
            sh.obs.event(
                "boot",
                json!({"what": "ready", "fw_version": format!("{}.{}.{}", h.fw_major, h.fw_minor, h.fw_patch), "if_version": format!("{}.{}", h.if_major, h.if_minor)}),
            );
        }
        Err(r) => {
            st.fw.state = FwState::Failed;
            st.fw.fail_reason = r as u32;
            sh.obs.event(
                "boot",
                json!({"what": "failed", "reason": r as u32, "reason_name": format!("{r:?}")}),
            );
        }
    }
    publish_block(sh, st);
}

/// Puts a BOOT that could not start back where it was.
pub fn boot_reverted(sh: &Shared, st: &mut State, prev: FwState) {
    st.fw.state = prev;
    publish_block(sh, st);
}

fn write_answer(sh: &Shared, st: &mut State, status: u32, result: Option<&[u8]>) {
    if let Some(r) = result {
        iface::put(sh, CMD_MSG, r);
    }
    iface::put_u32(sh, CMD_OPCODE, ANSWERED | status);
    st.fw.answered = st.fw.answered.wrapping_add(1);
}

/// Completes a command: results, then the answered opcode word, then the
/// completion signal. BOOT's signal comes from `firmware::complete`, through the
/// registration the bootloader held when the command came (the new firmware
/// starts without one).
pub fn answer(sh: &Arc<Shared>, st: &mut State, opcode: u32, status: u32, result: Option<&[u8]>) {
    write_answer(sh, st, status, result);
    st.fw.busy = false;
    sh.obs.event(
        "fw_cmd",
        json!({"op": op::name(opcode), "status": status, "answered": st.fw.answered}),
    );
    if opcode != op::BOOT {
        vmsi::signal(sh, st, vmsi::SRC_COMMAND, "fw.cmd");
    }
}
