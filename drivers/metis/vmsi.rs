// SPDX-License-Identifier: GPL-2.0

//! Virtual MSI (known mechanism, `docs/hw-interface.md`): a table of 1024
//! words in host memory that the firmware marks before it raises an
//! interrupt, so that one vector (a VFIO guest, single MSI, INTx) still tells
//! its sources apart.
//!
//! The card writes into the table only while it is registered in the
//! firmware's host-driver area. A registration that is missing or stale makes
//! the card write to bus address 4·id (field report R1.2: the SMMU fault at
//! IOVA 0x30 is slot 12), so the driver registers after every event that
//! can clear it and withdraws it before the table goes away.

use kernel::{
    device::{
        Bound,
        Device, //
    },
    dma::{
        Coherent,
        DmaAddress, //
    },
    io::Io,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_spinlock_irq, SpinLockIrq,
    },
};

use crate::{
    card::L2Bar,
    iface::{
        Area,
        HOST_DRV_SIZE,
        VMSI_MAX, //
    },
    regs::Halves,
};

/// Source of command completions.
pub(crate) const SRC_COMMAND: u32 = 12;

/// Offsets in the host-driver area.
const HD_CTRL: usize = 0;
const HD_BASE: usize = 4;
const HD_TARGET: usize = 8;
const HD_SIZE: usize = 16;

/// The host's table.
///
/// # Invariants
///
/// `table`, while present, holds [`VMSI_MAX`] words, and `count` is at most [`VMSI_MAX`].
#[pin_data]
pub(crate) struct Vmsi {
    /// Replaced after a power loss (see [`Vmsi::renew`]) and released at
    /// unbind ([`Vmsi::release`]); the interrupt handler scans it under this lock.
    #[pin]
    table: SpinLockIrq<Option<Coherent<[u32]>>>,
    /// Words the firmware uses, from its vMSI configuration.
    count: Atomic<u32>,
    /// Marks taken per source below 32, since probe (debugfs).
    marks: [Atomic<u64>; 32],
}

fn new_table(dev: &Device<Bound>) -> Result<Coherent<[u32]>> {
    Coherent::<u32>::zeroed_slice(dev, usize::try_from(VMSI_MAX)?, GFP_KERNEL)
}

impl Vmsi {
    /// A table of which the firmware uses `count` words (clamped to the table).
    pub(crate) fn new(dev: &Device<Bound>, count: u32) -> Result<impl PinInit<Self>> {
        let table = new_table(dev)?;
        // INVARIANT: `VMSI_MAX` words, and `count` clamped to them.
        Ok(pin_init!(Self {
            table <- new_spinlock_irq!(Some(table), "metis_vmsi"),
            count: Atomic::new(count.min(VMSI_MAX)),
            marks: [const { Atomic::new(0) }; 32],
        }))
    }

    /// Replaces the table with a new one. After the machine lost power, a
    /// mapping made before may be gone from the card's view even though the
    /// kernel still holds it: a hypervisor's emulated IOMMU need not carry
    /// mappings over a suspend (seen with QEMU's intel-iommu after S3, where
    /// the card's writes then hit an unmapped address). A fresh allocation is
    /// mapped afresh. The caller withdraws the old registration first.
    pub(crate) fn renew(&self, dev: &Device<Bound>) -> Result {
        let table = new_table(dev)?;
        // INVARIANT: as in `new`.
        let old = self.table.lock().replace(table);
        // Freed outside the lock: `dma_free_coherent` may sleep.
        drop(old);
        Ok(())
    }

    /// Frees the table. DMA memory must go back while the device is still
    /// bound (after unbind its IOMMU domain may be gone, and freeing then
    /// corrupts memory), whereas the `Card` that holds this may live on in open
    /// files. Called at unbind once the registration is withdrawn, the engine
    /// stopped and the interrupt freed, so nothing writes or scans the table any more.
    pub(crate) fn release(&self) {
        let old = self.table.lock().take();
        drop(old);
    }

    /// The table's bus address, while there is one.
    pub(crate) fn table_address(&self) -> Option<DmaAddress> {
        self.table.lock().as_ref().map(|t| t.dma_address())
    }

    /// Words scanned.
    pub(crate) fn count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    /// Marks taken per source (below 32) since probe.
    pub(crate) fn counts(&self) -> [u64; 32] {
        core::array::from_fn(|i| self.marks[i].load(Relaxed))
    }

    /// Sets how many words to scan; larger values are clamped to the table.
    pub(crate) fn set_count(&self, n: u32) {
        // INVARIANT: clamped to the table.
        self.count.store(n.min(VMSI_MAX), Relaxed);
    }

    /// Points the firmware at the table: address and size first, `ctrl` last,
    /// so the firmware never sees `ctrl` set with a half-written address.
    pub(crate) fn register(&self, l2: &L2Bar<'_>, area: Area) -> Result {
        if area.size < HOST_DRV_SIZE {
            return Err(EINVAL);
        }
        let (addr, bytes) = {
            let t = self.table.lock();
            let t = t.as_ref().ok_or(ENODEV)?;
            (t.dma_address(), u32::try_from(t.size())?)
        };
        l2.try_write32(0, area.offset + HD_CTRL)?;
        let target = Halves::of(addr);
        l2.try_write32(target.lo, area.offset + HD_TARGET)?;
        l2.try_write32(target.hi, area.offset + HD_TARGET + 4)?;
        l2.try_write32(bytes, area.offset + HD_SIZE)?;
        l2.try_write32(0, area.offset + HD_BASE)?;
        l2.try_write32(1, area.offset + HD_CTRL)?;
        Ok(())
    }

    /// Tells the firmware to stop writing into the table.
    pub(crate) fn withdraw(l2: &L2Bar<'_>, area: Area) -> Result {
        l2.try_write32(0, area.offset + HD_CTRL)
    }

    /// Whether the host-driver area names this table, enabled.
    pub(crate) fn registered(&self, l2: &L2Bar<'_>, area: Area) -> Result<bool> {
        let Some(addr) = self.table.lock().as_ref().map(|t| t.dma_address()) else {
            return Ok(false);
        };
        let target = Halves {
            lo: l2.try_read32(area.offset + HD_TARGET)?,
            hi: l2.try_read32(area.offset + HD_TARGET + 4)?,
        };
        Ok(l2.try_read32(area.offset + HD_CTRL)? == 1 && target.join() == addr)
    }

    /// Clears the marked words and returns the sources below 32 among them
    /// (one bit each); marks of other sources are cleared and dropped.
    ///
    /// Safe in interrupt context.
    pub(crate) fn take(&self) -> u32 {
        let count = usize::try_from(self.count.load(Relaxed)).unwrap_or(0);
        let table = self.table.lock();
        let Some(table) = table.as_ref() else {
            return 0;
        };
        let base = table.as_mut_ptr().cast::<Atomic<u32>>();
        // SAFETY: `count <= VMSI_MAX`, the table's length (type invariant), and `Atomic<u32>` is
        // `repr(transparent)` over a `u32`, so the slice covers table words only, aligned. The
        // table lives while its lock is held. The card writes these words with 4-byte DMA writes,
        // which are single-copy atomic, and the CPU only accesses them through atomics.
        let words = unsafe { core::slice::from_raw_parts(base, count) };
        let seen = take_marked(words);
        for (i, m) in self.marks.iter().enumerate() {
            if seen & (1 << i) != 0 {
                m.add(1, Relaxed);
            }
        }
        seen
    }
}

/// Clears each non-zero word and returns the set of their indices below 32.
fn take_marked(words: &[Atomic<u32>]) -> u32 {
    let mut seen = 0u32;
    for (id, word) in words.iter().enumerate() {
        // Reading first keeps the common case (nothing marked) free of atomic writes.
        if word.load(Relaxed) != 0 && word.xchg(0, Relaxed) != 0 {
            if let Some(bit) = u32::try_from(id).ok().and_then(|id| 1u32.checked_shl(id)) {
                seen |= bit;
            }
        }
    }
    seen
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_vmsi)]
mod tests {
    use super::*;

    fn table(marked: &[usize]) -> KVec<Atomic<u32>> {
        let mut t = KVec::new();
        for id in 0..64 {
            let _ = t.push(Atomic::new(u32::from(marked.contains(&id))), GFP_KERNEL);
        }
        t
    }

    #[test]
    fn scan_reports_and_clears_marked_sources() {
        let t = table(&[0, 12, 24, 31]);
        assert_eq!(t.len(), 64);
        assert_eq!(take_marked(&t), 1 | 1 << 12 | 1 << 24 | 1 << 31);
        // Cleared: a second scan finds nothing.
        assert_eq!(take_marked(&t), 0);
        assert!(t.iter().all(|w| w.load(Relaxed) == 0));
    }

    #[test]
    fn sources_beyond_32_are_cleared_not_reported() {
        let t = table(&[40, 63]);
        assert_eq!(take_marked(&t), 0);
        assert!(t.iter().all(|w| w.load(Relaxed) == 0));
    }

    #[test]
    fn only_the_configured_words_are_scanned() {
        let t = table(&[12, 40]);
        assert_eq!(take_marked(&t[..32]), 1 << 12);
        assert_eq!(t[40].load(Relaxed), 1);
    }

    #[test]
    fn any_nonzero_word_counts_as_marked() {
        // The firmware ORs in bit 0; other bits it may set must not hide the mark.
        let t = table(&[]);
        t[12].store(0x8000_0000, Relaxed);
        assert_eq!(take_marked(&t), 1 << 12);
    }
}
