//! The driver's debugfs files (root only): per-channel DMA statistics and the
//! trace ring of recent transfers, at `<sys>/kernel/debug/metis/<BDF>/`.
//!
//! * `stats`: one line per channel, `wr ch0 jobs=N bytes=N errors=N
//!   timeouts=N interrupted=N aborted=N lost_irqs=N max_us=N mean_us=N`, the
//!   `wr` (device-to-host) channels first, then `rd` (host-to-device).
//! * `trace`: the last 128 transfers, oldest first, `seq=N start_us=N
//!   dir=wr|rd ch=N len=N elements=N duration_us=N result=R`. Writing
//!   anything to it empties it; `seq` then starts again at 1.
//!
//! A file the driver cannot fill holds `unavailable: <reason>`.

use crate::sysfs::{read_text, FileError, ParseError};
use crate::Direction;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Entries the driver's trace ring keeps.
pub const TRACE_LEN: usize = 128;

/// The debugfs mount point under the sysfs root `sys_root`.
pub fn root(sys_root: &Path) -> PathBuf {
    sys_root.join("kernel/debug")
}

/// The driver's debugfs directory of the card at `bdf`.
pub fn card_dir(sys_root: &Path, bdf: &str) -> PathBuf {
    root(sys_root).join("metis").join(bdf)
}

/// `wr` (device to host) or `rd` (host to device), as the engine names its
/// channels.
pub fn engine_name(d: Direction) -> &'static str {
    match d {
        Direction::FromDevice => "wr",
        Direction::ToDevice => "rd",
    }
}

fn direction(line: usize, s: &str) -> Result<Direction, ParseError> {
    match s {
        "wr" => Ok(Direction::FromDevice),
        "rd" => Ok(Direction::ToDevice),
        _ => Err(ParseError::new(
            line,
            format!("direction '{s}', expected wr or rd"),
        )),
    }
}

/// Totals of one DMA channel since probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStats {
    /// The engine's direction: `wr` is [`Direction::FromDevice`].
    pub dir: Direction,
    /// Channel number within the direction.
    pub channel: u32,
    /// Transfers run.
    pub jobs: u64,
    /// Bytes moved by the transfers that completed.
    pub bytes: u64,
    /// Transfers the engine aborted.
    pub errors: u64,
    /// Transfers that did not complete in time.
    pub timeouts: u64,
    /// Transfers a signal ended.
    pub interrupted: u64,
    /// Transfers a reset, suspend or unbind stopped.
    pub aborted: u64,
    /// Completed transfers whose interrupt never came.
    pub lost_irqs: u64,
    /// Longest transfer, µs.
    pub max_us: u64,
    /// Mean transfer, µs.
    pub mean_us: u64,
}

/// One transfer of the trace ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Numbers the transfers from 1 since probe or the last clear.
    pub seq: u64,
    /// Start on the monotonic clock, µs (as `dmesg` stamps).
    pub start_us: u64,
    /// Direction: `wr` is [`Direction::FromDevice`].
    pub dir: Direction,
    /// Channel.
    pub ch: u32,
    /// Bytes.
    pub len: u64,
    /// Scatter-gather elements.
    pub elements: u32,
    /// Duration, µs.
    pub duration_us: u64,
    /// How it ended: `ok`, `ok-lost-irq`, `timeout`, `error`, `interrupted`,
    /// `aborted` (kept verbatim, so a result a newer driver adds still shows).
    pub result: String,
}

impl TraceEntry {
    /// True if the transfer completed (`ok` or `ok-lost-irq`).
    pub fn completed(&self) -> bool {
        matches!(self.result.as_str(), "ok" | "ok-lost-irq")
    }
}

/// The `key=value` fields of a line, in order.
fn fields(line: usize, tokens: &[&str]) -> Result<Vec<(String, String)>, ParseError> {
    tokens
        .iter()
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ParseError::new(line, format!("'{t}' is not key=value")))
        })
        .collect()
}

fn field<'a>(line: usize, f: &'a [(String, String)], key: &str) -> Result<&'a str, ParseError> {
    f.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ParseError::new(line, format!("no {key}=")))
}

fn number<T: std::str::FromStr>(
    line: usize,
    f: &[(String, String)],
    key: &str,
) -> Result<T, ParseError> {
    let v = field(line, f, key)?;
    v.parse()
        .map_err(|_| ParseError::new(line, format!("{key}={v} is not a decimal number")))
}

/// The lines of a debugfs file that carry data; `unavailable: <reason>` is an error.
fn data_lines(text: &str) -> impl Iterator<Item = Result<(usize, &str), ParseError>> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, l)| match l.strip_prefix("unavailable:") {
            Some(why) => Err(ParseError {
                unavailable: true,
                ..ParseError::new(
                    n,
                    format!("the driver says the card cannot be read: {}", why.trim()),
                )
            }),
            None => Ok((n, l)),
        })
}

/// Parses one line of `stats`.
pub fn parse_stats_line(line: usize, l: &str) -> Result<ChannelStats, ParseError> {
    let tokens: Vec<&str> = l.split_whitespace().collect();
    let [dir, ch, rest @ ..] = tokens.as_slice() else {
        return Err(ParseError::new(
            line,
            format!("'{l}': expected '<wr|rd> ch<N> key=value...'"),
        ));
    };
    let dir = direction(line, dir)?;
    let channel = ch
        .strip_prefix("ch")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ParseError::new(line, format!("'{ch}' is not a channel (ch<N>)")))?;
    let f = fields(line, rest)?;
    Ok(ChannelStats {
        dir,
        channel,
        jobs: number(line, &f, "jobs")?,
        bytes: number(line, &f, "bytes")?,
        errors: number(line, &f, "errors")?,
        timeouts: number(line, &f, "timeouts")?,
        interrupted: number(line, &f, "interrupted")?,
        aborted: number(line, &f, "aborted")?,
        lost_irqs: number(line, &f, "lost_irqs")?,
        max_us: number(line, &f, "max_us")?,
        mean_us: number(line, &f, "mean_us")?,
    })
}

/// Parses the whole `stats` file. Fields a newer driver adds are ignored.
pub fn parse_stats(text: &str) -> Result<Vec<ChannelStats>, ParseError> {
    data_lines(text)
        .map(|r| r.and_then(|(n, l)| parse_stats_line(n, l)))
        .collect()
}

/// Parses one line of `trace`.
pub fn parse_trace_line(line: usize, l: &str) -> Result<TraceEntry, ParseError> {
    let tokens: Vec<&str> = l.split_whitespace().collect();
    let f = fields(line, &tokens)?;
    let result = field(line, &f, "result")?;
    if result.is_empty() {
        return Err(ParseError::new(line, "result= is empty"));
    }
    Ok(TraceEntry {
        seq: number(line, &f, "seq")?,
        start_us: number(line, &f, "start_us")?,
        dir: direction(line, field(line, &f, "dir")?)?,
        ch: number(line, &f, "ch")?,
        len: number(line, &f, "len")?,
        elements: number(line, &f, "elements")?,
        duration_us: number(line, &f, "duration_us")?,
        result: result.to_string(),
    })
}

/// Parses the whole `trace` file, oldest entry first.
pub fn parse_trace(text: &str) -> Result<Vec<TraceEntry>, ParseError> {
    data_lines(text)
        .map(|r| r.and_then(|(n, l)| parse_trace_line(n, l)))
        .collect()
}

/// Reads and parses `<dir>/stats`, `dir` being a card's [`card_dir`].
pub fn read_stats(dir: &Path) -> Result<Vec<ChannelStats>, FileError> {
    let path = dir.join("stats");
    parse_stats(&read_text(&path)?).map_err(|error| FileError::Parse { path, error })
}

/// Reads and parses `<dir>/trace`, `dir` being a card's [`card_dir`].
pub fn read_trace(dir: &Path) -> Result<Vec<TraceEntry>, FileError> {
    let path = dir.join("trace");
    parse_trace(&read_text(&path)?).map_err(|error| FileError::Parse { path, error })
}

/// Empties the trace ring of the card whose [`card_dir`] is `dir`.
pub fn clear_trace(dir: &Path) -> Result<(), FileError> {
    let path = dir.join("trace");
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"1\n"))
        .map_err(|e| FileError::io("write", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::tests::TempTree;

    const STATS: &str = "\
wr ch0 jobs=10 bytes=40960 errors=1 timeouts=2 interrupted=3 aborted=4 lost_irqs=5 max_us=120 mean_us=40
wr ch1 jobs=0 bytes=0 errors=0 timeouts=0 interrupted=0 aborted=0 lost_irqs=0 max_us=0 mean_us=0
rd ch0 jobs=7 bytes=18446744073709551615 errors=0 timeouts=0 interrupted=0 aborted=0 lost_irqs=0 max_us=9 mean_us=8
";

    #[test]
    fn stats_lines() {
        let s = parse_stats(STATS).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            ChannelStats {
                dir: Direction::FromDevice,
                channel: 0,
                jobs: 10,
                bytes: 40960,
                errors: 1,
                timeouts: 2,
                interrupted: 3,
                aborted: 4,
                lost_irqs: 5,
                max_us: 120,
                mean_us: 40,
            }
        );
        assert_eq!((s[1].dir, s[1].channel), (Direction::FromDevice, 1));
        assert_eq!((s[2].dir, s[2].channel), (Direction::ToDevice, 0));
        assert_eq!(s[2].bytes, u64::MAX);
        assert_eq!(engine_name(s[2].dir), "rd");
        assert_eq!(parse_stats("").unwrap(), vec![]);
        // A field a newer driver adds does not break the reader.
        let l = "rd ch3 jobs=1 bytes=2 errors=0 timeouts=0 interrupted=0 aborted=0 \
                 lost_irqs=0 max_us=1 mean_us=1 retries=7";
        assert_eq!(parse_stats_line(1, l).unwrap().channel, 3);
    }

    #[test]
    fn malformed_stats_say_where() {
        let e = |t: &str| parse_stats(t).unwrap_err().to_string();
        let good = STATS.lines().next().unwrap();
        assert_eq!(
            e(&format!("{good}\nxx ch0 jobs=1\n")),
            "line 2: direction 'xx', expected wr or rd"
        );
        assert_eq!(
            e(&good.replace("ch0", "channel0")),
            "line 1: 'channel0' is not a channel (ch<N>)"
        );
        assert_eq!(
            e(&good.replace("jobs=10", "jobs=ten")),
            "line 1: jobs=ten is not a decimal number"
        );
        assert_eq!(e(&good.replace(" mean_us=40", "")), "line 1: no mean_us=");
        assert_eq!(
            e(&good.replace("errors=1", "errors")),
            "line 1: 'errors' is not key=value"
        );
        assert_eq!(
            e("wr"),
            "line 1: 'wr': expected '<wr|rd> ch<N> key=value...'"
        );
        assert_eq!(
            e("unavailable: the card is unbound\n"),
            "line 1: the driver says the card cannot be read: the card is unbound"
        );
    }

    const TRACE: &str = "\
seq=1 start_us=1000 dir=rd ch=0 len=65536 elements=1 duration_us=12 result=ok
seq=2 start_us=1020 dir=wr ch=1 len=4096 elements=3 duration_us=5000 result=ok-lost-irq
seq=3 start_us=9000 dir=wr ch=0 len=4096 elements=1 duration_us=100000 result=timeout
";

    #[test]
    fn trace_lines() {
        let t = parse_trace(TRACE).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[1],
            TraceEntry {
                seq: 2,
                start_us: 1020,
                dir: Direction::FromDevice,
                ch: 1,
                len: 4096,
                elements: 3,
                duration_us: 5000,
                result: "ok-lost-irq".into(),
            }
        );
        assert_eq!(t[0].dir, Direction::ToDevice);
        assert!(t[0].completed() && t[1].completed() && !t[2].completed());
        assert_eq!(t[2].result, "timeout");
        assert_eq!(parse_trace("\n").unwrap(), vec![]);
    }

    #[test]
    fn malformed_trace_says_where() {
        let e = |t: &str| parse_trace(t).unwrap_err().to_string();
        let good = TRACE.lines().next().unwrap();
        assert_eq!(
            e(&format!("{good}\n{}", good.replace("dir=rd", "dir=-"))),
            "line 2: direction '-', expected wr or rd"
        );
        assert_eq!(
            e(&good.replace("seq=1", "seq=-1")),
            "line 1: seq=-1 is not a decimal number"
        );
        assert_eq!(e(&good.replace(" result=ok", "")), "line 1: no result=");
        assert_eq!(
            e(&good.replace("result=ok", "result=")),
            "line 1: result= is empty"
        );
        assert_eq!(e("garbage"), "line 1: 'garbage' is not key=value");
        assert_eq!(
            e("unavailable: out of memory"),
            "line 1: the driver says the card cannot be read: out of memory"
        );
    }

    #[test]
    fn files_of_a_card() {
        let t = TempTree::new("debugfs");
        let dir = card_dir(&t.0, "0000:01:00.0");
        assert_eq!(dir, t.0.join("kernel/debug/metis/0000:01:00.0"));
        let e = read_stats(&dir).unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert!(
            clear_trace(&dir).is_err(),
            "clearing must not create the file"
        );
        assert!(!dir.join("trace").exists());

        t.write("kernel/debug/metis/0000:01:00.0/stats", STATS);
        t.write("kernel/debug/metis/0000:01:00.0/trace", TRACE);
        assert_eq!(read_stats(&dir).unwrap().len(), 3);
        assert_eq!(read_trace(&dir).unwrap().len(), 3);
        clear_trace(&dir).unwrap();
        assert_eq!(fs::read_to_string(dir.join("trace")).unwrap(), "1\n");

        t.write("kernel/debug/metis/0000:01:00.0/stats", "wr ch0 jobs=x\n");
        let e = read_stats(&dir).unwrap_err().to_string();
        assert!(
            e.contains("0000:01:00.0/stats: line 1: jobs=x is not a decimal number; not what"),
            "{e}"
        );
        t.write(
            "kernel/debug/metis/0000:01:00.0/trace",
            "unavailable: out of memory\n",
        );
        let e = read_trace(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with("/trace: line 1: the driver says the card cannot be read: out of memory"),
            "{e}"
        );
    }
}
