//! The interface structure at BAR2 0x000 (known layout: VF §3.5,
//! `device_sys_ctl_t`) and the areas it references, as the card's bootloader
//! writes them after every reset and the new firmware again after a
//! successful BOOT. Offsets here are BAR2 offsets; the card writes them into
//! L2 at `L2_BASE + offset`, where the host reads them through BAR2 like any
//! other L2 memory. Placements and sizes of the areas are model values.

use crate::boot;
use crate::device::{Shared, State};
use crate::devmem::{DDR_BASE, L2_BASE};
use crate::options::IfLayout;
use serde_json::json;

/// 1.6.2 header: u16 magic, 6 reserved, u64 base, u64 size.
pub const HDIF_MAGIC: u16 = 0xFD1F;
pub const HDR_BASE: u64 = 0x008;
pub const HDR_SIZE: u64 = 0x010;
/// Size of the interface region the 1.6.2 header announces (model).
pub const IF_REGION_SIZE: u64 = 0x10000;
/// End of the part the two layouts differ in.
pub const HDR_END: u64 = 0x0b0;

/// Command slot: u32 opcode, u32 size, u8 msg[256].
pub const CMD_OPCODE: u64 = 0x0b0;
pub const CMD_SIZE: u64 = 0x0b4;
pub const CMD_MSG: u64 = 0x0b8;
pub const CMD_MSG_LEN: usize = 256;
pub const CMD_END: u64 = CMD_MSG + CMD_MSG_LEN as u64;

/// u8 major, u8 minor of the running firmware.
pub const MASTER_VERSION: u64 = 0x200;
/// u64 device base of memory area 0 (DDR) and 1.
pub const MEMORY_MAP: u64 = 0x208;
/// u32 0xC1A0C1A0 when the firmware offers DMA-VM (1.6.2 only; never here).
pub const DMA_VM: u64 = 0x218;
pub const FW_LOAD_ADDR: u64 = 0x238;
/// Eight 24-byte `memory_reference_t`.
pub const AREA_REFS: u64 = 0x240;
pub const AREA_REF_SIZE: u64 = 24;
/// Bootloader (MCUboot) shared area, the model boot block's home.
pub const BOOT_AREA: u64 = 0x400;
/// End of the static part; published areas lie past it.
pub const STATIC_END: u64 = 0x800;

/// Index of each reference in the table at AREA_REFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Datastream = 0,
    BoardInfo = 1,
    AxeMsg = 2,
    Ctx = 3,
    Virt = 4,
    HostDrv = 5,
    DmaDesc = 6,
    Vmsi = 7,
}

/// Host-driver area: ctrl u32 @0, base u32 @4, target u64 @8, size u32 @16.
pub const HOST_DRV_MAGIC: u16 = 0xBAC1;
pub const HOST_DRV_OFF: u64 = 0x800;
pub const HOST_DRV_SIZE: u32 = 24;
pub const HOST_DRV_CTRL: u64 = HOST_DRV_OFF;
pub const HOST_DRV_TARGET: u64 = HOST_DRV_OFF + 8;
pub const HOST_DRV_TABLE_SIZE: u64 = HOST_DRV_OFF + 16;

/// Virtual-MSI config: u16 num_vmsi, u16 num_pmsi, 8-byte info per vMSI,
/// then vmsi_to_pmsi[num_vmsi].
pub const VMSI_MAGIC: u16 = 0xB5B5;
pub const VMSI_OFF: u64 = 0x900;
pub const NUM_VMSI: u16 = 32;
pub const NUM_PMSI: u16 = 32;
pub const VMSI_INFO: u64 = VMSI_OFF + 4;
pub const VMSI_INFO_SIZE: u64 = 8;
pub const VMSI_TO_PMSI: u64 = VMSI_INFO + NUM_VMSI as u64 * VMSI_INFO_SIZE;
pub const VMSI_SIZE: u32 = 4 + NUM_VMSI as u32 * 8 + NUM_VMSI as u32;
/// The firmware's sources: AI cores 0-3, command completion, device message.
pub const FW_SOURCES: [u16; 6] = [0, 1, 2, 3, 12, 24];

/// DMA descriptor area: u64 device address, u64 size of the buffer.
pub const DMA_DESC_MAGIC: u16 = 0xD4D4;
pub const DESC_OFF: u64 = 0xc00;
pub const DESC_SIZE: u32 = 16;
pub const DESC_BUF: u64 = L2_BASE + 0x1_0000;
pub const DESC_BUF_SIZE: u64 = 0x3_0000;

/// AI-core contexts: 4 x 80-byte `device_ctx_t`, all zero here.
pub const CTX_OFF: u64 = 0x1000;
pub const CTX_SIZE: u32 = 4 * 80;

/// What `inject bad-area` publishes instead of an area's offset: past the
/// end of the 32 MiB BAR2.
pub const BAD_OFFSET: u64 = 0x300_0000;
/// What `inject bad-vmsi-count` publishes as `num_vmsi` (driver limit 1024).
pub const BAD_NUM_VMSI: u16 = 5000;

/// One-shot corruptions for the next publication (`inject bad-area`,
/// `inject bad-vmsi-count`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BadValues {
    pub hdrv: bool,
    pub vmsi: bool,
    pub desc: bool,
    pub vmsi_count: bool,
}

impl BadValues {
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.hdrv, "hdrv"),
            (self.vmsi, "vmsi"),
            (self.desc, "desc"),
            (self.vmsi_count, "vmsi-count"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect()
    }

    /// Arms `bad-area NAME`; false for an unknown name.
    pub fn arm_area(&mut self, name: &str) -> bool {
        match name {
            "hdrv" => self.hdrv = true,
            "vmsi" => self.vmsi = true,
            "desc" => self.desc = true,
            _ => return false,
        }
        true
    }
}

/// Writes bytes into L2 at a BAR2 offset (the card's own store).
pub fn put(sh: &Shared, off: u64, b: &[u8]) {
    sh.mem.write(L2_BASE + off, b);
}

pub fn put_u16(sh: &Shared, off: u64, v: u16) {
    put(sh, off, &v.to_le_bytes());
}

pub fn put_u32(sh: &Shared, off: u64, v: u32) {
    put(sh, off, &v.to_le_bytes());
}

pub fn put_u64(sh: &Shared, off: u64, v: u64) {
    put(sh, off, &v.to_le_bytes());
}

pub fn get(sh: &Shared, off: u64, b: &mut [u8]) {
    sh.mem.read(L2_BASE + off, b);
}

pub fn get_u32(sh: &Shared, off: u64) -> u32 {
    sh.mem.read_u32(L2_BASE + off).unwrap_or(0)
}

pub fn get_u64(sh: &Shared, off: u64) -> u64 {
    sh.mem.read_u64(L2_BASE + off).unwrap_or(0)
}

fn area_ref(sh: &Shared, area: Area, magic: u16, size: u32, offset: u64) {
    let mut r = [0u8; AREA_REF_SIZE as usize];
    r[0..2].copy_from_slice(&magic.to_le_bytes());
    // Version 1.0 for areas that carry a magic; the memory-area field's
    // meaning is not public, so it stays 0.
    if magic != 0 {
        r[2] = 1;
    }
    r[4..8].copy_from_slice(&size.to_le_bytes());
    r[8..16].copy_from_slice(&offset.to_le_bytes());
    put(sh, AREA_REFS + AREA_REF_SIZE * area as u64, &r);
}

/// Writes the interface structure and the areas it references. `why` says
/// who: the bootloader after a reset ("reset", "power_on") or the freshly
/// booted firmware ("boot"); either way the host-driver area starts zeroed,
/// so any virtual-MSI registration is gone. The command slot and the boot
/// block are left to the command protocol (`boot.rs`).
pub fn publish(sh: &Shared, st: &mut State, why: &str) {
    let bad = std::mem::take(&mut st.inj.iface);
    let layout = sh.opts.if_layout;
    let mut head = [0u8; HDR_END as usize];
    if layout == IfLayout::V16 {
        head[0..2].copy_from_slice(&HDIF_MAGIC.to_le_bytes());
        head[HDR_BASE as usize..HDR_BASE as usize + 8].copy_from_slice(&L2_BASE.to_le_bytes());
        head[HDR_SIZE as usize..HDR_SIZE as usize + 8]
            .copy_from_slice(&IF_REGION_SIZE.to_le_bytes());
    }
    put(sh, 0, &head);
    put(sh, CMD_END, &[0u8; (BOOT_AREA - CMD_END) as usize]);
    put(sh, MASTER_VERSION, &master_version(st));
    put_u64(sh, MEMORY_MAP, DDR_BASE);
    put_u64(sh, MEMORY_MAP + 8, 0);
    // dma_vm (1.6.2) stays 0: this firmware offers no DMA-VM service, so the
    // host programs IMWRs; in 1.4.x the same bytes are padding.
    put_u32(sh, DMA_VM, 0);
    put_u64(sh, FW_LOAD_ADDR, boot::FW_LOAD_ADDR);

    let off = |broken: bool, real: u64| if broken { BAD_OFFSET } else { real };
    area_ref(sh, Area::Ctx, 0, CTX_SIZE, CTX_OFF);
    area_ref(
        sh,
        Area::HostDrv,
        HOST_DRV_MAGIC,
        HOST_DRV_SIZE,
        off(bad.hdrv, HOST_DRV_OFF),
    );
    area_ref(
        sh,
        Area::DmaDesc,
        DMA_DESC_MAGIC,
        DESC_SIZE,
        off(bad.desc, DESC_OFF),
    );
    area_ref(
        sh,
        Area::Vmsi,
        VMSI_MAGIC,
        VMSI_SIZE,
        off(bad.vmsi, VMSI_OFF),
    );

    put(sh, HOST_DRV_OFF, &[0u8; HOST_DRV_SIZE as usize]);
    put(sh, VMSI_OFF, &vmsi_config(bad.vmsi_count));
    let mut desc = [0u8; DESC_SIZE as usize];
    desc[0..8].copy_from_slice(&DESC_BUF.to_le_bytes());
    desc[8..16].copy_from_slice(&DESC_BUF_SIZE.to_le_bytes());
    put(sh, DESC_OFF, &desc);
    put(sh, CTX_OFF, &[0u8; CTX_SIZE as usize]);

    sh.obs.event(
        "iface_published",
        json!({"layout": layout.name(), "why": why, "bad": bad.names()}),
    );
}

/// `master_version`: firmware major/minor while it runs, 0.0 otherwise.
pub fn master_version(st: &State) -> [u8; 2] {
    if st.fw.state == boot::FwState::Ready {
        [st.fw.fw_version as u8, (st.fw.fw_version >> 8) as u8]
    } else {
        [0, 0]
    }
}

fn vmsi_config(bad_count: bool) -> Vec<u8> {
    let mut b = vec![0u8; VMSI_SIZE as usize];
    let num = if bad_count { BAD_NUM_VMSI } else { NUM_VMSI };
    b[0..2].copy_from_slice(&num.to_le_bytes());
    b[2..4].copy_from_slice(&NUM_PMSI.to_le_bytes());
    for id in FW_SOURCES {
        let o = (VMSI_INFO - VMSI_OFF + VMSI_INFO_SIZE * id as u64) as usize;
        b[o] = 1; // enabled
        b[o + 1] = 0; // source: firmware
        b[o + 4..o + 6].copy_from_slice(&id.to_le_bytes());
        b[o + 6..o + 8].copy_from_slice(&id.to_le_bytes());
    }
    // Each virtual source rides on the physical vector of the same number
    // (the known MSI map).
    let map = (VMSI_TO_PMSI - VMSI_OFF) as usize;
    for i in 0..NUM_VMSI as usize {
        b[map + i] = i as u8;
    }
    b
}

/// Statistics name of a BAR2 offset (per known area, L2 otherwise).
pub fn area_name(off: u64) -> &'static str {
    match off {
        CMD_OPCODE..CMD_END => "bar2.cmd",
        0..BOOT_AREA => "bar2.iface",
        BOOT_AREA..STATIC_END => "bar2.boot",
        HOST_DRV_OFF..0x818 => "bar2.hdrv",
        VMSI_OFF..0xa24 => "bar2.vmsi_config",
        o if (DESC_BUF - L2_BASE..DESC_BUF - L2_BASE + DESC_BUF_SIZE).contains(&o) => "bar2.desc",
        _ => "bar2.window",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmsi_config_layout() {
        let b = vmsi_config(false);
        assert_eq!(b.len(), 292);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), 32);
        let info12 = 4 + 8 * 12;
        assert_eq!(&b[info12..info12 + 8], &[1, 0, 0, 0, 12, 0, 12, 0]);
        let info5 = 4 + 8 * 5;
        assert_eq!(&b[info5..info5 + 8], &[0; 8]);
        assert_eq!(b[4 + 256 + 24], 24);
        let bad = vmsi_config(true);
        assert_eq!(u16::from_le_bytes([bad[0], bad[1]]), 5000);
    }

    #[test]
    fn static_part_fits() {
        assert_eq!(AREA_REFS + 8 * AREA_REF_SIZE, 0x300);
        assert!(VMSI_OFF + VMSI_SIZE as u64 <= DESC_OFF);
        assert_eq!(area_name(0xb0), "bar2.cmd");
        assert_eq!(area_name(0x418), "bar2.boot");
        assert_eq!(area_name(0x10000), "bar2.desc");
        assert_eq!(area_name(0x40000), "bar2.window");
    }
}
