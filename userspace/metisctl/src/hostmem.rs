//! Page-aligned host memory for the benchmark: an anonymous mapping, so a
//! transfer spans exactly the pages its length needs (a heap buffer starts
//! wherever the allocator put it, and pins one page more).

use crate::Failure;
use std::ptr::NonNull;

/// An anonymous, private, read-write mapping of whole pages.
///
/// # Invariants
///
/// `ptr` is the start of a live mapping of `len` bytes (`len` > 0) owned by
/// this value and unmapped only by its `Drop`.
#[derive(Debug)]
pub struct HostMem {
    ptr: NonNull<u8>,
    len: usize,
}

impl HostMem {
    /// Maps `len` bytes (rounded up to pages), zeroed.
    pub fn new(len: usize) -> Result<HostMem, Failure> {
        let len = len.max(1);
        // SAFETY: an anonymous mapping at an address of the kernel's choice
        // touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Failure::Op(format!(
                "cannot map {len} bytes of host memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| Failure::Op("mmap returned a null mapping".into()))?;
        Ok(HostMem { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: by the type invariant the mapping is live, `len` bytes,
        // readable, and shared borrows of `self` only read it.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HostMem {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this value owns the mapping; nothing
        // borrows it any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_zeroed_and_writable() {
        let mut m = HostMem::new(10_000).unwrap();
        assert_eq!(m.as_slice().as_ptr() as usize % 4096, 0);
        assert!(m.as_slice().iter().all(|b| *b == 0));
        m.as_mut_slice()[9_999] = 7;
        assert_eq!(m.as_slice()[9_999], 7);
    }
}
