// SPDX-License-Identifier: GPL-2.0

//! Jobs: what one DMA request needs while it runs (the mapped host buffer,
//! the device-memory region, a seat in the card's gate), and the async jobs
//! of a file, run on a workqueue and reaped with `METIS_IOCTL_WAIT`.
//!
//! The path of a DMA ioctl is `file.rs` (arguments) → here (the job) →
//! `edma.rs` (the transfer), and back up only with its result.

use kernel::{
    new_mutex, new_poll_condvar,
    prelude::*,
    scatterlist::SGTable,
    sync::{
        atomic::Relaxed,
        poll::PollCondVar,
        Arc,
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
};

use crate::{
    card::Card,
    edma::{
        Deadline,
        Dir,
        Segment, //
    },
    fw::FwOwner,
    gate::OwnedAdmission,
    glue::{
        self,
        CardAccess, //
    },
    mem,
    ratelimit::dev_warn_limited,
    registered::Registered,
    regs::L2_BASE,
    uapi,
};

/// Default and largest job timeouts.
// TIMEOUT: 1 GiB at a tenth of a Gen3 x4 link takes about 3 s; 30 s leaves room for slow hosts.
pub(crate) const DEFAULT_TIMEOUT_MS: u32 = 30_000;
pub(crate) const MAX_TIMEOUT_MS: u32 = 600_000;

/// A job's timeout from its `timeout_ms` argument (0: the default).
pub(crate) fn timeout(ms: u32) -> Result<Delta> {
    match ms {
        0 => Ok(Delta::from_millis(i64::from(DEFAULT_TIMEOUT_MS))),
        ms if ms <= MAX_TIMEOUT_MS => Ok(Delta::from_millis(i64::from(ms))),
        _ => Err(EINVAL),
    }
}

/// An async job of a file: pending (`status` is `None`) or completed and not yet reaped.
struct JobEntry {
    id: u64,
    status: Option<i32>,
    /// A `WAIT` is handing the status to its caller (outside the lock); others wait.
    reaping: bool,
}

impl JobEntry {
    /// Completed, and nobody is reaping it.
    fn ready(&self) -> Option<i32> {
        self.status.filter(|_| !self.reaping)
    }
}

struct JobList {
    next_id: u64,
    entries: KVec<JobEntry>,
}

/// The async jobs of one file, shared with the work items that run them.
#[pin_data]
pub(crate) struct Jobs {
    #[pin]
    list: Mutex<JobList>,
    /// Signalled when a job completes; also what `poll` waits on.
    #[pin]
    pub(crate) done: PollCondVar,
}

impl Jobs {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                list <- new_mutex!(
                    JobList {
                        next_id: 1,
                        entries: KVec::new()
                    },
                    "metis_jobs"
                ),
                done <- new_poll_condvar!("metis_jobs_done"),
            }),
            GFP_KERNEL,
        )
    }

    /// Starts an async job; its id goes back to the caller through `publish`
    /// before the job is prepared (and so before it can complete).
    pub(crate) fn spawn(
        self: &Arc<Self>,
        prepare: impl FnOnce() -> Result<DmaJob>,
        publish: impl FnOnce(u64) -> Result,
    ) -> Result {
        let id = self.reserve()?;
        // The id goes to the caller first: a copy to user memory may sleep, and the job
        // holds the card once prepared (M4). A failed call's id means nothing.
        if let Err(e) = publish(id) {
            self.cancel(id);
            return Err(e);
        }
        let job = match prepare() {
            Ok(j) => j,
            Err(e) => {
                self.cancel(id);
                return Err(e);
            }
        };
        let jobs = self.clone();
        run_async(job, move |res| jobs.complete(id, res)).inspect_err(|_| self.cancel(id))
    }

    /// Reserves an id for a new job, within [`uapi::MAX_JOBS`].
    fn reserve(&self) -> Result<u64> {
        let mut l = self.list.lock();
        if l.entries.len() >= uapi::MAX_JOBS {
            return Err(EAGAIN);
        }
        let id = l.next_id;
        l.next_id += 1;
        l.entries.push(
            JobEntry {
                id,
                status: None,
                reaping: false,
            },
            GFP_KERNEL,
        )?;
        Ok(id)
    }

    /// Forgets a job that never started.
    fn cancel(&self, id: u64) {
        self.list.lock().entries.retain(|e| e.id != id);
    }

    fn complete(&self, id: u64, res: Result) {
        let status = match res {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        let mut l = self.list.lock();
        if let Some(e) = l.entries.iter_mut().find(|e| e.id == id) {
            e.status = Some(status);
        }
        drop(l);
        self.done.notify_all();
    }

    /// Waits for job `id` (without limit if `limit` is `None`) and hands its
    /// status to `report`; the job is reaped only if `report` succeeds.
    pub(crate) fn wait(
        &self,
        id: u64,
        limit: Option<Delta>,
        report: impl FnOnce(i32) -> Result,
    ) -> Result {
        let start = Instant::<Monotonic>::now();
        let mut l = self.list.lock();
        loop {
            let e = l.entries.iter_mut().find(|e| e.id == id).ok_or(ENOENT)?;
            if let Some(status) = e.ready() {
                // The copy to the caller may fault and sleep (userfaultfd, FUSE): not under
                // the lock the job's completion and the file's other calls take (security
                // review L5). Meanwhile the entry is the caller's.
                e.reaping = true;
                drop(l);
                let res = report(status);
                let mut l = self.list.lock();
                if res.is_ok() {
                    l.entries.retain(|e| e.id != id);
                } else if let Some(e) = l.entries.iter_mut().find(|e| e.id == id) {
                    // Not delivered: the job stays, to be reaped again.
                    e.reaping = false;
                }
                drop(l);
                self.done.notify_all();
                return res;
            }
            let signalled = match limit {
                None => self.done.wait_interruptible(&mut l),
                Some(limit) => {
                    let elapsed = start.elapsed();
                    if elapsed >= limit {
                        return Err(ETIMEDOUT);
                    }
                    let left = u32::try_from((limit - elapsed).as_millis()).unwrap_or(u32::MAX);
                    matches!(
                        self.done
                            .wait_interruptible_timeout(&mut l, msecs_to_jiffies(left.max(1))),
                        CondVarTimeoutResult::Signal { .. }
                    )
                }
            };
            if signalled {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// Waits until no job of the file runs any more (the file is closing).
    pub(crate) fn drain(&self) {
        let mut l = self.list.lock();
        while l.entries.iter().any(|e| e.status.is_none()) {
            self.done.wait(&mut l);
        }
    }

    pub(crate) fn any_completed(&self) -> bool {
        self.list.lock().entries.iter().any(|e| e.ready().is_some())
    }
}

/// Runs a prepared job on the driver's job queue and hands its result to `done` there;
/// `EAGAIN` when the card has [`uapi::MAX_CARD_JOBS`] queued already (`done` is not called
/// when this fails).
pub(crate) fn run_async(job: DmaJob, done: impl FnOnce(Result) + Send + 'static) -> Result {
    let card = job.card();
    // Every file may queue `MAX_JOBS`; the card takes this many from all of them.
    if card.async_jobs.fetch_add(1, Relaxed) >= uapi::MAX_CARD_JOBS {
        card.async_jobs.fetch_sub(1, Relaxed);
        return Err(EAGAIN);
    }
    let Some(queue) = crate::shared().map(|s| s.jobs.queue()) else {
        card.async_jobs.fetch_sub(1, Relaxed);
        return Err(ENODEV);
    };
    let worker_card = card.clone();
    let spawned = queue.try_spawn(GFP_KERNEL, move || {
        done(job.run());
        // A card that stopped obeying during the job is reset now that the job left the gate.
        worker_card.recover_if_needed();
        worker_card.async_jobs.fetch_sub(1, Relaxed);
    });
    if spawned.is_err() {
        card.async_jobs.fetch_sub(1, Relaxed);
        return Err(ENOMEM);
    }
    Ok(())
}

/// Returns a region's job reference when dropped, and gives back a range the job
/// reserved (`reserved`: a device address its caller named).
struct RegionRef {
    card: Arc<Card>,
    pub(crate) handle: u64,
    owner: u64,
    reserved: bool,
}

impl Drop for RegionRef {
    fn drop(&mut self) {
        let mut mem = self.card.mem.lock();
        mem.put(self.handle, self.owner);
        if self.reserved {
            // Not busy any more (put above): freeing it can't fail.
            let _ = mem.free(self.handle, self.owner);
        }
    }
}

/// Holds a device range its caller named (the vendor ABI). On a card whose firmware this
/// driver loads: reserved in the memory regions are made from (`EINVAL` outside, `EBUSY` on
/// a region), so that no region is made there while the job runs. On a runtime-owned card,
/// whose memory is the runtime's: checked against the card's memory map, clear of the L2
/// this driver reads its setup from or writes (`Iface::driver_areas`).
fn hold_address(card: &Arc<Card>, addr: u64, len: u64) -> Result<Option<RegionRef>> {
    if card.fw.owner == FwOwner::Runtime {
        let iface = (*card.l2.iface.lock()).ok_or(ENODEV)?;
        let l2_end = L2_BASE + card.pdev.resource_len(2)?;
        let owned = iface.driver_areas();
        mem::check_runtime_range(addr, len, L2_BASE..l2_end, iface.memory_map[0], &owned)?;
        return Ok(None);
    }
    Ok(Some(RegionRef {
        card: card.clone(),
        handle: card.mem.lock().reserve(addr, len)?,
        owner: mem::RESERVED,
        reserved: true,
    }))
}

/// The host side of a transfer, made ready before the card is held: pinned, or
/// its dma-buf's other users waited for.
enum Source {
    User(glue::UserPin),
    /// `offset` bytes into a registered buffer, mapped already.
    Registered {
        buf: Arc<Registered>,
        offset: u64,
    },
    /// Through `fd`, or (`None`) the buffer a vendor file attached.
    DmaBuf {
        fd: Option<i32>,
        offset: u64,
        map: glue::DmaBufMap,
    },
}

impl Source {
    /// `[offset, offset + length)` of `map`'s buffer (the sum checked for overflow).
    fn dma_buf(map: glue::DmaBufMap, fd: Option<i32>, offset: u64, length: u64) -> Result<Self> {
        if offset + length > map.size() {
            return Err(EINVAL);
        }
        Ok(Self::DmaBuf { fd, offset, map })
    }
}

/// The host side of a transfer, mapped for the card.
enum HostBuf {
    /// A pinned user buffer, mapped whole.
    User(glue::UserMap),
    /// `[offset, offset + length)` of a registered buffer.
    Registered { buf: Arc<Registered>, offset: u64 },
    /// `[offset, offset + length)` of a dma-buf, through the card's mapping of it (dropped
    /// before the job's hold on the buffer, which signals the card's fence).
    DmaBuf {
        att: Arc<glue::DmaBufAttach>,
        map: glue::DmaBufMap,
        offset: u64,
    },
}

impl HostBuf {
    /// Appends the card's view of `length` bytes, landing at `dev_addr` on the card, to
    /// `segs`: contiguous DMA runs, each at most 2 GiB (an element moves at most 4 GiB - 1).
    ///
    /// A fragmented 1 GiB buffer has 262 144 runs (6 MiB of segments): the vector may
    /// fall back to vmalloc (security review M8).
    fn segments(&self, length: u64, dev_addr: u64, segs: &mut KVVec<Segment>) -> Result {
        let (sgt, skip) = match self {
            Self::User(u) => (u.sgt(), 0),
            Self::Registered { buf, offset } => (buf.map().sgt(), *offset),
            Self::DmaBuf { att, offset, .. } => (att.sgt(), *offset),
        };
        sgt_segments(sgt, skip, length, dev_addr, segs)
    }
}

/// Appends to `segs` the card's view of `length` bytes of a mapped table, `skip` bytes in,
/// landing at `dev_addr` on the card: contiguous DMA runs, each at most 2 GiB (an element
/// moves at most 4 GiB - 1).
fn sgt_segments(
    sgt: &SGTable,
    mut skip: u64,
    length: u64,
    mut dev_addr: u64,
    segs: &mut KVVec<Segment>,
) -> Result {
    let mut left = length;
    for e in sgt.iter() {
        if left == 0 {
            break;
        }
        let (mut addr, mut len) = (e.dma_address(), e.dma_len());
        if skip >= len {
            skip -= len;
            continue;
        }
        addr += skip;
        len = (len - skip).min(left);
        skip = 0;
        left -= len;
        while len > 0 {
            let n = len.min(1 << 31);
            segs.push(
                Segment {
                    addr,
                    len: u32::try_from(n)?,
                    dev: dev_addr,
                },
                GFP_KERNEL,
            )?;
            addr += n;
            dev_addr = dev_addr.checked_add(n).ok_or(EOVERFLOW)?;
            len -= n;
        }
    }
    if left != 0 {
        // The mapping is shorter than the buffer it was checked against.
        return Err(EINVAL);
    }
    Ok(())
}

/// The card's mapping of `map`'s buffer. Through a read-write fd: the bidirectional one
/// `owner`'s jobs made before, or a new one, kept for the next. Through a read-only or
/// write-only fd: one for this job's direction alone, so that the card's IOMMU view
/// grants no more than the fd does (security review L1). Called while the card is held:
/// an attachment the cache evicts is unmapped here.
fn dmabuf_attachment(
    card: &Card,
    owner: u64,
    map: &glue::DmaBufMap,
    dev: &kernel::device::Device<kernel::device::Bound>,
) -> Result<Arc<glue::DmaBufAttach>> {
    if !map.read_write() {
        return Ok(Arc::new(
            glue::DmaBufAttach::new(map, dev, false)?,
            GFP_KERNEL,
        )?);
    }
    let id = map.id();
    if let Some(att) = card.attachments.lock().get(owner, id) {
        return Ok(att);
    }
    let att = Arc::new(glue::DmaBufAttach::new(map, dev, true)?, GFP_KERNEL)?;
    let evicted = card.attachments.lock().insert(owner, id, att.clone());
    // Unmapped outside the lock (the exporter may sleep), while the card is held.
    drop(evicted);
    Ok(att)
}

/// One request of a job, ready for the card: the mapped host buffer, the
/// region it moves to or from, and where in it.
///
/// Fields drop in order: the buffer is unmapped (the card is done with it), then
/// the region released.
struct Part {
    host: HostBuf,
    _region: Option<RegionRef>,
    dir: Dir,
    dev_addr: u64,
    length: u64,
}

/// A request checked and made ready before the card is held.
struct Staged {
    source: Source,
    dir: Dir,
}

/// A DMA job: one request (`METIS_IOCTL_DMA`, `METIS_IOCTL_DMA_BUF`) or a batch
/// (`METIS_IOCTL_DMA_BATCH`), with everything it needs and a seat in the card's gate.
///
/// Fields drop in order: the parts go (unmapped, regions released) while the device
/// is still held bound by `gate`.
pub(crate) struct DmaJob {
    parts: KVec<Part>,
    gate: OwnedAdmission<Card>,
    timeout: Delta,
}

impl DmaJob {
    /// Validates the requests of a job and prepares it: admission, regions, mapped host
    /// buffers. All or nothing: a request that fails undoes what the others took.
    pub(crate) fn prepare(
        card: &Arc<Card>,
        owner: u64,
        reqs: &[DmaRequest<'_>],
        timeout_ms: u32,
    ) -> Result<Self> {
        if reqs.is_empty() {
            return Err(EINVAL);
        }
        let timeout = timeout(timeout_ms)?;
        // Pinning may sleep on the caller's memory for as long as that takes, and a
        // dma-buf's other users (a GPU, a display) may take the job's timeout: both before
        // the card is held, so that a reset, a suspend or an unbind never waits for them (M4).
        let mut staged = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
        for r in reqs {
            staged.push(Self::stage(card, owner, r, timeout)?, GFP_KERNEL)?;
        }
        let gate = card.enter_owned()?;
        let generation = card.status.lock().reset_count;
        let dev = gate.device();
        let mut parts = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
        for (r, st) in reqs.iter().zip(staged) {
            let (dev_addr, region) = match r.dev {
                DevSpec::Region { handle, offset } => (
                    card.mem
                        .lock()
                        .resolve(handle, owner, offset, r.length, generation)?,
                    Some(RegionRef {
                        card: card.clone(),
                        handle,
                        owner,
                        reserved: false,
                    }),
                ),
                DevSpec::Address(addr) => (addr, hold_address(card, addr, r.length)?),
            };
            let host = match st.source {
                Source::User(pinned) => HostBuf::User(pinned.map(dev)?),
                Source::Registered { buf, offset } => HostBuf::Registered { buf, offset },
                Source::DmaBuf { fd, offset, map } => {
                    let att = dmabuf_attachment(card, owner, &map, dev).inspect_err(|e| {
                        let (l, p) = (&card.log_limit, &card.pdev);
                        match fd {
                            Some(fd) => dev_warn_limited!(
                                l,
                                p,
                                "can't give the card dma-buf fd {} ({:?}): its exporter refused \
                                 to attach or map it for this device\n",
                                fd,
                                e
                            ),
                            None => dev_warn_limited!(
                                l,
                                p,
                                "can't give the card the dma-buf DMA_ATTACH attached ({:?}): its \
                                 exporter refused to attach or map it for this device\n",
                                e
                            ),
                        }
                    })?;
                    HostBuf::DmaBuf { att, map, offset }
                }
            };
            parts.push(
                Part {
                    host,
                    _region: region,
                    dir: st.dir,
                    dev_addr,
                    length: r.length,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            parts,
            gate,
            timeout,
        })
    }

    /// Checks one request and readies its host side (pinned, found registered, or its
    /// dma-buf's other users waited for), before the card is held.
    fn stage(card: &Arc<Card>, owner: u64, r: &DmaRequest<'_>, timeout: Delta) -> Result<Staged> {
        let dir = match r.flags & (uapi::DMA_TO_DEVICE | uapi::DMA_FROM_DEVICE) {
            uapi::DMA_TO_DEVICE => Dir::Rd,
            uapi::DMA_FROM_DEVICE => Dir::Wr,
            _ => return Err(EINVAL),
        };
        if r.length == 0 || r.length > uapi::DMA_MAX_LENGTH {
            return Err(EINVAL);
        }
        let registered = r.flags & uapi::DMA_REGISTERED != 0;
        match r.host {
            HostSpec::User { addr } => addr.checked_add(r.length).map(drop).ok_or(EINVAL)?,
            HostSpec::DmaBuf { fd, offset } => {
                if fd < 0 {
                    return Err(EBADF);
                }
                offset.checked_add(r.length).map(drop).ok_or(EINVAL)?
            }
            HostSpec::Attached { offset, .. } => {
                offset.checked_add(r.length).map(drop).ok_or(EINVAL)?
            }
        }
        let access = match dir {
            Dir::Rd => CardAccess::READS,
            Dir::Wr => CardAccess::WRITES,
        };
        let source = match r.host {
            HostSpec::User { addr } if registered => {
                let (buf, offset) = card.registered.lock().find(owner, addr, r.length, access)?;
                Source::Registered { buf, offset }
            }
            HostSpec::User { addr } => Source::User(glue::UserPin::new(
                usize::try_from(addr)?,
                usize::try_from(r.length)?,
                access,
            )?),
            HostSpec::DmaBuf { fd, offset } => Source::dma_buf(
                glue::DmaBufMap::get(fd, dir == Dir::Rd, timeout)?,
                Some(fd),
                offset,
                r.length,
            )?,
            HostSpec::Attached { buf, offset } => Source::dma_buf(
                glue::DmaBufMap::get_held(buf, dir == Dir::Rd, timeout)?,
                None,
                offset,
                r.length,
            )?,
        };
        Ok(Staged { source, dir })
    }

    /// The card the job runs on.
    pub(crate) fn card(&self) -> Arc<Card> {
        self.gate.owner().clone()
    }

    /// Runs the job: the parts of each direction as one transfer (one list, one
    /// doorbell, one interrupt while they fit in a channel's ring), to the card first.
    pub(crate) fn run(mut self) -> Result {
        let card = self.gate.owner().clone();
        let deadline = Deadline::new(self.timeout);
        for dir in [Dir::Rd, Dir::Wr] {
            let moved = Self::run_dir(&card, &self.parts, dir, &deadline);
            if let Err(e) = moved {
                for p in self.parts.iter_mut().filter(|p| p.dir == dir) {
                    if let HostBuf::DmaBuf { map, .. } = &mut p.host {
                        map.fail(e);
                    }
                }
            }
            moved?;
        }
        Ok(())
        // `self` drops here: unmapped (syncing for the CPU) after the card is done.
    }

    /// Moves the parts of one direction, if the job has any.
    fn run_dir(card: &Card, parts: &[Part], dir: Dir, deadline: &Deadline) -> Result {
        let mut segs = KVVec::new();
        let mut bytes = 0u64;
        for p in parts.iter().filter(|p| p.dir == dir) {
            p.host.segments(p.length, p.dev_addr, &mut segs)?;
            bytes += p.length;
            // A registered buffer stays mapped: its bytes go to the card, and come back to
            // the CPU after the card wrote them, here (a per-job mapping does that as it
            // maps and unmaps).
            if let HostBuf::Registered { buf, .. } = &p.host {
                buf.map().sync(false);
            }
        }
        if segs.is_empty() {
            return Ok(());
        }
        // The second direction gets what the first left of the job's time.
        card.transfer_within(dir, &segs, deadline)?;
        if dir == Dir::Wr {
            for p in parts.iter().filter(|p| p.dir == dir) {
                if let HostBuf::Registered { buf, .. } = &p.host {
                    buf.map().sync(true);
                }
            }
        }
        let counter = match dir {
            Dir::Rd => &card.bytes_to_device,
            Dir::Wr => &card.bytes_from_device,
        };
        counter.fetch_add(bytes, Relaxed);
        Ok(())
    }
}

/// Where the host side of a DMA request is.
#[derive(Clone, Copy)]
pub(crate) enum HostSpec<'a> {
    User {
        addr: u64,
    },
    DmaBuf {
        fd: i32,
        offset: u64,
    },
    /// `offset` bytes into the dma-buf a vendor file attached (`DMA_ATTACH`).
    Attached {
        buf: &'a glue::DmaBufRef,
        offset: u64,
    },
}

/// Where on the card a DMA request goes to or comes from.
#[derive(Clone, Copy)]
pub(crate) enum DevSpec {
    /// `offset` bytes into a region of the caller's file.
    Region { handle: u64, offset: u64 },
    /// A device address the caller names (the vendor ABI's `USR_DMA_XFER` and `DMA_XFER`),
    /// held as `hold_address` says.
    Address(u64),
}

/// A DMA request, from `METIS_IOCTL_DMA`, `METIS_IOCTL_DMA_BUF`, an entry of
/// `METIS_IOCTL_DMA_BATCH`, or the vendor node's `USR_DMA_XFER`.
pub(crate) struct DmaRequest<'a> {
    pub(crate) flags: u32,
    pub(crate) host: HostSpec<'a>,
    pub(crate) length: u64,
    pub(crate) dev: DevSpec,
}
