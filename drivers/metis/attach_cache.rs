// SPDX-License-Identifier: GPL-2.0

//! The card's dma-buf attachment cache: a dma-buf a file's jobs use through a read-write
//! fd is attached to the card and mapped once, for both directions (as DRM's importers
//! map), and later jobs on it reuse that mapping instead of attaching and mapping the
//! whole buffer each time. Jobs through a read-only or write-only fd map for their own
//! direction and are not cached (`jobs.rs: dmabuf_attachment`).
//!
//! A cached attachment holds a reference to its buffer, so the buffer lives on after its
//! fds are closed, until the entry is evicted (the file's least recently used one, when
//! the file caches [`PER_FILE`] already), the file is closed, or the card unbound.
//! Mappings must be gone before the card is unbound: unbind empties the cache after
//! every job has left the gate (`driver.rs: DmaMemory`), like the registered buffers.
//! Each job checks the caller's fd and waits for the buffer's fences itself: the cache
//! keeps mappings, not permissions.

use kernel::{prelude::*, sync::Arc};

/// Attachments one file keeps at most.
pub(crate) const PER_FILE: usize = 16;

struct Entry<T> {
    owner: u64,
    buf: usize,
    used: u64,
    att: Arc<T>,
}

/// # Invariants
///
/// No two entries have the same (owner, buf); no owner has more than [`PER_FILE`] entries.
pub(crate) struct AttachCache<T> {
    entries: KVec<Entry<T>>,
    clock: u64,
}

impl<T> AttachCache<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: KVec::new(),
            clock: 0,
        }
    }

    /// `owner`'s attachment of buffer `buf`, marked as just used.
    pub(crate) fn get(&mut self, owner: u64, buf: usize) -> Option<Arc<T>> {
        self.clock += 1;
        let now = self.clock;
        self.entries
            .iter_mut()
            .find(|e| e.owner == owner && e.buf == buf)
            .map(|e| {
                e.used = now;
                e.att.clone()
            })
    }

    /// Keeps `att` for `owner`; returns the entry it replaced or evicted (to be dropped by
    /// the caller while the card is held), if any.
    pub(crate) fn insert(&mut self, owner: u64, buf: usize, att: Arc<T>) -> Result<Option<Arc<T>>> {
        self.clock += 1;
        let used = self.clock;
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.owner == owner && e.buf == buf)
        {
            e.used = used;
            return Ok(Some(core::mem::replace(&mut e.att, att)));
        }
        let mut evicted = None;
        if self.count(owner) >= PER_FILE {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.owner == owner)
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                evicted = Some(self.entries.remove(i)?.att);
            }
        }
        self.entries.push(
            Entry {
                owner,
                buf,
                used,
                att,
            },
            GFP_KERNEL,
        )?;
        Ok(evicted)
    }

    /// Drops every entry of `owner` (its file is closed), here, under the caller's lock.
    pub(crate) fn drop_owner(&mut self, owner: u64) {
        self.entries.retain(|e| e.owner != owner);
    }

    /// Drops every entry (the card is being unbound).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    fn count(&self, owner: u64) -> usize {
        self.entries.iter().filter(|e| e.owner == owner).count()
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_attach_cache)]
mod tests {
    use super::*;

    fn att(v: u32) -> Result<Arc<u32>> {
        Ok(Arc::new(v, GFP_KERNEL)?)
    }

    #[test]
    fn hits_by_file_and_buffer() -> Result {
        let mut c = AttachCache::new();
        assert!(c.insert(1, 0x1000, att(7)?)?.is_none());
        assert_eq!(c.get(1, 0x1000).map(|a| *a), Some(7));
        // Another file, another buffer: misses.
        assert!(c.get(2, 0x1000).is_none());
        assert!(c.get(1, 0x2000).is_none());
        // The same key again replaces the old attachment, which comes back.
        assert_eq!(c.insert(1, 0x1000, att(8)?)?.map(|a| *a), Some(7));
        assert_eq!(c.get(1, 0x1000).map(|a| *a), Some(8));
        Ok(())
    }

    #[test]
    fn a_full_file_evicts_its_least_recently_used() -> Result {
        let mut c = AttachCache::new();
        for i in 0..PER_FILE {
            assert!(c.insert(1, i, att(i as u32)?)?.is_none());
        }
        // Entry 0 used last: entry 1 is now the oldest.
        assert!(c.get(1, 0).is_some());
        let out = c.insert(1, 100, att(100)?)?;
        assert_eq!(out.map(|a| *a), Some(1));
        assert!(c.get(1, 1).is_none());
        assert!(c.get(1, 0).is_some());
        // Another file is not held back, and its entries are not evicted for the first.
        assert!(c.insert(2, 5, att(5)?)?.is_none());
        c.drop_owner(1);
        assert!(c.get(1, 0).is_none());
        assert!(c.get(2, 5).is_some());
        c.clear();
        assert!(c.get(2, 5).is_none());
        Ok(())
    }
}
