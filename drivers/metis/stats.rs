// SPDX-License-Identifier: GPL-2.0

//! What the DMA engine did: per-channel statistics and a bounded ring of the
//! most recent transfers, for debugfs.
//!
//! Recording happens once per transfer, in the task that ran it, under a
//! spinlock held for a few stores; readers copy a snapshot out under the same
//! lock and format it afterwards, so neither ever waits on the other for long.

use core::fmt;

use kernel::{
    new_spinlock,
    prelude::*,
    sync::SpinLock,
    time::Delta, //
};

use crate::edma::Dir;

/// Channels per direction the statistics have room for (the card has 4).
pub(crate) const MAX_CHANNELS: usize = 8;
/// Transfers the trace ring remembers.
pub(crate) const TRACE_LEN: usize = 128;

/// How a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Completed, its interrupt arrived (or the driver polls).
    Ok,
    /// Completed, found in the status registers at the end of the wait: its interrupt was lost.
    LostIrq,
    /// No completion within the timeout; the channel was stopped.
    Timeout,
    /// The engine reported an abort (a bus or descriptor error).
    Error,
    /// A signal ended the wait; the channel was stopped.
    Interrupted,
    /// A reset, suspend or unbind stopped the card under the transfer.
    Aborted,
}

impl Outcome {
    pub(crate) fn of(res: &Result<bool>) -> Self {
        match res {
            Ok(false) => Self::Ok,
            Ok(true) => Self::LostIrq,
            Err(e) if *e == ETIMEDOUT => Self::Timeout,
            Err(e) if *e == EIO => Self::Error,
            Err(e) if *e == ERESTARTSYS => Self::Interrupted,
            Err(_) => Self::Aborted,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::LostIrq => "ok-lost-irq",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Interrupted => "interrupted",
            Self::Aborted => "aborted",
        }
    }
}

/// One transfer, as the trace ring keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TraceEntry {
    /// Numbers transfers since probe (or since the last clear), from 1.
    pub(crate) seq: u64,
    /// Start, in ns of the monotonic clock (as `dmesg` stamps, without suspend time).
    pub(crate) start_ns: u64,
    pub(crate) dir: Option<Dir>,
    pub(crate) ch: u8,
    pub(crate) len: u64,
    pub(crate) elements: u32,
    pub(crate) duration_ns: u64,
    pub(crate) outcome: Option<Outcome>,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq={} start_us={} dir={} ch={} len={} elements={} duration_us={} result={}",
            self.seq,
            self.start_ns / 1000,
            self.dir.map_or("-", Dir::name),
            self.ch,
            self.len,
            self.elements,
            self.duration_ns / 1000,
            self.outcome.map_or("-", Outcome::name)
        )
    }
}

/// Totals of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChannelStats {
    pub(crate) jobs: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) interrupted: u64,
    pub(crate) aborted: u64,
    pub(crate) lost_irqs: u64,
    pub(crate) total_ns: u64,
    pub(crate) max_ns: u64,
}

impl ChannelStats {
    fn add(&mut self, len: u64, duration_ns: u64, outcome: Outcome) {
        self.jobs = self.jobs.wrapping_add(1);
        match outcome {
            Outcome::Ok => self.bytes = self.bytes.wrapping_add(len),
            Outcome::LostIrq => {
                self.bytes = self.bytes.wrapping_add(len);
                self.lost_irqs = self.lost_irqs.wrapping_add(1);
            }
            Outcome::Timeout => self.timeouts = self.timeouts.wrapping_add(1),
            Outcome::Error => self.errors = self.errors.wrapping_add(1),
            Outcome::Interrupted => self.interrupted = self.interrupted.wrapping_add(1),
            Outcome::Aborted => self.aborted = self.aborted.wrapping_add(1),
        }
        self.total_ns = self.total_ns.wrapping_add(duration_ns);
        self.max_ns = self.max_ns.max(duration_ns);
    }

    /// Mean duration of a transfer, in ns (0 before the first).
    pub(crate) fn mean_ns(&self) -> u64 {
        self.total_ns.checked_div(self.jobs).unwrap_or(0)
    }
}

/// The statistics and the trace ring.
///
/// # Invariants
///
/// `ring.len() <= TRACE_LEN`; the entry of sequence number `s` (if still kept)
/// is at `(s - 1) % TRACE_LEN`, and `next_seq - 1` is the newest.
struct Book {
    ch: [[ChannelStats; MAX_CHANNELS]; 2],
    ring: KVec<TraceEntry>,
    next_seq: u64,
}

impl Book {
    fn record(&mut self, mut e: TraceEntry) {
        let (Some(dir), Some(outcome)) = (e.dir, e.outcome) else {
            return;
        };
        if let Some(c) = self.ch[dir as usize].get_mut(usize::from(e.ch)) {
            c.add(e.len, e.duration_ns, outcome);
        }
        e.seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // CAST: `TRACE_LEN` fits in a u64, and the remainder in a usize.
        let at = (e.seq.wrapping_sub(1) % TRACE_LEN as u64) as usize;
        if let Some(slot) = self.ring.get_mut(at) {
            *slot = e;
        } else {
            // The ring is still filling up: `at == ring.len()`, and the capacity was reserved
            // at creation, so this does not allocate (and can't fail) under the lock.
            let _ = self.ring.push_within_capacity(e);
        }
    }
}

/// Per-card statistics and trace.
#[pin_data]
pub(crate) struct DmaStats {
    #[pin]
    book: SpinLock<Book>,
}

impl DmaStats {
    pub(crate) fn new() -> Result<impl PinInit<Self>> {
        let ring = KVec::with_capacity(TRACE_LEN, GFP_KERNEL)?;
        Ok(pin_init!(Self {
            book <- new_spinlock!(
                Book {
                    ch: [[ChannelStats::default(); MAX_CHANNELS]; 2],
                    ring,
                    next_seq: 1,
                },
                "metis_stats"
            ),
        }))
    }

    /// Counts one transfer and puts it in the trace ring.
    pub(crate) fn record(&self, e: TraceEntry) {
        self.book.lock().record(e);
    }

    /// The totals of every channel of `dir`.
    pub(crate) fn channels(&self, dir: Dir) -> [ChannelStats; MAX_CHANNELS] {
        self.book.lock().ch[dir as usize]
    }

    /// The kept transfers, oldest first (allocated before the lock is taken).
    pub(crate) fn trace(&self) -> Result<KVec<TraceEntry>> {
        let mut out = KVec::with_capacity(TRACE_LEN, GFP_KERNEL)?;
        let book = self.book.lock();
        let n = book.ring.len();
        // CAST: `TRACE_LEN` fits in a u64, the remainder in a usize.
        let oldest = if n < TRACE_LEN {
            0
        } else {
            (book.next_seq.wrapping_sub(1) % TRACE_LEN as u64) as usize
        };
        for i in 0..n {
            if let Some(e) = book.ring.get((oldest + i) % n.max(1)) {
                // Within the capacity reserved above: `n <= TRACE_LEN`.
                let _ = out.push_within_capacity(*e);
            }
        }
        Ok(out)
    }

    /// Empties the trace ring; sequence numbers start again at 1. The totals stay.
    pub(crate) fn clear_trace(&self) {
        let mut book = self.book.lock();
        book.ring.clear();
        book.next_seq = 1;
    }
}

/// A duration as ns, for the statistics (a negative one, which the monotonic clock can't
/// produce, counts as 0).
pub(crate) fn nanos(d: Delta) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(0)
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_stats)]
mod tests {
    use super::*;

    fn entry(dir: Dir, ch: u8, len: u64, ns: u64, outcome: Outcome) -> TraceEntry {
        TraceEntry {
            dir: Some(dir),
            ch,
            len,
            elements: 1,
            duration_ns: ns,
            outcome: Some(outcome),
            ..Default::default()
        }
    }

    #[test]
    fn totals_per_channel_and_outcome() -> Result {
        let s = KBox::pin_init(DmaStats::new()?, GFP_KERNEL)?;
        s.record(entry(Dir::Rd, 1, 100, 10, Outcome::Ok));
        s.record(entry(Dir::Rd, 1, 50, 30, Outcome::LostIrq));
        s.record(entry(Dir::Rd, 1, 70, 20, Outcome::Timeout));
        s.record(entry(Dir::Wr, 0, 8, 5, Outcome::Error));
        let rd = s.channels(Dir::Rd)[1];
        assert_eq!(rd.jobs, 3);
        assert_eq!(rd.bytes, 150);
        assert_eq!(rd.lost_irqs, 1);
        assert_eq!(rd.timeouts, 1);
        assert_eq!(rd.errors, 0);
        assert_eq!(rd.max_ns, 30);
        assert_eq!(rd.mean_ns(), 20);
        let wr = s.channels(Dir::Wr)[0];
        assert_eq!((wr.jobs, wr.bytes, wr.errors), (1, 0, 1));
        assert_eq!(s.channels(Dir::Wr)[1], ChannelStats::default());
        Ok(())
    }

    #[test]
    fn ring_keeps_the_newest_in_order() -> Result {
        let s = KBox::pin_init(DmaStats::new()?, GFP_KERNEL)?;
        // CAST: small test numbers.
        let total = TRACE_LEN as u64 + 5;
        for i in 0..total {
            s.record(entry(Dir::Wr, 0, i, 1, Outcome::Ok));
        }
        let t = s.trace()?;
        assert_eq!(t.len(), TRACE_LEN);
        assert_eq!(t.first().map(|e| e.seq), Some(6));
        assert_eq!(t.last().map(|e| e.seq), Some(total));
        assert!(t.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(t.last().map(|e| e.len), Some(total - 1));
        // An oversized channel number is traced, not counted.
        s.record(entry(Dir::Wr, 200, 1, 1, Outcome::Ok));
        assert_eq!(s.channels(Dir::Wr)[0].jobs, total);
        Ok(())
    }

    #[test]
    fn clear_empties_the_ring_only() -> Result {
        let s = KBox::pin_init(DmaStats::new()?, GFP_KERNEL)?;
        for _ in 0..3 {
            s.record(entry(Dir::Rd, 0, 4, 1, Outcome::Ok));
        }
        s.clear_trace();
        assert_eq!(s.trace()?.len(), 0);
        s.record(entry(Dir::Rd, 0, 4, 1, Outcome::Ok));
        let t = s.trace()?;
        assert_eq!(t.len(), 1);
        assert_eq!(t.first().map(|e| e.seq), Some(1));
        assert_eq!(s.channels(Dir::Rd)[0].jobs, 4);
        Ok(())
    }

    #[test]
    fn outcome_of_each_error() {
        assert_eq!(Outcome::of(&Ok(false)), Outcome::Ok);
        assert_eq!(Outcome::of(&Ok(true)), Outcome::LostIrq);
        assert_eq!(Outcome::of(&Err(ETIMEDOUT)), Outcome::Timeout);
        assert_eq!(Outcome::of(&Err(EIO)), Outcome::Error);
        assert_eq!(Outcome::of(&Err(ERESTARTSYS)), Outcome::Interrupted);
        assert_eq!(Outcome::of(&Err(ENODEV)), Outcome::Aborted);
    }
}
