// SPDX-License-Identifier: GPL-2.0

//! Firmware image header and its validation (format in `docs/hw-interface.md`).
//!
//! Everything here is checked before the image goes anywhere near the card,
//! so a corrupt or mismatched file fails with a message instead of a card
//! that never boots (field report R1.4).

use kernel::{
    prelude::*,
    transmute::FromBytes, //
};

use crate::crc32::crc32;

/// "MTIS", little-endian.
pub(crate) const MAGIC: u32 = 0x5349_544d;
/// Size of the header in front of the payload.
pub(crate) const HEADER_SIZE: usize = 64;
/// Interface major version this driver implements.
pub(crate) const DRIVER_IF_MAJOR: u16 = 1;

/// What a valid header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) if_major: u16,
    pub(crate) if_minor: u16,
    pub(crate) fw_major: u8,
    pub(crate) fw_minor: u8,
    pub(crate) fw_patch: u16,
    pub(crate) payload_size: u32,
    pub(crate) load_addr: u64,
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Shorter than a header.
    Truncated,
    BadMagic(u32),
    BadHeaderVersion(u16, u16),
    BadHeaderCrc,
    /// File size does not match header + payload.
    BadSize {
        file: usize,
        header: u32,
    },
    /// Larger than the card accepts.
    TooLarge {
        size: usize,
        max: u32,
    },
    BadPayloadCrc,
    /// Built for another interface major version.
    Interface {
        image: (u16, u16),
    },
    /// Must be loaded where the card's bootloader expects it.
    LoadAddr {
        image: u64,
        card: u64,
    },
}

/// The header as it lies in the file (little-endian fields).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawHeader {
    magic: u32,
    header_version: u16,
    header_size: u16,
    if_major: u16,
    if_minor: u16,
    fw_major: u8,
    fw_minor: u8,
    fw_patch: u16,
    payload_size: u32,
    flags: u32,
    load_addr: u64,
    payload_crc: u32,
    header_crc: u32,
    reserved: [u32; 6],
}

// SAFETY: Integers and an array of integers without padding (the layout assert below checks the
// size): every bit pattern is a valid `RawHeader`.
unsafe impl FromBytes for RawHeader {}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_SIZE);
/// The header CRC covers everything in front of it.
const HEADER_CRC_SPAN: usize = core::mem::offset_of!(RawHeader, header_crc);

/// Validates a whole image file against the card's `load_addr` and `max_size`.
pub(crate) fn validate(image: &[u8], load_addr: u64, max_size: u32) -> Result<Header, Reject> {
    let Some((raw, payload)) = RawHeader::from_bytes_copy_prefix(image) else {
        return Err(Reject::Truncated);
    };
    let magic = u32::from_le(raw.magic);
    if magic != MAGIC {
        return Err(Reject::BadMagic(magic));
    }
    let (hver, hsize) = (
        u16::from_le(raw.header_version),
        u16::from_le(raw.header_size),
    );
    // CAST: `HEADER_SIZE` is 64.
    if hver != 1 || hsize != HEADER_SIZE as u16 {
        return Err(Reject::BadHeaderVersion(hver, hsize));
    }
    if crc32(&image[..HEADER_CRC_SPAN]) != u32::from_le(raw.header_crc) {
        return Err(Reject::BadHeaderCrc);
    }
    let payload_size = u32::from_le(raw.payload_size);
    if usize::try_from(payload_size).ok() != Some(payload.len()) {
        return Err(Reject::BadSize {
            file: image.len(),
            header: payload_size,
        });
    }
    if usize::try_from(max_size).is_ok_and(|max| image.len() > max) {
        return Err(Reject::TooLarge {
            size: image.len(),
            max: max_size,
        });
    }
    if crc32(payload) != u32::from_le(raw.payload_crc) {
        return Err(Reject::BadPayloadCrc);
    }
    let hdr = Header {
        if_major: u16::from_le(raw.if_major),
        if_minor: u16::from_le(raw.if_minor),
        fw_major: raw.fw_major,
        fw_minor: raw.fw_minor,
        fw_patch: u16::from_le(raw.fw_patch),
        payload_size,
        load_addr: u64::from_le(raw.load_addr),
    };
    if hdr.if_major != DRIVER_IF_MAJOR {
        return Err(Reject::Interface {
            image: (hdr.if_major, hdr.if_minor),
        });
    }
    if hdr.load_addr != load_addr {
        return Err(Reject::LoadAddr {
            image: hdr.load_addr,
            card: load_addr,
        });
    }
    Ok(hdr)
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_fw_image)]
mod tests {
    use super::*;
    use kernel::alloc::KVec;

    const LOAD: u64 = 0x0100_0000;

    fn image(if_major: u16, payload_len: usize) -> Result<KVec<u8>> {
        let mut v = KVec::new();
        v.extend_from_slice(&[0u8; HEADER_SIZE], GFP_KERNEL)?;
        for i in 0..payload_len {
            // CAST: truncation to a byte is the pattern.
            v.push((i * 7 + 3) as u8, GFP_KERNEL)?;
        }
        let crc = crc32(&v[HEADER_SIZE..]);
        v[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        v[4..6].copy_from_slice(&1u16.to_le_bytes());
        v[6..8].copy_from_slice(&64u16.to_le_bytes());
        v[8..10].copy_from_slice(&if_major.to_le_bytes());
        v[10..12].copy_from_slice(&3u16.to_le_bytes());
        v[12] = 1;
        v[13] = 2;
        v[14..16].copy_from_slice(&3u16.to_le_bytes());
        // CAST: test payloads are small.
        v[16..20].copy_from_slice(&(payload_len as u32).to_le_bytes());
        v[24..32].copy_from_slice(&LOAD.to_le_bytes());
        v[32..36].copy_from_slice(&crc.to_le_bytes());
        let hcrc = crc32(&v[..0x24]);
        v[36..40].copy_from_slice(&hcrc.to_le_bytes());
        Ok(v)
    }

    #[test]
    fn accepts_valid_image() -> Result {
        let img = image(1, 100)?;
        let h = validate(&img, LOAD, 1 << 20);
        assert_eq!(
            h.map(|h| (h.if_major, h.if_minor, h.fw_major, h.fw_minor, h.fw_patch)),
            Ok((1, 3, 1, 2, 3))
        );
        Ok(())
    }

    #[test]
    fn rejects_each_defect() -> Result {
        let good = image(1, 100)?;
        assert_eq!(validate(&good[..10], LOAD, 1 << 20), Err(Reject::Truncated));
        assert_eq!(
            validate(&good[..150], LOAD, 1 << 20),
            Err(Reject::BadSize {
                file: 150,
                header: 100
            })
        );
        assert_eq!(
            validate(&good, LOAD, 100),
            Err(Reject::TooLarge {
                size: 164,
                max: 100
            })
        );
        assert_eq!(
            validate(&good, LOAD + 4096, 1 << 20),
            Err(Reject::LoadAddr {
                image: LOAD,
                card: LOAD + 4096
            })
        );
        let mut bad = image(1, 100)?;
        bad[HEADER_SIZE + 5] ^= 1;
        assert_eq!(validate(&bad, LOAD, 1 << 20), Err(Reject::BadPayloadCrc));
        let mut bad = image(1, 100)?;
        bad[13] ^= 1;
        assert_eq!(validate(&bad, LOAD, 1 << 20), Err(Reject::BadHeaderCrc));
        let mut bad = image(1, 100)?;
        bad[0] ^= 1;
        assert!(matches!(
            validate(&bad, LOAD, 1 << 20),
            Err(Reject::BadMagic(_))
        ));
        let other = image(2, 100)?;
        assert_eq!(
            validate(&other, LOAD, 1 << 20),
            Err(Reject::Interface { image: (2, 3) })
        );
        Ok(())
    }
}
