//! Which cards `status`, `stats` and `trace` look at: the bound cards under
//! the sysfs root (`METIS_SYSFS`, default `/sys`), all of them or the one
//! `--card` names.

use crate::Failure;
use metis::sysfs::{self, Card, FileError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Environment variable that moves the sysfs root (debugfs is then
/// `$METIS_SYSFS/kernel/debug`); tests point it at a made-up tree.
pub const SYSFS_ENV: &str = "METIS_SYSFS";

/// The sysfs root: `$METIS_SYSFS`, else `/sys`.
pub fn sysfs_root() -> PathBuf {
    std::env::var_os(SYSFS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_ROOT))
}

impl From<FileError> for Failure {
    fn from(e: FileError) -> Self {
        Failure::Op(e.to_string())
    }
}

/// `0000:01:00.0 (/dev/metis0)`, or the address alone for a card without a node.
pub fn label(card: &Card) -> String {
    match card.node_path() {
        Some(n) => format!("{} ({})", card.bdf, n.display()),
        None => card.bdf.clone(),
    }
}

/// True if `arg` names `card`: its PCI address (`0000:01:00.0`, or
/// `01:00.0` without the domain), its node's name (`metis0`) or its node
/// (`/dev/metis0`, or a link to it).
pub fn names(card: &Card, arg: &str) -> bool {
    let a = arg.trim();
    if card.bdf == a || card.bdf.split_once(':').map(|(_, rest)| rest) == Some(a) {
        return true;
    }
    let name = if a.contains('/') {
        let p = Path::new(a);
        let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        real.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        a.to_string()
    };
    card.node.as_deref() == Some(name.as_str())
}

/// The bound cards, or the one `card` names. No card bound, or none that
/// `card` names, is a failure that says what there is.
pub fn select(sys_root: &Path, card: Option<&str>) -> Result<Vec<Card>, Failure> {
    let all = sysfs::cards(sys_root)?;
    if all.is_empty() {
        return Err(Failure::Op(format!(
            "no metis card is bound (no device under {} has a metis/ directory): is the \
             module loaded and the card present? `metisctl doctor` says what is missing",
            sys_root.join("bus/pci/devices").display()
        )));
    }
    let Some(arg) = card else {
        return Ok(all);
    };
    let found: Vec<Card> = all.iter().filter(|c| names(c, arg)).cloned().collect();
    let known = || all.iter().map(label).collect::<Vec<_>>().join(", ");
    match found.len() {
        0 => Err(Failure::Op(format!(
            "no bound metis card is '{arg}'; the bound cards: {}",
            known()
        ))),
        1 => Ok(found),
        _ => Err(Failure::Usage(format!(
            "'{arg}' names more than one card ({}); give the full PCI address",
            found.iter().map(label).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A debugfs file that cannot be used, with what to do about it.
pub fn debugfs_failure(e: FileError, sys_root: &Path, command: &str) -> Failure {
    let mount = format!(
        "mount -t debugfs none {}",
        metis::debugfs::root(sys_root).display()
    );
    let hint = match e.io_kind() {
        None => return Failure::Op(e.to_string()),
        Some(ErrorKind::PermissionDenied) => format!(
            "debugfs is readable by root only: run `sudo metisctl {command}` (and if debugfs is \
             not mounted, `sudo {mount}`)"
        ),
        Some(ErrorKind::NotFound) => format!(
            "is debugfs mounted? As root: `{mount}`, then run `sudo metisctl {command}`; if it \
             is mounted, the driver has no debugfs directory for this card (`dmesg | grep metis` \
             says why)"
        ),
        Some(_) => {
            format!("run as root (`sudo metisctl {command}`) with debugfs mounted (`{mount}`)")
        }
    };
    Failure::Op(format!("{e}: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(bdf: &str, node: Option<&str>) -> Card {
        Card {
            bdf: bdf.into(),
            dir: PathBuf::from("/sys/bus/pci/devices").join(bdf),
            node: node.map(String::from),
        }
    }

    #[test]
    fn a_card_is_named_by_address_or_node() {
        let c = card("0000:01:00.0", Some("metis3"));
        for yes in [
            "0000:01:00.0",
            "01:00.0",
            " 01:00.0 ",
            "metis3",
            "/dev/metis3",
        ] {
            assert!(names(&c, yes), "{yes}");
        }
        for no in [
            "0000:02:00.0",
            "1:00.0",
            "metis",
            "metis30",
            "/dev/metis0",
            "",
            "00.0",
        ] {
            assert!(!names(&c, no), "{no}");
        }
        assert!(!names(&card("0000:01:00.0", None), "metis0"));
        assert_eq!(label(&c), "0000:01:00.0 (/dev/metis3)");
        assert_eq!(label(&card("0001:01:00.0", None)), "0001:01:00.0");
    }

    #[test]
    fn debugfs_failures_say_what_to_do() {
        let root = Path::new("/sys");
        let io = |kind: ErrorKind| FileError::Io {
            op: "read",
            path: "/sys/kernel/debug/metis/0000:01:00.0/stats".into(),
            error: std::io::Error::from(kind),
        };
        let text = |f: Failure| match f {
            Failure::Op(m) => m,
            Failure::Usage(m) => panic!("usage: {m}"),
        };
        let m = text(debugfs_failure(
            io(ErrorKind::PermissionDenied),
            root,
            "stats",
        ));
        assert!(
            m.starts_with("cannot read /sys/kernel/debug/metis/0000:01:00.0/stats: "),
            "{m}"
        );
        assert!(m.contains("run `sudo metisctl stats`"), "{m}");
        assert!(m.contains("mount -t debugfs none /sys/kernel/debug"), "{m}");
        let m = text(debugfs_failure(io(ErrorKind::NotFound), root, "trace"));
        assert!(
            m.contains("is debugfs mounted? As root: `mount -t debugfs none /sys/kernel/debug`"),
            "{m}"
        );
        assert!(m.contains("sudo metisctl trace"), "{m}");
        let m = text(debugfs_failure(
            io(ErrorKind::Other),
            Path::new("/x"),
            "stats",
        ));
        assert!(m.contains("`mount -t debugfs none /x/kernel/debug`"), "{m}");
    }
}
