//! Latency samples and the figures the report takes from them (mean and nearest-rank percentiles).
//!
//! Every sample is kept: a row has at most a few hundred thousand operations, so sorting them once
//! is cheap and the percentiles are exact rather than bucketed.

use std::time::Duration;

/// Latencies of the operations of one row, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    nanos: Vec<u64>,
}

/// What the report prints about a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds the samples of `other` (another task's share of the same row).
    pub fn merge(&mut self, mut other: Latencies) {
        self.nanos.append(&mut other.nanos);
    }

    /// Number of samples recorded.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Sorts the samples and summarises them; all zero when there are none.
    pub fn summary(mut self) -> Summary {
        if self.nanos.is_empty() {
            return Summary::default();
        }
        self.nanos.sort_unstable();
        let total: u128 = self.nanos.iter().map(|&n| u128::from(n)).sum();
        let count = self.nanos.len();
        let mean = u64::try_from(total / count as u128).unwrap_or(u64::MAX);
        Summary {
            count,
            mean: Duration::from_nanos(mean),
            p50: Duration::from_nanos(nearest_rank(&self.nanos, 50.0)),
            p99: Duration::from_nanos(nearest_rank(&self.nanos, 99.0)),
            max: Duration::from_nanos(self.nanos[count - 1]),
        }
    }
}

/// The smallest sample such that at least `percent` % of the samples are at or below it.
fn nearest_rank(sorted: &[u64], percent: f64) -> u64 {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.mean, Duration::from_micros(50_500));
    }

    #[test]
    fn merge_and_empty() {
        assert_eq!(Latencies::default().summary(), Summary::default());
        let mut a = Latencies::default();
        a.record(Duration::from_millis(3));
        let mut b = Latencies::default();
        b.record(Duration::from_millis(1));
        a.merge(b);
        assert_eq!(a.len(), 2);
        let s = a.summary();
        assert_eq!(s.p50, Duration::from_millis(1));
        assert_eq!(s.p99, Duration::from_millis(3));
    }
}
