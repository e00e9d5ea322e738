// SPDX-License-Identifier: GPL-2.0

//! The opt-in second face of the driver: a node per card that speaks the
//! vendor driver's ABI (`vendor_abi=1.4.16` or `1.6.2`), so that the vendor's
//! runtime finds its card, without the holes of the vendor's driver
//! (`docs/vendor-abi.md`; the ABI from `../shared/docs/vendor-driver-facts.md`
//! §2, written anew).
//!
//! Offered: the node names, class and version; the bookkeeping commands
//! (AI-core contexts, device properties, the message lock, resource sizes with
//! physical addresses only for `CAP_SYS_ADMIN`, DMA statistics); transfers to
//! device addresses the caller names, from user memory (`USR_DMA_XFER`) and from
//! an attached dma-buf (`DMA_ATTACH`, `DMA_XFER`, sync or one async per file);
//! the runtime's firmware boot (`DYNMEM_LOAD`); the waits for the firmware's
//! interrupt sources (`MSI`, `CLEAN_MSI`, `MSI_ATTACH`, `CLEAR_POLL_EVENT`,
//! `poll`); the BAR2 mapping. Device addresses are held as `jobs.rs:
//! hold_address` says. Refused for good: BAR0, peer-to-peer DMA to a caller's
//! bus address and physical addresses of user pages (`EPERM`). The firmware-trace
//! commands fail with `EOPNOTSUPP` and say so once in the log.

use kernel::{
    bindings, new_condvar, new_mutex, pci,
    prelude::*,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    card::Card,
    edma::Dir,
    fw::FwOwner,
    glue::{
        self,
        VendorNode, //
    },
    jobs::{
        self,
        DevSpec,
        DmaJob,
        DmaRequest,
        HostSpec, //
    },
    stats::ChannelStats,
    uapi, //
};

/// The vendor ABI level a node presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Driver 1.4.16 (Voyager SDK 1.6): nodes `metis-D:B:S`.
    V1_4_16,
    /// Driver 1.6.2 (SDK 1.8): nodes `metis-D-B-S`, and the old name too.
    V1_6_2,
}

impl Level {
    /// The level `vendor_abi=` asks for: `None` when it is not given; an error (the
    /// module does not load) for a level this driver does not present.
    pub(crate) fn from_param() -> Result<Option<Self>> {
        let Some(p) = crate::glue::vendor_abi_param() else {
            return Ok(None);
        };
        match p.to_bytes() {
            b"1.4.16" => Ok(Some(Self::V1_4_16)),
            b"1.6.2" => Ok(Some(Self::V1_6_2)),
            _ => {
                pr_err!(
                    "metis: vendor_abi={} is not a level this driver presents: use 1.4.16 or \
                     1.6.2 (docs/vendor-abi.md)\n",
                    p.to_str().unwrap_or("?")
                );
                Err(EINVAL)
            }
        }
    }

    /// `/sys/class/metis/version`.
    pub(crate) fn version(self) -> &'static CStr {
        match self {
            Self::V1_4_16 => c"1.4.16",
            Self::V1_6_2 => c"1.6.2",
        }
    }
}

/// The AI cores of a Metis (`GET_DEV_PROPERTY` AICORE_COUNT).
const AICORES: u32 = 4;

/// What the vendor nodes of one card share.
#[pin_data]
pub(crate) struct VendorCard {
    card: Arc<Card>,
    level: Level,
    /// AI cores held by contexts, one bit each; also the lock for the files' `ctx`.
    #[pin]
    cores: Mutex<u8>,
    /// The open file holding the message lock (0: free).
    #[pin]
    msg_owner: Mutex<u64>,
    #[pin]
    msg_free: CondVar,
    /// Vendor commands this driver does not offer that were logged already, one bit per
    /// command number (0..63).
    #[pin]
    unoffered_logged: Mutex<u64>,
}

impl VendorCard {
    /// A page of a BAR2 mapping is touched: mapped while the card admits users, SIGBUS in
    /// an outage (reset, sleep) and once it is gone (`Card::zap_mappings` empties the
    /// mappings when either begins).
    ///
    /// # Safety
    ///
    /// `vmf` is a `fault` callback's argument for an area [`VendorFile::mmap`] set up.
    pub(crate) unsafe fn fault(&self, vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // CAST: the fault reasons are small bit values.
        let sigbus = bindings::vm_fault_reason_VM_FAULT_SIGBUS as bindings::vm_fault_t;
        let card = &self.card;
        let Some(_in) = card.gate.try_enter() else {
            return sigbus;
        };
        let (Ok(start), Ok(len)) = (card.pdev.resource_start(2), card.pdev.resource_len(2)) else {
            return sigbus;
        };
        let (Ok(base), Ok(pages)) = (
            usize::try_from(start >> kernel::page::PAGE_SHIFT),
            usize::try_from(len >> kernel::page::PAGE_SHIFT),
        ) else {
            return sigbus;
        };
        // SAFETY: Per this function's contract; the frames are BAR2's, which the card holds
        // while it admits us (`_in`).
        unsafe { glue::vmf_insert(vmf, base, pages) }
    }
}

/// The vendor nodes of one card; removed at unbind.
pub(crate) struct VendorNodes(#[allow(dead_code)] KVec<VendorNode>);

/// Domain, bus and slot of a PCI device name (`DDDD:BB:SS.F`, hex).
fn pci_address(name: &[u8]) -> Option<(u32, u32, u32)> {
    let hex = |b: &[u8]| -> Option<u32> {
        if b.is_empty() || b.len() > 8 {
            return None;
        }
        b.iter().try_fold(0u32, |v, c| {
            let d = char::from(*c).to_digit(16)?;
            Some(v << 4 | d)
        })
    };
    let mut parts = name.split(|c| *c == b':');
    let domain = hex(parts.next()?)?;
    let bus = hex(parts.next()?)?;
    let mut devfn = parts.next()?.split(|c| *c == b'.');
    let slot = hex(devfn.next()?)?;
    Some((domain, bus, slot))
}

/// Node names of a card: `metis-D:B:S` (1.4.x), `metis-D-B-S` and then the old name (1.6.2).
fn node_names(pdev: &pci::Device<kernel::device::Bound>, level: Level) -> Result<KVec<CString>> {
    let dev: &kernel::device::Device<kernel::device::Bound> = pdev.as_ref();
    let (domain, bus, slot) = pci_address(dev.name().to_bytes()).ok_or(EINVAL)?;
    let mut names = KVec::new();
    if level == Level::V1_6_2 {
        names.push(
            CString::try_from_fmt(fmt!("metis-{:x}-{:x}-{:x}", domain, bus, slot))?,
            GFP_KERNEL,
        )?;
    }
    names.push(
        CString::try_from_fmt(fmt!("metis-{:x}:{:x}:{:x}", domain, bus, slot))?,
        GFP_KERNEL,
    )?;
    Ok(names)
}

/// Gives back the card reference a node held (its last open is done with it).
///
/// # Safety
///
/// `data` is a pointer [`register`] made with `Arc::into_raw`, given back once.
unsafe extern "C" fn put_vendor_card(data: *mut core::ffi::c_void) {
    // SAFETY: Per this function's contract.
    drop(unsafe { Arc::from_raw(data.cast::<VendorCard>().cast_const()) });
}

/// The vendor nodes of a card at `level`, with one log line saying what their users can
/// reach in the current IOMMU mode.
pub(crate) fn register(
    pdev: &pci::Device<kernel::device::Bound>,
    card: &Arc<Card>,
    level: Level,
) -> Result<VendorNodes> {
    let vc = Arc::pin_init(
        pin_init!(VendorCard {
            card: card.clone(),
            level,
            cores <- new_mutex!(0, "metis_vendor_cores"),
            msg_owner <- new_mutex!(0, "metis_vendor_msg"),
            msg_free <- new_condvar!("metis_vendor_msg_free"),
            unoffered_logged <- new_mutex!(0, "metis_vendor_unoffered"),
        }),
        GFP_KERNEL,
    )?;
    let mut nodes = KVec::new();
    for name in node_names(pdev, level)? {
        let data = Arc::into_raw(vc.clone()).cast_mut().cast();
        // SAFETY: `put_vendor_card` gives back exactly the reference `data` holds, once.
        let node = unsafe { VendorNode::create(&name, data, put_vendor_card) }?;
        nodes.push(node, GFP_KERNEL)?;
    }
    let dev: &kernel::device::Device<kernel::device::Bound> = pdev.as_ref();
    let reach = match card.status.lock().iommu_mode {
        crate::glue::IommuMode::Translated => {
            "what the card's IOMMU domain maps: its own buffers and every other user's jobs"
        }
        _ => {
            "the card's DMA is not translated: a user of the vendor node can make the card \
             read or write any host memory"
        }
    };
    dev_info!(
        dev,
        "vendor ABI {} offered (vendor_abi=): users of its node reach {}\n",
        level.version().to_str().unwrap_or("?"),
        reach
    );
    Ok(VendorNodes(nodes))
}

// The vendor's ioctl numbers (type 'U'; LP64). Several encode the size of a pointer, not of
// the struct the command copies; they are matched whole, as the vendor's runtime issues them.
const MSG_LOCK: u32 = 0xC004_5500;
const CTX_ALLOC: u32 = 0xC004_5501;
const CTX_FREE: u32 = 0xC004_5502;
const GET_DEV_PROPERTY: u32 = 0xC008_5503;
const USR_DMA_XFER: u32 = 0xC008_550A;
const MSI: u32 = 0xC008_550B;
const CLEAN_MSI: u32 = 0xC008_550C;
const MSI_ATTACH: u32 = 0xC004_550D;
const CLEAR_POLL_EVENT: u32 = 0xC004_550F;
const GET_CTX_AICORE_MASK: u32 = 0xC008_550E;
const GET_RESOURCE_INFO: u32 = 0x8040_5510;
const GET_PCIE_WINDOWS: u32 = 0x8080_5511;
const DMA_P2P_XFER: u32 = 0xC020_5512;
const GET_DMA_STATS: u32 = 0x8200_5520;
const GET_USER_PA: u32 = 0xC010_5532;
const DMA_ATTACH: u32 = 0xC004_5505;
const DMA_DETACH: u32 = 0xC004_5506;
const DMA_XFER: u32 = 0xC008_5507;
const DMA_GET_XFER_ASYNC_STATUS: u32 = 0xC008_5508;
const DMA_GET_XFER_SYNC_STATUS: u32 = 0xC008_5509;
const DYNMEM_LOAD: u32 = 0x0000_5513;
/// 1.5.6 and later: the firmware-trace commands (20..=25).
const FWTRACE: [u32; 6] = [
    0x4004_5514,
    0x0000_5515,
    0x8018_5516,
    0x4004_5517,
    0x4004_5518,
    0x4004_5519,
];
/// The vendor's ioctl type.
const MAGIC: u32 = b'U' as u32;

// `GET_DEV_PROPERTY` ids.
const PROP_HW_GEN: u64 = 0;
const PROP_AICORE_COUNT: u64 = 1;
const PROP_PVE_CORE_COUNT: u64 = 2;
const PROP_PES_GROUP: u64 = 3;

/// `struct dma_xfer` (32 bytes): `USR_DMA_XFER`'s argument.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct DmaXfer {
    /// Device address.
    phy: u64,
    /// User address.
    virt: u64,
    size: u64,
    /// Not used by `USR_DMA_XFER`.
    offset: u32,
    flags: i32,
}

// `dma_xfer` flags: the vendor names directions from the host's side.
/// Device to host.
const XFER_READ: i32 = 0x1;
/// Host to device.
const XFER_WRITE: i32 = 0x2;
/// `DMA_XFER`: wait for the transfer.
const XFER_SYNC: i32 = 0x4;
/// `DMA_XFER`: return at once; `GET_XFER_*_STATUS` and `poll` tell the end.
const XFER_ASYNC: i32 = 0x8;

/// `struct dmabuf_xfer` (32 bytes): `DMA_XFER` and `GET_XFER_SYNC_STATUS`'s argument.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct DmabufXfer {
    /// Device address.
    phy: u64,
    size: u64,
    /// Where in the attached dma-buf.
    offset: u32,
    /// Not used (nor by the vendor's).
    handle: i32,
    flags: i32,
    /// -1 (any negative): the driver chooses; 0..3 accepted, the driver still chooses.
    channel: i32,
}

/// Channels per direction a `DMA_XFER` may name.
const XFER_CHANNELS: i32 = 4;

// What `GET_XFER_ASYNC_STATUS` returns (0: no async transfer yet).
const ASYNC_DONE: isize = 1;
const ASYNC_FAIL: isize = 2;
const ASYNC_TIMEOUT: isize = 3;
const ASYNC_PENDING: isize = 4;

/// How long `GET_XFER_SYNC_STATUS` waits for the file's last transfer (the vendor's
/// `dma_timeout`, 2 s).
const SYNC_STATUS_WAIT_MS: u32 = 2000;

/// `struct msi_info` (8 bytes): `MSI` and `CLEAN_MSI`'s argument.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MsiInfo {
    /// The interrupt source, as the vendor numbers them (0..31).
    num: i32,
    /// Seconds; 0 waits without limit.
    timeout: i32,
}

/// Interrupt sources a wait may name (the vendor's Metis has 32 vectors).
const SOURCES: i32 = 32;

/// `struct dev_res_info` (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ResInfo {
    sysmem_base: u64,
    sysmem_size: u64,
    l2_base: u64,
    l2_size: u64,
    ddr_base: [u64; 2],
    ddr_size: [u64; 2],
}

/// `struct dev_mem_window` (128 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MemWindow {
    np_base: u64,
    np_size: u64,
    p_base: u64,
    p_size: u64,
    base_res: [u64; 6],
    size_res: [u64; 6],
}

/// `struct dma_channel_stats` (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ChanStats {
    count: i32,
    num_xfer: i32,
    num_err: i32,
    _pad0: u32,
    bytes_xfer: u64,
    max_sgt: i32,
    _pad1: u32,
    max_duration_us: u64,
    duration_us: u64,
    size: u64,
    speed_mbps: u32,
    _pad2: u32,
}

/// `struct dma_stats` (512 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct DmaStatsArg {
    rd_channels: [ChanStats; 4],
    wr_channels: [ChanStats; 4],
}

// SAFETY: `#[repr(C)]`, integer fields and explicit padding only (sizes asserted below): every
// byte is initialised and any bit pattern is valid.
unsafe impl kernel::transmute::FromBytes for DmaXfer {}
// SAFETY: As above.
unsafe impl kernel::transmute::FromBytes for DmabufXfer {}
// SAFETY: As above.
unsafe impl kernel::transmute::FromBytes for MsiInfo {}
// SAFETY: As above.
unsafe impl kernel::transmute::AsBytes for ResInfo {}
// SAFETY: As above.
unsafe impl kernel::transmute::AsBytes for MemWindow {}
// SAFETY: As above.
unsafe impl kernel::transmute::AsBytes for DmaStatsArg {}

static_assert!(core::mem::size_of::<DmaXfer>() == 32);
static_assert!(core::mem::size_of::<MsiInfo>() == 8);
static_assert!(core::mem::size_of::<DmabufXfer>() == 32);
static_assert!(core::mem::offset_of!(DmabufXfer, channel) == 28);
static_assert!(kernel::ioctl::_IOWR::<i32>(MAGIC, 5) == DMA_ATTACH);
static_assert!(kernel::ioctl::_IOWR::<i32>(MAGIC, 6) == DMA_DETACH);
// These encode the size of a pointer too.
static_assert!(kernel::ioctl::_IOWR::<*const DmabufXfer>(MAGIC, 7) == DMA_XFER);
static_assert!(kernel::ioctl::_IOWR::<*const DmabufXfer>(MAGIC, 8) == DMA_GET_XFER_ASYNC_STATUS);
static_assert!(kernel::ioctl::_IOWR::<*const DmabufXfer>(MAGIC, 9) == DMA_GET_XFER_SYNC_STATUS);
static_assert!(kernel::ioctl::_IO(MAGIC, 19) == DYNMEM_LOAD);
static_assert!(kernel::ioctl::_IOWR::<*const MsiInfo>(MAGIC, 11) == MSI);
static_assert!(kernel::ioctl::_IOWR::<i32>(MAGIC, 15) == CLEAR_POLL_EVENT);
static_assert!(core::mem::offset_of!(DmaXfer, flags) == 28);
// Encodes the size of a pointer: `_IOWR('U', 10, struct dma_xfer *)`.
static_assert!(kernel::ioctl::_IOWR::<*const DmaXfer>(MAGIC, 10) == USR_DMA_XFER);
static_assert!(core::mem::size_of::<ResInfo>() == 64);
static_assert!(core::mem::size_of::<MemWindow>() == 128);
static_assert!(core::mem::size_of::<ChanStats>() == 64);
static_assert!(core::mem::offset_of!(ChanStats, bytes_xfer) == 16);
static_assert!(core::mem::offset_of!(ChanStats, max_duration_us) == 32);
static_assert!(core::mem::offset_of!(ChanStats, speed_mbps) == 56);
static_assert!(core::mem::size_of::<DmaStatsArg>() == 512);
static_assert!(kernel::ioctl::_IOWR::<i32>(MAGIC, 0) == MSG_LOCK);
static_assert!(kernel::ioctl::_IOWR::<u64>(MAGIC, 3) == GET_DEV_PROPERTY);
static_assert!(kernel::ioctl::_IOR::<ResInfo>(MAGIC, 16) == GET_RESOURCE_INFO);
static_assert!(kernel::ioctl::_IOR::<MemWindow>(MAGIC, 17) == GET_PCIE_WINDOWS);
static_assert!(kernel::ioctl::_IOR::<DmaStatsArg>(MAGIC, 32) == GET_DMA_STATS);

// Poll bits (include/uapi/asm-generic/poll.h).
const POLLIN: u32 = 0x0001;
const POLLPRI: u32 = 0x0002;
const POLLHUP: u32 = 0x0010;
const POLLRDNORM: u32 = 0x0040;

/// Open-file ids, for the message lock's owner (never 0).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// What `poll` on a vendor file counts: marks of the sources it attached to since it
/// attached (or last took one), and its finished transfers.
#[derive(Default)]
struct PollState {
    attached: u32,
    /// Per source, the card's count of its marks this file has seen.
    seen: [u64; 32],
    transfers: u64,
}

impl PollState {
    /// Events waiting, given the card's counts.
    fn waiting(&self, total: &[u64; 32]) -> u64 {
        (0..32)
            .filter(|s| self.attached & (1 << s) != 0)
            .map(|s| total[s].wrapping_sub(self.seen[s]))
            .fold(self.transfers, u64::saturating_add)
    }
}

/// A vendor file's dma-buf and its transfers (`DMA_ATTACH`, `DMA_XFER`).
#[derive(Default)]
struct XferSlot {
    /// The dma-buf `DMA_ATTACH` attached (one per file, as the vendor's).
    attached: Option<Arc<glue::DmaBufRef>>,
    /// What `GET_XFER_ASYNC_STATUS` returns: 0 or an `ASYNC_*` state.
    state: isize,
    /// The file's last `DMA_XFER`: `None` before the first, `Some(None)` while it runs,
    /// then its result (0 or a negative errno).
    last: Option<Option<i32>>,
}

/// The [`XferSlot`] of a file, shared with its async transfer's completion.
#[pin_data]
struct Xfers {
    #[pin]
    cur: Mutex<XferSlot>,
    /// Signalled when a transfer of the file ends.
    #[pin]
    done: CondVar,
}

/// One open vendor node.
pub(crate) struct VendorFile {
    vc: Arc<VendorCard>,
    id: u64,
    /// The AI cores of this file's context, one bit each (0: no context); changed only
    /// under the card's `cores` lock.
    ctx: Atomic<u32>,
    poll: Arc<Mutex<PollState>>,
    xfers: Arc<Xfers>,
}

impl VendorFile {
    pub(crate) fn open(vc: Arc<VendorCard>) -> Result<KBox<Self>> {
        // A card being unbound opens nothing; opening never waits for a reset (M2).
        if vc.card.closing() {
            return Err(ENODEV);
        }
        let poll = Arc::pin_init(
            new_mutex!(PollState::default(), "metis_vendor_poll"),
            GFP_KERNEL,
        )?;
        let xfers = Arc::pin_init(
            pin_init!(Xfers {
                cur <- new_mutex!(XferSlot::default(), "metis_vendor_xfers"),
                done <- new_condvar!("metis_vendor_xfer_done"),
            }),
            GFP_KERNEL,
        )?;
        // An open node keeps the card awake, as `/dev/metisN` does: its BAR2 mapping would
        // otherwise be emptied each time the card autosuspends.
        vc.card.file_wake()?;
        Ok(KBox::new(
            Self {
                vc,
                id: NEXT_ID.fetch_add(1, Relaxed),
                ctx: Atomic::new(0),
                poll,
                xfers,
            },
            GFP_KERNEL,
        )?)
    }

    /// Close: the file's async transfer ends (within its timeout, or at once when the card
    /// goes away or is reset); its dma-buf, the card's mappings of it, its context and the
    /// message lock go back.
    pub(crate) fn release(self: KBox<Self>) {
        {
            let mut s = self.xfers.cur.lock();
            while s.state == ASYNC_PENDING {
                self.xfers.done.wait(&mut s);
            }
            s.attached = None;
        }
        self.vc.card.attachments.lock().drop_owner(self.id);
        {
            let mut cores = self.vc.cores.lock();
            // CAST: at most 4 bits.
            *cores &= !(self.ctx.load(Relaxed) as u8);
            self.ctx.store(0, Relaxed);
        }
        self.unlock_msg();
    }

    pub(crate) fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        // Not one of the vendor's numbers at all.
        if kernel::ioctl::_IOC_TYPE(cmd) != MAGIC {
            return Err(ENOTTY);
        }
        // The node's card was unbound under the open file.
        if self.vc.card.closing() {
            return Err(ENODEV);
        }
        match cmd {
            MSG_LOCK => self.msg_lock(arg),
            CTX_ALLOC => self.ctx_alloc(arg),
            CTX_FREE => self.ctx_free(),
            GET_DEV_PROPERTY => self.dev_property(arg),
            USR_DMA_XFER => self.usr_dma_xfer(arg),
            DMA_ATTACH => self.dma_attach(arg),
            DMA_DETACH => {
                let old = {
                    let mut s = self.xfers.cur.lock();
                    if s.state == ASYNC_PENDING {
                        return Err(EBUSY);
                    }
                    s.attached.take()
                };
                if old.is_some() {
                    self.vc.card.attachments.lock().drop_owner(self.id);
                }
                Ok(0)
            }
            DMA_XFER => self.dma_xfer(arg),
            DMA_GET_XFER_ASYNC_STATUS => {
                let mut s = self.xfers.cur.lock();
                let state = s.state;
                // 1.4.16 reports a finished transfer once.
                if self.vc.level == Level::V1_4_16 && state == ASYNC_DONE {
                    s.state = 0;
                }
                Ok(state)
            }
            DMA_GET_XFER_SYNC_STATUS => self.sync_status(arg),
            DYNMEM_LOAD => self.dynmem_load(),
            MSI => self.msi_wait(arg),
            CLEAN_MSI => {
                let n = Self::source(Self::msi_info(arg)?.num)?;
                self.vc.card.edma.events.lock().sources.pending[n] = 0;
                Ok(0)
            }
            MSI_ATTACH => {
                let n: i32 = UserSlice::new(UserPtr::from_addr(arg), 4).reader().read()?;
                let n = Self::source(n)?;
                let total = self.vc.card.edma.events.lock().sources.total[n];
                let mut p = self.poll.lock();
                // Marks from now on count (attaching again, or to several, is fine: B3).
                if p.attached & (1 << n) == 0 {
                    p.attached |= 1 << n;
                    p.seen[n] = total;
                }
                Ok(0)
            }
            CLEAR_POLL_EVENT => Ok(isize::from(self.take_poll_event())),
            GET_CTX_AICORE_MASK => {
                let mask = u64::from(self.ctx.load(Relaxed));
                UserSlice::new(UserPtr::from_addr(arg), 8)
                    .writer()
                    .write(&mask)?;
                Ok(0)
            }
            GET_RESOURCE_INFO => self.resource_info(arg),
            GET_PCIE_WINDOWS => self.pcie_windows(arg),
            GET_DMA_STATS => self.dma_stats(arg),
            DMA_P2P_XFER => Err(self.refuse(
                "DMA_P2P_XFER: a transfer to a host bus address the caller names would reach \
                 any host memory",
            )),
            GET_USER_PA if self.vc.level == Level::V1_6_2 => {
                Err(self
                    .refuse("GET_USER_PA: the physical address of a user page is not handed out"))
            }
            _ if self.vc.level == Level::V1_6_2 && FWTRACE.contains(&cmd) => {
                Err(self.unoffered(cmd))
            }
            // Not a command of the level presented (as the vendor's driver answers).
            _ => Err(ENOTTY),
        }
    }

    /// A 32-bit caller (whose commands this LP64 ABI can't read): logged, limited.
    pub(crate) fn refuse_compat(&self) {
        let c = &self.vc.card;
        crate::ratelimit::dev_warn_limited!(
            c.log_limit,
            c.pdev,
            "vendor ABI: a 32-bit process called the vendor node; the vendor's ABI is 64-bit \
             only (ENOTTY)\n"
        );
    }

    /// A vendor command refused for good: `EPERM`, with a log line saying why.
    fn refuse(&self, why: &str) -> Error {
        let c = &self.vc.card;
        crate::ratelimit::dev_warn_limited!(
            c.log_limit,
            c.pdev,
            "vendor ABI: {} (refused; docs/vendor-abi.md)\n",
            why
        );
        EPERM
    }

    /// A vendor command this driver does not offer (yet): `EOPNOTSUPP`, logged once per
    /// command and card.
    fn unoffered(&self, cmd: u32) -> Error {
        let nr = kernel::ioctl::_IOC_NR(cmd);
        let bit = 1u64.checked_shl(nr).unwrap_or(0);
        let first = {
            let mut seen = self.vc.unoffered_logged.lock();
            let first = *seen & bit == 0;
            *seen |= bit;
            first
        };
        if bit != 0 && first {
            dev_warn!(
                self.vc.card.pdev,
                "vendor ABI command {} ({:#x}) is not offered by this driver; see \
                 docs/vendor-abi.md for what is\n",
                nr,
                cmd
            );
        }
        EOPNOTSUPP
    }

    /// `MSG_LOCK`, its argument by value: non-zero takes the card's message lock (waiting
    /// for it), 0 gives it back. Held by a file, never across its close.
    fn msg_lock(&self, arg: usize) -> Result<isize> {
        match arg {
            0 => {
                if *self.vc.msg_owner.lock() != self.id {
                    // Not the holder (the vendor's driver unlocks anyway: B4).
                    return Err(EPERM);
                }
                self.unlock_msg();
                Ok(0)
            }
            _ => {
                let mut owner = self.vc.msg_owner.lock();
                loop {
                    if *owner == 0 {
                        *owner = self.id;
                        return Ok(0);
                    }
                    if *owner == self.id {
                        // The vendor's mutex would deadlock here.
                        return Err(EDEADLK);
                    }
                    if self.vc.msg_free.wait_interruptible(&mut owner) {
                        return Err(ERESTARTSYS);
                    }
                }
            }
        }
    }

    fn unlock_msg(&self) {
        let mut owner = self.vc.msg_owner.lock();
        if *owner == self.id {
            *owner = 0;
            drop(owner);
            self.vc.msg_free.notify_all();
        }
    }

    /// `CTX_ALLOC`: `n` (the int at `arg`, 1..4) consecutive free AI cores, the first run
    /// that fits, become this file's context; returns the first core's index. `EINVAL`, as
    /// the vendor's, for a bad count, a second context and no run free.
    fn ctx_alloc(&self, arg: usize) -> Result<isize> {
        let n: i32 = UserSlice::new(UserPtr::from_addr(arg), 4).reader().read()?;
        let n = u32::try_from(n).map_err(|_| EINVAL)?;
        if n == 0 || n > AICORES {
            return Err(EINVAL);
        }
        let mut cores = self.vc.cores.lock();
        if self.ctx.load(Relaxed) != 0 {
            return Err(EINVAL);
        }
        // CAST: at most 4 bits.
        let run = ((1u32 << n) - 1) as u8;
        for first in 0..=(AICORES - n) {
            let mask = run << first;
            if *cores & mask == 0 {
                *cores |= mask;
                self.ctx.store(u32::from(mask), Relaxed);
                // CAST: below 4.
                return Ok(first as isize);
            }
        }
        Err(EINVAL)
    }

    /// `CTX_FREE`: the file's context goes back (`EINVAL` without one: the vendor's loops
    /// forever, B1).
    fn ctx_free(&self) -> Result<isize> {
        let mut cores = self.vc.cores.lock();
        let mask = self.ctx.load(Relaxed);
        if mask == 0 {
            return Err(EINVAL);
        }
        // CAST: at most 4 bits.
        *cores &= !(mask as u8);
        self.ctx.store(0, Relaxed);
        Ok(0)
    }

    /// `USR_DMA_XFER`: `size` bytes between the caller's memory at `virt` and device
    /// address `phy`, in the direction of exactly one of `XFER_READ` and `XFER_WRITE`
    /// (`EINVAL` otherwise: the vendor's dereferences NULL, B5), always synchronous (as
    /// the vendor's). The device range must lie in the card memory this driver hands out
    /// and hold no `/dev/metisN` region (`EINVAL` outside, `EBUSY` on one); it is held
    /// for the transfer, so no region is made there meanwhile. The pages are pinned for
    /// the transfer's real direction (the vendor's: always for writing, B7), and a
    /// transfer that times out is stopped before they go back.
    fn usr_dma_xfer(&self, arg: usize) -> Result<isize> {
        let x: DmaXfer = UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<DmaXfer>())
            .reader()
            .read()?;
        let flags = match x.flags & (XFER_READ | XFER_WRITE) {
            XFER_READ => uapi::DMA_FROM_DEVICE,
            XFER_WRITE => uapi::DMA_TO_DEVICE,
            _ => return Err(EINVAL),
        };
        let r = DmaRequest {
            flags,
            host: HostSpec::User { addr: x.virt },
            length: x.size,
            dev: DevSpec::Address(x.phy),
        };
        // A job of its own, as `/dev/metisN`'s: checked, pinned, the range held, mapped.
        let job = DmaJob::prepare(&self.vc.card, self.id, core::slice::from_ref(&r), 0)?;
        let moved = job.run();
        // Every transfer that ran is an event for `poll`, as the vendor's counts them.
        self.poll.lock().transfers += 1;
        self.vc.card.source_poll.notify_all();
        moved.map(|()| 0)
    }

    /// `DMA_ATTACH`: the dma-buf behind the fd (the int at `arg`) becomes the file's, for
    /// `DMA_XFER`; the one it replaces goes back with the card's mappings of it (the
    /// vendor's keeps them, B9). The card maps the buffer when a transfer needs it.
    fn dma_attach(&self, arg: usize) -> Result<isize> {
        let fd: i32 = UserSlice::new(UserPtr::from_addr(arg), 4).reader().read()?;
        let buf = Arc::new(glue::DmaBufRef::get(fd)?, GFP_KERNEL)?;
        let old = self.xfers.cur.lock().attached.replace(buf);
        if old.is_some() {
            self.vc.card.attachments.lock().drop_owner(self.id);
        }
        Ok(0)
    }

    /// `DMA_XFER`: `size` bytes between `offset` in the attached dma-buf and device address
    /// `phy` (held as `USR_DMA_XFER`'s), `XFER_READ` or `XFER_WRITE`, waited for (`XFER_SYNC`:
    /// 0 or the transfer's error) or not (`XFER_ASYNC`: 0 at once; the file's one async
    /// transfer, `EBUSY` while it runs). `EINVAL` for anything else: no dma-buf attached,
    /// not exactly one direction and one mode, other flag bits (the vendor's peer-to-peer
    /// one among them), no bytes, a range past the buffer's end (the vendor's sum can wrap,
    /// B14) or a channel past the fourth.
    fn dma_xfer(&self, arg: usize) -> Result<isize> {
        if self.xfers.cur.lock().state == ASYNC_PENDING {
            return Err(EBUSY);
        }
        let x = Self::dmabuf_xfer(arg)?;
        let buf = self.xfers.cur.lock().attached.clone().ok_or(EINVAL)?;
        let flags = match x.flags & (XFER_READ | XFER_WRITE) {
            XFER_READ => uapi::DMA_FROM_DEVICE,
            XFER_WRITE => uapi::DMA_TO_DEVICE,
            _ => return Err(EINVAL),
        };
        let asynchronous = match x.flags & (XFER_SYNC | XFER_ASYNC) {
            XFER_SYNC => false,
            XFER_ASYNC => true,
            _ => return Err(EINVAL),
        };
        if x.flags & !(XFER_READ | XFER_WRITE | XFER_SYNC | XFER_ASYNC) != 0
            || x.size == 0
            || x.channel >= XFER_CHANNELS
        {
            return Err(EINVAL);
        }
        let r = DmaRequest {
            flags,
            host: HostSpec::Attached {
                buf: &buf,
                offset: u64::from(x.offset),
            },
            length: x.size,
            dev: DevSpec::Address(x.phy),
        };
        let job = DmaJob::prepare(&self.vc.card, self.id, core::slice::from_ref(&r), 0)?;
        if !asynchronous {
            let res = job.run();
            Self::xfer_ended(&self.xfers, &self.poll, &self.vc.card, &res);
            return res.map(|()| 0);
        }
        let before = {
            let mut s = self.xfers.cur.lock();
            // Another thread of the file started one meanwhile.
            if s.state == ASYNC_PENDING {
                return Err(EBUSY);
            }
            let before = (s.state, s.last);
            s.state = ASYNC_PENDING;
            s.last = Some(None);
            before
        };
        let (xfers, poll, card) = (self.xfers.clone(), self.poll.clone(), self.vc.card.clone());
        jobs::run_async(job, move |res| Self::xfer_ended(&xfers, &poll, &card, &res)).inspect_err(
            |_| {
                let mut s = self.xfers.cur.lock();
                (s.state, s.last) = before;
            },
        )?;
        Ok(0)
    }

    /// A `DMA_XFER` of the file ended with `res`: its state (a failed synchronous one sets
    /// it too, as the vendor's does), and an event for `poll`.
    fn xfer_ended(xfers: &Xfers, poll: &Mutex<PollState>, card: &Card, res: &Result) {
        {
            let mut s = xfers.cur.lock();
            s.last = Some(Some(match res {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }));
            s.state = match res {
                Ok(()) if s.state == ASYNC_PENDING => ASYNC_DONE,
                Ok(()) => s.state,
                Err(e) if *e == ETIMEDOUT => ASYNC_TIMEOUT,
                Err(_) => ASYNC_FAIL,
            };
        }
        xfers.done.notify_all();
        poll.lock().transfers += 1;
        card.source_poll.notify_all();
    }

    /// `GET_XFER_SYNC_STATUS`: waits up to 2 s for the file's last `DMA_XFER` and returns
    /// its result (0 or its error); `ETIMEDOUT` if it still runs. `EINVAL`, as the vendor's,
    /// without `XFER_SYNC` in the argument's flags and before any transfer set the state.
    fn sync_status(&self, arg: usize) -> Result<isize> {
        let x = Self::dmabuf_xfer(arg)?;
        if x.flags & XFER_SYNC == 0 {
            return Err(EINVAL);
        }
        let start = Instant::<Monotonic>::now();
        let limit = Delta::from_millis(i64::from(SYNC_STATUS_WAIT_MS));
        let mut s = self.xfers.cur.lock();
        if s.state == 0 {
            return Err(EINVAL);
        }
        loop {
            match s.last {
                None => return Err(EINVAL),
                Some(Some(0)) => return Ok(0),
                Some(Some(e)) => return Err(Error::from_errno(e)),
                Some(None) => {}
            }
            let elapsed = start.elapsed();
            if elapsed >= limit {
                return Err(ETIMEDOUT);
            }
            let left = u32::try_from((limit - elapsed).as_millis()).unwrap_or(1);
            if let CondVarTimeoutResult::Signal { .. } = self
                .xfers
                .done
                .wait_interruptible_timeout(&mut s, msecs_to_jiffies(left.max(1)))
            {
                return Err(EINTR);
            }
        }
    }

    /// `DYNMEM_LOAD`: the runtime booted its firmware; the areas it publishes are read again
    /// (bounds-checked, B11) and the virtual-MSI table registered with it. Only for a
    /// runtime-owned card: one whose firmware this driver loads refuses (`EINVAL`, logged).
    fn dynmem_load(&self) -> Result<isize> {
        let card = &self.vc.card;
        if card.fw.owner != FwOwner::Runtime {
            crate::ratelimit::dev_warn_limited!(
                card.log_limit,
                card.pdev,
                "vendor ABI: DYNMEM_LOAD on a card whose firmware this driver loads; to hand \
                 the firmware to the vendor runtime, load metis with fw_owner=2 (EINVAL)\n"
            );
            return Err(EINVAL);
        }
        card.firmware_changed()?;
        Ok(0)
    }

    /// The `struct dmabuf_xfer` at `arg` (`DMA_XFER`, `GET_XFER_SYNC_STATUS`).
    fn dmabuf_xfer(arg: usize) -> Result<DmabufXfer> {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<DmabufXfer>())
            .reader()
            .read()
    }

    fn msi_info(arg: usize) -> Result<MsiInfo> {
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<MsiInfo>())
            .reader()
            .read()
    }

    /// A source number the waits accept: 0..31 (`EINVAL` beyond; the vendor's accepts 32
    /// and waits on a completion it never set up, B2).
    fn source(n: i32) -> Result<usize> {
        if !(0..SOURCES).contains(&n) {
            return Err(EINVAL);
        }
        Ok(usize::try_from(n)?)
    }

    /// `MSI`: waits for a mark of source `num` no earlier wait took (one is taken), up to
    /// `timeout` seconds (0: without limit); `ETIMEDOUT`, or `EINTR` on a signal (as the
    /// vendor's: not restarted).
    fn msi_wait(&self, arg: usize) -> Result<isize> {
        let m = Self::msi_info(arg)?;
        let n = Self::source(m.num)?;
        if m.timeout < 0 {
            return Err(EINVAL);
        }
        let take = |ev: &mut crate::edma::Events| {
            let p = &mut ev.sources.pending[n];
            (*p > 0).then(|| *p -= 1)
        };
        let card = &self.vc.card;
        let res = if m.timeout == 0 {
            loop {
                match card.wait_event(kernel::time::Delta::from_secs(3600), take) {
                    Err(e) if e == ETIMEDOUT => continue,
                    r => break r,
                }
            }
        } else {
            card.wait_event(kernel::time::Delta::from_secs(i64::from(m.timeout)), take)
        };
        match res {
            Ok(()) => Ok(0),
            Err(e) if e == ERESTARTSYS => Err(EINTR),
            Err(e) => Err(e),
        }
    }

    /// Takes one event `poll` counts: a finished transfer, else a mark of an attached
    /// source. Whether there was one.
    fn take_poll_event(&self) -> bool {
        let total = self.vc.card.edma.events.lock().sources.total;
        let mut p = self.poll.lock();
        if p.transfers > 0 {
            p.transfers -= 1;
            return true;
        }
        for (s, t) in total.iter().enumerate() {
            if p.attached & (1 << s) != 0 && *t != p.seen[s] {
                p.seen[s] = p.seen[s].wrapping_add(1);
                return true;
            }
        }
        false
    }

    /// `poll`: readable while an event waits (`CLEAR_POLL_EVENT` takes them); hung up once
    /// the card is being unbound.
    pub(crate) fn poll(
        &self,
        file: &kernel::fs::File,
        pt: &kernel::sync::poll::PollTable<'_>,
    ) -> u32 {
        let card = &self.vc.card;
        pt.register_wait(file, &card.source_poll);
        pt.register_wait(file, &card.fw.event);
        let (total, dead) = {
            let ev = card.edma.events.lock();
            (ev.sources.total, ev.dead)
        };
        let mut mask = 0;
        if self.poll.lock().waiting(&total) > 0 {
            mask |= POLLIN | POLLRDNORM;
        }
        // A runtime-owned card lost its firmware (a reset, sleep): the runtime loads it again.
        if card.fw.lost.load(Relaxed) {
            mask |= POLLPRI;
        }
        if dead || card.closing() {
            mask |= POLLHUP;
        }
        mask
    }

    /// `mmap`: page offset 0 maps BAR2 (the firmware's interface structure and the L2
    /// window), at most its length, shared, uncached, never executable. Page offset 1 (the
    /// vendor's BAR0, the eDMA registers) is refused for good, anything else is `EINVAL`.
    ///
    /// # Safety
    ///
    /// `file` is this open file and `vma` the area of an `mmap` call on it, during that
    /// call (the mm locked for writing).
    pub(crate) unsafe fn mmap(
        &self,
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> Result {
        let card = &self.vc.card;
        if card.closing() {
            return Err(ENODEV);
        }
        // SAFETY: Per this function's contract.
        match unsafe { glue::vma_pgoff(vma) } {
            0 => {}
            1 => {
                return Err(self.refuse(
                    "mmap of page offset 1 (BAR0, the eDMA registers): direct control of the \
                     card's DMA engine is never given out",
                ))
            }
            _ => return Err(EINVAL),
        }
        let len = usize::try_from(card.pdev.resource_len(2)?)?;
        // SAFETY: `file` is live for this call.
        let space = unsafe { glue::MappedSpace::hold(file) }.ok_or(ENOMEM)?;
        {
            let mut mapped = card.mapped.lock();
            if !mapped.iter().any(|m| m.is(&space)) {
                mapped.push(space, GFP_KERNEL)?;
            }
        }
        let data = Arc::into_raw(self.vc.clone()).cast_mut().cast();
        // SAFETY: Per this function's contract; the area's ops are static, and expect `data`:
        // a reference to this card's `VendorCard`, which their `close` gives back.
        let set = unsafe { glue::vma_io(vma, len, crate::ffi::vendor_vm_ops(), data) };
        if set.is_err() {
            // Not set up: no `close` will come for it.
            // SAFETY: Made by `Arc::into_raw` just above and not handed to anyone.
            drop(unsafe { Arc::from_raw(data.cast::<VendorCard>().cast_const()) });
        }
        set
    }

    /// `GET_DEV_PROPERTY`: the u64 at `arg` names a property and receives its value.
    fn dev_property(&self, arg: usize) -> Result<isize> {
        let (mut r, mut w) = UserSlice::new(UserPtr::from_addr(arg), 8).reader_writer();
        let id: u64 = r.read()?;
        let v: u64 = match id {
            // Metis.
            PROP_HW_GEN => 0,
            PROP_AICORE_COUNT => u64::from(AICORES),
            PROP_PVE_CORE_COUNT => 0,
            // -1: not behind the switch of a multi-chip card (what this driver knows of).
            PROP_PES_GROUP => u64::MAX,
            _ => return Err(EINVAL),
        };
        w.write(&v)?;
        Ok(0)
    }

    /// Whether the caller may see physical addresses.
    fn privileged() -> bool {
        // SAFETY: No preconditions; checks the current task's credentials.
        unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
    }

    /// `GET_RESOURCE_INFO`: the L2 window's size (and, for `CAP_SYS_ADMIN`, the physical
    /// address of BAR2).
    fn resource_info(&self, arg: usize) -> Result<isize> {
        let pdev = &self.vc.card.pdev;
        let info = ResInfo {
            l2_base: if Self::privileged() {
                pdev.resource_start(2)?
            } else {
                0
            },
            l2_size: pdev.resource_len(2)?,
            ..Default::default()
        };
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<ResInfo>())
            .writer()
            .write(&info)?;
        Ok(0)
    }

    /// `GET_PCIE_WINDOWS`: each BAR's size (and, for `CAP_SYS_ADMIN`, its physical
    /// address); the card's BARs are non-prefetchable, the prefetchable window empty.
    fn pcie_windows(&self, arg: usize) -> Result<isize> {
        let pdev = &self.vc.card.pdev;
        let privileged = Self::privileged();
        let mut w = MemWindow::default();
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for bar in 0..6u32 {
            let len = pdev.resource_len(bar)?;
            if len == 0 {
                continue;
            }
            let start = pdev.resource_start(bar)?;
            let i = usize::try_from(bar)?;
            w.size_res[i] = len;
            w.base_res[i] = if privileged { start } else { 0 };
            lo = lo.min(start);
            hi = hi.max(start.saturating_add(len));
        }
        if hi > 0 {
            w.np_size = hi - lo;
            w.np_base = if privileged { lo } else { 0 };
        }
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<MemWindow>())
            .writer()
            .write(&w)?;
        Ok(0)
    }

    /// `GET_DMA_STATS`: the card's per-channel transfer counters.
    fn dma_stats(&self, arg: usize) -> Result<isize> {
        let stats = &self.vc.card.stats;
        let conv = |s: &ChannelStats| ChanStats {
            count: i32::try_from(s.jobs).unwrap_or(i32::MAX),
            num_xfer: i32::try_from(s.jobs).unwrap_or(i32::MAX),
            num_err: i32::try_from(s.errors + s.timeouts + s.aborted).unwrap_or(i32::MAX),
            bytes_xfer: s.bytes,
            max_duration_us: s.max_ns / 1000,
            duration_us: s.total_ns / 1000,
            ..Default::default()
        };
        let mut out = DmaStatsArg::default();
        // The vendor's "read" channels move host to device: the engine's read channels.
        for (o, s) in out
            .rd_channels
            .iter_mut()
            .zip(stats.channels(Dir::Rd).iter())
        {
            *o = conv(s);
        }
        for (o, s) in out
            .wr_channels
            .iter_mut()
            .zip(stats.channels(Dir::Wr).iter())
        {
            *o = conv(s);
        }
        UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<DmaStatsArg>())
            .writer()
            .write(&out)?;
        Ok(0)
    }
}

impl Drop for VendorFile {
    fn drop(&mut self) {
        self.vc.card.file_sleep();
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_vendor)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_parse_as_the_vendor_names_them() {
        assert_eq!(pci_address(b"0000:01:00.0"), Some((0, 1, 0)));
        assert_eq!(pci_address(b"0002:1a:1f.7"), Some((2, 0x1a, 0x1f)));
        assert_eq!(pci_address(b"10000:00:03.0"), Some((0x10000, 0, 3)));
        assert_eq!(pci_address(b"0000:01"), None);
        assert_eq!(pci_address(b"zz:01:00.0"), None);
        assert_eq!(pci_address(b""), None);
    }
}
