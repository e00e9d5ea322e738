//! Virtual MSI (known mechanism, VF §3.3): a firmware source sets its word
//! in the host's table (`table[id] |= 1`, a DMA read and write at
//! `target + 4·id` from the host-driver area in L2) and then raises MSI
//! vector `id`. The host's handler scans the table and clears the words.
//!
//! With MSI and MSI-X off the words drive INTx (model): the line stays up
//! while a word the card set still reads non-zero. The card cannot see the
//! host clear a word, so it re-reads them when the host unmasks INTx, clears
//! an eDMA interrupt, and every 10 ms (`recheck`).

use crate::device::{Shared, State};
use crate::faults::Fault;
use crate::iface::{self, HOST_DRV_CTRL, HOST_DRV_TABLE_SIZE, HOST_DRV_TARGET};
use crate::irq;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vm_memory::Le32;

/// Firmware sources (= their vectors in the known map).
pub const SRC_COMMAND: u32 = 12;
pub const SRC_DEVICE_MSG: u32 = 24;

/// Words the card set and has not yet seen cleared: source id -> host address.
#[derive(Clone, Debug, Default)]
pub struct Vmsi {
    pub set: BTreeMap<u32, u64>,
}

impl Vmsi {
    /// The INTx contribution of the table.
    pub fn level(&self) -> bool {
        !self.set.is_empty()
    }
}

/// The host-driver area as the host left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    pub ctrl: u32,
    pub target: u64,
    pub size: u32,
}

impl Registration {
    pub fn read(sh: &Shared) -> Registration {
        Registration {
            ctrl: iface::get_u32(sh, HOST_DRV_CTRL),
            target: iface::get_u64(sh, HOST_DRV_TARGET),
            size: iface::get_u32(sh, HOST_DRV_TABLE_SIZE),
        }
    }

    /// Host address of source `id`'s word, if the registration covers it.
    pub fn word(&self, id: u32) -> Option<u64> {
        let usable = self.ctrl == 1 && self.target != 0 && self.size as u64 >= 4 * (id as u64 + 1);
        usable.then(|| self.target.wrapping_add(4 * id as u64))
    }
}

/// Firmware source `id` fires.
pub fn signal(sh: &Arc<Shared>, st: &mut State, id: u32, source: &str) {
    signal_through(sh, st, Registration::read(sh), id, source);
}

/// Source `id` fires through `reg`, the registration the signalling side holds (a
/// bootloader answering BOOT uses the one it had, not the one its successor starts with).
pub fn signal_through(sh: &Arc<Shared>, st: &mut State, reg: Registration, id: u32, source: &str) {
    let Some(addr) = reg.word(id) else {
        sh.obs.fault(
            Fault::VmsiUnregistered,
            format!(
                "{source}: source {id} fired with hdrv ctrl {} target {:#x} size {}: nothing raised",
                reg.ctrl, reg.target, reg.size
            ),
        );
        sh.obs.event(
            "vmsi_unregistered",
            json!({"id": id, "source": source, "ctrl": reg.ctrl,
                   "target": format!("{:#x}", reg.target), "size": reg.size}),
        );
        return;
    };
    if !sh.bme.load(Ordering::SeqCst) {
        sh.obs.fault(
            Fault::DmaNoBusMaster,
            format!("{source}: vMSI word {id} at {addr:#x} with Bus Master Enable clear"),
        );
        return;
    }
    let r = sh
        .guest
        .read_obj::<Le32>(addr)
        .and_then(|old| sh.guest.write_obj(addr, Le32::from(u32::from(old) | 1)));
    if let Err(e) = r {
        sh.obs.fault(
            Fault::of_dma(&e),
            format!("{source}: vMSI word {id}: {e}; nothing raised"),
        );
        return;
    }
    sh.obs.with(|c| c.vmsi_writes += 1);
    sh.obs.event(
        "vmsi_write",
        json!({"id": id, "source": source, "addr": format!("{addr:#x}")}),
    );
    st.vmsi.set.insert(id, addr);
    irq::raise_internal(sh, st, id, source);
    irq::update_intx(sh, st);
}

/// Re-reads the words the card set and forgets those the host cleared.
/// A word whose registration was withdrawn or moved, or that can no longer
/// be read, is forgotten too: the card only ever looks at the table the host
/// currently registers.
pub fn recheck(sh: &Shared, st: &mut State) {
    if st.vmsi.set.is_empty() || !sh.bme.load(Ordering::SeqCst) {
        return;
    }
    let reg = Registration::read(sh);
    st.vmsi.set.retain(|&id, addr| {
        if reg.word(id) != Some(*addr) {
            return false;
        }
        sh.guest
            .read_obj::<Le32>(*addr)
            .is_ok_and(|w| u32::from(w) != 0)
    });
}
