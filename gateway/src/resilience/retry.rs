//! The retry policy: how many attempts, which failures are retried, and the backoff between
//! attempts (exponential with full jitter).
//!
//! Retried: a connect error (the request never left the gateway) for any method, and
//! `UNAVAILABLE` or a broken connection for idempotent methods. Never retried: `DEADLINE_EXCEEDED` (the budget is
//! the client's, and a backend that used it up would likely do so again), any other code, a
//! call whose remaining deadline is shorter than the backoff, and a server stream that has
//! started (only its establishment is retried).

use std::time::Duration;

use crate::config::RetryConfig;

/// When and how to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

/// What a failed attempt was, as far as retrying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: the request was not sent.
    Connect,
    /// The backend said UNAVAILABLE, or the connection broke after the request was sent.
    Unavailable,
    /// Anything else: never retried.
    Other,
}

impl RetryPolicy {
    /// The policy of a backend.
    pub fn new(cfg: &RetryConfig) -> Self {
        Self {
            max_attempts: cfg.max_attempts.max(1),
            initial_backoff: cfg.initial_backoff.get(),
            max_backoff: cfg.max_backoff.get(),
        }
    }

    /// Attempts in total, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether the `attempt`-th attempt (1-based) that failed this way may be followed by
    /// another one (budget and deadline aside).
    pub fn should_retry(&self, attempt: u32, failure: Failure, idempotent: bool) -> bool {
        attempt < self.max_attempts
            && match failure {
                Failure::Connect => true,
                Failure::Unavailable => idempotent,
                Failure::Other => false,
            }
    }

    /// The cap of the backoff after the `attempt`-th attempt: `initial * 2^(attempt-1)`,
    /// at most `max_backoff`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The wait before the next attempt: uniformly random between 0 and the cap (full
    /// jitter, so retries of many clients do not synchronise).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        if cap.is_zero() {
            return cap;
        }
        cap.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&RetryConfig {
            max_attempts: 3,
            initial_backoff: HumanDuration(Duration::from_millis(10)),
            max_backoff: HumanDuration(Duration::from_millis(25)),
            ..RetryConfig::default()
        })
    }

    #[test]
    fn only_allowed_failures_are_retried() {
        let p = policy();
        assert!(p.should_retry(1, Failure::Unavailable, true));
        assert!(!p.should_retry(1, Failure::Unavailable, false));
        assert!(p.should_retry(2, Failure::Connect, false));
        assert!(
            !p.should_retry(3, Failure::Connect, true),
            "3 attempts at most"
        );
        assert!(!p.should_retry(1, Failure::Other, true));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = policy();
        assert_eq!(p.backoff_cap(1), Duration::from_millis(10));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(20));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(25));
        assert_eq!(p.backoff_cap(40), Duration::from_millis(25));
        for _ in 0..100 {
            assert!(p.backoff(2) <= Duration::from_millis(20));
        }
    }
}
