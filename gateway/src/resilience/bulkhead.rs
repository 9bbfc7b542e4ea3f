//! The bulkhead: a concurrency limit per backend with a short bounded queue.
//!
//! A free slot is taken at once (one atomic operation). Otherwise the call waits in the queue
//! if fewer than `max_queue` calls already wait, for at most `queue_timeout` (and never past
//! its deadline); a full queue or a wait that times out is an immediate rejection. Each
//! backend has its own bulkhead, so one slow backend cannot take the others' capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::BulkheadConfig;

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkheadRejection {
    /// Every slot is taken and the queue is full, or the wait in the queue timed out.
    Full,
    /// The call's own deadline ran out while it waited.
    Deadline,
}

/// A concurrency limit with a bounded queue.
#[derive(Debug)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    max_queue: usize,
    queue_timeout: Duration,
    queued: AtomicUsize,
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

/// Decrements the queue length when a waiting call leaves the queue (however it leaves).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkhead {
    /// A bulkhead with the configured limits.
    pub fn new(cfg: &BulkheadConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(cfg.max_concurrent)),
            max_concurrent: cfg.max_concurrent,
            max_queue: cfg.max_queue,
            queue_timeout: cfg.queue_timeout.get(),
            queued: AtomicUsize::new(0),
        }
    }

    /// Takes a slot, waiting in the queue for at most `queue_timeout` or `remaining`,
    /// whichever is shorter.
    pub async fn acquire(&self, remaining: Duration) -> Result<BulkheadPermit, BulkheadRejection> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(BulkheadPermit { _permit: p });
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(BulkheadRejection::Full);
        }
        let _queued = Queued(&self.queued);
        let wait = self.queue_timeout.min(remaining);
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(BulkheadPermit { _permit: p }),
            // The semaphore is never closed; treat it like a full bulkhead anyway.
            Ok(Err(_)) => Err(BulkheadRejection::Full),
            Err(_) if remaining <= self.queue_timeout => Err(BulkheadRejection::Deadline),
            Err(_) => Err(BulkheadRejection::Full),
        }
    }

    /// Calls holding a slot.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent
            .saturating_sub(self.slots.available_permits())
    }

    /// Calls waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The concurrency limit.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The queue limit.
    pub fn max_queue(&self) -> usize {
        self.max_queue
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn bulkhead(max_concurrent: usize, max_queue: usize) -> Bulkhead {
        Bulkhead::new(&BulkheadConfig {
            max_concurrent,
            max_queue,
            queue_timeout: HumanDuration(Duration::from_millis(100)),
        })
    }

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn overflow_without_a_queue_is_rejected_at_once() {
        let b = bulkhead(2, 0);
        let p1 = b.acquire(LONG).await.unwrap();
        let _p2 = b.acquire(LONG).await.unwrap();
        assert_eq!(b.in_flight(), 2);
        assert_eq!(b.acquire(LONG).await.unwrap_err(), BulkheadRejection::Full);
        drop(p1);
        assert_eq!(b.in_flight(), 1);
        assert!(b.acquire(LONG).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded_and_times_out() {
        let b = Arc::new(bulkhead(1, 1));
        let p = b.acquire(LONG).await.unwrap();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(LONG).await.map(|_| ()) }
        });
        // Let the waiter enter the queue.
        while b.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(b.acquire(LONG).await.unwrap_err(), BulkheadRejection::Full);
        drop(p);
        waiter.await.unwrap().unwrap();
        assert_eq!(b.queued(), 0);
        let _p = b.acquire(LONG).await.unwrap();
        let t0 = tokio::time::Instant::now();
        assert_eq!(b.acquire(LONG).await.unwrap_err(), BulkheadRejection::Full);
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
        assert_eq!(
            b.acquire(Duration::from_millis(30)).await.unwrap_err(),
            BulkheadRejection::Deadline
        );
    }
}
