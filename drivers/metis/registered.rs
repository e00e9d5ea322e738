// SPDX-License-Identifier: GPL-2.0

//! Registered host buffers (`METIS_IOCTL_BUF_REGISTER`): user memory pinned
//! and mapped for the card once, then used by any number of jobs
//! (`METIS_DMA_REGISTERED`) without pinning or mapping anything per job.
//!
//! The card keeps the table, not the file: its mappings must be gone before
//! the card is unbound, whatever files are still open, so unbind empties it
//! (`driver.rs: DmaMemory`), after every job has left the gate. A job holds
//! its buffer by reference; a buffer unregistered while a job uses it is
//! unmapped and unpinned when that job ends (it still holds the gate then).

use kernel::{prelude::*, sync::Arc};

use crate::{
    glue::{
        CardAccess,
        UserMap, //
    },
    uapi,
};

/// A user buffer pinned and mapped for the card.
pub(crate) struct Registered {
    map: UserMap,
    span: Span,
}

impl Registered {
    pub(crate) fn new(map: UserMap, addr: u64, len: u64, access: CardAccess) -> Self {
        Self {
            map,
            span: Span { addr, len, access },
        }
    }

    pub(crate) fn map(&self) -> &UserMap {
        &self.map
    }
}

/// Where a registered buffer is in the process, and what the card may do with it.
#[derive(Clone, Copy)]
pub(crate) struct Span {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) access: CardAccess,
}

impl Span {
    /// The offset of `[addr, addr + len)` in this span, if it lies inside and `access`
    /// is allowed.
    fn offset_of(&self, addr: u64, len: u64, access: CardAccess) -> Option<u64> {
        let end = addr.checked_add(len)?;
        let span_end = self.addr.checked_add(self.len)?;
        (self.access.allows(access) && addr >= self.addr && end <= span_end)
            .then(|| addr - self.addr)
    }
}

/// What the table needs of an entry (a fake in the tests).
pub(crate) trait HasSpan {
    fn span(&self) -> Span;
}

impl HasSpan for Registered {
    fn span(&self) -> Span {
        self.span
    }
}

struct Entry<T> {
    owner: u64,
    handle: u64,
    buf: Arc<T>,
}

/// The card's registered buffers, of every open file.
///
/// # Invariants
///
/// Handles are unique among the entries (they count up from 1 and never repeat), and no
/// owner has more than [`uapi::MAX_REGISTERED`] entries.
pub(crate) struct RegTable<T> {
    entries: KVec<Entry<T>>,
    next: u64,
}

impl<T: HasSpan> RegTable<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: KVec::new(),
            next: 1,
        }
    }

    /// Adds `buf` for `owner` and returns its handle; `EDQUOT` if the owner has
    /// [`uapi::MAX_REGISTERED`] already (then `buf` comes back for the caller to drop).
    pub(crate) fn insert(&mut self, owner: u64, buf: Arc<T>) -> Result<u64, (Error, Arc<T>)> {
        let held = self.entries.iter().filter(|e| e.owner == owner).count();
        if held >= uapi::MAX_REGISTERED {
            return Err((EDQUOT, buf));
        }
        let handle = self.next;
        if let Err(e) = self.entries.push(
            Entry {
                owner,
                handle,
                buf: buf.clone(),
            },
            GFP_KERNEL,
        ) {
            return Err((e.into(), buf));
        }
        // INVARIANT: a u64 counted up once per registration does not wrap.
        self.next += 1;
        Ok(handle)
    }

    /// Takes `owner`'s entry `handle` out of the table; `ENOENT` if it has none.
    pub(crate) fn remove(&mut self, owner: u64, handle: u64) -> Result<Arc<T>> {
        let i = self
            .entries
            .iter()
            .position(|e| e.owner == owner && e.handle == handle)
            .ok_or(ENOENT)?;
        Ok(self.entries.remove(i)?.buf)
    }

    /// The buffer of `owner` that holds `[addr, addr + len)` for `access`, and the
    /// range's offset in it; `EINVAL` if none does.
    pub(crate) fn find(
        &self,
        owner: u64,
        addr: u64,
        len: u64,
        access: CardAccess,
    ) -> Result<(Arc<T>, u64)> {
        self.entries
            .iter()
            .filter(|e| e.owner == owner)
            .find_map(|e| {
                e.buf
                    .span()
                    .offset_of(addr, len, access)
                    .map(|off| (e.buf.clone(), off))
            })
            .ok_or(EINVAL)
    }

    /// Drops every entry of `owner` (its file is closed), here, under the caller's lock:
    /// an unbind that empties the table waits for the unmapping to end.
    pub(crate) fn drop_owner(&mut self, owner: u64) {
        self.entries.retain(|e| e.owner != owner);
    }

    /// Drops every entry (the card is being unbound).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Entries of `owner`.
    pub(crate) fn count(&self, owner: u64) -> usize {
        self.entries.iter().filter(|e| e.owner == owner).count()
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_registered)]
mod tests {
    use super::*;

    struct Fake(Span);

    impl HasSpan for Fake {
        fn span(&self) -> Span {
            self.0
        }
    }

    fn fake(addr: u64, len: u64, access: CardAccess) -> Result<Arc<Fake>> {
        Ok(Arc::new(Fake(Span { addr, len, access }), GFP_KERNEL)?)
    }

    #[test]
    fn finds_the_buffer_that_holds_the_range() -> Result {
        let mut t = RegTable::new();
        let a = t
            .insert(1, fake(0x10000, 0x4000, CardAccess::READS)?)
            .map_err(|(e, _)| e)?;
        let b = t
            .insert(1, fake(0x20000, 0x1000, CardAccess::BOTH)?)
            .map_err(|(e, _)| e)?;
        assert_ne!(a, b);
        let (_, off) = t.find(1, 0x11000, 0x3000, CardAccess::READS)?;
        assert_eq!(off, 0x1000);
        // One byte past the end, the other direction, another file, an overflow: none.
        assert_eq!(
            t.find(1, 0x11000, 0x3001, CardAccess::READS).err(),
            Some(EINVAL)
        );
        assert_eq!(
            t.find(1, 0x10000, 0x10, CardAccess::WRITES).err(),
            Some(EINVAL)
        );
        assert_eq!(
            t.find(2, 0x10000, 0x10, CardAccess::READS).err(),
            Some(EINVAL)
        );
        assert_eq!(
            t.find(1, u64::MAX - 4, 0x10, CardAccess::READS).err(),
            Some(EINVAL)
        );
        assert_eq!(t.find(1, 0x20800, 0x800, CardAccess::WRITES)?.1, 0x800);
        Ok(())
    }

    #[test]
    fn handles_belong_to_their_file_and_are_not_reused() -> Result {
        let mut t = RegTable::new();
        let a = t
            .insert(1, fake(0, 1, CardAccess::READS)?)
            .map_err(|(e, _)| e)?;
        assert_eq!(t.remove(2, a).err(), Some(ENOENT));
        t.remove(1, a)?;
        assert_eq!(t.remove(1, a).err(), Some(ENOENT));
        let b = t
            .insert(1, fake(0, 1, CardAccess::READS)?)
            .map_err(|(e, _)| e)?;
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn a_file_holds_at_most_max_registered() -> Result {
        let mut t = RegTable::new();
        for i in 0..uapi::MAX_REGISTERED as u64 {
            t.insert(7, fake(i << 12, 0x1000, CardAccess::READS)?)
                .map_err(|(e, _)| e)?;
        }
        let refused = t.insert(7, fake(0, 1, CardAccess::READS)?);
        assert!(matches!(refused, Err((e, _)) if e == EDQUOT));
        // Another file is not held back; closing the first frees its share.
        t.insert(8, fake(0, 1, CardAccess::READS)?)
            .map_err(|(e, _)| e)?;
        t.drop_owner(7);
        assert_eq!(t.count(7), 0);
        assert_eq!(t.count(8), 1);
        t.insert(7, fake(0, 1, CardAccess::READS)?)
            .map_err(|(e, _)| e)?;
        t.clear();
        assert_eq!(t.count(7) + t.count(8), 0);
        Ok(())
    }
}
