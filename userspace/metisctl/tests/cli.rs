//! Runs the metisctl binary: exit codes and messages that need no device.

use std::process::{Command, Output};

fn metisctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metisctl"))
        .args(args)
        .env_remove("METIS_DEVICE")
        .output()
        .expect("run metisctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_exits_zero() {
    let o = metisctl(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for sub in [
        "info", "fw", "dma", "cmd", "reset", "status", "stats", "trace", "doctor", "--device",
        "--json",
    ] {
        assert!(out.contains(sub), "{sub} missing from help:\n{out}");
    }
    let o = metisctl(&["fw", "load", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("METIS_RESET_RELOAD_FIRMWARE"));
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        &["dma", "bench", "--sizes", "4Q"][..],
        &["dma", "bench", "--sizes", "2G"],
        &["bogus"],
        &[],
    ] {
        let o = metisctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn missing_device_exits_one_with_errno() {
    let o = metisctl(&["--device", "/nonexistent/metis7", "info"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/metis7") && e.contains("ENOENT"),
        "{e}"
    );
}

#[test]
fn foreign_device_exits_one_with_enotty() {
    let o = metisctl(&["--device", "/dev/null", "--json", "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ENOTTY"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn dmabuf_is_reported_unsupported() {
    let o = metisctl(&["--device", "/dev/null", "dma", "bench", "--dmabuf"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not supported by this driver version"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fw_changed_is_documented_and_reaches_the_driver() {
    let o = metisctl(&["fw", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("changed") && out.contains("runtime-owned card"),
        "{out}"
    );
    let o = metisctl(&["fw", "changed", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("re-reads the firmware's areas and registers its interrupt table"),
        "{out}"
    );
    // /dev/null is no metis device: the ioctl itself is what fails.
    let o = metisctl(&["--device", "/dev/null", "fw", "changed"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("firmware change failed: ENOTTY"), "{e}");
    assert!(o.stdout.is_empty());
}

/// A made-up sysfs (and debugfs under it) for `METIS_SYSFS`, removed on drop.
struct FakeSys(std::path::PathBuf);

const ATTRS: [(&str, &str); 15] = [
    ("driver_version", "0.1.0"),
    ("firmware_version", "1.2.3"),
    ("interface_version", "1.0"),
    ("firmware_state", "ready"),
    ("firmware_owner", "kernel"),
    ("irq_mode", "msix"),
    ("irq_vectors", "13"),
    ("iommu_mode", "translated"),
    ("reset_count", "2"),
    ("last_reset_reason", "recovery: DMA channel wr0 stuck"),
    ("mem_size", "1073741824"),
    ("mem_free", "805306368"),
    ("bytes_to_device", "8192"),
    ("bytes_from_device", "4096"),
    ("dma_channels", "4 2"),
];

const STATS: &str = "\
wr ch0 jobs=10 bytes=40960 errors=1 timeouts=2 interrupted=3 aborted=4 lost_irqs=5 max_us=120 mean_us=40
rd ch0 jobs=7 bytes=28672 errors=0 timeouts=0 interrupted=0 aborted=0 lost_irqs=0 max_us=9 mean_us=8
";

fn trace_line(seq: u64, start_us: u64, result: &str) -> String {
    format!(
        "seq={seq} start_us={start_us} dir=rd ch=0 len=4096 elements=1 duration_us=7 result={result}\n"
    )
}

impl FakeSys {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("metisctl-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        FakeSys(p)
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Replaced whole, as a reader of sysfs or debugfs sees a file change.
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, p).unwrap();
    }
    /// A bound card: every attribute (`changes` override some), a node if named.
    fn card(&self, bdf: &str, node: Option<&str>, changes: &[(&str, &str)]) {
        for (name, value) in ATTRS {
            let v = changes
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(value, |(_, v)| *v);
            self.write(
                &format!("bus/pci/devices/{bdf}/metis/{name}"),
                &format!("{v}\n"),
            );
        }
        if let Some(n) = node {
            std::fs::create_dir_all(self.0.join(format!("bus/pci/devices/{bdf}/misc/{n}")))
                .unwrap();
        }
    }
    fn debugfs(&self, bdf: &str, file: &str, text: &str) {
        self.write(&format!("kernel/debug/metis/{bdf}/{file}"), text);
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_metisctl"))
            .args(args)
            .env_remove("METIS_DEVICE")
            .env("METIS_SYSFS", &self.0)
            .output()
            .expect("run metisctl")
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn status_json_has_every_card_from_sysfs() {
    let t = FakeSys::new("status-json");
    t.card("0000:01:00.0", Some("metis0"), &[]);
    t.card(
        "0000:02:00.0",
        None,
        &[
            ("firmware_state", "bootloader"),
            ("firmware_owner", "runtime"),
            ("firmware_version", "none"),
            ("irq_mode", "poll"),
            ("irq_vectors", "0"),
        ],
    );
    // Not a card: no metis/ directory.
    t.write("bus/pci/devices/0000:00:1f.0/vendor", "0x8086\n");
    let o = t.run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json_of(&o);
    let cards = j.as_array().expect("an array");
    assert_eq!(cards.len(), 2, "{j}");
    let a = &cards[0];
    assert_eq!(a["bdf"], "0000:01:00.0");
    assert_eq!(a["node"], "/dev/metis0");
    assert_eq!(a["driver_version"], "0.1.0");
    assert_eq!(a["firmware_version"], "1.2.3");
    assert_eq!(a["interface_version"], "1.0");
    assert_eq!(a["firmware_state"], "ready");
    assert_eq!(a["firmware_owner"], "kernel");
    assert_eq!(a["irq_mode"], "msix");
    assert_eq!(a["irq_vectors"], 13);
    assert_eq!(a["iommu_mode"], "translated");
    assert_eq!(a["reset_count"], 2);
    assert_eq!(a["last_reset_reason"], "recovery: DMA channel wr0 stuck");
    assert_eq!(a["mem_size"], 1073741824u64);
    assert_eq!(a["mem_free"], 805306368u64);
    assert_eq!(a["bytes_to_device"], 8192);
    assert_eq!(a["bytes_from_device"], 4096);
    assert_eq!(a["dma_channels"], serde_json::json!({"wr": 4, "rd": 2}));
    assert_eq!(a.as_object().unwrap().len(), 17);
    let b = &cards[1];
    assert_eq!(b["bdf"], "0000:02:00.0");
    assert!(b["node"].is_null());
    assert_eq!(b["firmware_state"], "bootloader");
    assert_eq!(b["firmware_version"], "none");
    assert_eq!(b["irq_mode"], "poll");
    assert_eq!(b["irq_vectors"], 0);

    // One card, by address, short address, node name or node.
    for sel in ["0000:02:00.0", "02:00.0"] {
        let j = json_of(&t.run(&["--json", "status", "--card", sel]));
        assert_eq!(j.as_array().unwrap().len(), 1, "{sel}");
        assert_eq!(j[0]["bdf"], "0000:02:00.0", "{sel}");
    }
    for sel in ["metis0", "/dev/metis0"] {
        let j = json_of(&t.run(&["--json", "status", "--card", sel]));
        assert_eq!(j.as_array().unwrap().len(), 1, "{sel}");
        assert_eq!(j[0]["bdf"], "0000:01:00.0", "{sel}");
    }
    let o = t.run(&["status", "--card", "metis7"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("no bound metis card is 'metis7'"), "{e}");
    assert!(
        e.contains("0000:01:00.0 (/dev/metis0), 0000:02:00.0"),
        "{e}"
    );
}

#[test]
fn status_text_is_one_aligned_block_per_card() {
    let t = FakeSys::new("status-text");
    t.card("0000:01:00.0", Some("metis0"), &[]);
    t.card("0000:03:00.0", Some("metis1"), &[("reset_count", "0")]);
    let o = t.run(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{out}");
    assert_eq!(
        blocks[0],
        "\
bdf                0000:01:00.0
node               /dev/metis0
driver_version     0.1.0
firmware_version   1.2.3
interface_version  1.0
firmware_state     ready
firmware_owner     kernel
irq_mode           msix
irq_vectors        13
iommu_mode         translated
reset_count        2
last_reset_reason  recovery: DMA channel wr0 stuck
mem_size           1073741824 (1.00 GiB)
mem_free           805306368 (768.00 MiB)
bytes_to_device    8192 (8.00 KiB)
bytes_from_device  4096 (4.00 KiB)
dma_channels       4 wr (device to host), 2 rd (host to device)"
    );
    assert!(
        blocks[1].starts_with("bdf                0000:03:00.0\nnode               /dev/metis1\n")
    );
    assert!(blocks[1].contains("\nreset_count        0\n"), "{out}");
}

#[test]
fn status_without_a_card_or_with_bad_attributes_exits_one() {
    let t = FakeSys::new("status-none");
    for args in [&["status"][..], &["--json", "status"]] {
        let o = t.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("no metis card is bound"),
            "{}",
            stderr(&o)
        );
    }
    t.card("0000:01:00.0", Some("metis0"), &[("mem_free", "-1")]);
    let o = t.run(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(
        e.contains("0000:01:00.0/metis/mem_free: mem_free is '-1', expected a decimal number"),
        "{e}"
    );
}

#[test]
fn stats_reads_debugfs_per_card() {
    let t = FakeSys::new("stats");
    t.card("0000:01:00.0", Some("metis0"), &[]);
    let o = t.run(&["stats"]);
    assert_eq!(o.status.code(), Some(1), "no debugfs yet");
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(e.contains("kernel/debug/metis/0000:01:00.0/stats"), "{e}");
    assert!(
        e.contains(&format!(
            "`mount -t debugfs none {}/kernel/debug`",
            t.0.display()
        )),
        "{e}"
    );
    assert!(e.contains("sudo metisctl stats"), "{e}");

    t.debugfs("0000:01:00.0", "stats", STATS);
    let o = t.run(&["stats"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "\
0000:01:00.0 (/dev/metis0): DMA channels since probe (wr: device to host, rd: host to device)
dir  ch  jobs  bytes  errors  timeouts  interrupted  aborted  lost_irqs  max_us  mean_us
---  --  ----  -----  ------  --------  -----------  -------  ---------  ------  -------
wr    0    10  40960       1         2            3        4          5     120       40
rd    0     7  28672       0         0            0        0          0       9        8
"
    );
    let j = json_of(&t.run(&["--json", "stats", "--card", "metis0"]));
    assert_eq!(j[0]["bdf"], "0000:01:00.0");
    let ch = j[0]["channels"].as_array().unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        ch[0],
        serde_json::json!({
            "dir": "wr", "channel": 0, "jobs": 10, "bytes": 40960, "errors": 1,
            "timeouts": 2, "interrupted": 3, "aborted": 4, "lost_irqs": 5,
            "max_us": 120, "mean_us": 40,
        })
    );
    assert_eq!(ch[1]["dir"], "rd");

    t.debugfs("0000:01:00.0", "stats", "wr ch0 jobs=many\n");
    let o = t.run(&["stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("stats: line 1: jobs=many is not a decimal number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trace_prints_clears_and_speaks_json_lines() {
    let t = FakeSys::new("trace");
    t.card("0000:01:00.0", Some("metis0"), &[]);
    t.card("0000:02:00.0", Some("metis1"), &[]);
    let ring = trace_line(1, 1000, "ok") + &trace_line(2, 1010, "timeout");
    t.debugfs("0000:01:00.0", "trace", &ring);
    t.debugfs("0000:02:00.0", "trace", &trace_line(9, 5, "aborted"));

    // The first card by default, saying so since there are two.
    let o = t.run(&["trace"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "     seq        start_us  dir  ch         len  elements  duration_us  result
       1            1000  rd    0        4096         1            7  ok
       2            1010  rd    0        4096         1            7  timeout
"
    );
    assert!(
        stderr(&o).contains("the first of 2 cards"),
        "{}",
        stderr(&o)
    );

    let o = t.run(&["--json", "trace", "--card", "metis1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(
        lines,
        [serde_json::json!({
            "seq": 9, "start_us": 5, "dir": "rd", "ch": 0, "len": 4096,
            "elements": 1, "duration_us": 7, "result": "aborted",
        })]
    );

    let o = t.run(&["trace", "--clear", "--card", "0000:02:00.0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let f = t.0.join("kernel/debug/metis/0000:02:00.0/trace");
    assert_eq!(std::fs::read_to_string(f).unwrap(), "1\n");
    // The other card's ring is untouched.
    let f = t.0.join("kernel/debug/metis/0000:01:00.0/trace");
    assert_eq!(std::fs::read_to_string(f).unwrap(), ring);

    // An empty ring says so.
    t.debugfs("0000:02:00.0", "trace", "");
    let o = t.run(&["trace", "--card", "metis1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no transfer since probe or the last clear"));

    let o = t.run(&["trace", "--clear", "--follow"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Kills the child when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn trace_follow_prints_new_entries_and_starts_over_after_a_clear() {
    use std::io::BufRead;
    use std::time::Duration;

    let t = FakeSys::new("follow");
    t.card("0000:01:00.0", Some("metis0"), &[]);
    let mut ring = trace_line(1, 1000, "ok") + &trace_line(2, 1010, "ok");
    t.debugfs("0000:01:00.0", "trace", &ring);
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_metisctl"))
            .args(["--json", "trace", "--follow"])
            .env("METIS_SYSFS", &t.0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run metisctl"),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let next = || -> (u64, u64) {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s");
        let v: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
        (v["seq"].as_u64().unwrap(), v["start_us"].as_u64().unwrap())
    };
    let quiet = || {
        let extra = rx.recv_timeout(Duration::from_millis(700));
        assert!(extra.is_err(), "printed again: {extra:?}");
    };
    assert_eq!(next(), (1, 1000));
    assert_eq!(next(), (2, 1010));
    quiet();

    // New transfers: only they are printed.
    ring += &(trace_line(3, 1020, "ok") + &trace_line(4, 1030, "error"));
    t.debugfs("0000:01:00.0", "trace", &ring);
    assert_eq!(next(), (3, 1020));
    assert_eq!(next(), (4, 1030));
    quiet();

    // Cleared, then one transfer: seq went backwards, start over.
    t.debugfs("0000:01:00.0", "trace", &trace_line(1, 9000, "ok"));
    assert_eq!(next(), (1, 9000));
    quiet();
    t.debugfs(
        "0000:01:00.0",
        "trace",
        &(trace_line(1, 9000, "ok") + &trace_line(2, 9010, "ok")),
    );
    assert_eq!(next(), (2, 9010));
    quiet();
    assert!(child.0.try_wait().unwrap().is_none(), "--follow stopped");
}

#[test]
fn doctor_judges_a_bound_card_from_sysfs() {
    let t = FakeSys::new("doctor");
    let bdf = "0000:01:00.0";
    t.card(
        bdf,
        Some("metis9"),
        &[
            ("irq_mode", "poll"),
            ("irq_vectors", "0"),
            ("firmware_state", "failed"),
            ("firmware_version", "none"),
            ("interface_version", "none"),
        ],
    );
    let d = format!("bus/pci/devices/{bdf}");
    t.write(&format!("{d}/vendor"), "0x1f9d\n");
    t.write(&format!("{d}/device"), "0x1100\n");
    std::fs::create_dir_all(t.0.join("bus/pci/drivers/metis")).unwrap();
    std::os::unix::fs::symlink(
        t.0.join("bus/pci/drivers/metis"),
        t.0.join(format!("{d}/driver")),
    )
    .unwrap();
    let o = t.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        &format!("ok    {bdf}: bound to metis, IOMMU translated\n"),
        "FAIL  /dev/metis9: firmware is failed, not ready: `metisctl -d /dev/metis9 fw load`",
        "WARN  /dev/metis9: completions are polled, not interrupt-driven (IOMMU translated)",
        "info  /dev/metis9: 2 card reset(s) since the driver bound it, the last: recovery: DMA \
         channel wr0 stuck",
    ] {
        assert!(out.contains(line), "{line} missing in\n{out}");
    }
}
