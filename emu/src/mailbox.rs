//! BAR0 interface area of the Metis identity (docs/hw-interface.md "BAR0
//! interface area"): read-only identification, the command slot, firmware
//! versions, interrupt status/mask, RESET and the BAR2 window base. With
//! `--msix` the MSI-X table and PBA live in the free 0x800..0xeff gap.

use crate::device::{self, ResetKind, Shared, State};
use crate::faults::Fault;
use crate::firmware::{self, *};
use crate::irq;
use std::sync::Arc;

pub const R_MAGIC: u32 = 0x000;
pub const R_IF_LAYOUT: u32 = 0x004;
pub const R_IF_BASE_LO: u32 = 0x008;
pub const R_IF_BASE_HI: u32 = 0x00c;
pub const R_IF_SIZE: u32 = 0x010;
pub const R_STATE: u32 = 0x014;
pub const R_FAIL_REASON: u32 = 0x018;
pub const R_FW_LOAD_ADDR_LO: u32 = 0x01c;
pub const R_FW_LOAD_ADDR_HI: u32 = 0x020;
pub const R_FW_MAX_SIZE: u32 = 0x024;
pub const R_MEM_SIZE_LO: u32 = 0x028;
pub const R_MEM_SIZE_HI: u32 = 0x02c;
pub const R_HEARTBEAT: u32 = 0x030;
pub const R_IF_VERSION_SUPPORTED: u32 = 0x034;
pub const R_USER_MEM_BASE_LO: u32 = 0x038;
pub const R_USER_MEM_BASE_HI: u32 = 0x03c;
pub const R_CMD_OPCODE: u32 = 0x0b0;
pub const R_CMD_SIZE: u32 = 0x0b4;
pub const R_CMD_MSG: u32 = 0x0b8;
pub const R_CMD_MSG_END: u32 = 0x1b8;
pub const R_CMD_STATUS: u32 = 0x1b8;
pub const R_CMD_SEQ: u32 = 0x1bc;
pub const R_FW_VERSION: u32 = 0x200;
pub const R_FW_IF_VERSION: u32 = 0x204;
pub const R_BOOT_SHARED: u32 = 0x400;
pub const R_BOOT_SHARED_END: u32 = 0x800;
pub const R_DOORBELL: u32 = 0xf00;
pub const R_FW_IRQ_STATUS: u32 = 0xf04;
pub const R_FW_IRQ_MASK: u32 = 0xf08;
pub const R_RESET: u32 = 0xf0c;
pub const R_WIN_BASE_LO: u32 = 0xf10;
pub const R_WIN_BASE_HI: u32 = 0xf14;

pub fn name(off: u32) -> String {
    let s = match off {
        R_MAGIC => "MAGIC",
        R_IF_LAYOUT => "IF_LAYOUT",
        R_IF_BASE_LO => "IF_BASE_LO",
        R_IF_BASE_HI => "IF_BASE_HI",
        R_IF_SIZE => "IF_SIZE",
        R_STATE => "STATE",
        R_FAIL_REASON => "FAIL_REASON",
        R_FW_LOAD_ADDR_LO => "FW_LOAD_ADDR_LO",
        R_FW_LOAD_ADDR_HI => "FW_LOAD_ADDR_HI",
        R_FW_MAX_SIZE => "FW_MAX_SIZE",
        R_MEM_SIZE_LO => "MEM_SIZE_LO",
        R_MEM_SIZE_HI => "MEM_SIZE_HI",
        R_HEARTBEAT => "HEARTBEAT",
        R_IF_VERSION_SUPPORTED => "IF_VERSION_SUPPORTED",
        R_USER_MEM_BASE_LO => "USER_MEM_BASE_LO",
        R_USER_MEM_BASE_HI => "USER_MEM_BASE_HI",
        R_CMD_OPCODE => "CMD_OPCODE",
        R_CMD_SIZE => "CMD_SIZE",
        R_CMD_MSG..R_CMD_MSG_END => "CMD_MSG",
        R_CMD_STATUS => "CMD_STATUS",
        R_CMD_SEQ => "CMD_SEQ",
        R_FW_VERSION => "FW_VERSION",
        R_FW_IF_VERSION => "FW_IF_VERSION",
        R_BOOT_SHARED..R_BOOT_SHARED_END => "BOOT_SHARED",
        R_DOORBELL => "DOORBELL",
        R_FW_IRQ_STATUS => "FW_IRQ_STATUS",
        R_FW_IRQ_MASK => "FW_IRQ_MASK",
        R_RESET => "RESET",
        R_WIN_BASE_LO => "WIN_BASE_LO",
        R_WIN_BASE_HI => "WIN_BASE_HI",
        _ => "unused",
    };
    format!("bar0.{s}")
}

/// Where the MSI-X table and PBA sit in this BAR (None without MSI-X).
pub fn msix_loc(st: &State, off: u32) -> Option<MsixReg> {
    let l = st.cfg.layout;
    if l.msix_vectors == 0 {
        return None;
    }
    let tend = l.msix_table + 16 * l.msix_vectors;
    if (l.msix_table..tend).contains(&off) {
        let rel = off - l.msix_table;
        return Some(MsixReg::Table(
            (rel / 16) as usize,
            ((rel % 16) / 4) as usize,
        ));
    }
    if (l.msix_pba..l.msix_pba + 8).contains(&off) {
        return Some(MsixReg::Pba(((off - l.msix_pba) / 4) as usize));
    }
    None
}

pub enum MsixReg {
    Table(usize, usize),
    Pba(usize),
}

pub fn msix_read(st: &State, r: MsixReg) -> u32 {
    match r {
        MsixReg::Table(v, w) => st.irq.msix_table[v][w],
        MsixReg::Pba(w) => (st.irq.msix_pending >> (32 * w)) as u32,
    }
}

pub fn msix_write(sh: &Arc<Shared>, st: &mut State, r: MsixReg, v: u32) {
    if let MsixReg::Table(n, w) = r {
        st.irq.msix_table[n][w] = if w == 3 { v & 1 } else { v };
        st.irq.msix_table_written = true;
        if w == 3 {
            irq::msix_mask_changed(sh, st);
        }
    }
}

pub fn read(sh: &Shared, st: &State, off: u32) -> u32 {
    if let Some(r) = msix_loc(st, off) {
        return msix_read(st, r);
    }
    let fw = &st.fw;
    let mem = sh.mem.size();
    match off {
        R_MAGIC => MAGIC,
        R_IF_LAYOUT => IF_LAYOUT,
        R_IF_BASE_LO => IF_BASE as u32,
        R_IF_BASE_HI => (IF_BASE >> 32) as u32,
        R_IF_SIZE => IF_SIZE,
        R_STATE => fw.state as u32,
        R_FAIL_REASON => fw.fail_reason,
        R_FW_LOAD_ADDR_LO => FW_LOAD_ADDR as u32,
        R_FW_LOAD_ADDR_HI => (FW_LOAD_ADDR >> 32) as u32,
        R_FW_MAX_SIZE => FW_MAX_SIZE as u32,
        R_MEM_SIZE_LO => mem as u32,
        R_MEM_SIZE_HI => (mem >> 32) as u32,
        R_HEARTBEAT => fw.heartbeat(),
        R_IF_VERSION_SUPPORTED => (IF_MAJOR as u32) << 16,
        R_USER_MEM_BASE_LO => USER_MEM_BASE as u32,
        R_USER_MEM_BASE_HI => (USER_MEM_BASE >> 32) as u32,
        R_CMD_OPCODE => fw.cmd_opcode,
        R_CMD_SIZE => fw.cmd_size,
        R_CMD_MSG..R_CMD_MSG_END => {
            let i = (off - R_CMD_MSG) as usize;
            u32::from_le_bytes(fw.cmd_msg[i..i + 4].try_into().unwrap())
        }
        R_CMD_STATUS => fw.cmd_status,
        R_CMD_SEQ => fw.cmd_seq,
        R_FW_VERSION => fw.fw_version,
        R_FW_IF_VERSION => fw.fw_if_version,
        R_FW_IRQ_STATUS => fw.irq_status,
        R_FW_IRQ_MASK => fw.irq_mask,
        R_WIN_BASE_LO => fw.win_base as u32,
        R_WIN_BASE_HI => (fw.win_base >> 32) as u32,
        // DOORBELL, RESET (write-only), bootloader area, unused: 0
        _ => 0,
    }
}

fn is_read_only(off: u32) -> bool {
    matches!(
        off,
        0x000..=0x03c | R_CMD_STATUS | R_CMD_SEQ | R_FW_VERSION | R_FW_IF_VERSION
    ) || (R_BOOT_SHARED..R_BOOT_SHARED_END).contains(&off)
}

pub fn write(sh: &Arc<Shared>, st: &mut State, off: u32, v: u32) {
    if let Some(r) = msix_loc(st, off) {
        return msix_write(sh, st, r, v);
    }
    if is_read_only(off) {
        sh.obs.fault(
            Fault::RegReadOnly,
            format!("write {v:#x} to read-only {}", name(off)),
        );
        return;
    }
    match off {
        R_CMD_OPCODE => st.fw.cmd_opcode = v,
        R_CMD_SIZE => st.fw.cmd_size = v,
        R_CMD_MSG..R_CMD_MSG_END => {
            let i = (off - R_CMD_MSG) as usize;
            st.fw.cmd_msg[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        R_DOORBELL => firmware::doorbell(sh, st, v),
        R_FW_IRQ_STATUS => {
            st.fw.irq_status &= !v;
            irq::update_intx(sh, st);
        }
        R_FW_IRQ_MASK => {
            let newly_unmasked = st.fw.irq_mask & !v;
            st.fw.irq_mask = v & (IRQ_CMD_DONE | IRQ_DEVICE_MSG);
            // Edge for message interrupts: a pending bit that becomes
            // unmasked is signalled now.
            firmware::signal_unmasked(sh, st, newly_unmasked);
            irq::update_intx(sh, st);
        }
        R_RESET => {
            if v == RESET_KEY {
                device::reset_card(sh, st, ResetKind::Register);
            } else {
                sh.obs.fault(
                    Fault::ResetBadKey,
                    format!("RESET written with {v:#x}, expected {RESET_KEY:#x} (\"RSET\")"),
                );
            }
        }
        R_WIN_BASE_LO => {
            if v & 0xfff != 0 {
                sh.obs.fault(
                    Fault::WinBaseInvalid,
                    format!("WIN_BASE_LO {v:#x} is not 4 KiB aligned; ignored"),
                );
            } else {
                st.fw.win_base = (st.fw.win_base & !0xffff_ffff) | v as u64;
            }
        }
        R_WIN_BASE_HI => st.fw.win_base = (st.fw.win_base & 0xffff_ffff) | (v as u64) << 32,
        _ => {}
    }
}
