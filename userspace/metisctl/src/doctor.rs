//! `metisctl doctor`: what this machine lacks for a Metis card, in words a
//! user can act on.
//!
//! The vendor driver's users met each of these as an unexplained failure
//! (field reports R1.1, R1.5, R3): a BAR the root port's window could not
//! hold, kernel options the runtime needs, a device node nobody may open, a
//! card left polling because its interrupts never arrived. Everything is read
//! from sysfs, the kernel's configuration and the device itself, so it also
//! works when the driver refused the card. A bound card's firmware state,
//! interrupt and IOMMU modes and resets come from the driver's sysfs
//! attributes ([`metis::sysfs`], as `metisctl status` shows them), so they
//! are checked even when the node cannot be opened.

use metis::sysfs::{FileError, Status};
use metis::{Device, FwOwner, FwState, IrqMode};
use serde_json::{json, Value};
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

const VENDOR: &str = "0x1f9d";
const DEVICE: &str = "0x1100";
const BAR0_NEEDED: u64 = 4 << 10;
const BAR2_NEEDED: u64 = 32 << 20;
const DEFAULT_FIRMWARE: &str = "axelera/metis-fw-if1.bin";

/// Options the driver cannot load without.
const DRIVER_OPTIONS: &[&str] = &["CONFIG_RUST", "CONFIG_PCI_MSI", "CONFIG_DMA_SHARED_BUFFER"];
/// Options the runtime needs to share buffers with the card (R1.5).
const RUNTIME_OPTIONS: &[&str] = &[
    "CONFIG_DMABUF_HEAPS",
    "CONFIG_DMABUF_HEAPS_SYSTEM",
    "CONFIG_DMABUF_HEAPS_CMA",
    "CONFIG_SYNC_FILE",
    "CONFIG_SW_SYNC",
];

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Worth knowing, nothing to fix.
    Info,
    /// Works, but not as well as it could, or cannot be checked.
    Warn,
    /// The card cannot be used until this is fixed.
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One result: what was checked and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// The thing checked: `kernel`, `module`, a PCI address, a device node.
    pub subject: String,
    pub message: String,
}

/// Where to look; tests point these at a made-up tree.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `/lib/firmware`.
    pub firmware: PathBuf,
    /// The kernel's configuration, if known.
    pub kernel_config: Option<PathBuf>,
    /// `/usr/src`, where metis-dkms puts the module's source.
    pub src: PathBuf,
    /// `/lib/modules/$(uname -r)/build`, the running kernel's build tree.
    pub build: PathBuf,
    /// The running kernel's release.
    pub release: String,
}

impl Roots {
    /// The running system's, with sysfs at `sys` (`/sys` unless
    /// `METIS_SYSFS` says otherwise). The configuration is
    /// `/boot/config-$(uname -r)` when that exists; `/proc/config.gz` is
    /// compressed, so pass it as `--kernel-config <(zcat /proc/config.gz)`.
    pub fn system(sys: PathBuf, kernel_config: Option<PathBuf>) -> Self {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .unwrap_or_default();
        let kernel_config = kernel_config.or_else(|| {
            let p = PathBuf::from(format!("/boot/config-{release}"));
            p.exists().then_some(p)
        });
        Roots {
            sys,
            dev: "/dev".into(),
            firmware: "/lib/firmware".into(),
            kernel_config,
            src: "/usr/src".into(),
            build: PathBuf::from(format!("/lib/modules/{release}/build")),
            release,
        }
    }
}

/// Runs every check.
pub fn run(roots: &Roots) -> Vec<Finding> {
    let mut out = Vec::new();
    kernel_options(roots, &mut out);
    let loaded = module(roots, &mut out);
    if !loaded {
        dkms_build(roots, &mut out);
    }
    firmware_file(roots, loaded, &mut out);
    let cards = cards(roots, &mut out);
    if cards == 0 {
        out.push(finding(
            Level::Fail,
            "pci",
            "no Metis card (PCI 1f9d:1100) is visible: check that it is seated, that \
             the slot is enabled in the device tree or firmware, and `lspci -nn`"
                .into(),
        ));
    }
    dma_heap(roots, &mut out);
    out
}

fn finding(level: Level, subject: &str, message: String) -> Finding {
    Finding {
        level,
        subject: subject.to_string(),
        message,
    }
}

/// `CONFIG_X` is built in or a module in `config`.
fn option_set(config: &str, name: &str) -> bool {
    config
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .any(|(k, v)| k == name && (v == "y" || v == "m"))
}

fn kernel_options(roots: &Roots, out: &mut Vec<Finding>) {
    let Some(path) = &roots.kernel_config else {
        out.push(finding(
            Level::Warn,
            "kernel",
            "the kernel's configuration is not readable (no /boot/config-<release>), so its \
             options are not checked; pass --kernel-config <(zcat /proc/config.gz) if the kernel \
             has CONFIG_IKCONFIG_PROC"
                .into(),
        ));
        return;
    };
    let config = match fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) => {
            out.push(finding(
                Level::Warn,
                "kernel",
                format!(
                    "cannot read {}: {e}; kernel options not checked",
                    path.display()
                ),
            ));
            return;
        }
    };
    let groups: [(&[&str], Level, &str); 2] = [
        (
            DRIVER_OPTIONS,
            Level::Fail,
            "the metis module needs them; use a kernel built with them",
        ),
        (
            RUNTIME_OPTIONS,
            Level::Warn,
            "the Voyager runtime shares buffers with the card through dma-heaps and sync files \
             and fails without them; rebuild the kernel with them set",
        ),
    ];
    for (names, level, consequence) in groups {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !option_set(&config, n))
            .collect();
        out.push(if missing.is_empty() {
            finding(Level::Ok, "kernel", format!("{} set", names.join(", ")))
        } else {
            finding(
                level,
                "kernel",
                format!("{} not set: {consequence}", missing.join(", ")),
            )
        });
    }
}

/// Whether the module is loaded.
fn module(roots: &Roots, out: &mut Vec<Finding>) -> bool {
    if roots.sys.join("module/metis").is_dir() {
        out.push(finding(Level::Ok, "module", "metis is loaded".into()));
        true
    } else {
        out.push(finding(
            Level::Fail,
            "module",
            "metis is not loaded: `sudo modprobe metis`; if that fails, `dmesg | grep metis` \
             says why (with DKMS, /var/lib/dkms/metis/*/build/make.log)"
                .into(),
        ));
        false
    }
}

/// Whether metis-dkms can build the module for the running kernel: its own
/// check (`dkms-make.sh --check`, the one DKMS runs) says why not in one line,
/// such as a Debian kernel whose `linux-source` of the same version is missing
/// or a rustc other than the kernel's.
fn dkms_build(roots: &Roots, out: &mut Vec<Finding>) {
    let Some(script) = fs::read_dir(&roots.src).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("metis-"))
            .map(|e| e.path().join("dkms-make.sh"))
            .filter(|p| p.is_file())
            .max()
    }) else {
        return;
    };
    let run = std::process::Command::new("bash")
        .arg(&script)
        .arg("--check")
        .arg(&roots.release)
        .arg(&roots.build)
        .stdin(std::process::Stdio::null())
        .output();
    match run {
        Ok(o) if o.status.success() => out.push(finding(
            Level::Ok,
            "build",
            format!(
                "metis can be built for kernel {} ({})",
                roots.release,
                script.display()
            ),
        )),
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("the build check failed without saying why");
            out.push(finding(Level::Fail, "build", why.trim().to_string()));
        }
        Err(e) => out.push(finding(
            Level::Warn,
            "build",
            format!("could not run {}: {e}", script.display()),
        )),
    }
}

fn firmware_file(roots: &Roots, loaded: bool, out: &mut Vec<Finding>) {
    let name = loaded
        .then(|| fs::read_to_string(roots.sys.join("module/metis/parameters/firmware")).ok())
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "(null)")
        .unwrap_or_else(|| DEFAULT_FIRMWARE.to_string());
    let path = roots.firmware.join(&name);
    if path.is_file() {
        out.push(finding(
            Level::Ok,
            "firmware",
            format!("{} is present", path.display()),
        ));
    } else {
        out.push(finding(
            Level::Fail,
            "firmware",
            format!(
                "{} is missing: the card cannot boot without it; install the firmware from the \
                 Voyager SDK there (or load the module with firmware=<file under {}>)",
                path.display(),
                roots.firmware.display()
            ),
        ));
    }
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// (start, size) of each BAR from a PCI device's `resource` file.
fn bars(resource: &str) -> Vec<(u64, u64)> {
    resource
        .lines()
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok())
                .collect();
            match f.as_slice() {
                [start, end, ..] if *end > *start => (*start, end - start + 1),
                _ => (0, 0),
            }
        })
        .collect()
}

fn size_text(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

/// Checks every Metis function; returns how many there are.
fn cards(roots: &Roots, out: &mut Vec<Finding>) -> usize {
    let Ok(entries) = fs::read_dir(roots.sys.join("bus/pci/devices")) else {
        return 0;
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            read_trim(&p.join("vendor")).as_deref() == Some(VENDOR)
                && read_trim(&p.join("device")).as_deref() == Some(DEVICE)
        })
        .collect();
    found.sort();
    for dir in &found {
        card(roots, dir, out);
    }
    found.len()
}

fn card(roots: &Roots, dir: &Path, out: &mut Vec<Finding>) {
    let bdf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bars = bars(&fs::read_to_string(dir.join("resource")).unwrap_or_default());
    let bar = |i: usize| bars.get(i).copied().unwrap_or((0, 0));
    let mut bars_ok = true;
    for (i, needed) in [(0, BAR0_NEEDED), (2, BAR2_NEEDED)] {
        let (start, size) = bar(i);
        if start == 0 || size < needed {
            bars_ok = false;
            let found = if start == 0 {
                "not assigned".to_string()
            } else {
                format!("{} at {start:#x}", size_text(size))
            };
            out.push(finding(
                Level::Fail,
                &bdf,
                format!(
                    "BAR{i} is {found}, the card needs {}: the memory window of the port above \
                     the card is too small. On a Rock 5B, Orange Pi 5 Plus or other RK3588 board \
                     with the card in the x4 slot, enable the rk3588-metis-pcie3x4-window overlay \
                     (docs/install.md); elsewhere look for a firmware (BIOS) setting that reserves \
                     more PCIe memory below 4 GiB, since BAR2 is a 32-bit BAR",
                    size_text(needed)
                ),
            ));
        }
    }
    if bars_ok {
        out.push(finding(
            Level::Ok,
            &bdf,
            format!(
                "BAR0 {} and BAR2 {} assigned",
                size_text(bar(0).1),
                size_text(bar(2).1)
            ),
        ));
    }

    link(dir, &bdf, out);
    let iommu = match read_trim(&dir.join("iommu_group/type")).as_deref() {
        Some("identity") => "passthrough",
        Some(t) if t.starts_with("DMA") => "translated",
        Some("blocked") => "blocked",
        Some(_) => "unknown",
        None => "none",
    };
    let driver = fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match driver.as_deref() {
        Some("metis") => {
            let status = metis::sysfs::read_status(&dir.join("metis"));
            // The driver's own view when it has one (what `info` reports).
            let iommu = status.as_ref().map_or(iommu, |s| s.iommu_mode.as_str());
            out.push(finding(
                Level::Ok,
                &bdf,
                format!("bound to metis, IOMMU {iommu}"),
            ));
            nodes(roots, dir, &bdf, out);
            vendor_node(roots, &bdf, iommu, out);
            driver_state(roots, dir, &bdf, &status, out);
        }
        Some(other) => {
            out.push(finding(
                Level::Warn,
                &bdf,
                format!(
                    "bound to {other}, not metis (passed through to a virtual machine?); \
                     `echo {bdf} > /sys/bus/pci/drivers/{other}/unbind` to give it back"
                ),
            ));
        }
        None => {
            let why = if bars_ok {
                format!("`dmesg | grep {bdf}` says why the driver refused it")
            } else {
                "see the BAR finding above".to_string()
            };
            out.push(finding(
                Level::Fail,
                &bdf,
                format!("no driver is bound to the card: {why}"),
            ));
        }
    }
}

/// With the vendor-ABI node on (`vendor_abi=`, class `metis`): what its users can reach
/// with the card's IOMMU mode, as the driver's probe line says (docs/vendor-abi.md).
fn vendor_node(roots: &Roots, bdf: &str, iommu: &str, out: &mut Vec<Finding>) {
    let Some(level) = read_trim(&roots.sys.join("class/metis/version")) else {
        return;
    };
    let (lvl, reach) = if iommu == "translated" {
        (
            Level::Ok,
            "what the card's IOMMU domain maps: its own buffers and every other user's jobs",
        )
    } else {
        (
            Level::Warn,
            "any host memory: with the card's DMA not translated, a user of the node can make              the card read or write it. Give the node (group axelera) only to whom you would              give root, or boot with the IOMMU translating (iommu.passthrough=0)",
        )
    };
    out.push(finding(
        lvl,
        bdf,
        format!("vendor-ABI node {level} on (vendor_abi=), IOMMU {iommu}: its users reach {reach}"),
    ));
}

fn link(dir: &Path, bdf: &str, out: &mut Vec<Finding>) {
    let get = |f: &str| read_trim(&dir.join(f));
    let (Some(speed), Some(max_speed), Some(width), Some(max_width)) = (
        get("current_link_speed"),
        get("max_link_speed"),
        get("current_link_width"),
        get("max_link_width"),
    ) else {
        return;
    };
    if speed == max_speed && width == max_width {
        out.push(finding(Level::Ok, bdf, format!("link {speed} x{width}")));
    } else {
        out.push(finding(
            Level::Warn,
            bdf,
            format!(
                "link trained at {speed} x{width}, the card can do {max_speed} x{max_width}: \
                 DMA will be slower; check the slot (an x1 or Gen2 slot, an adapter or riser)"
            ),
        ));
    }
}

/// The names of the card's misc devices (`metis0`).
fn node_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("misc"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The card's `/dev/metisN` nodes: present, openable, speaking this tool's ABI.
fn nodes(roots: &Roots, dir: &Path, bdf: &str, out: &mut Vec<Finding>) {
    let names = node_names(dir);
    if names.is_empty() {
        out.push(finding(
            Level::Fail,
            bdf,
            "the driver is bound but registered no /dev/metisN: `dmesg | grep metis` says why"
                .into(),
        ));
    }
    for name in names {
        let node = roots.dev.join(&name);
        let subject = node.display().to_string();
        let dev = match Device::open(&node) {
            Ok(d) => d,
            Err(e) => {
                let why = match e.errno() {
                    libc::EACCES | libc::EPERM => format!(
                        "no permission ({e}): add yourself to group metis (`sudo usermod -aG \
                         metis $USER`, then log in again); the udev rule 60-metis.rules gives \
                         the group access"
                    ),
                    libc::ENOENT => format!(
                        "the node is missing ({e}) although sysfs has {name}: is udev (or \
                         devtmpfs) running?"
                    ),
                    _ => format!("cannot be opened: {e}"),
                };
                out.push(finding(Level::Fail, &subject, why));
                continue;
            }
        };
        let info = match dev.info() {
            Ok(i) => i,
            Err(e) => {
                out.push(finding(Level::Fail, &subject, format!("INFO failed: {e}")));
                continue;
            }
        };
        if !info.abi_compatible() {
            out.push(finding(
                Level::Fail,
                &subject,
                format!(
                    "the driver speaks ABI {}, this metisctl {}: install matching versions",
                    info.abi_version,
                    metis::sys::METIS_ABI_VERSION
                ),
            ));
        }
    }
}

/// What the driver's sysfs attributes say of a bound card: firmware,
/// interrupts, resets. Named by the card's node (by its address without one).
fn driver_state(
    roots: &Roots,
    dir: &Path,
    bdf: &str,
    status: &Result<Status, FileError>,
    out: &mut Vec<Finding>,
) {
    let subject = node_names(dir).first().map_or_else(
        || bdf.to_string(),
        |n| roots.dev.join(n).display().to_string(),
    );
    match status {
        Ok(s) => {
            out.push(firmware(&subject, s));
            out.push(interrupts(&subject, s));
            out.push(resets(&subject, s));
        }
        Err(e) => out.push(finding(
            Level::Warn,
            &subject,
            format!(
                "the driver's attributes cannot be read ({e}): firmware state and interrupts \
                 not checked; is the metis module older than this metisctl (`modinfo metis`)?"
            ),
        )),
    }
}

/// The interrupt mode: polling works, but slower.
fn interrupts(subject: &str, s: &Status) -> Finding {
    let iommu = &s.iommu_mode;
    match s.irq_mode() {
        Some(IrqMode::Poll) => finding(
            Level::Warn,
            subject,
            format!(
                "completions are polled, not interrupt-driven (IOMMU {iommu}): the card's \
                 interrupts are not working, so every transfer and command is noticed later and \
                 performance is lower; either irq_mode=4 was asked for, or the interrupt \
                 self-test failed (in a VM: interrupt remapping missing) or a storm was \
                 detected; `dmesg | grep metis` says which"
            ),
        ),
        Some(m) => finding(
            Level::Ok,
            subject,
            format!(
                "interrupts by {m} ({} vector(s)), IOMMU {iommu}",
                s.irq_vectors
            ),
        ),
        None => finding(
            Level::Warn,
            subject,
            format!(
                "interrupt mode '{}' is unknown to this metisctl (IOMMU {iommu}); install the \
                 metisctl of the driver's version",
                s.irq_mode
            ),
        ),
    }
}

/// Resets since probe and the last one's reason: for the record.
fn resets(subject: &str, s: &Status) -> Finding {
    let message = match s.reset_count {
        0 => "no card reset since the driver bound it".to_string(),
        n => {
            let mut m = format!(
                "{n} card reset(s) since the driver bound it, the last: {}",
                s.last_reset_reason
            );
            if s.last_reset_reason.starts_with("recovery") {
                m.push_str(" (the driver recovered the card from a fault; `dmesg | grep metis`)");
            }
            m
        }
    };
    finding(Level::Info, subject, message)
}

/// The firmware state of one card, judged by who is meant to load it.
fn firmware(subject: &str, s: &Status) -> Finding {
    let runtime = s.fw_owner() == Some(FwOwner::Runtime);
    let state = &s.firmware_state;
    match s.fw_state() {
        Some(FwState::Ready) => finding(
            Level::Ok,
            subject,
            format!(
                "firmware {} (interface {}) ready",
                s.firmware_version, s.interface_version
            ),
        ),
        // Not a fault: a runtime-owned card sits in its bootloader from
        // probe, and again after each reset or resume, until the runtime
        // loads the firmware.
        Some(FwState::Bootloader) if runtime => finding(
            Level::Warn,
            subject,
            format!(
                "no firmware is running (bootloader): the firmware is runtime-owned, so the \
                 driver does not load it; the runtime (Voyager SDK) must load it, also after \
                 every reset and resume. If firmware was booted by other means, \
                 `metisctl -d {subject} fw changed` tells the driver"
            ),
        ),
        _ if runtime => finding(
            Level::Fail,
            subject,
            format!(
                "firmware is {state}, not ready: the firmware is runtime-owned, so the runtime must \
                 load it again (`metisctl -d {subject} reset` first brings the card back to its \
                 bootloader); `dmesg | grep metis` has the reason it stopped"
            ),
        ),
        _ => finding(
            Level::Fail,
            subject,
            format!(
                "firmware is {state}, not ready: `metisctl -d {subject} fw load` boots it again; \
                 `dmesg | grep metis` has the reason it stopped"
            ),
        ),
    }
}

fn dma_heap(roots: &Roots, out: &mut Vec<Finding>) {
    let heap = roots.dev.join("dma_heap/system");
    match fs::metadata(&heap) {
        Ok(_) => out.push(finding(
            Level::Ok,
            "dma-heap",
            format!("{} present", heap.display()),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => out.push(finding(
            Level::Warn,
            "dma-heap",
            format!(
                "{} is missing: the runtime allocates buffers there; the kernel needs \
                 CONFIG_DMABUF_HEAPS_SYSTEM",
                heap.display()
            ),
        )),
        Err(e) => out.push(finding(
            Level::Warn,
            "dma-heap",
            format!("{}: {e}", heap.display()),
        )),
    }
}

/// The findings as text, one per line.
pub fn format_text(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{:<5} {}: {}\n", f.level.to_string(), f.subject, f.message))
        .collect()
}

/// The findings as JSON.
pub fn to_json(findings: &[Finding]) -> Value {
    json!({
        "ok": findings.iter().all(|f| f.level != Level::Fail),
        "findings": findings.iter().map(|f| json!({
            "level": f.level.to_string().to_lowercase(),
            "subject": f.subject,
            "message": f.message,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A made-up /sys, /dev and /lib/firmware under a fresh temporary directory.
    struct Tree(PathBuf);

    impl Tree {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "metisctl-doctor-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Tree(p)
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        fn roots(&self, config: Option<&str>) -> Roots {
            if let Some(c) = config {
                self.write("config", c);
            }
            Roots {
                sys: self.0.join("sys"),
                dev: self.0.join("dev"),
                firmware: self.0.join("firmware"),
                kernel_config: config.map(|_| self.0.join("config")),
                src: self.0.join("src"),
                build: self.0.join("build"),
                release: "7.3.4+deb13-amd64".into(),
            }
        }
        /// A Metis function with the given BAR sizes (0: not assigned).
        fn card(&self, bdf: &str, bar0: u64, bar2: u64) {
            let d = format!("sys/bus/pci/devices/{bdf}");
            self.write(&format!("{d}/vendor"), "0x1f9d\n");
            self.write(&format!("{d}/device"), "0x1100\n");
            let line = |start: u64, size: u64| {
                if size == 0 {
                    "0x0000000000000000 0x0000000000000000 0x0000000000000000\n".to_string()
                } else {
                    format!(
                        "{start:#018x} {:#018x} 0x0000000000040200\n",
                        start + size - 1
                    )
                }
            };
            let res = line(0xf000_0000, bar0)
                + &line(0, 0)
                + &line(0xf200_0000, bar2)
                + &line(0, 0).repeat(4);
            self.write(&format!("{d}/resource"), &res);
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn levels_of<'a>(f: &'a [Finding], subject: &str) -> Vec<(Level, &'a str)> {
        f.iter()
            .filter(|x| x.subject == subject)
            .map(|x| (x.level, x.message.as_str()))
            .collect()
    }

    const FULL: &str = "CONFIG_RUST=y\nCONFIG_PCI_MSI=y\nCONFIG_DMA_SHARED_BUFFER=y\n\
                        CONFIG_DMABUF_HEAPS=y\nCONFIG_DMABUF_HEAPS_SYSTEM=y\n\
                        CONFIG_DMABUF_HEAPS_CMA=y\nCONFIG_SYNC_FILE=y\nCONFIG_SW_SYNC=m\n";

    #[test]
    fn the_vendor_node_says_what_its_users_reach() {
        let t = Tree::new();
        let r = t.roots(Some(FULL));
        let mut out = Vec::new();
        vendor_node(&r, "0000:01:00.0", "translated", &mut out);
        assert!(out.is_empty(), "reported without the class: {out:?}");
        t.write("sys/class/metis/version", "1.6.2\n");
        vendor_node(&r, "0000:01:00.0", "translated", &mut out);
        vendor_node(&r, "0000:01:00.0", "passthrough", &mut out);
        let f = levels_of(&out, "0000:01:00.0");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, Level::Ok);
        assert!(f[0].1.contains("vendor-ABI node 1.6.2 on"), "{}", f[0].1);
        assert_eq!(f[1].0, Level::Warn);
        assert!(f[1].1.contains("any host memory"), "{}", f[1].1);
    }

    #[test]
    fn kernel_options_missing_are_named_by_kind() {
        let t = Tree::new();
        let cfg = FULL
            .replace(
                "CONFIG_DMABUF_HEAPS_CMA=y\n",
                "# CONFIG_DMABUF_HEAPS_CMA is not set\n",
            )
            .replace("CONFIG_SW_SYNC=m\n", "");
        let f = run(&t.roots(Some(&cfg)));
        let k = levels_of(&f, "kernel");
        assert_eq!(k[0].0, Level::Ok, "{k:?}");
        assert_eq!(k[1].0, Level::Warn);
        assert!(
            k[1].1
                .starts_with("CONFIG_DMABUF_HEAPS_CMA, CONFIG_SW_SYNC not set"),
            "{k:?}"
        );

        let f = run(&t.roots(Some(&FULL.replace("CONFIG_RUST=y", "CONFIG_RUST=n"))));
        let k = levels_of(&f, "kernel");
        assert_eq!(k[0].0, Level::Fail);
        assert!(k[0].1.starts_with("CONFIG_RUST not set"), "{k:?}");
        assert_eq!(k[1].0, Level::Ok);

        let f = run(&t.roots(None));
        assert_eq!(levels_of(&f, "kernel")[0].0, Level::Warn);
    }

    #[test]
    fn an_unloaded_module_gets_the_dkms_build_check() {
        let t = Tree::new();
        // No metis-dkms: nothing to say about building.
        let f = run(&t.roots(Some(FULL)));
        assert!(levels_of(&f, "build").is_empty(), "{f:?}");
        // Its check fails: its last line is the finding.
        t.write(
            "src/metis-0.1.0/dkms-make.sh",
            "[ \"$1 $2\" = \"--check 7.3.4+deb13-amd64\" ] || exit 3\n\
             echo \"metis: kernel $2: no linux-source-7.3\" >&2\nexit 1\n",
        );
        let f = run(&t.roots(Some(FULL)));
        assert_eq!(
            levels_of(&f, "build"),
            [(
                Level::Fail,
                "metis: kernel 7.3.4+deb13-amd64: no linux-source-7.3"
            )]
        );
        // It passes.
        t.write("src/metis-0.1.0/dkms-make.sh", "exit 0\n");
        let b = levels_of(&run(&t.roots(Some(FULL))), "build")[0].0;
        assert_eq!(b, Level::Ok);
        // Loaded: the build is not in question.
        t.write("sys/module/metis/refcnt", "0\n");
        assert!(levels_of(&run(&t.roots(Some(FULL))), "build").is_empty());
    }

    #[test]
    fn small_or_unassigned_bar_names_the_overlay() {
        let t = Tree::new();
        t.card("0000:01:00.0", 4 << 10, 16 << 20);
        t.card("0000:02:00.0", 4 << 10, 0);
        let f = run(&t.roots(Some(FULL)));
        let a = levels_of(&f, "0000:01:00.0");
        assert_eq!(a[0].0, Level::Fail);
        assert!(a[0]
            .1
            .starts_with("BAR2 is 16 MiB at 0xf2000000, the card needs 32 MiB"));
        assert!(a[0].1.contains("rk3588-metis-pcie3x4-window"));
        assert!(a.iter().any(|(l, m)| *l == Level::Fail
            && m.contains("no driver is bound")
            && m.contains("BAR finding")));
        let b = levels_of(&f, "0000:02:00.0");
        assert!(b[0].1.starts_with("BAR2 is not assigned"), "{b:?}");
    }

    #[test]
    fn healthy_unbound_card_points_at_dmesg_and_no_card_fails() {
        let t = Tree::new();
        let f = run(&t.roots(Some(FULL)));
        assert!(levels_of(&f, "pci")[0].0 == Level::Fail);

        t.card("0000:01:00.0", 4 << 10, 32 << 20);
        let f = run(&t.roots(Some(FULL)));
        assert!(levels_of(&f, "pci").is_empty());
        let a = levels_of(&f, "0000:01:00.0");
        assert_eq!(a[0], (Level::Ok, "BAR0 4 KiB and BAR2 32 MiB assigned"));
        assert!(a[1].1.contains("`dmesg | grep 0000:01:00.0`"), "{a:?}");
    }

    #[test]
    fn card_given_to_vfio_is_a_warning() {
        let t = Tree::new();
        t.card("0000:01:00.0", 4 << 10, 32 << 20);
        fs::create_dir_all(t.0.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        std::os::unix::fs::symlink(
            t.0.join("sys/bus/pci/drivers/vfio-pci"),
            t.0.join("sys/bus/pci/devices/0000:01:00.0/driver"),
        )
        .unwrap();
        let f = run(&t.roots(Some(FULL)));
        let a = levels_of(&f, "0000:01:00.0");
        assert_eq!(a[1].0, Level::Warn);
        assert!(a[1].1.starts_with("bound to vfio-pci, not metis"));
    }

    #[test]
    fn slow_link_module_firmware_and_heap() {
        let t = Tree::new();
        t.card("0000:01:00.0", 4 << 10, 32 << 20);
        let d = "sys/bus/pci/devices/0000:01:00.0";
        t.write(&format!("{d}/current_link_speed"), "5.0 GT/s PCIe\n");
        t.write(&format!("{d}/max_link_speed"), "8.0 GT/s PCIe\n");
        t.write(&format!("{d}/current_link_width"), "4\n");
        t.write(&format!("{d}/max_link_width"), "4\n");
        let f = run(&t.roots(Some(FULL)));
        let a = levels_of(&f, "0000:01:00.0");
        assert_eq!(a[1].0, Level::Warn);
        assert!(a[1]
            .1
            .starts_with("link trained at 5.0 GT/s PCIe x4, the card can do 8.0"));
        assert_eq!(levels_of(&f, "module")[0].0, Level::Fail);
        assert_eq!(levels_of(&f, "firmware")[0].0, Level::Fail);
        assert!(levels_of(&f, "firmware")[0]
            .1
            .contains("firmware/axelera/metis-fw-if1.bin is missing"));
        assert_eq!(levels_of(&f, "dma-heap")[0].0, Level::Warn);

        // Loaded with another firmware name, which is present; the heap exists.
        t.write("sys/module/metis/parameters/firmware", "custom.bin\n");
        t.write("firmware/custom.bin", "x");
        t.write("dev/dma_heap/system", "");
        let f = run(&t.roots(Some(FULL)));
        assert_eq!(levels_of(&f, "module")[0].0, Level::Ok);
        assert_eq!(levels_of(&f, "firmware")[0].0, Level::Ok);
        assert_eq!(levels_of(&f, "dma-heap")[0].0, Level::Ok);
    }

    /// The driver's attributes as sysfs shows them.
    fn status(owner: &str, state: &str) -> Status {
        let ready = state == "ready";
        Status {
            driver_version: "0.1.0".into(),
            firmware_version: if ready { "1.2.3" } else { "none" }.into(),
            interface_version: if ready { "1.0" } else { "none" }.into(),
            firmware_state: state.into(),
            firmware_owner: owner.into(),
            irq_mode: "msi".into(),
            irq_vectors: 13,
            iommu_mode: "none".into(),
            last_reset_reason: "none".into(),
            ..Default::default()
        }
    }

    #[test]
    fn firmware_state_is_judged_by_its_owner() {
        let node = "/dev/metis0";
        // Scenarios grep this line; it must not depend on the owner.
        for owner in ["kernel", "runtime"] {
            let f = firmware(node, &status(owner, "ready"));
            assert_eq!(
                format_text(std::slice::from_ref(&f)),
                "ok    /dev/metis0: firmware 1.2.3 (interface 1.0) ready\n"
            );
        }

        // Runtime-owned, waiting in the bootloader: the runtime's job, so a
        // warning that says so, and no `fw load` (the driver refuses it).
        let f = firmware(node, &status("runtime", "bootloader"));
        assert_eq!(f.level, Level::Warn, "{f:?}");
        assert!(f.message.contains("runtime-owned"), "{f:?}");
        assert!(
            f.message.contains("the runtime (Voyager SDK) must load it"),
            "{f:?}"
        );
        assert!(
            f.message.contains("`metisctl -d /dev/metis0 fw changed`"),
            "{f:?}"
        );
        assert!(!f.message.contains("fw load"), "{f:?}");
        assert!(format_text(&[f]).starts_with("WARN  /dev/metis0: no firmware is running"));

        // Kernel-owned in the bootloader: the driver should have booted it.
        let f = firmware(node, &status("kernel", "bootloader"));
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.message.starts_with(
                "firmware is bootloader, not ready: `metisctl -d /dev/metis0 fw load`"
            ),
            "{f:?}"
        );

        // Runtime-owned and failed: still a failure, but the cure is the runtime's.
        let f = firmware(node, &status("runtime", "failed"));
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.message
                .starts_with("firmware is failed, not ready: the firmware is runtime-owned"),
            "{f:?}"
        );
        assert!(!f.message.contains("fw load"), "{f:?}");

        // An owner this tool does not know: a stopped firmware stays a
        // failure rather than being waved through as the runtime's business.
        let f = firmware(node, &status("vendor", "bootloader"));
        assert_eq!(f.level, Level::Fail);
        // The driver could not tell the state: a failure, with the hint.
        let f = firmware(node, &status("kernel", "unknown"));
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.message
                .starts_with("firmware is unknown, not ready: `metisctl -d /dev/metis0 fw load`"),
            "{f:?}"
        );
    }

    #[test]
    fn interrupts_and_resets() {
        let mut s = status("kernel", "ready");
        assert_eq!(
            format_text(&[interrupts("/dev/metis0", &s)]),
            "ok    /dev/metis0: interrupts by msi (13 vector(s)), IOMMU none\n"
        );
        s.irq_mode = "poll".into();
        s.irq_vectors = 0;
        s.iommu_mode = "translated".into();
        let f = interrupts("/dev/metis0", &s);
        assert_eq!(f.level, Level::Warn);
        assert!(
            f.message
                .starts_with("completions are polled, not interrupt-driven (IOMMU translated)"),
            "{f:?}"
        );
        assert!(f.message.contains("performance is lower"), "{f:?}");
        s.irq_mode = "doorbell".into();
        assert_eq!(interrupts("d", &s).level, Level::Warn);

        assert_eq!(
            format_text(&[resets("/dev/metis0", &s)]),
            "info  /dev/metis0: no card reset since the driver bound it\n"
        );
        s.reset_count = 3;
        s.last_reset_reason = "recovery: DMA channel rd1 stuck".into();
        let f = resets("/dev/metis0", &s);
        assert_eq!(f.level, Level::Info);
        assert!(
            f.message.starts_with(
                "3 card reset(s) since the driver bound it, the last: recovery: DMA channel rd1 stuck (the driver recovered"
            ),
            "{f:?}"
        );
        s.last_reset_reason = "requested".into();
        assert_eq!(
            resets("d", &s).message,
            "3 card reset(s) since the driver bound it, the last: requested"
        );
        assert_eq!(to_json(&[resets("d", &s)])["findings"][0]["level"], "info");
    }

    /// A card bound to metis, its attributes and node in sysfs.
    fn bound(t: &Tree, bdf: &str, attrs: &[(&str, &str)]) {
        t.card(bdf, 4 << 10, 32 << 20);
        let d = format!("sys/bus/pci/devices/{bdf}");
        fs::create_dir_all(t.0.join("sys/bus/pci/drivers/metis")).unwrap();
        std::os::unix::fs::symlink(
            t.0.join("sys/bus/pci/drivers/metis"),
            t.0.join(format!("{d}/driver")),
        )
        .unwrap();
        fs::create_dir_all(t.0.join(format!("{d}/misc/metis0"))).unwrap();
        let s = status("kernel", "ready");
        let defaults = [
            ("driver_version", s.driver_version.clone()),
            ("firmware_version", s.firmware_version.clone()),
            ("interface_version", s.interface_version.clone()),
            ("firmware_state", s.firmware_state.clone()),
            ("firmware_owner", s.firmware_owner.clone()),
            ("irq_mode", s.irq_mode.clone()),
            ("irq_vectors", "13".into()),
            ("iommu_mode", "passthrough".into()),
            ("reset_count", "0".into()),
            ("last_reset_reason", "none".into()),
            ("mem_size", "1073741824".into()),
            ("mem_free", "1073741824".into()),
            ("bytes_to_device", "0".into()),
            ("bytes_from_device", "0".into()),
            ("dma_channels", "4 4".into()),
        ];
        for (name, value) in defaults {
            let v = attrs
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(value, |(_, v)| v.to_string());
            t.write(&format!("{d}/metis/{name}"), &format!("{v}\n"));
        }
    }

    #[test]
    fn bound_card_is_judged_from_sysfs_without_its_node() {
        let t = Tree::new();
        bound(
            &t,
            "0000:01:00.0",
            &[
                ("firmware_state", "failed"),
                ("firmware_version", "none"),
                ("irq_mode", "poll"),
                ("irq_vectors", "0"),
                ("reset_count", "1"),
                ("last_reset_reason", "external"),
            ],
        );
        let f = run(&t.roots(Some(FULL)));
        let a = levels_of(&f, "0000:01:00.0");
        assert_eq!(
            a[1],
            (Level::Ok, "bound to metis, IOMMU passthrough"),
            "{a:?}"
        );
        let node = t.0.join("dev/metis0").display().to_string();
        let n = levels_of(&f, &node);
        // The node is missing from the made-up /dev; sysfs is read all the same.
        assert_eq!(n[0].0, Level::Fail);
        assert!(n[0].1.starts_with("the node is missing"), "{n:?}");
        assert_eq!(n[1].0, Level::Fail);
        assert!(n[1].1.starts_with("firmware is failed, not ready"), "{n:?}");
        assert_eq!(n[2].0, Level::Warn);
        assert!(n[2].1.starts_with("completions are polled"), "{n:?}");
        assert_eq!(
            n[3],
            (
                Level::Info,
                "1 card reset(s) since the driver bound it, the last: external"
            )
        );
        assert_eq!(n.len(), 4);
    }

    #[test]
    fn unreadable_attributes_are_a_warning() {
        let t = Tree::new();
        bound(&t, "0000:01:00.0", &[("mem_free", "plenty")]);
        let f = run(&t.roots(Some(FULL)));
        let node = t.0.join("dev/metis0").display().to_string();
        let n = levels_of(&f, &node);
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!(n[1].0, Level::Warn);
        assert!(n[1].1.contains("mem_free is 'plenty'"), "{n:?}");
        assert!(
            n[1].1.contains("firmware state and interrupts not checked"),
            "{n:?}"
        );
        // IOMMU from the group when the driver's attributes are unreadable.
        assert_eq!(
            levels_of(&f, "0000:01:00.0")[1],
            (Level::Ok, "bound to metis, IOMMU none")
        );
    }

    #[test]
    fn json_says_whether_anything_failed() {
        let f = vec![finding(Level::Warn, "kernel", "x".into())];
        assert_eq!(to_json(&f)["ok"], true);
        let f = vec![finding(Level::Fail, "pci", "y".into())];
        assert_eq!(to_json(&f)["ok"], false);
        assert_eq!(to_json(&f)["findings"][0]["level"], "fail");
        assert_eq!(format_text(&f), "FAIL  pci: y\n");
    }
}
