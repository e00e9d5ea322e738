//! The interface structure in BAR2 as a driver parses it (both layouts, the
//! area references and their checks), the virtual-MSI registration and its
//! faults, the bad-value injections, INTx driven by the vMSI table, and the
//! BAR2 window onto L2.

mod common;
use common::*;
use metis_emu::boot::{op, status};
use metis_emu::config::*;
use metis_emu::control::handle;
use metis_emu::devmem::{DDR_BASE, L2_BASE, L2_SIZE};
use metis_emu::iface::*;
use metis_emu::{Fault, IfLayout, Options};
use std::time::Duration;
use vfio_bindings::bindings::vfio::*;

const BAR2: u32 = VFIO_PCI_BAR2_REGION_INDEX;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// One `memory_reference_t`: (magic, major, minor, size, offset, area).
fn area(r: &Rig, a: Area) -> (u16, u8, u8, u32, u64, u16) {
    let b = r.bar2_bytes(AREA_REFS + AREA_REF_SIZE * a as u64, 24);
    (
        u16_at(&b, 0),
        b[2],
        b[3],
        u32_at(&b, 4),
        u64_at(&b, 8),
        u16_at(&b, 16),
    )
}

/// The driver's checks of a published area: no overflow, inside BAR2, past
/// the static 2 KiB.
fn area_ok(off: u64, size: u32, bar2: u64) -> bool {
    off.checked_add(size as u64)
        .is_some_and(|end| off >= STATIC_END && end <= bar2)
}

/// Everything both layouts share, read through BAR2 with 32-bit loads.
fn check_common(r: &Rig) {
    let b = r.bar2_bytes(0, 0x800);
    assert_eq!(u16_at(&b, 0x200), 0, "master_version 0.0 before boot");
    assert_eq!(u64_at(&b, 0x208), DDR_BASE, "memory_map[0]");
    assert_eq!(u64_at(&b, 0x210), 0, "memory_map[1]");
    assert_eq!(u64_at(&b, 0x238), 0x1_0100_0000, "fw_load_addr");
    let bar2 = 32 << 20;
    // datastream, board info, device message, virtual memory: absent
    for a in [Area::Datastream, Area::BoardInfo, Area::AxeMsg, Area::Virt] {
        assert_eq!(area(r, a), (0, 0, 0, 0, 0, 0), "{a:?}");
    }
    assert_eq!(area(r, Area::Ctx), (0, 0, 0, 320, 0x1000, 0));
    let (magic, major, _, size, off, _) = area(r, Area::HostDrv);
    assert_eq!((magic, major, size, off), (0xBAC1, 1, 24, 0x800));
    assert!(area_ok(off, size, bar2) && size >= 24);
    let (magic, _, _, size, off, _) = area(r, Area::DmaDesc);
    assert_eq!((magic, size, off), (0xD4D4, 16, 0xc00));
    assert!(area_ok(off, size, bar2));
    let (magic, _, _, size, off, _) = area(r, Area::Vmsi);
    assert_eq!((magic, size, off), (0xB5B5, 4 + 256 + 32, 0x900));
    assert!(area_ok(off, size, bar2) && size >= 4 + 32 * 8);

    // host-driver area starts zeroed: no registration
    assert_eq!(r.bar2_bytes(0x800, 24), vec![0; 24]);
    // vMSI config
    let v = r.bar2_bytes(0x900, 292);
    assert_eq!(u16_at(&v, 0), 32, "num_vmsi");
    assert_eq!(u16_at(&v, 2), 32, "num_pmsi");
    for id in 0..32usize {
        let e = &v[4 + 8 * id..12 + 8 * id];
        if [0, 1, 2, 3, 12, 24].contains(&id) {
            assert_eq!(e[0], 1, "source {id} enabled");
            assert_eq!(e[1], 0, "source {id} is firmware");
            assert_eq!(u16_at(e, 4), id as u16, "start");
            assert_eq!(u16_at(e, 6), id as u16, "end");
        } else {
            assert_eq!(e, &[0; 8], "source {id} unused");
        }
        assert_eq!(v[4 + 256 + id], id as u8, "vmsi_to_pmsi");
    }
    // descriptor area: buffer inside L2 and 8-byte aligned
    let d = r.bar2_bytes(0xc00, 16);
    let (addr, len) = (u64_at(&d, 0), u64_at(&d, 8));
    assert_eq!((addr, len), (0x0801_0000, 0x3_0000));
    assert!(addr >= L2_BASE && addr + len <= L2_BASE + L2_SIZE && addr % 8 == 0);
    // AI-core contexts: zero
    assert_eq!(r.bar2_bytes(0x1000, 320), vec![0; 320]);
}

#[test]
fn layout_1_6_parses_as_the_spec_says() {
    let r = Rig::metis();
    check_common(&r);
    // header through narrow and wide accesses (BAR2 is memory)
    assert_eq!(r.dev.mmio_read(BAR2, 0, 2), 0xFD1F);
    assert_eq!(r.dev.mmio_read(BAR2, 1, 1), 0xFD);
    assert_eq!(r.dev.mmio_read(BAR2, 8, 8), 0x0800_0000, "base");
    assert_eq!(r.dev.mmio_read(BAR2, 0x10, 8), 0x10000, "size");
    assert_eq!(r.bar2_bytes(2, 6), vec![0; 6], "reserved");
    assert_eq!(r.bar2_bytes(0x18, 0xb0 - 0x18), vec![0; 0xb0 - 0x18]);
    assert_eq!(r.b2r(0x218), 0, "dma_vm: no DMA-VM service");
    assert_eq!(r.dev.total_faults(), 0);
    assert!(r
        .events_of("iface_published")
        .iter()
        .any(|e| e["layout"] == "1.6"));
}

#[test]
fn layout_1_4_parses_as_the_spec_says() {
    let r = Rig::new(Options {
        if_layout: IfLayout::V14,
        ..small_opts()
    });
    check_common(&r);
    assert_eq!(r.bar2_bytes(0, 0xb0), vec![0; 0xb0], "padding, no header");
    assert_eq!(r.b2r(0x218), 0);
    // the firmware publishes the same layout after a boot
    r.boot_default();
    assert_eq!(r.bar2_bytes(0, 0xb0), vec![0; 0xb0]);
    assert_eq!(r.bar2_bytes(MASTER_VERSION, 2), vec![1, 2]);
}

#[test]
fn boot_clears_the_registration() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.register_vmsi();
    assert_eq!(r.b2r(HOST_DRV_CTRL), 1);
    let img = metis_emu::fw_image::build(&Default::default());
    assert_eq!(r.boot(&img), status::OK);
    assert_eq!(r.bar2_bytes(HOST_DRV_OFF, 24), vec![0; 24], "hdrv zeroed");
    // BOOT's own answer went through the bootloader's registration
    wait_until("boot signalled", || fired(&r.msi[12]) == 1);
    assert_eq!(r.vmsi_word(12), 1);
    r.clear_vmsi_word(12);
    // the first completion before the host registers again is R1.2
    assert_eq!(r.cmd(op::ECHO, &[1]).0, status::OK);
    assert_eq!(r.dev.fault_count(Fault::VmsiUnregistered), 1);
    assert_eq!(r.vmsi_word(12), 0, "nothing written to the old table");
    assert!(r.msi.iter().all(|f| fired(f) == 0), "nothing raised");
    // registering again brings the signal back
    r.register_vmsi();
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.vmsi_word(12), 1);
    assert_eq!(fired(&r.msi[12]), 1);
    assert_eq!(r.dev.total_faults(), 1);
}

#[test]
fn reset_clears_the_registration_and_republishes() {
    let r = Rig::metis();
    r.boot_default();
    assert_eq!(r.b2r(HOST_DRV_CTRL), 1);
    r.dev.vfio_reset();
    r.dev
        .cfg_write(COMMAND, 2, (CMD_MEM | CMD_BUS_MASTER) as u32);
    assert_eq!(r.b2r(HOST_DRV_CTRL), 0);
    check_common(&r);
    assert_eq!(r.dev.mmio_read(BAR2, 0, 2), 0xFD1F);
    let ev = handle(&r.dev, "events");
    let whys: Vec<String> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "iface_published")
        .map(|e| e["why"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(whys, ["power_on", "boot", "reset"]);
}

#[test]
fn vmsi_without_registration_counts_and_raises_nothing() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.boot_default();
    handle(&r.dev, "reset-stats");
    // ctrl = 0 with a target: withdrawn
    r.b2w(HOST_DRV_CTRL, 0);
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.dev.fault_count(Fault::VmsiUnregistered), 1);
    assert_eq!(r.vmsi_word(12), 0);
    // ctrl = 1 but a table too small for source 12
    r.b2w(HOST_DRV_TABLE_SIZE, 16);
    r.b2w(HOST_DRV_CTRL, 1);
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.dev.fault_count(Fault::VmsiUnregistered), 2);
    // target 0: R1.2's write to IOVA 0x30 is never attempted
    r.register_vmsi_at(0);
    handle(&r.dev, "inject device-msg");
    assert_eq!(r.dev.fault_count(Fault::VmsiUnregistered), 3);
    assert!(r.msi.iter().all(|f| fired(f) == 0));
    let s = handle(&r.dev, "stats");
    assert_eq!(s["vmsi_writes"], 0);
    assert_eq!(s["irqs_sent"], serde_json::json!({}));
    let ev = handle(&r.dev, "events");
    assert_eq!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "vmsi_unregistered")
            .count(),
        3
    );
}

#[test]
fn vmsi_to_an_unmapped_table_is_an_iommu_fault() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.boot_default();
    r.register_vmsi_at(0x7000_0000);
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.dev.fault_count(Fault::DmaUnmapped), 1);
    assert!(r.msi.iter().all(|f| fired(f) == 0));
    // a table the card may only read cannot take the word either
    let ro = metis_emu::dma::memfd(0x1000).unwrap();
    r.dev
        .dma_map(true, false, 0, 0x5000_0000, 0x1000, Some(ro))
        .unwrap();
    r.register_vmsi_at(0x5000_0000);
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.dev.fault_count(Fault::DmaPerm), 1);
    assert!(r.msi.iter().all(|f| fired(f) == 0));
}

#[test]
fn bad_area_injection_publishes_an_out_of_range_offset() {
    let r = Rig::metis();
    assert_eq!(handle(&r.dev, "inject bad-area hdrv")["ok"], true);
    assert_eq!(handle(&r.dev, "inject bad-area nope")["ok"], false);
    assert_eq!(
        handle(&r.dev, "stats")["device"]["armed"]["bad_iface"],
        serde_json::json!(["hdrv"])
    );
    // nothing changes until the card writes the structure again
    assert_eq!(area(&r, Area::HostDrv).4, 0x800);
    r.dev.vfio_reset();
    r.dev
        .cfg_write(COMMAND, 2, (CMD_MEM | CMD_BUS_MASTER) as u32);
    let (magic, _, _, size, off, _) = area(&r, Area::HostDrv);
    assert_eq!((magic, off), (HOST_DRV_MAGIC, 0x300_0000));
    assert!(!area_ok(off, size, 32 << 20), "past BAR2");
    assert_eq!(area(&r, Area::Vmsi).4, 0x900, "only the named area");
    // vmsi and desc at the next boot, together with the vMSI count
    handle(&r.dev, "inject bad-area vmsi");
    handle(&r.dev, "inject bad-area desc");
    handle(&r.dev, "inject bad-vmsi-count");
    r.boot_default();
    assert_eq!(area(&r, Area::HostDrv).4, 0x800, "one-shot");
    assert_eq!(area(&r, Area::Vmsi).4, 0x300_0000);
    assert_eq!(area(&r, Area::DmaDesc).4, 0x300_0000);
    assert_eq!(r.b2r(VMSI_OFF) & 0xffff, 5000);
    // and all of it is gone after the next reset
    r.dev.vfio_reset();
    r.dev
        .cfg_write(COMMAND, 2, (CMD_MEM | CMD_BUS_MASTER) as u32);
    check_common(&r);
}

fn intx_rig() -> (Rig, std::fs::File) {
    let r = Rig::metis();
    let intx = r.intx();
    (r, intx)
}

fn unmask(r: &Rig) {
    r.unmask_intx()
}

fn intx_status(r: &Rig) -> bool {
    r.intx_asserted()
}

#[test]
fn intx_deasserts_only_after_the_table_word_is_cleared() {
    let (r, intx) = intx_rig();
    r.boot_default();
    assert_eq!(fired(&intx), 1, "BOOT's answer");
    // its word was taken (boot_default): unmasking drops the line
    unmask(&r);
    assert!(!intx_status(&r));
    r.cmd(op::ECHO, &[1]);
    assert_eq!(r.vmsi_word(12), 1);
    assert_eq!(fired(&intx), 1);
    assert!(intx_status(&r));
    // the handler unmasks without clearing the word: still asserted
    unmask(&r);
    assert_eq!(fired(&intx), 1);
    std::thread::sleep(Duration::from_millis(30));
    assert!(intx_status(&r), "the tick does not drop a set word");
    // clearing the word and unmasking drops the line at once
    r.clear_vmsi_word(12);
    unmask(&r);
    assert!(!intx_status(&r));
    assert_eq!(fired(&intx), 0);
    // without an unmask, the 10 ms tick notices the cleared word
    r.cmd(op::ECHO, &[1]);
    assert!(intx_status(&r));
    r.clear_vmsi_word(12);
    wait_until("tick re-reads the table", || !intx_status(&r));
    // an eDMA interrupt clear re-reads it too
    r.cmd(op::ECHO, &[1]);
    r.clear_vmsi_word(12);
    r.ew(
        metis_emu::edma::regs::INT_CLEAR.at(metis_emu::edma::Dir::Wr),
        0,
    );
    assert!(!intx_status(&r));
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn withdrawn_registration_releases_intx() {
    let (r, intx) = intx_rig();
    r.boot_default();
    r.cmd(op::ECHO, &[1]);
    assert_eq!(fired(&intx), 1);
    // the driver withdraws before freeing the table: the card stops
    // looking at it, so the line drops even though the word is still set
    r.b2w(HOST_DRV_CTRL, 0);
    unmask(&r);
    assert!(!intx_status(&r));
    assert_eq!(r.vmsi_word(12), 1);
}

#[test]
fn bar2_is_l2_from_device_address_0x0800_0000() {
    let r = Rig::metis();
    r.dev.mem_write(L2_BASE + 0x20_0000, b"L2 bytes");
    assert_eq!(r.bar2_bytes(0x20_0000, 8), b"L2 bytes");
    r.dev.mmio_write(BAR2, 0x1f0_0000, 8, 0x1122_3344_5566_7788);
    assert_eq!(
        r.dev.mem_read(L2_BASE + 0x1f0_0000, 8).unwrap(),
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    assert_eq!(r.dev.mmio_read(BAR2, 0x1f0_0004, 2), 0x3344);
    assert_eq!(r.dev.mmio_read(BAR2, 0x1f0_0007, 1), 0x11);
    assert_eq!(r.dev.total_faults(), 0);
    // misaligned accesses fault (R1.3: a 64-bit load not 8-byte aligned)
    assert_eq!(r.dev.mmio_read(BAR2, 0xcc, 8), u64::MAX);
    r.dev.mmio_read(BAR2, 0x1f0_0002, 4);
    r.dev.mmio_read(BAR2, 0x1f0_0000, 3);
    assert_eq!(r.dev.fault_count(Fault::WindowAccess), 3);
    // past the end of the BAR
    r.dev.mmio_read(BAR2, 32 << 20, 4);
    assert_eq!(r.dev.fault_count(Fault::WindowRange), 1);
}

#[test]
fn small_bar2_exposes_the_start_of_a_full_l2() {
    let r = Rig::new(Options {
        bar2_size: 1 << 20,
        ..small_opts()
    });
    assert_eq!(r.dev.region_size(2), 1 << 20);
    r.dev.cfg_write(metis_emu::config::BAR2, 4, 0xffff_ffff);
    assert_eq!(r.dev.cfg_read(metis_emu::config::BAR2, 4), 0xfff0_0000);
    // the interface structure is there, and still says L2 is 32 MiB away
    assert_eq!(r.dev.mmio_read(BAR2, 0, 2), 0xFD1F);
    assert_eq!(area(&r, Area::HostDrv).4, 0x800);
    // the rest of L2 is not reachable through the BAR, but it exists
    r.dev.mmio_read(BAR2, 1 << 20, 4);
    assert_eq!(r.dev.fault_count(Fault::WindowRange), 1);
    r.boot_default();
    let top = L2_BASE + L2_SIZE - 4096;
    r.dev.mem_write(top, &[0xab; 4096]);
    let (st, out) = r.cmd(op::CHECKSUM, &args(&[top, 4096]));
    assert_eq!(st, status::OK);
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        metis_emu::fw_image::crc32(&[0xab; 4096])
    );
}
