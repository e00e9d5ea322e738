//! The driver's read-only sysfs attributes: which cards are bound and what
//! each reports, without opening `/dev/metisN` and without root.
//!
//! A card is a PCI device with a `metis/` attribute directory
//! (`<sys>/bus/pci/devices/<BDF>/metis/`), holding one value and a newline
//! per file (`driver_version`, `firmware_state`, `mem_free`, ...). Its misc
//! device is a child of the PCI device: `<BDF>/misc/metisN` names the node
//! `/dev/metisN`.
//!
//! Every function takes the sysfs root (`/sys` on a running system) so tests
//! can point it at a made-up tree.

use crate::{FwOwner, FwState, IommuMode, IrqMode};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The sysfs root of a running system.
pub const DEFAULT_ROOT: &str = "/sys";

/// What is wrong with the text of a driver file, and on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; 0 when the error is not about one line.
    pub line: usize,
    /// What was expected and what was found.
    pub message: String,
    /// The driver wrote `unavailable: <reason>`: the text is as meant, the
    /// card could not be read.
    pub unavailable: bool,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
            unavailable: false,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a driver file under sysfs or debugfs could not be used.
#[derive(Debug)]
pub enum FileError {
    /// Listing, reading or writing failed.
    Io {
        /// `"list"`, `"read"` or `"write"`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The file does not hold what the driver writes.
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: ParseError,
    },
}

impl FileError {
    pub(crate) fn io(op: &'static str, path: &Path, error: io::Error) -> Self {
        FileError::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Io { path, .. } | FileError::Parse { path, .. } => path,
        }
    }

    /// The kind of I/O error, `None` for a parse error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            FileError::Io { error, .. } => Some(error.kind()),
            FileError::Parse { .. } => None,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io { op, path, error } => {
                write!(f, "cannot {op} {}: {error}", path.display())
            }
            FileError::Parse { path, error } if error.unavailable => {
                write!(f, "{}: {error}", path.display())
            }
            FileError::Parse { path, error } => write!(
                f,
                "{}: {error}; not what this metisctl expects (is the metis module newer or \
                 older than it?)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io { error, .. } => Some(error),
            FileError::Parse { error, .. } => Some(error),
        }
    }
}

/// Reads a whole driver file as text.
pub(crate) fn read_text(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(|e| FileError::io("read", path, e))
}

/// One card the driver is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// PCI address, e.g. `0000:01:00.0`.
    pub bdf: String,
    /// The PCI device's sysfs directory (`<sys>/bus/pci/devices/<BDF>`).
    pub dir: PathBuf,
    /// Name of the card's misc device (`metis0`), if it has registered one.
    pub node: Option<String>,
}

impl Card {
    /// The directory of the driver's attributes.
    pub fn attr_dir(&self) -> PathBuf {
        self.dir.join("metis")
    }

    /// The device node, `/dev/metisN`.
    pub fn node_path(&self) -> Option<PathBuf> {
        self.node.as_ref().map(|n| Path::new("/dev").join(n))
    }

    /// Reads every attribute.
    pub fn status(&self) -> Result<Status, FileError> {
        read_status(&self.attr_dir())
    }
}

/// The bound cards under `sys_root`, by PCI address. No PCI bus means no
/// card; a directory that cannot be listed is an error.
pub fn cards(sys_root: &Path) -> Result<Vec<Card>, FileError> {
    let devices = sys_root.join("bus/pci/devices");
    let entries = match fs::read_dir(&devices) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileError::io("list", &devices, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FileError::io("list", &devices, e))?;
        let dir = entry.path();
        if !dir.join("metis").is_dir() {
            continue;
        }
        out.push(Card {
            bdf: entry.file_name().to_string_lossy().into_owned(),
            node: node_name(&dir),
            dir,
        });
    }
    out.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    Ok(out)
}

/// The first `metisN` under a PCI device's `misc/`.
fn node_name(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("misc"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("metis"))
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Every attribute of one card, as the driver wrote it.
///
/// Text attributes are kept verbatim, so a value a newer driver adds still
/// shows; the typed accessors ([`Status::fw_state`], ...) decode the known
/// ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Version of the metis module, e.g. `0.1.0`.
    pub driver_version: String,
    /// `major.minor.patch`, or `none` unless the firmware is ready.
    pub firmware_version: String,
    /// `major.minor`, or `none` unless the firmware is ready.
    pub interface_version: String,
    /// `off`, `bootloader`, `booting`, `ready`, `failed` or `unknown`.
    pub firmware_state: String,
    /// `kernel` or `runtime`.
    pub firmware_owner: String,
    /// `poll`, `intx`, `msi` or `msix`.
    pub irq_mode: String,
    /// Interrupt vectors in use.
    pub irq_vectors: u32,
    /// `none`, `passthrough` or `translated`.
    pub iommu_mode: String,
    /// Card resets since probe.
    pub reset_count: u32,
    /// `none`, `requested`, `resume`, `external` or `recovery: <what>`.
    pub last_reset_reason: String,
    /// Device memory, bytes.
    pub mem_size: u64,
    /// Device memory not allocated to any file, bytes.
    pub mem_free: u64,
    /// Bytes moved host to device since probe.
    pub bytes_to_device: u64,
    /// Bytes moved device to host since probe.
    pub bytes_from_device: u64,
    /// Device-to-host DMA channels (`wr`, first number of `dma_channels`).
    pub wr_channels: u32,
    /// Host-to-device DMA channels (`rd`, second number of `dma_channels`).
    pub rd_channels: u32,
}

/// The attribute files, in the order the driver lists them.
pub const ATTRIBUTES: [&str; 15] = [
    "driver_version",
    "firmware_version",
    "interface_version",
    "firmware_state",
    "firmware_owner",
    "irq_mode",
    "irq_vectors",
    "iommu_mode",
    "reset_count",
    "last_reset_reason",
    "mem_size",
    "mem_free",
    "bytes_to_device",
    "bytes_from_device",
    "dma_channels",
];

impl Status {
    /// The firmware state; `None` for `unknown` or a name this crate does not know.
    pub fn fw_state(&self) -> Option<FwState> {
        FwState::from_name(&self.firmware_state)
    }
    /// Who loads the firmware.
    pub fn fw_owner(&self) -> Option<FwOwner> {
        FwOwner::from_name(&self.firmware_owner)
    }
    /// The interrupt mode.
    pub fn irq_mode(&self) -> Option<IrqMode> {
        IrqMode::from_name(&self.irq_mode)
    }
    /// The IOMMU mode.
    pub fn iommu_mode(&self) -> Option<IommuMode> {
        IommuMode::from_name(&self.iommu_mode)
    }
    /// The firmware version, `None` when the firmware is not ready.
    pub fn firmware_version(&self) -> Option<&str> {
        Some(self.firmware_version.as_str()).filter(|v| *v != "none")
    }
}

/// The value of one attribute: its text without the final newline; an empty
/// value or one of several lines is an error.
pub fn parse_text(name: &str, raw: &str) -> Result<String, ParseError> {
    let v = raw.strip_suffix('\n').unwrap_or(raw).trim();
    if v.is_empty() {
        return Err(ParseError::new(0, format!("{name} is empty")));
    }
    if v.contains('\n') {
        return Err(ParseError::new(
            0,
            format!("{name} holds several lines, expected one value"),
        ));
    }
    Ok(v.to_string())
}

/// A decimal attribute.
pub fn parse_number<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, ParseError> {
    let v = parse_text(name, raw)?;
    v.parse().map_err(|_| {
        ParseError::new(
            0,
            format!(
                "{name} is '{v}', expected a decimal number of at most {} bits",
                std::mem::size_of::<T>() * 8
            ),
        )
    })
}

/// `dma_channels`: `<wr> <rd>`.
pub fn parse_channels(raw: &str) -> Result<(u32, u32), ParseError> {
    let v = parse_text("dma_channels", raw)?;
    let n: Vec<&str> = v.split_whitespace().collect();
    match n.as_slice() {
        [wr, rd] => match (wr.parse(), rd.parse()) {
            (Ok(wr), Ok(rd)) => Ok((wr, rd)),
            _ => Err(ParseError::new(
                0,
                format!("dma_channels is '{v}', expected two decimal numbers"),
            )),
        },
        _ => Err(ParseError::new(
            0,
            format!("dma_channels is '{v}', expected two numbers: <wr> <rd>"),
        )),
    }
}

/// Reads every attribute of the driver's directory `attr_dir`
/// (`<sys>/bus/pci/devices/<BDF>/metis`). A missing file, an empty value or a
/// number that is not one is an error naming the file.
pub fn read_status(attr_dir: &Path) -> Result<Status, FileError> {
    let get = |name: &str| -> Result<(PathBuf, String), FileError> {
        let path = attr_dir.join(name);
        let text = read_text(&path)?;
        Ok((path, text))
    };
    let text = |name: &str| -> Result<String, FileError> {
        let (path, raw) = get(name)?;
        parse_text(name, &raw).map_err(|error| FileError::Parse { path, error })
    };
    let u32_of = |name: &str| -> Result<u32, FileError> {
        let (path, raw) = get(name)?;
        parse_number(name, &raw).map_err(|error| FileError::Parse { path, error })
    };
    let u64_of = |name: &str| -> Result<u64, FileError> {
        let (path, raw) = get(name)?;
        parse_number(name, &raw).map_err(|error| FileError::Parse { path, error })
    };
    let (wr_channels, rd_channels) = {
        let (path, raw) = get("dma_channels")?;
        parse_channels(&raw).map_err(|error| FileError::Parse { path, error })?
    };
    Ok(Status {
        driver_version: text("driver_version")?,
        firmware_version: text("firmware_version")?,
        interface_version: text("interface_version")?,
        firmware_state: text("firmware_state")?,
        firmware_owner: text("firmware_owner")?,
        irq_mode: text("irq_mode")?,
        irq_vectors: u32_of("irq_vectors")?,
        iommu_mode: text("iommu_mode")?,
        reset_count: u32_of("reset_count")?,
        last_reset_reason: text("last_reset_reason")?,
        mem_size: u64_of("mem_size")?,
        mem_free: u64_of("mem_free")?,
        bytes_to_device: u64_of("bytes_to_device")?,
        bytes_from_device: u64_of("bytes_from_device")?,
        wr_channels,
        rd_channels,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh temporary directory, removed on drop.
    pub(crate) struct TempTree(pub(crate) PathBuf);

    impl TempTree {
        pub(crate) fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "metis-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempTree(p)
        }
        pub(crate) fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        /// A bound card with every attribute, node `metis<n>` if given.
        pub(crate) fn card(&self, bdf: &str, node: Option<&str>) {
            let d = format!("bus/pci/devices/{bdf}");
            for (name, value) in SAMPLE {
                self.write(&format!("{d}/metis/{name}"), &format!("{value}\n"));
            }
            if let Some(n) = node {
                fs::create_dir_all(self.0.join(format!("{d}/misc/{n}"))).unwrap();
            }
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) const SAMPLE: [(&str, &str); 15] = [
        ("driver_version", "0.1.0"),
        ("firmware_version", "1.2.3"),
        ("interface_version", "1.0"),
        ("firmware_state", "ready"),
        ("firmware_owner", "kernel"),
        ("irq_mode", "msi"),
        ("irq_vectors", "13"),
        ("iommu_mode", "translated"),
        ("reset_count", "2"),
        ("last_reset_reason", "recovery: DMA channel wr0 stuck"),
        ("mem_size", "1073741824"),
        ("mem_free", "536870912"),
        ("bytes_to_device", "4096"),
        ("bytes_from_device", "18446744073709551615"),
        ("dma_channels", "4 2"),
    ];

    #[test]
    fn sample_names_every_attribute() {
        let names: Vec<&str> = SAMPLE.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ATTRIBUTES);
    }

    #[test]
    fn reads_every_attribute_of_a_card() {
        let t = TempTree::new("sysfs");
        t.card("0000:01:00.0", Some("metis0"));
        let cards = cards(&t.0).unwrap();
        assert_eq!(cards.len(), 1);
        let c = &cards[0];
        assert_eq!(c.bdf, "0000:01:00.0");
        assert_eq!(c.node.as_deref(), Some("metis0"));
        assert_eq!(c.node_path(), Some(PathBuf::from("/dev/metis0")));
        let s = c.status().unwrap();
        assert_eq!(
            s,
            Status {
                driver_version: "0.1.0".into(),
                firmware_version: "1.2.3".into(),
                interface_version: "1.0".into(),
                firmware_state: "ready".into(),
                firmware_owner: "kernel".into(),
                irq_mode: "msi".into(),
                irq_vectors: 13,
                iommu_mode: "translated".into(),
                reset_count: 2,
                last_reset_reason: "recovery: DMA channel wr0 stuck".into(),
                mem_size: 1 << 30,
                mem_free: 1 << 29,
                bytes_to_device: 4096,
                bytes_from_device: u64::MAX,
                wr_channels: 4,
                rd_channels: 2,
            }
        );
        assert_eq!(s.fw_state(), Some(FwState::Ready));
        assert_eq!(s.fw_owner(), Some(FwOwner::Kernel));
        assert_eq!(s.irq_mode(), Some(IrqMode::Msi));
        assert_eq!(s.iommu_mode(), Some(IommuMode::Translated));
        assert_eq!(s.firmware_version(), Some("1.2.3"));
    }

    #[test]
    fn only_devices_with_metis_attributes_are_cards_in_address_order() {
        let t = TempTree::new("sysfs");
        assert_eq!(cards(&t.0).unwrap(), vec![], "no PCI bus: no card");
        t.card("0000:03:00.0", None);
        t.card("0000:01:00.0", Some("metis1"));
        // Another PCI device, and a metis card the driver refused (no metis/).
        t.write("bus/pci/devices/0000:00:1f.0/vendor", "0x8086\n");
        t.write("bus/pci/devices/0000:02:00.0/vendor", "0x1f9d\n");
        let c = cards(&t.0).unwrap();
        let bdfs: Vec<&str> = c.iter().map(|c| c.bdf.as_str()).collect();
        assert_eq!(bdfs, ["0000:01:00.0", "0000:03:00.0"]);
        assert_eq!(c[0].node.as_deref(), Some("metis1"));
        assert_eq!(c[1].node, None);
        assert_eq!(c[1].node_path(), None);
    }

    #[test]
    fn not_ready_firmware_and_unknown_names() {
        let t = TempTree::new("sysfs");
        t.card("0000:01:00.0", None);
        let d = "bus/pci/devices/0000:01:00.0/metis";
        t.write(&format!("{d}/firmware_version"), "none\n");
        t.write(&format!("{d}/firmware_state"), "unknown\n");
        t.write(&format!("{d}/firmware_owner"), "runtime\n");
        t.write(&format!("{d}/irq_mode"), "doorbell\n");
        let s = read_status(&t.0.join(d)).unwrap();
        assert_eq!(s.firmware_version(), None);
        assert_eq!(s.firmware_version, "none");
        assert_eq!(s.fw_state(), None);
        assert_eq!(s.firmware_state, "unknown");
        assert_eq!(s.fw_owner(), Some(FwOwner::Runtime));
        // A mode a newer driver may add is kept, not refused.
        assert_eq!(s.irq_mode, "doorbell");
        assert_eq!(s.irq_mode(), None);
    }

    #[test]
    fn malformed_attributes_are_named() {
        let t = TempTree::new("sysfs");
        t.card("0000:01:00.0", None);
        let d = t.0.join("bus/pci/devices/0000:01:00.0/metis");
        let err = |file: &str, value: &str| -> String {
            let good = SAMPLE.iter().find(|(n, _)| *n == file).unwrap().1;
            fs::write(d.join(file), value).unwrap();
            let e = read_status(&d).unwrap_err().to_string();
            fs::write(d.join(file), format!("{good}\n")).unwrap();
            e
        };
        let e = err("mem_free", "lots\n");
        assert!(e.contains("metis/mem_free: mem_free is 'lots'"), "{e}");
        assert!(
            e.contains("expected a decimal number of at most 64 bits"),
            "{e}"
        );
        let e = err("reset_count", "4294967296\n");
        assert!(e.contains("reset_count is '4294967296'"), "{e}");
        assert!(e.contains("at most 32 bits"), "{e}");
        let e = err("dma_channels", "4\n");
        assert!(
            e.contains("dma_channels is '4', expected two numbers"),
            "{e}"
        );
        let e = err("dma_channels", "4 x\n");
        assert!(e.contains("expected two decimal numbers"), "{e}");
        let e = err("driver_version", "\n");
        assert!(e.contains("driver_version is empty"), "{e}");
        let e = err("irq_mode", "msi\nmsix\n");
        assert!(e.contains("several lines"), "{e}");
        // The file restored, the directory reads again.
        assert!(read_status(&d).is_ok());

        fs::remove_file(d.join("iommu_mode")).unwrap();
        let e = read_status(&d).unwrap_err();
        assert_eq!(e.io_kind(), Some(io::ErrorKind::NotFound));
        assert!(e.path().ends_with("metis/iommu_mode"));
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_text("a", "x y\n"), Ok("x y".into()));
        assert_eq!(parse_number::<u32>("a", "7\n"), Ok(7));
        assert!(parse_number::<u32>("a", "-1\n").is_err());
        assert_eq!(parse_channels("4 4\n"), Ok((4, 4)));
        assert!(parse_channels("4 4 4\n").is_err());
        assert_eq!(
            ParseError::new(3, "bad").to_string(),
            "line 3: bad".to_string()
        );
    }
}
