//! The real transports: vfio-user server (through the crate's client),
//! the control socket, and the two binaries end to end.

mod common;
use common::*;
use metis_emu::{control, server, Device};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use vfio_user::Client;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("metis-emu-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

#[test]
fn vfio_user_negotiation_and_config_read() {
    let path = tmp("vfu.sock");
    let dev = Arc::new(Device::new(small_opts()).unwrap());
    let (tx, rx) = mpsc::channel();
    let (p2, d2) = (path.clone(), dev.clone());
    let h = std::thread::spawn(move || server::serve(&p2, d2, move || tx.send(()).unwrap()));
    rx.recv_timeout(Duration::from_secs(5)).unwrap();

    let mut c = Client::new(&path).expect("version negotiation + region info");
    assert_eq!(c.region(7).unwrap().size, 4096, "config region");
    assert_eq!(c.region(0).unwrap().size, 4096, "BAR0");
    assert_eq!(c.region(2).unwrap().size, 32 << 20, "BAR2");
    assert_eq!(c.region(6).unwrap().size, 64 << 10, "ROM");
    assert_eq!(c.region(1).unwrap().size, 0, "BAR1 (BAR0 upper half)");
    let mut b = [0u8; 4];
    c.region_read(7, 0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x1100_1f9d);
    c.region_read(0, 8, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x0004_0004, "eDMA ctrl in BAR0");
    c.region_read(2, 0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xFD1F, "interface structure in BAR2");
    let msi = c.get_irq_info(1).unwrap();
    assert_eq!(msi.count, 32);
    assert_eq!(c.get_irq_info(0).unwrap().count, 1);
    // guest RAM arrives as a memfd
    let ram = metis_emu::dma::memfd(0x10000).unwrap();
    c.dma_map(0, 0x4000_0000, 0x10000, ram.as_raw_fd()).unwrap();
    let s = control::handle(&dev, "stats");
    assert_eq!(s["device"]["dma_mappings"], 1);
    c.reset().unwrap();
    assert_eq!(control::handle(&dev, "stats")["resets"]["vfio"], 1);
    c.shutdown().unwrap();
    drop(c);
    h.join().unwrap().unwrap();
    assert!(!path.exists(), "socket removed when the server ends");
}

/// A whole eDMA transfer driven over the vfio-user protocol: DMA_MAP with a
/// memfd, MSI eventfds through SET_IRQS (one fd per message, as QEMU sends
/// them to a server announcing max_msg_fds 1), register and window accesses
/// as REGION_WRITE/READ.
#[test]
fn edma_transfer_over_vfio_user() {
    use metis_emu::config::*;
    use metis_emu::edma::ll::*;
    use metis_emu::edma::regs::*;
    use metis_emu::edma::Dir;
    use std::os::unix::fs::FileExt;
    use vfio_bindings::bindings::vfio::*;

    let path = tmp("xfer.sock");
    let dev = Arc::new(Device::new(small_opts()).unwrap());
    let (tx, rx) = mpsc::channel();
    let (p2, d2) = (path.clone(), dev.clone());
    let h = std::thread::spawn(move || server::serve(&p2, d2, move || tx.send(()).unwrap()));
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut c = Client::new(&path).unwrap();
    let w32 = |c: &mut Client, region: u32, off: u64, v: u32| {
        c.region_write(region, off, &v.to_le_bytes()).unwrap()
    };
    let r32 = |c: &mut Client, region: u32, off: u64| {
        let mut b = [0u8; 4];
        c.region_read(region, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    };

    let ram = metis_emu::dma::memfd(1 << 20).unwrap();
    c.dma_map(0, 0x1000_0000, 1 << 20, ram.as_raw_fd()).unwrap();
    let cfg = VFIO_PCI_CONFIG_REGION_INDEX;
    c.region_write(cfg, COMMAND as u64, &6u16.to_le_bytes())
        .unwrap();
    w32(&mut c, cfg, MSI_ADDR_LO as u64, 0xfee0_0000);
    c.region_write(cfg, MSI_DATA as u64, &0x4020u16.to_le_bytes())
        .unwrap();
    c.region_write(cfg, MSI_CTRL as u64, &(5u16 << 4 | 1).to_le_bytes())
        .unwrap();
    let fds: Vec<std::fs::File> = (0..32).map(|_| eventfd()).collect();
    for (i, f) in fds.iter().enumerate() {
        c.set_irqs(
            VFIO_PCI_MSI_IRQ_INDEX,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            i as u32,
            1,
            &[f.as_raw_fd()],
        )
        .unwrap();
    }
    // data and list in L2, written through BAR2 (offset x = device address
    // 0x0800_0000 + x), the list in the published descriptor buffer
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let src = 0x20_0000u64;
    for (i, q) in data.chunks(8).enumerate() {
        c.region_write(2, src + 8 * i as u64, q).unwrap();
    }
    let mut desc = [0u8; 8];
    c.region_read(2, 0xc00, &mut desc).unwrap();
    let ll = u64::from_le_bytes(desc);
    let el = [
        Element::data(
            CTRL_CB | CTRL_LIE | CTRL_RIE,
            4096,
            0x0800_0000 + src,
            0x1000_0000,
        ),
        Element::link(CTRL_LLP | CTRL_TCB, ll),
    ];
    for (i, e) in el.iter().enumerate() {
        for q in 0..3 {
            let v = &e[q * 8..q * 8 + 8];
            c.region_write(2, ll - 0x0800_0000 + 24 * i as u64 + 8 * q as u64, v)
                .unwrap();
        }
    }
    w32(&mut c, 0, ENGINE_EN.at(Dir::Wr) as u64, 1);
    w32(&mut c, 0, INT_MASK.at(Dir::Wr) as u64, 0x0001_0001);
    w32(&mut c, 0, DONE_IMWR_LO.at(Dir::Wr) as u64, 0xfee0_0000);
    w32(&mut c, 0, CH_IMWR_DATA(0).at(Dir::Wr) as u64, 0x4028);
    w32(&mut c, 0, CH_CONTROL1.at(Dir::Wr, 0) as u64, LL_CCS);
    w32(&mut c, 0, CH_LLP_LO.at(Dir::Wr, 0) as u64, ll as u32);
    w32(&mut c, 0, CH_LLP_HI.at(Dir::Wr, 0) as u64, 0);
    w32(&mut c, 0, DOORBELL.at(Dir::Wr) as u64, 0);
    wait_until("done", || {
        r32(&mut c, 0, INT_STATUS.at(Dir::Wr) as u64) & 1 != 0
    });
    wait_until("msi 8", || fired(&fds[8]) == 1);
    let mut got = vec![0u8; 4096];
    ram.read_exact_at(&mut got, 0).unwrap();
    assert!(got == data, "guest memory does not hold the device data");
    assert_eq!(dev.total_faults(), 0);
    c.shutdown().unwrap();
    drop(c);
    h.join().unwrap().unwrap();
}

#[test]
fn control_socket_line_protocol() {
    let path = tmp("ctl.sock");
    let dev = Arc::new(Device::new(small_opts()).unwrap());
    control::spawn_listener(dev.clone(), &path).unwrap();
    let s = UnixStream::connect(&path).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut rd = BufReader::new(s);
    let mut ask = |cmd: &str| -> serde_json::Value {
        writeln!(w, "{cmd}").unwrap();
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let v = ask("stats");
    assert_eq!(v["ok"], true);
    assert_eq!(v["device"]["fw"]["state"], "BOOTLOADER");
    assert_eq!(ask("inject drop-irq 3")["ok"], true);
    assert_eq!(ask("stats")["device"]["armed"]["drop_irq"], 3);
    assert_eq!(ask("clear")["ok"], true);
    assert_eq!(ask("stats")["device"]["armed"]["drop_irq"], 0);
    assert_eq!(ask("inject hang-channel wr 9")["ok"], false);
    assert_eq!(ask("frobnicate")["ok"], false);
    dev.read32(0, 0xcc + 2); // unaligned: a fault event
    let ev = ask("events since 0");
    let evs = ev["events"].as_array().unwrap();
    assert!(evs.iter().any(|e| e["fault"] == "mmio_unaligned"));
    let last = ev["last_seq"].as_u64().unwrap();
    assert_eq!(
        ask(&format!("events since {last}"))["events"],
        serde_json::json!([])
    );
    assert_eq!(ask("reset-stats")["ok"], true);
    assert_eq!(ask("stats")["faults_total"], 0);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn binary_serves_then_exits_on_disconnect() {
    let sock = tmp("bin.sock");
    let ctl = tmp("bin.ctl");
    let log = tmp("bin.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metis-emu"))
        .args([
            "--socket",
            sock.to_str().unwrap(),
            "--control",
            ctl.to_str().unwrap(),
        ])
        .args([
            "--log",
            log.to_str().unwrap(),
            "--mem-size",
            "128M",
            "--msix",
            "4",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("metis-emu: listening on {}", sock.display())
    );
    let mut c = Client::new(&sock).unwrap();
    let mut b = [0u8; 8];
    // a 64-bit register read: counted as a fault, summarised at exit
    c.region_read(0, 0xcc, &mut b).unwrap();
    assert_eq!(b, [0xff; 8]);
    c.shutdown().unwrap();
    drop(c);
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(rest.contains("summary: faults=1 [mmio_width=1]"), "{rest}");
    assert!(!sock.exists() && !ctl.exists());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged
        .lines()
        .any(|l| l.contains("\"fault\":\"mmio_width\"")));
    let _ = std::fs::remove_file(&log);
}

#[test]
fn binary_exits_cleanly_on_sigterm() {
    let sock = tmp("term.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metis-emu"))
        .args(["--socket", sock.to_str().unwrap(), "--mem-size", "64M"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"));
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(rest.contains("summary: faults=0"), "{rest}");
    assert!(!sock.exists());
}

#[test]
fn binary_checks_its_options() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_metis-emu"))
            .args(args)
            .output()
            .unwrap()
    };
    let sock = tmp("opts.sock");
    let s = sock.to_str().unwrap();
    for bad in [
        &["--socket", s, "--channels", "5"][..],
        &["--socket", s, "--if-layout", "2.0"],
        &["--socket", s, "--bar2-size", "64M"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    // Synopsys keeps 8 channels
    let help = run(&["--help"]);
    let usage = String::from_utf8_lossy(&help.stdout).to_string();
    for opt in ["--if-layout", "--no-boot-protocol", "--no-vsec"] {
        assert!(usage.contains(opt), "{usage}");
    }
}

#[test]
fn binary_serves_with_the_new_options() {
    let sock = tmp("newopts.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metis-emu"))
        .args(["--socket", sock.to_str().unwrap(), "--mem-size", "64M"])
        .args(["--if-layout", "1.4", "--no-boot-protocol", "--no-vsec"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    let mut c = Client::new(&sock).unwrap();
    let mut b = [0u8; 4];
    c.region_read(2, 0, &mut b).unwrap();
    assert_eq!(b, [0; 4], "1.4 layout: no header");
    c.region_read(2, 0x400, &mut b).unwrap();
    assert_eq!(b, [0; 4], "no boot block");
    c.region_read(7, 0x150, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b) >> 20, 0, "L1SS ends the chain");
    c.shutdown().unwrap();
    drop(c);
    assert!(child.wait().unwrap().success());
}

#[test]
fn fwimg_builds_images_the_card_accepts_and_rejects() {
    let good = tmp("good.bin");
    let bad = tmp("bad.bin");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_metis-fwimg"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    run(&[
        "build",
        "--out",
        good.to_str().unwrap(),
        "--fw",
        "3.1.4",
        "--payload-size",
        "64K",
        "--seed",
        "9",
    ]);
    run(&[
        "build",
        "--out",
        bad.to_str().unwrap(),
        "--break",
        "bad-if-major",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&run(&["info", good.to_str().unwrap()])).unwrap();
    assert_eq!(info["fw_version"], "3.1.4");
    assert_eq!(info["payload_size"], 65536);
    assert_eq!(info["header_crc_ok"], true);
    assert_eq!(info["load_addr"], "0x101000000", "the card's fw_load_addr");
    let moved = tmp("moved.bin");
    run(&[
        "build",
        "--out",
        moved.to_str().unwrap(),
        "--break",
        "bad-load-addr",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&run(&["info", moved.to_str().unwrap()])).unwrap();
    assert_eq!(info["load_addr"], "0x101100000");
    let _ = std::fs::remove_file(&moved);
    let r = Rig::metis();
    assert_eq!(
        r.boot(&std::fs::read(&bad).unwrap()),
        metis_emu::boot::status::FAILED
    );
    assert_eq!(r.b2r(metis_emu::boot::off::FAIL_REASON), 5);
    assert_eq!(
        r.boot(&std::fs::read(&good).unwrap()),
        metis_emu::boot::status::OK
    );
    assert_eq!(
        r.b2r(metis_emu::boot::off::FW_VERSION),
        3 | 1 << 8 | 4 << 16
    );
    let _ = std::fs::remove_file(&good);
    let _ = std::fs::remove_file(&bad);
}
