//! Config space: identity, BAR sizing, read-only and RW1C bits, the
//! capability chains (standard and extended, with the Synopsys VSEC), MSI
//! tracking and the other identities.

mod common;
use common::*;
use metis_emu::config::*;
use metis_emu::{Device, Identity, Options};

fn dev() -> Device {
    Device::new(small_opts()).unwrap()
}

#[test]
fn identity_and_class() {
    let d = dev();
    assert_eq!(d.cfg_read(0x00, 2), 0x1f9d);
    assert_eq!(d.cfg_read(0x02, 2), 0x1100);
    assert_eq!(d.cfg_read(0x08, 1), 0x02, "revision");
    assert_eq!(d.cfg_read(0x08, 4) >> 8, 0x12_0000, "class");
    assert_eq!(d.cfg_read(0x2c, 2), 0x1f9d, "subsystem vendor");
    assert_eq!(d.cfg_read(0x2e, 2), 0x1100, "subsystem device");
    assert_eq!(d.cfg_read(0x0e, 1), 0, "header type 0");
    assert_eq!(d.cfg_read(0x3d, 1), 1, "INTA");
    // unaligned sub-dword reads see the same bytes
    assert_eq!(d.cfg_read(0x01, 2), 0x001f);
    assert_eq!(d.cfg_read(0x0a, 2), 0x1200);
}

#[test]
fn read_only_bits_ignore_writes() {
    let d = dev();
    d.cfg_write(0x00, 4, 0xdead_beef);
    assert_eq!(d.cfg_read(0x00, 4), 0x1100_1f9d);
    d.cfg_write(0x08, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(0x08, 4), 0x1200_0002);
    // Capabilities List bit stays set, I/O space enable is not writable
    d.cfg_write(COMMAND, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(STATUS, 2) & 0x10, 0x10);
    let cmd = d.cfg_read(COMMAND, 2);
    assert_eq!(cmd & 1, 0, "no I/O space");
    assert_eq!(
        cmd & 0x406,
        0x406,
        "memory, bus master, INTx disable writable"
    );
    // MSI capability bits (MMC, 64-bit, per-vector mask) are read-only
    d.cfg_write(MSI_CTRL, 2, 0);
    assert_eq!(d.cfg_read(MSI_CTRL, 2), 5 << 1 | 1 << 7 | 1 << 8);
    // PCIe DevCap read-only
    let devcap = d.cfg_read(PCIE_DEVCAP, 4);
    d.cfg_write(PCIE_DEVCAP, 4, 0);
    assert_eq!(d.cfg_read(PCIE_DEVCAP, 4), devcap);
    // VSEC is read-only
    d.cfg_write(VSEC_CAP + 0xc, 4, 0);
    assert_eq!(d.cfg_read(VSEC_CAP + 0xc, 4), 0x0004_0004);
}

#[test]
fn rw1c_status_bits() {
    let d = dev();
    // AER correctable status is RW1C: writing ones to a clear register keeps it
    // clear, and stored RW bits next to it (the mask) are unaffected.
    d.cfg_write(AER_CAP + 0x14, 4, 0x41);
    assert_eq!(d.cfg_read(AER_CAP + 0x14, 4), 0x41);
    d.cfg_write(AER_CAP + 0x10, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(AER_CAP + 0x10, 4), 0);
    // DevSta error bits are RW1C, not RW: writing 1 never sets them
    d.cfg_write(PCIE_DEVSTA, 2, 0xf);
    assert_eq!(d.cfg_read(PCIE_DEVSTA, 2) & 0xf, 0);
}

#[test]
fn bar_sizing() {
    let d = dev();
    // BAR0: 4 KiB, 64-bit, non-prefetchable
    assert_eq!(d.cfg_read(BAR0, 4), 0x4);
    d.cfg_write(BAR0, 4, 0xffff_ffff);
    d.cfg_write(BAR1, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(BAR0, 4), 0xffff_f004);
    assert_eq!(d.cfg_read(BAR1, 4), 0xffff_ffff);
    // BAR2: 32 MiB, 32-bit, non-prefetchable
    d.cfg_write(BAR2, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(BAR2, 4), 0xfe00_0000);
    // BAR3..5 absent
    for b in [0x1c, 0x20, 0x24] {
        d.cfg_write(b, 4, 0xffff_ffff);
        assert_eq!(d.cfg_read(b, 4), 0);
    }
    // ROM: 64 KiB with enable bit
    d.cfg_write(ROM_BAR, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(ROM_BAR, 4), 0xffff_0001);
    // assignment sticks, low bits forced
    d.cfg_write(BAR2, 4, 0xfc12_3456);
    assert_eq!(d.cfg_read(BAR2, 4), 0xfc00_0000);
    d.cfg_write(BAR0, 4, 0xfebf_f123);
    assert_eq!(d.cfg_read(BAR0, 4), 0xfebf_f004);
}

#[test]
fn capability_chain_walk() {
    let d = dev();
    assert_ne!(d.cfg_read(STATUS, 2) & 0x10, 0);
    let mut ptr = d.cfg_read(0x34, 1) as usize;
    let mut ids = Vec::new();
    while ptr != 0 {
        assert!(ptr >= 0x40 && ptr.is_multiple_of(4));
        ids.push((ptr, d.cfg_read(ptr, 1)));
        ptr = d.cfg_read(ptr + 1, 1) as usize;
        assert!(ids.len() < 16);
    }
    assert_eq!(ids, vec![(0x40, 0x01), (0x50, 0x05), (0x70, 0x10)]);
    // PM v3, D1 support, NoSoftRst+
    let pmc = d.cfg_read(PM_CAP + 2, 2);
    assert_eq!(pmc & 7, 3);
    assert_ne!(pmc & 1 << 9, 0, "D1");
    assert_ne!(d.cfg_read(PMCSR, 2) & 1 << 3, 0, "NoSoftRst+");
    // PCIe v2 endpoint, MPS 512, FLR, Gen3 x4
    assert_eq!(d.cfg_read(PCIE_CAP + 2, 2), 0x0002);
    let devcap = d.cfg_read(PCIE_DEVCAP, 4);
    assert_eq!(devcap & 7, 2);
    assert_ne!(devcap & 1 << 28, 0);
    assert_eq!(d.cfg_read(PCIE_LNKCAP, 4) & 0x3ff, 0x43);
    assert_eq!(d.cfg_read(PCIE_LNKSTA, 2) & 0x3ff, 0x43);

    // Extended capabilities from 0x100
    let mut off = 0x100usize;
    let mut ext = Vec::new();
    while off != 0 {
        let h = d.cfg_read(off, 4);
        ext.push((off, h & 0xffff, (h >> 16) & 0xf));
        off = (h >> 20) as usize;
        assert!(ext.len() < 16);
    }
    let idset: Vec<(usize, u32)> = ext.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        idset,
        vec![
            (0x100, 0x0001),
            (0x140, 0x0018),
            (0x150, 0x001e),
            (0x180, 0x000b)
        ]
    );
    // Synopsys DMA VSEC as a driver finds it by walking (not by vendor)
    let v = 0x180;
    let hdr = d.cfg_read(v + 4, 4);
    assert_eq!(hdr, 0x0180_0006);
    assert_eq!(hdr & 0xffff, 6, "VSEC ID");
    assert_eq!((hdr >> 16) & 0xf, 0, "rev");
    assert_eq!(hdr >> 20, 0x18, "len");
    let map = d.cfg_read(v + 8, 4);
    assert_eq!(map & 7, 1, "eDMA unrolled");
    assert_eq!((map >> 8) & 7, 0, "eDMA in BAR0");
    assert_eq!(d.cfg_read(v + 0xc, 4), 0x0004_0004);
    assert_eq!(d.cfg_read(v + 0x10, 4), 0);
    assert_eq!(d.cfg_read(v + 0x14, 4), 0);
}

fn ext_caps(d: &Device) -> Vec<(usize, u32)> {
    let mut off = 0x100usize;
    let mut ext = Vec::new();
    while off != 0 {
        let h = d.cfg_read(off, 4);
        ext.push((off, h & 0xffff));
        off = (h >> 20) as usize;
        assert!(ext.len() < 16);
    }
    ext
}

#[test]
fn no_vsec_drops_the_capability_and_keeps_the_chain() {
    for identity in [Identity::Metis, Identity::Synopsys] {
        let d = Device::new(Options {
            vsec: false,
            identity,
            ..small_opts()
        })
        .unwrap();
        assert_eq!(
            ext_caps(&d),
            vec![(0x100, 0x0001), (0x140, 0x0018), (0x150, 0x001e)],
            "{identity:?}"
        );
        for o in (0x180..0x198).step_by(4) {
            assert_eq!(d.cfg_read(o, 4), 0, "{o:#x}");
        }
    }
    assert_eq!(ext_caps(&dev()).last(), Some(&(0x180, 0x000b)));
}

#[test]
fn msi_capability_tracks_guest_writes() {
    let mut r = Rig::metis();
    r.enable_msi(16);
    let s = metis_emu::control::handle(&r.dev, "stats");
    let m = &s["device"]["msi"];
    assert_eq!(m["enabled"], true);
    assert_eq!(m["vectors"], 16);
    assert_eq!(m["addr"], "0xfee00000");
    assert_eq!(m["data"], "0x4020");
    // mask bits are RW, pending bits read-only
    r.dev.cfg_write(MSI_MASK, 4, 0x0000_1100);
    assert_eq!(r.dev.cfg_read(MSI_MASK, 4), 0x1100);
    r.dev.cfg_write(MSI_PENDING, 4, 0xffff_ffff);
    assert_eq!(r.dev.cfg_read(MSI_PENDING, 4), 0);
    // address low bits are forced to 0
    r.dev.cfg_write(MSI_ADDR_LO, 4, 0xfee0_0003);
    assert_eq!(r.dev.cfg_read(MSI_ADDR_LO, 4), 0xfee0_0000);
    // disabling is tracked
    r.dev.cfg_write(MSI_CTRL, 2, 0);
    let s = metis_emu::control::handle(&r.dev, "stats");
    assert_eq!(s["device"]["msi"]["enabled"], false);
}

#[test]
fn power_state_field() {
    let d = dev();
    d.cfg_write(PMCSR, 2, 3);
    assert_eq!(d.cfg_read(PMCSR, 2) & 3, 3);
    d.cfg_write(PMCSR, 2, 2); // D2 unsupported: ignored
    assert_eq!(d.cfg_read(PMCSR, 2) & 3, 3);
    d.cfg_write(PMCSR, 2, 0);
    assert_eq!(d.cfg_read(PMCSR, 2) & 3, 0);
}

#[test]
fn rom_has_valid_header() {
    let d = dev();
    let mut rom = vec![0u8; 64 << 10];
    d.region_read(6, 0, &mut rom);
    assert_eq!(&rom[0..2], &[0x55, 0xaa]);
    let p = u16::from_le_bytes([rom[0x18], rom[0x19]]) as usize;
    assert_eq!(&rom[p..p + 4], b"PCIR");
    assert_eq!(u16::from_le_bytes([rom[p + 4], rom[p + 5]]), 0x1f9d);
    assert_eq!(
        rom[p + 0x14],
        3,
        "EFI code type: legacy BIOS must not run it"
    );
    assert_eq!(rom[..512].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
}

#[test]
fn synopsys_identity() {
    let d = Device::new(Options {
        identity: Identity::Synopsys,
        ..small_opts()
    })
    .unwrap();
    assert_eq!(d.cfg_read(0, 4), 0xedda_16c3);
    assert_eq!(d.region_size(0), 64 << 10);
    d.cfg_write(BAR0, 4, 0xffff_ffff);
    assert_eq!(d.cfg_read(BAR0, 4), 0xffff_0004);
    assert_eq!((d.cfg_read(0x188, 4) >> 8) & 7, 0, "VSEC points at BAR0");
    // eDMA ctrl register at BAR0 offset 8
    assert_eq!(d.read32(0, 8), 0x0004_0004);
}

#[test]
fn msix_option_adds_capability() {
    let d = Device::new(Options {
        msix: 8,
        ..small_opts()
    })
    .unwrap();
    assert_eq!(d.cfg_read(PCIE_CAP + 1, 1), MSIX_CAP as u32);
    assert_eq!(d.cfg_read(MSIX_CAP, 1), 0x11);
    assert_eq!(d.cfg_read(MSIX_CTRL, 2) & 0x7ff, 7);
    assert_eq!(
        d.cfg_read(MSIX_CAP + 4, 4),
        0xa00,
        "BIR 0, past the channels"
    );
    assert_eq!(d.cfg_read(MSIX_CAP + 8, 4), 0xe00);
    // without the option the chain ends at PCIe
    assert_eq!(dev().cfg_read(PCIE_CAP + 1, 1), 0);
}

#[test]
fn link_option_shows_in_link_registers() {
    let d = Device::new(Options {
        link: "gen2x1".parse().unwrap(),
        ..small_opts()
    })
    .unwrap();
    assert_eq!(d.cfg_read(PCIE_LNKSTA, 2) & 0x3ff, 0x12);
}
