//! PCIe link timing model.
//!
//! A transfer takes the time its TLPs need on the wire: payload split into
//! max-payload-size TLPs (256 bytes; read requests of MRRS 512 come back as
//! 256-byte completions too), each carrying a fixed overhead (framing, sequence
//! number, 4DW header, LCRC). Each direction of the link is shared by all
//! channels moving data that way: a reservation pushes the direction's
//! "wire free" time forward, so concurrent channels split the bandwidth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Payload bytes per TLP (MPS 256).
pub const TLP_PAYLOAD: u64 = 256;
/// Per-TLP bytes on the wire besides payload: 4 framing + 2 sequence + 16
/// header + 4 LCRC, rounded to 24 for DLLP (ACK / flow-control) traffic.
pub const TLP_OVERHEAD: u64 = 24;
/// Round trip of a read request before the first completion arrives.
pub const READ_LATENCY: Duration = Duration::from_micros(1);
/// Below this much accumulated debt a worker does not sleep (sleep granularity).
pub const SLEEP_QUANTUM: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSpec {
    Pcie {
        gen: u8,
        width: u8,
    },
    /// No modelled delay (tests, benchmarks of the driver's CPU side).
    Unlimited,
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec::Pcie { gen: 3, width: 4 }
    }
}

impl std::str::FromStr for LinkSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "unlimited" {
            return Ok(LinkSpec::Unlimited);
        }
        let err = || format!("bad link '{s}' (genGxW, e.g. gen3x4, gen2x1; or unlimited)");
        let rest = s.strip_prefix("gen").ok_or_else(err)?;
        let (g, w) = rest.split_once('x').ok_or_else(err)?;
        let gen: u8 = g.parse().map_err(|_| err())?;
        let width: u8 = w.parse().map_err(|_| err())?;
        if !(1..=5).contains(&gen) || ![1, 2, 4, 8, 16].contains(&width) {
            return Err(err());
        }
        Ok(LinkSpec::Pcie { gen, width })
    }
}

impl std::fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkSpec::Pcie { gen, width } => write!(f, "gen{gen}x{width}"),
            LinkSpec::Unlimited => write!(f, "unlimited"),
        }
    }
}

impl LinkSpec {
    /// Raw bytes per second on the wire (after 8b/10b or 128b/130b coding).
    pub fn wire_bytes_per_sec(&self) -> Option<f64> {
        match *self {
            LinkSpec::Unlimited => None,
            LinkSpec::Pcie { gen, width } => {
                let per_lane = match gen {
                    1 => 2.5e9 * 8.0 / 10.0 / 8.0,
                    2 => 5.0e9 * 8.0 / 10.0 / 8.0,
                    3 => 8.0e9 * 128.0 / 130.0 / 8.0,
                    4 => 16.0e9 * 128.0 / 130.0 / 8.0,
                    _ => 32.0e9 * 128.0 / 130.0 / 8.0,
                };
                Some(per_lane * width as f64)
            }
        }
    }

    /// Speed code and width for LnkCap/LnkSta (unlimited shows as Gen3 x4).
    pub fn speed_width(&self) -> (u8, u8) {
        match *self {
            LinkSpec::Pcie { gen, width } => (gen, width),
            LinkSpec::Unlimited => (3, 4),
        }
    }

    /// Time on the wire for `payload` bytes.
    /// Payload a direction can carry per second with full-size TLPs (none: unlimited).
    pub fn payload_bytes_per_sec(&self) -> Option<f64> {
        self.wire_bytes_per_sec()
            .map(|bps| bps * TLP_PAYLOAD as f64 / (TLP_PAYLOAD + TLP_OVERHEAD) as f64)
    }

    pub fn wire_time(&self, payload: u64) -> Duration {
        match self.wire_bytes_per_sec() {
            None => Duration::ZERO,
            Some(bps) => {
                let tlps = payload.div_ceil(TLP_PAYLOAD);
                let bytes = payload + tlps * TLP_OVERHEAD;
                Duration::from_secs_f64(bytes as f64 / bps)
            }
        }
    }
}

/// Which half of the full-duplex link carries the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkDir {
    /// Device to host (memory writes from eDMA write channels).
    Upstream = 0,
    /// Host to device (read completions for eDMA read channels).
    Downstream = 1,
}

/// The link: its current speed (switchable at run time, so a benchmark can
/// measure CPU-side cost and closeness to the wire in one boot) and, per
/// direction, when the wire is next free and how much modelled time it has
/// carried.
pub struct Link {
    inner: Mutex<LinkState>,
    /// Modelled wire time booked per direction, in ns (at the speed in force
    /// when each chunk was booked).
    wire_ns: [AtomicU64; 2],
}

struct LinkState {
    spec: LinkSpec,
    free_at: [Instant; 2],
}

impl Link {
    pub fn new(spec: LinkSpec) -> Link {
        let now = Instant::now();
        Link {
            inner: Mutex::new(LinkState {
                spec,
                free_at: [now, now],
            }),
            wire_ns: Default::default(),
        }
    }

    pub fn spec(&self) -> LinkSpec {
        self.inner.lock().unwrap().spec
    }

    /// Changes the link's speed from now on; bookings already made keep theirs.
    pub fn set_spec(&self, spec: LinkSpec) {
        self.inner.lock().unwrap().spec = spec;
    }

    /// Modelled wire time booked so far, upstream and downstream, in ns.
    pub fn wire_ns(&self) -> [u64; 2] {
        [
            self.wire_ns[0].load(Ordering::Relaxed),
            self.wire_ns[1].load(Ordering::Relaxed),
        ]
    }

    pub fn reset_wire_ns(&self) {
        for w in &self.wire_ns {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Books `payload` bytes on one direction; returns when they have crossed.
    pub fn reserve(&self, dir: LinkDir, payload: u64) -> Instant {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap();
        let t = g.spec.wire_time(payload);
        if t.is_zero() {
            return now;
        }
        let start = g.free_at[dir as usize].max(now);
        let end = start + t;
        g.free_at[dir as usize] = end;
        drop(g);
        // CAST: a chunk's wire time is far below 584 years.
        self.wire_ns[dir as usize].fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
        end
    }
}

/// Per-worker sleeper: accumulates modelled time and sleeps only when the
/// debt is worth a sleep, so thousands of tiny chunks do not each pay the
/// scheduler's sleep granularity.
#[derive(Default)]
pub struct Pacer {
    deadline: Option<Instant>,
}

impl Pacer {
    pub fn account(&mut self, until: Instant) {
        let d = match self.deadline {
            Some(d) if d > until => d,
            _ => until,
        };
        self.deadline = Some(d);
        let now = Instant::now();
        if d > now + SLEEP_QUANTUM {
            std::thread::sleep(d - now);
        }
    }

    pub fn add(&mut self, extra: Duration) {
        let base = self
            .deadline
            .unwrap_or_else(Instant::now)
            .max(Instant::now());
        self.deadline = Some(base + extra);
    }

    /// Sleeps off whatever modelled time is left.
    pub fn finish(&mut self) {
        if let Some(d) = self.deadline.take() {
            let now = Instant::now();
            if d > now {
                std::thread::sleep(d - now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rates() {
        let g3: LinkSpec = "gen3x4".parse().unwrap();
        let bps = g3.wire_bytes_per_sec().unwrap();
        assert!((bps - 3.938e9).abs() < 0.01e9, "{bps}");
        let g2: LinkSpec = "gen2x1".parse().unwrap();
        assert_eq!(g2.wire_bytes_per_sec().unwrap(), 500e6);
        assert!("gen9x4".parse::<LinkSpec>().is_err());
        assert!("gen3x3".parse::<LinkSpec>().is_err());
        // 1 MiB at gen2x1: (1 MiB + 4096 TLPs * 24) / 500 MB/s ~= 2.29 ms
        let t = g2.wire_time(1 << 20);
        assert!(t > Duration::from_micros(2200) && t < Duration::from_micros(2400));
    }

    #[test]
    fn reservations_share_bandwidth() {
        let l = Link::new("gen1x1".parse().unwrap());
        let a = l.reserve(LinkDir::Upstream, 1 << 16);
        let b = l.reserve(LinkDir::Upstream, 1 << 16);
        // second booking starts when the first one ends
        assert!(b >= a + l.spec().wire_time(1 << 16));
        // the other direction is independent
        let c = l.reserve(LinkDir::Downstream, 1 << 16);
        assert!(c < b);
        let w = l.wire_ns();
        assert_eq!(w[0], 2 * l.spec().wire_time(1 << 16).as_nanos() as u64);
        assert_eq!(w[1], w[0] / 2);
    }

    #[test]
    fn a_new_speed_applies_to_later_bookings() {
        let l = Link::new("unlimited".parse().unwrap());
        let now = Instant::now();
        assert!(l.reserve(LinkDir::Upstream, 1 << 20) <= Instant::now());
        assert_eq!(l.wire_ns(), [0, 0]);
        l.set_spec("gen1x1".parse().unwrap());
        let end = l.reserve(LinkDir::Upstream, 1 << 20);
        // 1 MiB at Gen1 x1 (250 MB/s of wire, 280/256 of payload) is about 4.6 ms.
        assert!(end >= now + Duration::from_micros(4500), "{:?}", end - now);
        assert!(l.wire_ns()[0] >= 4_500_000);
        l.reset_wire_ns();
        assert_eq!(l.wire_ns(), [0, 0]);
    }
}
