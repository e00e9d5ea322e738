//! Byte sizes on the command line: `4096`, `0x1000`, `4K`, `4KiB`, `64M`, `1G`
//! (binary units), and size lists for the benchmark: `4K..64M` (doubling) or
//! `4K,1M,3M`.

/// Multiplier of a unit suffix (case-insensitive; `K`, `KB` and `KiB` all mean
/// 1024).
fn unit(suffix: &str) -> Option<u64> {
    let s = suffix.to_ascii_lowercase();
    let s = s
        .strip_suffix("ib")
        .or_else(|| s.strip_suffix('b'))
        .unwrap_or(&s);
    match s {
        "" => Some(1),
        "k" => Some(1 << 10),
        "m" => Some(1 << 20),
        "g" => Some(1 << 30),
        "t" => Some(1 << 40),
        _ => None,
    }
}

/// Parses an unsigned integer, decimal or `0x` hex.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| format!("invalid number '{s}'"))
}

/// Parses a 32-bit value, decimal or `0x` hex.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_u64(s)?;
    u32::try_from(v).map_err(|_| format!("'{s}' does not fit in 32 bits"))
}

/// Parses a byte size such as `4096`, `0x1000`, `4K`, `64MiB`, `1G`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    if t.starts_with("0x") || t.starts_with("0X") {
        return parse_u64(t);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("invalid size '{s}': no number"));
    }
    let n = parse_u64(num).map_err(|_| format!("invalid size '{s}'"))?;
    let m = unit(suffix).ok_or_else(|| format!("invalid size '{s}': unknown unit '{suffix}'"))?;
    n.checked_mul(m)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Parses a non-zero byte size.
pub fn parse_nonzero_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!("size '{s}' must not be zero")),
        n => Ok(n),
    }
}

/// Parses a benchmark size list: `LO..HI` doubles from `LO` up to `HI`
/// (inclusive; `HI` is added if the doubling steps over it), or a comma list.
pub fn parse_size_list(s: &str) -> Result<Vec<u64>, String> {
    if let Some((lo, hi)) = s.split_once("..") {
        let lo = parse_nonzero_size(lo)?;
        let hi = parse_nonzero_size(hi)?;
        if lo > hi {
            return Err(format!("size range '{s}' is empty (start above end)"));
        }
        let mut out = Vec::new();
        let mut v = lo;
        while v < hi {
            out.push(v);
            match v.checked_mul(2) {
                Some(n) => v = n,
                None => break,
            }
        }
        out.push(hi);
        Ok(out)
    } else {
        let out: Vec<u64> = s
            .split(',')
            .map(parse_nonzero_size)
            .collect::<Result<_, _>>()?;
        Ok(out)
    }
}

/// Formats a byte count compactly: `4K`, `64M`, `1G` when exact, else bytes.
pub fn format_size(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (m, u) in UNITS {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{u}", n / m);
        }
    }
    n.to_string()
}

/// Formats a byte count for people: `1.50 GiB`, `4.00 KiB`, `17 B`.
pub fn format_human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes() {
        assert!(parse_size("").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("4X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("-4K").is_err());
        assert!(parse_size("4.5M").is_err());
        assert!(parse_size("99999999999999T")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_nonzero_size("0").is_err());
        assert!(parse_u32("0x100000000").is_err());
        assert_eq!(parse_u32("0xdeadbeef"), Ok(0xdead_beef));
        assert_eq!(parse_u64("0XFF"), Ok(255));
    }

    #[test]
    fn size_lists() {
        let v = parse_size_list("4K..64M").unwrap();
        assert_eq!(v.len(), 15);
        assert_eq!(v[0], 4096);
        assert_eq!(v[1], 8192);
        assert_eq!(*v.last().unwrap(), 64 << 20);
        assert!(v.windows(2).all(|w| w[1] == 2 * w[0]));
        assert_eq!(parse_size_list("4K..4K").unwrap(), vec![4096]);
        assert_eq!(parse_size_list("4K..10K").unwrap(), vec![4096, 8192, 10240]);
        assert_eq!(
            parse_size_list("4K,1M,3M").unwrap(),
            vec![4096, 1 << 20, 3 << 20]
        );
        assert_eq!(parse_size_list("1M").unwrap(), vec![1 << 20]);
        assert!(parse_size_list("64M..4K").is_err());
        assert!(parse_size_list("0..4K").is_err());
        assert!(parse_size_list("4K,,8K").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(4096), "4K");
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(1 << 30), "1G");
        assert_eq!(format_size(10240), "10K");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(0), "0");
        assert_eq!(format_human(17), "17 B");
        assert_eq!(format_human(1536), "1.50 KiB");
        assert_eq!(format_human(1 << 30), "1.00 GiB");
    }
}
