// SPDX-License-Identifier: GPL-2.0

//! The module's copies of the ioctl structs of `uapi/linux/metis.h`.
//!
//! The C header is the source of truth; the layout asserts below fail the
//! build when the two drift apart (the offsets are the C ones, checked by
//! `tests/abi/abi_check.c`, which pins the header to the same numbers).

use kernel::{
    ioctl,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
};

pub(crate) const ABI_VERSION: u32 = 1;
pub(crate) const IOCTL_MAGIC: u32 = 0xbb;

pub(crate) const DMA_MAX_LENGTH: u64 = 1 << 30;
pub(crate) const MEM_MAX_LENGTH: u64 = 1 << 34;
pub(crate) const MEM_ALIGN: u64 = 4096;
/// `METIS_MEM_MAX_REGIONS`: regions one file may hold at once.
pub(crate) const MEM_MAX_REGIONS: usize = 4096;
pub(crate) const ECHO_MAX: usize = 256;

pub(crate) const DMA_TO_DEVICE: u32 = 1 << 0;
pub(crate) const DMA_FROM_DEVICE: u32 = 1 << 1;
pub(crate) const DMA_ASYNC: u32 = 1 << 2;
pub(crate) const DMA_REGISTERED: u32 = 1 << 3;
pub(crate) const MAX_REGISTERED: usize = 64;
pub(crate) const MAX_JOBS: usize = 64;
pub(crate) const MAX_BATCH: u32 = 64;
/// `METIS_MAX_CARD_JOBS`: async jobs of all files of one card together.
pub(crate) const MAX_CARD_JOBS: u32 = 256;
pub(crate) const RESET_RELOAD_FIRMWARE: u32 = 1 << 0;
pub(crate) const BUF_READ: u32 = 1 << 0;
pub(crate) const BUF_WRITE: u32 = 1 << 1;
pub(crate) const BUF_MAX_LENGTH: u64 = 1 << 30;

pub(crate) const CMD_ECHO: u32 = 2;
pub(crate) const CMD_CHECKSUM: u32 = 3;
pub(crate) const CMD_FILL: u32 = 4;
pub(crate) const CMD_RUN: u32 = 5;

/// `struct metis_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Info {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) abi_version: u32,
    pub(crate) vendor_id: u16,
    pub(crate) device_id: u16,
    pub(crate) revision: u8,
    pub(crate) irq_mode: u8,
    pub(crate) iommu_mode: u8,
    pub(crate) fw_state: u8,
    pub(crate) fw_version: u32,
    pub(crate) fw_if_version: u32,
    pub(crate) wr_channels: u32,
    pub(crate) rd_channels: u32,
    pub(crate) irq_vectors: u32,
    pub(crate) reset_count: u32,
    pub(crate) fw_owner: u32,
    pub(crate) mem_size: u64,
    pub(crate) mem_free: u64,
    pub(crate) bytes_to_device: u64,
    pub(crate) bytes_from_device: u64,
}

/// `struct metis_mem_alloc`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct MemAlloc {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) length: u64,
    pub(crate) handle: u64,
    pub(crate) dev_addr: u64,
}

/// `struct metis_mem_free`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct MemFree {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) handle: u64,
}

/// `struct metis_dma`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Dma {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) user_addr: u64,
    pub(crate) length: u64,
    pub(crate) handle: u64,
    pub(crate) offset: u64,
    pub(crate) timeout_ms: u32,
    pub(crate) reserved: u32,
    pub(crate) job_id: u64,
}

/// `struct metis_wait`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Wait {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) job_id: u64,
    pub(crate) timeout_ms: u32,
    pub(crate) status: i32,
}

/// `struct metis_cmd`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Cmd {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) opcode: u32,
    pub(crate) op: u32,
    pub(crate) handle_in: u64,
    pub(crate) offset_in: u64,
    pub(crate) length: u64,
    pub(crate) handle_out: u64,
    pub(crate) offset_out: u64,
    pub(crate) arg: u32,
    pub(crate) result: u32,
    pub(crate) echo_len: u32,
    pub(crate) timeout_ms: u32,
    pub(crate) echo: [u8; ECHO_MAX],
}

impl Default for Cmd {
    fn default() -> Self {
        Self {
            size: 0,
            flags: 0,
            opcode: 0,
            op: 0,
            handle_in: 0,
            offset_in: 0,
            length: 0,
            handle_out: 0,
            offset_out: 0,
            arg: 0,
            result: 0,
            echo_len: 0,
            timeout_ms: 0,
            echo: [0; ECHO_MAX],
        }
    }
}

/// `struct metis_reset`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Reset {
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

/// `enum metis_fw_owner`.
pub(crate) const FW_KERNEL: u32 = 0;
pub(crate) const FW_RUNTIME: u32 = 1;

/// `struct metis_fw_changed`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct FwChanged {
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

/// `struct metis_buf_export`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BufExport {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) length: u64,
    pub(crate) fd: i32,
    pub(crate) reserved: u32,
}

/// `struct metis_dma_buf`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct DmaBuf {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) fd: i32,
    pub(crate) timeout_ms: u32,
    pub(crate) buf_offset: u64,
    pub(crate) length: u64,
    pub(crate) handle: u64,
    pub(crate) offset: u64,
    pub(crate) job_id: u64,
}

/// `struct metis_buf_register`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BufRegister {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) user_addr: u64,
    pub(crate) length: u64,
    pub(crate) handle: u64,
}

/// `struct metis_buf_unregister`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BufUnregister {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) handle: u64,
}

/// `struct metis_dma_batch`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct DmaBatch {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) entries: u64,
    pub(crate) count: u32,
    pub(crate) entry_size: u32,
    pub(crate) timeout_ms: u32,
    pub(crate) reserved: u32,
    pub(crate) job_id: u64,
}

macro_rules! plain_old_data {
    ($($t:ty),*) => {$(
        // SAFETY: `#[repr(C)]` with only integer fields and no padding (asserted below), so
        // every bit pattern is valid and all bytes are initialised.
        unsafe impl FromBytes for $t {}
        // SAFETY: As above.
        unsafe impl AsBytes for $t {}
    )*};
}
plain_old_data!(
    Info,
    MemAlloc,
    MemFree,
    Dma,
    Wait,
    Cmd,
    Reset,
    FwChanged,
    BufExport,
    DmaBuf,
    BufRegister,
    BufUnregister,
    DmaBatch
);

macro_rules! assert_layout {
    ($t:ty, $size:expr, $($field:ident @ $off:expr),*) => {
        static_assert!(core::mem::size_of::<$t>() == $size);
        $(static_assert!(core::mem::offset_of!($t, $field) == $off);)*
    };
}
// Sizes and offsets of uapi/linux/metis.h (x86_64 and arm64 alike).
assert_layout!(Info, 80, size @ 0, flags @ 4, abi_version @ 8, vendor_id @ 12, device_id @ 14,
    revision @ 16, irq_mode @ 17, iommu_mode @ 18, fw_state @ 19, fw_version @ 20,
    fw_if_version @ 24, wr_channels @ 28, rd_channels @ 32, irq_vectors @ 36, reset_count @ 40,
    fw_owner @ 44, mem_size @ 48, mem_free @ 56, bytes_to_device @ 64, bytes_from_device @ 72);
assert_layout!(MemAlloc, 32, size @ 0, flags @ 4, length @ 8, handle @ 16, dev_addr @ 24);
assert_layout!(MemFree, 16, size @ 0, flags @ 4, handle @ 8);
assert_layout!(Dma, 56, size @ 0, flags @ 4, user_addr @ 8, length @ 16, handle @ 24, offset @ 32,
    timeout_ms @ 40, reserved @ 44, job_id @ 48);
assert_layout!(Wait, 24, size @ 0, flags @ 4, job_id @ 8, timeout_ms @ 16, status @ 20);
assert_layout!(Cmd, 328, size @ 0, flags @ 4, opcode @ 8, op @ 12, handle_in @ 16, offset_in @ 24,
    length @ 32, handle_out @ 40, offset_out @ 48, arg @ 56, result @ 60, echo_len @ 64,
    timeout_ms @ 68, echo @ 72);
assert_layout!(Reset, 8, size @ 0, flags @ 4);
assert_layout!(FwChanged, 8, size @ 0, flags @ 4);
assert_layout!(BufExport, 24, size @ 0, flags @ 4, length @ 8, fd @ 16, reserved @ 20);
assert_layout!(DmaBuf, 56, size @ 0, flags @ 4, fd @ 8, timeout_ms @ 12, buf_offset @ 16,
    length @ 24, handle @ 32, offset @ 40, job_id @ 48);
assert_layout!(BufRegister, 32, size @ 0, flags @ 4, user_addr @ 8, length @ 16, handle @ 24);
assert_layout!(BufUnregister, 16, size @ 0, flags @ 4, handle @ 8);
assert_layout!(DmaBatch, 40, size @ 0, flags @ 4, entries @ 8, count @ 16, entry_size @ 20,
    timeout_ms @ 24, reserved @ 28, job_id @ 32);

/// The ioctl numbers, matched on type, number and direction only so a
/// struct can grow (the `size` field says which version the caller has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ioctl {
    Info,
    MemAlloc,
    MemFree,
    Dma,
    Wait,
    Cmd,
    Reset,
    BufExport,
    DmaBuf,
    FwChanged,
    BufRegister,
    BufUnregister,
    DmaBatch,
}

impl Ioctl {
    /// Decodes `cmd`; `None` for anything that is not one of ours.
    pub(crate) fn decode(cmd: u32) -> Option<(Self, usize)> {
        if ioctl::_IOC_TYPE(cmd) != IOCTL_MAGIC {
            return None;
        }
        let rw = kernel::uapi::_IOC_READ | kernel::uapi::_IOC_WRITE;
        let w = kernel::uapi::_IOC_WRITE;
        let (which, dir) = match ioctl::_IOC_NR(cmd) {
            0 => (Self::Info, rw),
            1 => (Self::MemAlloc, rw),
            2 => (Self::MemFree, w),
            3 => (Self::Dma, rw),
            4 => (Self::Wait, rw),
            5 => (Self::Cmd, rw),
            6 => (Self::Reset, w),
            7 => (Self::BufExport, rw),
            8 => (Self::DmaBuf, rw),
            9 => (Self::FwChanged, w),
            10 => (Self::BufRegister, rw),
            11 => (Self::BufUnregister, w),
            12 => (Self::DmaBatch, rw),
            _ => return None,
        };
        if ioctl::_IOC_DIR(cmd) != dir {
            return None;
        }
        Some((which, ioctl::_IOC_SIZE(cmd)))
    }

    /// Size of the version-1 struct.
    pub(crate) fn base_size(self) -> usize {
        match self {
            Self::Info => core::mem::size_of::<Info>(),
            Self::MemAlloc => core::mem::size_of::<MemAlloc>(),
            Self::MemFree => core::mem::size_of::<MemFree>(),
            Self::Dma => core::mem::size_of::<Dma>(),
            Self::Wait => core::mem::size_of::<Wait>(),
            Self::Cmd => core::mem::size_of::<Cmd>(),
            Self::Reset => core::mem::size_of::<Reset>(),
            Self::BufExport => core::mem::size_of::<BufExport>(),
            Self::DmaBuf => core::mem::size_of::<DmaBuf>(),
            Self::FwChanged => core::mem::size_of::<FwChanged>(),
            Self::BufRegister => core::mem::size_of::<BufRegister>(),
            Self::BufUnregister => core::mem::size_of::<BufUnregister>(),
            Self::DmaBatch => core::mem::size_of::<DmaBatch>(),
        }
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_uapi)]
mod tests {
    use super::*;

    const fn iowr<T>(nr: u32) -> u32 {
        ioctl::_IOWR::<T>(IOCTL_MAGIC, nr)
    }

    #[test]
    fn decodes_each_ioctl_with_its_size() {
        assert_eq!(Ioctl::decode(iowr::<Info>(0)), Some((Ioctl::Info, 80)));
        assert_eq!(Ioctl::decode(iowr::<Cmd>(5)), Some((Ioctl::Cmd, 328)));
        assert_eq!(
            Ioctl::decode(ioctl::_IOW::<Reset>(IOCTL_MAGIC, 6)),
            Some((Ioctl::Reset, 8))
        );
        assert_eq!(
            Ioctl::decode(ioctl::_IOW::<FwChanged>(IOCTL_MAGIC, 9)),
            Some((Ioctl::FwChanged, 8))
        );
        // The same number read-write is not ours.
        assert_eq!(Ioctl::decode(iowr::<FwChanged>(9)), None);
        assert_eq!(
            Ioctl::decode(iowr::<BufRegister>(10)),
            Some((Ioctl::BufRegister, 32))
        );
        assert_eq!(
            Ioctl::decode(ioctl::_IOW::<BufUnregister>(IOCTL_MAGIC, 11)),
            Some((Ioctl::BufUnregister, 16))
        );
        assert_eq!(Ioctl::decode(iowr::<BufUnregister>(11)), None);
        assert_eq!(
            Ioctl::decode(iowr::<DmaBatch>(12)),
            Some((Ioctl::DmaBatch, 40))
        );
        assert_eq!(
            Ioctl::decode(ioctl::_IOW::<DmaBatch>(IOCTL_MAGIC, 12)),
            None
        );
        assert_eq!(Ioctl::decode(iowr::<BufRegister>(13)), None);
        // A larger (newer) struct keeps its number; the size says which version it is.
        assert_eq!(Ioctl::decode(iowr::<[u8; 96]>(0)), Some((Ioctl::Info, 96)));
    }

    #[test]
    fn rejects_foreign_and_misdirected_numbers() {
        assert_eq!(Ioctl::decode(ioctl::_IOWR::<Info>(0x42, 0)), None);
        assert_eq!(Ioctl::decode(iowr::<Info>(0x3f)), None);
        // MEM_FREE is write-only; a read-write variant is not ours.
        assert_eq!(Ioctl::decode(iowr::<MemFree>(2)), None);
        assert_eq!(Ioctl::decode(ioctl::_IOR::<Info>(IOCTL_MAGIC, 0)), None);
    }
}
