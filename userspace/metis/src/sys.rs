//! Raw ABI of the metis driver, generated from `uapi/linux/metis.h`.
//!
//! Everything in this module except the `ioc` helpers and the request
//! constants is produced by bindgen at build time (see `build.rs`): the
//! argument structs (`metis_info`, `metis_dma`, ...), the enums (as plain
//! constants, so that values a newer driver reports stay representable) and
//! the `METIS_*` object-like macros.
//!
//! The ioctl request numbers come out of the header too: clang evaluates each
//! `METIS_IOCTL_*` macro for the target (`__metis_req_*` enumerators). The
//! public `METIS_IOCTL_*` constants below are computed in Rust with the
//! generic Linux encoding from the generated struct sizes, and a compile-time
//! assertion requires both to agree on every target using that encoding.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    clippy::all,
    clippy::pedantic
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
include!(concat!(env!("OUT_DIR"), "/ioctl_list.rs"));

/// The generic Linux ioctl encoding (`include/uapi/asm-generic/ioctl.h`), used
/// by x86, arm, arm64, riscv, s390, loongarch and most other architectures:
/// `dir << 30 | size << 16 | type << 8 | nr`, with 8 bits of number, 8 of
/// type, 14 of size and 2 of direction.
pub mod ioc {
    /// Bits of the command number.
    pub const NRBITS: u32 = 8;
    /// Bits of the type ("magic").
    pub const TYPEBITS: u32 = 8;
    /// Bits of the argument size.
    pub const SIZEBITS: u32 = 14;
    /// Bits of the direction.
    pub const DIRBITS: u32 = 2;
    /// Shift of the command number.
    pub const NRSHIFT: u32 = 0;
    /// Shift of the type.
    pub const TYPESHIFT: u32 = NRSHIFT + NRBITS;
    /// Shift of the size.
    pub const SIZESHIFT: u32 = TYPESHIFT + TYPEBITS;
    /// Shift of the direction.
    pub const DIRSHIFT: u32 = SIZESHIFT + SIZEBITS;
    /// No data transfer.
    pub const NONE: u32 = 0;
    /// Userspace writes, the driver reads (`_IOW`).
    pub const WRITE: u32 = 1;
    /// The driver writes, userspace reads (`_IOR`).
    pub const READ: u32 = 2;

    /// `_IOC(dir, type, nr, size)`. Panics (at compile time when used in a
    /// constant) if a field does not fit.
    pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
        assert!(dir < (1 << DIRBITS));
        assert!(ty < (1 << TYPEBITS));
        assert!(nr < (1 << NRBITS));
        assert!(size < (1 << SIZEBITS));
        (dir << DIRSHIFT) | (ty << TYPESHIFT) | (nr << NRSHIFT) | ((size as u32) << SIZESHIFT)
    }
    /// `_IO(type, nr)`.
    pub const fn io(ty: u32, nr: u32) -> u32 {
        ioc(NONE, ty, nr, 0)
    }
    /// `_IOR(type, nr, T)`.
    pub const fn ior<T>(ty: u32, nr: u32) -> u32 {
        ioc(READ, ty, nr, core::mem::size_of::<T>())
    }
    /// `_IOW(type, nr, T)`.
    pub const fn iow<T>(ty: u32, nr: u32) -> u32 {
        ioc(WRITE, ty, nr, core::mem::size_of::<T>())
    }
    /// `_IOWR(type, nr, T)`.
    pub const fn iowr<T>(ty: u32, nr: u32) -> u32 {
        ioc(READ | WRITE, ty, nr, core::mem::size_of::<T>())
    }
    /// Direction bits of a request number.
    pub const fn dir_of(req: u32) -> u32 {
        (req >> DIRSHIFT) & ((1 << DIRBITS) - 1)
    }
    /// Type bits of a request number.
    pub const fn type_of(req: u32) -> u32 {
        (req >> TYPESHIFT) & ((1 << TYPEBITS) - 1)
    }
    /// Number bits of a request number.
    pub const fn nr_of(req: u32) -> u32 {
        (req >> NRSHIFT) & ((1 << NRBITS) - 1)
    }
    /// Size bits of a request number.
    pub const fn size_of_req(req: u32) -> u32 {
        (req >> SIZESHIFT) & ((1 << SIZEBITS) - 1)
    }
}

const MAGIC: u32 = METIS_IOCTL_MAGIC;

/// `METIS_IOCTL_INFO`: `_IOWR(0xBB, 0x00, struct metis_info)`.
pub const METIS_IOCTL_INFO: u32 = ioc::iowr::<metis_info>(MAGIC, 0x00);
/// `METIS_IOCTL_MEM_ALLOC`: `_IOWR(0xBB, 0x01, struct metis_mem_alloc)`.
pub const METIS_IOCTL_MEM_ALLOC: u32 = ioc::iowr::<metis_mem_alloc>(MAGIC, 0x01);
/// `METIS_IOCTL_MEM_FREE`: `_IOW(0xBB, 0x02, struct metis_mem_free)`.
pub const METIS_IOCTL_MEM_FREE: u32 = ioc::iow::<metis_mem_free>(MAGIC, 0x02);
/// `METIS_IOCTL_DMA`: `_IOWR(0xBB, 0x03, struct metis_dma)`.
pub const METIS_IOCTL_DMA: u32 = ioc::iowr::<metis_dma>(MAGIC, 0x03);
/// `METIS_IOCTL_WAIT`: `_IOWR(0xBB, 0x04, struct metis_wait)`.
pub const METIS_IOCTL_WAIT: u32 = ioc::iowr::<metis_wait>(MAGIC, 0x04);
/// `METIS_IOCTL_CMD`: `_IOWR(0xBB, 0x05, struct metis_cmd)`.
pub const METIS_IOCTL_CMD: u32 = ioc::iowr::<metis_cmd>(MAGIC, 0x05);
/// `METIS_IOCTL_RESET`: `_IOW(0xBB, 0x06, struct metis_reset)`.
pub const METIS_IOCTL_RESET: u32 = ioc::iow::<metis_reset>(MAGIC, 0x06);
/// `METIS_IOCTL_BUF_EXPORT`: `_IOWR(0xBB, 0x07, struct metis_buf_export)`.
pub const METIS_IOCTL_BUF_EXPORT: u32 = ioc::iowr::<metis_buf_export>(MAGIC, 0x07);
/// `METIS_IOCTL_DMA_BUF`: `_IOWR(0xBB, 0x08, struct metis_dma_buf)`.
pub const METIS_IOCTL_DMA_BUF: u32 = ioc::iowr::<metis_dma_buf>(MAGIC, 0x08);
/// `METIS_IOCTL_FW_CHANGED`: `_IOW(0xBB, 0x09, struct metis_fw_changed)`.
pub const METIS_IOCTL_FW_CHANGED: u32 = ioc::iow::<metis_fw_changed>(MAGIC, 0x09);
/// `METIS_IOCTL_BUF_REGISTER`: `_IOWR(0xBB, 0x0a, struct metis_buf_register)`.
pub const METIS_IOCTL_BUF_REGISTER: u32 = ioc::iowr::<metis_buf_register>(MAGIC, 0x0a);
/// `METIS_IOCTL_BUF_UNREGISTER`: `_IOW(0xBB, 0x0b, struct metis_buf_unregister)`.
pub const METIS_IOCTL_BUF_UNREGISTER: u32 = ioc::iow::<metis_buf_unregister>(MAGIC, 0x0b);
/// `METIS_IOCTL_DMA_BATCH`: `_IOWR(0xBB, 0x0c, struct metis_dma_batch)`.
pub const METIS_IOCTL_DMA_BATCH: u32 = ioc::iowr::<metis_dma_batch>(MAGIC, 0x0c);

// The Rust encoding must agree with what the C compiler made of the header's
// macros for this target. Targets with another encoding (powerpc, mips,
// sparc, alpha) only use the header's values (the `__metis_req_*` ones).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "loongarch64"
))]
mod encoding_check {
    use super::*;
    static_assertions::const_assert_eq!(METIS_IOCTL_INFO, __metis_req_METIS_IOCTL_INFO as u32);
    static_assertions::const_assert_eq!(
        METIS_IOCTL_MEM_ALLOC,
        __metis_req_METIS_IOCTL_MEM_ALLOC as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_MEM_FREE,
        __metis_req_METIS_IOCTL_MEM_FREE as u32
    );
    static_assertions::const_assert_eq!(METIS_IOCTL_DMA, __metis_req_METIS_IOCTL_DMA as u32);
    static_assertions::const_assert_eq!(METIS_IOCTL_WAIT, __metis_req_METIS_IOCTL_WAIT as u32);
    static_assertions::const_assert_eq!(METIS_IOCTL_CMD, __metis_req_METIS_IOCTL_CMD as u32);
    static_assertions::const_assert_eq!(METIS_IOCTL_RESET, __metis_req_METIS_IOCTL_RESET as u32);
    static_assertions::const_assert_eq!(
        METIS_IOCTL_BUF_EXPORT,
        __metis_req_METIS_IOCTL_BUF_EXPORT as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_DMA_BUF,
        __metis_req_METIS_IOCTL_DMA_BUF as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_FW_CHANGED,
        __metis_req_METIS_IOCTL_FW_CHANGED as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_BUF_REGISTER,
        __metis_req_METIS_IOCTL_BUF_REGISTER as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_BUF_UNREGISTER,
        __metis_req_METIS_IOCTL_BUF_UNREGISTER as u32
    );
    static_assertions::const_assert_eq!(
        METIS_IOCTL_DMA_BATCH,
        __metis_req_METIS_IOCTL_DMA_BATCH as u32
    );
}

/// An ioctl argument struct of the metis ABI: it starts with a `u32 size`
/// that the caller sets to `size_of::<Self>()`.
///
/// # Safety
///
/// Implementors must be plain `#[repr(C)]` structs of integers and integer
/// arrays, for which the all-zero bit pattern is a valid value.
pub unsafe trait UapiArg: Default + Copy {
    /// A zeroed value with `size` set.
    fn new_sized() -> Self;
    /// The `size` field.
    fn size_field(&self) -> u32;
    /// Sets the `size` field to `size_of::<Self>()`.
    fn set_size(&mut self);
}

/// A zeroed argument, padding bytes included, with `size` set. Unlike
/// [`UapiArg::new_sized`], which returns by value (and so may not keep
/// padding bytes), this keeps every byte the header does not name at zero as
/// long as it is only changed through field assignments, as the driver's "every
/// byte it does not know must be zero" rule requires. The version-1 structs
/// have no implicit padding (the asserts below check the fields that close
/// the holes), but a later header might.
pub fn zeroed_arg<T: UapiArg>() -> core::mem::MaybeUninit<T> {
    let mut m = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: all-zero is a valid `T` (trait contract); the field store
    // leaves the other bytes alone.
    unsafe { (*m.as_mut_ptr()).set_size() };
    m
}

macro_rules! uapi_arg {
    ($($t:ident),* $(,)?) => {$(
        // `size` is the first field: the driver reads it before anything else.
        static_assertions::const_assert_eq!(core::mem::offset_of!($t, size), 0);
        static_assertions::const_assert!(core::mem::size_of::<$t>() < (1 << ioc::SIZEBITS));
        // SAFETY: bindgen structs of __u8/__u16/__u32/__s32/__u64 and __u8 arrays.
        unsafe impl UapiArg for $t {
            fn new_sized() -> Self {
                Self { size: core::mem::size_of::<Self>() as u32, ..Default::default() }
            }
            fn size_field(&self) -> u32 {
                self.size
            }
            fn set_size(&mut self) {
                self.size = core::mem::size_of::<Self>() as u32;
            }
        }
    )*};
}

static_assertions::assert_type_eq_all!(u32, __u32);

uapi_arg!(
    metis_info,
    metis_mem_alloc,
    metis_mem_free,
    metis_dma,
    metis_wait,
    metis_cmd,
    metis_reset,
    metis_buf_export,
    metis_dma_buf,
    metis_fw_changed,
    metis_buf_register,
    metis_buf_unregister,
    metis_dma_batch
);

// Version-1 sizes the header implies (natural alignment, no packing). A change
// here is an ABI change and needs a new ABI version.
static_assertions::assert_eq_size!(metis_info, [u8; 80]);
static_assertions::assert_eq_size!(metis_mem_alloc, [u8; 32]);
static_assertions::assert_eq_size!(metis_mem_free, [u8; 16]);
static_assertions::assert_eq_size!(metis_dma, [u8; 56]);
static_assertions::assert_eq_size!(metis_wait, [u8; 24]);
static_assertions::assert_eq_size!(metis_cmd, [u8; 328]);
static_assertions::assert_eq_size!(metis_reset, [u8; 8]);
static_assertions::assert_eq_size!(metis_buf_export, [u8; 24]);
static_assertions::assert_eq_size!(metis_dma_buf, [u8; 56]);
static_assertions::assert_eq_size!(metis_fw_changed, [u8; 8]);
static_assertions::assert_eq_size!(metis_buf_register, [u8; 32]);
static_assertions::assert_eq_size!(metis_buf_unregister, [u8; 16]);
static_assertions::assert_eq_size!(metis_dma_batch, [u8; 40]);
static_assertions::const_assert_eq!(core::mem::align_of::<metis_info>(), 8);
static_assertions::const_assert_eq!(core::mem::align_of::<metis_cmd>(), 8);
// fw_owner took the place of version 1's `reserved` word, which drivers
// always zeroed: an older driver reads as METIS_FW_KERNEL, which it is.
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_info, fw_owner), 44);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_fw_changed, flags), 4);
static_assertions::const_assert_eq!(METIS_FW_KERNEL as u32, 0);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_info, mem_size), 48);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_dma, job_id), 48);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_dma_batch, job_id), 32);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_wait, status), 20);
static_assertions::const_assert_eq!(core::mem::offset_of!(metis_cmd, echo), 72);
static_assertions::const_assert_eq!(METIS_ECHO_MAX as usize, 256);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn request_numbers_match_the_header() {
        // (name, Rust constant) in header order; the values clang computed
        // from the macros must be the same, for every macro of the header.
        let rust = [
            ("METIS_IOCTL_INFO", METIS_IOCTL_INFO),
            ("METIS_IOCTL_MEM_ALLOC", METIS_IOCTL_MEM_ALLOC),
            ("METIS_IOCTL_MEM_FREE", METIS_IOCTL_MEM_FREE),
            ("METIS_IOCTL_DMA", METIS_IOCTL_DMA),
            ("METIS_IOCTL_WAIT", METIS_IOCTL_WAIT),
            ("METIS_IOCTL_CMD", METIS_IOCTL_CMD),
            ("METIS_IOCTL_RESET", METIS_IOCTL_RESET),
            ("METIS_IOCTL_BUF_EXPORT", METIS_IOCTL_BUF_EXPORT),
            ("METIS_IOCTL_DMA_BUF", METIS_IOCTL_DMA_BUF),
            ("METIS_IOCTL_FW_CHANGED", METIS_IOCTL_FW_CHANGED),
            ("METIS_IOCTL_BUF_REGISTER", METIS_IOCTL_BUF_REGISTER),
            ("METIS_IOCTL_BUF_UNREGISTER", METIS_IOCTL_BUF_UNREGISTER),
            ("METIS_IOCTL_DMA_BATCH", METIS_IOCTL_DMA_BATCH),
        ];
        assert_eq!(ALL_IOCTLS, &rust[..]);
    }

    #[test]
    fn request_numbers_have_the_generic_encoding() {
        // Fixed values of the generic encoding (x86_64, arm64).
        assert_eq!(METIS_IOCTL_INFO, 0xC050_BB00);
        assert_eq!(METIS_IOCTL_MEM_ALLOC, 0xC020_BB01);
        assert_eq!(METIS_IOCTL_MEM_FREE, 0x4010_BB02);
        assert_eq!(METIS_IOCTL_DMA, 0xC038_BB03);
        assert_eq!(METIS_IOCTL_WAIT, 0xC018_BB04);
        assert_eq!(METIS_IOCTL_CMD, 0xC148_BB05);
        assert_eq!(METIS_IOCTL_RESET, 0x4008_BB06);
        assert_eq!(METIS_IOCTL_BUF_EXPORT, 0xC018_BB07);
        assert_eq!(METIS_IOCTL_DMA_BUF, 0xC038_BB08);
        assert_eq!(METIS_IOCTL_FW_CHANGED, 0x4008_BB09);
        assert_eq!(METIS_IOCTL_BUF_REGISTER, 0xC020_BB0A);
        assert_eq!(METIS_IOCTL_BUF_UNREGISTER, 0x4010_BB0B);
        assert_eq!(METIS_IOCTL_DMA_BATCH, 0xC028_BB0C);
        for (i, (_, req)) in ALL_IOCTLS.iter().enumerate() {
            assert_eq!(ioc::type_of(*req), 0xBB);
            assert_eq!(ioc::nr_of(*req), i as u32);
        }
        assert_eq!(ioc::dir_of(METIS_IOCTL_RESET), ioc::WRITE);
        // The driver only reads the argument: `_IOW`, like RESET.
        assert_eq!(ioc::dir_of(METIS_IOCTL_FW_CHANGED), ioc::WRITE);
        assert_eq!(ioc::size_of_req(METIS_IOCTL_FW_CHANGED), 8);
        assert_eq!(
            METIS_IOCTL_FW_CHANGED,
            ioc::ioc(ioc::WRITE, 0xBB, 9, 8),
            "_IOW(0xBB, 9, 8 bytes)"
        );
        assert_eq!(ioc::dir_of(METIS_IOCTL_DMA), ioc::READ | ioc::WRITE);
        assert_eq!(
            ioc::size_of_req(METIS_IOCTL_CMD) as usize,
            size_of::<metis_cmd>()
        );
        assert_eq!(ioc::io(0xBB, 7), 0xBB07);
        assert_eq!(ioc::ior::<u32>(0xBB, 7), 0x8004_BB07);
    }

    #[test]
    fn struct_layouts_are_version_1() {
        assert_eq!(size_of::<metis_info>(), 80);
        assert_eq!(offset_of!(metis_info, revision), 16);
        assert_eq!(offset_of!(metis_info, fw_state), 19);
        assert_eq!(offset_of!(metis_info, reset_count), 40);
        assert_eq!(offset_of!(metis_info, bytes_from_device), 72);
        assert_eq!(size_of::<metis_mem_alloc>(), 32);
        assert_eq!(offset_of!(metis_mem_alloc, dev_addr), 24);
        assert_eq!(size_of::<metis_mem_free>(), 16);
        assert_eq!(size_of::<metis_dma>(), 56);
        assert_eq!(offset_of!(metis_dma, timeout_ms), 40);
        assert_eq!(size_of::<metis_wait>(), 24);
        assert_eq!(size_of::<metis_cmd>(), 328);
        assert_eq!(offset_of!(metis_cmd, echo_len), 64);
        assert_eq!(size_of::<metis_reset>(), 8);
        assert_eq!(offset_of!(metis_info, fw_owner), 44);
        assert_eq!(offset_of!(metis_info, mem_size), 48);
        assert_eq!(size_of::<metis_fw_changed>(), 8);
        assert_eq!(offset_of!(metis_fw_changed, size), 0);
        assert_eq!(offset_of!(metis_fw_changed, flags), 4);
    }

    #[test]
    fn new_args_carry_their_size() {
        assert_eq!(metis_info::new_sized().size, 80);
        assert_eq!(metis_cmd::new_sized().size, 328);
        assert_eq!(metis_cmd::new_sized().echo, [0u8; 256]);
        assert_eq!(metis_reset::new_sized().size_field(), 8);
        let fc = metis_fw_changed::new_sized();
        assert_eq!((fc.size, fc.flags), (8, 0));
        let mut w = metis_wait::default();
        w.set_size();
        assert_eq!(w.size, 24);
    }

    #[test]
    fn zeroed_arg_zeroes_the_padding() {
        let m = zeroed_arg::<metis_info>();
        // SAFETY: every byte was zeroed, then `size` set.
        let bytes: &[u8] = unsafe {
            core::slice::from_raw_parts(m.as_ptr().cast::<u8>(), size_of::<metis_info>())
        };
        assert_eq!(&bytes[..4], &80u32.to_ne_bytes());
        assert!(bytes[4..].iter().all(|b| *b == 0));
    }

    /// Independent check with the system C compiler (gcc, not the clang that
    /// bindgen uses): sizes and request numbers as C sees them. Skipped when
    /// no `cc` is installed or when cross-compiling.
    #[test]
    fn c_compiler_agrees() {
        use std::fmt::Write as _;
        use std::process::Command;
        let header = env!("METIS_UAPI_HEADER_PATH");
        let dir = std::env::temp_dir().join(format!("metis-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = format!("#include <stdio.h>\n#include \"{header}\"\nint main(void) {{\n");
        for (name, _) in ALL_IOCTLS {
            writeln!(
                c,
                "printf(\"%s %lu\\n\", \"{name}\", (unsigned long){name});"
            )
            .unwrap();
        }
        for t in [
            "metis_info",
            "metis_mem_alloc",
            "metis_mem_free",
            "metis_dma",
            "metis_wait",
            "metis_cmd",
            "metis_reset",
            "metis_buf_export",
            "metis_dma_buf",
            "metis_fw_changed",
            "metis_buf_register",
            "metis_buf_unregister",
            "metis_dma_batch",
        ] {
            writeln!(c, "printf(\"%s %zu\\n\", \"{t}\", sizeof(struct {t}));").unwrap();
        }
        c.push_str("return 0; }\n");
        std::fs::write(dir.join("abi.c"), c).unwrap();
        let exe = dir.join("abi");
        let built = Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(dir.join("abi.c"))
            .status();
        match built {
            Ok(s) if s.success() => {}
            other => {
                eprintln!("skipped: no working C compiler ({other:?})");
                let _ = std::fs::remove_dir_all(&dir);
                return;
            }
        }
        let out = Command::new(&exe).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8(out.stdout).unwrap();
        let got: std::collections::HashMap<&str, u64> = text
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        for (name, req) in ALL_IOCTLS {
            assert_eq!(got[name], u64::from(*req), "{name}");
        }
        assert_eq!(got["metis_info"], size_of::<metis_info>() as u64);
        assert_eq!(got["metis_mem_alloc"], size_of::<metis_mem_alloc>() as u64);
        assert_eq!(got["metis_mem_free"], size_of::<metis_mem_free>() as u64);
        assert_eq!(got["metis_dma"], size_of::<metis_dma>() as u64);
        assert_eq!(got["metis_wait"], size_of::<metis_wait>() as u64);
        assert_eq!(got["metis_cmd"], size_of::<metis_cmd>() as u64);
        assert_eq!(got["metis_reset"], size_of::<metis_reset>() as u64);
        assert_eq!(
            got["metis_buf_export"],
            size_of::<metis_buf_export>() as u64
        );
        assert_eq!(got["metis_dma_buf"], size_of::<metis_dma_buf>() as u64);
        assert_eq!(
            got["metis_fw_changed"],
            size_of::<metis_fw_changed>() as u64
        );
        assert_eq!(
            got["metis_buf_register"],
            size_of::<metis_buf_register>() as u64
        );
        assert_eq!(
            got["metis_buf_unregister"],
            size_of::<metis_buf_unregister>() as u64
        );
        assert_eq!(got["metis_dma_batch"], size_of::<metis_dma_batch>() as u64);
    }
}
