// SPDX-License-Identifier: GPL-2.0

//! Every function C calls in this driver, and the tables that name them.
//!
//! The 7.3 abstractions register a PCI driver with `probe` and `remove` only,
//! and a misc device without `poll`, a parent device or a mode. What they
//! leave out is built here, in Rust, as Binder does: the `file_operations`
//! of `/dev/metisN` and its registration, the `dev_pm_ops`, the PCI error
//! handlers and `shutdown`. Each callback turns its raw arguments into the
//! driver's types and hands over to the file, PM or reset code. Calls the
//! other way, into the C shim, are all in `glue.rs`.

use kernel::{
    bindings, driver,
    ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_ulong, //
    },
    fs::File,
    pci,
    prelude::*,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        poll::PollTable,
        Arc,
    },
    types::Opaque,
};

use crate::{
    card::Card,
    driver::{
        Metis,
        MetisDriver, //
    },
    file::OpenFile,
    pm::Wake,
    sysfs,
    vendor::{
        VendorCard,
        VendorFile, //
    },
};

/// A C table in a static: written once at build time, then only read.
struct CTable<T>(T);

// SAFETY: The tables hold function pointers and the module pointer, never change after
// initialisation, and C only reads them.
unsafe impl<T> Sync for CTable<T> {}

static FOPS: CTable<bindings::file_operations> = CTable(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(fop_open),
    release: Some(fop_release),
    poll: Some(fop_poll),
    unlocked_ioctl: Some(fop_ioctl),
    // The argument structs have one layout on every ABI; only the pointer needs converting.
    compat_ioctl: bindings::compat_ptr_ioctl,
    llseek: Some(bindings::noop_llseek),
    ..pin_init::zeroed()
});

/// The vendor-ABI nodes' operations (`vendor.rs`).
static VFOPS: CTable<bindings::file_operations> = CTable(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(vfop_open),
    release: Some(vfop_release),
    poll: Some(vfop_poll),
    mmap: Some(vfop_mmap),
    unlocked_ioctl: Some(vfop_ioctl),
    compat_ioctl: Some(vfop_compat_ioctl),
    llseek: Some(bindings::noop_llseek),
    ..pin_init::zeroed()
});

/// A vendor node's BAR2 mapping (`VendorFile::mmap`): each area holds a reference to the
/// card's `VendorCard` in its private data.
static VM_OPS: CTable<bindings::vm_operations_struct> = CTable(bindings::vm_operations_struct {
    open: Some(vm_open),
    close: Some(vm_close),
    fault: Some(vm_fault),
    ..pin_init::zeroed()
});

/// The vendor mappings' operations, for `VendorFile::mmap`.
pub(crate) fn vendor_vm_ops() -> &'static bindings::vm_operations_struct {
    &VM_OPS.0
}

/// The vendor-ABI nodes' operations, for their class (`glue::VendorClass`).
pub(crate) fn vendor_fops() -> &'static bindings::file_operations {
    &VFOPS.0
}

static PM_OPS: CTable<bindings::dev_pm_ops> = CTable(bindings::dev_pm_ops {
    runtime_suspend: Some(pm_runtime_suspend),
    // Waking from runtime suspend is a resume like any other.
    runtime_resume: Some(pm_resume),
    suspend: Some(pm_suspend),
    resume: Some(pm_resume),
    freeze: Some(pm_suspend),
    thaw: Some(pm_resume),
    poweroff: Some(pm_suspend),
    restore: Some(pm_restore),
    ..pin_init::zeroed()
});

static ERR_HANDLERS: CTable<bindings::pci_error_handlers> = CTable(bindings::pci_error_handlers {
    error_detected: Some(pci_error_detected),
    slot_reset: Some(pci_slot_reset),
    resume: Some(pci_error_resume),
    reset_prepare: Some(pci_reset_prepare),
    reset_done: Some(pci_reset_done),
    ..pin_init::zeroed()
});

/// Minor indices in use (`/dev/metis0` to `/dev/metis63`), one bit each.
/// One sysfs attribute: the C descriptor the driver core sees, then how to format it.
#[repr(C)]
struct Attr {
    dev: bindings::device_attribute,
    show: sysfs::Show,
}

const N_ATTRS: usize = sysfs::ATTRIBUTES.len();

static ATTRS: CTable<[Attr; N_ATTRS]> = CTable({
    let mut a = [const {
        Attr {
            dev: pin_init::zeroed(),
            show: |_, _| Ok(()),
        }
    }; N_ATTRS];
    let mut i = 0;
    while i < N_ATTRS {
        let (name, show) = sysfs::ATTRIBUTES[i];
        a[i].dev.attr.name = name.to_bytes_with_nul().as_ptr();
        a[i].dev.attr.mode = 0o444;
        a[i].dev.__bindgen_anon_1 = bindings::device_attribute__bindgen_ty_1 {
            show: Some(attr_show),
        };
        a[i].show = show;
        i += 1;
    }
    a
});

/// The NULL-terminated list the attribute group points at.
static ATTR_LIST: CTable<[*const bindings::attribute; N_ATTRS + 1]> = CTable({
    let mut l = [core::ptr::null(); N_ATTRS + 1];
    let base: *const Attr = (&raw const ATTRS.0).cast();
    let mut i = 0;
    while i < N_ATTRS {
        // SAFETY: `i < N_ATTRS`, so `base + i` is an element of `ATTRS`; only its address
        // is taken.
        l[i] = unsafe { &raw const (*base.add(i)).dev.attr };
        i += 1;
    }
    l
});

/// The group, as a directory `metis/` of the PCI device.
static ATTR_GROUP: CTable<bindings::attribute_group> = CTable(bindings::attribute_group {
    name: c"metis".to_bytes_with_nul().as_ptr(),
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs_const: (&raw const ATTR_LIST.0).cast(),
    },
    ..pin_init::zeroed()
});

/// The driver's attribute groups: the driver core adds them after probe and
/// removes them before remove, waiting for `show` calls to finish.
static DEV_GROUPS: CTable<[*const bindings::attribute_group; 2]> =
    CTable([&raw const ATTR_GROUP.0, core::ptr::null()]);

/// # Safety
///
/// Called by sysfs for one of [`ATTRS`] of a device bound to this driver, with
/// a page-sized `buf`.
unsafe extern "C" fn attr_show(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: The driver core registers `dev_groups` after probe stored the driver data and
    // removes them (waiting for running `show` calls) before remove, so `dev` is bound to
    // this driver for the whole call.
    let Some(card) = (unsafe { card_of(dev) }) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: Every attribute of the group is the `dev` field, at offset 0, of an `Attr` in
    // `ATTRS` (`repr(C)`), which is immutable.
    let show = unsafe { (*attr.cast::<Attr>()).show };
    // SAFETY: sysfs hands `show` a buffer of `PAGE_SIZE` bytes that nothing else uses meanwhile.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut w = sysfs::PageWriter::new(page);
    // A value cut at the end of the page is still shown (none comes near it).
    let _ = show(card, &mut w);
    // CAST: at most `PAGE_SIZE`.
    w.finish() as isize
}

static INDICES: Atomic<u64> = Atomic::new(0);

fn take_index() -> Result<u32> {
    let mut cur = INDICES.load(Relaxed);
    loop {
        let free = (!cur).trailing_zeros();
        if free >= u64::BITS {
            return Err(ENOSPC);
        }
        match INDICES.cmpxchg(cur, cur | (1 << free), Full) {
            Ok(_) => return Ok(free),
            Err(now) => cur = now,
        }
    }
}

fn put_index(index: u32) {
    let mut cur = INDICES.load(Relaxed);
    while let Err(now) = INDICES.cmpxchg(cur, cur & !(1u64 << index), Full) {
        cur = now;
    }
}

/// The registered misc device of one card.
///
/// # Invariants
///
/// `misc` is registered with [`FOPS`] from [`Cdev::register`] until `Drop`, at
/// a fixed address (the node is boxed and never moved out); `index` is taken
/// in [`INDICES`] for as long.
struct Node {
    misc: Opaque<bindings::miscdevice>,
    name: CString,
    index: u32,
    card: Arc<Card>,
}

/// The `/dev/metisN` node of one card; unregistered when dropped.
pub(crate) struct Cdev(KBox<Node>);

impl Cdev {
    pub(crate) fn register(
        pdev: &pci::Device<kernel::device::Bound>,
        card: Arc<Card>,
    ) -> Result<Self> {
        let index = take_index()?;
        let node = CString::try_from_fmt(fmt!("metis{}", index))
            .and_then(|name| {
                KBox::new(
                    Node {
                        misc: Opaque::uninit(),
                        name,
                        index,
                        card,
                    },
                    GFP_KERNEL,
                )
                .map_err(Into::into)
            })
            .inspect_err(|_| put_index(index))?;
        let parent: &kernel::device::Device<kernel::device::Bound> = pdev.as_ref();
        let misc = bindings::miscdevice {
            // CAST: 255 fits.
            minor: bindings::MISC_DYNAMIC_MINOR as c_int,
            name: node.name.as_char_ptr(),
            fops: &FOPS.0,
            parent: crate::glue::raw_dev(parent).cast(),
            mode: 0o660,
            ..pin_init::zeroed()
        };
        // SAFETY: `node.misc` is valid for writes and nothing else refers to it yet.
        unsafe { node.misc.get().write(misc) };
        // SAFETY: `misc` is initialised, lives in the box until `Drop` deregisters it, and its
        // name and fops outlive the registration (the name is in the node, the fops static).
        let ret = unsafe { bindings::misc_register(node.misc.get()) };
        if ret != 0 {
            put_index(index);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered just now, with the index taken above.
        Ok(Self(node))
    }

    pub(crate) fn index(&self) -> u32 {
        self.0.index
    }
}

impl Drop for Cdev {
    fn drop(&mut self) {
        // SAFETY: Registered by the type invariant, deregistered once here. `misc_deregister`
        // takes the lock `open` runs under, so after it no open is running or can start.
        unsafe { bindings::misc_deregister(self.0.misc.get()) };
        put_index(self.0.index);
    }
}

// SAFETY: Registration and deregistration may happen on different threads.
unsafe impl Send for Cdev {}
// SAFETY: `&Cdev` only reads the index.
unsafe impl Sync for Cdev {}

/// `open`: creates the file's state.
///
/// # Safety
///
/// Called by `misc_open` for a device registered with [`FOPS`], with `file` valid.
unsafe extern "C" fn fop_open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `misc_open` set `private_data` to the registered miscdevice and holds the lock
    // that deregistration takes, so the miscdevice (and the node around it) is live.
    let misc = unsafe { (*file).private_data }.cast::<Opaque<bindings::miscdevice>>();
    // SAFETY: Only `Cdev::register` registers `FOPS`, always for the `misc` field of a `Node`.
    let node = unsafe { &*kernel::container_of!(misc, Node, misc) };
    match OpenFile::open(node.card.clone()) {
        Ok(f) => {
            // SAFETY: `file` is valid; the VFS hands `private_data` back to the other callbacks.
            unsafe { (*file).private_data = KBox::into_raw(f).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// The file's state, as `open` left it.
///
/// # Safety
///
/// `file` must be a file opened by [`fop_open`] and not released yet.
unsafe fn open_file<'a>(file: *mut bindings::file) -> &'a OpenFile {
    // SAFETY: Per this function's safety contract, `private_data` is the box from `fop_open`.
    unsafe { &*(*file).private_data.cast::<OpenFile>() }
}

/// # Safety
///
/// Called by the VFS once per successful [`fop_open`].
unsafe extern "C" fn fop_release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `private_data` is the box from `fop_open`, released exactly once here.
    let f = unsafe { KBox::from_raw((*file).private_data.cast::<OpenFile>()) };
    f.release();
    0
}

/// # Safety
///
/// Called by the VFS on a file opened by [`fop_open`]; `pt` may be NULL.
unsafe extern "C" fn fop_poll(
    file: *mut bindings::file,
    pt: *mut bindings::poll_table,
) -> bindings::__poll_t {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { open_file(file) };
    // SAFETY: The VFS holds a reference to `file` for the duration of `poll`, and `poll` is not
    // called under `fdget_pos`.
    let file = unsafe { File::from_raw_file(file) };
    // SAFETY: `pt` is NULL or a valid poll table for the duration of this call.
    let pt = unsafe { PollTable::from_raw(pt) };
    f.poll(file, &pt)
}

/// # Safety
///
/// Called by the VFS on a file opened by [`fop_open`], for the duration of which it stays open.
unsafe extern "C" fn fop_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { open_file(file) };
    match f.ioctl_call(cmd, arg) {
        // CAST: the ioctls return 0 or small counts.
        Ok(v) => v as c_long,
        // CAST: errno values are small negative numbers.
        Err(e) => e.to_errno() as c_long,
    }
}

/// `open` of a vendor-ABI node.
///
/// # Safety
///
/// Called by `chrdev_open` for a node of `glue::VendorNode` (which holds the node), with
/// `inode` and `file` valid.
unsafe extern "C" fn vfop_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: Per this function's contract.
    let data = unsafe { crate::glue::vnode_data(inode) };
    // SAFETY: `vendor::register` made `data` from an `Arc<VendorCard>` that the node holds
    // until its last open is done: a second reference is taken here.
    let node_ref = unsafe { Arc::from_raw(data.cast::<VendorCard>().cast_const()) };
    let vc = node_ref.clone();
    // The node keeps its own reference.
    let _ = Arc::into_raw(node_ref);
    match VendorFile::open(vc) {
        Ok(f) => {
            // SAFETY: `file` is valid; the VFS hands `private_data` back to the other callbacks.
            unsafe { (*file).private_data = KBox::into_raw(f).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// The vendor file's state, as `vfop_open` left it.
///
/// # Safety
///
/// `file` must be a file opened by [`vfop_open`] and not released yet.
unsafe fn vendor_file<'a>(file: *mut bindings::file) -> &'a VendorFile {
    // SAFETY: Per this function's safety contract, `private_data` is the box from `vfop_open`.
    unsafe { &*(*file).private_data.cast::<VendorFile>() }
}

/// # Safety
///
/// Called by the VFS once per successful [`vfop_open`].
unsafe extern "C" fn vfop_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` is the box from `vfop_open`, released exactly once here.
    let f = unsafe { KBox::from_raw((*file).private_data.cast::<VendorFile>()) };
    f.release();
    0
}

/// # Safety
///
/// Called by the VFS on a file opened by [`vfop_open`], for the duration of which it stays
/// open.
unsafe extern "C" fn vfop_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { vendor_file(file) };
    match f.ioctl(cmd, arg) {
        // CAST: the commands return 0 or a core index.
        Ok(v) => v as c_long,
        // CAST: errno values are small negative numbers.
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called by the VFS on a file opened by [`vfop_open`]; `pt` may be NULL.
unsafe extern "C" fn vfop_poll(
    file: *mut bindings::file,
    pt: *mut bindings::poll_table,
) -> bindings::__poll_t {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { vendor_file(file) };
    // SAFETY: The VFS holds a reference to `file` for the duration of `poll`, and `poll` is not
    // called under `fdget_pos`.
    let file = unsafe { File::from_raw_file(file) };
    // SAFETY: `pt` is NULL or a valid poll table for the duration of this call.
    let pt = unsafe { PollTable::from_raw(pt) };
    f.poll(file, &pt)
}

/// # Safety
///
/// Called by the VFS on a file opened by [`vfop_open`], with the area's mm locked for
/// writing.
unsafe extern "C" fn vfop_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { vendor_file(file) };
    // SAFETY: Per this function's contract.
    match unsafe { f.mmap(file, vma) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A vendor mapping's area was copied (fork) or split: one more reference.
///
/// # Safety
///
/// `vma` is an area `VendorFile::mmap` set up (or a copy of one).
unsafe extern "C" fn vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: Per this function's contract, the private data holds a reference made by
    // `Arc::into_raw`; one more is taken for this area, given back by its `vm_close`.
    unsafe {
        let p = crate::glue::vma_data(vma).cast::<VendorCard>().cast_const();
        let held = Arc::from_raw(p);
        let _ = Arc::into_raw(held.clone());
        let _ = Arc::into_raw(held);
    }
}

/// # Safety
///
/// As [`vm_open`]; called once per area, at its end.
unsafe extern "C" fn vm_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: The area's own reference (from `VendorFile::mmap` or `vm_open`), given back once.
    drop(unsafe { Arc::from_raw(crate::glue::vma_data(vma).cast::<VendorCard>().cast_const()) });
}

/// # Safety
///
/// Called by the mm for an area `VendorFile::mmap` set up, which holds its `VendorCard`.
unsafe extern "C" fn vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: The area's private data is a live `VendorCard` (it holds a reference).
    let vc = unsafe { &*crate::glue::vmf_data(vmf).cast::<VendorCard>() };
    // SAFETY: Per this function's contract.
    unsafe { vc.fault(vmf) }
}

/// A 32-bit process on a vendor-ABI node: the vendor's structs and command numbers
/// are those of LP64 (several hold `size_t` or encode a pointer's size), so nothing a
/// 32-bit caller sends is what it means.
///
/// # Safety
///
/// As [`vfop_ioctl`].
unsafe extern "C" fn vfop_compat_ioctl(
    file: *mut bindings::file,
    _cmd: c_uint,
    _arg: c_ulong,
) -> c_long {
    // SAFETY: Per this function's safety contract.
    let f = unsafe { vendor_file(file) };
    f.refuse_compat();
    // CAST: errno values are small negative numbers.
    ENOTTY.to_errno() as c_long
}

/// The card of a bound device, if probe has finished.
///
/// # Safety
///
/// `dev` must be a valid device bound to this driver (the PM core and the
/// PCI core call with the device lock held, or during the device's error
/// recovery); the result must not be used after the callback returns.
unsafe fn card_of<'a>(dev: *mut bindings::device) -> Option<&'a Card> {
    // SAFETY: `dev` is valid; `driver_data` is NULL until `pci::Adapter` stored the pinned
    // `Metis` at the end of probe, and stays that until remove, which can't run during a
    // callback that holds the device lock (or during error recovery).
    let data = unsafe { (*dev).driver_data };
    if data.is_null() {
        // Probe is still running (a reset at probe calls `reset_prepare`/`reset_done`).
        return None;
    }
    // SAFETY: As above: a live `Metis`.
    Some(unsafe { &*data.cast::<Metis<'_>>() }.card())
}

/// # Safety
///
/// As [`card_of`], for a PCI device.
unsafe fn pci_card_of<'a>(pdev: *mut bindings::pci_dev) -> Option<&'a Card> {
    // SAFETY: Per this function's safety contract; `dev` is embedded in the `pci_dev`.
    unsafe { card_of(&raw mut (*pdev).dev) }
}

fn errno(res: Result) -> c_int {
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the PM core for a device of this driver.
unsafe extern "C" fn pm_suspend(dev: *mut bindings::device) -> c_int {
    // SAFETY: Per this function's safety contract.
    let Some(card) = (unsafe { card_of(dev) }) else {
        return 0;
    };
    // Being unbound: nothing to stop.
    errno(
        card.pm_suspend()
            .or_else(|e| if e == ENODEV { Ok(()) } else { Err(e) }),
    )
}

/// # Safety
///
/// As [`pm_suspend`].
unsafe extern "C" fn pm_resume(dev: *mut bindings::device) -> c_int {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { card_of(dev) } {
        card.pm_resume(Wake::Resume);
    }
    0
}

/// # Safety
///
/// As [`pm_suspend`].
unsafe extern "C" fn pm_restore(dev: *mut bindings::device) -> c_int {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { card_of(dev) } {
        card.pm_resume(Wake::Restore);
    }
    0
}

/// Runtime suspend: nobody has the card open (files hold it awake).
///
/// # Safety
///
/// As [`pm_suspend`].
unsafe extern "C" fn pm_runtime_suspend(dev: *mut bindings::device) -> c_int {
    // SAFETY: Per this function's safety contract.
    match unsafe { card_of(dev) } {
        Some(card) => errno(card.pm_suspend()),
        None => 0,
    }
}

/// `shutdown` (reboot, kexec): no DMA or interrupt from the card after this.
///
/// # Safety
///
/// Called by the PCI core for a device of this driver.
unsafe extern "C" fn pci_shutdown(pdev: *mut bindings::pci_dev) {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { pci_card_of(pdev) } {
        card.close();
        card.quiesce();
    }
}

/// # Safety
///
/// Called by the PCI core, with the device lock held, for a device of this driver.
unsafe extern "C" fn pci_reset_prepare(pdev: *mut bindings::pci_dev) {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { pci_card_of(pdev) } {
        card.external_reset_prepare();
    }
}

/// # Safety
///
/// As [`pci_reset_prepare`].
unsafe extern "C" fn pci_reset_done(pdev: *mut bindings::pci_dev) {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { pci_card_of(pdev) } {
        card.external_reset_done();
    }
}

/// AER `error_detected`: asks for a link reset unless the failure is permanent.
///
/// # Safety
///
/// Called by AER recovery for a device of this driver.
unsafe extern "C" fn pci_error_detected(
    pdev: *mut bindings::pci_dev,
    state: bindings::pci_channel_state_t,
) -> bindings::pci_ers_result_t {
    // SAFETY: Per this function's safety contract.
    let Some(card) = (unsafe { pci_card_of(pdev) }) else {
        return bindings::pci_ers_result_PCI_ERS_RESULT_NONE;
    };
    if card.pci_error_detected(state == bindings::pci_channel_io_perm_failure) {
        bindings::pci_ers_result_PCI_ERS_RESULT_NEED_RESET
    } else {
        bindings::pci_ers_result_PCI_ERS_RESULT_DISCONNECT
    }
}

/// AER `slot_reset`: the link was reset, so config space holds the card's defaults again.
///
/// # Safety
///
/// As [`pci_error_detected`].
unsafe extern "C" fn pci_slot_reset(pdev: *mut bindings::pci_dev) -> bindings::pci_ers_result_t {
    // SAFETY: `pdev` is valid for the call; restoring and saving the state the driver saved at
    // probe is what the PCI core expects of a driver here.
    unsafe {
        bindings::pci_restore_state(pdev);
        bindings::pci_save_state(pdev);
    }
    bindings::pci_ers_result_PCI_ERS_RESULT_RECOVERED
}

/// AER `resume`: the link was reset; bring the card back.
///
/// # Safety
///
/// As [`pci_error_detected`].
unsafe extern "C" fn pci_error_resume(pdev: *mut bindings::pci_dev) {
    // SAFETY: Per this function's safety contract.
    if let Some(card) = unsafe { pci_card_of(pdev) } {
        card.external_reset_done();
    }
}

/// The PCI driver registration of [`MetisDriver`], with the callbacks
/// `pci::Adapter` does not fill (PM, shutdown, error handlers).
pub(crate) struct MetisAdapter;

// SAFETY: The layout is that of `pci::Adapter<MetisDriver>`, to which everything is delegated.
unsafe impl driver::DriverLayout for MetisAdapter {
    type DriverType = bindings::pci_driver;
    type DriverData<'bound> = <MetisDriver as pci::Driver>::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = core::mem::offset_of!(bindings::pci_driver, driver);
}

// SAFETY: Both functions forward to `pci::Adapter<MetisDriver>` under the same contract.
unsafe impl driver::RegistrationOps for MetisAdapter {
    unsafe fn register(
        pdrv: &Opaque<bindings::pci_driver>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let p = pdrv.get();
        // SAFETY: `pdrv` is valid and not registered yet, so nothing reads it concurrently; the
        // tables are statics.
        unsafe {
            if cfg!(CONFIG_PM) {
                (*p).driver.pm = &PM_OPS.0;
            }
            (*p).shutdown = Some(pci_shutdown);
            // `__pci_register_driver` copies it to `driver.dev_groups`; C only reads the list
            // (the field is `const struct attribute_group **`).
            (*p).dev_groups = DEV_GROUPS.0.as_ptr().cast_mut();
            (*p).err_handler = &ERR_HANDLERS.0;
        }
        // SAFETY: Same contract as this function's.
        unsafe {
            <pci::Adapter<MetisDriver> as driver::RegistrationOps>::register(pdrv, name, module)
        }
    }

    unsafe fn unregister(pdrv: &Opaque<bindings::pci_driver>) {
        // SAFETY: Same contract as this function's.
        unsafe { <pci::Adapter<MetisDriver> as driver::RegistrationOps>::unregister(pdrv) }
    }
}
