//! Latency statistics of one load phase: throughput and nearest-rank percentiles.

use std::time::Duration;

/// What one phase measured.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Requests completed inside the measuring window.
    pub requests: u64,
    /// Failed requests (wrong status, GraphQL errors, transport errors) in the window.
    pub errors: u64,
    /// Length of the measuring window.
    pub window: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Summary {
    /// Builds a summary from the latencies (nanoseconds, any order) of the successful
    /// requests of a window.
    pub fn from_samples(mut nanos: Vec<u64>, errors: u64, window: Duration) -> Self {
        nanos.sort_unstable();
        Self {
            requests: nanos.len() as u64,
            errors,
            window,
            p50: Duration::from_nanos(percentile(&nanos, 50.0)),
            p99: Duration::from_nanos(percentile(&nanos, 99.0)),
        }
    }

    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of sorted values; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.1), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // Odd count: the median is the middle value.
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
    }

    #[test]
    fn summary_sorts_and_counts() {
        let samples = vec![5_000, 1_000, 3_000, 2_000, 4_000];
        let s = Summary::from_samples(samples, 2, Duration::from_secs(2));
        assert_eq!(s.requests, 5);
        assert_eq!(s.errors, 2);
        assert_eq!(s.p50, Duration::from_micros(3));
        assert_eq!(s.p99, Duration::from_micros(5));
        assert!((s.rps() - 2.5).abs() < 1e-9);
    }
}
