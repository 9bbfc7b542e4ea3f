//! A time-bucketed sliding window of two counters, lock-free (atomics only).
//!
//! The window is split into `n` buckets of `window / n`; a bucket is reset when time comes
//! back to its slot. Sums cover the buckets of the last `window`. Under races a reset can
//! lose an increment made at the same instant; the counts are statistics, so that is fine
//! (single-threaded use is exact).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Default)]
struct Bucket {
    /// Index of the time slice this bucket counts, plus one (0 = never used).
    epoch: AtomicU64,
    a: AtomicU64,
    b: AtomicU64,
}

/// Two counters (`a`, `b`) over a sliding time window.
#[derive(Debug)]
pub struct Window {
    buckets: Box<[Bucket]>,
    bucket_ms: u64,
    base: Instant,
}

impl Window {
    /// A window of `length` split into `buckets` buckets (at least one, of at least 1ms).
    pub fn new(length: Duration, buckets: u32) -> Self {
        let n = buckets.max(1);
        let bucket_ms =
            (u64::try_from(length.as_millis()).unwrap_or(u64::MAX) / u64::from(n)).max(1);
        Self {
            buckets: (0..n).map(|_| Bucket::default()).collect(),
            bucket_ms,
            base: Instant::now(),
        }
    }

    fn slice(&self, now: Instant) -> u64 {
        let ms =
            u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        ms / self.bucket_ms
    }

    /// Adds to the counters at time `now`.
    pub fn add(&self, now: Instant, a: u64, b: u64) {
        let slice = self.slice(now);
        let n = self.buckets.len() as u64;
        let Some(bucket) = self.buckets.get((slice % n) as usize) else {
            return;
        };
        let epoch = bucket.epoch.load(Ordering::Acquire);
        if epoch != slice + 1
            && bucket
                .epoch
                .compare_exchange(epoch, slice + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.a.store(0, Ordering::Release);
            bucket.b.store(0, Ordering::Release);
        }
        if a > 0 {
            bucket.a.fetch_add(a, Ordering::AcqRel);
        }
        if b > 0 {
            bucket.b.fetch_add(b, Ordering::AcqRel);
        }
    }

    /// The sums of `a` and `b` over the window ending at `now`.
    pub fn sums(&self, now: Instant) -> (u64, u64) {
        let slice = self.slice(now);
        let n = self.buckets.len() as u64;
        let (mut a, mut b) = (0, 0);
        for bucket in self.buckets.iter() {
            let epoch = bucket.epoch.load(Ordering::Acquire);
            // In the window: slices slice-n+1 ..= slice (epoch = slice + 1).
            if epoch > 0 && epoch <= slice + 1 && epoch + n > slice + 1 {
                a += bucket.a.load(Ordering::Acquire);
                b += bucket.b.load(Ordering::Acquire);
            }
        }
        (a, b)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for bucket in self.buckets.iter() {
            bucket.epoch.store(0, Ordering::Release);
            bucket.a.store(0, Ordering::Release);
            bucket.b.store(0, Ordering::Release);
        }
    }

    /// The window's length in whole seconds, fractional (for per-second budgets).
    pub fn length_secs(&self) -> f64 {
        (self.bucket_ms as f64 * self.buckets.len() as f64) / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_slide_out_of_the_window() {
        let w = Window::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        w.add(t0, 1, 0);
        w.add(t0 + Duration::from_millis(500), 1, 1);
        assert_eq!(w.sums(t0 + Duration::from_secs(1)), (2, 1));
        w.add(t0 + Duration::from_secs(5), 3, 3);
        assert_eq!(w.sums(t0 + Duration::from_secs(9)), (5, 4));
        // At 10.5s the first bucket (0..1s) has left the window.
        assert_eq!(w.sums(t0 + Duration::from_millis(10_500)), (3, 3));
        // The slot of 0..1s is reused at 20s and starts from zero.
        w.add(t0 + Duration::from_secs(20), 1, 0);
        assert_eq!(w.sums(t0 + Duration::from_secs(20)), (1, 0));
        w.clear();
        assert_eq!(w.sums(t0 + Duration::from_secs(20)), (0, 0));
        assert!((w.length_secs() - 10.0).abs() < 1e-9);
    }
}
