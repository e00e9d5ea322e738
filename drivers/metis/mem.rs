// SPDX-License-Identifier: GPL-2.0

//! Device-memory regions handed to open files.
//!
//! A region is named by an opaque handle and owned by one file; every lookup
//! checks the owner and the bounds, so a file can only reach memory it
//! allocated (and never the driver's list areas or the firmware).

use kernel::prelude::*;

use crate::uapi;

/// One allocated region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) handle: u64,
    pub(crate) owner: u64,
    pub(crate) start: u64,
    pub(crate) len: u64,
    /// Card reset count when the region was last known good.
    pub(crate) generation: u32,
    /// Jobs using the region right now.
    pub(crate) busy: u32,
    /// Being scrubbed for its new owner: nobody may use it yet, not even the owner's
    /// other threads guessing its handle (what is there is the last owner's).
    pub(crate) scrubbing: bool,
}

/// The largest DDR a Metis board carries (16 GiB, the PCIe card: R3). The firmware's known
/// interface publishes where its DDR starts, not how large it is; beyond a smaller board's
/// DDR the engine reports the transfer failed.
pub(crate) const DDR_MAX: u64 = 16 << 30;

/// Checks `[addr, addr + len)`, a device range the runtime of a runtime-owned card names
/// (that card's memory is the runtime's, not this driver's to hand out): it must lie in L2
/// (`[l2_base, l2_end)`) or in the DDR from `ddr_base` (none if 0), `EINVAL` otherwise, and
/// overlap none of `owned`, the L2 this driver writes (its list buffer, the host-driver
/// area), `EPERM`.
pub(crate) fn check_runtime_range(
    addr: u64,
    len: u64,
    l2: core::ops::Range<u64>,
    ddr_base: u64,
    owned: &[core::ops::Range<u64>],
) -> Result {
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    let within = |r: core::ops::Range<u64>| addr >= r.start && end <= r.end;
    let ddr = ddr_base..ddr_base.saturating_add(DDR_MAX);
    if len == 0 || !(within(l2) || (ddr_base != 0 && within(ddr))) {
        return Err(EINVAL);
    }
    if owned.iter().any(|o| addr < o.end && o.start < end) {
        return Err(EPERM);
    }
    Ok(())
}

/// Owner of the ranges [`DevMem::reserve`] holds (no open file has it: their ids count
/// up from 1).
pub(crate) const RESERVED: u64 = u64::MAX;

/// First-fit allocator over `[base, end)` in [`uapi::MEM_ALIGN`] granules.
///
/// # Invariants
///
/// `regions` is sorted by `start`, regions do not overlap and lie in `[base, end)`.
pub(crate) struct DevMem {
    base: u64,
    end: u64,
    /// Up to one per 4 KiB of device memory (10 MiB of them): may fall back to vmalloc.
    regions: KVVec<Region>,
    next_handle: u64,
}

impl DevMem {
    pub(crate) fn new(base: u64, end: u64) -> Self {
        // INVARIANT: No regions yet.
        Self {
            base,
            end: end.max(base),
            regions: KVVec::new(),
            next_handle: 1,
        }
    }

    pub(crate) fn free_bytes(&self) -> u64 {
        let used: u64 = self.regions.iter().map(|r| r.len).sum();
        self.end - self.base - used
    }

    /// Allocates `len` bytes (rounded up) for `owner`; returns (handle, device address,
    /// rounded length). The region starts busy and being scrubbed: its caller scrubs it
    /// and then calls [`Self::scrubbed`], or [`Self::put`] and frees it; until then
    /// nobody may use or free it.
    pub(crate) fn alloc(
        &mut self,
        len: u64,
        owner: u64,
        generation: u32,
    ) -> Result<(u64, u64, u64)> {
        if len == 0 || len > uapi::MEM_MAX_LENGTH {
            return Err(EINVAL);
        }
        let len = len
            .checked_next_multiple_of(uapi::MEM_ALIGN)
            .ok_or(EINVAL)?;
        // One pass: the owner's count (security review M8: a file must not grow the table
        // without bound) and the first gap that fits.
        let mut held = 0;
        let mut prev_end = self.base;
        let mut fit = None;
        for (i, r) in self.regions.iter().enumerate() {
            if fit.is_none() {
                if r.start - prev_end >= len {
                    fit = Some((i, prev_end));
                } else {
                    prev_end = r.start + r.len;
                }
            }
            held += usize::from(r.owner == owner);
        }
        if held >= uapi::MEM_MAX_REGIONS {
            return Err(EDQUOT);
        }
        let (at, prev_end) = match fit {
            Some(f) => f,
            None if self.end - prev_end >= len => (self.regions.len(), prev_end),
            None => return Err(ENOSPC),
        };
        // INVARIANT: At its sorted position, inside the gap found above.
        let handle = self.insert(at, owner, prev_end, len, generation, true)?;
        Ok((handle, prev_end, len))
    }

    /// Inserts a busy region at index `at` (which the caller chose to keep the
    /// invariant) under a new handle, and returns the handle.
    fn insert(
        &mut self,
        at: usize,
        owner: u64,
        start: u64,
        len: u64,
        generation: u32,
        scrubbing: bool,
    ) -> Result<u64> {
        self.regions.reserve(1, GFP_KERNEL)?;
        let handle = self.next_handle;
        self.regions
            .insert_within_capacity(
                at,
                Region {
                    handle,
                    owner,
                    start,
                    len,
                    generation,
                    busy: 1,
                    scrubbing,
                },
            )
            .map_err(|_| ENOMEM)?;
        self.next_handle += 1;
        Ok(handle)
    }

    fn index(&self, handle: u64, owner: u64) -> Result<usize> {
        self.regions
            .iter()
            .position(|r| r.handle == handle && r.owner == owner)
            .ok_or(ENOENT)
    }

    pub(crate) fn free(&mut self, handle: u64, owner: u64) -> Result {
        let i = self.index(handle, owner)?;
        if self.regions[i].busy > 0 {
            return Err(EBUSY);
        }
        self.regions.remove(i).map_err(|_| EINVAL)?;
        Ok(())
    }

    /// Marks the end of a job that [`Self::resolve`] admitted.
    pub(crate) fn put(&mut self, handle: u64, owner: u64) {
        if let Ok(i) = self.index(handle, owner) {
            self.regions[i].busy = self.regions[i].busy.saturating_sub(1);
        }
    }

    /// The region's scrub is done: it is its owner's to use from now on.
    pub(crate) fn scrubbed(&mut self, handle: u64, owner: u64) {
        if let Ok(i) = self.index(handle, owner) {
            let r = &mut self.regions[i];
            r.scrubbing = false;
            r.busy = r.busy.saturating_sub(1);
        }
    }

    /// Holds `[start, start + len)` (widened to whole granules), owned by [`RESERVED`],
    /// while a transfer to an address its caller chose runs (the vendor ABI's, which names
    /// device addresses instead of regions): `EINVAL` outside `[base, end)`, `EBUSY` where
    /// any region is. Returns the reservation's handle; it starts busy, and goes with
    /// [`Self::put`] and [`Self::free`].
    pub(crate) fn reserve(&mut self, start: u64, len: u64) -> Result<u64> {
        let end = start.checked_add(len).ok_or(EINVAL)?;
        if len == 0 || start < self.base || end > self.end {
            return Err(EINVAL);
        }
        let start = start - (start - self.base) % uapi::MEM_ALIGN;
        let end = self
            .base
            .checked_add((end - self.base).next_multiple_of(uapi::MEM_ALIGN))
            .ok_or(EINVAL)?
            .min(self.end);
        let at = self
            .regions
            .iter()
            .position(|r| r.start >= end)
            .unwrap_or(self.regions.len());
        if self.regions[..at].iter().any(|r| r.start + r.len > start) {
            return Err(EBUSY);
        }
        // INVARIANT: Before the first region at or after its end, and every region before
        // that ends at or before its start: sorted, no overlap, inside `[base, end)`.
        self.insert(at, RESERVED, start, end - start, 0, false)
    }

    /// Frees everything `owner` holds (its file is closed: no job can run).
    pub(crate) fn free_owner(&mut self, owner: u64) {
        self.regions.retain(|r| r.owner != owner);
    }

    /// Device address of `[offset, offset + length)` inside the region, after the
    /// bounds check; the region counts as busy until [`Self::put`]. A region from
    /// before the last card reset fails once with `ESTALE` (its contents are
    /// gone) and is usable again afterwards.
    pub(crate) fn resolve(
        &mut self,
        handle: u64,
        owner: u64,
        offset: u64,
        length: u64,
        generation: u32,
    ) -> Result<u64> {
        let i = self.index(handle, owner)?;
        let r = &mut self.regions[i];
        if r.scrubbing {
            // Not handed to its owner yet.
            return Err(ENOENT);
        }
        let end = offset.checked_add(length).ok_or(EINVAL)?;
        if length == 0 || end > r.len {
            return Err(EINVAL);
        }
        if r.generation != generation {
            r.generation = generation;
            return Err(ESTALE);
        }
        r.busy += 1;
        Ok(r.start + offset)
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_mem)]
mod tests {
    use super::*;

    /// Allocates as `MEM_ALLOC` does once the region is scrubbed.
    fn alloc_ready(m: &mut DevMem, len: u64, owner: u64) -> Result<(u64, u64)> {
        let (h, d, _) = m.alloc(len, owner, 0)?;
        m.scrubbed(h, owner);
        Ok((h, d))
    }

    #[test]
    fn a_runtime_range_lies_in_card_memory_clear_of_the_driver() {
        let l2 = 0x0800_0000..0x0a00_0000;
        let ddr = 0x1_0000_0000;
        let owned = [0x0800_0800..0x0800_1000, 0x09ff_0000..0x0a00_0000];
        let check = |a, l| check_runtime_range(a, l, l2.clone(), ddr, &owned);
        assert_eq!(check(0x0800_1000, 0x1000), Ok(()));
        assert_eq!(check(ddr + (16 << 20), 4096), Ok(()));
        assert_eq!(check(ddr + DDR_MAX - 1, 1), Ok(()));
        assert_eq!(check(ddr + DDR_MAX - 1, 2), Err(EINVAL));
        assert_eq!(check(ddr - 1, 2), Err(EINVAL));
        assert_eq!(check(0x09ff_f000, 0x1000), Err(EPERM));
        assert_eq!(check(0x09ff_f000, 0x2000), Err(EINVAL));
        assert_eq!(check(0x0800_0000, 0x801), Err(EPERM));
        assert_eq!(check(0x0800_0000, 0x800), Ok(()));
        assert_eq!(check(0x0a00_0000, 1), Err(EINVAL));
        assert_eq!(check(0x1000, 1), Err(EINVAL));
        assert_eq!(check(u64::MAX, 2), Err(EINVAL));
        assert_eq!(check(ddr, 0), Err(EINVAL));
        // No DDR published: only L2.
        assert_eq!(
            check_runtime_range(ddr, 1, l2.clone(), 0, &owned),
            Err(EINVAL)
        );
        assert_eq!(check_runtime_range(16, 1, l2, 0, &owned), Err(EINVAL));
    }

    #[test]
    fn first_fit_and_reuse() -> Result {
        let mut m = DevMem::new(0x10000, 0x20000);
        let (a, da) = alloc_ready(&mut m, 1, 1)?;
        let (b, db) = alloc_ready(&mut m, 0x2000, 1)?;
        assert_eq!((da, db), (0x10000, 0x11000));
        m.free(a, 1)?;
        let (_, dc) = alloc_ready(&mut m, 0x1000, 2)?;
        assert_eq!(dc, 0x10000);
        assert_eq!(m.free_bytes(), 0x10000 - 0x3000);
        assert_eq!(m.alloc(0x10000, 1, 0), Err(ENOSPC));
        assert_eq!(m.alloc(0, 1, 0), Err(EINVAL));
        assert_eq!(m.alloc(u64::MAX, 1, 0), Err(EINVAL));
        m.free(b, 1)?;
        Ok(())
    }

    #[test]
    fn a_file_holds_at_most_max_regions() -> Result {
        let n = uapi::MEM_MAX_REGIONS as u64;
        let mut m = DevMem::new(0, (n + 2) * uapi::MEM_ALIGN);
        let mut first = 0;
        for i in 0..n {
            let (h, _) = alloc_ready(&mut m, 1, 7)?;
            if i == 0 {
                first = h;
            }
        }
        assert_eq!(m.alloc(1, 7, 0).map(drop), Err(EDQUOT));
        // Another file is not limited by this one's count.
        alloc_ready(&mut m, 1, 8)?;
        // A freed region can be had again.
        m.free(first, 7)?;
        let (_, d) = alloc_ready(&mut m, 1, 7)?;
        assert_eq!(d, 0);
        assert_eq!(m.alloc(1, 7, 0).map(drop), Err(EDQUOT));
        m.free_owner(7);
        assert_eq!(m.free_bytes(), (n + 1) * uapi::MEM_ALIGN);
        Ok(())
    }

    #[test]
    fn owner_and_bounds_are_enforced() -> Result {
        let mut m = DevMem::new(0, 0x100000);
        let (h, d) = alloc_ready(&mut m, 0x1000, 7)?;
        assert_eq!(m.resolve(h, 7, 0x800, 0x800, 0), Ok(d + 0x800));
        assert_eq!(m.resolve(h, 8, 0, 1, 0), Err(ENOENT));
        assert_eq!(m.resolve(h, 7, 0x800, 0x801, 0), Err(EINVAL));
        assert_eq!(m.resolve(h, 7, u64::MAX, 2, 0), Err(EINVAL));
        assert_eq!(m.resolve(h, 7, 0, 0, 0), Err(EINVAL));
        assert_eq!(m.free(h, 8), Err(ENOENT));
        // Busy from the successful resolve above until put.
        assert_eq!(m.free(h, 7), Err(EBUSY));
        m.put(h, 7);
        m.free_owner(7);
        assert_eq!(m.resolve(h, 7, 0, 1, 0), Err(ENOENT));
        Ok(())
    }

    #[test]
    fn new_region_is_busy_until_scrubbed() -> Result {
        let mut m = DevMem::new(0, 0x100000);
        let (h, _, len) = m.alloc(0x800, 3, 0)?;
        assert_eq!(len, 0x1000);
        assert_eq!(m.free(h, 3), Err(EBUSY));
        // Not even its owner reaches what the last owner left there.
        assert_eq!(m.resolve(h, 3, 0, 1, 0), Err(ENOENT));
        m.scrubbed(h, 3);
        assert!(m.resolve(h, 3, 0, 1, 0).is_ok());
        m.put(h, 3);
        m.free(h, 3)?;
        // A failed scrub: released and freed, never usable.
        let (h, _, _) = m.alloc(0x800, 3, 0)?;
        m.put(h, 3);
        assert_eq!(m.resolve(h, 3, 0, 1, 0), Err(ENOENT));
        m.free(h, 3)?;
        Ok(())
    }

    #[test]
    fn reservations_take_free_granules_only() -> Result {
        let mut m = DevMem::new(0x10000, 0x20000);
        let (a, da) = alloc_ready(&mut m, 0x1000, 1)?;
        assert_eq!(da, 0x10000);
        // Widened to granules: 0x11800..0x12100 holds 0x11000..0x13000.
        let r = m.reserve(0x11800, 0x900)?;
        assert_eq!(m.free_bytes(), 0x10000 - 0x3000);
        // Nothing else may have any of it, and it may not reach a region.
        assert_eq!(m.reserve(0x12fff, 1), Err(EBUSY));
        assert_eq!(m.reserve(0x10fff, 2), Err(EBUSY));
        assert_eq!(m.reserve(0xffff, 1), Err(EINVAL));
        assert_eq!(m.reserve(0x1ffff, 2), Err(EINVAL));
        assert_eq!(m.reserve(0x13000, 0), Err(EINVAL));
        assert_eq!(m.reserve(u64::MAX, 2), Err(EINVAL));
        // An allocation goes around it, granule-aligned.
        let (_, db) = alloc_ready(&mut m, 0x1000, 2)?;
        assert_eq!(db, 0x13000);
        // Busy until put, then freed like a region.
        assert_eq!(m.free(r, RESERVED), Err(EBUSY));
        m.put(r, RESERVED);
        m.free(r, RESERVED)?;
        let (_, dc) = alloc_ready(&mut m, 0x2000, 3)?;
        assert_eq!(dc, 0x11000);
        m.free(a, 1)?;
        // A reservation that reaches the end of the managed memory stops there.
        let e = m.reserve(0x1f001, 0xfff)?;
        assert_eq!(m.free_bytes(), 0x10000 - 0x4000);
        m.put(e, RESERVED);
        m.free(e, RESERVED)?;
        Ok(())
    }

    #[test]
    fn reset_marks_regions_lost_once() -> Result {
        let mut m = DevMem::new(0, 0x100000);
        let (h, _) = alloc_ready(&mut m, 0x1000, 1)?;
        assert_eq!(m.resolve(h, 1, 0, 1, 1), Err(ESTALE));
        assert!(m.resolve(h, 1, 0, 1, 1).is_ok());
        Ok(())
    }
}
