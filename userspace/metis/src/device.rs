//! The safe API over `/dev/metisN`.

use crate::error::{Error, Op, Result};
use crate::info::Info;
use crate::sys::{self, UapiArg};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// bindgen types each macro constant by its value (u32 or u64), so the casts
// below are kept even where they are no-ops today.
/// Largest single DMA transfer, bytes (`METIS_DMA_MAX_LENGTH`).
#[allow(clippy::unnecessary_cast)]
pub const DMA_MAX_LENGTH: u64 = sys::METIS_DMA_MAX_LENGTH as u64;
/// Largest device-memory region, bytes (`METIS_MEM_MAX_LENGTH`).
#[allow(clippy::unnecessary_cast)]
pub const MEM_MAX_LENGTH: u64 = sys::METIS_MEM_MAX_LENGTH as u64;
/// Granule of device-memory allocations, bytes (`METIS_MEM_ALIGN`).
#[allow(clippy::unnecessary_cast)]
pub const MEM_ALIGN: u64 = sys::METIS_MEM_ALIGN as u64;
/// Buffers one open file may have registered at once (`METIS_MAX_REGISTERED`).
pub const MAX_REGISTERED: usize = sys::METIS_MAX_REGISTERED as usize;
/// Transfers one batch may hold (`METIS_MAX_BATCH`).
pub const MAX_BATCH: usize = sys::METIS_MAX_BATCH as usize;

/// Regions one open file may hold at once (`METIS_MEM_MAX_REGIONS`).
#[allow(clippy::unnecessary_cast)]
pub const MEM_MAX_REGIONS: usize = sys::METIS_MEM_MAX_REGIONS as usize;
/// Bytes of payload an ECHO command carries (`METIS_ECHO_MAX`).
#[allow(clippy::unnecessary_cast)]
pub const ECHO_MAX: usize = sys::METIS_ECHO_MAX as usize;

/// One transfer of a batch ([`Device::dma_batch_raw`]).
#[derive(Clone, Copy)]
pub struct BatchEntry<'r> {
    /// Which way the bytes go.
    pub dir: Direction,
    /// Host bytes `addr..addr + len`.
    pub addr: *const u8,
    /// Bytes to move, 1..=[`DMA_MAX_LENGTH`].
    pub len: usize,
    /// The device-memory region, and where in it.
    pub region: &'r Region<'r>,
    /// Offset into `region`.
    pub offset: u64,
    /// The host bytes lie in a buffer this file registered for `dir`
    /// ([`Device::register_buffer`]): nothing is pinned or mapped for them.
    pub registered: bool,
}

/// The host side of one transfer of a synchronous batch ([`Device::dma_batch`]).
pub enum BatchBuf<'b> {
    /// These bytes go to the card.
    ToDevice(&'b [u8]),
    /// The card's bytes land here.
    FromDevice(&'b mut [u8]),
}

/// One transfer of a synchronous batch ([`Device::dma_batch`]).
pub struct BatchItem<'b, 'r> {
    /// The host bytes, and which way they go.
    pub buf: BatchBuf<'b>,
    /// The device-memory region.
    pub region: &'r Region<'r>,
    /// Offset into `region`.
    pub offset: u64,
    /// `buf` lies in a buffer this file registered for its direction.
    pub registered: bool,
}

/// Id of an async job, as returned by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// Direction of a DMA transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host buffer to device memory (`METIS_DMA_TO_DEVICE`).
    ToDevice,
    /// Device memory to host buffer (`METIS_DMA_FROM_DEVICE`).
    FromDevice,
}

impl Direction {
    fn flag(self) -> u32 {
        match self {
            Direction::ToDevice => sys::METIS_DMA_TO_DEVICE,
            Direction::FromDevice => sys::METIS_DMA_FROM_DEVICE,
        }
    }
    pub(crate) fn op(self) -> Op {
        match self {
            Direction::ToDevice => Op::DmaToDevice,
            Direction::FromDevice => Op::DmaFromDevice,
        }
    }
}

/// The transform of a RUN command (`enum metis_run_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOp {
    /// `out[i] = in[i]`.
    Copy,
    /// `out[i] = !in[i]`.
    Not,
    /// `out[i] = in[i] ^ (arg & 0xff)`.
    Xor,
    /// `out[i] = in[i] + (arg + i) mod 256`.
    AddIndex,
}

impl RunOp {
    /// Every op, in ABI order.
    pub const ALL: [RunOp; 4] = [RunOp::Copy, RunOp::Not, RunOp::Xor, RunOp::AddIndex];

    /// The raw `enum metis_run_op` value.
    pub fn raw(self) -> u32 {
        match self {
            RunOp::Copy => sys::METIS_RUN_COPY,
            RunOp::Not => sys::METIS_RUN_NOT,
            RunOp::Xor => sys::METIS_RUN_XOR,
            RunOp::AddIndex => sys::METIS_RUN_ADD_INDEX,
        }
    }

    /// Host reference of the transform for byte `i` of the range, as the
    /// header defines it; `arg` is the command's `arg`.
    pub fn apply(self, arg: u32, i: u64, b: u8) -> u8 {
        match self {
            RunOp::Copy => b,
            RunOp::Not => !b,
            RunOp::Xor => b ^ (arg as u8),
            RunOp::AddIndex => b.wrapping_add((u64::from(arg).wrapping_add(i)) as u8),
        }
    }
}

/// Readiness of the device file reported by `poll()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollStatus {
    /// `POLLIN`: an async job of this file completed and can be reaped with
    /// [`Device::wait`] without blocking.
    pub completed: bool,
    /// `POLLHUP`: the card is gone.
    pub hangup: bool,
    /// `POLLERR`: the driver reports an error condition.
    pub error: bool,
    /// `POLLPRI`: a runtime-owned card lost its firmware (card reset or
    /// resume) and stays so until the runtime boots firmware again and calls
    /// [`Device::firmware_changed`].
    pub firmware_lost: bool,
}

impl PollStatus {
    /// True if anything at all was reported.
    pub fn any(&self) -> bool {
        self.completed || self.hangup || self.error || self.firmware_lost
    }
}

/// An open metis device file. All operations take `&self`; the file can be
/// shared between threads.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: PathBuf,
    timeout: Option<Duration>,
}

/// Milliseconds for a `timeout_ms` field where 0 has a special meaning (the
/// driver default, or no limit): `None` gives 0, any `Some` at least 1,
/// saturating at `u32::MAX`.
pub fn timeout_ms(t: Option<Duration>) -> u32 {
    match t {
        None => 0,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(u32::MAX).max(1)
        }
    }
}

/// Checks `offset..offset + len` against a region of `region_len` bytes and
/// `len` against `max`, without overflow, the way the driver will.
pub fn check_range(what: &str, offset: u64, len: u64, region_len: u64, max: u64) -> Result<()> {
    if len == 0 {
        return Err(Error::InvalidArgument(format!("{what}: length is zero")));
    }
    if len > max {
        return Err(Error::InvalidArgument(format!(
            "{what}: length {len} exceeds the maximum of {max} bytes"
        )));
    }
    let end = offset.checked_add(len).ok_or_else(|| {
        Error::InvalidArgument(format!("{what}: offset {offset} + length {len} overflows"))
    })?;
    if end > region_len {
        return Err(Error::InvalidArgument(format!(
            "{what}: range {offset}..{end} is outside the region of {region_len} bytes"
        )));
    }
    Ok(())
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn len_u64(n: usize) -> u64 {
    // usize is at most 64 bits on every Linux target.
    n as u64
}

impl Device {
    /// Opens a metis device node, e.g. `/dev/metis0`, read-write.
    pub fn open(path: impl AsRef<Path>) -> Result<Device> {
        let path = path.as_ref();
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            Error::InvalidArgument(format!("device path {} contains NUL", path.display()))
        })?;
        // SAFETY: `c` is a valid NUL-terminated string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Error::Open {
                path: path.to_path_buf(),
                errno: last_errno(),
            });
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Device {
            fd,
            path: path.to_path_buf(),
            timeout: None,
        })
    }

    /// Opens `/dev/metis{index}`.
    pub fn open_index(index: u32) -> Result<Device> {
        Device::open(Device::path_of(index))
    }

    /// The node path of card `index`.
    pub fn path_of(index: u32) -> PathBuf {
        PathBuf::from(format!("/dev/metis{index}"))
    }

    /// Wraps an already open device file.
    pub fn from_fd(fd: OwnedFd, path: impl Into<PathBuf>) -> Device {
        Device {
            fd,
            path: path.into(),
            timeout: None,
        }
    }

    /// The path this device was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Timeout passed to the driver for DMA transfers and commands; `None`
    /// (the default) lets the driver choose.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The timeout set with [`Device::set_timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Issues `request` with an argument that starts all-zero (padding
    /// included), has `size` set and is then filled in by `fill`; returns the
    /// argument as the driver left it. With `restart`, an ioctl interrupted
    /// by a signal is issued again (only for requests without effect until
    /// they succeed).
    fn call<T: UapiArg>(
        &self,
        op: Op,
        request: u32,
        restart: bool,
        fill: impl FnOnce(&mut T),
    ) -> Result<T> {
        let mut m = sys::zeroed_arg::<T>();
        // SAFETY: `zeroed_arg` returns an initialized value.
        fill(unsafe { &mut *m.as_mut_ptr() });
        loop {
            // SAFETY: `m` is a live struct of the size the request number
            // encodes; the driver reads and writes at most that many bytes.
            let rc = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    request as _,
                    m.as_mut_ptr().cast::<libc::c_void>(),
                )
            };
            if rc >= 0 {
                // SAFETY: initialized above; the driver only wrote integers.
                return Ok(unsafe { m.assume_init() });
            }
            let errno = last_errno();
            if !(restart && errno == libc::EINTR) {
                return Err(Error::Os { op, errno });
            }
        }
    }

    /// `METIS_IOCTL_INFO`, raw.
    pub fn info_raw(&self) -> Result<sys::metis_info> {
        self.call(
            Op::Info,
            sys::METIS_IOCTL_INFO,
            true,
            |_: &mut sys::metis_info| {},
        )
    }

    /// `METIS_IOCTL_INFO`: what the card and the driver are.
    pub fn info(&self) -> Result<Info> {
        Ok(Info::from_raw(&self.info_raw()?))
    }

    /// Allocates a device-memory region of `len` bytes (the driver rounds it
    /// up to [`MEM_ALIGN`]). It is freed when the [`Region`] is dropped.
    pub fn mem_alloc(&self, len: u64) -> Result<Region<'_>> {
        if len == 0 || len > MEM_MAX_LENGTH {
            return Err(Error::InvalidArgument(format!(
                "region length {len} is not in 1..={MEM_MAX_LENGTH}"
            )));
        }
        let a = self.call(
            Op::MemAlloc,
            sys::METIS_IOCTL_MEM_ALLOC,
            false,
            |a: &mut sys::metis_mem_alloc| a.length = len,
        )?;
        Ok(Region {
            dev: self,
            handle: a.handle,
            // The driver may report the rounded length back; never less than asked.
            len: a.length.max(len),
            dev_addr: a.dev_addr,
            live: true,
        })
    }

    /// `METIS_IOCTL_MEM_FREE` of a raw handle. Prefer dropping the [`Region`].
    pub fn mem_free_handle(&self, handle: u64) -> Result<()> {
        self.call(
            Op::MemFree,
            sys::METIS_IOCTL_MEM_FREE,
            false,
            |a: &mut sys::metis_mem_free| a.handle = handle,
        )
        .map(drop)
    }

    /// [`Device::call`] for the dma-buf module, never restarted on `EINTR`.
    pub(crate) fn call_arg<T: UapiArg>(
        &self,
        op: Op,
        request: u32,
        fill: impl FnOnce(&mut T),
    ) -> Result<T> {
        self.call(op, request, false, fill)
    }

    fn own(&self, region: &Region<'_>) -> Result<()> {
        if std::ptr::eq(region.dev, self) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "the region belongs to another open device file".into(),
            ))
        }
    }

    /// Checks and issues one `METIS_IOCTL_DMA`; returns the job id (0 for a
    /// synchronous transfer).
    fn dma(
        &self,
        dir: Direction,
        flags: u32,
        addr: u64,
        len: u64,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<u64> {
        self.own(region)?;
        check_range(dir.op().name(), offset, len, region.len, DMA_MAX_LENGTH)?;
        let timeout = timeout_ms(self.timeout);
        let a = self.call(
            dir.op(),
            sys::METIS_IOCTL_DMA,
            false,
            |a: &mut sys::metis_dma| {
                a.flags = dir.flag() | flags;
                a.user_addr = addr;
                a.length = len;
                a.handle = region.handle;
                a.offset = offset;
                a.timeout_ms = timeout;
            },
        )?;
        Ok(a.job_id)
    }

    /// Copies `buf` into `region` at `offset` and waits for the transfer.
    pub fn dma_to_device(&self, buf: &[u8], region: &Region<'_>, offset: u64) -> Result<()> {
        let (addr, len) = (buf.as_ptr() as u64, len_u64(buf.len()));
        self.dma(Direction::ToDevice, 0, addr, len, region, offset)
            .map(drop)
    }

    /// Copies `buf.len()` bytes of `region` at `offset` into `buf` and waits
    /// for the transfer.
    pub fn dma_from_device(&self, buf: &mut [u8], region: &Region<'_>, offset: u64) -> Result<()> {
        let (addr, len) = (buf.as_mut_ptr() as u64, len_u64(buf.len()));
        self.dma(Direction::FromDevice, 0, addr, len, region, offset)
            .map(drop)
    }

    /// `METIS_IOCTL_BUF_REGISTER`: pins `len` bytes at `addr` and maps them for
    /// the card once, for transfers in the directions `dirs` lists, until
    /// [`Device::unregister_buffer`] or the file's close. Returns the handle.
    ///
    /// The pages stay pinned (and count against `RLIMIT_MEMLOCK`) while
    /// registered; the card keeps using them even if the range is unmapped.
    pub fn register_buffer(&self, addr: *const u8, len: usize, dirs: &[Direction]) -> Result<u64> {
        let flags = dirs.iter().fold(0, |f, d| f | d.flag());
        if flags == 0 {
            return Err(Error::InvalidArgument(
                "a registered buffer needs at least one direction".into(),
            ));
        }
        let a = self.call(
            Op::BufRegister,
            sys::METIS_IOCTL_BUF_REGISTER,
            false,
            |a: &mut sys::metis_buf_register| {
                a.flags = flags;
                a.user_addr = addr as u64;
                a.length = len_u64(len);
            },
        )?;
        Ok(a.handle)
    }

    /// `METIS_IOCTL_BUF_UNREGISTER`: ends a registration; transfers still using
    /// the buffer finish with it.
    pub fn unregister_buffer(&self, handle: u64) -> Result<()> {
        self.call(
            Op::BufUnregister,
            sys::METIS_IOCTL_BUF_UNREGISTER,
            false,
            |a: &mut sys::metis_buf_unregister| a.handle = handle,
        )
        .map(drop)
    }

    /// A synchronous transfer of `len` bytes at `addr`, inside a buffer this
    /// file registered for `dir` (nothing is pinned or mapped for it).
    pub fn dma_registered(
        &self,
        dir: Direction,
        addr: *const u8,
        len: usize,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<()> {
        self.dma(
            dir,
            sys::METIS_DMA_REGISTERED,
            addr as u64,
            len_u64(len),
            region,
            offset,
        )
        .map(drop)
    }

    /// As [`Device::dma_async_raw`], inside a buffer this file registered for `dir`.
    ///
    /// # Safety
    ///
    /// As for [`Device::dma_async_raw`].
    pub unsafe fn dma_registered_async(
        &self,
        dir: Direction,
        addr: *const u8,
        len: usize,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<JobId> {
        self.async_job(dir, sys::METIS_DMA_REGISTERED, addr, len, region, offset)
    }

    /// Issues an async `METIS_IOCTL_DMA` with `flags` besides the direction and
    /// `METIS_DMA_ASYNC`; the callers' safety contract is [`Device::dma_async_raw`]'s.
    fn async_job(
        &self,
        dir: Direction,
        flags: u32,
        addr: *const u8,
        len: usize,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<JobId> {
        let id = self.dma(
            dir,
            sys::METIS_DMA_ASYNC | flags,
            addr as u64,
            len_u64(len),
            region,
            offset,
        )?;
        Ok(JobId(id))
    }

    /// `METIS_IOCTL_DMA_BATCH`: runs `entries` as one submission, the entries
    /// of each direction as one list on one channel (one doorbell, one
    /// interrupt), to the card first. Waits for it, or with `asynchronous`
    /// returns its job id at once, to be reaped with [`Device::wait`]. All or
    /// nothing: an entry the driver refuses fails the call before anything
    /// moved.
    ///
    /// # Safety
    ///
    /// Every entry's `addr..addr + len` must stay valid (and, for
    /// [`Direction::FromDevice`], not be read or written by anything else)
    /// until the call returns, or with `asynchronous` until the job has been
    /// reaped.
    pub unsafe fn dma_batch_raw(
        &self,
        entries: &[BatchEntry<'_>],
        asynchronous: bool,
    ) -> Result<Option<JobId>> {
        if entries.is_empty() || entries.len() > MAX_BATCH {
            return Err(Error::InvalidArgument(format!(
                "a batch holds 1..={MAX_BATCH} transfers, not {}",
                entries.len()
            )));
        }
        let mut raw = Vec::with_capacity(entries.len());
        for e in entries {
            self.own(e.region)?;
            let len = len_u64(e.len);
            check_range(
                e.dir.op().name(),
                e.offset,
                len,
                e.region.len,
                DMA_MAX_LENGTH,
            )?;
            let mut a = sys::metis_dma::new_sized();
            a.flags = e.dir.flag()
                | if e.registered {
                    sys::METIS_DMA_REGISTERED
                } else {
                    0
                };
            a.user_addr = e.addr as u64;
            a.length = len;
            a.handle = e.region.handle;
            a.offset = e.offset;
            raw.push(a);
        }
        let timeout = timeout_ms(self.timeout);
        let a = self.call(
            Op::DmaBatch,
            sys::METIS_IOCTL_DMA_BATCH,
            false,
            |a: &mut sys::metis_dma_batch| {
                a.flags = if asynchronous {
                    sys::METIS_DMA_ASYNC
                } else {
                    0
                };
                a.entries = raw.as_ptr() as u64;
                // At most MAX_BATCH, checked above.
                a.count = raw.len() as u32;
                a.entry_size = core::mem::size_of::<sys::metis_dma>() as u32;
                a.timeout_ms = timeout;
            },
        )?;
        Ok(asynchronous.then_some(JobId(a.job_id)))
    }

    /// [`Device::dma_batch_raw`], synchronous, over borrowed buffers.
    pub fn dma_batch(&self, items: &mut [BatchItem<'_, '_>]) -> Result<()> {
        let entries: Vec<BatchEntry<'_>> = items
            .iter_mut()
            .map(|it| {
                let (dir, addr, len) = match &mut it.buf {
                    BatchBuf::ToDevice(b) => (Direction::ToDevice, b.as_ptr(), b.len()),
                    BatchBuf::FromDevice(b) => {
                        (Direction::FromDevice, b.as_mut_ptr().cast_const(), b.len())
                    }
                };
                BatchEntry {
                    dir,
                    addr,
                    len,
                    region: it.region,
                    offset: it.offset,
                    registered: it.registered,
                }
            })
            .collect();
        // SAFETY: the call is synchronous, and `items` (so every buffer, the
        // from-device ones exclusively) stays borrowed until it returns.
        unsafe { self.dma_batch_raw(&entries, false) }.map(drop)
    }

    /// Starts an async transfer of `len` bytes at `addr` and returns its job
    /// id at once.
    ///
    /// # Safety
    ///
    /// `addr..addr + len` must stay valid (and, for [`Direction::FromDevice`],
    /// not be read or written by anything else) until the job has been reaped
    /// with [`Device::wait`]. The safe [`Device::submit`] owns its buffer
    /// instead.
    pub unsafe fn dma_async_raw(
        &self,
        dir: Direction,
        addr: *const u8,
        len: usize,
        region: &Region<'_>,
        offset: u64,
    ) -> Result<JobId> {
        self.async_job(dir, 0, addr, len, region, offset)
    }

    /// Starts an async transfer between `buf` and `region` at `offset`
    /// (`buf.len()` bytes). The [`Job`] owns the buffer until it is reaped;
    /// get it back with [`Job::into_buffer`].
    pub fn submit<'a>(
        &'a self,
        dir: Direction,
        mut buf: Vec<u8>,
        region: &'a Region<'a>,
        offset: u64,
    ) -> Result<Job<'a>> {
        let ptr = buf.as_mut_ptr();
        // SAFETY: the Job owns `buf` (its heap block never moves) and only
        // gives it back once the driver reaped the job; if the job cannot be
        // reaped the buffer is leaked, never freed.
        let id = unsafe { self.dma_async_raw(dir, ptr, buf.len(), region, offset)? };
        Ok(Job {
            dev: self,
            id,
            buf: Some(buf),
            pending: true,
        })
    }

    /// Async [`Device::dma_to_device`].
    pub fn dma_to_device_async<'a>(
        &'a self,
        buf: Vec<u8>,
        region: &'a Region<'a>,
        offset: u64,
    ) -> Result<Job<'a>> {
        self.submit(Direction::ToDevice, buf, region, offset)
    }

    /// Async [`Device::dma_from_device`]: fills `buf` from the region.
    pub fn dma_from_device_async<'a>(
        &'a self,
        buf: Vec<u8>,
        region: &'a Region<'a>,
        offset: u64,
    ) -> Result<Job<'a>> {
        self.submit(Direction::FromDevice, buf, region, offset)
    }

    /// `METIS_IOCTL_WAIT`: waits up to `timeout` (`None`: without limit) for
    /// job `job` and reaps it.
    ///
    /// Errors: [`Error::is_wait_timeout`] if the timeout passed first (the job
    /// stays pending); `ENOENT` for an unknown id; [`Error::Job`] if the job
    /// was reaped but failed (`ETIMEDOUT`, `EIO`, `ESHUTDOWN`, `ENODEV`, ...).
    pub fn wait(&self, job: JobId, timeout: Option<Duration>) -> Result<()> {
        let a = self.call(
            Op::Wait,
            sys::METIS_IOCTL_WAIT,
            true,
            |a: &mut sys::metis_wait| {
                a.job_id = job.0;
                a.timeout_ms = timeout_ms(timeout);
            },
        )?;
        match a.status {
            0 => Ok(()),
            s => Err(Error::Job {
                job: job.0,
                errno: s.checked_neg().filter(|e| *e > 0).unwrap_or(libc::EIO),
            }),
        }
    }

    /// `poll()` on the device file: waits up to `timeout` (`None`: without
    /// limit) for a completed async job, a hang-up, or (runtime-owned cards)
    /// the loss of the firmware. The firmware-lost condition is level
    /// triggered: while it lasts, every call returns at once.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<PollStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ms: libc::c_int = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000))
                        .unwrap_or(libc::c_int::MAX)
                }
            };
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                // POLLPRI is only reported when asked for (unlike POLLHUP).
                events: libc::POLLIN | libc::POLLRDNORM | libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, ms) };
            if rc < 0 {
                let errno = last_errno();
                if errno == libc::EINTR {
                    continue;
                }
                return Err(Error::Os {
                    op: Op::Poll,
                    errno,
                });
            }
            return Ok(PollStatus {
                completed: p.revents & (libc::POLLIN | libc::POLLRDNORM) != 0,
                hangup: p.revents & libc::POLLHUP != 0,
                error: p.revents & (libc::POLLERR | libc::POLLNVAL) != 0,
                firmware_lost: p.revents & libc::POLLPRI != 0,
            });
        }
    }

    fn cmd(&self, fill: impl FnOnce(&mut sys::metis_cmd)) -> Result<sys::metis_cmd> {
        let timeout = timeout_ms(self.timeout);
        self.call(
            Op::Cmd,
            sys::METIS_IOCTL_CMD,
            false,
            |a: &mut sys::metis_cmd| {
                fill(a);
                a.timeout_ms = timeout;
            },
        )
    }

    /// ECHO: sends up to [`ECHO_MAX`] bytes through the firmware and returns
    /// what came back.
    pub fn cmd_echo(&self, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() > ECHO_MAX {
            return Err(Error::InvalidArgument(format!(
                "echo payload of {} bytes exceeds {ECHO_MAX}",
                data.len()
            )));
        }
        let a = self.cmd(|a| {
            a.opcode = sys::METIS_CMD_ECHO;
            a.echo[..data.len()].copy_from_slice(data);
            a.echo_len = data.len() as u32;
        })?;
        let n = (a.echo_len as usize).min(ECHO_MAX);
        Ok(a.echo[..n].to_vec())
    }

    /// CHECKSUM: CRC-32 (IEEE) of `len` bytes of `region` at `offset`.
    pub fn cmd_checksum(&self, region: &Region<'_>, offset: u64, len: u64) -> Result<u32> {
        self.own(region)?;
        check_range("checksum", offset, len, region.len, u64::MAX)?;
        let a = self.cmd(|a| {
            a.opcode = sys::METIS_CMD_CHECKSUM;
            a.handle_in = region.handle;
            a.offset_in = offset;
            a.length = len;
        })?;
        Ok(a.result)
    }

    /// FILL: fills `len` bytes of `region` at `offset` with the 32-bit
    /// `pattern` (its little-endian bytes, repeated).
    pub fn cmd_fill(&self, region: &Region<'_>, offset: u64, len: u64, pattern: u32) -> Result<()> {
        self.own(region)?;
        check_range("fill", offset, len, region.len, u64::MAX)?;
        self.cmd(|a| {
            a.opcode = sys::METIS_CMD_FILL;
            a.handle_in = region.handle;
            a.offset_in = offset;
            a.length = len;
            a.arg = pattern;
        })
        .map(drop)
    }

    /// RUN: transforms `len` bytes of `input` at `offset_in` into `output` at
    /// `offset_out` with `op` and `arg`; returns the CRC-32 of the output.
    #[allow(clippy::too_many_arguments)]
    pub fn cmd_run(
        &self,
        op: RunOp,
        arg: u32,
        input: &Region<'_>,
        offset_in: u64,
        output: &Region<'_>,
        offset_out: u64,
        len: u64,
    ) -> Result<u32> {
        self.own(input)?;
        self.own(output)?;
        check_range("run input", offset_in, len, input.len, u64::MAX)?;
        check_range("run output", offset_out, len, output.len, u64::MAX)?;
        let a = self.cmd(|a| {
            a.opcode = sys::METIS_CMD_RUN;
            a.op = op.raw();
            a.handle_in = input.handle;
            a.offset_in = offset_in;
            a.handle_out = output.handle;
            a.offset_out = offset_out;
            a.length = len;
            a.arg = arg;
        })?;
        Ok(a.result)
    }

    /// `METIS_IOCTL_RESET`: resets the card and reboots the firmware image
    /// the driver loaded before. Every region of every file becomes lost: its
    /// next use fails once with `ESTALE`. Jobs running on the card fail with
    /// `EIO`. Without `CAP_SYS_ADMIN` the call fails with `EPERM` while another
    /// file is open on the card.
    pub fn reset(&self) -> Result<()> {
        self.reset_with(0)
    }

    /// As [`Device::reset`], but the driver reads the firmware file from
    /// `/lib/firmware` again first (to pick up an updated file). A file the
    /// driver refuses fails with `EINVAL` and leaves the card untouched.
    pub fn reload_firmware(&self) -> Result<()> {
        self.reset_with(sys::METIS_RESET_RELOAD_FIRMWARE)
    }

    /// `METIS_IOCTL_FW_CHANGED`: tells the driver that userspace booted new
    /// firmware on a runtime-owned card ([`crate::FwOwner::Runtime`]). The
    /// driver reads the areas the firmware publishes again, checks them and
    /// registers its interrupt table with it; `fw_state` becomes ready and
    /// the firmware-lost condition ([`PollStatus::firmware_lost`]) clears.
    ///
    /// Errors: `EINVAL` on a kernel-owned card; `EPROTO` if the firmware
    /// publishes a field out of range (the kernel log names it).
    pub fn firmware_changed(&self) -> Result<()> {
        // Not restarted on EINTR, like reset: a request that acts on the
        // card is not issued a second time behind the caller's back.
        self.call(
            Op::FwChanged,
            sys::METIS_IOCTL_FW_CHANGED,
            false,
            |a: &mut sys::metis_fw_changed| a.flags = 0,
        )
        .map(drop)
    }

    fn reset_with(&self, flags: u32) -> Result<()> {
        self.call(
            Op::Reset,
            sys::METIS_IOCTL_RESET,
            false,
            |a: &mut sys::metis_reset| a.flags = flags,
        )
        .map(drop)
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A device-memory region of one [`Device`], freed on drop.
#[derive(Debug)]
pub struct Region<'d> {
    dev: &'d Device,
    handle: u64,
    len: u64,
    dev_addr: u64,
    live: bool,
}

impl Region<'_> {
    /// Fails unless the region belongs to `dev` (regions are private to a file).
    pub(crate) fn check_owner(&self, dev: &Device) -> Result<()> {
        dev.own(self)
    }

    /// The driver's handle of the region.
    pub fn handle(&self) -> u64 {
        self.handle
    }
    /// Usable length in bytes (what was asked for, or the rounded length if
    /// the driver reported it back).
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Always false: regions are at least one byte long.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Device address of the region (informational).
    pub fn dev_addr(&self) -> u64 {
        self.dev_addr
    }
    /// Frees the region now and reports the outcome (`EBUSY` while a job uses
    /// it). On error the region stays allocated until the file is closed.
    pub fn free(mut self) -> Result<()> {
        self.live = false;
        self.dev.mem_free_handle(self.handle)
    }
    /// Gives up ownership: the region stays allocated until the device file
    /// is closed. Returns the handle.
    pub fn into_handle(mut self) -> u64 {
        self.live = false;
        self.handle
    }
}

impl Drop for Region<'_> {
    fn drop(&mut self) {
        if self.live {
            // Nothing to do about a failure here; the driver frees every
            // region of the file when it is closed.
            let _ = self.dev.mem_free_handle(self.handle);
        }
    }
}

/// An async DMA job that owns its host buffer until reaped.
///
/// Dropping a pending job waits for it without limit (the buffer must not be
/// freed while the card may still access it); if it cannot be reaped, the
/// buffer is leaked.
#[derive(Debug)]
pub struct Job<'a> {
    dev: &'a Device,
    id: JobId,
    buf: Option<Vec<u8>>,
    pending: bool,
}

impl Job<'_> {
    /// The driver's job id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// True until the job has been reaped (successfully or not).
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Waits up to `timeout` (`None`: without limit) and reaps the job.
    /// After a wait timeout ([`Error::is_wait_timeout`]) the job is still
    /// pending and can be waited for again; after any other error it is done.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<()> {
        if !self.pending {
            return Ok(());
        }
        match self.dev.wait(self.id, timeout) {
            Ok(()) => {
                self.pending = false;
                Ok(())
            }
            Err(e) => {
                // Reaped with a failure status, or unknown to the driver: the
                // card no longer touches the buffer.
                if matches!(e, Error::Job { .. })
                    || matches!(e, Error::Os { errno, .. } if errno == libc::ENOENT)
                {
                    self.pending = false;
                }
                Err(e)
            }
        }
    }

    /// Waits without limit if needed and returns the buffer (for a transfer
    /// from the device, now holding the data).
    pub fn into_buffer(mut self) -> Result<Vec<u8>> {
        self.wait(None)?;
        self.buf
            .take()
            .ok_or_else(|| Error::InvalidArgument("job buffer already taken".into()))
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        if !self.pending {
            return;
        }
        // Errors are of no use here; what matters is whether it was reaped.
        let _ = self.wait(None);
        if self.pending {
            // Not reaped: the card may still access the pages, so they are
            // never given back to the allocator.
            if let Some(b) = self.buf.take() {
                std::mem::forget(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_convert_to_ms() {
        assert_eq!(timeout_ms(None), 0);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(3))), 3000);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), u32::MAX);
    }

    #[test]
    fn range_checks() {
        assert!(check_range("dma", 0, 4096, 4096, DMA_MAX_LENGTH).is_ok());
        assert!(check_range("dma", 4095, 1, 4096, DMA_MAX_LENGTH).is_ok());
        let e = check_range("dma", 0, 0, 4096, DMA_MAX_LENGTH).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.to_string().contains("length is zero"), "{e}");
        let e = check_range("dma", 1, 4096, 4096, DMA_MAX_LENGTH).unwrap_err();
        assert!(e.to_string().contains("outside the region"), "{e}");
        let e = check_range("dma", u64::MAX, 2, u64::MAX, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = check_range("dma", 0, DMA_MAX_LENGTH + 1, u64::MAX, DMA_MAX_LENGTH).unwrap_err();
        assert!(e.to_string().contains("exceeds the maximum"), "{e}");
        assert!(check_range("dma", 0, DMA_MAX_LENGTH, u64::MAX, DMA_MAX_LENGTH).is_ok());
    }

    #[test]
    fn run_op_reference() {
        assert_eq!(RunOp::Copy.apply(0xff, 5, 0x12), 0x12);
        assert_eq!(RunOp::Not.apply(0, 0, 0x0f), 0xf0);
        assert_eq!(RunOp::Xor.apply(0x1234_56ff, 0, 0x0f), 0xf0);
        // (arg + i) mod 256, then wrapping add.
        assert_eq!(RunOp::AddIndex.apply(250, 10, 1), 5);
        assert_eq!(RunOp::AddIndex.apply(u32::MAX, 1, 7), 7);
        let raws: Vec<u32> = RunOp::ALL.iter().map(|o| o.raw()).collect();
        assert_eq!(raws, vec![0, 1, 2, 3]);
    }

    #[test]
    fn open_missing_node_reports_enoent() {
        let e = Device::open("/nonexistent/metis0").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e
            .to_string()
            .starts_with("cannot open /nonexistent/metis0: ENOENT"));
        assert_eq!(Device::path_of(3), PathBuf::from("/dev/metis3"));
        let e = Device::open("/dev/metis\0x").unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
    }

    /// A non-metis file: every ioctl fails with ENOTTY, and so never reaches
    /// argument handling in a driver. Used to check the userspace checks
    /// (which must fire before the ioctl) and errno reporting.
    fn not_metis() -> Device {
        Device::open("/dev/null").expect("open /dev/null")
    }

    #[test]
    fn ioctls_on_a_foreign_file_report_enotty() {
        let d = not_metis();
        let e = d.info().unwrap_err();
        assert_eq!(
            e,
            Error::Os {
                op: Op::Info,
                errno: libc::ENOTTY
            }
        );
        assert!(e
            .to_string()
            .contains("not supported by this driver version"));
        assert_eq!(d.reset().unwrap_err().errno(), libc::ENOTTY);
        assert_eq!(d.cmd_echo(b"hi").unwrap_err().errno(), libc::ENOTTY);
        assert_eq!(d.wait(JobId(1), None).unwrap_err().errno(), libc::ENOTTY);
        assert_eq!(d.mem_alloc(4096).unwrap_err().errno(), libc::ENOTTY);
        // The request reaches the kernel, under its own operation name.
        assert_eq!(
            d.firmware_changed().unwrap_err(),
            Error::Os {
                op: Op::FwChanged,
                errno: libc::ENOTTY
            }
        );
    }

    #[test]
    fn userspace_validation_happens_before_the_ioctl() {
        let d = not_metis();
        let e = d.mem_alloc(0).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let e = d.mem_alloc(MEM_MAX_LENGTH + 1).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let e = d.cmd_echo(&[0u8; ECHO_MAX + 1]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

        // A region value that was never allocated (never freed either).
        let r = Region {
            dev: &d,
            handle: 1,
            len: 8192,
            dev_addr: 0,
            live: false,
        };
        let e = d.dma_to_device(&[], &r, 0).unwrap_err();
        assert!(e.to_string().contains("length is zero"), "{e}");
        let e = d.dma_to_device(&[0u8; 16], &r, 8190).unwrap_err();
        assert!(e.to_string().contains("outside the region"), "{e}");
        let mut big = [0u8; 16];
        let e = d.dma_from_device(&mut big, &r, u64::MAX - 4).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = d.cmd_checksum(&r, 0, 0).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let e = d.cmd_fill(&r, 8192, 1, 0).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let e = d
            .cmd_run(RunOp::Copy, 0, &r, 0, &r, 4096, 4097)
            .unwrap_err();
        assert!(e.to_string().contains("run output"), "{e}");
        let e = d
            .submit(Direction::ToDevice, Vec::new(), &r, 0)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

        // In bounds: the ioctl is reached and fails with ENOTTY.
        assert_eq!(
            d.dma_to_device(&[1u8; 16], &r, 8176).unwrap_err().errno(),
            libc::ENOTTY
        );
        assert_eq!(
            d.cmd_checksum(&r, 0, 8192).unwrap_err().errno(),
            libc::ENOTTY
        );

        // A region of another file is refused.
        let other = not_metis();
        let e = other.cmd_fill(&r, 0, 4, 0).unwrap_err();
        assert!(e.to_string().contains("another open device file"), "{e}");
    }

    #[test]
    fn jobs_keep_their_buffer_until_reaped() {
        let d = not_metis();
        // A reaped job gives its buffer back.
        let done = Job {
            dev: &d,
            id: JobId(5),
            buf: Some(vec![1, 2, 3]),
            pending: false,
        };
        assert_eq!(done.id(), JobId(5));
        assert!(!done.is_pending());
        assert_eq!(done.into_buffer().unwrap(), vec![1, 2, 3]);
        // A job the driver did not reap stays pending; dropping it leaks the
        // buffer instead of freeing pages the card may still write.
        let mut j = Job {
            dev: &d,
            id: JobId(6),
            buf: Some(vec![0; 64]),
            pending: true,
        };
        let e = j.wait(Some(Duration::from_millis(1))).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
        assert!(j.is_pending());
        drop(j);
    }

    #[test]
    fn regions_free_explicitly_or_on_drop() {
        let d = not_metis();
        let r = Region {
            dev: &d,
            handle: 9,
            len: 4096,
            dev_addr: 0x1000,
            live: true,
        };
        assert_eq!(
            (r.handle(), r.len(), r.dev_addr(), r.is_empty()),
            (9, 4096, 0x1000, false)
        );
        let e = r.free().unwrap_err();
        assert_eq!(
            e,
            Error::Os {
                op: Op::MemFree,
                errno: libc::ENOTTY
            }
        );
        let r = Region {
            dev: &d,
            handle: 10,
            len: 4096,
            dev_addr: 0,
            live: true,
        };
        assert_eq!(r.into_handle(), 10);
        // Drop of a live region ignores the failure.
        drop(Region {
            dev: &d,
            handle: 11,
            len: 4096,
            dev_addr: 0,
            live: true,
        });
    }

    #[test]
    fn poll_reports_readiness() {
        let d = not_metis();
        // /dev/null is always readable.
        let s = d.poll(Some(Duration::ZERO)).unwrap();
        assert!(s.completed && s.any());
        // ... and never has priority data: POLLIN must not read as POLLPRI.
        assert!(!s.firmware_lost && !s.hangup && !s.error);
        let lost = PollStatus {
            firmware_lost: true,
            ..Default::default()
        };
        assert!(lost.any());
        assert!(!PollStatus::default().any());
    }

    #[test]
    fn poll_reports_pollpri_as_firmware_lost() {
        // TCP urgent data is the one POLLPRI source that needs no device:
        // it shows that POLLPRI is asked for and decoded.
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        // SAFETY: one valid byte, on a connected socket.
        let sent =
            unsafe { libc::send(client.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        let d = Device::from_fd(OwnedFd::from(server), "tcp");
        let s = d.poll(Some(Duration::from_secs(5))).unwrap();
        assert!(s.firmware_lost, "{s:?}");
        assert!(!s.hangup && !s.error, "{s:?}");
    }
}
