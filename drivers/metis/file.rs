// SPDX-License-Identifier: GPL-2.0

//! `/dev/metisN`: per-open state and the ioctl ABI of `uapi/linux/metis.h`.
//!
//! Every argument is validated before anything happens: the struct size and
//! version, flags and reserved fields, lengths, offsets (without overflow)
//! and region ownership. Files outlive the card: once it is unbound every
//! call fails with `ENODEV`.

use kernel::{
    fs::File,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        poll::PollTable,
        Arc,
    },
    time::{
        Delta,
        Instant,
        Monotonic, //
    },
    transmute::FromBytes,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader, //
    },
};

use crate::{
    card::{
        Card,
        ResetReason, //
    },
    fw::FwOwner,
    glue::{
        self,
        CardAccess, //
    },
    jobs::{
        timeout,
        DevSpec,
        DmaJob,
        DmaRequest,
        HostSpec,
        Jobs, //
    },
    registered::Registered,
    regs::Halves,
    uapi::{
        self,
        Ioctl, //
    },
};

/// Flags of `METIS_IOCTL_DMA_BUF`.
const DMA_BUF_FLAGS: u32 = uapi::DMA_TO_DEVICE | uapi::DMA_FROM_DEVICE | uapi::DMA_ASYNC;
/// Flags of `METIS_IOCTL_DMA`.
const DMA_FLAGS: u32 = DMA_BUF_FLAGS | uapi::DMA_REGISTERED;

// `open(2)` access modes (include/uapi/asm-generic/fcntl.h).
const O_RDONLY: i32 = 0;
const O_WRONLY: i32 = 1;
const O_RDWR: i32 = 2;

static NEXT_FILE_ID: Atomic<u64> = Atomic::new(1);

// Poll bits (include/uapi/asm-generic/poll.h; the same on every architecture this driver builds for).
const POLLIN: u32 = 0x0001;
const POLLPRI: u32 = 0x0002;
const POLLERR: u32 = 0x0008;
const POLLHUP: u32 = 0x0010;
const POLLRDNORM: u32 = 0x0040;

/// One open file.
pub(crate) struct OpenFile {
    card: Arc<Card>,
    /// Owner tag of the regions this file allocates.
    id: u64,
    jobs: Arc<Jobs>,
}

/// The region fields of a command, or'ed: non-zero if any is set.
fn region_fields(a: &uapi::Cmd) -> u64 {
    a.handle_in | a.offset_in | a.handle_out | a.offset_out
}

/// Whether a command that carries no echo bytes has any set.
fn echo_used(a: &uapi::Cmd) -> bool {
    a.echo.iter().any(|&b| b != 0)
}

/// Reads an argument struct and checks the versioning rules of the ABI.
fn read_arg<T: FromBytes>(reader: &mut UserSliceReader, size: usize, base: usize) -> Result<T> {
    let v: T = reader.read()?;
    // Bytes of a newer struct version this driver does not know must be zero.
    let mut rest = size - base;
    let mut chunk = [0u8; 64];
    while rest > 0 {
        let n = rest.min(chunk.len());
        reader.read_slice(&mut chunk[..n])?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Err(EINVAL);
        }
        rest -= n;
    }
    Ok(v)
}

fn check_header(size_field: u32, flags: u32, size: usize, allowed: u32) -> Result {
    if usize::try_from(size_field)? != size || flags & !allowed != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

impl OpenFile {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        let (which, size) = Ioctl::decode(cmd).ok_or(ENOTTY)?;
        let base = which.base_size();
        if size < base || size > PAGE_SIZE {
            return Err(EINVAL);
        }
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), size).reader_writer();
        match which {
            Ioctl::Info => {
                let mut a: uapi::Info = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                self.info(&mut a)?;
                writer.write(&a)?;
            }
            Ioctl::MemAlloc => {
                let mut a: uapi::MemAlloc = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                let gate = self.card.enter()?;
                let generation = self.card.status.lock().reset_count;
                let (handle, dev_addr, len) =
                    self.card.mem.lock().alloc(a.length, self.id, generation)?;
                // What the range's last owner left there is not this file's to read (H3).
                // Busy meanwhile: the handle is not the caller's yet, but it could guess it.
                if let Err(e) = self.card.scrub(gate.device(), dev_addr, len) {
                    self.card.mem.lock().put(handle, self.id);
                    let _ = self.card.mem.lock().free(handle, self.id);
                    return Err(e);
                }
                self.card.mem.lock().scrubbed(handle, self.id);
                // The copy to the caller may sleep: not while holding the card (M4).
                drop(gate);
                a.handle = handle;
                a.dev_addr = dev_addr;
                if let Err(e) = writer.write(&a) {
                    // The caller can't learn the handle: don't leak the region.
                    let _ = self.card.mem.lock().free(handle, self.id);
                    return Err(e);
                }
            }
            Ioctl::MemFree => {
                let a: uapi::MemFree = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                self.card.mem.lock().free(a.handle, self.id)?;
            }
            Ioctl::Dma => {
                let mut a: uapi::Dma = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, DMA_FLAGS)?;
                if a.reserved != 0 {
                    return Err(EINVAL);
                }
                let r = DmaRequest {
                    flags: a.flags,
                    host: HostSpec::User { addr: a.user_addr },
                    length: a.length,
                    dev: DevSpec::Region {
                        handle: a.handle,
                        offset: a.offset,
                    },
                };
                self.dma(core::slice::from_ref(&r), a.flags, a.timeout_ms, |id| {
                    a.job_id = id;
                    writer.write(&a)
                })?;
            }
            Ioctl::DmaBuf => {
                let mut a: uapi::DmaBuf = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, DMA_BUF_FLAGS)?;
                let r = DmaRequest {
                    flags: a.flags,
                    host: HostSpec::DmaBuf {
                        fd: a.fd,
                        offset: a.buf_offset,
                    },
                    length: a.length,
                    dev: DevSpec::Region {
                        handle: a.handle,
                        offset: a.offset,
                    },
                };
                self.dma(core::slice::from_ref(&r), a.flags, a.timeout_ms, |id| {
                    a.job_id = id;
                    writer.write(&a)
                })?;
            }
            Ioctl::DmaBatch => {
                let mut a: uapi::DmaBatch = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, uapi::DMA_ASYNC)?;
                let reqs = self.batch_entries(&a)?;
                self.dma(&reqs, a.flags, a.timeout_ms, |id| {
                    a.job_id = id;
                    writer.write(&a)
                })?;
            }
            Ioctl::BufExport => {
                let mut a: uapi::BufExport = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, uapi::BUF_READ | uapi::BUF_WRITE)?;
                let buf = self.export(&mut a)?;
                // An installed fd can't be withdrawn: it is installed only once its number
                // has reached the caller (security review L3); until then a failed copy
                // releases both.
                writer.write(&a)?;
                buf.install();
            }
            Ioctl::Wait => {
                let mut a: uapi::Wait = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                let limit =
                    (a.timeout_ms != 0).then(|| Delta::from_millis(i64::from(a.timeout_ms)));
                let start = Instant::<Monotonic>::now();
                let res = self.jobs.wait(a.job_id, limit, |status| {
                    a.status = status;
                    writer.write(&a)
                });
                if let (Err(e), Some(limit)) = (&res, limit) {
                    if *e == ERESTARTSYS {
                        // The time left goes back to the caller, so that the restarted call
                        // (SA_RESTART, or a retry with the same struct) ends when this one
                        // would have; 0 would mean no limit.
                        // Rounded up: each restart would otherwise shorten the limit.
                        let left = (limit - start.elapsed()).as_nanos();
                        let left = left.saturating_add(999_999) / 1_000_000;
                        a.timeout_ms = u32::try_from(left).unwrap_or(0).max(1);
                        writer.write(&a)?;
                    }
                }
                res?;
            }
            Ioctl::Cmd => {
                let mut a: uapi::Cmd = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                self.cmd(&mut a)?;
                writer.write(&a)?;
            }
            Ioctl::Reset => {
                let a: uapi::Reset = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, uapi::RESET_RELOAD_FIRMWARE)?;
                self.reset(&a)?;
            }
            Ioctl::FwChanged => {
                let a: uapi::FwChanged = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                self.card.firmware_changed()?;
            }
            Ioctl::BufRegister => {
                let mut a: uapi::BufRegister = read_arg(&mut reader, size, base)?;
                check_header(
                    a.size,
                    a.flags,
                    size,
                    uapi::DMA_TO_DEVICE | uapi::DMA_FROM_DEVICE,
                )?;
                a.handle = self.register(&a)?;
                if let Err(e) = writer.write(&a) {
                    // The caller can't learn the handle: don't keep the pages pinned for it.
                    self.unregister(a.handle)?;
                    return Err(e);
                }
            }
            Ioctl::BufUnregister => {
                let a: uapi::BufUnregister = read_arg(&mut reader, size, base)?;
                check_header(a.size, a.flags, size, 0)?;
                self.unregister(a.handle)?;
            }
        }
        Ok(0)
    }

    fn info(&self, a: &mut uapi::Info) -> Result {
        let card = &self.card;
        let st = *card.status.lock();
        a.abi_version = uapi::ABI_VERSION;
        a.vendor_id = card.pdev.vendor_id().as_raw();
        a.device_id = card.pdev.device_id();
        a.revision = card.pdev.revision_id();
        // CAST: small enum values.
        a.irq_mode = card.edma.irq_mode() as u8;
        a.iommu_mode = st.iommu_mode.uapi();
        // CAST: the states the driver records are 0..=4.
        a.fw_state = st.fw_state.raw() as u8;
        a.fw_version = st.fw_version;
        a.fw_if_version = st.fw_if_version;
        a.wr_channels = card.edma.wr_channels();
        a.rd_channels = card.edma.rd_channels();
        a.irq_vectors = st.irq_vectors;
        a.reset_count = st.reset_count;
        a.fw_owner = match card.fw.owner {
            FwOwner::Kernel => uapi::FW_KERNEL,
            FwOwner::Runtime => uapi::FW_RUNTIME,
        };
        a.mem_size = st.mem_size;
        a.mem_free = card.mem.lock().free_bytes();
        a.bytes_to_device = card.bytes_to_device.load(Relaxed);
        a.bytes_from_device = card.bytes_from_device.load(Relaxed);
        Ok(())
    }

    /// Runs DMA requests as one job, now or (`flags` has `METIS_DMA_ASYNC`) as an async
    /// job whose id goes back through `publish`.
    fn dma(
        &self,
        reqs: &[DmaRequest<'_>],
        flags: u32,
        timeout_ms: u32,
        publish: impl FnOnce(u64) -> Result,
    ) -> Result {
        let job = || DmaJob::prepare(&self.card, self.id, reqs, timeout_ms);
        if flags & uapi::DMA_ASYNC != 0 {
            self.jobs.spawn(job, publish)
        } else {
            job()?.run()
        }
    }

    /// The entries of a `METIS_IOCTL_DMA_BATCH`, each checked as `METIS_IOCTL_DMA`
    /// checks its argument; the batch's own fields decide what the entries may not.
    fn batch_entries(&self, a: &uapi::DmaBatch) -> Result<KVec<DmaRequest<'static>>> {
        let base = core::mem::size_of::<uapi::Dma>();
        let entry = usize::try_from(a.entry_size)?;
        if a.reserved != 0 || a.count == 0 || a.count > uapi::MAX_BATCH {
            return Err(EINVAL);
        }
        // A newer struct metis_dma may be longer; its unknown bytes must be zero (read_arg).
        if entry < base || entry > PAGE_SIZE {
            return Err(EINVAL);
        }
        let count = usize::try_from(a.count)?;
        // At most 64 entries of a page each: no overflow.
        let mut reader = UserSlice::new(
            UserPtr::from_addr(usize::try_from(a.entries)?),
            count * entry,
        )
        .reader();
        let mut reqs = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            let e: uapi::Dma = read_arg(&mut reader, entry, base)?;
            check_header(
                e.size,
                e.flags,
                entry,
                uapi::DMA_TO_DEVICE | uapi::DMA_FROM_DEVICE | uapi::DMA_REGISTERED,
            )?;
            // The batch has one timeout and one job id.
            if e.reserved != 0 || e.timeout_ms != 0 || e.job_id != 0 {
                return Err(EINVAL);
            }
            reqs.push(
                DmaRequest {
                    flags: e.flags,
                    host: HostSpec::User { addr: e.user_addr },
                    length: e.length,
                    dev: DevSpec::Region {
                        handle: e.handle,
                        offset: e.offset,
                    },
                },
                GFP_KERNEL,
            )?;
        }
        Ok(reqs)
    }

    /// `METIS_IOCTL_BUF_REGISTER`: pins and maps the buffer, and returns its handle.
    fn register(&self, a: &uapi::BufRegister) -> Result<u64> {
        let access = match a.flags {
            uapi::DMA_TO_DEVICE => CardAccess::READS,
            uapi::DMA_FROM_DEVICE => CardAccess::WRITES,
            f if f == uapi::DMA_TO_DEVICE | uapi::DMA_FROM_DEVICE => CardAccess::BOTH,
            _ => return Err(EINVAL),
        };
        if a.length == 0 || a.length > uapi::DMA_MAX_LENGTH {
            return Err(EINVAL);
        }
        a.user_addr.checked_add(a.length).ok_or(EINVAL)?;
        // Refused before anything is pinned when the file is at its limit.
        if self.card.registered.lock().count(self.id) >= uapi::MAX_REGISTERED {
            return Err(EDQUOT);
        }
        // Pinning may sleep on the caller's memory: before the card is held (M4).
        let pin = glue::UserPin::new(
            usize::try_from(a.user_addr)?,
            usize::try_from(a.length)?,
            access,
        )?;
        let gate = self.card.enter()?;
        let map = pin.map(gate.device())?;
        let buf = Arc::new(
            Registered::new(map, a.user_addr, a.length, access),
            GFP_KERNEL,
        )?;
        let res = self.card.registered.lock().insert(self.id, buf);
        // A refused buffer is unmapped here, while the card is held.
        res.map_err(|(e, _buf)| e)
    }

    /// `METIS_IOCTL_BUF_UNREGISTER`, and the undoing of a registration whose handle the
    /// caller could not be told.
    fn unregister(&self, handle: u64) -> Result {
        // Unmapped while the card is held (by a job still using it, or here); once
        // unbind has begun, unbind unmaps it.
        let _gate = self.card.enter()?;
        let buf = self.card.registered.lock().remove(self.id, handle)?;
        drop(buf);
        Ok(())
    }

    /// `METIS_IOCTL_BUF_EXPORT`: the buffer, its fd not installed yet.
    fn export(&self, a: &mut uapi::BufExport) -> Result<glue::ExportedBuf> {
        if a.reserved != 0 || a.length == 0 || a.length > uapi::BUF_MAX_LENGTH {
            return Err(EINVAL);
        }
        let fd_flags = match a.flags & (uapi::BUF_READ | uapi::BUF_WRITE) {
            uapi::BUF_READ => O_RDONLY,
            uapi::BUF_WRITE => O_WRONLY,
            0 => return Err(EINVAL),
            _ => O_RDWR,
        };
        let len = usize::try_from(a.length)?
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(EINVAL)?;
        let buf = glue::ExportedBuf::new(len, fd_flags)?;
        a.fd = buf.fd();
        a.length = u64::try_from(len)?;
        Ok(buf)
    }

    fn reset(&self, a: &uapi::Reset) -> Result {
        // A reset wipes every file's device memory and fails every file's jobs: only an
        // administrator, or a caller that has the card to itself, may do that to the others.
        if !glue::capable_sys_admin() && self.card.pm.awake.lock().files > 1 {
            return Err(EPERM);
        }
        if a.flags & uapi::RESET_RELOAD_FIRMWARE != 0 {
            // The runtime loads a runtime-owned card's firmware, not the driver.
            if self.card.fw.owner == FwOwner::Runtime {
                return Err(EINVAL);
            }
            let gate = self.card.enter()?;
            self.card.fetch_firmware(gate.device())?;
            drop(gate);
        }
        self.card.reset(ResetReason::Requested)
    }

    fn cmd(&self, a: &mut uapi::Cmd) -> Result {
        let card = &self.card;
        // The commands are the model protocol: never sent to a card whose firmware is not ours.
        if card.fw.owner == FwOwner::Runtime {
            return Err(EOPNOTSUPP);
        }
        let timeout = timeout(a.timeout_ms)?;
        let gate = card.enter()?;
        let generation = card.status.lock().reset_count;
        let mut args = [0u32; 9];
        // The regions a command holds (RUN: input and output). A fixed array: nothing may
        // fail between taking a region and recording it, or the region would stay busy.
        let mut held = [0u64; 2];
        let mut n_held = 0;
        let res = (|| -> Result<(u32, usize)> {
            let mut resolve = |handle: u64, offset: u64, len: u64| -> Result<u64> {
                let slot = held.get_mut(n_held).ok_or(EINVAL)?;
                let addr = card
                    .mem
                    .lock()
                    .resolve(handle, self.id, offset, len, generation)?;
                *slot = handle;
                n_held += 1;
                Ok(addr)
            };
            let split = |v: u64| -> (u32, u32) {
                let h = Halves::of(v);
                (h.lo, h.hi)
            };
            let n = match a.opcode {
                uapi::CMD_ECHO => {
                    let len = usize::try_from(a.echo_len)?;
                    if len > uapi::ECHO_MAX
                        || a.op != 0
                        || a.length != 0
                        || a.arg != 0
                        || region_fields(a) != 0
                        || a.echo[len..].iter().any(|&b| b != 0)
                    {
                        return Err(EINVAL);
                    }
                    return card.echo(&mut a.echo[..len], timeout).map(|()| (0, 0));
                }
                uapi::CMD_CHECKSUM | uapi::CMD_FILL => {
                    if a.op != 0
                        || a.echo_len != 0
                        || echo_used(a)
                        || a.handle_out != 0
                        || a.offset_out != 0
                        || (a.opcode == uapi::CMD_CHECKSUM && a.arg != 0)
                    {
                        return Err(EINVAL);
                    }
                    let addr = resolve(a.handle_in, a.offset_in, a.length)?;
                    (args[0], args[1]) = split(addr);
                    (args[2], args[3]) = split(a.length);
                    args[4] = a.arg;
                    if a.opcode == uapi::CMD_FILL {
                        5
                    } else {
                        4
                    }
                }
                uapi::CMD_RUN => {
                    if a.op > 3 || a.echo_len != 0 || echo_used(a) {
                        return Err(EINVAL);
                    }
                    let input = resolve(a.handle_in, a.offset_in, a.length)?;
                    let output = resolve(a.handle_out, a.offset_out, a.length)?;
                    (args[0], args[1]) = split(input);
                    (args[2], args[3]) = split(output);
                    (args[4], args[5]) = split(a.length);
                    args[6] = a.op;
                    args[7] = a.arg;
                    8
                }
                _ => return Err(EINVAL),
            };
            let result = card.command_with_result(a.opcode, &args[..n], timeout)?;
            Ok((result, n))
        })();
        // A command the card never finished may still write its regions: the card is reset
        // before they are released (H2). The reset waits for everyone to leave the gate.
        if res.is_err() && n_held > 0 && card.recovery.lock().is_some() {
            drop(gate);
            card.recover_if_needed();
        }
        let mut mem = card.mem.lock();
        for h in held.iter().take(n_held) {
            mem.put(*h, self.id);
        }
        drop(mem);
        let (result, _) = res?;
        a.result = result;
        Ok(())
    }
}

impl OpenFile {
    /// `open` of `/dev/metisN`.
    pub(crate) fn open(card: Arc<Card>) -> Result<KBox<Self>> {
        // `open` runs under the misc core's global lock: nothing here waits for the card
        // (a reset, a resume), or every open of every misc device would wait with it
        // (security review M2). Calls on the file wait in the gate instead.
        if card.closing() {
            return Err(ENODEV);
        }
        // A runtime-suspended card is in an outage that only its resume ends: queue it.
        card.file_wake()?;
        let jobs = Jobs::new().inspect_err(|_| card.file_sleep())?;
        let f = OpenFile {
            card,
            id: NEXT_FILE_ID.fetch_add(1, Relaxed),
            jobs,
        };
        // Dropping `f` on failure lets the card sleep again.
        Ok(KBox::new(f, GFP_KERNEL)?)
    }

    /// `release`: waits for the file's jobs, then frees its regions and state.
    pub(crate) fn release(self: KBox<Self>) {
        // Jobs end within their timeout, or at once when the card goes away or is reset.
        self.jobs.drain();
        self.card.mem.lock().free_owner(self.id);
        // Unmapped under the tables' locks: an unbind emptying them meanwhile waits.
        self.card.registered.lock().drop_owner(self.id);
        self.card.attachments.lock().drop_owner(self.id);
    }

    /// `poll`: readable while a completed job waits to be reaped; priority data while a
    /// runtime-owned card waits for its firmware; hang-up once the card is gone.
    pub(crate) fn poll(&self, file: &File, pt: &PollTable<'_>) -> u32 {
        pt.register_wait(file, &self.jobs.done);
        pt.register_wait(file, &self.card.fw.event);
        let mut mask = 0;
        if self.jobs.any_completed() {
            mask |= POLLIN | POLLRDNORM;
        }
        // Runtime-owned: the card lost its firmware and the runtime has not loaded a new one.
        if self.card.fw.lost.load(Relaxed) {
            mask |= POLLPRI;
        }
        if self.card.edma.events.lock().dead {
            mask |= POLLHUP | POLLERR;
        }
        mask
    }

    /// `unlocked_ioctl` and `compat_ioctl`.
    pub(crate) fn ioctl_call(&self, cmd: u32, arg: usize) -> Result<isize> {
        let res = self.ioctl(cmd, arg);
        // A card that stopped obeying during the call is reset now that the call left the gate.
        self.card.recover_if_needed();
        res
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.card.file_sleep();
    }
}
