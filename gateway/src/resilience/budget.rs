//! The retry budget: retries may add at most `budget_ratio` of the calls made over the
//! budget window, plus `budget_min_per_second`, so that retries cannot multiply an outage.

use tokio::time::Instant;

use super::window::Window;
use crate::config::RetryConfig;

/// Counts calls and retries of one backend over a sliding window.
#[derive(Debug)]
pub struct RetryBudget {
    /// `a` = calls (first attempts), `b` = retries.
    window: Window,
    ratio: f64,
    floor: f64,
}

impl RetryBudget {
    /// The budget of a backend.
    pub fn new(cfg: &RetryConfig) -> Self {
        let window = Window::new(cfg.budget_window.get(), 10);
        let floor = cfg.budget_min_per_second * window.length_secs();
        Self {
            window,
            ratio: cfg.budget_ratio,
            floor,
        }
    }

    /// Counts a call (its first attempt).
    pub fn record_call(&self) {
        self.window.add(Instant::now(), 1, 0);
    }

    /// Takes one retry from the budget if it has room; `false` means do not retry.
    pub fn try_retry(&self) -> bool {
        let now = Instant::now();
        let (calls, retries) = self.window.sums(now);
        let allowed = self.ratio * calls as f64 + self.floor;
        if (retries + 1) as f64 <= allowed {
            self.window.add(now, 0, 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_share_of_calls_plus_a_floor() {
        let b = RetryBudget::new(&RetryConfig {
            budget_ratio: 0.5,
            budget_min_per_second: 0.0,
            budget_window: HumanDuration(Duration::from_secs(10)),
            ..RetryConfig::default()
        });
        b.record_call();
        assert!(!b.try_retry(), "0.5 retries allowed for 1 call");
        b.record_call();
        assert!(b.try_retry());
        assert!(!b.try_retry());
        for _ in 0..4 {
            b.record_call();
        }
        assert!(b.try_retry());
        assert!(b.try_retry());
        assert!(!b.try_retry(), "6 calls: 3 retries");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.try_retry(), "the window forgot everything");

        let floor = RetryBudget::new(&RetryConfig {
            budget_ratio: 0.0,
            budget_min_per_second: 0.2,
            budget_window: HumanDuration(Duration::from_secs(10)),
            ..RetryConfig::default()
        });
        assert!(floor.try_retry());
        assert!(floor.try_retry());
        assert!(!floor.try_retry(), "0.2/s over 10s = 2 retries");
    }
}
