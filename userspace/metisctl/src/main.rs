//! `metisctl`: command-line tool of the metis driver.
//!
//! Exit status: 0 success, 1 the operation failed (the reason and the errno
//! name go to stderr), 2 usage error.

mod bench;
mod cards;
mod channels;
mod cli;
mod data;
mod doctor;
mod hostmem;
mod irqcount;
mod size;
mod stats;
mod status;
mod table;
mod trace;

use clap::Parser;
use cli::{Cli, CmdCommand, Command, DmaCommand, FwCommand};
use metis::{Device, FwOwner, FwState, Info};
use serde_json::{json, Value};
use size::format_human;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use table::format_pairs;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The operation failed: exit status 1.
    Op(String),
    /// The arguments cannot work: exit status 2.
    Usage(String),
}

impl From<metis::Error> for Failure {
    fn from(e: metis::Error) -> Self {
        Failure::Op(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Op(m)) => {
            eprintln!("metisctl: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("metisctl: {m}");
            ExitCode::from(2)
        }
    }
}

fn open(cli: &Cli) -> Result<Device, Failure> {
    let mut dev = Device::open(&cli.device)?;
    dev.set_timeout(
        cli.timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
    );
    Ok(dev)
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let device = cli.device.display().to_string();
    match &cli.command {
        Command::Info => {
            let info = open(cli)?.info()?;
            if cli.json {
                print_json(&info_json(&device, &info));
            } else {
                print!("{}", info_text(&device, &info));
            }
            Ok(())
        }
        Command::Fw(FwCommand::Status) => {
            let info = open(cli)?.info()?;
            print_fw_status(cli, &device, &info);
            Ok(())
        }
        Command::Fw(FwCommand::Load { wait }) => {
            let dev = open(cli)?;
            dev.reload_firmware()
                .map_err(|e| explain_reload_failure(&dev, e))?;
            let info = wait_boot(&dev, Duration::from_secs(*wait))?;
            print_fw_status(cli, &device, &info);
            match info.fw_state {
                FwState::Ready => Ok(()),
                s => Err(Failure::Op(format!(
                    "firmware did not become ready after the reload (state {s})"
                ))),
            }
        }
        Command::Fw(FwCommand::Changed) => {
            let dev = open(cli)?;
            dev.firmware_changed()?;
            let info = dev.info()?;
            print_fw_status(cli, &device, &info);
            Ok(())
        }
        Command::Dma(DmaCommand::Bench(args)) => {
            bench::check_args(args)?;
            let dev = open(cli)?;
            let report = bench::run(&dev, args)?;
            let doc = bench::to_json(&device, &report);
            if let Some(out) = &args.out {
                std::fs::write(out, format!("{doc:#}\n"))
                    .map_err(|e| Failure::Op(format!("cannot write {}: {e}", out.display())))?;
            }
            if cli.json {
                print_json(&doc);
            } else {
                println!(
                    "{device}: {} timed transfer(s) per row and direction after {} untimed, {}-aligned buffers, region of {}",
                    report.iters,
                    report.warmup,
                    bench::align_name(report.align),
                    format_human(report.region_len)
                );
                print!("{}", bench::format_text(&report));
            }
            match report.mismatches.first() {
                None => Ok(()),
                Some((s, o)) => Err(Failure::Op(format!(
                    "data integrity check failed: round trip of {} came back different \
                     (first bad byte at offset {o})",
                    size::format_size(*s)
                ))),
            }
        }
        Command::Cmd(c) => {
            let dev = open(cli)?;
            cmd(cli, &dev, c)
        }
        Command::Status(c) => {
            let sys = cards::sysfs_root();
            let found = cards::select(&sys, c.card.as_deref())?
                .into_iter()
                .map(|card| card.status().map(|s| (card, s)))
                .collect::<Result<Vec<_>, _>>()?;
            if cli.json {
                print_json(&status::to_json_all(&found));
            } else {
                print!("{}", status::text_all(&found));
            }
            Ok(())
        }
        Command::Stats(c) => {
            let sys = cards::sysfs_root();
            let found = cards::select(&sys, c.card.as_deref())?
                .into_iter()
                .map(|card| {
                    metis::debugfs::read_stats(&metis::debugfs::card_dir(&sys, &card.bdf))
                        .map(|s| (card, s))
                        .map_err(|e| cards::debugfs_failure(e, &sys, "stats"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if cli.json {
                print_json(&channels::to_json_all(&found));
            } else {
                print!("{}", channels::text_all(&found));
            }
            Ok(())
        }
        Command::Trace(t) => trace::run(
            &cards::sysfs_root(),
            t.card.as_deref(),
            cli.json,
            t.follow,
            t.clear,
        ),
        Command::Doctor { kernel_config } => {
            let findings = doctor::run(&doctor::Roots::system(
                cards::sysfs_root(),
                kernel_config.clone(),
            ));
            if cli.json {
                print_json(&doctor::to_json(&findings));
            } else {
                print!("{}", doctor::format_text(&findings));
            }
            match findings
                .iter()
                .filter(|f| f.level == doctor::Level::Fail)
                .count()
            {
                0 => Ok(()),
                n => Err(Failure::Op(format!(
                    "{n} problem(s) keep a card from working; each FAIL line says what to do"
                ))),
            }
        }
        Command::Reset => {
            let dev = open(cli)?;
            dev.reset()?;
            let info = dev.info()?;
            if cli.json {
                print_json(&json!({
                    "device": device,
                    "reset_count": info.reset_count,
                    "fw_state": info.fw_state.name(),
                }));
            } else {
                println!(
                    "{device}: reset done (reset_count {}, firmware {})",
                    info.reset_count, info.fw_state
                );
            }
            Ok(())
        }
    }
}

/// The driver refuses a firmware reload on a runtime-owned card with the
/// same EINVAL as a bad argument; say which it was.
fn explain_reload_failure(dev: &Device, e: metis::Error) -> Failure {
    if e.errno() == libc::EINVAL {
        if let Ok(info) = dev.info() {
            if info.fw_owner == FwOwner::Runtime {
                return Failure::Op(runtime_owned_reload(&dev.path().display().to_string()));
            }
        }
    }
    e.into()
}

/// Why `fw load` cannot work on a runtime-owned card, and what does.
pub fn runtime_owned_reload(device: &str) -> String {
    format!(
        "reset failed: EINVAL: the firmware of {device} is runtime-owned, so the runtime \
         loads it, not the driver; once firmware was booted by other means, \
         `metisctl -d {device} fw changed` tells the driver"
    )
}

/// Polls INFO until the firmware leaves its boot states or `limit` passes.
fn wait_boot(dev: &Device, limit: Duration) -> Result<Info, Failure> {
    let start = Instant::now();
    loop {
        let info = dev.info()?;
        let booting = matches!(
            info.fw_state,
            FwState::Off | FwState::Bootloader | FwState::Booting
        );
        if !booting || start.elapsed() >= limit {
            return Ok(info);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn print_fw_status(cli: &Cli, device: &str, info: &Info) {
    if cli.json {
        print_json(&fw_status_json(device, info));
    } else {
        print!("{}", fw_status_text(info));
    }
}

/// `fw status` as text.
pub fn fw_status_text(info: &Info) -> String {
    format_pairs(&[
        ("state", info.fw_state.to_string()),
        ("owner", info.fw_owner.to_string()),
        ("version", info.fw_version.to_string()),
        ("interface", info.fw_if_version.to_string()),
        ("resets", info.reset_count.to_string()),
    ])
}

/// `fw status --json`.
pub fn fw_status_json(device: &str, info: &Info) -> Value {
    json!({
        "device": device,
        "state": info.fw_state.name(),
        "owner": info.fw_owner.name(),
        "version": info.fw_version.to_string(),
        "interface": info.fw_if_version.to_string(),
        "reset_count": info.reset_count,
    })
}

/// `info` as text: every field of `struct metis_info`.
pub fn info_text(device: &str, i: &Info) -> String {
    let abi = if i.abi_compatible() {
        i.abi_version.to_string()
    } else {
        format!(
            "{} (this tool speaks {})",
            i.abi_version,
            metis::sys::METIS_ABI_VERSION
        )
    };
    format_pairs(&[
        ("device", device.to_string()),
        ("abi_version", abi),
        ("vendor_id", format!("0x{:04x}", i.vendor_id)),
        ("device_id", format!("0x{:04x}", i.device_id)),
        ("revision", format!("0x{:02x}", i.revision)),
        ("irq_mode", i.irq_mode.to_string()),
        ("iommu_mode", i.iommu_mode.to_string()),
        ("fw_state", i.fw_state.to_string()),
        ("fw_owner", i.fw_owner.to_string()),
        (
            "fw_version",
            format!("{} (0x{:08x})", i.fw_version, i.fw_version.0),
        ),
        (
            "fw_if_version",
            format!("{} (0x{:08x})", i.fw_if_version, i.fw_if_version.0),
        ),
        ("wr_channels", i.wr_channels.to_string()),
        ("rd_channels", i.rd_channels.to_string()),
        ("irq_vectors", i.irq_vectors.to_string()),
        ("reset_count", i.reset_count.to_string()),
        (
            "mem_size",
            format!("{} ({})", i.mem_size, format_human(i.mem_size)),
        ),
        (
            "mem_free",
            format!("{} ({})", i.mem_free, format_human(i.mem_free)),
        ),
        ("bytes_to_device", i.bytes_to_device.to_string()),
        ("bytes_from_device", i.bytes_from_device.to_string()),
    ])
}

/// `info --json`: raw values plus decoded names.
pub fn info_json(device: &str, i: &Info) -> Value {
    json!({
        "device": device,
        "abi_version": i.abi_version,
        "vendor_id": i.vendor_id,
        "device_id": i.device_id,
        "revision": i.revision,
        "irq_mode": i.irq_mode.name(),
        "irq_mode_raw": i.irq_mode.raw(),
        "iommu_mode": i.iommu_mode.name(),
        "iommu_mode_raw": i.iommu_mode.raw(),
        "fw_state": i.fw_state.name(),
        "fw_state_raw": i.fw_state.raw(),
        "fw_owner": i.fw_owner.name(),
        "fw_owner_raw": i.fw_owner.raw(),
        "fw_version": i.fw_version.to_string(),
        "fw_version_raw": i.fw_version.0,
        "fw_if_version": i.fw_if_version.to_string(),
        "fw_if_version_raw": i.fw_if_version.0,
        "wr_channels": i.wr_channels,
        "rd_channels": i.rd_channels,
        "irq_vectors": i.irq_vectors,
        "reset_count": i.reset_count,
        "mem_size": i.mem_size,
        "mem_free": i.mem_free,
        "bytes_to_device": i.bytes_to_device,
        "bytes_from_device": i.bytes_from_device,
    })
}

fn to_usize(n: u64) -> Result<usize, Failure> {
    usize::try_from(n).map_err(|_| Failure::Usage(format!("{n} bytes do not fit in memory")))
}

fn checked_end(offset: u64, len: u64) -> Result<u64, Failure> {
    offset
        .checked_add(len)
        .ok_or_else(|| Failure::Usage(format!("offset {offset} + length {len} overflows")))
}

fn cmd(cli: &Cli, dev: &Device, c: &CmdCommand) -> Result<(), Failure> {
    let device = cli.device.display().to_string();
    match c {
        CmdCommand::Echo { text, hex } => {
            let sent: Vec<u8> = match (text, hex) {
                (Some(t), _) => t.as_bytes().to_vec(),
                (None, Some(h)) => h.0.clone(),
                (None, None) => Vec::new(),
            };
            if sent.len() > metis::ECHO_MAX {
                return Err(Failure::Usage(format!(
                    "echo payload is {} bytes; at most {} fit",
                    sent.len(),
                    metis::ECHO_MAX
                )));
            }
            let got = dev.cmd_echo(&sent)?;
            let ok = got == sent;
            if cli.json {
                print_json(&json!({
                    "device": device,
                    "sent": data::hex(&sent),
                    "received": data::hex(&got),
                    "match": ok,
                }));
            } else if text.is_some() {
                println!("{}", String::from_utf8_lossy(&got));
            } else {
                println!("{}", data::hex(&got));
            }
            if ok {
                Ok(())
            } else {
                Err(Failure::Op(format!(
                    "echo came back different: sent {} bytes, received {} ({})",
                    sent.len(),
                    got.len(),
                    data::hex(&got)
                )))
            }
        }
        CmdCommand::Checksum {
            len,
            offset,
            file,
            seed,
        } => {
            let bytes = match file {
                Some(p) => {
                    let mut b = std::fs::read(p)
                        .map_err(|e| Failure::Op(format!("cannot read {}: {e}", p.display())))?;
                    if let Some(l) = len {
                        b.truncate(to_usize(*l)?);
                    }
                    b
                }
                None => data::pattern(to_usize(len.unwrap_or(1 << 20))?, *seed),
            };
            if bytes.is_empty() {
                return Err(Failure::Usage("nothing to checksum (empty file)".into()));
            }
            let n = bytes.len() as u64;
            let region = dev.mem_alloc(checked_end(*offset, n)?)?;
            dev.dma_to_device(&bytes, &region, *offset)?;
            let crc = dev.cmd_checksum(&region, *offset, n)?;
            let host = data::crc32(&bytes);
            if cli.json {
                print_json(&json!({
                    "device": device, "length": n, "offset": offset,
                    "crc32": crc, "host_crc32": host, "match": crc == host,
                }));
            } else {
                println!("crc32 0x{crc:08x} over {n} bytes (host 0x{host:08x})");
            }
            if crc == host {
                Ok(())
            } else {
                Err(Failure::Op(format!(
                    "checksum mismatch: card 0x{crc:08x}, host 0x{host:08x}"
                )))
            }
        }
        CmdCommand::Fill {
            len,
            offset,
            pattern,
        } => {
            let n = to_usize(*len)?;
            let region = dev.mem_alloc(checked_end(*offset, *len)?)?;
            dev.cmd_fill(&region, *offset, *len, *pattern)?;
            let mut back = vec![0u8; n];
            dev.dma_from_device(&mut back, &region, *offset)?;
            let bad = data::first_mismatch(&data::fill_expected(n, *pattern), &back);
            if cli.json {
                print_json(&json!({
                    "device": device, "length": len, "offset": offset,
                    "pattern": pattern, "match": bad.is_none(),
                }));
            } else if bad.is_none() {
                println!("filled {len} bytes with 0x{pattern:08x}: verified");
            }
            match bad {
                None => Ok(()),
                Some(o) => Err(Failure::Op(format!(
                    "fill check failed: byte {o} is 0x{:02x}, expected 0x{:02x}",
                    back[o],
                    pattern.to_le_bytes()[o % 4]
                ))),
            }
        }
        CmdCommand::Run { op, arg, len, seed } => {
            let n = to_usize(*len)?;
            let op = metis::RunOp::from(*op);
            let input = data::pattern(n, *seed);
            let rin = dev.mem_alloc(*len)?;
            let rout = dev.mem_alloc(*len)?;
            dev.dma_to_device(&input, &rin, 0)?;
            let crc = dev.cmd_run(op, *arg, &rin, 0, &rout, 0, *len)?;
            let mut out = vec![0u8; n];
            dev.dma_from_device(&mut out, &rout, 0)?;
            let expect = data::run_expected(op, *arg, &input);
            let host = data::crc32(&expect);
            let bad = data::first_mismatch(&expect, &out);
            let ok = bad.is_none() && crc == host;
            if cli.json {
                print_json(&json!({
                    "device": device, "op": format!("{op:?}").to_lowercase(), "arg": arg,
                    "length": len, "crc32": crc, "host_crc32": host,
                    "output_match": bad.is_none(), "match": ok,
                }));
            } else {
                println!("run {op:?} arg 0x{arg:x} over {len} bytes: crc32 0x{crc:08x} (host 0x{host:08x})");
            }
            if let Some(o) = bad {
                return Err(Failure::Op(format!(
                    "run output differs from the host's at byte {o}: 0x{:02x}, expected 0x{:02x}",
                    out[o], expect[o]
                )));
            }
            if crc != host {
                return Err(Failure::Op(format!(
                    "run returned crc32 0x{crc:08x}, host computes 0x{host:08x}"
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Info {
        let raw = metis::sys::metis_info {
            abi_version: 1,
            vendor_id: 0x1f9d,
            device_id: 0x1100,
            revision: 1,
            irq_mode: 2,
            iommu_mode: 0,
            fw_state: 3,
            fw_version: 1 | (4 << 8) | (2 << 16),
            fw_if_version: 1 << 16,
            wr_channels: 2,
            rd_channels: 2,
            irq_vectors: 13,
            reset_count: 0,
            fw_owner: 0,
            mem_size: 1 << 30,
            mem_free: 1 << 29,
            bytes_to_device: 10,
            bytes_from_device: 20,
            ..Default::default()
        };
        Info::from_raw(&raw)
    }

    #[test]
    fn info_text_has_every_field() {
        let t = info_text("/dev/metis0", &sample());
        for key in [
            "device",
            "abi_version",
            "vendor_id",
            "device_id",
            "revision",
            "irq_mode",
            "iommu_mode",
            "fw_state",
            "fw_owner",
            "fw_version",
            "fw_if_version",
            "wr_channels",
            "rd_channels",
            "irq_vectors",
            "reset_count",
            "mem_size",
            "mem_free",
            "bytes_to_device",
            "bytes_from_device",
        ] {
            assert!(
                t.lines().any(|l| l.split_whitespace().next() == Some(key)),
                "{key} missing in\n{t}"
            );
        }
        assert!(t.contains("vendor_id          0x1f9d\n"), "{t}");
        assert!(t.contains("fw_version         1.4.2 (0x00020401)\n"), "{t}");
        assert!(
            t.contains("mem_size           1073741824 (1.00 GiB)\n"),
            "{t}"
        );
        assert!(t.contains("irq_mode           msi\n"), "{t}");
        assert!(t.contains("fw_owner           kernel\n"), "{t}");
    }

    /// A runtime-owned card after a reset: waiting for the runtime.
    fn runtime_sample() -> Info {
        let mut raw = metis::sys::metis_info {
            fw_owner: 1,
            fw_state: 1,
            ..Default::default()
        };
        raw.abi_version = 1;
        Info::from_raw(&raw)
    }

    #[test]
    fn owner_is_shown_by_name() {
        let r = runtime_sample();
        assert!(
            info_text("/dev/metis0", &r).contains("fw_owner           runtime\n"),
            "{}",
            info_text("/dev/metis0", &r)
        );
        let j = info_json("/dev/metis0", &r);
        assert_eq!(
            (j["fw_owner"].clone(), j["fw_owner_raw"].clone()),
            (json!("runtime"), json!(1))
        );
        assert_eq!(j["fw_state"], "bootloader");

        let t = fw_status_text(&r);
        assert!(t.contains("state      bootloader\n"), "{t}");
        assert!(t.contains("owner      runtime\n"), "{t}");
        assert!(fw_status_text(&sample()).contains("owner      kernel\n"));
        let j = fw_status_json("/dev/metis0", &r);
        assert_eq!(j["owner"], "runtime");
        assert_eq!(j["state"], "bootloader");
        assert_eq!(fw_status_json("d", &sample())["owner"], "kernel");

        // A value a newer driver may report is shown, not hidden.
        let mut u = sample();
        u.fw_owner = FwOwner::from_raw(5);
        assert!(info_text("d", &u).contains("fw_owner           unknown(5)\n"));
        assert_eq!(info_json("d", &u)["fw_owner_raw"], 5);
    }

    #[test]
    fn reload_on_runtime_owned_card_points_at_fw_changed() {
        let m = runtime_owned_reload("/dev/metis1");
        // Same "<op> failed: <ERRNO>" start as every other failure message.
        assert!(m.starts_with("reset failed: EINVAL: "), "{m}");
        assert!(m.contains("/dev/metis1 is runtime-owned"), "{m}");
        assert!(m.contains("`metisctl -d /dev/metis1 fw changed`"), "{m}");
    }

    #[test]
    fn info_json_round_trips() {
        let j = info_json("/dev/metis0", &sample());
        assert_eq!(j["fw_state"], "ready");
        assert_eq!(j["fw_state_raw"], 3);
        assert_eq!(j["fw_version"], "1.4.2");
        assert_eq!(j["fw_if_version"], "1.0");
        assert_eq!(j["mem_size"], 1u64 << 30);
        assert_eq!(j["vendor_id"], 0x1f9d);
        assert_eq!(j["fw_owner"], "kernel");
        assert_eq!(j["fw_owner_raw"], 0);
        assert_eq!(j.as_object().unwrap().len(), 25);
    }

    #[test]
    fn abi_mismatch_is_flagged() {
        let mut i = sample();
        i.abi_version = 2;
        assert!(info_text("d", &i).contains("2 (this tool speaks 1)"));
    }
}
