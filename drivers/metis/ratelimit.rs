// SPDX-License-Identifier: GPL-2.0

//! Rate limiting of log messages that callers can trigger at will (a DMA
//! timeout they chose, a dma-buf an exporter refused): a burst per interval
//! gets through, the rest are counted and reported once when the next
//! interval opens, so an unprivileged user can't flood the kernel log.

use kernel::{
    new_spinlock_irq,
    prelude::*,
    sync::SpinLockIrq,
    time::{
        Delta,
        Instant,
        Monotonic, //
    },
};

/// Messages let through per interval.
const BURST: u32 = 5;
/// Length of an interval.
const INTERVAL: Delta = Delta::from_secs(5);

/// The counts of one interval.
struct Window {
    start: Option<Instant<Monotonic>>,
    printed: u32,
    suppressed: u32,
}

/// What the caller may do with its message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Print it.
    Print,
    /// Print it, after a line saying this many were suppressed before it.
    PrintAfterSuppressed(u32),
    /// Drop it.
    Suppress,
}

impl Window {
    fn judge(&mut self, now: Instant<Monotonic>) -> Verdict {
        let fresh = match self.start {
            None => true,
            Some(start) => now - start >= INTERVAL,
        };
        if fresh {
            let suppressed = core::mem::replace(&mut self.suppressed, 0);
            self.start = Some(now);
            self.printed = 1;
            return if suppressed > 0 {
                Verdict::PrintAfterSuppressed(suppressed)
            } else {
                Verdict::Print
            };
        }
        if self.printed < BURST {
            self.printed += 1;
            return Verdict::Print;
        }
        self.suppressed = self.suppressed.saturating_add(1);
        Verdict::Suppress
    }
}

/// A rate limit shared by the messages of one card.
#[pin_data]
pub(crate) struct LogLimit {
    #[pin]
    /// Irq-safe, so that a message may be logged under any of the driver's locks.
    window: SpinLockIrq<Window>,
}

impl LogLimit {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            window <- new_spinlock_irq!(
                Window {
                    start: None,
                    printed: 0,
                    suppressed: 0
                },
                "metis_log_limit"
            ),
        })
    }

    /// Whether to print one more message now.
    pub(crate) fn check(&self) -> Verdict {
        self.window.lock().judge(Instant::<Monotonic>::now())
    }
}

/// Logs through `$limit` (a [`LogLimit`]) with `dev_warn!`, or drops the
/// message when the limit is reached.
macro_rules! dev_warn_limited {
    ($limit:expr, $dev:expr, $($arg:tt)*) => {
        match $limit.check() {
            $crate::ratelimit::Verdict::Print => kernel::dev_warn!($dev, $($arg)*),
            $crate::ratelimit::Verdict::PrintAfterSuppressed(n) => {
                kernel::dev_warn!($dev, "{} similar messages suppressed\n", n);
                kernel::dev_warn!($dev, $($arg)*)
            }
            $crate::ratelimit::Verdict::Suppress => {}
        }
    };
}
pub(crate) use dev_warn_limited;

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_ratelimit)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_counted_and_reported_once() {
        let mut w = Window {
            start: None,
            printed: 0,
            suppressed: 0,
        };
        let t0 = Instant::<Monotonic>::now();
        for _ in 0..BURST {
            assert_eq!(w.judge(t0), Verdict::Print);
        }
        for _ in 0..100 {
            assert_eq!(w.judge(t0), Verdict::Suppress);
        }
        let later = t0 + INTERVAL;
        assert_eq!(w.judge(later), Verdict::PrintAfterSuppressed(100));
        assert_eq!(w.judge(later), Verdict::Print);
    }
}
