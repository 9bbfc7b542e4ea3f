//! The generic cell rate algorithm (GCRA), the arithmetic every store runs: one number per key
//! (the theoretical arrival time, TAT), no timers, no windows to reset.
//!
//! A limit of `limit` per `period` spaces requests `interval = period / limit` apart; a burst
//! of `capacity` may come at once (`tolerance = interval * capacity`). A request of cost `n`
//! moves the TAT `n * interval` ahead of `max(TAT, now)`; it passes if the new TAT is no more
//! than `tolerance` ahead of now. Unlike fixed windows there is no edge where twice the limit
//! passes, and a caller who spent everything gets capacity back steadily, not at midnight.
//!
//! The Redis store runs the same arithmetic in Lua (`redis.rs`), in microseconds.

use std::time::Duration;

/// A rate, ready for the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// How many per `period` (for the `RateLimit-Policy` header).
    pub limit: u64,
    /// The period.
    pub period: Duration,
    /// How many may come at once.
    pub capacity: u64,
    /// Nanoseconds between two requests at the sustained rate.
    pub interval_ns: u64,
}

impl Rate {
    /// `limit` per `period`, `burst` at once (default `limit`).
    pub fn new(limit: u64, period: Duration, burst: Option<u64>) -> Rate {
        let limit = limit.max(1);
        let interval = (period.as_nanos() / u128::from(limit)).max(1);
        Rate {
            limit,
            period,
            capacity: burst.unwrap_or(limit).max(1),
            interval_ns: u64::try_from(interval).unwrap_or(u64::MAX),
        }
    }

    /// How far ahead of now the TAT may be.
    pub fn tolerance_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(self.capacity)
    }
}

/// One key's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request passes this limit.
    pub allowed: bool,
    /// Requests of cost 1 that would still pass right now (after this one, if it passed).
    pub remaining: u64,
    /// Until the key is back to its full capacity.
    pub reset: Duration,
    /// Until this request would pass (zero when it passed).
    pub retry_after: Duration,
}

/// The verdict for a request of `cost` at `now_ns` on a key whose TAT is `tat_ns` (0 for a key
/// never seen), and the TAT to store if it passes.
pub fn decide(tat_ns: u64, now_ns: u64, rate: &Rate, cost: u64) -> (Verdict, u64) {
    let tolerance = rate.tolerance_ns();
    let tat = tat_ns.max(now_ns);
    let new_tat = tat.saturating_add(rate.interval_ns.saturating_mul(cost));
    let allow_at = new_tat.saturating_sub(tolerance);
    let remaining = |t: u64| now_ns.saturating_add(tolerance).saturating_sub(t) / rate.interval_ns;
    if allow_at > now_ns {
        // A cost above the capacity never passes: come back after a whole period.
        let retry = if cost > rate.capacity {
            rate.period
        } else {
            Duration::from_nanos(allow_at - now_ns)
        };
        let verdict = Verdict {
            allowed: false,
            remaining: remaining(tat),
            reset: Duration::from_nanos(tat - now_ns),
            retry_after: retry,
        };
        return (verdict, tat_ns);
    }
    let verdict = Verdict {
        allowed: true,
        remaining: remaining(new_tat),
        reset: Duration::from_nanos(new_tat - now_ns),
        retry_after: Duration::ZERO,
    };
    (verdict, new_tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let rate = Rate::new(10, Duration::from_secs(10), Some(3));
        let now = 1_000 * S;
        let mut tat = 0;
        for left in [2, 1, 0] {
            let (v, t) = decide(tat, now, &rate, 1);
            assert!(v.allowed);
            assert_eq!(v.remaining, left);
            tat = t;
        }
        let (v, t) = decide(tat, now, &rate, 1);
        assert!(!v.allowed);
        assert_eq!(t, tat, "a refusal changes nothing");
        assert_eq!(v.retry_after, Duration::from_secs(1));
        assert_eq!(v.reset, Duration::from_secs(3));
        // One interval later one more passes, and only one.
        let (v, t) = decide(tat, now + S, &rate, 1);
        assert!(v.allowed);
        assert!(!decide(t, now + S, &rate, 1).0.allowed);
        // After the reset the whole burst is back.
        let (v, _) = decide(t, now + 10 * S, &rate, 1);
        assert_eq!(v.remaining, 2);
    }

    #[test]
    fn exactly_limit_per_period_by_default() {
        let rate = Rate::new(100, Duration::from_secs(60), None);
        let now = 5 * S;
        let mut tat = 0;
        let mut passed = 0;
        for _ in 0..150 {
            let (v, t) = decide(tat, now, &rate, 1);
            if v.allowed {
                passed += 1;
                tat = t;
            }
        }
        assert_eq!(passed, 100);
    }

    #[test]
    fn costs_weigh_and_a_cost_above_capacity_never_passes() {
        let rate = Rate::new(10, Duration::from_secs(1), None);
        let (v, tat) = decide(0, S, &rate, 7);
        assert!(v.allowed);
        assert_eq!(v.remaining, 3);
        assert!(!decide(tat, S, &rate, 4).0.allowed);
        assert!(decide(tat, S, &rate, 3).0.allowed);
        let (v, _) = decide(0, S, &rate, 11);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Duration::from_secs(1));
    }

    #[test]
    fn extreme_values_saturate() {
        let rate = Rate::new(1, Duration::from_secs(366 * 86_400), Some(u64::MAX));
        // The tolerance saturates at u64::MAX: everything passes, nothing overflows.
        let (v, _) = decide(u64::MAX, u64::MAX - 1, &rate, u64::MAX);
        assert!(v.allowed);
        let rate = Rate::new(u64::MAX, Duration::from_millis(1), None);
        assert_eq!(rate.interval_ns, 1);
        let (v, tat) = decide(0, 0, &rate, 1);
        assert!(v.allowed);
        assert_eq!(tat, 1);
    }
}
