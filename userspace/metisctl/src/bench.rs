//! `metisctl dma bench`: DMA latency and throughput per size and direction,
//! with a round-trip integrity check at each size; with `--dmabuf` the same
//! again through driver-exported dma-bufs (zero copy), next to the pinned
//! user-buffer path.

use crate::cli::{BenchArgs, DirArg};
use crate::data::{fill_pattern, first_mismatch};
use crate::size::format_size;
use crate::stats::{us, Stats};
use crate::table::{format_table, Align};
use crate::Failure;
use metis::{Device, Direction, DmaBuf, Region};
use serde_json::{json, Value};
use std::os::fd::AsFd;
use std::time::Instant;

/// The host buffer a transfer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// Ordinary process memory, pinned by the driver per transfer.
    User,
    /// A dma-buf the driver exported (no pinning, no copy).
    DmaBuf,
}

impl Buffer {
    fn name(self) -> &'static str {
        match self {
            Buffer::User => "user",
            Buffer::DmaBuf => "dmabuf",
        }
    }
}

/// Timings of one size in one direction.
#[derive(Debug, Clone)]
pub struct Row {
    /// Host buffer kind.
    pub buffer: Buffer,
    /// Transfer size, bytes.
    pub size: u64,
    /// Direction.
    pub dir: Direction,
    /// Latency summary.
    pub stats: Stats,
    /// Round-trip check at this size: `None` if skipped.
    pub verified: Option<bool>,
}

impl Row {
    fn dir_name(&self) -> &'static str {
        dir_name(self.dir)
    }
}

/// Short name of a direction: `to` or `from`.
pub fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToDevice => "to",
        Direction::FromDevice => "from",
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Timed transfers per row.
    pub iters: u32,
    /// Length of the device region used.
    pub region_len: u64,
    /// One row per size and direction, in order.
    pub rows: Vec<Row>,
    /// Sizes whose round trip came back wrong, with the first bad offset.
    pub mismatches: Vec<(u64, usize)>,
}

fn directions(d: DirArg) -> &'static [Direction] {
    match d {
        DirArg::To => &[Direction::ToDevice],
        DirArg::From => &[Direction::FromDevice],
        DirArg::Both => &[Direction::ToDevice, Direction::FromDevice],
    }
}

/// Checks the options before touching the device.
pub fn check_args(args: &BenchArgs) -> Result<(), Failure> {
    if let Some(s) = args.sizes.0.iter().find(|s| **s > metis::DMA_MAX_LENGTH) {
        return Err(Failure::Usage(format!(
            "size {} exceeds the largest DMA transfer ({})",
            format_size(*s),
            format_size(metis::DMA_MAX_LENGTH)
        )));
    }
    Ok(())
}

/// Host memory for one kind of buffer: a source and a destination of `len` bytes.
enum Host {
    User { src: Vec<u8>, dst: Vec<u8> },
    DmaBuf { src: DmaBuf, dst: DmaBuf },
}

impl Host {
    fn new(dev: &Device, kind: Buffer, len: usize) -> Result<Self, Failure> {
        Ok(match kind {
            Buffer::User => Host::User {
                src: vec![0u8; len],
                dst: vec![0u8; len],
            },
            Buffer::DmaBuf => Host::DmaBuf {
                src: dev.export_buffer(len as u64)?,
                dst: dev.export_buffer(len as u64)?,
            },
        })
    }

    fn fill(&mut self, n: usize, seed: u64) -> Result<(), Failure> {
        match self {
            Host::User { src, .. } => fill_pattern(&mut src[..n], seed),
            Host::DmaBuf { src, .. } => src.write_with(|b| fill_pattern(&mut b[..n], seed))?,
        }
        Ok(())
    }

    fn transfer(
        &mut self,
        dev: &Device,
        dir: Direction,
        n: usize,
        region: &Region<'_>,
    ) -> Result<(), Failure> {
        match (self, dir) {
            (Host::User { src, .. }, Direction::ToDevice) => {
                dev.dma_to_device(&src[..n], region, 0)?
            }
            (Host::User { dst, .. }, Direction::FromDevice) => {
                dev.dma_from_device(&mut dst[..n], region, 0)?
            }
            (Host::DmaBuf { src, .. }, Direction::ToDevice) => {
                dev.dma_buf(dir, src.as_fd(), 0, n as u64, region, 0)?
            }
            (Host::DmaBuf { dst, .. }, Direction::FromDevice) => {
                dev.dma_buf(dir, dst.as_fd(), 0, n as u64, region, 0)?
            }
        }
        Ok(())
    }

    /// Clears the destination, brings the region back into it and returns the
    /// first byte that differs from the source.
    fn round_trip(
        &mut self,
        dev: &Device,
        n: usize,
        region: &Region<'_>,
    ) -> Result<Option<usize>, Failure> {
        match self {
            Host::User { dst, .. } => dst[..n].fill(0),
            Host::DmaBuf { dst, .. } => dst.write_with(|b| b[..n].fill(0))?,
        }
        self.transfer(dev, Direction::FromDevice, n, region)?;
        Ok(match self {
            Host::User { src, dst } => first_mismatch(&src[..n], &dst[..n]),
            Host::DmaBuf { src, dst } => {
                let want = src.read_with(|b| b[..n].to_vec())?;
                dst.read_with(|b| first_mismatch(&want, &b[..n]))?
            }
        })
    }
}

/// Runs the benchmark.
pub fn run(dev: &Device, args: &BenchArgs) -> Result<Report, Failure> {
    check_args(args)?;
    let max = args.sizes.0.iter().copied().max().unwrap_or(4096);
    let max_usize = usize::try_from(max).map_err(|_| Failure::Usage("size too large".into()))?;
    let region = dev.mem_alloc(max)?;
    let kinds: &[Buffer] = if args.dmabuf {
        &[Buffer::User, Buffer::DmaBuf]
    } else {
        &[Buffer::User]
    };
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for &kind in kinds {
        let mut host = Host::new(dev, kind, max_usize)?;
        for &size in &args.sizes.0 {
            let n = size as usize;
            host.fill(n, size)?;
            // Also loads the region, so the from-device transfers read real data.
            host.transfer(dev, Direction::ToDevice, n, &region)?;
            let verified = if args.no_verify {
                None
            } else {
                let bad = host.round_trip(dev, n, &region)?;
                if let Some(off) = bad {
                    mismatches.push((size, off));
                }
                Some(bad.is_none())
            };
            for &dir in directions(args.dir) {
                let mut samples = Vec::with_capacity(args.iters as usize);
                for _ in 0..args.iters {
                    let t = Instant::now();
                    host.transfer(dev, dir, n, &region)?;
                    samples.push(t.elapsed());
                }
                let stats = Stats::new(&samples)
                    .ok_or_else(|| Failure::Op("no samples (iters is 0)".into()))?;
                rows.push(Row {
                    buffer: kind,
                    size,
                    dir,
                    stats,
                    verified,
                });
            }
        }
    }
    drop(region);
    Ok(Report {
        iters: args.iters,
        region_len: max,
        rows,
        mismatches,
    })
}

fn verify_text(v: Option<bool>) -> &'static str {
    match v {
        None => "skipped",
        Some(true) => "ok",
        Some(false) => "MISMATCH",
    }
}

/// The text table.
pub fn format_text(r: &Report) -> String {
    let headers = [
        ("buffer", Align::Left),
        ("size", Align::Right),
        ("dir", Align::Left),
        ("iters", Align::Right),
        ("MB/s", Align::Right),
        ("min_us", Align::Right),
        ("median_us", Align::Right),
        ("p99_us", Align::Right),
        ("verify", Align::Left),
    ];
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            vec![
                row.buffer.name().to_string(),
                format_size(row.size),
                row.dir_name().to_string(),
                row.stats.count.to_string(),
                format!("{:.1}", row.stats.mb_per_s(row.size)),
                format!("{:.1}", us(row.stats.min)),
                format!("{:.1}", us(row.stats.median)),
                format!("{:.1}", us(row.stats.p99)),
                verify_text(row.verified).to_string(),
            ]
        })
        .collect();
    format_table(&headers, &rows)
}

/// The JSON document (`--json`).
pub fn to_json(device: &str, r: &Report) -> Value {
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            json!({
                "buffer": row.buffer.name(),
                "size": row.size,
                "dir": row.dir_name(),
                "iters": row.stats.count,
                "mb_per_s": row.stats.mb_per_s(row.size),
                "min_us": us(row.stats.min),
                "median_us": us(row.stats.median),
                "p99_us": us(row.stats.p99),
                "max_us": us(row.stats.max),
                "mean_us": us(row.stats.mean),
                "verified": row.verified,
            })
        })
        .collect();
    json!({
        "device": device,
        "iters": r.iters,
        "region_bytes": r.region_len,
        "results": rows,
        "mismatches": r.mismatches.iter().map(|(s, o)| json!({"size": s, "offset": o})).collect::<Vec<_>>(),
        "ok": r.mismatches.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SizeList;
    use std::time::Duration;

    fn report() -> Report {
        let st = |u: u64| Stats::new(&[Duration::from_micros(u)]).unwrap();
        Report {
            iters: 1,
            region_len: 8192,
            rows: vec![
                Row {
                    buffer: Buffer::User,
                    size: 4096,
                    dir: Direction::ToDevice,
                    stats: st(4),
                    verified: Some(true),
                },
                Row {
                    buffer: Buffer::DmaBuf,
                    size: 8192,
                    dir: Direction::FromDevice,
                    stats: st(8),
                    verified: Some(false),
                },
            ],
            mismatches: vec![(8192, 17)],
        }
    }

    #[test]
    fn table() {
        let t = format_text(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "buffer  size  dir   iters    MB/s  min_us  median_us  p99_us  verify"
        );
        assert_eq!(
            lines[2],
            "user      4K  to        1  1024.0     4.0        4.0     4.0  ok"
        );
        assert_eq!(
            lines[3],
            "dmabuf    8K  from      1  1024.0     8.0        8.0     8.0  MISMATCH"
        );
    }

    #[test]
    fn json_document() {
        let j = to_json("/dev/metis0", &report());
        assert_eq!(j["device"], "/dev/metis0");
        assert_eq!(j["ok"], false);
        assert_eq!(j["results"][0]["size"], 4096);
        assert_eq!(j["results"][0]["dir"], "to");
        assert_eq!(j["results"][0]["median_us"], 4.0);
        assert_eq!(j["results"][1]["verified"], false);
        assert_eq!(j["mismatches"][0]["offset"], 17);
        let back: Value = serde_json::from_str(&j.to_string()).unwrap();
        assert_eq!(back, j);
    }

    fn args(sizes: Vec<u64>, dmabuf: bool) -> BenchArgs {
        BenchArgs {
            sizes: SizeList(sizes),
            dir: DirArg::Both,
            iters: 1,
            dmabuf,
            no_verify: false,
        }
    }

    #[test]
    fn argument_checks() {
        assert!(check_args(&args(vec![4096], false)).is_ok());
        assert!(check_args(&args(vec![4096], true)).is_ok());
        let Err(Failure::Usage(m)) = check_args(&args(vec![2 << 30], false)) else {
            panic!("oversize accepted");
        };
        assert!(m.contains("2G"), "{m}");
        assert_eq!(directions(DirArg::Both).len(), 2);
        assert_eq!(dir_name(directions(DirArg::From)[0]), "from");
    }
}
