//! Device memory: the card's address map (L2 behind BAR2, DDR) backed by
//! sparse anonymous mappings (MAP_NORESERVE), so a 16 GiB card costs only the
//! pages that are touched. Reset drops every page with MADV_DONTNEED, which
//! makes the whole range read as zero again at once.
//!
//! Accesses from several threads (BAR2 window on the vfio-user loop, eDMA
//! workers, firmware) go without a lock, as on a real card: racing writers
//! produce torn data. They are volatile copies through vm-memory, because a
//! plain copy racing another thread's write is undefined behaviour, and every
//! access is bounds-checked against a region.

use crate::options::Identity;
use std::io;
use vm_memory::{Bytes, Le16, Le32, Le64, VolatileSlice};

/// On-chip L2: BAR2 offset x is device address L2_BASE + x (known).
pub const L2_BASE: u64 = 0x0800_0000;
pub const L2_SIZE: u64 = 32 << 20;
/// DDR base (model; published as `memory_map[0]`).
pub const DDR_BASE: u64 = 0x1_0000_0000;

/// Device address ranges (base, size) of a card. The Synopsys identity is a
/// bare eDMA endpoint with one flat memory from address 0.
pub fn map(identity: Identity, mem_size: u64) -> Vec<(u64, u64)> {
    match identity {
        Identity::Metis => vec![(L2_BASE, L2_SIZE), (DDR_BASE, mem_size)],
        Identity::Synopsys => vec![(0, mem_size)],
    }
}

struct Region {
    base: u64,
    size: u64,
    ptr: *mut u8,
}

impl Region {
    fn volatile(&self) -> VolatileSlice<'_> {
        // SAFETY: `ptr` is a mapping of `size` bytes that stays until DevMem
        // drops, which outlives the borrow of `self` the slice carries; every
        // access to it goes through such slices (volatile, never a reference).
        unsafe { VolatileSlice::new(self.ptr, self.size as usize) }
    }
}

pub struct DevMem {
    regions: Vec<Region>,
}

// SAFETY: the mappings live as long as DevMem and their addresses never
// change; all accesses are bounds-checked volatile copies, which may race.
unsafe impl Send for DevMem {}
// SAFETY: see above.
unsafe impl Sync for DevMem {}

impl DevMem {
    pub fn new(ranges: &[(u64, u64)]) -> io::Result<DevMem> {
        let mut regions = Vec::new();
        for &(base, size) in ranges {
            // SAFETY: anonymous private mapping, no fd, checked result.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            regions.push(Region {
                base,
                size,
                ptr: ptr as *mut u8,
            });
        }
        Ok(DevMem { regions })
    }

    /// (base, size) of each region.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.regions.iter().map(|r| (r.base, r.size)).collect()
    }

    /// True when [addr, addr+len) lies inside one region: an access that
    /// runs off a region's end is an error even if another region follows.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.slice(addr, len).is_some()
    }

    /// [addr, addr+len) as volatile memory, if it lies inside one region.
    pub fn slice(&self, addr: u64, len: u64) -> Option<VolatileSlice<'_>> {
        let end = addr.checked_add(len)?;
        let r = self
            .regions
            .iter()
            .find(|r| addr >= r.base && end <= r.base + r.size)?;
        r.volatile()
            .subslice((addr - r.base) as usize, len as usize)
            .ok()
    }

    /// Zeroes [addr, addr+len), which must lie inside one region. Whole pages
    /// are dropped (MADV_DONTNEED) rather than written: a firmware FILL of
    /// 1 GiB with zeros then costs what it costs the card (a fraction of a
    /// second) instead of faulting in 1 GiB of the emulator's memory, which
    /// took the emulator 50 s on a loaded machine.
    pub fn zero(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let Some(r) = self
            .regions
            .iter()
            .find(|r| addr >= r.base && end <= r.base + r.size)
        else {
            return false;
        };
        let page = page_size();
        let (lo, hi) = (addr - r.base, end - r.base);
        // The mapping is page-aligned, so offsets align as addresses do.
        let inner_lo = lo.next_multiple_of(page).min(hi);
        let inner_hi = (hi / page * page).max(inner_lo);
        let zeros = vec![0u8; page as usize];
        let edge = |from: u64, to: u64| {
            let s = r.volatile();
            let mut at = from;
            while at < to {
                let n = (to - at).min(page);
                if let Ok(sub) = s.subslice(at as usize, n as usize) {
                    sub.copy_from(&zeros[..n as usize]);
                }
                at += n;
            }
        };
        edge(lo, inner_lo);
        if inner_hi > inner_lo {
            // SAFETY: [inner_lo, inner_hi) lies inside our own private
            // anonymous mapping (checked above) and is page-aligned; DONTNEED
            // makes it read as zero, which is what a racing accessor may see
            // of a fill anyway.
            unsafe {
                libc::madvise(
                    r.ptr.add(inner_lo as usize) as *mut libc::c_void,
                    (inner_hi - inner_lo) as usize,
                    libc::MADV_DONTNEED,
                );
            }
        }
        edge(inner_hi, hi);
        true
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.slice(addr, buf.len() as u64)
            .is_some_and(|s| s.copy_to(buf) == buf.len())
    }

    pub fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let Some(s) = self.slice(addr, buf.len() as u64) else {
            return false;
        };
        s.copy_from(buf);
        true
    }

    pub fn read_u16(&self, addr: u64) -> Option<u16> {
        let v: Le16 = self.slice(addr, 2)?.read_obj(0).ok()?;
        Some(v.into())
    }

    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let v: Le32 = self.slice(addr, 4)?.read_obj(0).ok()?;
        Some(v.into())
    }

    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        let v: Le64 = self.slice(addr, 8)?.read_obj(0).ok()?;
        Some(v.into())
    }

    /// Drops every page: the whole memory reads as zero afterwards.
    pub fn zero_all(&self) {
        for r in &self.regions {
            // SAFETY: our own private anonymous mapping; DONTNEED zero-fills it.
            unsafe {
                libc::madvise(
                    r.ptr as *mut libc::c_void,
                    r.size as usize,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

impl Drop for DevMem {
    fn drop(&mut self) {
        for r in &self.regions {
            // SAFETY: unmapping our own mapping once.
            unsafe {
                libc::munmap(r.ptr as *mut libc::c_void, r.size as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_rw_and_zero() {
        let m = DevMem::new(&map(Identity::Metis, 1 << 30)).unwrap();
        assert!(m.write(DDR_BASE + 0x1234_5678, b"hello"));
        let mut b = [0u8; 5];
        assert!(m.read(DDR_BASE + 0x1234_5678, &mut b));
        assert_eq!(&b, b"hello");
        assert!(!m.read(DDR_BASE + (1 << 30) - 2, &mut b));
        assert!(!m.write(u64::MAX - 1, b"xx"));
        m.zero_all();
        assert!(m.read(DDR_BASE + 0x1234_5678, &mut b));
        assert_eq!(b, [0; 5]);
    }

    #[test]
    fn zero_clears_exactly_its_range() {
        let m = DevMem::new(&map(Identity::Metis, 64 << 20)).unwrap();
        let (at, len) = (DDR_BASE + 4093, 3 * 4096 + 7);
        assert!(m.write(DDR_BASE, &vec![0xa5; 8 * 4096]));
        assert!(m.zero(at, len));
        let mut b = vec![0u8; 8 * 4096];
        assert!(m.read(DDR_BASE, &mut b));
        let first = (at - DDR_BASE) as usize;
        for (i, v) in b.iter().enumerate() {
            let inside = i >= first && i < first + len as usize;
            assert_eq!(*v, if inside { 0 } else { 0xa5 }, "byte {i}");
        }
        // within a page, and ranges that leave a region, are refused or kept
        assert!(m.zero(DDR_BASE + 1, 2));
        assert!(!m.zero(DDR_BASE + (64 << 20) - 2, 4));
        assert!(!m.zero(u64::MAX - 1, 4));
        assert_eq!(m.read_u32(DDR_BASE), Some(0xa500_00a5));
    }

    #[test]
    fn regions_are_separate() {
        let m = DevMem::new(&map(Identity::Metis, 64 << 20)).unwrap();
        assert!(m.contains(L2_BASE, L2_SIZE));
        assert!(!m.contains(L2_BASE - 1, 2), "below L2");
        assert!(!m.contains(L2_BASE + L2_SIZE - 4, 8), "runs off L2");
        assert!(!m.contains(0, 4), "address 0 is nothing on Metis");
        assert!(m.contains(DDR_BASE, 64 << 20));
        assert!(!m.contains(DDR_BASE + (64 << 20), 1));
        assert!(m.write(L2_BASE + 0x10, &[7]));
        assert_eq!(m.read_u32(L2_BASE + 0x10), Some(7));
        assert_eq!(m.read_u32(DDR_BASE + 0x10), Some(0));
        let flat = DevMem::new(&map(Identity::Synopsys, 64 << 20)).unwrap();
        assert!(flat.contains(0, 64 << 20));
    }
}
