// SPDX-License-Identifier: GPL-2.0

//! The firmware's interface structure at BAR2 offset 0 (known layout, see
//! `docs/hw-interface.md`), and where the driver may write linked lists.
//!
//! The card's firmware writes this structure into its L2 memory and the host
//! reads it through BAR2. Every offset and size it publishes is checked here
//! before anything uses it: a firmware that publishes a bad one (the runtime
//! uploads firmware itself, so this is not hypothetical) must refuse the card,
//! not turn into an out-of-bounds access.

use kernel::{
    io::Io,
    new_mutex,
    pci,
    prelude::*,
    sync::Mutex, //
};

use crate::{
    card::{
        Card,
        L2Bar, //
    },
    edma::Dir,
    ll,
    regs::{
        Halves,
        BAR2_SIZE,
        L2_BASE, //
    },
    vmsi::Vmsi,
};

/// 1.6.2 firmware starts the structure with a header carrying this u16.
pub(crate) const HDIF_MAGIC: u32 = 0xfd1f;
/// `dma_vm` value of a firmware that offers its DMA-VM service.
pub(crate) const DMA_VM_SUPPORTED: u32 = 0xc1a0_c1a0;

/// Offsets of the fixed fields.
pub(crate) mod off {
    /// Command slot: u32 opcode.
    pub(crate) const CMD_OPCODE: usize = 0xb0;
    /// Command slot: u32 argument size.
    pub(crate) const CMD_SIZE: usize = 0xb4;
    /// Command slot: 256 bytes of message.
    pub(crate) const CMD_MSG: usize = 0xb8;
    /// u8 major, u8 minor of the running firmware.
    pub(crate) const MASTER_VERSION: usize = 0x200;
    /// u64 device bases of memory areas 0 and 1.
    pub(crate) const MEMORY_MAP: usize = 0x208;
    /// u32 DMA-VM flag (1.6.2 layout only).
    pub(crate) const DMA_VM: usize = 0x218;
    /// u64 device address where firmware images go.
    pub(crate) const FW_LOAD_ADDR: usize = 0x238;
    /// Eight 24-byte area references.
    pub(crate) const AREA_REFS: usize = 0x240;
    /// End of the static part: published areas must lie beyond it.
    pub(crate) const STATIC_END: usize = 0x800;
}

/// Bytes of the command message.
pub(crate) const CMD_MSG_LEN: usize = 256;

const AREA_REF_SIZE: usize = 24;
/// Index of each reference at [`off::AREA_REFS`].
const REF_HOST_DRV: usize = 5;
const REF_DMA_DESC: usize = 6;
const REF_VMSI: usize = 7;
const HOST_DRV_MAGIC: u32 = 0xbac1;
const DMA_DESC_MAGIC: u32 = 0xd4d4;
const VMSI_MAGIC: u32 = 0xb5b5;

/// Smallest host-driver area: `ctrl`, `base`, `target` (u64), `size`.
pub(crate) const HOST_DRV_SIZE: usize = 24;
/// Smallest vMSI configuration: counts and the 32 per-vector entries.
const VMSI_CFG_SIZE: usize = 4 + 32 * 8;
/// Entries of the virtual-MSI table.
pub(crate) const VMSI_MAX: u32 = 1024;

/// Bytes at the end of the descriptor buffer kept for the interrupt self-test.
pub(crate) const SCRATCH_SIZE: u64 = 256;
/// List parts: 4 write and 4 read channels.
const PARTS: u64 = 8;
/// A part must hold at least two data elements and the link.
const MIN_PART: u64 = 3 * ll::ELEMENT_SIZE as u64;
/// Descriptor buffer used when the firmware publishes none: the end of L2.
const FALLBACK_DESC_SIZE: u64 = 192 * 1024;

/// Which of the two known layouts the firmware wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// 1.4.x firmware: padding before the command slot, no `dma_vm`.
    V1_4,
    /// 1.6.2 firmware: the 0xFD1F header.
    V1_6,
}

impl Layout {
    /// The firmware versions that write it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::V1_4 => "1.4.x",
            Self::V1_6 => "1.6.2",
        }
    }
}

/// A checked area: `size` bytes at `offset` in BAR2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Area {
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

/// The buffer in L2 where the driver writes linked lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DescBuf {
    pub(crate) dev_addr: u64,
    pub(crate) size: u64,
    /// Whether the firmware published it (otherwise the end of L2 is used).
    pub(crate) published: bool,
}

/// One channel's share of the descriptor buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListPart {
    /// Offset in BAR2.
    pub(crate) bar_off: usize,
    /// The same place as the engine sees it.
    pub(crate) dev_addr: u64,
    /// Elements it holds.
    pub(crate) slots: usize,
}

/// What the firmware published, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Iface {
    pub(crate) layout: Layout,
    /// `master_version` (major, minor).
    pub(crate) version: (u8, u8),
    pub(crate) memory_map: [u64; 2],
    pub(crate) dma_vm: bool,
    pub(crate) fw_load_addr: u64,
    pub(crate) host_drv: Area,
    /// The virtual-MSI configuration area (its word count).
    pub(crate) vmsi: Area,
    /// Words of the virtual-MSI table the firmware uses.
    pub(crate) vmsi_count: u32,
    pub(crate) desc: DescBuf,
    /// The descriptor area, which says where `desc` is (if the firmware published one).
    pub(crate) desc_ref: Option<Area>,
}

impl Iface {
    /// The L2 this driver reads its setup from or writes, as device addresses: the list
    /// buffer, the host-driver area with the virtual-MSI registration, the virtual-MSI
    /// configuration and the descriptor area (an empty range if none was published).
    pub(crate) fn driver_areas(&self) -> [core::ops::Range<u64>; 4] {
        // CAST: offsets and sizes inside BAR2 (checked when parsed) fit in u64.
        let dev = |a: Area| L2_BASE + a.offset as u64..L2_BASE + (a.offset + a.size) as u64;
        [
            self.desc.span(),
            dev(self.host_drv),
            dev(self.vmsi),
            self.desc_ref.map_or(0..0, dev),
        ]
    }

    /// `master_version` as `metis_info.fw_version` encodes it (major | minor << 8).
    pub(crate) fn fw_version(&self) -> u32 {
        u32::from(self.version.0) | u32::from(self.version.1) << 8
    }
}

/// A published value that can't be used: the field and what it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bad {
    pub(crate) field: &'static str,
    pub(crate) value: u64,
}

/// Reads the 32-bit word at a BAR2 offset.
pub(crate) type ReadWord<'a> = &'a dyn Fn(usize) -> Result<u32>;

/// Reads the 64-bit quantity at a BAR2 offset, low word first.
pub(crate) fn u64_at(read: ReadWord<'_>, at: usize) -> Result<u64> {
    Ok(Halves {
        lo: read(at)?,
        hi: read(at + 4)?,
    }
    .join())
}

fn bad<T>(field: &'static str, value: u64) -> Result<core::result::Result<T, Bad>> {
    Ok(Err(Bad { field, value }))
}

/// Reads area reference `index`: `None` when its magic is not `magic`.
fn area(
    read: ReadWord<'_>,
    bar_len: usize,
    index: usize,
    magic: u32,
    min: usize,
    name: &'static str,
) -> Result<core::result::Result<Option<Area>, Bad>> {
    let at = off::AREA_REFS + index * AREA_REF_SIZE;
    let head = read(at)?;
    if head & 0xffff != magic {
        return Ok(Ok(None));
    }
    let size = u64::from(read(at + 4)?);
    let offset = u64_at(read, at + 8)?;
    let end = match offset.checked_add(size) {
        Some(end) => end,
        None => return bad(name, offset),
    };
    // CAST: usize fits in u64 on every supported target.
    if offset < off::STATIC_END as u64 || end > bar_len as u64 || offset % 4 != 0 {
        return bad(name, offset);
    }
    if size < min as u64 {
        return bad(name, size);
    }
    // CAST: both are below `bar_len`, checked above.
    Ok(Ok(Some(Area {
        offset: offset as usize,
        size: size as usize,
    })))
}

/// Names of the areas, for the log line of a bad one, and of their magic.
fn names(index: usize) -> (&'static str, &'static str) {
    match index {
        REF_HOST_DRV => ("host-driver area", "host-driver area magic"),
        REF_VMSI => ("virtual-MSI area", "virtual-MSI area magic"),
        _ => ("descriptor area", "descriptor area magic"),
    }
}

/// As [`area`], for an area the driver can't work without: absent is bad too.
fn required(
    read: ReadWord<'_>,
    bar_len: usize,
    index: usize,
    magic: u32,
    min: usize,
) -> Result<core::result::Result<Area, Bad>> {
    let (name, magic_name) = names(index);
    match area(read, bar_len, index, magic, min, name)? {
        Ok(Some(a)) => Ok(Ok(a)),
        Ok(None) => {
            let found = read(off::AREA_REFS + index * AREA_REF_SIZE)? & 0xffff;
            bad(magic_name, u64::from(found))
        }
        Err(b) => Ok(Err(b)),
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Parses and checks the structure through `read`, for a BAR2 of `bar_len` bytes.
///
/// The outer error is an access that failed (card gone); the inner one is
/// a value the firmware published that the driver refuses to use.
pub(crate) fn parse(
    read: ReadWord<'_>,
    bar_len: usize,
) -> Result<core::result::Result<Iface, Bad>> {
    let layout = if read(0)? & 0xffff == HDIF_MAGIC {
        Layout::V1_6
    } else {
        Layout::V1_4
    };
    let ver = read(off::MASTER_VERSION)?;
    // CAST: the two version bytes.
    let version = (ver as u8, (ver >> 8) as u8);
    let memory_map = [
        u64_at(read, off::MEMORY_MAP)?,
        u64_at(read, off::MEMORY_MAP + 8)?,
    ];
    let dma_vm = layout == Layout::V1_6 && read(off::DMA_VM)? == DMA_VM_SUPPORTED;
    let fw_load_addr = u64_at(read, off::FW_LOAD_ADDR)?;

    let host_drv = match required(read, bar_len, REF_HOST_DRV, HOST_DRV_MAGIC, HOST_DRV_SIZE)? {
        Ok(a) => a,
        Err(b) => return Ok(Err(b)),
    };
    let vmsi = match required(read, bar_len, REF_VMSI, VMSI_MAGIC, VMSI_CFG_SIZE)? {
        Ok(a) => a,
        Err(b) => return Ok(Err(b)),
    };
    let vmsi_count = read(vmsi.offset)? & 0xffff;
    if vmsi_count == 0 || vmsi_count > VMSI_MAX {
        return bad("num_vmsi", u64::from(vmsi_count));
    }

    let l2_end = L2_BASE + bar_len as u64;
    let desc_area = match area(
        read,
        bar_len,
        REF_DMA_DESC,
        DMA_DESC_MAGIC,
        16,
        names(REF_DMA_DESC).0,
    )? {
        Err(b) => return Ok(Err(b)),
        Ok(a) => a,
    };
    let desc = match desc_area {
        None => {
            // CAST: usize fits in u64. Half of a (test-sized) small window at most.
            let size = FALLBACK_DESC_SIZE.min(bar_len as u64 / 2);
            DescBuf {
                dev_addr: l2_end - size,
                size,
                published: false,
            }
        }
        Some(a) => {
            let dev_addr = u64_at(read, a.offset)?;
            let size = u64_at(read, a.offset + 8)?;
            let end = dev_addr.checked_add(size);
            let static_end = L2_BASE + off::STATIC_END as u64;
            match end {
                Some(end) if dev_addr >= static_end && end <= l2_end && dev_addr % 8 == 0 => {}
                _ => return bad("descriptor buffer address", dev_addr),
            }
            if size < PARTS * MIN_PART + SCRATCH_SIZE {
                return bad("descriptor buffer size", size);
            }
            DescBuf {
                dev_addr,
                size,
                published: true,
            }
        }
    };
    // The driver writes lists there: it must not land on what the firmware reads.
    let span = (desc.dev_addr - L2_BASE, desc.dev_addr - L2_BASE + desc.size);
    for (name, a) in [("host-driver area", host_drv), ("virtual-MSI area", vmsi)] {
        // CAST: usize fits in u64.
        let other = (a.offset as u64, (a.offset + a.size) as u64);
        if overlaps(span, other) {
            return bad(name, other.0);
        }
    }

    Ok(Ok(Iface {
        layout,
        version,
        memory_map,
        dma_vm,
        fw_load_addr,
        host_drv,
        vmsi,
        vmsi_count,
        desc,
        desc_ref: desc_area,
    }))
}

impl DescBuf {
    fn part_size(&self) -> u64 {
        // Each part 8-byte aligned, so that every element is too.
        ((self.size - SCRATCH_SIZE) / PARTS) & !7
    }

    /// The part of `dir`'s channel `ch` (0..4).
    pub(crate) fn part(&self, dir: Dir, ch: u32) -> Result<ListPart> {
        if ch >= 4 {
            return Err(EINVAL);
        }
        let index = match dir {
            Dir::Wr => u64::from(ch),
            Dir::Rd => 4 + u64::from(ch),
        };
        let part = self.part_size();
        let dev_addr = self.dev_addr + index * part;
        Ok(ListPart {
            bar_off: usize::try_from(dev_addr - L2_BASE)?,
            dev_addr,
            slots: usize::try_from(part)? / ll::ELEMENT_SIZE,
        })
    }

    /// Where the buffer is, as the engine sees it: the lists and the scratch bytes.
    pub(crate) fn span(&self) -> core::ops::Range<u64> {
        self.dev_addr..self.dev_addr.saturating_add(self.size)
    }

    /// Device address of the self-test's scratch bytes, after the parts.
    pub(crate) fn scratch(&self) -> u64 {
        self.dev_addr + PARTS * self.part_size()
    }
}

/// Reads and checks the interface structure through `l2`; a bad value is
/// logged with the field that held it.
pub(crate) fn read(dev: &kernel::device::Device, l2: &L2Bar<'_>) -> Result<Iface> {
    parse(&|at| l2.try_read32(at), BAR2_SIZE)?.map_err(|b| {
        dev_err!(
            dev,
            "the card's firmware published a bad {} ({:#x}); the driver won't use it: update \
             or reload the card's firmware, or power-cycle the machine\n",
            b.field,
            b.value
        );
        EPROTO
    })
}

impl Card {
    /// Reads and checks the interface structure the card publishes now.
    pub(crate) fn read_interface(&self) -> Result<Iface> {
        let dev: &kernel::device::Device = (*self.pdev).as_ref();
        self.l2.with(|l2| read(dev, l2))?
    }

    /// Adopts what the firmware publishes now, and registers the virtual-MSI
    /// table with it (a firmware that starts clears the registration).
    pub(crate) fn adopt_interface(&self) -> Result {
        let iface = self.read_interface()?;
        self.vmsi.set_count(iface.vmsi_count);
        *self.l2.iface.lock() = Some(iface);
        self.register_vmsi()
    }

    /// Registers the virtual-MSI table in the host-driver area again (resume,
    /// reset, a new firmware).
    pub(crate) fn register_vmsi(&self) -> Result {
        let area = self.l2.iface.lock().as_ref().ok_or(ENODEV)?.host_drv;
        self.l2.with(|l2| self.vmsi.register(l2, area))?
    }

    /// Whether the host-driver area still holds this table's registration (a
    /// card that lost power or was reset has forgotten it).
    pub(crate) fn registration_intact(&self) -> bool {
        let Some(area) = self.l2.iface.lock().as_ref().map(|i| i.host_drv) else {
            return false;
        };
        matches!(
            self.l2.with(|l2| self.vmsi.registered(l2, area)),
            Ok(Ok(true))
        )
    }

    /// Withdraws the registration, so that the card writes no more words.
    pub(crate) fn withdraw_vmsi(&self) {
        let iface = *self.l2.iface.lock();
        if let Some(i) = iface {
            let _ = self.l2.with(|l2| Vmsi::withdraw(l2, i.host_drv));
        }
    }
}

/// The window onto the card's L2 (BAR2), what the firmware published in it,
/// and the command slot it holds.
///
/// The BAR is device-managed: once the card is unbound every access sees
/// `ENODEV` instead of touching unmapped memory.
#[pin_data]
pub(crate) struct L2Window {
    bar: pci::DevresBar<{ BAR2_SIZE }>,
    /// What the running firmware (or the bootloader) published, checked.
    #[pin]
    pub(crate) iface: Mutex<Option<Iface>>,
    /// Serialises the firmware command slot.
    #[pin]
    pub(crate) mailbox: Mutex<()>,
}

impl L2Window {
    pub(crate) fn new(bar: pci::DevresBar<{ BAR2_SIZE }>, iface: Iface) -> impl PinInit<Self> {
        pin_init!(Self {
            bar,
            iface <- new_mutex!(Some(iface), "metis_iface"),
            mailbox <- new_mutex!((), "metis_mailbox"),
        })
    }

    /// Runs accesses to L2; `ENODEV` once the card is unbound.
    pub(crate) fn with<R>(&self, f: impl for<'a> FnOnce(&L2Bar<'a>) -> R) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_iface)]
mod tests {
    use super::*;

    const LEN: usize = 0x4000;

    /// A fake L2 holding the structure the emulated card publishes (on the
    /// heap: 16 KiB would not fit the kernel stack).
    struct Fake(KVec<u32>);

    impl Fake {
        fn new(layout: Layout) -> Self {
            let mut words = KVec::new();
            // An allocation failure leaves the fake short, and every read past it fails.
            let _ = words.resize(LEN / 4, 0u32, GFP_KERNEL);
            let mut f = Fake(words);
            if layout == Layout::V1_6 {
                f.put(0, HDIF_MAGIC);
            }
            f.put(off::MASTER_VERSION, 0x0201);
            f.put64(off::MEMORY_MAP, 0x1_0000_0000);
            f.put64(off::FW_LOAD_ADDR, 0x1_0100_0000);
            f.put_ref(REF_HOST_DRV, HOST_DRV_MAGIC, 24, 0x800);
            f.put_ref(REF_VMSI, VMSI_MAGIC, 4 + 256 + 32, 0x900);
            f.put(0x900, 32 | 32 << 16);
            f.put_ref(REF_DMA_DESC, DMA_DESC_MAGIC, 16, 0xc00);
            f.put64(0xc00, L2_BASE + 0x1000);
            f.put64(0xc08, 0x3000);
            f
        }
        fn put(&mut self, at: usize, v: u32) {
            if let Some(w) = self.0.get_mut(at / 4) {
                *w = v;
            }
        }
        fn put64(&mut self, at: usize, v: u64) {
            // CAST: halves.
            self.put(at, v as u32);
            self.put(at + 4, (v >> 32) as u32);
        }
        fn put_ref(&mut self, index: usize, magic: u32, size: u32, offset: u64) {
            let at = off::AREA_REFS + index * AREA_REF_SIZE;
            self.put(at, magic | 0x0100 << 16);
            self.put(at + 4, size);
            self.put64(at + 8, offset);
        }
        fn parse(&self) -> core::result::Result<Iface, Bad> {
            let read = |at: usize| self.0.get(at / 4).copied().ok_or(EINVAL);
            match parse(&read, LEN) {
                Ok(r) => r,
                Err(_) => Err(Bad {
                    field: "read",
                    value: 0,
                }),
            }
        }
    }

    #[test]
    fn both_layouts() {
        for layout in [Layout::V1_4, Layout::V1_6] {
            let mut f = Fake::new(layout);
            f.put(off::DMA_VM, DMA_VM_SUPPORTED);
            let i = f.parse();
            assert!(i.is_ok());
            if let Ok(i) = i {
                assert_eq!(i.layout, layout);
                assert_eq!(i.version, (1, 2));
                assert_eq!(i.fw_version(), 0x0201);
                assert_eq!(i.memory_map, [0x1_0000_0000, 0]);
                assert_eq!(i.fw_load_addr, 0x1_0100_0000);
                assert_eq!(
                    i.host_drv,
                    Area {
                        offset: 0x800,
                        size: 24
                    }
                );
                assert_eq!(i.vmsi_count, 32);
                assert_eq!(i.desc.dev_addr, L2_BASE + 0x1000);
                assert!(i.desc.published);
                // What no transfer a runtime names may touch.
                let d = i.desc.span();
                assert_eq!(
                    i.driver_areas(),
                    [
                        d,
                        L2_BASE + 0x800..L2_BASE + 0x818,
                        L2_BASE + 0x900..L2_BASE + 0x900 + 4 + 256 + 32,
                        L2_BASE + 0xc00..L2_BASE + 0xc10,
                    ]
                );
                // 1.4.x has padding where 1.6.2 has the flag.
                assert_eq!(i.dma_vm, layout == Layout::V1_6);
            }
        }
    }

    fn refused(f: &Fake) -> &'static str {
        match f.parse() {
            Err(b) => b.field,
            Ok(_) => "accepted",
        }
    }

    #[test]
    fn every_bad_offset_is_refused() {
        let cases: [(usize, u32, u32, u64, &str); 6] = [
            // Beyond BAR2, inside the static part, overflowing, misaligned, too small.
            (
                REF_HOST_DRV,
                HOST_DRV_MAGIC,
                24,
                LEN as u64,
                "host-driver area",
            ),
            (REF_HOST_DRV, HOST_DRV_MAGIC, 24, 0x100, "host-driver area"),
            (
                REF_HOST_DRV,
                HOST_DRV_MAGIC,
                24,
                u64::MAX - 8,
                "host-driver area",
            ),
            (REF_VMSI, VMSI_MAGIC, 300, 0x902, "virtual-MSI area"),
            (REF_VMSI, VMSI_MAGIC, 8, 0x900, "virtual-MSI area"),
            (REF_DMA_DESC, DMA_DESC_MAGIC, 16, 0x3ff8, "descriptor area"),
        ];
        for (index, magic, size, offset, field) in cases {
            let mut f = Fake::new(Layout::V1_6);
            f.put_ref(index, magic, size, offset);
            assert_eq!(refused(&f), field);
        }
    }

    #[test]
    fn bad_published_values_are_refused() {
        let mut f = Fake::new(Layout::V1_6);
        f.put(0x900, 5000);
        assert_eq!(refused(&f), "num_vmsi");
        let mut f = Fake::new(Layout::V1_6);
        f.put(0x900, 0);
        assert_eq!(refused(&f), "num_vmsi");
        // A descriptor buffer outside L2, over the static part, or misaligned.
        for addr in [
            0x1000u64,
            L2_BASE + 0x100,
            L2_BASE + 0x1004,
            L2_BASE + LEN as u64 - 8,
        ] {
            let mut f = Fake::new(Layout::V1_6);
            f.put64(0xc00, addr);
            assert_eq!(refused(&f), "descriptor buffer address");
        }
        let mut f = Fake::new(Layout::V1_6);
        f.put64(0xc08, 64);
        assert_eq!(refused(&f), "descriptor buffer size");
        // Lists written over the host-driver area would corrupt it.
        let mut f = Fake::new(Layout::V1_6);
        f.put64(0xc00, L2_BASE + 0x800);
        assert_eq!(refused(&f), "host-driver area");
        // No host-driver area at all.
        let mut f = Fake::new(Layout::V1_6);
        f.put_ref(REF_HOST_DRV, 0, 0, 0);
        assert_eq!(refused(&f), "host-driver area magic");
    }

    #[test]
    fn lists_fall_back_to_the_end_of_l2() {
        let mut f = Fake::new(Layout::V1_4);
        f.put_ref(REF_DMA_DESC, 0, 0, 0);
        let i = f.parse();
        assert!(i.is_ok());
        if let Ok(i) = i {
            assert!(!i.desc.published);
            assert_eq!(i.desc.dev_addr + i.desc.size, L2_BASE + LEN as u64);
        }
    }

    #[test]
    fn list_parts_tile_the_buffer() -> Result {
        let d = DescBuf {
            dev_addr: L2_BASE + 0x10000,
            size: 0x30000,
            published: true,
        };
        let mut end = d.dev_addr;
        for dir in [Dir::Wr, Dir::Rd] {
            for ch in 0..4 {
                let p = d.part(dir, ch)?;
                assert!(p.dev_addr >= end);
                assert_eq!(p.dev_addr % 8, 0);
                assert_eq!(p.bar_off as u64, p.dev_addr - L2_BASE);
                end = p.dev_addr + (p.slots * ll::ELEMENT_SIZE) as u64;
            }
        }
        assert!(end <= d.scratch());
        assert!(d.scratch() + SCRATCH_SIZE <= d.dev_addr + d.size);
        assert_eq!(d.part(Dir::Rd, 0)?.slots, (0x30000 - 256) / 8 / 24);
        assert!(d.part(Dir::Wr, 4).is_err());
        Ok(())
    }
}
