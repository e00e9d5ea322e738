//! `metisctl dma bench`: DMA latency and throughput per size and direction,
//! with a round-trip integrity check at each size; with `--dmabuf` the same
//! again through driver-exported dma-bufs (zero copy), next to the pinned
//! user-buffer path.
//!
//! Each row runs `--warmup` untimed submissions, then `--iters` timed ones:
//! synchronous at queue depth 1, else asynchronous with `--qd` submissions in
//! flight per direction (both directions at once with `--dir bidir`). A
//! submission is one job, or with `--batch K` a batch of K jobs of one
//! direction (`METIS_IOCTL_DMA_BATCH`: one list, one doorbell, one interrupt).
//! A row gives the latency of each submission (submission to reaping), the
//! throughput of the whole timed run, and the card's interrupts per job.

use crate::cli::{AlignArg, BenchArgs, BufferArg, DirArg};
use crate::data::{fill_pattern, first_mismatch};
use crate::hostmem::HostMem;
use crate::size::format_size;
use crate::stats::{us, Stats};
use crate::table::{format_table, Align};
use crate::Failure;
use metis::{BatchEntry, Device, Direction, DmaBuf, Region};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The host buffer a transfer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// Ordinary process memory, pinned by the driver per transfer.
    User,
    /// A dma-buf the driver exported (no pinning, no copy).
    DmaBuf,
    /// Process memory registered with the driver for the run (pinned and mapped once).
    Registered,
}

impl Buffer {
    fn name(self) -> &'static str {
        match self {
            Buffer::User => "user",
            Buffer::DmaBuf => "dmabuf",
            Buffer::Registered => "registered",
        }
    }
}

/// Timings of one size in one direction (or both at once).
#[derive(Debug, Clone)]
pub struct Row {
    /// Host buffer kind.
    pub buffer: Buffer,
    /// Transfer size, bytes.
    pub size: u64,
    /// Direction; `None`: both at once.
    pub dir: Option<Direction>,
    /// Submissions in flight per direction.
    pub qd: u32,
    /// Jobs per submission.
    pub batch: u32,
    /// Latency summary (submission to reaping), one sample per submission.
    pub stats: Stats,
    /// Wall time of the whole timed run.
    pub total: Duration,
    /// The card's interrupts during the timed run, if they can be counted.
    pub irqs: Option<u64>,
    /// Round-trip check at this size: `None` if skipped.
    pub verified: Option<bool>,
}

impl Row {
    fn dir_name(&self) -> &'static str {
        self.dir.map(dir_name).unwrap_or("bidir")
    }

    /// Jobs of the timed run.
    pub fn jobs(&self) -> u64 {
        self.stats.count as u64 * u64::from(self.batch)
    }

    /// Bytes of the whole timed run per second, in MB/s (10^6 B/s).
    pub fn throughput(&self) -> f64 {
        let secs = self.total.as_secs_f64();
        let bytes = self.size as f64 * self.jobs() as f64;
        if secs == 0.0 {
            f64::INFINITY
        } else {
            bytes / secs / 1e6
        }
    }

    /// Interrupts per job.
    pub fn irqs_per_job(&self) -> Option<f64> {
        self.irqs.map(|n| n as f64 / self.jobs().max(1) as f64)
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
    /// Timed submissions per row (per direction).
    pub iters: u32,
    /// Jobs per submission.
    pub batch: u32,
    /// Untimed transfers before each row.
    pub warmup: u32,
    /// Where user buffers start.
    pub align: AlignArg,
    /// Length of the device region used.
    pub region_len: u64,
    /// One row per size and direction, in order.
    pub rows: Vec<Row>,
    /// Sizes whose round trip came back wrong, with the first bad offset.
    pub mismatches: Vec<(u64, usize)>,
}

/// The rows of one size: one direction each, or `None` for both at once.
fn directions(d: DirArg) -> &'static [Option<Direction>] {
    match d {
        DirArg::To => &[Some(Direction::ToDevice)],
        DirArg::From => &[Some(Direction::FromDevice)],
        DirArg::Both => &[Some(Direction::ToDevice), Some(Direction::FromDevice)],
        DirArg::Bidir => &[None],
    }
}

pub fn align_name(a: AlignArg) -> &'static str {
    match a {
        AlignArg::Page => "page",
        AlignArg::Odd => "odd",
    }
}

/// Offset of a user buffer from its page.
const ODD_OFFSET: usize = 16;
/// Largest host buffer (each way) a batched run allocates: a job's bytes times the batch.
const BATCH_HOST_MAX: u64 = 1 << 30;

/// The buffers `args` asks to time, in order.
fn kinds(args: &BenchArgs) -> &'static [Buffer] {
    match (args.buffer, args.dmabuf) {
        (Some(BufferArg::Both), _) | (None, true) => &[Buffer::User, Buffer::DmaBuf],
        (Some(BufferArg::Dmabuf), _) => &[Buffer::DmaBuf],
        (Some(BufferArg::Registered), _) => &[Buffer::Registered],
        (Some(BufferArg::User), _) | (None, false) => &[Buffer::User],
    }
}

/// Checks the options before touching the device.
pub fn check_args(args: &BenchArgs) -> Result<(), Failure> {
    if kinds(args).contains(&Buffer::DmaBuf) && (args.qd > 1 || args.dir == DirArg::Bidir) {
        return Err(Failure::Usage(
            "--qd above 1 and --dir bidir time user or registered buffers only; leave out \
             --dmabuf, or use --buffer user|registered"
                .into(),
        ));
    }
    if args.batch > 1 && kinds(args).contains(&Buffer::DmaBuf) {
        return Err(Failure::Usage(
            "--batch batches user or registered buffers only; use --buffer user|registered".into(),
        ));
    }
    let max = args.sizes.0.iter().copied().max().unwrap_or(0);
    if max.saturating_mul(u64::from(args.batch)) > BATCH_HOST_MAX {
        return Err(Failure::Usage(format!(
            "--batch {} of {} jobs needs {} of host buffer each way; keep it within {}",
            args.batch,
            format_size(max),
            format_size(max.saturating_mul(u64::from(args.batch))),
            format_size(BATCH_HOST_MAX)
        )));
    }
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
    /// `off` bytes into each mapping (`--align`); `registered`: both registered with the
    /// driver (the source for transfers to the card, the destination for transfers back).
    User {
        src: HostMem,
        dst: HostMem,
        off: usize,
        registered: bool,
    },
    DmaBuf {
        src: DmaBuf,
        dst: DmaBuf,
    },
}

impl Host {
    fn new(dev: &Device, kind: Buffer, len: usize, align: AlignArg) -> Result<Self, Failure> {
        let off = match align {
            AlignArg::Page => 0,
            AlignArg::Odd => ODD_OFFSET,
        };
        Ok(match kind {
            Buffer::User | Buffer::Registered => {
                let (src, dst) = (HostMem::new(len + off)?, HostMem::new(len + off)?);
                if kind == Buffer::Registered {
                    // Registered for the file's lifetime: closing it unregisters them.
                    dev.register_buffer(
                        src.as_slice()[off..].as_ptr(),
                        len,
                        &[Direction::ToDevice],
                    )?;
                    dev.register_buffer(
                        dst.as_slice()[off..].as_ptr(),
                        len,
                        &[Direction::FromDevice],
                    )?;
                }
                Host::User {
                    src,
                    dst,
                    off,
                    registered: kind == Buffer::Registered,
                }
            }
            Buffer::DmaBuf => Host::DmaBuf {
                src: dev.export_buffer(len as u64)?,
                dst: dev.export_buffer(len as u64)?,
            },
        })
    }

    fn fill(&mut self, n: usize, seed: u64) -> Result<(), Failure> {
        match self {
            Host::User { src, off, .. } => fill_pattern(&mut src.as_mut_slice()[*off..][..n], seed),
            Host::DmaBuf { src, .. } => src.write_with(|b| fill_pattern(&mut b[..n], seed))?,
        }
        Ok(())
    }

    /// `batch` jobs of `n` bytes of `dir`, each on its own `n` bytes of the
    /// direction's buffer, all at the region's start, as one
    /// `METIS_IOCTL_DMA_BATCH`; waited for, or with `asynchronous` returned as
    /// a job id.
    ///
    /// # Safety
    ///
    /// With `asynchronous`, the job must be reaped before `self` is dropped.
    unsafe fn batch(
        &mut self,
        dev: &Device,
        dir: Direction,
        n: usize,
        batch: u32,
        region: &Region<'_>,
        asynchronous: bool,
    ) -> Result<Option<metis::JobId>, Failure> {
        let Host::User {
            src,
            dst,
            off,
            registered,
        } = self
        else {
            return Err(Failure::Usage("batches time user buffers only".into()));
        };
        let addr = match dir {
            Direction::ToDevice => src.as_slice()[*off..].as_ptr(),
            Direction::FromDevice => dst.as_mut_slice()[*off..].as_mut_ptr().cast_const(),
        };
        // Each job its own host bytes (one mapping per page and job, as separate
        // buffers would be), all to the region's start.
        let entries: Vec<BatchEntry<'_>> = (0..batch as usize)
            .map(|i| BatchEntry {
                dir,
                addr: addr.wrapping_add(i * n),
                len: n,
                region,
                offset: 0,
                registered: *registered,
            })
            .collect();
        // SAFETY: `src` and `dst` live in `self`; a synchronous batch is done when the
        // call returns, an asynchronous one is reaped before `self` goes (the caller's
        // contract).
        Ok(unsafe { dev.dma_batch_raw(&entries, asynchronous)? })
    }

    fn transfer(
        &mut self,
        dev: &Device,
        dir: Direction,
        n: usize,
        region: &Region<'_>,
    ) -> Result<(), Failure> {
        match (self, dir) {
            (
                Host::User {
                    src,
                    off,
                    registered: true,
                    ..
                },
                Direction::ToDevice,
            ) => dev.dma_registered(dir, src.as_slice()[*off..].as_ptr(), n, region, 0)?,
            (
                Host::User {
                    dst,
                    off,
                    registered: true,
                    ..
                },
                Direction::FromDevice,
            ) => dev.dma_registered(dir, dst.as_slice()[*off..].as_ptr(), n, region, 0)?,
            (Host::User { src, off, .. }, Direction::ToDevice) => {
                dev.dma_to_device(&src.as_slice()[*off..][..n], region, 0)?
            }
            (Host::User { dst, off, .. }, Direction::FromDevice) => {
                dev.dma_from_device(&mut dst.as_mut_slice()[*off..][..n], region, 0)?
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
            Host::User { dst, off, .. } => dst.as_mut_slice()[*off..][..n].fill(0),
            Host::DmaBuf { dst, .. } => dst.write_with(|b| b[..n].fill(0))?,
        }
        self.transfer(dev, Direction::FromDevice, n, region)?;
        Ok(match self {
            Host::User { src, dst, off, .. } => {
                first_mismatch(&src.as_slice()[*off..][..n], &dst.as_slice()[*off..][..n])
            }
            Host::DmaBuf { src, dst } => {
                let want = src.read_with(|b| b[..n].to_vec())?;
                dst.read_with(|b| first_mismatch(&want, &b[..n]))?
            }
        })
    }

    /// Runs `count` submissions of `batch` jobs of `n` bytes with `qd` in
    /// flight per direction (`dir` `None`: the two directions alternate) and
    /// returns each submission's latency. Jobs of a direction share its buffer
    /// (a batch's jobs each their own part of it) and the region's start: what
    /// they carry is not checked here (the round trip is).
    #[allow(clippy::too_many_arguments)]
    fn run_async(
        &mut self,
        dev: &Device,
        dir: Option<Direction>,
        n: usize,
        qd: u32,
        batch: u32,
        count: u32,
        region: &Region<'_>,
    ) -> Result<Vec<Duration>, Failure> {
        if batch > 1 {
            return pipeline(dev, dir, qd, count, |d| {
                // SAFETY: `pipeline` reaps every batch submitted before it returns, also on
                // errors, and `self` outlives it.
                match unsafe { self.batch(dev, d, n, batch, region, true) }? {
                    Some(id) => Ok(id),
                    None => Err(Failure::Op(
                        "an async batch came back without a job id".into(),
                    )),
                }
            });
        }
        let Host::User {
            src,
            dst,
            off,
            registered,
        } = self
        else {
            return Err(Failure::Usage(
                "asynchronous jobs time user buffers only".into(),
            ));
        };
        let (to, from) = (
            src.as_slice()[*off..].as_ptr(),
            dst.as_mut_slice()[*off..].as_mut_ptr(),
        );
        let registered = *registered;
        pipeline(dev, dir, qd, count, |d| {
            let p = match d {
                Direction::ToDevice => to,
                Direction::FromDevice => from.cast_const(),
            };
            // SAFETY: `src` and `dst` outlive every job: `pipeline` reaps each submitted
            // job before it returns, also on errors.
            let id = unsafe {
                if registered {
                    dev.dma_registered_async(d, p, n, region, 0)
                } else {
                    dev.dma_async_raw(d, p, n, region, 0)
                }
            }?;
            Ok(id)
        })
    }
}

/// Keeps `qd` submissions per direction in flight (`dir` `None`: the two
/// directions alternate) until `count` per direction have been reaped, and
/// returns each one's latency, submission to reaping. After a failed
/// submission no more are made, and those in flight are still reaped.
fn pipeline(
    dev: &Device,
    dir: Option<Direction>,
    qd: u32,
    count: u32,
    mut submit: impl FnMut(Direction) -> Result<metis::JobId, Failure>,
) -> Result<Vec<Duration>, Failure> {
    let dirs: &[Direction] = match dir {
        Some(Direction::ToDevice) => &[Direction::ToDevice],
        Some(Direction::FromDevice) => &[Direction::FromDevice],
        None => &[Direction::ToDevice, Direction::FromDevice],
    };
    let total = count as usize * dirs.len();
    let limit = qd as usize * dirs.len();
    let mut flight: VecDeque<(metis::JobId, Instant)> = VecDeque::with_capacity(limit);
    let mut lat = Vec::with_capacity(total);
    let mut submitted = 0usize;
    let mut res = Ok(());
    while lat.len() < total {
        while res.is_ok() && submitted < total && flight.len() < limit {
            match submit(dirs[submitted % dirs.len()]) {
                Ok(id) => flight.push_back((id, Instant::now())),
                Err(e) => res = Err(e),
            }
            submitted += 1;
        }
        let Some((id, t)) = flight.pop_front() else {
            break;
        };
        let r = dev.wait(id, None);
        lat.push(t.elapsed());
        if res.is_ok() {
            res = r.map_err(Failure::from);
        }
    }
    res?;
    Ok(lat)
}

/// The PCI device of the card behind `device` (`/dev/metisN`), as `status` finds it.
fn pci_dir(device: &Path) -> Option<std::path::PathBuf> {
    let device = device.to_string_lossy();
    metis::sysfs::cards(&crate::cards::sysfs_root())
        .ok()?
        .into_iter()
        .find(|c| crate::cards::names(c, &device))
        .map(|c| c.dir)
}

/// Runs the benchmark.
pub fn run(dev: &Device, args: &BenchArgs) -> Result<Report, Failure> {
    check_args(args)?;
    let max = args.sizes.0.iter().copied().max().unwrap_or(4096);
    let max_usize = usize::try_from(max).map_err(|_| Failure::Usage("size too large".into()))?;
    let region = dev.mem_alloc(max)?;
    let pci = pci_dir(dev.path());
    let irqs_now = || pci.as_deref().and_then(crate::irqcount::taken);
    let kinds = kinds(args);
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for &kind in kinds {
        // A batch's jobs each have their own host bytes.
        let mut host = Host::new(dev, kind, max_usize * args.batch as usize, args.align)?;
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
                let sync = dir.filter(|_| args.qd == 1);
                let timed = |host: &mut Host, count: u32| -> Result<Vec<Duration>, Failure> {
                    match sync {
                        Some(d) => (0..count)
                            .map(|_| {
                                let t = Instant::now();
                                if args.batch > 1 {
                                    // SAFETY: synchronous: done when the call returns.
                                    unsafe { host.batch(dev, d, n, args.batch, &region, false) }
                                        .map(drop)?;
                                } else {
                                    host.transfer(dev, d, n, &region)?;
                                }
                                Ok(t.elapsed())
                            })
                            .collect(),
                        None => host.run_async(dev, dir, n, args.qd, args.batch, count, &region),
                    }
                };
                timed(&mut host, args.warmup)?;
                let irqs0 = irqs_now();
                let t = Instant::now();
                let samples = timed(&mut host, args.iters)?;
                let total = t.elapsed();
                let irqs = irqs0.zip(irqs_now()).map(|(a, b)| b.saturating_sub(a));
                let stats = Stats::new(&samples)
                    .ok_or_else(|| Failure::Op("no samples (iters is 0)".into()))?;
                rows.push(Row {
                    buffer: kind,
                    size,
                    dir,
                    qd: args.qd,
                    batch: args.batch,
                    stats,
                    total,
                    irqs,
                    verified,
                });
            }
        }
    }
    drop(region);
    Ok(Report {
        iters: args.iters,
        batch: args.batch,
        warmup: args.warmup,
        align: args.align,
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
        ("qd", Align::Right),
        ("batch", Align::Right),
        ("jobs", Align::Right),
        ("MB/s", Align::Right),
        ("min_us", Align::Right),
        ("median_us", Align::Right),
        ("p99_us", Align::Right),
        ("irqs/job", Align::Right),
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
                row.qd.to_string(),
                row.batch.to_string(),
                row.jobs().to_string(),
                format!("{:.1}", row.throughput()),
                format!("{:.1}", us(row.stats.min)),
                format!("{:.1}", us(row.stats.median)),
                format!("{:.1}", us(row.stats.p99)),
                row.irqs_per_job()
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "-".into()),
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
                "qd": row.qd,
                "batch": row.batch,
                "iters": row.stats.count,
                "jobs": row.jobs(),
                "total_us": us(row.total),
                "mb_per_s": row.throughput(),
                "median_mb_per_s": row.stats.mb_per_s(row.size * u64::from(row.batch)),
                "irqs": row.irqs,
                "irqs_per_job": row.irqs_per_job(),
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
        "batch": r.batch,
        "warmup": r.warmup,
        "align": align_name(r.align),
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
            batch: 1,
            warmup: 0,
            align: AlignArg::Page,
            region_len: 8192,
            rows: vec![
                Row {
                    buffer: Buffer::User,
                    size: 4096,
                    dir: Some(Direction::ToDevice),
                    qd: 1,
                    batch: 1,
                    stats: st(4),
                    total: Duration::from_micros(4),
                    irqs: Some(1),
                    verified: Some(true),
                },
                Row {
                    buffer: Buffer::DmaBuf,
                    size: 8192,
                    dir: None,
                    qd: 4,
                    batch: 1,
                    stats: st(8),
                    total: Duration::from_micros(16),
                    irqs: None,
                    verified: Some(false),
                },
                Row {
                    buffer: Buffer::Registered,
                    size: 4096,
                    dir: Some(Direction::FromDevice),
                    qd: 2,
                    batch: 8,
                    stats: st(8),
                    total: Duration::from_micros(8),
                    irqs: Some(1),
                    verified: None,
                },
            ],
            mismatches: vec![(8192, 17)],
        }
    }

    #[test]
    fn table() {
        let t = format_text(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[0],
            "buffer      size  dir    qd  batch  jobs    MB/s  min_us  median_us  p99_us  irqs/job  verify"
        );
        assert_eq!(
            lines[2],
            "user          4K  to      1      1     1  1024.0     4.0        4.0     4.0      1.00  ok"
        );
        // Throughput is the run's bytes over its wall time, not the median's.
        assert_eq!(
            lines[3],
            "dmabuf        8K  bidir   4      1     1   512.0     8.0        8.0     8.0         -  MISMATCH"
        );
        // A batch of 8: its one sample stands for 8 jobs, and so does its interrupt.
        assert_eq!(
            lines[4],
            "registered    4K  from    2      8     8  4096.0     8.0        8.0     8.0      0.12  skipped"
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
        assert_eq!(j["results"][0]["irqs_per_job"], 1.0);
        assert_eq!(j["results"][1]["verified"], false);
        assert_eq!(j["results"][1]["dir"], "bidir");
        assert_eq!(j["results"][1]["qd"], 4);
        assert_eq!(j["results"][1]["mb_per_s"], 512.0);
        assert_eq!(j["results"][1]["irqs"], Value::Null);
        assert_eq!(j["results"][2]["batch"], 8);
        assert_eq!(j["results"][2]["iters"], 1);
        assert_eq!(j["results"][2]["jobs"], 8);
        assert_eq!(j["results"][2]["irqs_per_job"], 0.125);
        // A sample is a batch: its bytes are the batch's.
        assert_eq!(j["results"][2]["median_mb_per_s"], 4096.0);
        assert_eq!(j["align"], "page");
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
            buffer: None,
            no_verify: false,
            qd: 1,
            align: AlignArg::Page,
            batch: 1,
            warmup: 0,
            out: None,
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
        assert_eq!(directions(DirArg::From), &[Some(Direction::FromDevice)]);
        assert_eq!(directions(DirArg::Bidir), &[None]);
        let mut a = args(vec![4096], true);
        a.qd = 4;
        assert!(matches!(check_args(&a), Err(Failure::Usage(_))));
        a.qd = 1;
        a.dir = DirArg::Bidir;
        assert!(matches!(check_args(&a), Err(Failure::Usage(_))));
        a.dmabuf = false;
        assert!(check_args(&a).is_ok());
        a.buffer = Some(BufferArg::Dmabuf);
        assert!(matches!(check_args(&a), Err(Failure::Usage(_))));
        a.dir = DirArg::To;
        assert!(check_args(&a).is_ok());
        assert_eq!(kinds(&a), &[Buffer::DmaBuf]);
        a.buffer = Some(BufferArg::Both);
        assert_eq!(kinds(&a), &[Buffer::User, Buffer::DmaBuf]);
        a.buffer = Some(BufferArg::Registered);
        a.qd = 4;
        a.dir = DirArg::Bidir;
        assert!(check_args(&a).is_ok());
        assert_eq!(kinds(&a), &[Buffer::Registered]);
        a.batch = 16;
        assert!(check_args(&a).is_ok());
        (a.qd, a.dir) = (1, DirArg::To);
        a.buffer = Some(BufferArg::Both);
        let Err(Failure::Usage(m)) = check_args(&a) else {
            panic!("a batch of dma-bufs accepted");
        };
        assert!(m.contains("--batch"), "{m}");
        // A batch's jobs each need their own host bytes: 64 of 64 MiB is too much.
        a.buffer = Some(BufferArg::Registered);
        a.sizes = SizeList(vec![64 << 20]);
        a.batch = 64;
        let Err(Failure::Usage(m)) = check_args(&a) else {
            panic!("4 GiB of host buffer accepted");
        };
        assert!(m.contains("4G"), "{m}");
        a.batch = 16;
        assert!(check_args(&a).is_ok());
    }
}
