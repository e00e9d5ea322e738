//! Firmware model: the boot block, the boot protocol, image validation
//! reasons, commands through the slot and their virtual-MSI completion
//! signal, heartbeat, and the firmware injections.

mod common;
use common::*;
use metis_emu::boot::*;
use metis_emu::control::handle;
use metis_emu::devmem::{DDR_BASE, L2_BASE};
use metis_emu::edma::ll::*;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use metis_emu::fw_image::{self, Break, BuildSpec};
use metis_emu::iface::{CMD_OPCODE, CMD_SIZE, HOST_DRV_CTRL, MASTER_VERSION};
use metis_emu::Fault;
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::VFIO_PCI_BAR2_REGION_INDEX;

#[test]
fn boot_block_after_reset() {
    let r = Rig::metis();
    assert_eq!(r.b2r(off::MAGIC), 0x5042_544D);
    assert_eq!(&r.bar2_bytes(off::MAGIC, 4), b"MTBP");
    assert_eq!(r.b2r(off::PROTO), 1);
    assert_eq!(r.state(), FwState::Bootloader as u32);
    assert_eq!(r.b2r(off::FAIL_REASON), 0);
    assert_eq!(r.b2r(off::FW_MAX_SIZE), 8 << 20);
    assert_eq!(r.b2r(off::IF_VERSION_SUPPORTED), 1 << 16);
    assert_eq!(r.b2r(off::HEARTBEAT), 0);
    assert_eq!(r.b2r(off::FW_VERSION), 0);
    assert_eq!(r.b2r(off::FW_IF_VERSION), 0);
    assert_eq!(r.b2r(off::DDR_SIZE), 256 << 20);
    assert_eq!(r.b2r(off::DDR_SIZE + 4), 0);
    assert_eq!(r.b2r(off::USER_MEM_BASE), 0x0200_0000);
    assert_eq!(r.b2r(off::USER_MEM_BASE + 4), 1, "DDR base + 32 MiB");
    assert_eq!(r.b2r(MASTER_VERSION) & 0xffff, 0);
    // a 16 GiB card reports both halves of DDR_SIZE
    let big = Rig::new(metis_emu::Options {
        mem_size: 16 << 30,
        ..Default::default()
    });
    assert_eq!(big.b2r(off::DDR_SIZE), 0);
    assert_eq!(big.b2r(off::DDR_SIZE + 4), 4);
}

#[test]
fn valid_boot_reaches_ready_with_versions_and_no_irq() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.register_vmsi();
    let img = fw_image::build(&BuildSpec {
        fw: (2, 7, 300),
        if_minor: 4,
        ..Default::default()
    });
    assert!(r.dev.mem_write(FW_LOAD_ADDR, &img));
    let t = Instant::now();
    r.send(op::BOOT, &(img.len() as u32).to_le_bytes());
    assert_eq!(r.state(), FwState::Booting as u32);
    assert_eq!(r.b2r(CMD_OPCODE), op::BOOT, "not answered yet");
    assert_eq!(r.wait_answer(), status::OK);
    // the model boots in BOOT_TIME (< 50 ms per the contract); allow for a
    // loaded test machine on top
    assert!(BOOT_TIME < Duration::from_millis(50));
    assert!(t.elapsed() < Duration::from_millis(300));
    assert_eq!(r.state(), FwState::Ready as u32);
    assert_eq!(r.b2r(off::FW_VERSION), 2 | 7 << 8 | 300 << 16);
    assert_eq!(r.b2r(off::FW_IF_VERSION), 1 << 16 | 4);
    assert_eq!(r.bar2_bytes(MASTER_VERSION, 2), vec![2, 7]);
    // BOOT's answer is signalled on 12 through the bootloader's registration,
    // and the new firmware dropped that registration
    wait_until("boot signalled", || r.vmsi_word(12) == 1);
    wait_until("vector 12", || fired(&r.msi[12]) == 1);
    std::thread::sleep(Duration::from_millis(20));
    assert!(r.msi.iter().all(|f| fired(f) == 0), "one interrupt only");
    assert_eq!(r.b2r(HOST_DRV_CTRL), 0);
    assert_eq!(r.dev.total_faults(), 0);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn broken_images_fail_with_their_reason() {
    let cases = [
        (Break::BadMagic, 1),
        (Break::BadHeaderCrc, 2),
        (Break::Truncated, 3),
        (Break::Oversize, 3),
        (Break::BadPayloadCrc, 4),
        (Break::BadIfMajor, 5),
        (Break::BadLoadAddr, 6),
    ];
    for (b, reason) in cases {
        let r = Rig::metis();
        let img = fw_image::build(&BuildSpec {
            brk: Some(b),
            ..Default::default()
        });
        // an oversize image does not fit the load area: the host would only
        // pass its size; place what fits
        let n = img.len().min(8 << 20);
        r.dev.mem_write(FW_LOAD_ADDR, &img[..n]);
        let (st, _) = r.cmd(op::BOOT, &(img.len() as u32).to_le_bytes());
        assert_eq!(st, status::FAILED, "{b:?}");
        assert_eq!(r.state(), FwState::Failed as u32, "{b:?}");
        assert_eq!(r.b2r(off::FAIL_REASON), reason, "{b:?}");
        assert_eq!(r.b2r(off::FW_VERSION), 0);
        assert_eq!(r.b2r(MASTER_VERSION) & 0xffff, 0);
        // FAILED -> another BOOT with a good image works
        r.boot_default();
        assert_eq!(r.b2r(off::FAIL_REASON), 0);
    }
}

#[test]
fn image_size_argument_is_checked() {
    let r = Rig::metis();
    let img = fw_image::build(&Default::default());
    r.dev.mem_write(FW_LOAD_ADDR, &img);
    // size smaller than a header
    let (st, _) = r.cmd(op::BOOT, &16u32.to_le_bytes());
    assert_eq!(st, status::FAILED);
    assert_eq!(r.b2r(off::FAIL_REASON), 3);
    // size larger than the image claims
    let (st, _) = r.cmd(op::BOOT, &(img.len() as u32 + 4).to_le_bytes());
    assert_eq!(st, status::FAILED);
    assert_eq!(r.b2r(off::FAIL_REASON), 3);
    // no size argument at all
    let (st, _) = r.cmd(op::BOOT, &[]);
    assert_eq!(st, status::BAD_ARGS);
    assert_eq!(r.state(), FwState::Failed as u32);
}

#[test]
fn image_loaded_by_edma_read_channel_boots() {
    let r = Rig::metis();
    let img = fw_image::build(&BuildSpec {
        payload_size: 1 << 20,
        ..Default::default()
    });
    r.guest_write(IOVA, &img);
    r.dev.mem_write(
        LL_RD,
        &Element::data(CTRL_CB | CTRL_LIE, img.len() as u32, IOVA, FW_LOAD_ADDR),
    );
    r.dev
        .mem_write(LL_RD + 24, &Element::link(CTRL_LLP | CTRL_TCB, LL_RD));
    r.setup_channel(Dir::Rd, 3, 7, LL_RD);
    r.doorbell(Dir::Rd, 3);
    assert_eq!(r.wait_stopped(Dir::Rd, 3), Cs::Stopped);
    let (st, _) = r.cmd(op::BOOT, &(img.len() as u32).to_le_bytes());
    assert_eq!(st, status::OK);
    assert_eq!(r.b2r(off::FW_VERSION), 1 | 2 << 8 | 3 << 16);
}

#[test]
fn commands_answer_not_ready_before_boot() {
    let r = Rig::metis();
    r.register_vmsi();
    for o in [op::ECHO, op::CHECKSUM, op::FILL, op::RUN] {
        let (st, _) = r.cmd(o, &[0; 32]);
        assert_eq!(st, status::NOT_READY, "op {o}");
    }
    let (st, _) = r.cmd(99, &[]);
    assert_eq!(st, status::BAD_OPCODE);
    let s = handle(&r.dev, "stats");
    assert_eq!(s["device"]["fw"]["answered"], 5);
    assert_eq!(s["vmsi_writes"], 5, "every answer but BOOT's signals");
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn echo_checksum_fill_run() {
    let r = Rig::metis();
    r.boot_default();
    // ECHO
    let msg: Vec<u8> = (0..200u8).collect();
    let (st, out) = r.cmd(op::ECHO, &msg);
    assert_eq!(st, status::OK);
    assert_eq!(&out[..200], &msg[..]);
    // CHECKSUM over data placed in DDR and in L2
    let base = DEV_DATA;
    let data = pattern(11, 100_000);
    r.dev.mem_write(base, &data);
    let (st, out) = r.cmd(op::CHECKSUM, &args(&[base, data.len() as u64]));
    assert_eq!(st, status::OK);
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        fw_image::crc32(&data)
    );
    let l2 = L2_BASE + 0x100_0000;
    r.dev.mem_write(l2, &data[..4096]);
    let (st, out) = r.cmd(op::CHECKSUM, &args(&[l2, 4096]));
    assert_eq!(st, status::OK);
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        fw_image::crc32(&data[..4096])
    );
    // FILL with a 32-bit pattern, odd length
    let mut a = args(&[base + 0x20_0000, 10]);
    a.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    let (st, _) = r.cmd(op::FILL, &a);
    assert_eq!(st, status::OK);
    assert_eq!(
        r.dev.mem_read(base + 0x20_0000, 11).unwrap(),
        vec![0xd4, 0xc3, 0xb2, 0xa1, 0xd4, 0xc3, 0xb2, 0xa1, 0xd4, 0xc3, 0]
    );
    // RUN each op, result = CRC of output, output as defined
    let out_base = base + 0x40_0000;
    for (rop, key) in [(0u32, 0u32), (1, 0), (2, 0x5a), (3, 250)] {
        let mut a = args(&[base, out_base, 5000]);
        a.extend_from_slice(&rop.to_le_bytes());
        a.extend_from_slice(&key.to_le_bytes());
        let (st, res) = r.cmd(op::RUN, &a);
        assert_eq!(st, status::OK);
        let expect: Vec<u8> = data[..5000]
            .iter()
            .enumerate()
            .map(|(i, &b)| match rop {
                0 => b,
                1 => !b,
                2 => b ^ key as u8,
                _ => b.wrapping_add(((key as usize + i) % 256) as u8),
            })
            .collect();
        assert_eq!(r.dev.mem_read(out_base, 5000).unwrap(), expect, "op {rop}");
        assert_eq!(
            u32::from_le_bytes(res[..4].try_into().unwrap()),
            fw_image::crc32(&expect)
        );
    }
    // ranges outside device memory: past DDR, below L2, across L2's end,
    // the hole between L2 and DDR
    for (addr, len) in [
        (DDR_END - 8, 16),
        (0x1000, 16),
        (L2_BASE + (32 << 20) - 8, 16),
        (DDR_BASE - 0x1000, 16),
    ] {
        let (st, _) = r.cmd(op::CHECKSUM, &args(&[addr, len]));
        assert_eq!(st, status::BAD_ARGS, "{addr:#x}+{len}");
    }
    let mut a = args(&[base, out_base, 16]);
    a.extend_from_slice(&7u32.to_le_bytes());
    a.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(r.cmd(op::RUN, &a).0, status::BAD_ARGS);
    assert_eq!(
        r.cmd(op::CHECKSUM, &[0; 8]).0,
        status::BAD_ARGS,
        "short args"
    );
    // a second BOOT while READY fails and keeps READY
    assert_eq!(r.cmd(op::BOOT, &64u32.to_le_bytes()).0, status::FAILED);
    assert_eq!(r.state(), FwState::Ready as u32);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn completion_sets_vmsi_word_12_and_raises_vector_12() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    r.boot_default();
    handle(&r.dev, "reset-stats");
    let (st, _) = r.cmd(op::ECHO, &[1, 2, 3, 4]);
    assert_eq!(st, status::OK);
    assert_eq!(r.vmsi_word(12), 1);
    assert_eq!(fired(&r.msi[12]), 1);
    assert!(r.msi.iter().all(|f| fired(f) == 0), "only vector 12");
    let s = handle(&r.dev, "stats");
    assert_eq!(s["vmsi_writes"], 1);
    assert_eq!(s["irqs_sent"]["msi.12"], 1);
    let ev = handle(&r.dev, "events");
    assert!(ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "vmsi_write" && e["id"] == 12));
    // the card ORs its bit into what the word holds
    r.guest_write(VMSI_TABLE + 48, &0x10u32.to_le_bytes());
    r.cmd(op::ECHO, &[]);
    assert_eq!(r.vmsi_word(12), 0x11);
    // the device message is source 24
    handle(&r.dev, "inject device-msg");
    assert_eq!(r.vmsi_word(24), 1);
    assert_eq!(fired(&r.msi[24]), 1);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn vmsi_vector_falls_back_to_0() {
    let mut r = Rig::metis();
    r.enable_msi(8); // vectors 12 and 24 not enabled
    r.boot_default();
    r.cmd(op::ECHO, &[1, 2, 3, 4]);
    assert_eq!(r.vmsi_word(12), 1, "the table still says which source");
    assert_eq!(fired(&r.msi[0]), 1);
    handle(&r.dev, "inject device-msg");
    assert_eq!(r.vmsi_word(24), 1);
    assert_eq!(fired(&r.msi[0]), 1);
}

#[test]
fn heartbeat_runs_only_while_ready() {
    let r = Rig::metis();
    assert_eq!(r.b2r(off::HEARTBEAT), 0);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(r.b2r(off::HEARTBEAT), 0, "bootloader has no heartbeat");
    r.boot_default();
    let t0 = Instant::now();
    let h0 = r.b2r(off::HEARTBEAT);
    std::thread::sleep(Duration::from_millis(55));
    let h1 = r.b2r(off::HEARTBEAT);
    let ticks = (t0.elapsed().as_millis() / 10) as u32;
    assert!(
        h1 - h0 >= 4 && h1 - h0 <= ticks + 1,
        "{h0} -> {h1} in {ticks} ticks"
    );
    // the card stores it into L2 by itself: the word in memory moves too
    let mem_hb = || {
        u32::from_le_bytes(
            r.dev
                .mem_read(L2_BASE + off::HEARTBEAT, 4)
                .unwrap()
                .try_into()
                .unwrap(),
        )
    };
    let m0 = mem_hb();
    wait_until("heartbeat store", || mem_hb() > m0);
    // fw-hang: heartbeat freezes and commands are never answered
    handle(&r.dev, "inject fw-hang");
    let h2 = r.b2r(off::HEARTBEAT);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(r.b2r(off::HEARTBEAT), h2);
    r.send(op::ECHO, &[]);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(r.b2r(CMD_OPCODE), op::ECHO, "never answered");
    // a second command while the first runs is a driver bug: answered busy
    r.send(op::ECHO, &[]);
    assert_eq!(r.dev.fault_count(Fault::MailboxBusy), 1);
    assert_eq!(r.b2r(CMD_OPCODE), ANSWERED | status::BUSY);
}

#[test]
fn fw_no_ready_stays_booting() {
    let r = Rig::metis();
    handle(&r.dev, "inject fw-no-ready");
    let img = fw_image::build(&Default::default());
    r.dev.mem_write(FW_LOAD_ADDR, &img);
    r.send(op::BOOT, &(img.len() as u32).to_le_bytes());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(r.state(), FwState::Booting as u32);
    assert_eq!(r.b2r(CMD_OPCODE), op::BOOT);
    // a reset (FLR) recovers, and the injection was one-shot
    r.dev
        .cfg_write(metis_emu::config::PCIE_DEVCTL, 2, 0x8000 | 0x2810);
    r.dev.cfg_write(metis_emu::config::COMMAND, 2, 6);
    assert_eq!(r.state(), FwState::Bootloader as u32);
    assert_eq!(r.b2r(CMD_OPCODE), 0);
    r.boot_default();
}

#[test]
fn only_an_opcode_store_starts_a_command() {
    let r = Rig::metis();
    r.register_vmsi();
    let cmds = |r: &Rig| handle(&r.dev, "stats")["fw_commands"].clone();
    // msg and size stores, a zero opcode, an answer-looking value, a 2-byte
    // store into the opcode word: nothing starts
    r.b2w(CMD_SIZE, 4);
    r.b2w(CMD_OPCODE, 0);
    r.b2w(CMD_OPCODE, ANSWERED | 2);
    r.dev
        .mmio_write(VFIO_PCI_BAR2_REGION_INDEX, CMD_OPCODE, 2, op::ECHO as u64);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(cmds(&r), serde_json::json!({}));
    // an 8-byte store of opcode and size together is a command
    r.dev.mmio_write(
        VFIO_PCI_BAR2_REGION_INDEX,
        CMD_OPCODE,
        8,
        op::ECHO as u64 | 4 << 32,
    );
    assert_eq!(r.wait_answer(), status::NOT_READY);
    assert_eq!(cmds(&r)["ECHO"], 1);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn no_boot_protocol_leaves_the_block_zero_but_boots() {
    let r = Rig::new(metis_emu::Options {
        boot_protocol: false,
        ..small_opts()
    });
    let block = |r: &Rig| r.bar2_bytes(off::MAGIC, (off::END - off::MAGIC) as usize);
    assert_eq!(block(&r), vec![0; (off::END - off::MAGIC) as usize]);
    // a runtime that knows the card uploads and boots by itself
    let img = fw_image::build(&BuildSpec {
        fw: (4, 5, 6),
        ..Default::default()
    });
    assert_eq!(r.boot(&img), status::OK);
    assert_eq!(r.bar2_bytes(MASTER_VERSION, 2), vec![4, 5]);
    std::thread::sleep(Duration::from_millis(25));
    assert_eq!(
        block(&r),
        vec![0; (off::END - off::MAGIC) as usize],
        "no STATE, no HEARTBEAT"
    );
    r.register_vmsi();
    assert_eq!(r.cmd(op::ECHO, &[9]).0, status::OK);
    assert_eq!(r.vmsi_word(12), 1);
    assert_eq!(handle(&r.dev, "stats")["device"]["fw"]["state"], "READY");
}

#[test]
fn runtime_boot_injection_stands_in_for_the_vendor_runtime() {
    let r = Rig::new(metis_emu::Options {
        boot_protocol: false,
        ..small_opts()
    });
    assert_eq!(r.bar2_bytes(MASTER_VERSION, 2), vec![0, 0]);
    assert_eq!(handle(&r.dev, "inject runtime-boot")["ok"], true);
    wait_until("runtime boot answered", || {
        r.b2r(CMD_OPCODE) == ANSWERED | status::OK
    });
    // The default image's firmware 1.2.3 runs, and published its areas afresh.
    assert_eq!(r.bar2_bytes(MASTER_VERSION, 2), vec![1, 2]);
    assert_eq!(r.b2r(HOST_DRV_CTRL), 0);
    assert_eq!(handle(&r.dev, "stats")["device"]["fw"]["state"], "READY");
    // Once the firmware runs, a second upload is refused: only the bootloader boots.
    assert_eq!(handle(&r.dev, "inject runtime-boot")["ok"], false);
}

#[test]
fn boot_into_a_bootloader_nobody_registered_with_faults() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let img = fw_image::build(&Default::default());
    assert!(r.dev.mem_write(FW_LOAD_ADDR, &img));
    r.send(op::BOOT, &(img.len() as u32).to_le_bytes());
    assert_eq!(r.wait_answer(), status::OK);
    // the answer's signal has nowhere to go: R1.2 on a real host
    wait_until("unregistered signal", || {
        r.dev.fault_count(Fault::VmsiUnregistered) == 1
    });
    assert!(r.msi.iter().all(|f| fired(f) == 0), "nothing raised");
}
