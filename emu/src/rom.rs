//! Expansion ROM contents: a minimal, well-formed PCI option ROM header
//! (0xAA55 signature, PCIR structure with our IDs and class) whose single
//! image is marked as code type 3 (EFI) without an EFI image inside, so
//! SeaBIOS (x86 images only) and OVMF (EFI signature check) both skip it.
//! The rest of the 64 KiB reads as zero.

pub fn build(size: usize, vendor: u16, device: u16, class: u32) -> Vec<u8> {
    let mut r = vec![0u8; size];
    r[0] = 0x55;
    r[1] = 0xaa;
    r[2] = 1; // image size in 512-byte units
    let pcir = 0x1c;
    r[0x18..0x1a].copy_from_slice(&(pcir as u16).to_le_bytes());
    r[pcir..pcir + 4].copy_from_slice(b"PCIR");
    r[pcir + 4..pcir + 6].copy_from_slice(&vendor.to_le_bytes());
    r[pcir + 6..pcir + 8].copy_from_slice(&device.to_le_bytes());
    r[pcir + 0xa..pcir + 0xc].copy_from_slice(&0x18u16.to_le_bytes()); // PCIR length
    r[pcir + 0xd] = class as u8; // prog-if
    r[pcir + 0xe] = (class >> 8) as u8; // subclass
    r[pcir + 0xf] = (class >> 16) as u8; // class
    r[pcir + 0x10..pcir + 0x12].copy_from_slice(&1u16.to_le_bytes()); // image length
    r[pcir + 0x14] = 0x03; // code type: EFI
    r[pcir + 0x15] = 0x80; // last image
                           // Checksum byte so the 512-byte image sums to 0, as legacy BIOSes expect.
    let sum: u8 = r[..511].iter().fold(0u8, |a, b| a.wrapping_add(*b));
    r[511] = 0u8.wrapping_sub(sum);
    r
}
