// SPDX-License-Identifier: GPL-2.0

//! The card's read-only sysfs attributes (`/sys/bus/pci/devices/<BDF>/metis/`),
//! documented in `docs/sysfs-abi.md`.
//!
//! Each value comes from what the driver already knows: reading an attribute
//! never touches the card, never wakes it and never waits for a job. The C
//! tables that register them with the driver core are in `ffi.rs`.

use core::fmt::{
    self,
    Write, //
};

use kernel::{
    prelude::*,
    sync::atomic::Relaxed, //
};

use crate::{boot::FwState, card::Card, fw::FwOwner, glue::IommuMode, irq::IrqMode};

/// Formats one attribute's value (without the final newline).
pub(crate) type Show = fn(&Card, &mut dyn Write) -> fmt::Result;

/// Every attribute: its file name and how its value is formatted.
pub(crate) const ATTRIBUTES: [(&CStr, Show); 15] = [
    (c"driver_version", driver_version),
    (c"firmware_version", firmware_version),
    (c"interface_version", interface_version),
    (c"firmware_state", firmware_state),
    (c"firmware_owner", firmware_owner),
    (c"irq_mode", irq_mode),
    (c"irq_vectors", irq_vectors),
    (c"iommu_mode", iommu_mode),
    (c"reset_count", reset_count),
    (c"last_reset_reason", last_reset_reason),
    (c"mem_size", mem_size),
    (c"mem_free", mem_free),
    (c"bytes_to_device", bytes_to_device),
    (c"bytes_from_device", bytes_from_device),
    (c"dma_channels", dma_channels),
];

fn driver_version(_: &Card, w: &mut dyn Write) -> fmt::Result {
    w.write_str(crate::DRIVER_VERSION)
}

fn firmware_version(card: &Card, w: &mut dyn Write) -> fmt::Result {
    let st = *card.status.lock();
    if st.fw_state != FwState::Ready {
        return w.write_str("none");
    }
    let v = st.fw_version;
    write!(w, "{}.{}.{}", v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff)
}

fn interface_version(card: &Card, w: &mut dyn Write) -> fmt::Result {
    let st = *card.status.lock();
    if st.fw_state != FwState::Ready {
        return w.write_str("none");
    }
    write!(
        w,
        "{}.{}",
        st.fw_if_version >> 16,
        st.fw_if_version & 0xffff
    )
}

/// The names `metisctl info` prints.
fn fw_state_name(s: FwState) -> &'static str {
    match s {
        FwState::Off => "off",
        FwState::Bootloader => "bootloader",
        FwState::Booting => "booting",
        FwState::Ready => "ready",
        FwState::Failed => "failed",
        FwState::Unknown(_) => "unknown",
    }
}

fn firmware_state(card: &Card, w: &mut dyn Write) -> fmt::Result {
    w.write_str(fw_state_name(card.status.lock().fw_state))
}

fn firmware_owner(card: &Card, w: &mut dyn Write) -> fmt::Result {
    w.write_str(match card.fw.owner {
        FwOwner::Kernel => "kernel",
        FwOwner::Runtime => "runtime",
    })
}

fn irq_mode(card: &Card, w: &mut dyn Write) -> fmt::Result {
    w.write_str(match card.edma.irq_mode() {
        IrqMode::Poll => "poll",
        IrqMode::Intx => "intx",
        IrqMode::Msi => "msi",
        IrqMode::MsiX => "msix",
    })
}

fn irq_vectors(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.status.lock().irq_vectors)
}

fn iommu_mode(card: &Card, w: &mut dyn Write) -> fmt::Result {
    w.write_str(match card.status.lock().iommu_mode {
        IommuMode::None => "none",
        IommuMode::Passthrough => "passthrough",
        IommuMode::Translated => "translated",
    })
}

fn reset_count(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.status.lock().reset_count)
}

fn last_reset_reason(card: &Card, w: &mut dyn Write) -> fmt::Result {
    match card.status.lock().last_reset {
        Some(why) => write!(w, "{why}"),
        None => w.write_str("none"),
    }
}

fn mem_size(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.status.lock().mem_size)
}

fn mem_free(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.mem.lock().free_bytes())
}

fn bytes_to_device(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.bytes_to_device.load(Relaxed))
}

fn bytes_from_device(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{}", card.bytes_from_device.load(Relaxed))
}

/// Data channels per direction: `wr rd` (device to host, host to device).
fn dma_channels(card: &Card, w: &mut dyn Write) -> fmt::Result {
    write!(w, "{} {}", card.edma.wr_channels(), card.edma.rd_channels())
}

/// A `fmt::Write` over the page sysfs hands to `show`; output past its end is cut.
pub(crate) struct PageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> PageWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written, after ending the value with a newline (if it fits).
    pub(crate) fn finish(mut self) -> usize {
        let _ = self.write_str("\n");
        self.len
    }
}

impl Write for PageWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + n),
            s.as_bytes().get(..n),
        ) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
            self.len += n;
        }
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_sysfs)]
mod tests {
    use super::*;

    #[test]
    fn page_writer_ends_with_newline_and_cuts_at_the_end() {
        let mut buf = [0u8; 8];
        let mut w = PageWriter::new(&mut buf);
        assert!(write!(w, "{}", 1234).is_ok());
        assert_eq!(w.finish(), 5);
        assert_eq!(&buf[..5], b"1234\n");
        let mut w = PageWriter::new(&mut buf);
        assert!(w.write_str("0123456789").is_err());
        assert_eq!(w.finish(), 8);
        assert_eq!(&buf, b"01234567");
    }

    #[test]
    fn attribute_names_are_unique() {
        for (i, (a, _)) in ATTRIBUTES.iter().enumerate() {
            for (b, _) in ATTRIBUTES.iter().skip(i + 1) {
                assert_ne!(a.to_bytes(), b.to_bytes());
            }
        }
    }
}
