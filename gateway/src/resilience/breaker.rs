//! The circuit breaker: closed, open, half-open, tripped by an error ratio over a sliding
//! window or by consecutive sick failures.
//!
//! Admission while closed is one atomic load; results are recorded under a short mutex (never
//! held across an await). A [`BreakerPermit`] that is dropped without a result (the call was
//! cancelled) counts for nothing, but frees its half-open probe slot.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::window::Window;
use crate::config::BreakerConfig;

/// The state of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; results are counted.
    Closed,
    /// Calls fail fast without touching the backend.
    Open,
    /// A few probe calls decide between closed and open.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// The breaker refused a call: it is open (or half-open with every probe slot taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// When trying again makes sense.
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Sick failures in a row (closed state).
    consecutive: u32,
    /// When an open breaker lets probes through.
    open_until: Instant,
    /// Probe calls in flight (half-open).
    probes_in_flight: u32,
    /// Successful probes so far (half-open).
    probe_successes: u32,
}

/// One circuit breaker (of a backend, or of one method of it).
#[derive(Debug)]
pub struct Breaker {
    name: Arc<str>,
    cfg: BreakerConfig,
    /// Mirror of `inner.state` for the lock-free fast path.
    state: AtomicU8,
    /// `a` = calls, `b` = sick failures.
    window: Window,
    inner: Mutex<Inner>,
    /// Transitions so far, by the state entered (closed, open, half-open).
    transitions: [std::sync::atomic::AtomicU64; 3],
}

/// Admission to make one call; report its result with [`BreakerPermit::record`].
#[derive(Debug)]
#[must_use]
pub struct BreakerPermit {
    breaker: Option<Arc<Breaker>>,
    probe: bool,
}

impl Breaker {
    /// A closed breaker; `name` (e.g. `users` or `users/demo.v1.UserService.GetUser`) is used
    /// in logs.
    pub fn new(name: &str, cfg: &BreakerConfig) -> Self {
        Self {
            name: name.into(),
            cfg: cfg.clone(),
            state: AtomicU8::new(BreakerState::Closed.as_u8()),
            window: Window::new(cfg.window.get(), cfg.buckets),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive: 0,
                open_until: Instant::now(),
                probes_in_flight: 0,
                probe_successes: 0,
            }),
            transitions: Default::default(),
        }
    }

    /// How many times it entered `to` so far.
    pub fn transitions_to(&self, to: BreakerState) -> u64 {
        self.transitions
            .get(usize::from(to.as_u8()))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Calls and sick failures in the current window.
    pub fn window_counts(&self) -> (u64, u64) {
        self.window.sums(Instant::now())
    }

    /// Asks to make a call now.
    pub fn try_acquire(self: &Arc<Self>) -> Result<BreakerPermit, Rejected> {
        if !self.cfg.enabled {
            return Ok(BreakerPermit {
                breaker: None,
                probe: false,
            });
        }
        if self.state() == BreakerState::Closed {
            return Ok(self.permit(false));
        }
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(self.permit(false)),
            BreakerState::Open if now < inner.open_until => Err(Rejected {
                retry_after: inner.open_until - now,
            }),
            BreakerState::Open => {
                self.transition(&mut inner, BreakerState::HalfOpen, "open period over");
                inner.probes_in_flight = 1;
                Ok(self.permit(true))
            }
            BreakerState::HalfOpen if inner.probes_in_flight < self.cfg.half_open_probes => {
                inner.probes_in_flight += 1;
                Ok(self.permit(true))
            }
            BreakerState::HalfOpen => Err(Rejected {
                retry_after: self.cfg.open_for.get(),
            }),
        }
    }

    fn permit(self: &Arc<Self>, probe: bool) -> BreakerPermit {
        BreakerPermit {
            breaker: Some(self.clone()),
            probe,
        }
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState, reason: &str) {
        let from = inner.state;
        inner.state = to;
        self.state.store(to.as_u8(), Ordering::Release);
        if let Some(count) = self.transitions.get(usize::from(to.as_u8())) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        match to {
            BreakerState::Open => {
                inner.open_until = Instant::now() + self.cfg.open_for.get();
                tracing::warn!(breaker = %self.name, from = from.as_str(), to = to.as_str(),
                    %reason, "circuit breaker opened");
            }
            BreakerState::HalfOpen => {
                inner.probes_in_flight = 0;
                inner.probe_successes = 0;
                tracing::info!(breaker = %self.name, from = from.as_str(), to = to.as_str(),
                    %reason, "circuit breaker half-open");
            }
            BreakerState::Closed => {
                inner.consecutive = 0;
                self.window.clear();
                tracing::info!(breaker = %self.name, from = from.as_str(), to = to.as_str(),
                    %reason, "circuit breaker closed");
            }
        }
    }

    fn on_result(&self, probe: bool, sick: bool) {
        let now = Instant::now();
        if !probe {
            self.window.add(now, 1, u64::from(sick));
        }
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed if !probe => {
                if !sick {
                    inner.consecutive = 0;
                    return;
                }
                inner.consecutive = inner.consecutive.saturating_add(1);
                let limit = self.cfg.consecutive_failures;
                if limit > 0 && inner.consecutive >= limit {
                    let reason = format!("{} sick failures in a row", inner.consecutive);
                    self.transition(&mut inner, BreakerState::Open, &reason);
                    return;
                }
                let (calls, failures) = self.window.sums(now);
                if calls >= self.cfg.min_requests
                    && failures as f64 >= self.cfg.error_ratio * calls as f64
                {
                    let reason = format!(
                        "{failures} sick failures in {calls} calls over the last {}",
                        self.cfg.window
                    );
                    self.transition(&mut inner, BreakerState::Open, &reason);
                }
            }
            BreakerState::HalfOpen if probe => {
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                if sick {
                    self.transition(&mut inner, BreakerState::Open, "a half-open probe failed");
                    return;
                }
                inner.probe_successes += 1;
                if inner.probe_successes >= self.cfg.half_open_probes {
                    self.transition(
                        &mut inner,
                        BreakerState::Closed,
                        "half-open probes succeeded",
                    );
                }
            }
            // Results of calls admitted in an earlier state decide nothing.
            _ => {}
        }
    }

    fn on_abandon(&self, probe: bool) {
        if probe {
            let mut inner = self.lock();
            if inner.state == BreakerState::HalfOpen {
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
            }
        }
    }
}

impl BreakerPermit {
    /// Reports the call's result: `sick` when it failed in a way that means the backend is
    /// unwell (see [`crate::upstream::UpstreamError::is_sick`]); any other answer is a success.
    pub fn record(mut self, sick: bool) {
        if let Some(b) = self.breaker.take() {
            b.on_result(self.probe, sick);
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if let Some(b) = self.breaker.take() {
            b.on_abandon(self.probe);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            min_requests: 4,
            error_ratio: 0.5,
            consecutive_failures: 3,
            open_for: HumanDuration(Duration::from_millis(200)),
            half_open_probes: 2,
            ..BreakerConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_trip_and_probes_close() {
        let b = Arc::new(Breaker::new("t", &cfg()));
        for _ in 0..3 {
            b.try_acquire().unwrap().record(true);
        }
        assert_eq!(b.state(), BreakerState::Open);
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.retry_after, Duration::from_millis(200));
        tokio::time::advance(Duration::from_millis(200)).await;
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Both probe slots are taken.
        assert!(b.try_acquire().is_err());
        p1.record(false);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p2.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window_counts(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_again_and_abandoned_probes_free_their_slot() {
        let b = Arc::new(Breaker::new("t", &cfg()));
        for _ in 0..3 {
            b.try_acquire().unwrap().record(true);
        }
        tokio::time::advance(Duration::from_millis(200)).await;
        let p = b.try_acquire().unwrap();
        drop(p);
        let p1 = b.try_acquire().unwrap();
        let _p2 = b.try_acquire().unwrap();
        p1.record(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_error_ratio_trips_after_min_requests() {
        let b = Arc::new(Breaker::new(
            "t",
            &BreakerConfig {
                consecutive_failures: 0,
                ..cfg()
            },
        ));
        b.try_acquire().unwrap().record(true);
        b.try_acquire().unwrap().record(false);
        b.try_acquire().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed, "3 calls < min_requests");
        b.try_acquire().unwrap().record(false);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "the 4th call was a success"
        );
        b.try_acquire().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Open, "3 of 5 failed");
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_reset_the_streak_and_disabled_never_opens() {
        let b = Arc::new(Breaker::new(
            "t",
            &BreakerConfig {
                min_requests: 100,
                ..cfg()
            },
        ));
        for _ in 0..10 {
            b.try_acquire().unwrap().record(true);
            b.try_acquire().unwrap().record(true);
            b.try_acquire().unwrap().record(false);
        }
        assert_eq!(b.state(), BreakerState::Closed, "never 3 in a row");
        let off = Arc::new(Breaker::new(
            "t",
            &BreakerConfig {
                enabled: false,
                ..cfg()
            },
        ));
        for _ in 0..10 {
            off.try_acquire().unwrap().record(true);
        }
        assert_eq!(off.state(), BreakerState::Closed);
    }
}
