// SPDX-License-Identifier: GPL-2.0

//! Every call from the driver into C, and nothing else, except those that
//! belong to the tables `ffi.rs` hands to C (registering the misc device and
//! the AER config-space restore): the way back, C calling the driver, is
//! `ffi.rs`.
//!
//! Everything here fills a gap in the 7.3 Rust abstractions (see
//! `docs/design.md`); each function should be replaced by the proper
//! abstraction once one exists upstream.

use core::ptr::NonNull;

use kernel::{
    bindings,
    device::{
        Bound,
        Device, //
    },
    error::to_result,
    ffi::{
        c_char,
        c_int,
        c_long,
        c_void, //
    },
    pci,
    prelude::*,
    scatterlist::SGTable,
    str::CString,
    time::{
        msecs_to_jiffies,
        Delta, //
    },
};

mod shim {
    use kernel::ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_void, //
    };

    // Declared by hand from include/metis/shim.h (pointers as `c_void` so the
    // declarations do not depend on bindgen's layouts); keep the two in sync.
    unsafe extern "C" {
        pub(super) fn metis_shim_msi_msg(
            pdev: *mut c_void,
            vec: c_uint,
            addr: *mut u64,
            data: *mut u32,
        ) -> c_int;
        pub(super) fn metis_shim_iommu_mode(dev: *mut c_void) -> c_int;
        pub(super) fn metis_shim_firmware_name() -> *const c_char;
        pub(super) fn metis_shim_umap_pin(
            uaddr: usize,
            len: usize,
            access: c_uint,
            max_seg: c_uint,
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_umap_map(um: *mut c_void, dev: *mut c_void) -> c_int;
        pub(super) fn metis_shim_umap_sgt(um: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_umap_destroy(um: *mut c_void);
        pub(super) fn metis_shim_umap_sync(um: *mut c_void, for_cpu: bool);
        pub(super) fn metis_shim_rpm_enable(dev: *mut c_void, autosuspend_ms: c_int);
        pub(super) fn metis_shim_dmabuf_export(
            len: usize,
            fd_flags: c_int,
            fd: *mut c_int,
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_dmabuf_install(buf: *mut c_void, fd: c_int);
        pub(super) fn metis_shim_dmabuf_abandon(buf: *mut c_void, fd: c_int);
        pub(super) fn metis_shim_dmabuf_get(
            fd: c_int,
            to_device: bool,
            timeout: c_long,
            size: *mut u64,
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_dmabuf_get_held(
            buf: *mut c_void,
            to_device: bool,
            timeout: c_long,
            size: *mut u64,
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_dmabuf_hold(fd: c_int, err: *mut c_int) -> *mut c_void;
        pub(super) fn metis_shim_dmabuf_release(buf: *mut c_void);
        pub(super) fn metis_shim_dmabuf_id(dm: *mut c_void) -> usize;
        pub(super) fn metis_shim_dmabuf_rw(dm: *mut c_void) -> bool;
        pub(super) fn metis_shim_dattach_new(
            dm: *mut c_void,
            dev: *mut c_void,
            both: bool,
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_dattach_sgt(a: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_dattach_destroy(a: *mut c_void);
        pub(super) fn metis_shim_dmabuf_unmap(dm: *mut c_void, result: c_int);
        pub(super) fn metis_shim_dmabuf_exit();
        pub(super) fn metis_shim_rpm_disable(dev: *mut c_void, autosuspend_ms: c_int, held: bool);
        pub(super) fn metis_shim_rpm_get(dev: *mut c_void) -> c_int;
        pub(super) fn metis_shim_rpm_get_if_active(dev: *mut c_void) -> bool;
        pub(super) fn metis_shim_rpm_put(dev: *mut c_void);
        pub(super) fn metis_shim_job_wq_create() -> *mut kernel::bindings::workqueue_struct;
        pub(super) fn metis_shim_vendor_abi() -> *const c_char;
        pub(super) fn metis_shim_vclass_create(
            version: *const c_char,
            fops: *const c_void,
        ) -> c_int;
        pub(super) fn metis_shim_vclass_destroy();
        pub(super) fn metis_shim_vnode_create(
            name: *const c_char,
            data: *mut c_void,
            put: unsafe extern "C" fn(*mut c_void),
            err: *mut c_int,
        ) -> *mut c_void;
        pub(super) fn metis_shim_vnode_destroy(n: *mut c_void);
        pub(super) fn metis_shim_vnode_data(inode: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_vma_pgoff(vma: *mut c_void) -> usize;
        pub(super) fn metis_shim_vma_io(
            vma: *mut c_void,
            max_len: usize,
            ops: *const c_void,
            data: *mut c_void,
        ) -> c_int;
        pub(super) fn metis_shim_vma_data(vma: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_vmf_data(vmf: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_vmf_insert(vmf: *mut c_void, base: usize, pages: usize) -> c_uint;
        pub(super) fn metis_shim_mapping_hold(file: *mut c_void) -> *mut c_void;
        pub(super) fn metis_shim_mapping_put(mapping: *mut c_void);
        pub(super) fn metis_shim_mapping_zap(mapping: *mut c_void);
    }
}

pub(crate) fn raw_dev<Ctx: kernel::device::DeviceContext>(dev: &Device<Ctx>) -> *mut c_void {
    // CAST: `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`.
    core::ptr::from_ref(dev).cast_mut().cast::<c_void>()
}

fn raw<Ctx: kernel::device::DeviceContext>(pdev: &pci::Device<Ctx>) -> *mut bindings::pci_dev {
    // CAST: `pci::Device` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>`, which is
    // `#[repr(transparent)]` over `bindings::pci_dev`.
    core::ptr::from_ref(pdev)
        .cast_mut()
        .cast::<bindings::pci_dev>()
}

/// Stops the function from mastering the bus.
///
/// Called at unbind once the engine is stopped, and when the card no longer
/// obeys, so that nothing it still has queued can reach host memory after the
/// driver lets go of it.
pub(crate) fn clear_master<Ctx: kernel::device::DeviceContext>(pdev: &pci::Device<Ctx>) {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed; clearing the bit is a
    // config-space write that is harmless whatever the driver state.
    unsafe { bindings::pci_clear_master(raw(pdev)) };
}

/// Records the config space as it is now as the state `metis_slot_reset`
/// restores after AER recovery has reset the link.
///
/// The PCI core saves it when it enumerates the function, before any driver
/// enables it: with Memory Space and Bus Master off unless firmware turned
/// them on (SeaBIOS on x86 does; nothing does on arm64 `virt`), so restoring
/// that copy would leave the BARs undecoded.
pub(crate) fn save_state(pdev: &pci::Device<Bound>) -> Result {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed; probe holds the
    // device lock, and saving only reads config space.
    to_result(unsafe { bindings::pci_save_state(raw(pdev)) })
}

/// The Linux interrupt number of vector `vec` (process context only).
pub(crate) fn irq_number(pdev: &pci::Device<Bound>, vec: u32) -> Result<u32> {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed.
    let irq = unsafe { bindings::pci_irq_vector(raw(pdev), vec) };
    u32::try_from(irq).map_err(|_| Error::from_errno(irq))
}

/// Masks interrupt `irq` without waiting for running handlers (callable from
/// the handler itself). It stays masked until it is freed.
pub(crate) fn disable_irq_nosync(irq: u32) {
    // SAFETY: `irq` is an interrupt this driver requested and has not freed (the caller is its
    // handler); masking it has no other precondition.
    unsafe { bindings::disable_irq_nosync(irq) };
}

/// Lets the function master the bus again after [`clear_master`] (a reset
/// restores the command register as it was saved, possibly without it).
pub(crate) fn set_master(pdev: &pci::Device) {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed. Called during a reset
    // or resume, while the driver holds the card (bound and enabled).
    unsafe { bindings::pci_set_master(raw(pdev)) };
}

/// Balances the `pci_enable_device_mem()` done at probe.
pub(crate) fn disable_device(pdev: &pci::Device<Bound>) {
    // SAFETY: `raw` is a valid `pci_dev` for as long as `pdev` is borrowed; probe enabled the
    // device exactly once, and this is called exactly once at unbind.
    unsafe { bindings::pci_disable_device(raw(pdev)) };
}

/// An MSI message: what the card writes, and where, to raise a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MsiMsg {
    pub(crate) addr: u64,
    pub(crate) data: u32,
}

/// The MSI message the kernel composed for vector `vec`.
///
/// Only meaningful while MSI or MSI-X vectors are allocated, i.e. while the
/// driver is bound (probe, or an operation admitted by the card's gate).
pub(crate) fn msi_msg<Ctx: kernel::device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
    vec: u32,
) -> Result<MsiMsg> {
    let (mut addr, mut data) = (0u64, 0u32);
    // SAFETY: `raw` is a valid `pci_dev` while `pdev` is borrowed; the out pointers are valid
    // for writes for the duration of the call.
    let ret = unsafe { shim::metis_shim_msi_msg(raw(pdev).cast(), vec, &mut addr, &mut data) };
    to_result(ret)?;
    Ok(MsiMsg { addr, data })
}

/// What stands between the card's DMA and memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum IommuMode {
    /// No IOMMU: DMA addresses are physical addresses.
    #[default]
    None,
    /// An identity (passthrough) domain.
    Passthrough,
    /// A translating domain.
    Translated,
}

impl IommuMode {
    /// The number in `enum metis_iommu_mode`.
    pub(crate) fn uapi(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Passthrough => 1,
            Self::Translated => 2,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "no IOMMU",
            Self::Passthrough => "IOMMU passthrough",
            Self::Translated => "IOMMU translated",
        }
    }
}

/// The IOMMU domain the card's DMA goes through.
pub(crate) fn iommu_mode(pdev: &pci::Device<Bound>) -> IommuMode {
    // SAFETY: The device pointer is valid while `pdev` is borrowed.
    match unsafe { shim::metis_shim_iommu_mode(raw_dev(pdev.as_ref())) } {
        1 => IommuMode::Passthrough,
        2 => IommuMode::Translated,
        _ => IommuMode::None,
    }
}

/// Whether the calling task has `CAP_SYS_ADMIN` (in the initial user namespace).
pub(crate) fn capable_sys_admin() -> bool {
    // CAST: capability numbers are small.
    // SAFETY: `capable` only inspects the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

/// The `firmware` module parameter, if set.
///
/// Strings can't be Rust module parameters in 7.3, so the shim declares it.
pub(crate) fn firmware_param() -> Option<&'static CStr> {
    // SAFETY: The shim returns NULL or the module parameter's NUL-terminated string, which
    // lives as long as the module and is read-only (permission 0444).
    let p = unsafe { shim::metis_shim_firmware_name() };
    if p.is_null() {
        return None;
    }
    // SAFETY: Checked non-NULL above; NUL-terminated per the shim's contract.
    Some(unsafe { CStr::from_char_ptr(p) })
}

/// The `irq_mode` module parameter: 0 auto, 1 MSI-X, 2 MSI, 3 INTx, 4 polling.
pub(crate) fn irq_mode_param() -> i32 {
    crate::module_parameters::irq_mode.value()
}

/// The `fw_owner` module parameter: 0 auto, 1 the driver, 2 userspace.
pub(crate) fn fw_owner_param() -> i32 {
    crate::module_parameters::fw_owner.value()
}

/// The `autosuspend_ms` module parameter: runtime-PM idle delay, negative for never.
fn autosuspend_param() -> c_int {
    crate::module_parameters::autosuspend_ms.value()
}

/// A user buffer pinned, not yet mapped for the card: the half of a transfer's setup that
/// may sleep on the caller's memory, done before the card is held (security review M4).
///
/// # Invariants
///
/// `raw` is a live `struct metis_umap` from `metis_shim_umap_pin`, owned by this value.
pub(crate) struct UserPin {
    raw: *mut c_void,
}

/// The largest segment a table is built with: the transfer code splits longer runs at
/// 2 GiB (`driver.rs: set_dma_limits` tells the DMA layer the same).
const MAX_SEG: c_uint = 1 << 31;

/// What the card does with a pinned buffer (`include/metis/shim.h`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CardAccess(c_uint);

impl CardAccess {
    pub(crate) const READS: Self = Self(1 << 0);
    pub(crate) const WRITES: Self = Self(1 << 1);
    pub(crate) const BOTH: Self = Self(Self::READS.0 | Self::WRITES.0);

    /// Whether this access includes all of `other`'s.
    pub(crate) fn allows(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl UserPin {
    /// Pins `[uaddr, uaddr + len)` of the current process, for the card to read and/or
    /// write as `access` says. Charged to the caller's `RLIMIT_MEMLOCK`.
    pub(crate) fn new(uaddr: usize, len: usize, access: CardAccess) -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: `err` is valid for writes; the shim pins memory of the current process only.
        let raw = unsafe { shim::metis_shim_umap_pin(uaddr, len, access.0, MAX_SEG, &mut err) };
        if raw.is_null() {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: `raw` was just created.
        Ok(Self { raw })
    }

    /// Maps the pinned buffer for `dev`.
    pub(crate) fn map(self, dev: &Device<Bound>) -> Result<UserMap> {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `raw` is live (type invariant) and not mapped yet; the device is bound while
        // `dev` is borrowed.
        let ret = unsafe { shim::metis_shim_umap_map(this.raw, raw_dev(dev)) };
        // INVARIANT: ownership of `raw` moves to the map, which destroys it on failure too.
        let map = UserMap { raw: this.raw };
        to_result(ret)?;
        Ok(map)
    }
}

impl Drop for UserPin {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `raw` is live and owned here.
        unsafe { shim::metis_shim_umap_destroy(self.raw) };
    }
}

// SAFETY: The pin is not tied to the creating thread; unpinning may run anywhere.
unsafe impl Send for UserPin {}

/// A pinned user buffer, mapped for the card.
///
/// # Invariants
///
/// `raw` is a live `struct metis_umap` from `metis_shim_umap_pin`, mapped by
/// `metis_shim_umap_map` (or, if that failed, never used but destroyed), destroyed exactly
/// once in `Drop`.
pub(crate) struct UserMap {
    raw: *mut c_void,
}

impl UserMap {
    /// The mapped scatter-gather table (DMA addresses and lengths).
    pub(crate) fn sgt(&self) -> &SGTable {
        // SAFETY: By the type invariant `raw` is live; its table stays valid and unmodified until
        // `Drop`, which can't run while the returned borrow of `self` exists.
        unsafe { SGTable::from_raw(shim::metis_shim_umap_sgt(self.raw).cast()) }
    }

    /// Hands the buffer to the card (before a job), or back to the CPU (`for_cpu`, after
    /// a job the card wrote), for a mapping that outlives its jobs. Nothing to do (and
    /// nothing done) on a cache-coherent device without bounce buffers.
    pub(crate) fn sync(&self, for_cpu: bool) {
        // SAFETY: By the type invariant `raw` is live; the shim only syncs its own table, on
        // the device it was mapped for.
        unsafe { shim::metis_shim_umap_sync(self.raw, for_cpu) };
    }
}

impl Drop for UserMap {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `raw` is live and this is the only destroy.
        unsafe { shim::metis_shim_umap_destroy(self.raw) };
    }
}

// SAFETY: The mapping is not tied to the creating thread; unmap and unpin may run anywhere.
unsafe impl Send for UserMap {}

// SAFETY: Through `&UserMap` the table is only read (`sgt`) or ranges of it synced for the
// device or the CPU (`sync`, cache maintenance the DMA API allows from several threads at
// once); nothing modifies it until `Drop`, which needs the value itself. Jobs of a
// registered buffer share it this way.
unsafe impl Sync for UserMap {}

/// Resets the function (FLR or the next best method the PCI core knows),
/// saving and restoring its configuration space around the reset.
///
/// For probe, PM and error-recovery callbacks, where the caller already holds the device lock.
pub(crate) fn reset_function_locked<Ctx: kernel::device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
) -> Result {
    // SAFETY: `raw` is valid while `pdev` is borrowed. The callers (probe, PM and error-recovery
    // callbacks) run with the device lock held, as `pci_reset_function_locked` requires.
    to_result(unsafe { bindings::pci_reset_function_locked(raw(pdev)) })
}

/// Resets the function like [`reset_function_locked`], from a context that
/// does not hold the device lock (an ioctl). Fails with `EAGAIN` instead of
/// waiting when someone else holds it (probe, remove, system sleep).
pub(crate) fn try_reset_function(pdev: &pci::Device) -> Result {
    // SAFETY: `raw` is valid while `pdev` is borrowed; `pci_try_reset_function` takes the device
    // lock itself and fails rather than sleeping on it.
    to_result(unsafe { bindings::pci_try_reset_function(raw(pdev)) })
}

/// Sends a `change` uevent on the PCI device with the given `KEY=value` strings.
fn change_uevent(pdev: &pci::Device, vars: &[&CStr]) {
    let mut envp: [*mut c_char; 3] = [core::ptr::null_mut(); 3];
    for (slot, v) in envp.iter_mut().zip(vars.iter().take(2)) {
        *slot = v.as_char_ptr().cast_mut();
    }
    let dev: &Device = pdev.as_ref();
    // SAFETY: `dev` is valid for the call, so is its kobject; `envp` is a NULL-terminated array
    // of NUL-terminated strings that outlive the call, which only reads them.
    let ret = unsafe {
        bindings::kobject_uevent_env(
            &raw mut (*raw_dev(dev).cast::<bindings::device>()).kobj,
            bindings::kobject_action_KOBJ_CHANGE,
            envp.as_mut_ptr(),
        )
    };
    if ret != 0 {
        dev_warn!(
            pdev,
            "could not send a uevent ({}); udev rules won't see it\n",
            ret
        );
    }
}

/// Tells userspace that a runtime-owned card lost its firmware: a `change`
/// uevent with `METIS_EVENT=FIRMWARE_LOST` on the PCI device.
pub(crate) fn notify_firmware_lost(pdev: &pci::Device) {
    change_uevent(pdev, &[c"METIS_EVENT=FIRMWARE_LOST"]);
}

/// Tells userspace that the card was reset: a `change` uevent with
/// `METIS_EVENT=RESET` and `METIS_RESET_COUNT=<count>` on the PCI device.
pub(crate) fn notify_reset(pdev: &pci::Device, count: u32) {
    let Ok(nr) = CString::try_from_fmt(fmt!("METIS_RESET_COUNT={}", count)) else {
        dev_warn!(pdev, "out of memory for the reset uevent\n");
        return;
    };
    change_uevent(pdev, &[c"METIS_EVENT=RESET", &nr]);
}

/// End of probe: runtime PM with autosuspend (allowed only if the
/// `autosuspend_ms` parameter is not negative).
pub(crate) fn rpm_enable(pdev: &pci::Device<Bound>) {
    let pdev: &pci::Device = pdev;
    // SAFETY: The device is valid and bound; the PCI core's probe-time reference is handed back.
    unsafe { shim::metis_shim_rpm_enable(raw_dev(pdev.as_ref()), autosuspend_param()) };
}

/// Unbind: undoes [`rpm_enable`]; `held` tells whether open files hold a reference.
pub(crate) fn rpm_disable(pdev: &pci::Device, held: bool) {
    // SAFETY: The device is valid; called once at unbind, balancing `rpm_enable`.
    unsafe { shim::metis_shim_rpm_disable(raw_dev(pdev.as_ref()), autosuspend_param(), held) };
}

/// Keeps the card awake until [`rpm_put`]; a runtime-suspended card's resume is queued,
/// not waited for (its outage in the gate holds callers until it ends).
pub(crate) fn rpm_get(pdev: &pci::Device) -> Result {
    // SAFETY: The device is valid; the reference is balanced by `rpm_put` or at unbind.
    to_result(unsafe { shim::metis_shim_rpm_get(raw_dev(pdev.as_ref())) })
}

/// Takes a runtime-PM reference only if the card is powered now (never wakes it);
/// `true` when taken, to be dropped with [`rpm_put`].
pub(crate) fn rpm_get_if_active(pdev: &pci::Device) -> bool {
    // SAFETY: The device is valid; a reference taken is balanced by the caller's `rpm_put`.
    unsafe { shim::metis_shim_rpm_get_if_active(raw_dev(pdev.as_ref())) }
}

/// The monotonic clock in ns (the time base of kernel log stamps, without suspend time).
pub(crate) fn monotonic_ns() -> u64 {
    // SAFETY: `ktime_get` only reads the clock.
    let t = unsafe { bindings::ktime_get() };
    u64::try_from(t).unwrap_or(0)
}

/// Lets the card autosuspend again.
pub(crate) fn rpm_put(pdev: &pci::Device) {
    // SAFETY: The device is valid and the caller holds a reference from `rpm_get`.
    unsafe { shim::metis_shim_rpm_put(raw_dev(pdev.as_ref())) };
}

/// A host buffer exported as a dma-buf whose fd is reserved but not installed yet: the fd
/// becomes the caller's only with [`ExportedBuf::install`], after its number has been
/// written to userspace (security review L3); dropped before, the fd and the buffer go.
///
/// # Invariants
///
/// `buf` is a dma-buf from `metis_shim_dmabuf_export` with one reference owned here, and `fd`
/// the fd reserved for it, neither given away yet.
pub(crate) struct ExportedBuf {
    buf: NonNull<c_void>,
    fd: i32,
}

impl ExportedBuf {
    /// Allocates `len` bytes (whole pages) and exports them, for an fd opened with
    /// `fd_flags` (and O_CLOEXEC).
    pub(crate) fn new(len: usize, fd_flags: i32) -> Result<Self> {
        let (mut fd, mut err): (c_int, c_int) = (-1, 0);
        // SAFETY: Plain values (the shim validates them); `fd` and `err` are valid for writes.
        let buf = unsafe { shim::metis_shim_dmabuf_export(len, fd_flags, &mut fd, &mut err) };
        let buf = NonNull::new(buf).ok_or_else(|| Error::from_errno(err))?;
        // INVARIANT: the shim returned a buffer and its reserved fd.
        Ok(Self { buf, fd })
    }

    /// The number the fd will have.
    pub(crate) fn fd(&self) -> i32 {
        self.fd
    }

    /// Installs the fd in the calling process: the buffer is the caller's from now on.
    pub(crate) fn install(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: By the type invariant the reference and the fd are still ours; installing
        // gives both away, and `ManuallyDrop` keeps `Drop` from releasing them again.
        unsafe { shim::metis_shim_dmabuf_install(this.buf.as_ptr(), this.fd) };
    }
}

impl Drop for ExportedBuf {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the reference and the fd are ours and unused.
        unsafe { shim::metis_shim_dmabuf_abandon(self.buf.as_ptr(), self.fd) };
    }
}

/// A dma-buf (from any exporter) a job works on: checked against the caller's access to
/// it, with the card's fence published in its reservation object (implicit sync, so that
/// its other users wait for the card). The card's mapping of it is a [`DmaBufAttach`],
/// which outlives the job.
///
/// # Invariants
///
/// `raw` is a live `struct metis_dmap` from `metis_shim_dmabuf_get`, released exactly once in
/// `Drop`.
pub(crate) struct DmaBufMap {
    raw: *mut c_void,
    size: u64,
    result: c_int,
}

impl DmaBufMap {
    /// Takes the dma-buf behind `fd` of the calling process, for the card to read it
    /// if `to_device`, else to write it: the fd must be open for that access (security
    /// review L1). Waits, interruptibly and for `timeout` at most, until the buffer's
    /// other users are done with it as the access requires (a card read waits for
    /// writers, a card write for everyone), then publishes the card's fence. Sleeps on
    /// other drivers: call it before the card is held.
    pub(crate) fn get(fd: i32, to_device: bool, timeout: Delta) -> Result<Self> {
        Self::take(timeout, |jiffies, size, err| {
            // SAFETY: Plain values; `size` and `err` are valid for writes.
            unsafe { shim::metis_shim_dmabuf_get(fd, to_device, jiffies, size, err) }
        })
    }

    /// As [`Self::get`], for a buffer held across calls (the vendor ABI's attached one).
    pub(crate) fn get_held(buf: &DmaBufRef, to_device: bool, timeout: Delta) -> Result<Self> {
        Self::take(timeout, |jiffies, size, err| {
            // SAFETY: `buf.raw` is a live dma-buf (its type invariant), which the call takes
            // a reference of its own to; `size` and `err` are valid for writes.
            unsafe { shim::metis_shim_dmabuf_get_held(buf.raw, to_device, jiffies, size, err) }
        })
    }

    fn take(
        timeout: Delta,
        get: impl FnOnce(c_long, &mut u64, &mut c_int) -> *mut c_void,
    ) -> Result<Self> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let jiffies = c_long::try_from(msecs_to_jiffies(ms)).unwrap_or(c_long::MAX);
        let mut err: c_int = 0;
        let mut size = 0u64;
        let raw = get(jiffies.max(1), &mut size, &mut err);
        if raw.is_null() {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: `raw` was just created.
        Ok(Self {
            raw,
            size,
            result: 0,
        })
    }

    /// Size of the dma-buf in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the fd it was taken through is open for reading and writing.
    pub(crate) fn read_write(&self) -> bool {
        // SAFETY: By the type invariant `raw` is live.
        unsafe { shim::metis_shim_dmabuf_rw(self.raw) }
    }

    /// The buffer's identity while anything holds it (the attachment cache's key).
    pub(crate) fn id(&self) -> usize {
        // SAFETY: By the type invariant `raw` is live.
        unsafe { shim::metis_shim_dmabuf_id(self.raw) }
    }

    /// The card's fence reports `e` when it signals: the buffer's other users learn that
    /// the card's access failed.
    pub(crate) fn fail(&mut self, e: Error) {
        self.result = e.to_errno();
    }
}

impl Drop for DmaBufMap {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `raw` is live and this is the only release; it
        // signals the card's fence and drops the job's reference to the buffer.
        unsafe { shim::metis_shim_dmabuf_unmap(self.raw, self.result) };
    }
}

// SAFETY: The job's hold on the buffer is not tied to the creating thread.
unsafe impl Send for DmaBufMap {}

/// A reference to a dma-buf, kept across calls (the vendor ABI's `DMA_ATTACH`): the buffer
/// lives while it is held, whatever happens to the fds it came through.
///
/// # Invariants
///
/// `raw` is a `struct dma_buf` this holds one reference to, given back exactly once in `Drop`.
pub(crate) struct DmaBufRef {
    raw: *mut c_void,
}

impl DmaBufRef {
    /// The dma-buf behind `fd` of the calling process.
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: A plain value; `err` is valid for writes.
        let raw = unsafe { shim::metis_shim_dmabuf_hold(fd, &mut err) };
        if raw.is_null() {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: `raw` comes with one reference, now this one's.
        Ok(Self { raw })
    }
}

impl Drop for DmaBufRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this holds one reference, given back only here.
        unsafe { shim::metis_shim_dmabuf_release(self.raw) };
    }
}

// SAFETY: A dma-buf's reference count is atomic: the reference may be held and given back
// from any thread.
unsafe impl Send for DmaBufRef {}
// SAFETY: The only use through `&DmaBufRef` takes another reference, which is thread-safe.
unsafe impl Sync for DmaBufRef {}

/// A dma-buf attached to the card and mapped for one direction, with a reference of its
/// own to the buffer: kept across jobs by the card's attachment cache.
///
/// # Invariants
///
/// `raw` is a live `struct metis_dattach` from `metis_shim_dattach_new`, destroyed exactly
/// once in `Drop`, which must run while the device it was attached to is bound (the cache
/// is emptied at unbind, and jobs that hold one hold the device).
pub(crate) struct DmaBufAttach {
    raw: *mut c_void,
}

impl DmaBufAttach {
    /// Attaches `dev` to `map`'s buffer and maps it for the direction `map` was taken for,
    /// or for both directions (`both`: a mapping kept for jobs of either; only for a
    /// buffer whose fd allows both).
    pub(crate) fn new(map: &DmaBufMap, dev: &Device<Bound>, both: bool) -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: `map.raw` is live (its type invariant); the device is bound while `dev` is
        // borrowed; `err` is valid for writes.
        let raw = unsafe { shim::metis_shim_dattach_new(map.raw, raw_dev(dev), both, &mut err) };
        if raw.is_null() {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: `raw` was just created.
        Ok(Self { raw })
    }

    /// The card's mapping of the buffer.
    pub(crate) fn sgt(&self) -> &SGTable {
        // SAFETY: By the type invariant `raw` is live; its table stays valid and unmodified
        // until `Drop`, which can't run while the returned borrow of `self` exists.
        unsafe { SGTable::from_raw(shim::metis_shim_dattach_sgt(self.raw).cast()) }
    }
}

impl Drop for DmaBufAttach {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `raw` is live, this is the only destroy, and the
        // device is still bound.
        unsafe { shim::metis_shim_dattach_destroy(self.raw) };
    }
}

// SAFETY: The attachment is not tied to the creating thread; it may be destroyed anywhere
// the device is bound.
unsafe impl Send for DmaBufAttach {}

// SAFETY: Through `&DmaBufAttach` the mapped table is only read (`sgt`); nothing modifies it
// until `Drop`, which needs the value itself. Jobs on one buffer share it this way.
unsafe impl Sync for DmaBufAttach {}

/// Module exit: waits until nobody still reads the driver's name through a signalled
/// fence of the card (the dma-fence core's rule for modules).
pub(crate) fn dmabuf_exit() {
    // SAFETY: No precondition; it only waits for an RCU grace period.
    unsafe { shim::metis_shim_dmabuf_exit() };
}

/// The driver's own workqueue for async DMA jobs (security review M5, M7): not the
/// kernel-wide `system_long_wq`, which jobs that sleep for their whole transfer would
/// crowd, and flushed at unbind and destroyed at module exit, so that no job's work
/// item runs module code after the module is gone.
///
/// # Invariants
///
/// `0` is a workqueue from `alloc_workqueue`, destroyed only by `Drop`.
pub(crate) struct JobQueue(NonNull<bindings::workqueue_struct>);

impl JobQueue {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: No preconditions; NULL on failure.
        let wq = unsafe { shim::metis_shim_job_wq_create() };
        // INVARIANT: allocated just now.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    pub(crate) fn queue(&self) -> &kernel::workqueue::Queue {
        // SAFETY: The workqueue lives until `Drop` (type invariant), longer than `&self`.
        unsafe { kernel::workqueue::Queue::from_raw(self.0.as_ptr()) }
    }

    /// Waits until every work item queued so far has finished.
    pub(crate) fn flush(&self) {
        // SAFETY: A live workqueue (type invariant); flushing may sleep, which callers allow.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for JobQueue {
    fn drop(&mut self) {
        // SAFETY: Allocated by `new` and destroyed once, here; `destroy_workqueue` drains it
        // first, so no work item of this module runs afterwards.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for JobQueue {}
// SAFETY: Queueing and flushing are thread-safe.
unsafe impl Sync for JobQueue {}

/// `vendor_abi=` as given at load (`None`: not given, or empty).
pub(crate) fn vendor_abi_param() -> Option<&'static CStr> {
    // SAFETY: No preconditions; the parameter is read-only (0444) once loaded, so its string
    // lives as long as the module.
    let p = unsafe { shim::metis_shim_vendor_abi() };
    if p.is_null() {
        return None;
    }
    // SAFETY: A NUL-terminated string the module parameter code allocated, never freed while
    // the module is loaded.
    let s = unsafe { CStr::from_char_ptr(p) };
    (!s.is_empty()).then_some(s)
}

/// The class `metis` with its `version` attribute, and its char-device region, for the
/// vendor-ABI nodes (`metis_vendor.c`).
///
/// # Invariants
///
/// Created by `metis_shim_vclass_create` and not destroyed until `Drop`.
pub(crate) struct VendorClass(());

impl VendorClass {
    /// Creates the class; its nodes open through `fops`, which must outlive it.
    pub(crate) fn create(version: &CStr, fops: &'static bindings::file_operations) -> Result<Self> {
        let fops = core::ptr::from_ref(fops).cast::<c_void>();
        // SAFETY: `version` is NUL-terminated and copied; `fops` is static.
        to_result(unsafe { shim::metis_shim_vclass_create(version.as_char_ptr(), fops) })?;
        // INVARIANT: created just now.
        Ok(Self(()))
    }
}

impl Drop for VendorClass {
    fn drop(&mut self) {
        // SAFETY: Created (type invariant) and destroyed once, here. Its owner drops it after
        // the driver is unregistered, when every node is gone.
        unsafe { shim::metis_shim_vclass_destroy() };
    }
}

// SAFETY: Created and destroyed in module init and exit, on any thread.
unsafe impl Send for VendorClass {}
// SAFETY: `&VendorClass` gives access to nothing.
unsafe impl Sync for VendorClass {}

/// One vendor-ABI node (`/dev/NAME`) of a card; removed when dropped.
///
/// # Invariants
///
/// A node `metis_shim_vnode_create` made, not yet destroyed.
pub(crate) struct VendorNode(NonNull<c_void>);

impl VendorNode {
    /// Creates node `name` (in `/sys/devices/virtual/metis`: see `metis_vendor.c`).
    /// `data` goes to the node's `open` ([`vnode_data`]); `put` gets it back once (also
    /// on failure), when the last open in progress is done with the node.
    ///
    /// # Safety
    ///
    /// `put(data)` must be safe to call once, from any thread, at any later time.
    pub(crate) unsafe fn create(
        name: &CStr,
        data: *mut c_void,
        put: unsafe extern "C" fn(*mut c_void),
    ) -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: `name` is copied; `data` and `put` per this function's contract.
        let n = unsafe { shim::metis_shim_vnode_create(name.as_char_ptr(), data, put, &mut err) };
        // INVARIANT: created just now, or `err` says why not.
        NonNull::new(n)
            .map(Self)
            .ok_or_else(|| Error::from_errno(err))
    }
}

impl Drop for VendorNode {
    fn drop(&mut self) {
        // SAFETY: Created and not destroyed (type invariant), destroyed once here.
        unsafe { shim::metis_shim_vnode_destroy(self.0.as_ptr()) };
    }
}

// SAFETY: A node may be removed from any thread.
unsafe impl Send for VendorNode {}
// SAFETY: `&VendorNode` gives access to nothing.
unsafe impl Sync for VendorNode {}

/// The `data` of the vendor-ABI node `inode` opens.
///
/// # Safety
///
/// `inode` is the inode `open` was called with, for a node of [`VendorNode`], and the
/// call is made from that `open` (which holds the node).
pub(crate) unsafe fn vnode_data(inode: *mut bindings::inode) -> *mut c_void {
    // SAFETY: Per this function's contract.
    unsafe { shim::metis_shim_vnode_data(inode.cast()) }
}

/// The page offset a mapping of a vendor node asks for.
///
/// # Safety
///
/// `vma` is the area `mmap` was called with, during that call.
pub(crate) unsafe fn vma_pgoff(vma: *mut bindings::vm_area_struct) -> usize {
    // SAFETY: Per this function's contract.
    unsafe { shim::metis_shim_vma_pgoff(vma.cast()) }
}

/// Makes `vma` a shared, uncached, never executable mapping of at most `max_len` bytes
/// whose pages `ops` fault in, with `data` as its private data (`EINVAL`: too long or not
/// shared; `EPERM`: executable).
///
/// # Safety
///
/// `vma` is the area `mmap` was called with, during that call (its lock held for writing);
/// `ops` outlives the area and `data` is what `ops` expect.
pub(crate) unsafe fn vma_io(
    vma: *mut bindings::vm_area_struct,
    max_len: usize,
    ops: &'static bindings::vm_operations_struct,
    data: *mut c_void,
) -> Result {
    let ops = core::ptr::from_ref(ops).cast::<c_void>();
    // SAFETY: Per this function's contract.
    to_result(unsafe { shim::metis_shim_vma_io(vma.cast(), max_len, ops, data) })
}

/// The private data of a mapping made by [`vma_io`].
///
/// # Safety
///
/// `vma` is live (a `vm_operations_struct` callback's argument).
pub(crate) unsafe fn vma_data(vma: *mut bindings::vm_area_struct) -> *mut c_void {
    // SAFETY: Per this function's contract.
    unsafe { shim::metis_shim_vma_data(vma.cast()) }
}

/// The private data of the mapping a fault is in.
///
/// # Safety
///
/// `vmf` is the argument of a `fault` callback, during it.
pub(crate) unsafe fn vmf_data(vmf: *mut bindings::vm_fault) -> *mut c_void {
    // SAFETY: Per this function's contract.
    unsafe { shim::metis_shim_vmf_data(vmf.cast()) }
}

/// Maps page frame `base + pgoff` where the fault is (SIGBUS past `pages`).
///
/// # Safety
///
/// As [`vmf_data`]; the frames `base..base + pages` are the device memory the mapping
/// shows, which stays there while the caller holds the card.
pub(crate) unsafe fn vmf_insert(
    vmf: *mut bindings::vm_fault,
    base: usize,
    pages: usize,
) -> bindings::vm_fault_t {
    // SAFETY: Per this function's contract.
    unsafe { shim::metis_shim_vmf_insert(vmf.cast(), base, pages) }
}

/// The address space of a file's mappings (its inode's), held until dropped: what
/// [`MappedSpace::zap`] empties when the device memory behind them goes.
///
/// # Invariants
///
/// `0` came from `metis_shim_mapping_hold` and is put once, in `Drop`.
pub(crate) struct MappedSpace(NonNull<c_void>);

impl MappedSpace {
    /// # Safety
    ///
    /// `file` is a live file (an `mmap` callback's).
    pub(crate) unsafe fn hold(file: *mut bindings::file) -> Option<Self> {
        // SAFETY: Per this function's contract.
        let m = unsafe { shim::metis_shim_mapping_hold(file.cast()) };
        // INVARIANT: held just now.
        NonNull::new(m).map(Self)
    }

    /// Whether this is the space `file` maps into.
    pub(crate) fn is(&self, other: &Self) -> bool {
        self.0 == other.0
    }

    /// Unmaps every page mapped in the space: the next access faults.
    pub(crate) fn zap(&self) {
        // SAFETY: Held (type invariant), so the space and its inode are live.
        unsafe { shim::metis_shim_mapping_zap(self.0.as_ptr()) };
    }
}

impl Drop for MappedSpace {
    fn drop(&mut self) {
        // SAFETY: Held (type invariant) and put once, here.
        unsafe { shim::metis_shim_mapping_put(self.0.as_ptr()) };
    }
}

// SAFETY: An inode reference may be put from any thread.
unsafe impl Send for MappedSpace {}
// SAFETY: `zap` may run from any thread.
unsafe impl Sync for MappedSpace {}
