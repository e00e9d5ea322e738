//! Userspace library of the metis driver (`/dev/metisN`), the Linux PCIe
//! driver of the Axelera Metis AI accelerator.
//!
//! * [`sys`]: the raw ABI, generated with bindgen from
//!   `uapi/linux/metis.h` (the single source of truth) at build time,
//!   including the ioctl request numbers.
//! * [`Device`], [`Region`], [`Job`]: a safe API. Every argument struct gets
//!   its `size` field set, ranges are checked before the system call, and
//!   failures come back as [`Error`] with the errno and what it means for the
//!   driver (e.g. `ESTALE`: device memory was lost in a card reset).
//! * [`sysfs`]: the bound cards and their attributes
//!   (`/sys/bus/pci/devices/<BDF>/metis/`), readable without root and
//!   without opening the device.
//! * [`debugfs`]: per-channel DMA statistics and the trace of recent
//!   transfers (root only).
//!
//! ```no_run
//! use metis::Device;
//! # fn main() -> metis::Result<()> {
//! let dev = Device::open_index(0)?;
//! println!("firmware {} ({})", dev.info()?.fw_version, dev.info()?.fw_state);
//! let region = dev.mem_alloc(1 << 20)?;
//! let data = vec![0x5a; 1 << 20];
//! dev.dma_to_device(&data, &region, 0)?;
//! let crc = dev.cmd_checksum(&region, 0, data.len() as u64)?;
//! let mut back = vec![0; data.len()];
//! dev.dma_from_device(&mut back, &region, 0)?;
//! assert_eq!(back, data);
//! # let _ = crc;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod debugfs;
mod device;
mod dmabuf;
mod error;
mod info;
pub mod sys;
pub mod sysfs;

pub use device::{
    check_range, timeout_ms, BatchBuf, BatchEntry, BatchItem, Device, Direction, Job, JobId,
    PollStatus, Region, RunOp, DMA_MAX_LENGTH, ECHO_MAX, MAX_BATCH, MAX_REGISTERED, MEM_ALIGN,
    MEM_MAX_LENGTH, MEM_MAX_REGIONS,
};
pub use dmabuf::DmaBuf;
pub use error::{errno_name, meaning, strerror, Error, Op, Result};
pub use info::{FwOwner, FwState, FwVersion, IfVersion, Info, IommuMode, IrqMode};
