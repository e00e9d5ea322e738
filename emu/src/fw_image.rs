//! Firmware image format (docs/hw-interface.md "Firmware image (model)"),
//! shared by the emulated bootloader and the `metis-fwimg` generator.
//!
//! Layout, little-endian, 64-byte header followed by the payload:
//! magic u32 "MTIS", header version u16 = 1, header size u16 = 64,
//! interface major/minor u16, firmware major u8 / minor u8 / patch u16,
//! payload size u32, flags u32, load address u64, payload CRC-32 u32,
//! header CRC-32 u32 over bytes 0x00..0x24, zero up to 0x40.

pub const MAGIC: u32 = 0x5349_544D; // "MTIS" read as a little-endian u32
pub const HEADER_VERSION: u16 = 1;
pub const HEADER_SIZE: usize = 64;
/// Bytes covered by the header CRC.
pub const HEADER_CRC_SPAN: usize = 0x24;

/// Fields of an image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: u32,
    pub header_version: u16,
    pub header_size: u16,
    pub if_major: u16,
    pub if_minor: u16,
    pub fw_major: u8,
    pub fw_minor: u8,
    pub fw_patch: u16,
    pub payload_size: u32,
    pub flags: u32,
    pub load_addr: u64,
    pub payload_crc: u32,
    pub header_crc: u32,
}

/// Why the bootloader refused an image; the numbers are `FAIL_REASON`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    BadMagic = 1,
    BadHeader = 2,
    BadSize = 3,
    BadCrc = 4,
    IfMajorUnsupported = 5,
    LoadAddress = 6,
    Timeout = 7,
}

pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

impl Header {
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Header {
        Header {
            magic: le32(b, 0x00),
            header_version: le16(b, 0x04),
            header_size: le16(b, 0x06),
            if_major: le16(b, 0x08),
            if_minor: le16(b, 0x0a),
            fw_major: b[0x0c],
            fw_minor: b[0x0d],
            fw_patch: le16(b, 0x0e),
            payload_size: le32(b, 0x10),
            flags: le32(b, 0x14),
            load_addr: le64(b, 0x18),
            payload_crc: le32(b, 0x20),
            header_crc: le32(b, 0x24),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0x00..0x04].copy_from_slice(&self.magic.to_le_bytes());
        b[0x04..0x06].copy_from_slice(&self.header_version.to_le_bytes());
        b[0x06..0x08].copy_from_slice(&self.header_size.to_le_bytes());
        b[0x08..0x0a].copy_from_slice(&self.if_major.to_le_bytes());
        b[0x0a..0x0c].copy_from_slice(&self.if_minor.to_le_bytes());
        b[0x0c] = self.fw_major;
        b[0x0d] = self.fw_minor;
        b[0x0e..0x10].copy_from_slice(&self.fw_patch.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&self.payload_size.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&self.flags.to_le_bytes());
        b[0x18..0x20].copy_from_slice(&self.load_addr.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&self.payload_crc.to_le_bytes());
        b[0x24..0x28].copy_from_slice(&self.header_crc.to_le_bytes());
        b
    }

    /// CRC of the first 0x24 bytes as they would be serialised.
    pub fn compute_header_crc(&self) -> u32 {
        crc32(&self.to_bytes()[..HEADER_CRC_SPAN])
    }

    /// `FW_VERSION` register value: [7:0] major, [15:8] minor, [31:16] patch.
    pub fn fw_version_reg(&self) -> u32 {
        self.fw_major as u32 | (self.fw_minor as u32) << 8 | (self.fw_patch as u32) << 16
    }

    /// `FW_IF_VERSION` register value: [31:16] major, [15:0] minor.
    pub fn if_version_reg(&self) -> u32 {
        (self.if_major as u32) << 16 | self.if_minor as u32
    }
}

/// What the bootloader checks an image against.
#[derive(Clone, Copy, Debug)]
pub struct BootPolicy {
    pub max_size: u64,
    pub load_addr: u64,
    pub if_major: u16,
}

/// Validates an image the way the bootloader does. `image` holds the first
/// `min(image_size, available)` bytes at the load address; the host's
/// declared `image_size` bounds what the bootloader reads.
///
/// Order of checks: size, magic, header (version, size, CRC), payload size vs
/// image size, payload CRC, interface major, load address.
pub fn validate(image: &[u8], image_size: u64, p: &BootPolicy) -> Result<Header, FailReason> {
    if image_size > p.max_size || image_size < HEADER_SIZE as u64 || image.len() < HEADER_SIZE {
        return Err(FailReason::BadSize);
    }
    let hb: &[u8; HEADER_SIZE] = image[..HEADER_SIZE].try_into().unwrap();
    let h = Header::parse(hb);
    if h.magic != MAGIC {
        return Err(FailReason::BadMagic);
    }
    if h.header_version != HEADER_VERSION
        || h.header_size as usize != HEADER_SIZE
        || h.header_crc != crc32(&hb[..HEADER_CRC_SPAN])
    {
        return Err(FailReason::BadHeader);
    }
    let total = HEADER_SIZE as u64 + h.payload_size as u64;
    if total != image_size || total > p.max_size || (image.len() as u64) < total {
        return Err(FailReason::BadSize);
    }
    let payload = &image[HEADER_SIZE..total as usize];
    if crc32(payload) != h.payload_crc {
        return Err(FailReason::BadCrc);
    }
    if h.if_major != p.if_major {
        return Err(FailReason::IfMajorUnsupported);
    }
    if h.load_addr != p.load_addr {
        return Err(FailReason::LoadAddress);
    }
    Ok(h)
}

/// Ways `metis-fwimg --break` spoils an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    BadMagic,
    BadHeaderCrc,
    BadPayloadCrc,
    Truncated,
    Oversize,
    BadIfMajor,
    BadLoadAddr,
}

impl std::str::FromStr for Break {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "bad-magic" => Break::BadMagic,
            "bad-header-crc" => Break::BadHeaderCrc,
            "bad-payload-crc" => Break::BadPayloadCrc,
            "truncated" => Break::Truncated,
            "oversize" => Break::Oversize,
            "bad-if-major" => Break::BadIfMajor,
            "bad-load-addr" => Break::BadLoadAddr,
            _ => return Err(format!("unknown --break '{s}'")),
        })
    }
}

impl Break {
    /// The FAIL_REASON a correct bootloader reports for this breakage.
    pub fn expected_reason(self) -> FailReason {
        match self {
            Break::BadMagic => FailReason::BadMagic,
            Break::BadHeaderCrc => FailReason::BadHeader,
            Break::BadPayloadCrc => FailReason::BadCrc,
            Break::Truncated | Break::Oversize => FailReason::BadSize,
            Break::BadIfMajor => FailReason::IfMajorUnsupported,
            Break::BadLoadAddr => FailReason::LoadAddress,
        }
    }
}

/// Parameters for building an image.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub if_major: u16,
    pub if_minor: u16,
    pub fw: (u8, u8, u16),
    pub payload_size: u32,
    pub seed: u64,
    pub load_addr: u64,
    pub brk: Option<Break>,
}

/// Default load address (`fw_load_addr`: DDR base + 16 MiB) and
/// FW_MAX_SIZE (8 MiB) of the model card.
pub const DEFAULT_LOAD_ADDR: u64 = 0x1_0100_0000;
pub const DEFAULT_MAX_SIZE: u64 = 8 << 20;

impl Default for BuildSpec {
    fn default() -> Self {
        BuildSpec {
            if_major: 1,
            if_minor: 0,
            fw: (1, 2, 3),
            payload_size: 256 << 10,
            seed: 1,
            load_addr: DEFAULT_LOAD_ADDR,
            brk: None,
        }
    }
}

/// Deterministic payload bytes (xorshift64*), so images are reproducible.
pub fn payload_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    if x == 0 {
        x = 1;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Builds an image file; `--break` variants keep every other field valid so
/// exactly one check fails.
pub fn build(spec: &BuildSpec) -> Vec<u8> {
    let payload_size = match spec.brk {
        // Header and payload CRC valid, but the whole file exceeds FW_MAX_SIZE.
        Some(Break::Oversize) => (DEFAULT_MAX_SIZE as u32).max(spec.payload_size),
        _ => spec.payload_size,
    };
    let mut payload = payload_bytes(spec.seed, payload_size as usize);
    let mut h = Header {
        magic: MAGIC,
        header_version: HEADER_VERSION,
        header_size: HEADER_SIZE as u16,
        if_major: spec.if_major,
        if_minor: spec.if_minor,
        fw_major: spec.fw.0,
        fw_minor: spec.fw.1,
        fw_patch: spec.fw.2,
        payload_size,
        flags: 0,
        load_addr: spec.load_addr,
        payload_crc: crc32(&payload),
        header_crc: 0,
    };
    match spec.brk {
        Some(Break::BadIfMajor) => h.if_major = spec.if_major.wrapping_add(1).max(2),
        Some(Break::BadLoadAddr) => h.load_addr = spec.load_addr + 0x10_0000,
        _ => {}
    }
    h.header_crc = h.compute_header_crc();
    match spec.brk {
        Some(Break::BadMagic) => {
            h.magic = 0x4D54_4953; // byte-swapped
            h.header_crc = h.compute_header_crc();
        }
        Some(Break::BadHeaderCrc) => h.header_crc ^= 0xdead_beef,
        Some(Break::BadPayloadCrc) => {
            if let Some(b) = payload.first_mut() {
                *b ^= 0xff;
            } else {
                h.payload_crc ^= 1;
                h.header_crc = h.compute_header_crc();
            }
        }
        _ => {}
    }
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    if spec.brk == Some(Break::Truncated) {
        let cut = (payload.len() / 2).max(1).min(payload.len());
        out.truncate(out.len() - cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BootPolicy {
        BootPolicy {
            max_size: DEFAULT_MAX_SIZE,
            load_addr: DEFAULT_LOAD_ADDR,
            if_major: 1,
        }
    }

    #[test]
    fn valid_image_roundtrip() {
        let img = build(&BuildSpec::default());
        let h = validate(&img, img.len() as u64, &policy()).unwrap();
        assert_eq!(h.fw_version_reg(), 1 | 2 << 8 | 3 << 16);
        assert_eq!(h.if_version_reg(), 1 << 16);
        assert_eq!(&img[0..4], b"MTIS");
    }

    #[test]
    fn each_break_gives_its_reason() {
        for b in [
            Break::BadMagic,
            Break::BadHeaderCrc,
            Break::BadPayloadCrc,
            Break::Truncated,
            Break::Oversize,
            Break::BadIfMajor,
            Break::BadLoadAddr,
        ] {
            let img = build(&BuildSpec {
                brk: Some(b),
                ..Default::default()
            });
            let r = validate(&img, img.len() as u64, &policy());
            assert_eq!(r, Err(b.expected_reason()), "{b:?}");
        }
    }

    #[test]
    fn crc_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
