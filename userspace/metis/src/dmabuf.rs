// SPDX-License-Identifier: GPL-2.0
//! dma-bufs: buffers the driver exports (`METIS_IOCTL_BUF_EXPORT`) and DMA
//! between any dma-buf and device memory (`METIS_IOCTL_DMA_BUF`).

use crate::device::{check_range, timeout_ms, Device, Direction, Region, DMA_MAX_LENGTH};
use crate::error::{Error, Op, Result};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `DMA_BUF_IOCTL_SYNC` = `_IOW('b', 0, struct dma_buf_sync)` (include/uapi/linux/dma-buf.h).
const DMA_BUF_IOCTL_SYNC: libc::c_ulong = 0x4008_6200;
const DMA_BUF_SYNC_READ: u64 = 1;
const DMA_BUF_SYNC_WRITE: u64 = 2;
const DMA_BUF_SYNC_END: u64 = 4;

/// A buffer exported by the driver, mapped into this process.
///
/// CPU access goes through [`DmaBuf::write_with`] and [`DmaBuf::read_with`],
/// which bracket it with `DMA_BUF_IOCTL_SYNC` as the pages are cacheable.
pub struct DmaBuf {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping belongs to this value alone; access goes through `&self`/`&mut self`.
unsafe impl Send for DmaBuf {}

impl DmaBuf {
    /// Size in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer (never returned by the driver).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn sync(&self, flags: u64) -> Result<()> {
        let arg: u64 = flags;
        // SAFETY: `struct dma_buf_sync` is one u64; the fd is a dma-buf.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), DMA_BUF_IOCTL_SYNC as _, &arg) };
        if rc < 0 {
            return Err(Error::Os {
                op: Op::BufSync,
                errno: std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
            });
        }
        Ok(())
    }

    /// Lets `f` write the buffer (between the CPU-access syncs).
    pub fn write_with<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        self.sync(DMA_BUF_SYNC_WRITE)?;
        // SAFETY: `ptr..ptr + len` is our shared mapping, borrowed mutably through `self`.
        let r = f(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) });
        self.sync(DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END)?;
        Ok(r)
    }

    /// Lets `f` read the buffer (between the CPU-access syncs).
    pub fn read_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.sync(DMA_BUF_SYNC_READ)?;
        // SAFETY: `ptr..ptr + len` is our mapping; nothing writes it through `&self`.
        let r = f(unsafe { std::slice::from_raw_parts(self.ptr, self.len) });
        self.sync(DMA_BUF_SYNC_READ | DMA_BUF_SYNC_END)?;
        Ok(r)
    }
}

impl AsFd for DmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `Device::export_buffer`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Device {
    /// `METIS_IOCTL_BUF_EXPORT`: a read-write buffer of at least `len` bytes
    /// that the card (and any other device) can DMA, mapped into this process.
    pub fn export_buffer(&self, len: u64) -> Result<DmaBuf> {
        let a = self.call_arg(
            Op::BufExport,
            sys::METIS_IOCTL_BUF_EXPORT,
            |a: &mut sys::metis_buf_export| {
                a.flags = sys::METIS_BUF_READ | sys::METIS_BUF_WRITE;
                a.length = len;
            },
        )?;
        // SAFETY: the driver installed a new fd for us.
        let fd = unsafe { OwnedFd::from_raw_fd(a.fd) };
        let len = usize::try_from(a.length)
            .map_err(|_| Error::InvalidArgument("buffer too large for this process".into()))?;
        // SAFETY: mapping a dma-buf fd; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Os {
                op: Op::BufExport,
                errno: std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
            });
        }
        Ok(DmaBuf {
            fd,
            ptr: ptr.cast(),
            len,
        })
    }

    /// `METIS_IOCTL_DMA_BUF`: moves `len` bytes between `buf` (any dma-buf) at
    /// `buf_offset` and `region` at `offset`, in direction `dir`, and waits.
    pub fn dma_buf(
        &self,
        dir: Direction,
        buf: BorrowedFd<'_>,
        buf_offset: u64,
        len: u64,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<()> {
        region.check_owner(self)?;
        check_range(dir.op().name(), offset, len, region.len(), DMA_MAX_LENGTH)?;
        let timeout = timeout_ms(self.timeout());
        self.call_arg(
            Op::DmaBuf,
            sys::METIS_IOCTL_DMA_BUF,
            |a: &mut sys::metis_dma_buf| {
                a.flags = match dir {
                    Direction::ToDevice => sys::METIS_DMA_TO_DEVICE,
                    Direction::FromDevice => sys::METIS_DMA_FROM_DEVICE,
                };
                a.fd = buf.as_raw_fd();
                a.buf_offset = buf_offset;
                a.length = len;
                a.handle = region.handle();
                a.offset = offset;
                a.timeout_ms = timeout;
            },
        )
        .map(drop)
    }
}
