//! Resilience settings of a backend (breaker, bulkhead, retries, balancing, health, fallbacks)
//! and of the server's graceful drain: types, defaults and their own validation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

fn ms(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_millis(n))
}

fn secs(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(n))
}

/// Everything that keeps one backend's trouble away from the gateway and the other backends.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResilienceConfig {
    /// How an endpoint is chosen for each call: `p2c` (power of two choices on outstanding
    /// calls) or `round_robin`.
    #[serde(default)]
    pub balance: BalancePolicy,
    /// How often host names in `endpoints` are resolved again (IP literals never are).
    #[serde(default = "d_dns_refresh")]
    pub dns_refresh: HumanDuration,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// The concurrency limit and its queue.
    #[serde(default)]
    pub bulkhead: BulkheadConfig,
    /// Retries of failed calls.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Active health checks (`grpc.health.v1`) of every endpoint; off when absent.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Passive outlier ejection: endpoints that keep failing are taken out for a while.
    #[serde(default)]
    pub outlier: OutlierConfig,
    /// Static replies, by method (`package.Service.Method`), as the response message in JSON;
    /// used when a call fails because the backend is sick, its circuit is open or its
    /// bulkhead is full.
    #[serde(default)]
    pub fallbacks: BTreeMap<String, serde_json::Value>,
}

fn d_dns_refresh() -> HumanDuration {
    secs(30)
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            balance: BalancePolicy::default(),
            dns_refresh: d_dns_refresh(),
            breaker: BreakerConfig::default(),
            bulkhead: BulkheadConfig::default(),
            retry: RetryConfig::default(),
            health_check: None,
            outlier: OutlierConfig::default(),
            fallbacks: BTreeMap::new(),
        }
    }
}

/// Load-balancing policy over a backend's endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancePolicy {
    /// Two random endpoints, the one with fewer calls in flight wins.
    #[default]
    P2c,
    /// Each endpoint in turn.
    RoundRobin,
}

/// Circuit breaker settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Turn the breaker off entirely.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// One breaker per method instead of one for the whole backend.
    #[serde(default)]
    pub per_method: bool,
    /// Length of the sliding window the error ratio is computed over.
    #[serde(default = "d_window")]
    pub window: HumanDuration,
    /// Number of time buckets the window is split into.
    #[serde(default = "d_buckets")]
    pub buckets: u32,
    /// Calls needed in the window before the error ratio can trip the breaker.
    #[serde(default = "d_min_requests")]
    pub min_requests: u64,
    /// Share of sick failures in the window (0 to 1) that trips the breaker.
    #[serde(default = "d_error_ratio")]
    pub error_ratio: f64,
    /// Sick failures in a row that trip the breaker (0 = off).
    #[serde(default = "d_consecutive")]
    pub consecutive_failures: u32,
    /// How long the breaker stays open before letting probes through.
    #[serde(default = "d_open_for")]
    pub open_for: HumanDuration,
    /// Concurrent probe calls in the half-open state; all must succeed to close again.
    #[serde(default = "d_probes")]
    pub half_open_probes: u32,
}

fn yes() -> bool {
    true
}
fn d_window() -> HumanDuration {
    secs(10)
}
fn d_buckets() -> u32 {
    10
}
fn d_min_requests() -> u64 {
    20
}
fn d_error_ratio() -> f64 {
    0.5
}
fn d_consecutive() -> u32 {
    5
}
fn d_open_for() -> HumanDuration {
    secs(5)
}
fn d_probes() -> u32 {
    1
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_method: false,
            window: d_window(),
            buckets: d_buckets(),
            min_requests: d_min_requests(),
            error_ratio: d_error_ratio(),
            consecutive_failures: d_consecutive(),
            open_for: d_open_for(),
            half_open_probes: d_probes(),
        }
    }
}

/// Bulkhead: at most `max_concurrent` calls to the backend, a short queue behind them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Calls in flight to this backend at once.
    #[serde(default = "d_max_concurrent")]
    pub max_concurrent: usize,
    /// Calls allowed to wait for a free slot (0 = none: overflow is rejected at once).
    #[serde(default = "d_max_queue")]
    pub max_queue: usize,
    /// Longest wait in the queue before the call is rejected.
    #[serde(default = "d_queue_timeout")]
    pub queue_timeout: HumanDuration,
}

fn d_max_concurrent() -> usize {
    256
}
fn d_max_queue() -> usize {
    128
}
fn d_queue_timeout() -> HumanDuration {
    ms(250)
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent: d_max_concurrent(),
            max_queue: d_max_queue(),
            queue_timeout: d_queue_timeout(),
        }
    }
}

/// Retries: idempotent methods on UNAVAILABLE, any method on connect errors.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in total, the first one included (1 = no retries, the default).
    #[serde(default = "d_attempts")]
    pub max_attempts: u32,
    /// Backoff cap of the first retry; each next one doubles it (full jitter: the actual
    /// wait is random between 0 and the cap).
    #[serde(default = "d_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Largest backoff cap.
    #[serde(default = "d_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Retries may add at most this share of the calls in `budget_window` (0.2 = 20%).
    #[serde(default = "d_budget_ratio")]
    pub budget_ratio: f64,
    /// Retries per second allowed on top of the ratio, so that low traffic can retry too.
    #[serde(default = "d_budget_min")]
    pub budget_min_per_second: f64,
    /// The window the budget counts calls and retries over.
    #[serde(default = "d_window")]
    pub budget_window: HumanDuration,
}

fn d_attempts() -> u32 {
    1
}
fn d_initial_backoff() -> HumanDuration {
    ms(25)
}
fn d_max_backoff() -> HumanDuration {
    ms(500)
}
fn d_budget_ratio() -> f64 {
    0.2
}
fn d_budget_min() -> f64 {
    1.0
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: d_attempts(),
            initial_backoff: d_initial_backoff(),
            max_backoff: d_max_backoff(),
            budget_ratio: d_budget_ratio(),
            budget_min_per_second: d_budget_min(),
            budget_window: d_window(),
        }
    }
}

/// Active health checks with `grpc.health.v1.Health/Check`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Time between two checks of an endpoint.
    #[serde(default = "d_hc_interval")]
    pub interval: HumanDuration,
    /// Time a check may take; longer counts as unhealthy.
    #[serde(default = "d_hc_timeout")]
    pub timeout: HumanDuration,
    /// The service name asked about ("" = the whole server).
    #[serde(default)]
    pub service: String,
}

fn d_hc_interval() -> HumanDuration {
    secs(5)
}
fn d_hc_timeout() -> HumanDuration {
    secs(1)
}

/// Passive outlier ejection.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierConfig {
    /// Sick failures in a row that eject an endpoint (0 = off).
    #[serde(default = "d_consecutive")]
    pub consecutive_failures: u32,
    /// Ejection time of a first ejection; it doubles with each ejection in a row.
    #[serde(default = "d_ejection")]
    pub ejection_time: HumanDuration,
    /// Longest ejection.
    #[serde(default = "d_max_ejection")]
    pub max_ejection_time: HumanDuration,
}

fn d_ejection() -> HumanDuration {
    secs(30)
}
fn d_max_ejection() -> HumanDuration {
    secs(300)
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: d_consecutive(),
            ejection_time: d_ejection(),
            max_ejection_time: d_max_ejection(),
        }
    }
}

/// Graceful drain on SIGTERM/SIGINT.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    /// Time between readiness (`/readyz`) turning 503 and the listener closing, so that load
    /// balancers stop sending new requests first (e.g. 5s on Kubernetes).
    #[serde(default = "d_drain_delay")]
    pub delay: HumanDuration,
    /// Time in-flight requests (and open streams) get to finish once the listener is closed;
    /// connections still open after it are closed.
    #[serde(default = "d_drain_grace")]
    pub grace: HumanDuration,
}

fn d_drain_delay() -> HumanDuration {
    ms(0)
}
fn d_drain_grace() -> HumanDuration {
    secs(30)
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            delay: d_drain_delay(),
            grace: d_drain_grace(),
        }
    }
}

/// A bad value: the key below the checked section, and what is wrong.
pub type Invalid = (String, String);

fn bad(key: &str, message: impl Into<String>) -> Invalid {
    (key.to_string(), message.into())
}

impl ResilienceConfig {
    /// Checks the values; errors name the key relative to `resilience`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.dns_refresh.get() < Duration::from_millis(100) {
            return Err(bad("dns_refresh", "must be at least 100ms"));
        }
        let b = &self.breaker;
        if b.buckets == 0 || b.buckets > 1000 {
            return Err(bad("breaker.buckets", "must be between 1 and 1000"));
        }
        if b.window.get().as_millis() < u128::from(b.buckets) {
            return Err(bad(
                "breaker.window",
                "must be at least 1ms per bucket (window / buckets)",
            ));
        }
        if !(b.error_ratio > 0.0 && b.error_ratio <= 1.0) {
            return Err(bad("breaker.error_ratio", "must be above 0 and at most 1"));
        }
        if b.min_requests == 0 {
            return Err(bad("breaker.min_requests", "must be at least 1"));
        }
        if b.half_open_probes == 0 {
            return Err(bad("breaker.half_open_probes", "must be at least 1"));
        }
        if b.open_for.get().is_zero() {
            return Err(bad("breaker.open_for", "must be longer than 0"));
        }
        if self.bulkhead.max_concurrent == 0 {
            return Err(bad("bulkhead.max_concurrent", "must be at least 1"));
        }
        let r = &self.retry;
        if r.max_attempts == 0 || r.max_attempts > 10 {
            return Err(bad("retry.max_attempts", "must be between 1 and 10"));
        }
        if r.initial_backoff > r.max_backoff {
            return Err(bad(
                "retry.initial_backoff",
                format!(
                    "{} is longer than max_backoff ({})",
                    r.initial_backoff, r.max_backoff
                ),
            ));
        }
        if !(r.budget_ratio >= 0.0 && r.budget_ratio.is_finite()) {
            return Err(bad("retry.budget_ratio", "must be 0 or more"));
        }
        if !(r.budget_min_per_second >= 0.0 && r.budget_min_per_second.is_finite()) {
            return Err(bad("retry.budget_min_per_second", "must be 0 or more"));
        }
        if r.budget_window.get() < Duration::from_millis(10) {
            return Err(bad("retry.budget_window", "must be at least 10ms"));
        }
        if let Some(h) = &self.health_check {
            if h.interval.get().is_zero() {
                return Err(bad("health_check.interval", "must be longer than 0"));
            }
            if h.timeout.get().is_zero() {
                return Err(bad("health_check.timeout", "must be longer than 0"));
            }
        }
        let o = &self.outlier;
        if o.ejection_time > o.max_ejection_time {
            return Err(bad(
                "outlier.ejection_time",
                format!(
                    "{} is longer than max_ejection_time ({})",
                    o.ejection_time, o.max_ejection_time
                ),
            ));
        }
        for (method, value) in &self.fallbacks {
            let key = format!("fallbacks.{method}");
            let parts: Vec<&str> = method.split('.').collect();
            if parts.len() < 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(bad(&key, "write the method as package.Service.Method"));
            }
            if !value.is_object() {
                return Err(bad(&key, "must be the response message as a JSON object"));
            }
        }
        Ok(())
    }
}

impl DrainConfig {
    /// Checks the values; errors name the key relative to `drain`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.grace.get().is_zero() {
            return Err(bad("grace", "must be longer than 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> ResilienceConfig {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_retries_are_off() {
        let c = parse("{}");
        c.validate().unwrap();
        assert_eq!(c.retry.max_attempts, 1);
        assert_eq!(c.balance, BalancePolicy::P2c);
        assert!(c.breaker.enabled);
        assert!(c.health_check.is_none());
    }

    #[test]
    fn a_full_example_parses() {
        let c = parse(
            r#"
balance: round_robin
dns_refresh: 10s
breaker: { window: 5s, buckets: 5, min_requests: 4, error_ratio: 0.25, consecutive_failures: 3, open_for: 200ms, half_open_probes: 2, per_method: true }
bulkhead: { max_concurrent: 2, max_queue: 0, queue_timeout: 50ms }
retry: { max_attempts: 3, initial_backoff: 10ms, max_backoff: 100ms, budget_ratio: 0.5, budget_min_per_second: 0 }
health_check: { interval: 1s, timeout: 200ms, service: demo.v1.UserService }
outlier: { consecutive_failures: 2, ejection_time: 1s, max_ejection_time: 8s }
fallbacks:
  demo.v1.CatalogService.GetProduct: { id: p-0, title: "unavailable" }
"#,
        );
        c.validate().unwrap();
        assert_eq!(c.balance, BalancePolicy::RoundRobin);
        assert_eq!(c.bulkhead.max_queue, 0);
        assert_eq!(c.fallbacks.len(), 1);
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = parse("breaker: { error_ratio: 1.5 }")
            .validate()
            .unwrap_err();
        assert_eq!(e.0, "breaker.error_ratio");
        let e = parse("retry: { max_attempts: 0 }").validate().unwrap_err();
        assert_eq!(e.0, "retry.max_attempts");
        let e = parse("fallbacks: { GetProduct: {} }")
            .validate()
            .unwrap_err();
        assert_eq!(e.0, "fallbacks.GetProduct");
        let e = parse("fallbacks: { a.B.C: 3 }").validate().unwrap_err();
        assert!(e.1.contains("JSON object"), "{e:?}");
        assert!(yaml_serde::from_str::<ResilienceConfig>("retries: 3").is_err());
    }
}
