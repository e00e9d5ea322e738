//! One walker thread per channel, kept between runs.
//!
//! A doorbell on an idle channel hands its epoch to the channel's worker
//! instead of starting a thread, so a job's latency holds no thread start.
//! A worker idle for `IDLE_EXIT` ends (a card whose channels rest costs no
//! threads), and the next doorbell starts it again. Runs of one channel are
//! serial: a run superseded by a stop or reset sees its epoch change and
//! returns at its next check, before the next run begins.

use super::Dir;
use crate::device::Shared;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a worker waits for its next doorbell before ending.
pub const IDLE_EXIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct SlotState {
    /// The epoch of the run asked for and not yet picked up.
    job: Option<u64>,
    /// A worker thread exists for the channel.
    alive: bool,
    /// Threads started for the channel so far.
    started: u64,
}

#[derive(Default)]
struct Slot {
    m: Mutex<SlotState>,
    cv: Condvar,
}

pub struct Workers {
    slots: Vec<Slot>,
}

fn idx(d: Dir, ch: usize) -> usize {
    d as usize * 8 + ch
}

impl Workers {
    pub fn new() -> Workers {
        Workers {
            slots: (0..16).map(|_| Slot::default()).collect(),
        }
    }

    /// Asks channel `ch` of `d` for a run at epoch `ep`; a request not yet
    /// picked up is replaced (it was stale: only a cancel moves the epoch).
    pub fn kick(&self, sh: &Arc<Shared>, d: Dir, ch: usize, ep: u64) {
        let slot = &self.slots[idx(d, ch)];
        let mut g = slot.m.lock().unwrap();
        g.job = Some(ep);
        if g.alive {
            slot.cv.notify_one();
            return;
        }
        g.alive = true;
        g.started += 1;
        drop(g);
        let weak = Arc::downgrade(sh);
        std::thread::Builder::new()
            .name(format!("edma-{}{ch}", d.name()))
            .spawn(move || worker(weak, d, ch))
            .expect("spawn eDMA worker");
    }

    /// Threads started for a channel so far (a busy channel keeps one).
    pub fn started(&self, d: Dir, ch: usize) -> u64 {
        self.slots[idx(d, ch)].m.lock().unwrap().started
    }
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for the next run of the channel; `None` once idle too long.
fn next(sh: &Shared, d: Dir, ch: usize) -> Option<u64> {
    let slot = &sh.workers.slots[idx(d, ch)];
    let mut g = slot.m.lock().unwrap();
    loop {
        if let Some(ep) = g.job.take() {
            return Some(ep);
        }
        let (g2, to) = slot.cv.wait_timeout(g, IDLE_EXIT).unwrap();
        g = g2;
        if to.timed_out() && g.job.is_none() {
            g.alive = false;
            return None;
        }
    }
}

fn worker(weak: Weak<Shared>, d: Dir, ch: usize) {
    // The pacer's sleeps model wire time of tens of microseconds; the
    // default 50 us timer slack would add its own latency to each.
    // SAFETY: PR_SET_TIMERSLACK takes a value and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0);
    }
    loop {
        let Some(sh) = weak.upgrade() else { return };
        let Some(ep) = next(&sh, d, ch) else { return };
        let t = Instant::now();
        super::engine::run(sh.clone(), d, ch, ep);
        // CAST: a run is far shorter than 584 years.
        let ns = t.elapsed().as_nanos() as u64;
        sh.obs.with(|c| c.chan(d, ch).busy_ns += ns);
    }
}
