//! Deterministic test data and host-side checks.

/// Fills `buf` with pseudo-random bytes (xorshift64*) derived from `seed`.
pub fn fill_pattern(buf: &mut [u8], seed: u64) {
    // splitmix64 of the seed, so that nearby seeds give unrelated data and
    // seed 0 is fine.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let mut x = (z ^ (z >> 31)) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// A new buffer of `len` pseudo-random bytes from `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_pattern(&mut v, seed);
    v
}

/// Index of the first byte where `a` and `b` differ (or the shorter length
/// if one is a prefix of the other).
pub fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
        return Some(i);
    }
    (a.len() != b.len()).then(|| a.len().min(b.len()))
}

/// The bytes a FILL of `len` bytes with `pattern` leaves.
pub fn fill_expected(len: usize, pattern: u32) -> Vec<u8> {
    let p = pattern.to_le_bytes();
    (0..len).map(|i| p[i % 4]).collect()
}

/// The output a RUN of `op`/`arg` makes from `input`.
pub fn run_expected(op: metis::RunOp, arg: u32, input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .enumerate()
        .map(|(i, b)| op.apply(arg, i as u64, *b))
        .collect()
}

/// CRC-32 (IEEE 802.3, as zlib) of `data`: what CHECKSUM and RUN return.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_seeded() {
        assert_eq!(pattern(100, 7), pattern(100, 7));
        assert_ne!(pattern(100, 7), pattern(100, 8));
        assert_eq!(pattern(13, 0)[..], pattern(16, 0)[..13]);
        // Not trivially constant.
        let p = pattern(4096, 1);
        assert!(p.iter().any(|b| *b != p[0]));
    }

    #[test]
    fn mismatches() {
        assert_eq!(first_mismatch(b"abc", b"abc"), None);
        assert_eq!(first_mismatch(b"abc", b"abd"), Some(2));
        assert_eq!(first_mismatch(b"ab", b"abc"), Some(2));
    }

    #[test]
    fn reference_results() {
        assert_eq!(fill_expected(6, 0x0403_0201), vec![1, 2, 3, 4, 1, 2]);
        assert_eq!(
            run_expected(metis::RunOp::AddIndex, 254, &[0, 0, 0, 0]),
            vec![254, 255, 0, 1]
        );
        assert_eq!(run_expected(metis::RunOp::Not, 0, &[0x0f]), vec![0xf0]);
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
