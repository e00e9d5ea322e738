//! eDMA engine: LL and non-LL transfers with data checks, the cycle-bit
//! protocol across windows, IMWR validation, strict register access, IOMMU
//! faults, malformed lists, interrupt masking/INTx and injections.

mod common;
use common::*;
use metis_emu::config::*;
use metis_emu::control::handle;
use metis_emu::devmem::DDR_BASE;
use metis_emu::edma::ll::*;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use metis_emu::{Fault, Identity, Options};
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::*;

fn put(r: &Rig, addr: u64, elems: &[[u8; 24]]) {
    for (i, e) in elems.iter().enumerate() {
        assert!(r.dev.mem_write(addr + 24 * i as u64, e));
    }
}

fn bytes_moved(r: &Rig) -> (u64, u64) {
    let s = handle(&r.dev, "stats");
    (
        s["bytes"]["host_to_device"].as_u64().unwrap(),
        s["bytes"]["device_to_host"].as_u64().unwrap(),
    )
}

fn fired_all(r: &Rig) -> Vec<u64> {
    r.msi.iter().map(fired).collect()
}

#[test]
fn ll_write_channel_moves_data_and_interrupts() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let data = pattern(1, 200_000);
    r.dev.mem_write(DEV_DATA, &data);
    let host = IOVA + 0x10_0000;
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB, 100_000, DEV_DATA, host),
            Element::data(
                CTRL_CB | CTRL_LIE | CTRL_RIE,
                100_000,
                DEV_DATA + 100_000,
                host + 100_000,
            ),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, 0, 8, LL_WR);
    r.doorbell(Dir::Wr, 0);
    wait_until("write done", || r.int_status(Dir::Wr) & done_bit(0) != 0);
    assert_eq!(r.guest_read(host, data.len()), data);
    let cs = r.wait_stopped(Dir::Wr, 0);
    assert_eq!(cs, Cs::Stopped);
    // link toggled CCS; the walk stopped on element 0 (CB 1 != CCS 0)
    assert!(!r.ctrl1(Dir::Wr, 0).ccs());
    assert_eq!(r.cr(Dir::Wr, 0, CH_LLP_LO) as u64, LL_WR);
    let f = fired_all(&r);
    assert_eq!(f[8], 1, "vector 8 = write channel 0");
    assert_eq!(f.iter().sum::<u64>(), 1);
    assert_eq!(bytes_moved(&r).1, 200_000);
    assert_eq!(r.dev.total_faults(), 0);
    let s = handle(&r.dev, "stats");
    let wr0 = &s["channels"]["wr0"];
    let n = |k: &str| wr0[k].as_u64().unwrap();
    assert_eq!(
        (n("doorbells"), n("doorbells_latched"), n("runs")),
        (1, 0, 1)
    );
    // Two data elements, the link, and the element it leads back to (CB 1 != CCS 0).
    assert_eq!((n("elements"), n("links"), n("list_bytes")), (2, 1, 4 * 24));
    assert_eq!(
        (n("bytes"), n("imwrs"), n("imwr_mismatch")),
        (200_000, 1, 0)
    );
    assert!(n("busy_ns") > 0);
    assert_eq!(s["jobs"], 1);
    // status is RW1C through int_clear
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(0));
    assert_eq!(r.int_status(Dir::Wr), 0);
}

#[test]
fn ll_read_channel_with_list_written_through_bar2_into_l2() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let data = pattern(2, 50_000);
    let host = IOVA + 0x20_0000;
    r.guest_write(host, &data);
    // Elements written through BAR2 into the descriptor buffer in L2 like
    // dw-edma's remote path: writel control/size, writeq sar/dar.
    let elems = [
        Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 50_000, host, DEV_DATA),
        Element::link(CTRL_LLP | CTRL_TCB, LL_RD),
    ];
    for (i, e) in elems.iter().enumerate() {
        let base = l2_off(LL_RD) + 24 * i as u64;
        r.dev.mmio_write(
            2,
            base,
            4,
            u32::from_le_bytes(e[0..4].try_into().unwrap()) as u64,
        );
        r.dev.mmio_write(
            2,
            base + 4,
            4,
            u32::from_le_bytes(e[4..8].try_into().unwrap()) as u64,
        );
        r.dev.mmio_write(
            2,
            base + 8,
            8,
            u64::from_le_bytes(e[8..16].try_into().unwrap()),
        );
        r.dev.mmio_write(
            2,
            base + 16,
            8,
            u64::from_le_bytes(e[16..24].try_into().unwrap()),
        );
    }
    assert_eq!(r.dev.mmio_read(2, l2_off(LL_RD) + 8, 8), host);
    r.setup_channel(Dir::Rd, 1, 5, LL_RD);
    r.doorbell(Dir::Rd, 1);
    wait_until("read done", || r.int_status(Dir::Rd) & done_bit(1) != 0);
    assert_eq!(r.dev.mem_read(DEV_DATA, data.len()).unwrap(), data);
    assert_eq!(fired_all(&r)[5], 1, "vector 5 = read channel 1");
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn cycle_bit_windows_restart_without_rewriting_llp() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let d1 = pattern(3, 8192);
    let d2 = pattern(4, 12288);
    r.dev.mem_write(DEV_DATA, &d1);
    r.dev.mem_write(DEV_DATA + 0x10000, &d2);
    let h = IOVA + 0x40_0000;
    // window 1: CB=1, link carries !CB like dw-edma
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB, 4096, DEV_DATA, h),
            Element::data(
                CTRL_CB | CTRL_LIE | CTRL_RIE,
                4096,
                DEV_DATA + 4096,
                h + 4096,
            ),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, 2, 10, LL_WR);
    r.doorbell(Dir::Wr, 2);
    wait_until("window 1", || r.int_status(Dir::Wr) & done_bit(2) != 0);
    r.wait_stopped(Dir::Wr, 2);
    assert_eq!(r.guest_read(h, 8192), d1);
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(2));
    assert_eq!(fired(&r.msi[10]), 1);

    // A doorbell before the producer hands over new elements does nothing.
    r.doorbell(Dir::Wr, 2);
    r.wait_stopped(Dir::Wr, 2);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(r.int_status(Dir::Wr), 0);
    assert_eq!(fired(&r.msi[10]), 0);
    assert_eq!(bytes_moved(&r).1, 8192);

    // window 2: three elements with CB=0, link with CB=1 (= !cb)
    let h2 = h + 0x10000;
    put(
        &r,
        LL_WR,
        &[
            Element::data(0, 4096, DEV_DATA + 0x10000, h2),
            Element::data(0, 4096, DEV_DATA + 0x11000, h2 + 4096),
            Element::data(CTRL_LIE | CTRL_RIE, 4096, DEV_DATA + 0x12000, h2 + 8192),
            Element::link(CTRL_LLP | CTRL_TCB | CTRL_CB, LL_WR),
        ],
    );
    r.doorbell(Dir::Wr, 2);
    wait_until("window 2", || r.int_status(Dir::Wr) & done_bit(2) != 0);
    r.wait_stopped(Dir::Wr, 2);
    assert_eq!(r.guest_read(h2, 12288), d2);
    assert_eq!(fired(&r.msi[10]), 1);
    // CCS back to 1 after the second link
    assert!(r.ctrl1(Dir::Wr, 2).ccs());
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn non_ll_mode_uses_channel_registers() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let data = pattern(5, 3000);
    let host = IOVA + 0x1000;
    r.guest_write(host, &data);
    r.setup_channel(Dir::Rd, 0, 4, 0);
    let irqs = ChControl1::new().with_lie(true).with_rie(true); // LLE = 0
    r.cw(Dir::Rd, 0, CH_CONTROL1, irqs.into());
    r.cw(Dir::Rd, 0, CH_TRANSFER_SIZE, 3000);
    r.cw(Dir::Rd, 0, CH_SAR_LO, host as u32);
    r.cw(Dir::Rd, 0, CH_SAR_HI, (host >> 32) as u32);
    let dst = DDR_BASE + 0x0300_0000;
    r.cw(Dir::Rd, 0, CH_DAR_LO, dst as u32);
    r.cw(Dir::Rd, 0, CH_DAR_HI, (dst >> 32) as u32);
    r.doorbell(Dir::Rd, 0);
    wait_until("non-LL done", || r.int_status(Dir::Rd) & done_bit(0) != 0);
    assert_eq!(r.dev.mem_read(dst, 3000).unwrap(), data);
    assert_eq!(r.wait_stopped(Dir::Rd, 0), Cs::Stopped);
    assert_eq!(r.cr(Dir::Rd, 0, CH_TRANSFER_SIZE), 0);
    assert_eq!(r.cr(Dir::Rd, 0, CH_DAR_LO), dst as u32 + 3000);
    assert_eq!(r.cr(Dir::Rd, 0, CH_DAR_HI), 1);
    assert_eq!(fired(&r.msi[4]), 1);
}

fn one_element_write(r: &Rig, ch: usize, vector: u32) {
    r.dev.mem_write(DEV_DATA, &pattern(9, 256));
    put(
        r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 256, DEV_DATA, IOVA + 0x8000),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, ch, vector, LL_WR);
}

#[test]
fn imwr_to_wrong_address_is_lost_and_counted() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    one_element_write(&r, 0, 8);
    // a physical doorbell address that is not the programmed message
    r.ew(DONE_IMWR_LO.at(Dir::Wr), 0xfee0_1000);
    r.doorbell(Dir::Wr, 0);
    wait_until("done", || r.int_status(Dir::Wr) & done_bit(0) != 0);
    r.wait_stopped(Dir::Wr, 0);
    assert_eq!(r.dev.fault_count(Fault::ImwrMismatch), 1);
    assert_eq!(fired_all(&r).iter().sum::<u64>(), 0, "interrupt lost");
    let s = handle(&r.dev, "stats");
    assert_eq!(s["irqs_lost"], 1);
    assert_eq!(s["channels"]["wr0"]["imwr_mismatch"], 1);
}

#[test]
fn imwr_data_must_match_message_and_vector_count() {
    let mut r = Rig::metis();
    r.enable_msi(4);
    // vector 8 does not exist with 4 vectors enabled
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("fault", || r.dev.fault_count(Fault::ImwrMismatch) == 1);
    // vector 2 is fine
    r.ew(CH_IMWR_DATA(0).at(Dir::Wr), MSI_MSG_DATA as u32 | 2);
    one_element_write(&r, 0, 2);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("irq", || fired(&r.msi[2]) == 1);
    // unrelated data
    r.ew(CH_IMWR_DATA(0).at(Dir::Wr), 0x5000);
    r.cw(Dir::Wr, 0, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Wr, 0, CH_LLP_LO, LL_WR as u32);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("second fault", || {
        r.dev.fault_count(Fault::ImwrMismatch) == 2
    });
}

#[test]
fn imwr_with_msi_disabled_is_a_fault() {
    let r = Rig::metis();
    one_element_write(&r, 1, 9);
    r.doorbell(Dir::Wr, 1);
    r.wait_stopped(Dir::Wr, 1);
    wait_until("fault", || r.dev.fault_count(Fault::ImwrMismatch) == 1);
}

#[test]
fn register_accesses_must_be_aligned_32_bit() {
    let r = Rig::metis();
    r.ew(DONE_IMWR_LO.at(Dir::Rd), 0x1234_5678);
    // R1.3: 64-bit load at 0xcc (rd_done_imwr)
    assert_eq!(r.dev.mmio_read(0, 0xcc, 8), u64::MAX);
    assert_eq!(r.dev.fault_count(Fault::MmioWidth), 1);
    assert_eq!(r.dev.mmio_read(0, 0x08, 2), 0xffff);
    assert_eq!(r.dev.fault_count(Fault::MmioWidth), 2);
    assert_eq!(r.dev.mmio_read(0, 0xce, 4), 0xffff_ffff);
    assert_eq!(r.dev.fault_count(Fault::MmioUnaligned), 1);
    // a 64-bit write to llp does nothing
    r.dev
        .mmio_write(0, CH_LLP_LO.at(Dir::Wr, 0) as u64, 8, 0x1_0000_2000);
    assert_eq!(r.cr(Dir::Wr, 0, CH_LLP_LO), 0);
    assert_eq!(r.dev.fault_count(Fault::MmioWidth), 3);
    // the unused end of BAR0 is register space too
    assert_eq!(r.dev.mmio_read(0, 0xa00, 1), 0xff);
    assert_eq!(r.dev.fault_count(Fault::MmioWidth), 4);
    // aligned 32-bit accesses are fine and see the halves
    assert_eq!(r.er(DONE_IMWR_LO.at(Dir::Rd)), 0x1234_5678);
    assert_eq!(r.er(CTRL.offset()), 0x0004_0004);
    assert_eq!(r.dev.total_faults(), 5);
}

/// 4+4 channels end at 0xa00; the rest of the 4 KiB BAR0 reads 0 and
/// ignores writes.
#[test]
fn bar0_past_the_channels_reads_zero() {
    let r = Rig::metis();
    for off in (0xa00..0x1000).step_by(4) {
        r.ew(off, 0xffff_ffff);
        assert_eq!(r.er(off), 0, "{off:#x}");
    }
    assert_eq!(r.dev.region_size(0), 4096);
    assert_eq!(r.dev.total_faults(), 0);
    let s = handle(&r.dev, "stats");
    assert_eq!(s["mmio"]["writes"]["bar0.reserved"], 384);
}

#[test]
fn unmapped_host_address_aborts_channel() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    // R1: the device was given IOVA 0x30, which no one mapped
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 64, DEV_DATA, 0x30),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, 3, 11, LL_WR);
    r.doorbell(Dir::Wr, 3);
    assert_eq!(r.wait_stopped(Dir::Wr, 3), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DmaUnmapped), 1);
    assert_eq!(r.int_status(Dir::Wr), abort_bit(3), "abort, no done");
    assert_eq!(r.er(ERR_STATUS.at(Dir::Wr)), 1 << 3);
    // abort IMWR (linked_list_err_en set) reaches the channel's vector
    wait_until("abort irq", || fired(&r.msi[11]) == 1);
    assert_eq!(bytes_moved(&r).1, 0);
    // clearing the abort clears the error status
    r.ew(INT_CLEAR.at(Dir::Wr), abort_bit(3));
    assert_eq!(r.er(ERR_STATUS.at(Dir::Wr)), 0);
}

#[test]
fn iommu_permissions_are_enforced() {
    let r = Rig::metis();
    // R3: a buffer mapped for device reads only, then written by the device
    let ro = metis_emu::dma::memfd(0x10000).unwrap();
    let ro_iova = 0x2_0000_0000;
    r.dev
        .dma_map(
            true,
            false,
            0,
            ro_iova,
            0x10000,
            Some(ro.try_clone().unwrap()),
        )
        .unwrap();
    r.dev.mem_write(DEV_DATA, &[0xaa; 512]);
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE, 512, DEV_DATA, ro_iova),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, 0, 8, LL_WR);
    r.doorbell(Dir::Wr, 0);
    assert_eq!(r.wait_stopped(Dir::Wr, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DmaPerm), 1);
    let mut b = [0u8; 512];
    std::os::unix::fs::FileExt::read_exact_at(&ro, &mut b, 0).unwrap();
    assert_eq!(b, [0u8; 512], "nothing written into the read-only page");

    // and a device read from a write-only mapping: Completer Abort, logged
    // as Received Target Abort (RW1C) in PCI Status
    let wo_iova = 0x3_0000_0000;
    r.dev
        .dma_map(
            false,
            true,
            0,
            wo_iova,
            0x10000,
            Some(ro.try_clone().unwrap()),
        )
        .unwrap();
    put(
        &r,
        LL_RD,
        &[
            Element::data(CTRL_CB | CTRL_LIE, 512, wo_iova, DEV_DATA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_RD),
        ],
    );
    r.setup_channel(Dir::Rd, 0, 4, LL_RD);
    r.doorbell(Dir::Rd, 0);
    assert_eq!(r.wait_stopped(Dir::Rd, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DmaPerm), 2);
    assert_eq!(
        r.er(0x0b8),
        1 << 16,
        "rd_err_status_hi: completer abort ch0"
    );
    assert_ne!(r.dev.cfg_read(STATUS, 2) & 1 << 12, 0);
    r.dev.cfg_write(STATUS, 2, 1 << 12);
    assert_eq!(r.dev.cfg_read(STATUS, 2) & 1 << 12, 0, "RW1C");
    // unmapping makes the first buffer fault as unmapped from then on
    r.dev.dma_unmap(ro_iova, 0x10000, false);
    r.cw(Dir::Wr, 0, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Wr, 0, CH_LLP_LO, LL_WR as u32);
    r.doorbell(Dir::Wr, 0);
    assert_eq!(r.wait_stopped(Dir::Wr, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DmaUnmapped), 1);
}

#[test]
fn doorbell_with_engine_disabled_is_ignored() {
    let r = Rig::metis();
    one_element_write(&r, 0, 8);
    r.ew(ENGINE_EN.at(Dir::Wr), 0);
    r.doorbell(Dir::Wr, 0);
    assert_eq!(r.dev.fault_count(Fault::DoorbellEngineDisabled), 1);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Idle);
    assert_eq!(bytes_moved(&r).1, 0);
    // doorbell naming a channel that does not exist
    r.ew(ENGINE_EN.at(Dir::Wr), 1);
    r.ew(DOORBELL.at(Dir::Wr), 6);
    assert_eq!(r.dev.fault_count(Fault::DoorbellBadChannel), 1);
}

#[test]
fn malformed_lists_fault_and_abort() {
    let r = Rig::metis();
    // misaligned LLP
    r.setup_channel(Dir::Rd, 0, 4, LL_RD + 4);
    r.doorbell(Dir::Rd, 0);
    assert_eq!(r.wait_stopped(Dir::Rd, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::LlMalformed), 1);
    assert_eq!(
        r.er(ERR_STATUS.at(Dir::Rd)),
        1 << 16,
        "linked-list fetch error"
    );
    assert_eq!(r.int_status(Dir::Rd), abort_bit(0));
    // link element pointing outside device memory
    put(
        &r,
        LL_RD,
        &[Element::link(CTRL_LLP | CTRL_TCB, 0x7_0000_0000)],
    );
    r.setup_channel(Dir::Rd, 1, 5, LL_RD);
    r.doorbell(Dir::Rd, 1);
    assert_eq!(r.wait_stopped(Dir::Rd, 1), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::LlMalformed), 2);
    // a link to itself loops without moving data
    let ll = LL_RD + 0x1000;
    put(&r, ll, &[Element::link(CTRL_LLP | CTRL_TCB, ll)]);
    r.setup_channel(Dir::Rd, 2, 6, ll);
    r.doorbell(Dir::Rd, 2);
    assert_eq!(r.wait_stopped(Dir::Rd, 2), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::LlMalformed), 3);
    // a list in the hole between L2 and DDR
    r.setup_channel(Dir::Rd, 0, 4, 0x0a00_0000);
    r.doorbell(Dir::Rd, 0);
    assert_eq!(r.wait_stopped(Dir::Rd, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::LlMalformed), 4);
    // data element with device address past memory
    put(
        &r,
        ll,
        &[
            Element::data(CTRL_CB, 4096, IOVA, DDR_END - 100),
            Element::link(CTRL_LLP | CTRL_TCB, ll),
        ],
    );
    r.setup_channel(Dir::Rd, 3, 7, ll);
    r.doorbell(Dir::Rd, 3);
    assert_eq!(r.wait_stopped(Dir::Rd, 3), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DevRange), 1);
}

#[test]
fn masked_msi_vector_pends_until_unmasked() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.dev.cfg_write(MSI_MASK, 4, 1 << 8);
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("pending bit", || r.dev.cfg_read(MSI_PENDING, 4) == 1 << 8);
    assert_eq!(fired(&r.msi[8]), 0);
    r.dev.cfg_write(MSI_MASK, 4, 0);
    assert_eq!(fired(&r.msi[8]), 1);
    assert_eq!(r.dev.cfg_read(MSI_PENDING, 4), 0);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn intx_follows_unmasked_status_when_msi_is_off() {
    let r = Rig::metis();
    let intx = r.intx();
    one_element_write(&r, 0, 8);
    r.ew(INT_MASK.at(Dir::Wr), 0); // local interrupts on
    r.cw(Dir::Wr, 0, CH_CONTROL1, LL_CCS);
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE, 256, DEV_DATA, IOVA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("intx", || fired(&intx) == 1);
    assert_ne!(r.dev.cfg_read(STATUS, 2) & STATUS_INTX as u32, 0);
    // automasked: nothing more until the VMM unmasks; unmask with the
    // level still high fires again
    let unmask = |r: &Rig| r.unmask_intx();
    unmask(&r);
    assert_eq!(fired(&intx), 1);
    // the handler clears the status: level drops, unmask is quiet
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(0));
    assert_eq!(r.dev.cfg_read(STATUS, 2) & STATUS_INTX as u32, 0);
    unmask(&r);
    assert_eq!(fired(&intx), 0);
    // INTx Disable in Command holds the line low
    r.dev.cfg_write(
        COMMAND,
        2,
        (CMD_MEM | CMD_BUS_MASTER | CMD_INTX_DISABLE) as u32,
    );
    r.cw(Dir::Wr, 0, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Wr, 0, CH_LLP_LO, LL_WR as u32);
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE, 256, DEV_DATA, IOVA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(fired(&intx), 0);
}

#[test]
fn injections_hang_abort_corrupt_missed_doorbell() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    // hang: the channel stays running and moves nothing
    assert_eq!(handle(&r.dev, "inject hang-channel wr 0")["ok"], true);
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Running);
    assert_eq!(bytes_moved(&r).1, 0);
    // missed doorbell while running: consumed, logged
    handle(&r.dev, "inject missed-doorbell wr 0");
    r.doorbell(Dir::Wr, 0);
    let ev = handle(&r.dev, "events");
    assert!(ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "inject" && e["what"] == "missed-doorbell"));
    assert_eq!(
        handle(&r.dev, "stats")["device"]["armed"]["missed_doorbell"],
        serde_json::json!([])
    );
    // a stop doorbell ends the hang without interrupt
    r.ew(DOORBELL.at(Dir::Wr), Doorbell::new().with_stop(true).into());
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Stopped);

    // injected abort: abort status and abort IMWR, but no fault counted
    handle(&r.dev, "inject abort rd 1");
    put(
        &r,
        LL_RD,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 64, IOVA, DEV_DATA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_RD),
        ],
    );
    r.setup_channel(Dir::Rd, 1, 5, LL_RD);
    r.doorbell(Dir::Rd, 1);
    assert_eq!(r.wait_stopped(Dir::Rd, 1), Cs::Halted);
    assert_eq!(r.int_status(Dir::Rd), abort_bit(1));
    wait_until("abort irq", || fired(&r.msi[5]) == 1);
    assert_eq!(r.dev.total_faults(), 0);
    // corrupt descriptor fetch -> malformed list path
    handle(&r.dev, "inject corrupt-desc rd 1");
    r.ew(INT_CLEAR.at(Dir::Rd), abort_bit(1));
    r.cw(Dir::Rd, 1, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Rd, 1, CH_LLP_LO, LL_RD as u32);
    r.doorbell(Dir::Rd, 1);
    assert_eq!(r.wait_stopped(Dir::Rd, 1), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::LlMalformed), 1);
    // after the one-shot injections the same list runs cleanly
    r.ew(INT_CLEAR.at(Dir::Rd), abort_bit(1));
    r.cw(Dir::Rd, 1, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Rd, 1, CH_LLP_LO, LL_RD as u32);
    r.doorbell(Dir::Rd, 1);
    assert_eq!(r.wait_stopped(Dir::Rd, 1), Cs::Stopped);
    assert_eq!(r.int_status(Dir::Rd), done_bit(1));
}

#[test]
fn stuck_channel_ignores_stop_and_disable_until_reset() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    assert_eq!(handle(&r.dev, "inject stuck-channel wr 0")["ok"], true);
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Running);
    // Neither a stop doorbell nor disabling the engine gets it out.
    r.ew(DOORBELL.at(Dir::Wr), Doorbell::new().with_stop(true).into());
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Running);
    r.ew(ENGINE_EN.at(Dir::Wr), 0);
    assert_eq!(r.cs(Dir::Wr, 0), Cs::Running);
    assert_eq!(bytes_moved(&r).1, 0);
    // Only a reset does.
    r.dev.vfio_reset();
    assert_ne!(r.cs(Dir::Wr, 0), Cs::Running);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn drop_and_delay_irq_and_storm() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    handle(&r.dev, "inject drop-irq 1");
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(fired(&r.msi[8]), 0);
    assert_eq!(handle(&r.dev, "stats")["irqs_lost"], 1);
    handle(&r.dev, "inject delay-irq 1 80");
    one_element_write(&r, 0, 8);
    let t = Instant::now();
    r.doorbell(Dir::Wr, 0);
    wait_until("delayed irq", || fired(&r.msi[8]) == 1);
    assert!(t.elapsed() >= Duration::from_millis(80));
    let s = handle(&r.dev, "inject storm 3 1000");
    assert_eq!(s["sent"], 1000);
    assert_eq!(fired(&r.msi[3]), 1000);
}

#[test]
fn storm_is_silenced_by_clearing_bus_master() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.dev.cfg_write(COMMAND, 2, CMD_MEM as u32);
    let s = handle(&r.dev, "inject storm 3 100");
    assert_eq!(s["sent"], 100);
    assert_eq!(fired(&r.msi[3]), 0);
    assert_eq!(handle(&r.dev, "stats")["irqs_lost"], 100);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn channels_run_concurrently_with_correct_data() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let n = 256 << 10;
    for ch in 0..4usize {
        let dev_src = DEV_DATA + (ch as u64) * 0x10_0000;
        r.dev.mem_write(dev_src, &pattern(ch as u8, n));
        let ll = LL_WR + ch as u64 * 0x1000;
        put(
            &r,
            ll,
            &[
                Element::data(
                    CTRL_CB | CTRL_LIE | CTRL_RIE,
                    n as u32,
                    dev_src,
                    IOVA + (ch as u64) * 0x10_0000,
                ),
                Element::link(CTRL_LLP | CTRL_TCB, ll),
            ],
        );
        r.setup_channel(Dir::Wr, ch, 8 + ch as u32, ll);
        let host_src = IOVA + 0x80_0000 + (ch as u64) * 0x10_0000;
        r.guest_write(host_src, &pattern(100 + ch as u8, n));
        let llr = LL_RD + ch as u64 * 0x1000;
        put(
            &r,
            llr,
            &[
                Element::data(
                    CTRL_CB | CTRL_LIE | CTRL_RIE,
                    n as u32,
                    host_src,
                    DDR_BASE + 0x0c00_0000 + (ch as u64) * 0x10_0000,
                ),
                Element::link(CTRL_LLP | CTRL_TCB, llr),
            ],
        );
        r.setup_channel(Dir::Rd, ch, 4 + ch as u32, llr);
    }
    for ch in 0..4 {
        r.doorbell(Dir::Wr, ch);
        r.doorbell(Dir::Rd, ch);
    }
    for ch in 0..4usize {
        r.wait_stopped(Dir::Wr, ch);
        r.wait_stopped(Dir::Rd, ch);
        assert_eq!(
            r.guest_read(IOVA + (ch as u64) * 0x10_0000, n),
            pattern(ch as u8, n)
        );
        assert_eq!(
            r.dev
                .mem_read(DDR_BASE + 0x0c00_0000 + (ch as u64) * 0x10_0000, n)
                .unwrap(),
            pattern(100 + ch as u8, n)
        );
    }
    let f = fired_all(&r);
    assert_eq!(&f[4..12], &[1; 8]);
    assert_eq!(r.int_status(Dir::Wr), 0xf);
    assert_eq!(r.int_status(Dir::Rd), 0xf);
}

#[test]
fn link_model_takes_time() {
    let mut r = Rig::new(Options {
        link: "gen2x1".parse().unwrap(),
        ..small_opts()
    });
    r.enable_msi(32);
    let n: u32 = 4 << 20;
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, n, DEV_DATA, IOVA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.setup_channel(Dir::Wr, 0, 8, LL_WR);
    let t = Instant::now();
    r.doorbell(Dir::Wr, 0);
    wait_until("irq", || fired(&r.msi[8]) == 1);
    // 4 MiB + TLP overhead at 500 MB/s is about 9.2 ms
    let el = t.elapsed();
    assert!(el >= Duration::from_micros(9000), "{el:?}");
}

#[test]
fn bus_master_disabled_blocks_dma() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    one_element_write(&r, 0, 8);
    r.dev.cfg_write(COMMAND, 2, CMD_MEM as u32);
    r.doorbell(Dir::Wr, 0);
    assert_eq!(r.wait_stopped(Dir::Wr, 0), Cs::Halted);
    assert_eq!(r.dev.fault_count(Fault::DmaNoBusMaster), 1);
    // and the abort IMWR cannot be sent either
    wait_until("irq fault", || {
        r.dev.fault_count(Fault::IrqNoBusMaster) == 1
    });
}

#[test]
fn synopsys_identity_ll_in_bar2_by_bus_address() {
    let mut r = Rig::new(Options {
        identity: Identity::Synopsys,
        ..small_opts()
    });
    r.enable_msi(2);
    let bar2 = 0xfc00_0000u64;
    r.dev.cfg_write(BAR2, 4, bar2 as u32);
    // EDDA layout: write channel 0's list at BAR2 offset 0, built by the
    // host with writel/writeq through the BAR.
    let data = pattern(7, 4096);
    r.dev.mem_write(0x0100_0000, &data);
    let elems = [
        Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 4096, 0x0100_0000, IOVA),
        Element::link(CTRL_LLP | CTRL_TCB, bar2),
    ];
    for (i, e) in elems.iter().enumerate() {
        let b = 24 * i as u64;
        r.dev.mmio_write(
            2,
            b,
            4,
            u32::from_le_bytes(e[0..4].try_into().unwrap()) as u64,
        );
        r.dev.mmio_write(
            2,
            b + 4,
            4,
            u32::from_le_bytes(e[4..8].try_into().unwrap()) as u64,
        );
        r.dev.mmio_write(
            2,
            b + 8,
            8,
            u64::from_le_bytes(e[8..16].try_into().unwrap()),
        );
        r.dev.mmio_write(
            2,
            b + 16,
            8,
            u64::from_le_bytes(e[16..24].try_into().unwrap()),
        );
    }
    r.setup_channel(Dir::Wr, 0, 0, bar2);
    r.doorbell(Dir::Wr, 0);
    assert_eq!(r.wait_stopped(Dir::Wr, 0), Cs::Stopped);
    assert_eq!(r.guest_read(IOVA, 4096), data);
    assert_eq!(fired(&r.msi[0]), 1);
    assert_eq!(
        r.cr(Dir::Wr, 0, CH_LLP_LO) as u64,
        bar2,
        "CTRL_LLP stays a bus address"
    );
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn engine_disable_stops_running_channel() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    handle(&r.dev, "inject hang-channel rd 2");
    put(
        &r,
        LL_RD,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 64, IOVA, DEV_DATA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_RD),
        ],
    );
    r.setup_channel(Dir::Rd, 2, 6, LL_RD);
    r.doorbell(Dir::Rd, 2);
    assert_eq!(r.cs(Dir::Rd, 2), Cs::Running);
    r.ew(ENGINE_EN.at(Dir::Rd), 0);
    assert_eq!(r.cs(Dir::Rd, 2), Cs::Stopped);
    assert_eq!(r.er(ENGINE_EN.at(Dir::Rd)), 0);
}

#[test]
fn msix_delivery_by_vector_map_or_by_table() {
    let r = Rig::new(Options {
        msix: 16,
        ..small_opts()
    });
    r.dev.cfg_write(MSIX_CTRL, 2, MSIX_CTRL_ENABLE as u32);
    let fds: Vec<std::fs::File> = (0..16).map(|_| eventfd()).collect();
    r.dev
        .set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            16,
            fds.iter().map(|f| f.try_clone().unwrap()).collect(),
        )
        .unwrap();
    // QEMU keeps the MSI-X table to itself: IMWR goes by the known map
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("msix 8", || fired(&fds[8]) == 1);
    assert_eq!(handle(&r.dev, "stats")["imwr_unverified"], 1);
    // command completions use vector 12, BOOT's (signalled by the bootloader) too
    r.boot_default();
    wait_until("boot answer on 12", || fired(&fds[12]) == 1);
    r.clear_vmsi_word(12);
    r.cmd(metis_emu::boot::op::ECHO, &[]);
    wait_until("echo answer on 12", || fired(&fds[12]) == 1);
    // once the table is written through the BAR, IMWR must match an entry
    let e = 0xa00 + 3 * 16;
    r.ew(e, MSI_ADDR as u32);
    r.ew(e + 4, 0);
    r.ew(e + 8, 0x4023);
    r.ew(e + 12, 0);
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("mismatch", || r.dev.fault_count(Fault::ImwrMismatch) == 1);
    r.ew(CH_IMWR_DATA(0).at(Dir::Wr), 0x4023);
    r.cw(Dir::Wr, 0, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Wr, 0, CH_LLP_LO, LL_WR as u32);
    put(
        &r,
        LL_WR,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 64, DEV_DATA, IOVA),
            Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
        ],
    );
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("msix 3", || fired(&fds[3]) == 1);
}

#[test]
fn msix_sources_share_vector_0_when_only_it_is_wired() {
    let r = Rig::new(Options {
        msix: 16,
        ..small_opts()
    });
    r.dev.cfg_write(MSIX_CTRL, 2, MSIX_CTRL_ENABLE as u32);
    let fd = eventfd();
    r.dev
        .set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            1,
            vec![fd.try_clone().unwrap()],
        )
        .unwrap();
    // Write channel 0 (map vector 8) and command completion (map vector 12)
    // both arrive on vector 0, the only one the host wired.
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("imwr on vector 0", || fired(&fd) == 1);
    r.boot_default();
    r.cmd(metis_emu::boot::op::ECHO, &[]);
    wait_until("completion on vector 0", || fired(&fd) >= 1);
    assert_eq!(r.vmsi_word(12), 1);
    assert_eq!(r.dev.total_faults(), 0);
}

/// One list element of `len` bytes from device `src` to host `dst`, linked back
/// to the list's start at `at`, as dw-edma lays out a one-chunk descriptor.
fn one_element_list(r: &Rig, at: u64, len: u32, src: u64, dst: u64) {
    put(
        r,
        at,
        &[
            Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, len, src, dst),
            Element::link(CTRL_LLP | CTRL_TCB, at),
        ],
    );
}

/// Runs a first list on write channel `ch` with the walker held on its link
/// element after the done interrupt (`link-stall`), then does what dw-edma
/// does from that interrupt: clears the status, writes the next list at
/// `list_b` and programs CH_CONTROL1 and LLP, without ringing yet.
fn reprogram_behind_done(
    r: &Rig,
    ch: usize,
    vector: usize,
    first: (u64, u64, u32),
    list_b: u64,
    second: (u64, u64, u32),
) {
    one_element_list(r, LL_WR, first.2, first.0, first.1);
    let stall = handle(&r.dev, &format!("inject link-stall wr {ch} 30000"));
    assert_eq!(stall["ok"], true);
    r.setup_channel(Dir::Wr, ch, vector as u32, LL_WR);
    r.doorbell(Dir::Wr, ch);
    wait_until("first done", || fired(&r.msi[vector]) == 1);
    // The walker now sits on the link element, CCS and LLP snapshotted.
    assert_eq!(r.cs(Dir::Wr, ch), Cs::Running);
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(ch));
    one_element_list(r, list_b, second.2, second.0, second.1);
    r.cw(Dir::Wr, ch, CH_CONTROL1, LL_CCS);
    r.cw(Dir::Wr, ch, CH_LLP_LO, list_b as u32);
    r.cw(Dir::Wr, ch, CH_LLP_HI, (list_b >> 32) as u32);
}

/// dw-edma starts a channel's next descriptor from the done interrupt of the
/// previous one: it writes a new list, CH_CONTROL1 = CCS|LLE, LLP, then rings
/// the doorbell, while the walker may still be following the link element
/// behind the interrupt. The walker must not then toggle the host's fresh CCS
/// or overwrite its LLP, or the new descriptor never runs (seen once in CI as
/// a dw-edma transfer that timed out with nothing moved). The link stall
/// holds the walker inside that window until the host has reprogrammed the
/// channel, so the race happens every time, however loaded the machine.
#[test]
fn reprogramming_behind_the_done_interrupt_is_not_lost() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let first = pattern(21, 4096);
    let second = pattern(22, 8192);
    r.dev.mem_write(DEV_DATA, &first);
    r.dev.mem_write(DEV_DATA + 0x10000, &second);
    let h = IOVA + 0x60_0000;
    let list_b = LL_WR + 0x400;
    reprogram_behind_done(
        &r,
        3,
        11,
        (DEV_DATA, h, 4096),
        list_b,
        (DEV_DATA + 0x10000, h + 0x10000, 8192),
    );
    r.doorbell(Dir::Wr, 3);
    assert_eq!(handle(&r.dev, "inject link-release wr 3")["ok"], true);
    wait_until("second done", || fired(&r.msi[11]) == 1);
    assert_eq!(r.wait_stopped(Dir::Wr, 3), Cs::Stopped);
    assert_eq!(r.guest_read(h, first.len()), first);
    assert_eq!(r.guest_read(h + 0x10000, second.len()), second);
    // The second list's own link toggled CCS and points back to its start.
    assert!(!r.ctrl1(Dir::Wr, 3).ccs());
    assert_eq!(r.cr(Dir::Wr, 3, CH_LLP_LO) as u64, list_b);
    assert_eq!(r.dev.total_faults(), 0);
    assert!(!r.events_of("reprogrammed_behind_walk").is_empty());
}

/// Hardware fetches its list ahead of the transfer: by the time the host sees
/// an element's done interrupt, the engine has followed the link behind it and
/// read the element there, and stopped if that one is not handed over. dw-edma
/// relies on it: from the done interrupt it rewrites the same list in place
/// (the next chunk, whose cycle bit matches the CCS the link left) and rings.
/// A walker still fetching once the host has begun would run the rewrite half
/// done or the previous chunk's stale elements behind it (seen under load as a
/// dw-edma job that never completed, and as a list fault with a lagging walker).
/// `walk-lag` puts the walker aside right after each interrupt, as a loaded
/// host can, so that such a walker fetches after the rewrite every time.
#[test]
fn the_fetch_behind_a_done_interrupt_comes_before_it() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let data = pattern(31, 8192);
    r.dev.mem_write(DEV_DATA, &data);
    let h = IOVA + 0x78_0000;
    for round in 0..20u64 {
        put(
            &r,
            LL_WR,
            &[
                Element::data(CTRL_CB, 4096, DEV_DATA, h),
                Element::data(
                    CTRL_CB | CTRL_LIE | CTRL_RIE,
                    4096,
                    DEV_DATA + 4096,
                    h + 4096,
                ),
                Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
            ],
        );
        r.setup_channel(Dir::Wr, 1, 9, LL_WR);
        assert_eq!(handle(&r.dev, "inject walk-lag wr 1 5000")["ok"], true);
        r.doorbell(Dir::Wr, 1);
        wait_until("done", || r.int_status(Dir::Wr) & done_bit(1) != 0);
        // Seen at once, without waiting: stopped on slot 0, CCS toggled by the link.
        assert_eq!(r.cs(Dir::Wr, 1), Cs::Stopped, "round {round}");
        assert!(!r.ctrl1(Dir::Wr, 1).ccs(), "round {round}");
        assert_eq!(r.cr(Dir::Wr, 1, CH_LLP_LO) as u64, LL_WR, "round {round}");
        // What the host writes now (here: slot 0 handed over, no doorbell) is not run.
        put(
            &r,
            LL_WR,
            &[Element::data(
                CTRL_LIE | CTRL_RIE,
                4096,
                DEV_DATA,
                h + 0x8000,
            )],
        );
        handle(&r.dev, "inject link-release wr 1");
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(r.int_status(Dir::Wr), done_bit(1), "round {round}");
        r.ew(INT_CLEAR.at(Dir::Wr), done_bit(1));
        assert_eq!(fired(&r.msi[9]), 1, "round {round}");
    }
    assert_eq!(r.guest_read(h, data.len()), data);
    assert_eq!(r.guest_read(h + 0x8000, 16), vec![0u8; 16]);
    assert_eq!(bytes_moved(&r).1, 20 * 8192);
    assert_eq!(r.dev.total_faults(), 0);
}

/// The host reprograms a channel behind its done interrupt but has not rung
/// yet: the walker must not run the new list on its own; the doorbell does.
#[test]
fn reprogrammed_channel_waits_for_its_doorbell() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let data = pattern(23, 4096);
    r.dev.mem_write(DEV_DATA, &data);
    let h = IOVA + 0x70_0000;
    let list_b = LL_WR + 0x800;
    reprogram_behind_done(
        &r,
        2,
        10,
        (DEV_DATA, h, 4096),
        list_b,
        (DEV_DATA, h + 0x10000, 4096),
    );
    handle(&r.dev, "inject link-release wr 2");
    assert_eq!(r.wait_stopped(Dir::Wr, 2), Cs::Stopped);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        fired(&r.msi[10]),
        0,
        "the new list ran without its doorbell"
    );
    assert_eq!(r.guest_read(h + 0x10000, 16), vec![0u8; 16]);
    // The host's registers were kept; the doorbell runs the new list.
    assert_eq!(r.cr(Dir::Wr, 2, CH_LLP_LO) as u64, list_b);
    r.doorbell(Dir::Wr, 2);
    wait_until("second done", || fired(&r.msi[10]) == 1);
    assert_eq!(r.guest_read(h + 0x10000, data.len()), data);
    assert_eq!(r.dev.total_faults(), 0);
}

/// A stop request that arrives just after the transfer finished finds the
/// channel done: the status and its message are there for the driver to
/// take (or to clear) even though it asked for a stop.
#[test]
fn done_on_stop_reports_done_instead_of_halting() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    handle(&r.dev, "inject hang-channel wr 1");
    assert_eq!(handle(&r.dev, "inject done-on-stop wr 1")["ok"], true);
    one_element_write(&r, 1, 9);
    r.doorbell(Dir::Wr, 1);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(r.cs(Dir::Wr, 1), Cs::Running);
    r.ew(
        DOORBELL.at(Dir::Wr),
        Doorbell::new().with_stop(true).with_ch(1).into(),
    );
    assert_eq!(r.cs(Dir::Wr, 1), Cs::Stopped);
    assert_eq!(r.int_status(Dir::Wr), done_bit(1));
    wait_until("done message", || fired(&r.msi[9]) == 1);
    // One-shot: the next stop of a running channel halts it silently.
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(1));
    handle(&r.dev, "inject hang-channel wr 1");
    r.doorbell(Dir::Wr, 1);
    r.ew(
        DOORBELL.at(Dir::Wr),
        Doorbell::new().with_stop(true).with_ch(1).into(),
    );
    assert_eq!(r.cs(Dir::Wr, 1), Cs::Stopped);
    assert_eq!(r.int_status(Dir::Wr), 0);
    assert_eq!(r.dev.total_faults(), 0);
}

/// Writes an element through BAR2 word by word, control word first or last.
fn write_element(r: &Rig, at: u64, e: &[u8; 24], control_last: bool) {
    let word = |i: usize| u32::from_le_bytes(e[i * 4..i * 4 + 4].try_into().unwrap());
    let order: Vec<usize> = if control_last {
        vec![1, 2, 3, 4, 5, 0]
    } else {
        (0..6).collect()
    };
    for i in order {
        r.b2w(l2_off(at) + 4 * i as u64, word(i));
    }
}

/// `torn-fetch`: the element behind a window's link is fetched as the host's
/// first write into it leaves it. A host that hands the element over (control
/// word, with the cycle bit) before writing its addresses has the engine move
/// the stale element again, and the new one never; a host that writes the
/// control word last has the engine stop there until the doorbell.
#[test]
fn torn_fetch_moves_a_half_written_element() {
    for control_last in [false, true] {
        let mut r = Rig::metis();
        r.enable_msi(32);
        let d1 = pattern(5, 4096);
        let d2 = pattern(6, 4096);
        r.dev.mem_write(DEV_DATA, &d1);
        r.dev.mem_write(DEV_DATA + 0x10000, &d2);
        let (h1, h2) = (IOVA + 0x40_0000, IOVA + 0x50_0000);
        put(
            &r,
            LL_WR,
            &[
                Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, 4096, DEV_DATA, h1),
                Element::link(CTRL_LLP | CTRL_TCB, LL_WR),
            ],
        );
        let a = handle(&r.dev, "inject torn-fetch wr 1 1");
        assert_eq!(a["ok"], true, "{a}");
        r.setup_channel(Dir::Wr, 1, 3, LL_WR);
        r.doorbell(Dir::Wr, 1);
        wait_until("window 1", || r.int_status(Dir::Wr) & done_bit(1) != 0);
        assert_eq!(r.guest_read(h1, 4096), d1);
        r.ew(INT_CLEAR.at(Dir::Wr), done_bit(1));
        // The walker now waits at slot 0 for the host's first write; h1 is
        // cleared to show a second move of the stale element.
        r.guest_write(h1, &[0u8; 4096]);
        write_element(
            &r,
            LL_WR,
            &Element::data(CTRL_LIE | CTRL_RIE, 4096, DEV_DATA + 0x10000, h2),
            control_last,
        );
        write_element(
            &r,
            LL_WR + 24,
            &Element::link(CTRL_LLP | CTRL_TCB | CTRL_CB, LL_WR),
            control_last,
        );
        wait_until("torn fetch", || {
            !r.events_of("inject")
                .iter()
                .all(|e| e["what"] != "torn-fetch")
        });
        let ev = r.events_of("inject");
        let torn = ev.iter().find(|e| e["what"] == "torn-fetch").unwrap();
        assert_eq!(torn["host_wrote"], true, "{torn}");
        r.doorbell(Dir::Wr, 1);
        wait_until("window 2", || r.int_status(Dir::Wr) & done_bit(1) != 0);
        r.wait_stopped(Dir::Wr, 1);
        if control_last {
            // Stopped at the old cycle bit; the doorbell moved the new element only.
            assert_eq!(r.guest_read(h1, 4096), vec![0u8; 4096]);
            assert_eq!(r.guest_read(h2, 4096), d2);
        } else {
            // The stale addresses were moved; the new element never was.
            assert_eq!(r.guest_read(h1, 4096), d1);
            assert_eq!(r.guest_read(h2, 4096), vec![0u8; 4096]);
        }
        assert_eq!(r.dev.total_faults(), 0);
    }
}

#[test]
fn engine_off_from_the_card_needs_the_host_to_enable_again() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.ew(ENGINE_EN.at(Dir::Wr), 1);
    r.ew(ENGINE_EN.at(Dir::Rd), 1);
    assert_eq!(r.er(ENGINE_EN.at(Dir::Wr)), 1);
    handle(&r.dev, "inject engine-off");
    assert_eq!(r.er(ENGINE_EN.at(Dir::Wr)), 0);
    assert_eq!(r.er(ENGINE_EN.at(Dir::Rd)), 0);
    // A doorbell now is refused as the hardware would.
    r.doorbell(Dir::Wr, 0);
    wait_until("fault", || {
        r.dev.fault_count(Fault::DoorbellEngineDisabled) == 1
    });
    r.ew(ENGINE_EN.at(Dir::Wr), 1);
    one_element_write(&r, 0, 8);
    r.doorbell(Dir::Wr, 0);
    r.wait_stopped(Dir::Wr, 0);
    wait_until("imwr", || fired(&r.msi[8]) == 1);
}
