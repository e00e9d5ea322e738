//! Device memory: a sparse anonymous mapping (MAP_NORESERVE), so a 16 GiB
//! card costs only the pages the guest touches. Reset drops every page with
//! MADV_DONTNEED, which makes the whole range read as zero again at once.
//!
//! Accesses from several threads (BAR2 window on the vfio-user loop, eDMA
//! workers, firmware) are plain memory copies without a lock, as on a real
//! card: racing writers produce torn data, never memory unsafety outside the
//! mapping, because every access is bounds-checked against the fixed size.

use std::io;

pub struct DevMem {
    ptr: *mut u8,
    size: u64,
}

// SAFETY: the mapping lives as long as DevMem and its address never changes;
// all accesses are bounds-checked copies.
unsafe impl Send for DevMem {}
// SAFETY: see above.
unsafe impl Sync for DevMem {}

impl DevMem {
    pub fn new(size: u64) -> io::Result<DevMem> {
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
        Ok(DevMem {
            ptr: ptr as *mut u8,
            size,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when [addr, addr+len) lies inside device memory.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some_and(|end| end <= self.size)
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if !self.contains(addr, buf.len() as u64) {
            return false;
        }
        // SAFETY: range checked above; the mapping is valid for `size` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(addr as usize), buf.as_mut_ptr(), buf.len())
        };
        true
    }

    pub fn write(&self, addr: u64, buf: &[u8]) -> bool {
        if !self.contains(addr, buf.len() as u64) {
            return false;
        }
        // SAFETY: range checked above.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.add(addr as usize), buf.len())
        };
        true
    }

    /// Raw pointer to `addr` after checking [addr, addr+len) is inside.
    pub fn ptr_at(&self, addr: u64, len: u64) -> Option<*mut u8> {
        if !self.contains(addr, len) {
            return None;
        }
        // SAFETY: in bounds.
        Some(unsafe { self.ptr.add(addr as usize) })
    }

    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b).then(|| u32::from_le_bytes(b))
    }

    /// Drops every page: the whole memory reads as zero afterwards.
    pub fn zero_all(&self) {
        // SAFETY: our own private anonymous mapping; DONTNEED on it zero-fills.
        unsafe {
            libc::madvise(
                self.ptr as *mut libc::c_void,
                self.size as usize,
                libc::MADV_DONTNEED,
            );
        }
    }
}

impl Drop for DevMem {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.size as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_rw_and_zero() {
        let m = DevMem::new(1 << 30).unwrap();
        assert!(m.write(0x1234_5678, b"hello"));
        let mut b = [0u8; 5];
        assert!(m.read(0x1234_5678, &mut b));
        assert_eq!(&b, b"hello");
        assert!(!m.read((1 << 30) - 2, &mut b));
        assert!(!m.write(u64::MAX - 1, b"xx"));
        m.zero_all();
        assert!(m.read(0x1234_5678, &mut b));
        assert_eq!(b, [0; 5]);
    }
}
