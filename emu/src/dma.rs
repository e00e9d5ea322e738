//! Guest memory as the card sees it through the IOMMU: the set of DMA
//! mappings QEMU announced with DMA_MAP (IOVA, size, permissions, and the
//! shared-memory fd + offset holding the pages).
//!
//! Under intel-iommu (translated) QEMU sends one map per guest DMA buffer with
//! exactly the permissions the guest driver asked for; without an IOMMU it
//! sends one map per RAM block, read-write. A DMA whose address is not
//! covered, or that needs a permission the mapping lacks, is an IOMMU fault
//! here exactly as on a real machine.
//!
//! Each mapping keeps its mmap alive through an `Arc`: a worker copying from
//! a mapping that is concurrently unmapped finishes its chunk on pages that
//! stay valid (the memfd keeps them), and the next chunk faults.
//!
//! The guest changes these pages whenever it likes, so the emulator only
//! touches them through vm-memory's volatile slices: a Rust reference to them,
//! or a plain copy from them, would be undefined behaviour.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, RwLock};
use vm_memory::{ByteValued, VolatileSlice};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub read: bool,
    pub write: bool,
}

impl Perm {
    pub const R: Perm = Perm {
        read: true,
        write: false,
    };
    pub const W: Perm = Perm {
        read: false,
        write: true,
    };
    pub const RW: Perm = Perm {
        read: true,
        write: true,
    };
    fn covers(self, need: Perm) -> bool {
        (!need.read || self.read) && (!need.write || self.write)
    }
    pub fn as_str(self) -> &'static str {
        match (self.read, self.write) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, true) => "w",
            (false, false) => "-",
        }
    }
}

/// An mmap of (part of) a file QEMU handed over.
pub struct HostRegion {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is fixed for the region's lifetime; access is via
// bounds-checked volatile slices, which tolerate concurrent writers.
unsafe impl Send for HostRegion {}
// SAFETY: see above.
unsafe impl Sync for HostRegion {}

impl Drop for HostRegion {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

impl HostRegion {
    fn volatile(&self) -> VolatileSlice<'_> {
        // SAFETY: `ptr` is a mapping of `len` bytes, unmapped only when the
        // region drops, which the slice's borrow of `self` rules out; the
        // emulator accesses it only through such slices (the guest's own
        // accesses are outside this process).
        unsafe { VolatileSlice::new(self.ptr, self.len) }
    }

    fn map(fd: &File, offset: u64, size: u64) -> io::Result<(Arc<HostRegion>, usize)> {
        let page = 4096u64;
        let aligned = offset & !(page - 1);
        let lead = (offset - aligned) as usize;
        let len = (size as usize + lead).div_ceil(page as usize) * page as usize;
        let try_map = |prot| {
            // SAFETY: mapping a file QEMU gave us; result checked.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    aligned as libc::off_t,
                )
            }
        };
        let mut p = try_map(libc::PROT_READ | libc::PROT_WRITE);
        if p == libc::MAP_FAILED {
            // A read-only fd still serves reads; writes then fault as dma_perm
            // because such a map never carries WRITE in practice.
            p = try_map(libc::PROT_READ);
        }
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok((
            Arc::new(HostRegion {
                ptr: p as *mut u8,
                len,
            }),
            lead,
        ))
    }
}

#[derive(Clone)]
struct Mapping {
    len: u64,
    perm: Perm,
    /// None: QEMU gave no fd (would need DMA_READ/DMA_WRITE messages).
    backing: Option<(Arc<HostRegion>, usize)>,
}

/// A resolved piece of host memory, valid while the Arc lives.
pub struct Piece {
    region: Arc<HostRegion>,
    off: usize,
    pub len: usize,
    /// Its IOVA, for errors.
    addr: u64,
}

impl Piece {
    /// The piece as volatile memory.
    pub fn slice(&self) -> Result<VolatileSlice<'_>, DmaError> {
        // The mapping covers every piece `resolve` hands out; should it not,
        // the bytes past it are as good as unmapped.
        self.region
            .volatile()
            .subslice(self.off, self.len)
            .map_err(|_| DmaError::Unmapped { addr: self.addr })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    Unmapped { addr: u64 },
    Perm { addr: u64, have: Perm, need: Perm },
    NoFd { addr: u64 },
}

impl std::fmt::Display for DmaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmaError::Unmapped { addr } => write!(f, "iova {addr:#x} not mapped"),
            DmaError::Perm { addr, have, need } => write!(
                f,
                "iova {addr:#x} mapped '{}' but access needs '{}'",
                have.as_str(),
                need.as_str()
            ),
            DmaError::NoFd { addr } => write!(f, "iova {addr:#x} mapped without fd"),
        }
    }
}

#[derive(Default)]
pub struct GuestMem {
    maps: RwLock<BTreeMap<u64, Mapping>>,
}

impl GuestMem {
    pub fn new() -> GuestMem {
        GuestMem::default()
    }

    /// Adds a mapping; anything it overlaps is replaced.
    pub fn map(
        &self,
        iova: u64,
        size: u64,
        fd_offset: u64,
        perm: Perm,
        fd: Option<&File>,
    ) -> io::Result<()> {
        if size == 0 || iova.checked_add(size).is_none() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let backing = match fd {
            Some(fd) => Some(HostRegion::map(fd, fd_offset, size)?),
            None => None,
        };
        let mut m = self.maps.write().unwrap();
        Self::carve(&mut m, iova, size);
        m.insert(
            iova,
            Mapping {
                len: size,
                perm,
                backing,
            },
        );
        Ok(())
    }

    /// Removes [iova, iova+size); mappings partly inside are trimmed.
    /// Returns how many mappings were touched.
    pub fn unmap(&self, iova: u64, size: u64) -> usize {
        let mut m = self.maps.write().unwrap();
        Self::carve(&mut m, iova, size)
    }

    pub fn unmap_all(&self) -> usize {
        let mut m = self.maps.write().unwrap();
        let n = m.len();
        m.clear();
        n
    }

    pub fn count(&self) -> usize {
        self.maps.read().unwrap().len()
    }

    fn carve(m: &mut BTreeMap<u64, Mapping>, start: u64, size: u64) -> usize {
        let end = start.saturating_add(size);
        let hits: Vec<u64> = m
            .range(..end)
            .filter(|(k, v)| **k + v.len > start)
            .map(|(k, _)| *k)
            .collect();
        for k in &hits {
            let v = m.remove(k).unwrap();
            let vend = k + v.len;
            if *k < start {
                // keep the head
                m.insert(
                    *k,
                    Mapping {
                        len: start - k,
                        ..v.clone()
                    },
                );
            }
            if vend > end {
                // keep the tail, shifting into the same backing
                let shift = (end - k) as usize;
                m.insert(
                    end,
                    Mapping {
                        len: vend - end,
                        perm: v.perm,
                        backing: v.backing.as_ref().map(|(r, o)| (r.clone(), o + shift)),
                    },
                );
            }
        }
        hits.len()
    }

    /// Resolves [addr, addr+len) into host pieces, checking every byte is
    /// mapped with `need`. Fails at the first byte that is not.
    pub fn resolve(&self, addr: u64, len: u64, need: Perm) -> Result<Vec<Piece>, DmaError> {
        let m = self.maps.read().unwrap();
        let mut out = Vec::new();
        let mut a = addr;
        let end = addr.checked_add(len).ok_or(DmaError::Unmapped { addr })?;
        while a < end {
            let (k, v) = m
                .range(..=a)
                .next_back()
                .filter(|(k, v)| a < **k + v.len)
                .ok_or(DmaError::Unmapped { addr: a })?;
            if !v.perm.covers(need) {
                return Err(DmaError::Perm {
                    addr: a,
                    have: v.perm,
                    need,
                });
            }
            let (region, base) = v.backing.as_ref().ok_or(DmaError::NoFd { addr: a })?;
            let n = (end.min(k + v.len) - a) as usize;
            out.push(Piece {
                region: region.clone(),
                off: base + (a - k) as usize,
                len: n,
                addr: a,
            });
            a += n as u64;
        }
        Ok(out)
    }
}

impl GuestMem {
    /// Copies host memory at `addr` into `buf` (a DMA read by the card).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let mut done = 0;
        for p in self.resolve(addr, buf.len() as u64, Perm::R)? {
            p.slice()?.copy_to(&mut buf[done..done + p.len]);
            done += p.len;
        }
        Ok(())
    }

    /// Copies `buf` to host memory at `addr` (a DMA write by the card).
    /// Nothing is written unless the whole range is writable.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let pieces = self.resolve(addr, buf.len() as u64, Perm::W)?;
        let slices = pieces
            .iter()
            .map(Piece::slice)
            .collect::<Result<Vec<_>, _>>()?;
        let mut done = 0;
        for s in slices {
            s.copy_from(&buf[done..done + s.len()]);
            done += s.len();
        }
        Ok(())
    }

    /// Reads a `T` (vm-memory's `Le32` and kin say the byte order).
    pub fn read_obj<T: ByteValued + Default>(&self, addr: u64) -> Result<T, DmaError> {
        let mut v = T::default();
        self.read(addr, v.as_mut_slice())?;
        Ok(v)
    }

    pub fn write_obj<T: ByteValued>(&self, addr: u64, v: T) -> Result<(), DmaError> {
        self.write(addr, v.as_slice())
    }
}

/// Creates a memfd of `size` bytes: what QEMU's memory-backend-memfd gives,
/// used by tests to stand in for guest RAM.
pub fn memfd(size: u64) -> io::Result<File> {
    use std::os::fd::FromRawFd;
    let name = c"metis-emu-test";
    // SAFETY: plain syscall with a valid C string.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, owned descriptor.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn map_resolve_perm_and_split() {
        let f = memfd(0x4000).unwrap();
        f.write_all_at(b"ABCDEFGH", 0x1000).unwrap();
        let g = GuestMem::new();
        g.map(0x10_0000, 0x2000, 0x1000, Perm::R, Some(&f)).unwrap();
        let mut b = [0u8; 8];
        g.read(0x10_0000, &mut b).unwrap();
        assert_eq!(&b, b"ABCDEFGH");
        assert!(matches!(
            g.resolve(0x10_0000, 8, Perm::W),
            Err(DmaError::Perm { .. })
        ));
        assert!(matches!(
            g.resolve(0x30, 8, Perm::R),
            Err(DmaError::Unmapped { addr: 0x30 })
        ));
        // crossing the end of the mapping faults at the first unmapped byte
        assert_eq!(
            g.resolve(0x10_1ff8, 16, Perm::R).err(),
            Some(DmaError::Unmapped { addr: 0x10_2000 })
        );
        // unmap the middle page: head and tail survive with the right backing
        g.unmap(0x10_0800, 0x800);
        assert!(g.resolve(0x10_0800, 1, Perm::R).is_err());
        assert_eq!(g.count(), 2);
        f.write_all_at(b"Z", 0x1000 + 0x1000).unwrap();
        let mut z = [0u8; 1];
        g.read(0x10_1000, &mut z).unwrap();
        assert_eq!(&z, b"Z");
    }

    #[test]
    fn adjacent_maps_resolve_in_pieces() {
        let f = memfd(0x2000).unwrap();
        let g = GuestMem::new();
        g.map(0x1000, 0x1000, 0x1000, Perm::RW, Some(&f)).unwrap();
        g.map(0x2000, 0x1000, 0x0, Perm::RW, Some(&f)).unwrap();
        let p = g.resolve(0x1800, 0x1000, Perm::W).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].len + p[1].len, 0x1000);
        // a write across the two lands in the right places of the backing
        g.write_obj(0x1ffe, vm_memory::Le32::from(0x4433_2211))
            .unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b[..2], 0x1ffe).unwrap();
        f.read_exact_at(&mut b[2..], 0).unwrap();
        assert_eq!(b, [0x11, 0x22, 0x33, 0x44]);
        let v: vm_memory::Le32 = g.read_obj(0x1ffe).unwrap();
        assert_eq!(u32::from(v), 0x4433_2211);
    }
}
