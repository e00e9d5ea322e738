//! Error type of the metis API: an errno from the driver, interpreted for the
//! operation that failed, or an argument rejected before any system call.

use std::fmt;
use std::path::PathBuf;

/// The operation an error came from; it decides how an errno is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening the character device.
    Open,
    /// `METIS_IOCTL_INFO`.
    Info,
    /// `METIS_IOCTL_MEM_ALLOC`.
    MemAlloc,
    /// `METIS_IOCTL_MEM_FREE`.
    MemFree,
    /// `METIS_IOCTL_DMA`, host to device.
    DmaToDevice,
    /// `METIS_IOCTL_DMA`, device to host.
    DmaFromDevice,
    /// `METIS_IOCTL_WAIT` (the ioctl itself failed).
    Wait,
    /// An async job that `METIS_IOCTL_WAIT` reaped with a non-zero status.
    Job,
    /// `METIS_IOCTL_CMD`.
    Cmd,
    /// `METIS_IOCTL_RESET`.
    Reset,
    /// `METIS_IOCTL_FW_CHANGED`.
    FwChanged,
    /// `poll()` on the device file.
    Poll,
    /// `METIS_IOCTL_BUF_EXPORT` (or mapping its buffer).
    BufExport,
    /// `METIS_IOCTL_DMA_BUF`.
    DmaBuf,
    /// `DMA_BUF_IOCTL_SYNC` on a dma-buf.
    BufSync,
    /// `METIS_IOCTL_BUF_REGISTER`.
    BufRegister,
    /// `METIS_IOCTL_BUF_UNREGISTER`.
    BufUnregister,
    /// `METIS_IOCTL_DMA_BATCH`.
    DmaBatch,
}

impl Op {
    /// Short human name, used as the prefix of error messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Info => "info",
            Op::MemAlloc => "memory allocation",
            Op::MemFree => "memory free",
            Op::DmaToDevice => "DMA to device",
            Op::DmaFromDevice => "DMA from device",
            Op::Wait => "wait",
            Op::Job => "job",
            Op::Cmd => "command",
            Op::Reset => "reset",
            Op::FwChanged => "firmware change",
            Op::Poll => "poll",
            Op::BufExport => "dma-buf export",
            Op::DmaBuf => "dma-buf DMA",
            Op::BufSync => "dma-buf CPU-access sync",
            Op::BufRegister => "buffer registration",
            Op::BufUnregister => "buffer unregistration",
            Op::DmaBatch => "DMA batch",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of the metis API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A system call on the device failed with `errno`.
    Os {
        /// What was being done.
        op: Op,
        /// The positive errno value.
        errno: i32,
    },
    /// Opening the device file failed.
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// The positive errno value.
        errno: i32,
    },
    /// An async job finished with a failure status (a negative errno from
    /// `metis_wait.status`, stored here as a positive errno).
    Job {
        /// The job id the driver returned when the job was submitted.
        job: u64,
        /// The positive errno value.
        errno: i32,
    },
    /// An argument was rejected in userspace, before any system call.
    InvalidArgument(String),
}

/// Result alias of the metis API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno behind this error; `EINVAL` for arguments rejected in
    /// userspace, as the driver would have answered.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Os { errno, .. } | Error::Open { errno, .. } | Error::Job { errno, .. } => {
                *errno
            }
            Error::InvalidArgument(_) => libc::EINVAL,
        }
    }

    /// The symbolic errno name, e.g. `"ESTALE"`.
    pub fn errno_name(&self) -> &'static str {
        errno_name(self.errno())
    }

    /// True if the failure came from device memory lost in a card reset
    /// (`ESTALE`): the region is usable again but its contents must be
    /// reloaded.
    pub fn is_memory_lost(&self) -> bool {
        !matches!(self, Error::InvalidArgument(_)) && self.errno() == libc::ESTALE
    }

    /// True if `METIS_IOCTL_WAIT` gave up before the job finished: the job
    /// is still pending and can be waited for again.
    pub fn is_wait_timeout(&self) -> bool {
        matches!(self, Error::Os { op: Op::Wait, errno } if *errno == libc::ETIMEDOUT)
    }

    /// True if the job should simply be submitted again (`ESHUTDOWN`: it was
    /// failed by a suspend).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Job { errno, .. } | Error::Os { errno, .. } if *errno == libc::ESHUTDOWN)
    }

    /// The metis-specific explanation of this error, from the ABI header.
    pub fn meaning(&self) -> String {
        match self {
            Error::Os { op, errno } => meaning(*op, *errno),
            Error::Open { errno, .. } => meaning(Op::Open, *errno),
            Error::Job { errno, .. } => meaning(Op::Job, *errno),
            Error::InvalidArgument(msg) => msg.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { op, errno } => write!(
                f,
                "{op} failed: {} ({}): {}",
                errno_name(*errno),
                strerror(*errno),
                meaning(*op, *errno)
            ),
            Error::Open { path, errno } => write!(
                f,
                "cannot open {}: {} ({}): {}",
                path.display(),
                errno_name(*errno),
                strerror(*errno),
                meaning(Op::Open, *errno)
            ),
            Error::Job { job, errno } => write!(
                f,
                "job {job} failed: {} ({}): {}",
                errno_name(*errno),
                strerror(*errno),
                meaning(Op::Job, *errno)
            ),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg} (EINVAL)"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = std::io::Error::from_raw_os_error(e.errno()).kind();
        std::io::Error::new(kind, e)
    }
}

/// The C library's text for `errno` (e.g. "Stale file handle").
pub fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; the symbolic name is printed instead.
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Symbolic name of a Linux errno value, `"E?"` when unknown.
pub fn errno_name(errno: i32) -> &'static str {
    const NAMES: &[(i32, &str)] = &[
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::ESRCH, "ESRCH"),
        (libc::EINTR, "EINTR"),
        (libc::EIO, "EIO"),
        (libc::ENXIO, "ENXIO"),
        (libc::E2BIG, "E2BIG"),
        (libc::EBADF, "EBADF"),
        (libc::EAGAIN, "EAGAIN"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EFAULT, "EFAULT"),
        (libc::EBUSY, "EBUSY"),
        (libc::EEXIST, "EEXIST"),
        (libc::ENODEV, "ENODEV"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EISDIR, "EISDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENOTTY, "ENOTTY"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::EDQUOT, "EDQUOT"),
        (libc::EROFS, "EROFS"),
        (libc::ERANGE, "ERANGE"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::EOVERFLOW, "EOVERFLOW"),
        (libc::EMSGSIZE, "EMSGSIZE"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::ESHUTDOWN, "ESHUTDOWN"),
        (libc::ETIMEDOUT, "ETIMEDOUT"),
        (libc::ESTALE, "ESTALE"),
        (libc::ECANCELED, "ECANCELED"),
        (libc::EPROTO, "EPROTO"),
        (libc::ENOLINK, "ENOLINK"),
        (libc::EHWPOISON, "EHWPOISON"),
        (libc::EREMOTEIO, "EREMOTEIO"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == errno)
        .map_or("E?", |(_, name)| name)
}

/// What `errno` means for `op`, following the comments of
/// `uapi/linux/metis.h`.
pub fn meaning(op: Op, errno: i32) -> String {
    let s: &str = match (op, errno) {
        (_, libc::ESTALE) => "device memory was lost in a card reset; reload it",
        (Op::Wait, libc::ETIMEDOUT) => {
            "the timeout passed before the job finished; it is still pending"
        }
        (Op::Wait, libc::ENOENT) => {
            "unknown job id (never submitted by this file, or already reaped)"
        }
        (_, libc::ETIMEDOUT) => {
            "the card did not finish in time; the job was failed and the channel reset"
        }
        (_, libc::ESHUTDOWN) => "the job was failed by a suspend; retry it",
        (Op::Reset, libc::EIO) => {
            "the card did not come back from the reset (firmware failed to boot?)"
        }
        (_, libc::EIO) => "the card failed the job or was reset under it",
        (Op::Open, libc::ENOENT) => {
            "no such device node (is the metis module loaded and the card probed?)"
        }
        (Op::Open, libc::ENXIO) | (Op::Open, libc::ENODEV) => "no such card",
        (Op::Open, libc::EACCES) | (Op::Open, libc::EPERM) => {
            "permission denied on the device node"
        }
        (_, libc::ENODEV) => "the card is gone (removed, or failed beyond recovery)",
        (Op::MemFree, libc::EBUSY) => "the region is still in use by a pending job",
        (_, libc::EBUSY) => "the device or region is busy",
        (Op::MemAlloc, libc::ENOMEM) | (Op::MemAlloc, libc::ENOSPC) => {
            "not enough free device memory for the region"
        }
        (Op::MemAlloc, libc::EDQUOT) => {
            "this open file already holds METIS_MEM_MAX_REGIONS regions: free some, or use \
             fewer, larger regions"
        }
        (Op::BufRegister, libc::EDQUOT) => {
            "this open file already holds METIS_MAX_REGISTERED registered buffers: unregister \
             some, or register fewer, larger ones"
        }
        (Op::BufRegister, libc::ENOMEM) => {
            "out of memory, or the buffer would pass RLIMIT_MEMLOCK (ulimit -l): registered \
             pages stay locked"
        }
        (Op::BufUnregister, libc::ENOENT) => "no such registered buffer in this open file",
        (Op::DmaBatch, libc::ENOENT) => "an entry names a region this open file does not hold",
        (_, libc::ENOMEM) => "out of memory",
        (_, libc::EFAULT) => "the host buffer or argument is not valid memory",
        (_, libc::ENOTTY) => "ioctl not supported by this driver version",
        // flags is always 0 here, so the ownership check is what refused it.
        (Op::FwChanged, libc::EINVAL) => {
            "the card's firmware is kernel-owned: the driver loads it itself (reset, or \
             reset with firmware reload), and only a runtime-owned card takes FW_CHANGED"
        }
        (Op::FwChanged, libc::EPROTO) => {
            "the new firmware publishes an area with a field out of range; the kernel log \
             (`dmesg | grep metis`) names the field"
        }
        (_, libc::EINVAL) => {
            "the driver rejected the arguments (unknown flags, non-zero reserved bytes, bad size, \
             unknown region handle, or offset/length out of the region's bounds)"
        }
        (_, libc::EINTR) => "interrupted by a signal",
        (_, libc::EAGAIN) => "temporarily unavailable; try again",
        (Op::Cmd, libc::EOPNOTSUPP) => {
            "the card's firmware is runtime-owned: the driver sends it no commands"
        }
        (_, libc::EOPNOTSUPP) => "not supported by this driver version (or this card)",
        _ => "",
    };
    if s.is_empty() {
        strerror(errno)
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estale_names_the_reset() {
        let e = Error::Os {
            op: Op::DmaToDevice,
            errno: libc::ESTALE,
        };
        assert_eq!(e.errno(), libc::ESTALE);
        assert_eq!(e.errno_name(), "ESTALE");
        assert!(e.is_memory_lost());
        let msg = e.to_string();
        assert!(msg.starts_with("DMA to device failed: ESTALE"), "{msg}");
        assert!(
            msg.ends_with("device memory was lost in a card reset; reload it"),
            "{msg}"
        );
    }

    #[test]
    fn wait_timeout_is_distinct_from_job_timeout() {
        let wait = Error::Os {
            op: Op::Wait,
            errno: libc::ETIMEDOUT,
        };
        assert!(wait.is_wait_timeout());
        assert!(wait.meaning().contains("still pending"));
        let job = Error::Job {
            job: 7,
            errno: libc::ETIMEDOUT,
        };
        assert!(!job.is_wait_timeout());
        assert!(job.meaning().contains("channel reset"));
        assert!(job.to_string().starts_with("job 7 failed: ETIMEDOUT"));
    }

    #[test]
    fn header_errnos_have_messages() {
        assert!(meaning(Op::Job, libc::ESHUTDOWN).contains("retry"));
        assert!(meaning(Op::Job, libc::EIO).contains("failed the job"));
        assert!(meaning(Op::Cmd, libc::ENODEV).contains("gone"));
        assert!(meaning(Op::Wait, libc::ENOENT).contains("unknown job id"));
        assert!(meaning(Op::MemFree, libc::EBUSY).contains("pending job"));
        assert!(meaning(Op::Info, libc::EINVAL).contains("reserved"));
        assert!(meaning(Op::Info, libc::ENOTTY).contains("not supported"));
        let retry = Error::Job {
            job: 1,
            errno: libc::ESHUTDOWN,
        };
        assert!(retry.is_retryable());
    }

    #[test]
    fn firmware_ownership_errnos_are_explained() {
        let e = Error::Os {
            op: Op::FwChanged,
            errno: libc::EINVAL,
        };
        let msg = e.to_string();
        assert!(msg.starts_with("firmware change failed: EINVAL"), "{msg}");
        assert!(msg.contains("kernel-owned"), "{msg}");
        // Not the generic EINVAL text, which would send the user looking
        // for a bad argument.
        assert!(!msg.contains("reserved bytes"), "{msg}");
        assert!(meaning(Op::FwChanged, libc::EPROTO).contains("out of range"));
        assert!(meaning(Op::Cmd, libc::EOPNOTSUPP).contains("runtime-owned"));
        // Other ioctls keep the generic meanings.
        assert!(meaning(Op::Reset, libc::EINVAL).contains("reserved"));
        assert!(meaning(Op::DmaBuf, libc::EOPNOTSUPP).contains("driver version"));
    }

    #[test]
    fn unknown_errno_falls_back_to_strerror() {
        assert_eq!(errno_name(4095), "E?");
        assert_eq!(meaning(Op::Cmd, libc::EROFS), strerror(libc::EROFS));
        assert!(!strerror(libc::EROFS).contains("os error"));
    }

    #[test]
    fn open_error_names_path_and_errno() {
        let e = Error::Open {
            path: "/dev/metis9".into(),
            errno: libc::ENOENT,
        };
        let msg = e.to_string();
        assert!(msg.starts_with("cannot open /dev/metis9: ENOENT"), "{msg}");
        assert!(msg.contains("module loaded"), "{msg}");
    }

    #[test]
    fn invalid_argument_is_einval() {
        let e = Error::InvalidArgument("empty buffer".into());
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(e.to_string(), "invalid argument: empty buffer (EINVAL)");
        assert!(!e.is_memory_lost());
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    }
}
