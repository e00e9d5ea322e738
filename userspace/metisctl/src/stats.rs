//! Latency statistics of the benchmark.

use std::time::Duration;

/// Summary of a set of latency samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of samples.
    pub count: usize,
    /// Smallest sample.
    pub min: Duration,
    /// Median (mean of the two middle samples for an even count).
    pub median: Duration,
    /// 99th percentile, nearest-rank method.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

/// Nearest-rank percentile of sorted samples: the smallest sample such that
/// at least `p` percent of the samples are at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Stats {
    /// Computes the summary; `None` for no samples.
    pub fn new(samples: &[Duration]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2
        };
        let total: Duration = s.iter().sum();
        Some(Stats {
            count: n,
            min: s[0],
            median,
            p99: percentile(&s, 99.0)?,
            max: s[n - 1],
            mean: total / n as u32,
        })
    }

    /// Throughput in MB/s (10^6 bytes per second) for `bytes` moved in the
    /// median time.
    pub fn mb_per_s(&self, bytes: u64) -> f64 {
        let secs = self.median.as_secs_f64();
        if secs == 0.0 {
            f64::INFINITY
        } else {
            bytes as f64 / secs / 1e6
        }
    }
}

/// Microseconds as a float, for tables and JSON.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|u| Duration::from_micros(*u)).collect()
    }

    #[test]
    fn odd_count() {
        let s = Stats::new(&us_list(&[5, 1, 3])).unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.median, Duration::from_micros(3));
        assert_eq!(s.max, Duration::from_micros(5));
        assert_eq!(s.p99, Duration::from_micros(5));
        assert_eq!(s.mean, Duration::from_micros(3));
    }

    #[test]
    fn even_count_median_is_midpoint() {
        let s = Stats::new(&us_list(&[4, 1, 2, 10])).unwrap();
        assert_eq!(s.median, Duration::from_micros(3));
    }

    #[test]
    fn p99_nearest_rank() {
        // 1..=100: p99 is the 99th value.
        let v: Vec<u64> = (1..=100).rev().collect();
        let s = Stats::new(&us_list(&v)).unwrap();
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(
            s.median,
            Duration::from_micros(50) + Duration::from_nanos(500)
        );
        // 1..=200: rank ceil(198) = 198.
        let v: Vec<u64> = (1..=200).collect();
        assert_eq!(
            Stats::new(&us_list(&v)).unwrap().p99,
            Duration::from_micros(198)
        );
        // Few samples: p99 is the maximum.
        let s = Stats::new(&us_list(&[7, 9, 8])).unwrap();
        assert_eq!(s.p99, Duration::from_micros(9));
        let one = Stats::new(&us_list(&[42])).unwrap();
        assert_eq!((one.min, one.median, one.p99), (one.max, one.max, one.max));
    }

    #[test]
    fn percentile_edges() {
        let v = us_list(&[1, 2, 3, 4]);
        assert_eq!(percentile(&v, 0.0), Some(Duration::from_micros(1)));
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_micros(2)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_micros(4)));
        assert_eq!(percentile(&v, 101.0), None);
        assert_eq!(percentile(&[], 50.0), None);
        assert!(Stats::new(&[]).is_none());
    }

    #[test]
    fn throughput() {
        let s = Stats::new(&[Duration::from_millis(1)]).unwrap();
        assert!((s.mb_per_s(1_000_000) - 1000.0).abs() < 1e-9);
        let z = Stats::new(&[Duration::ZERO]).unwrap();
        assert!(z.mb_per_s(1).is_infinite());
        assert!((us(Duration::from_nanos(1500)) - 1.5).abs() < 1e-12);
    }
}
