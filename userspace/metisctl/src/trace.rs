//! `metisctl trace`: the driver's ring of recent DMA transfers of one card
//! (debugfs, root only), once or followed, and clearing it.
//!
//! `--follow` reads the ring every 200 ms and prints the entries whose
//! sequence number is above the last one printed. The numbers restart at 1
//! when someone clears the ring: a newest number below the last printed (or
//! the last printed entry replaced by another) means that, and printing
//! starts over with what the ring holds now.

use crate::cards::{self, label};
use crate::Failure;
use metis::debugfs::{self, engine_name, TraceEntry};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How often `--follow` reads the ring.
pub const POLL: Duration = Duration::from_millis(200);

/// The column headings of the text output.
pub fn header() -> String {
    format!(
        "{:>8}  {:>14}  {:<3}  {:>2}  {:>10}  {:>8}  {:>11}  {}",
        "seq", "start_us", "dir", "ch", "len", "elements", "duration_us", "result"
    )
}

/// One entry in fixed-width columns (so followed output stays aligned).
pub fn row(e: &TraceEntry) -> String {
    format!(
        "{:>8}  {:>14}  {:<3}  {:>2}  {:>10}  {:>8}  {:>11}  {}",
        e.seq,
        e.start_us,
        engine_name(e.dir),
        e.ch,
        e.len,
        e.elements,
        e.duration_us,
        e.result
    )
}

/// One entry as a JSON object (one line of `--json` output).
pub fn to_json(e: &TraceEntry) -> Value {
    json!({
        "seq": e.seq,
        "start_us": e.start_us,
        "dir": engine_name(e.dir),
        "ch": e.ch,
        "len": e.len,
        "elements": e.elements,
        "duration_us": e.duration_us,
        "result": e.result,
    })
}

/// What one read of the ring adds to what was printed before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Index in the ring of the first entry not printed yet.
    pub first_new: usize,
    /// The ring was cleared since the last read.
    pub cleared: bool,
    /// Transfers that left the ring before they could be printed.
    pub missed: u64,
}

/// Remembers the last entry printed, to find the new ones in the next read.
#[derive(Debug, Default)]
pub struct Follower {
    /// Sequence number and start of the newest entry printed.
    last: Option<(u64, u64)>,
}

impl Follower {
    /// Compares a read of the ring (oldest first) with what was printed;
    /// `ring[first_new..]` are the entries to print next.
    pub fn update(&mut self, ring: &[TraceEntry]) -> Update {
        let mut u = Update::default();
        if let Some((seq, start)) = self.last {
            let newest = ring.last().map_or(0, |e| e.seq);
            u.cleared = match ring.iter().find(|e| e.seq == seq) {
                // Still there: cleared only if another transfer took its number.
                Some(e) => e.start_us != start,
                None => newest < seq,
            };
            let from = if u.cleared { 0 } else { seq };
            u.first_new = ring.iter().position(|e| e.seq > from).unwrap_or(ring.len());
            u.missed = ring
                .get(u.first_new)
                .map_or(0, |e| e.seq.saturating_sub(from + 1));
        }
        if let Some(e) = ring.last() {
            self.last = Some((e.seq, e.start_us));
        } else if u.cleared {
            self.last = None;
        }
        u
    }
}

/// Writes entries as text rows or JSON lines; `false` once stdout is gone
/// (e.g. the reader of a pipe quit), which ends the command quietly.
fn emit(out: &mut impl Write, entries: &[TraceEntry], json: bool) -> bool {
    entries
        .iter()
        .try_for_each(|e| {
            if json {
                writeln!(out, "{}", to_json(e))
            } else {
                writeln!(out, "{}", row(e))
            }
        })
        .and_then(|()| out.flush())
        .is_ok()
}

/// `metisctl trace [--card C] [--follow | --clear]`.
pub fn run(
    sys_root: &Path,
    card: Option<&str>,
    json: bool,
    follow: bool,
    clear: bool,
) -> Result<(), Failure> {
    let all = cards::select(sys_root, card)?;
    let Some(c) = all.first() else {
        return Err(Failure::Op("no metis card is bound".into()));
    };
    if card.is_none() && all.len() > 1 {
        eprintln!(
            "metisctl: the trace of {}, the first of {} cards; --card picks another",
            label(c),
            all.len()
        );
    }
    let dir = debugfs::card_dir(sys_root, &c.bdf);
    let failure = |e| cards::debugfs_failure(e, sys_root, "trace");
    if clear {
        debugfs::clear_trace(&dir).map_err(failure)?;
        if json {
            println!("{}", json!({ "bdf": c.bdf, "cleared": true }));
        } else {
            println!("{}: trace cleared", label(c));
        }
        return Ok(());
    }

    let ring = debugfs::read_trace(&dir).map_err(failure)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !json {
        let first = if ring.is_empty() && !follow {
            format!("{}: no transfer since probe or the last clear", label(c))
        } else {
            header()
        };
        if writeln!(out, "{first}").is_err() || (ring.is_empty() && !follow) {
            return Ok(());
        }
    }
    let mut follower = Follower::default();
    follower.update(&ring);
    if !emit(&mut out, &ring, json) || !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(POLL);
        let ring = debugfs::read_trace(&dir).map_err(failure)?;
        let u = follower.update(&ring);
        if u.cleared {
            eprintln!("metisctl: the trace was cleared; starting over");
        }
        if u.missed > 0 {
            eprintln!(
                "metisctl: {} transfer(s) not shown: they left the {}-entry ring between two reads",
                u.missed,
                debugfs::TRACE_LEN
            );
        }
        if !emit(&mut out, &ring[u.first_new..], json) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metis::Direction;

    fn e(seq: u64, start_us: u64) -> TraceEntry {
        TraceEntry {
            seq,
            start_us,
            dir: Direction::ToDevice,
            ch: 1,
            len: 65536,
            elements: 2,
            duration_us: 31,
            result: "ok".into(),
        }
    }

    fn ring(seqs: std::ops::RangeInclusive<u64>) -> Vec<TraceEntry> {
        seqs.map(|s| e(s, 1000 + s)).collect()
    }

    #[test]
    fn columns_and_json() {
        assert_eq!(
            header(),
            "     seq        start_us  dir  ch         len  elements  duration_us  result"
        );
        assert_eq!(
            row(&e(7, 123456)),
            "       7          123456  rd    1       65536         2           31  ok"
        );
        assert_eq!(
            to_json(&e(7, 123456)).to_string(),
            r#"{"ch":1,"dir":"rd","duration_us":31,"elements":2,"len":65536,"result":"ok","seq":7,"start_us":123456}"#
        );
    }

    #[test]
    fn follow_prints_only_new_entries() {
        let mut f = Follower::default();
        // The first read prints everything.
        assert_eq!(f.update(&ring(1..=3)), Update::default());
        // Nothing new.
        let u = f.update(&ring(1..=3));
        assert_eq!((u.first_new, u.cleared, u.missed), (3, false, 0));
        // Two new ones.
        let r = ring(1..=5);
        let u = f.update(&r);
        assert_eq!((u.first_new, u.cleared, u.missed), (3, false, 0));
        assert_eq!(r[u.first_new].seq, 4);
        // The ring wrapped: 6..=133 are kept, 6 onwards are new, none missed.
        let r = ring(6..=133);
        let u = f.update(&r);
        assert_eq!((u.first_new, u.cleared, u.missed), (0, false, 0));
        // Wrapped further than one ring between reads: 134..=140 were lost.
        let r = ring(141..=268);
        let u = f.update(&r);
        assert_eq!((u.first_new, u.cleared, u.missed), (0, false, 7));
    }

    #[test]
    fn follow_starts_over_after_a_clear() {
        let mut f = Follower::default();
        f.update(&ring(1..=10));
        // Cleared, then two transfers: numbers went backwards.
        let u = f.update(&ring(1..=2));
        assert_eq!((u.first_new, u.cleared, u.missed), (0, true, 0));
        let u = f.update(&ring(1..=3));
        assert_eq!((u.first_new, u.cleared), (2, false));
        // Cleared and nothing since: nothing to print, and the next entry
        // (seq 1 again) is new.
        let u = f.update(&[]);
        assert_eq!((u.first_new, u.cleared), (0, true));
        let u = f.update(&ring(1..=1));
        assert_eq!((u.first_new, u.cleared), (0, false));
        // Cleared and refilled past the same number: seq 2 now has another start.
        let mut f = Follower::default();
        f.update(&ring(1..=2));
        let later: Vec<TraceEntry> = (1..=4).map(|s| e(s, 9000 + s)).collect();
        let u = f.update(&later);
        assert_eq!((u.first_new, u.cleared), (0, true));
        // An empty ring at the start stays empty: nothing cleared.
        let mut f = Follower::default();
        assert_eq!(f.update(&[]), Update::default());
        assert_eq!(f.update(&ring(1..=2)), Update::default());
    }
}
