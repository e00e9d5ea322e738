//! Resets and power states: what each reset loses, D3hot->D0 keeping state
//! (NoSoftRst+) or not (--d3-loses-state), and DMA cancellation.

mod common;
use common::*;
use metis_emu::boot::{off, FwState};
use metis_emu::config::*;
use metis_emu::control::handle;
use metis_emu::devmem::{DDR_BASE, L2_BASE};
use metis_emu::edma::ll::*;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use metis_emu::iface::{HOST_DRV_CTRL, MASTER_VERSION};
use metis_emu::{Fault, Options};
use std::time::Duration;

/// A card with firmware running, an engine programmed, data in memory.
fn busy_card(opts: Options) -> Rig {
    let mut r = Rig::new(opts);
    r.dev.cfg_write(BAR2, 4, 0xfc00_0000);
    r.enable_msi(32);
    r.boot_default();
    r.dev.mem_write(DDR_BASE + 0x0500_0000, b"precious");
    r.dev.mem_write(L2_BASE + 0x20_0000, b"L2 too");
    r.setup_channel(Dir::Wr, 1, 9, LL_WR);
    r
}

fn assert_lost(r: &Rig) {
    assert_eq!(r.state(), FwState::Bootloader as u32);
    assert_eq!(r.b2r(off::FW_VERSION), 0);
    assert_eq!(r.b2r(MASTER_VERSION), 0);
    assert_eq!(r.b2r(HOST_DRV_CTRL), 0, "registration gone");
    assert_eq!(r.dev.mmio_read(2, 0, 2), 0xFD1F, "bootloader republished");
    assert_eq!(r.er(ENGINE_EN.at(Dir::Wr)), 0);
    assert_eq!(r.er(DONE_IMWR_LO.at(Dir::Wr)), 0);
    assert_eq!(r.cr(Dir::Wr, 1, CH_LLP_LO), 0);
    assert_eq!(r.cr(Dir::Wr, 1, CH_CONTROL1), 0);
    assert_eq!(
        r.dev.mem_read(DDR_BASE + 0x0500_0000, 8).unwrap(),
        vec![0; 8]
    );
    assert_eq!(r.bar2_bytes(0x20_0000, 6), vec![0; 6]);
}

fn assert_kept(r: &Rig) {
    assert_eq!(r.state(), FwState::Ready as u32);
    assert_eq!(r.b2r(HOST_DRV_CTRL), 1);
    assert_eq!(r.er(ENGINE_EN.at(Dir::Wr)), 1);
    assert_eq!(r.cr(Dir::Wr, 1, CH_LLP_LO) as u64, LL_WR);
    assert_eq!(
        r.dev.mem_read(DDR_BASE + 0x0500_0000, 8).unwrap(),
        b"precious".to_vec()
    );
    assert_eq!(r.bar2_bytes(0x20_0000, 6), b"L2 too");
}

#[test]
fn vfio_reset_loses_everything() {
    let r = busy_card(small_opts());
    r.dev.vfio_reset();
    // config space back to power-on values
    assert_eq!(r.dev.cfg_read(BAR2, 4), 0);
    assert_eq!(r.dev.cfg_read(MSI_CTRL, 2) & 1, 0);
    assert_eq!(r.dev.cfg_read(COMMAND, 2), 0);
    r.dev.cfg_write(COMMAND, 2, 2);
    assert_lost(&r);
    let s = handle(&r.dev, "stats");
    assert_eq!(s["resets"]["vfio"], 1);
}

#[test]
fn flr_through_devctl_loses_state() {
    let r = busy_card(small_opts());
    r.dev.cfg_write(PCIE_DEVCTL, 2, 0x8000 | 0x2810);
    assert_eq!(
        r.dev.cfg_read(PCIE_DEVCTL, 2) & 0x8000,
        0,
        "FLR bit reads 0"
    );
    assert_eq!(r.dev.cfg_read(MSI_CTRL, 2) & 1, 0);
    r.dev.cfg_write(COMMAND, 2, 2);
    assert_lost(&r);
    assert_eq!(handle(&r.dev, "stats")["resets"]["flr"], 1);
}

#[test]
fn d3hot_and_back_keeps_state_with_no_soft_reset() {
    let r = busy_card(small_opts());
    r.dev.cfg_write(PMCSR, 2, 3);
    // the function does not answer memory accesses in D3hot
    assert_eq!(r.state(), 0xffff_ffff);
    assert_eq!(r.er(CTRL.offset()), 0xffff_ffff);
    assert_eq!(r.dev.fault_count(Fault::MmioLowPower), 2);
    std::thread::sleep(Duration::from_millis(20));
    r.dev.cfg_write(PMCSR, 2, 0);
    assert_kept(&r);
    assert_eq!(r.dev.cfg_read(BAR2, 4), 0xfc00_0000);
    assert_eq!(r.dev.cfg_read(MSI_CTRL, 2) & 1, 1);
}

#[test]
fn d3hot_loses_state_when_asked() {
    let r = busy_card(Options {
        d3_loses_state: true,
        ..small_opts()
    });
    assert_eq!(r.dev.cfg_read(PMCSR, 2) & 1 << 3, 0, "NoSoftRst-");
    r.dev.cfg_write(PMCSR, 2, 3);
    r.dev.cfg_write(PMCSR, 2, 0);
    assert_eq!(r.dev.cfg_read(BAR2, 4), 0, "D0uninitialized");
    r.dev.cfg_write(COMMAND, 2, 2);
    assert_lost(&r);
    assert_eq!(handle(&r.dev, "stats")["resets"]["d3"], 1);
}

#[test]
fn surprise_reset_keeps_config_but_loses_card_state() {
    let r = busy_card(small_opts());
    handle(&r.dev, "inject surprise-reset");
    assert_eq!(r.dev.cfg_read(BAR2, 4), 0xfc00_0000);
    assert_eq!(r.dev.cfg_read(MSI_CTRL, 2) & 1, 1);
    assert_lost(&r);
}

#[test]
fn reset_cancels_in_flight_dma() {
    // 32 MiB (all of the test guest) at gen1x1 (~250 MB/s) takes ~135 ms: reset
    // in the middle, once the engine has visibly started (a fixed sleep is too
    // short or too long on a loaded machine).
    let mut r = Rig::new(Options {
        link: "gen1x1".parse().unwrap(),
        ..small_opts()
    });
    r.enable_msi(32);
    let n: u32 = 32 << 20;
    r.dev.mem_write(DEV_DATA, &vec![0x5a; n as usize]);
    r.dev.mem_write(
        LL_WR,
        &Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, n, DEV_DATA, IOVA),
    );
    r.dev
        .mem_write(LL_WR + 24, &Element::link(CTRL_LLP | CTRL_TCB, LL_WR));
    r.setup_channel(Dir::Wr, 0, 8, LL_WR);
    r.doorbell(Dir::Wr, 0);
    wait_until("the engine's first bytes", || {
        r.guest_read(IOVA, 4096)[0] == 0x5a
    });
    r.dev.vfio_reset();
    let after_reset = r.guest_read(IOVA, n as usize);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(
        r.guest_read(IOVA, n as usize),
        after_reset,
        "no writes after reset"
    );
    let moved = after_reset.iter().filter(|&&b| b == 0x5a).count();
    assert!(moved > 0 && moved < n as usize, "transfer was cut: {moved}");
    assert_eq!(fired(&r.msi[8]), 0, "no done interrupt");
    assert_eq!(r.er(INT_STATUS.at(Dir::Wr)), 0);
}
