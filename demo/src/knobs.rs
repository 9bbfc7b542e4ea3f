//! Fault-injection knobs and call counters shared between a demo server and its tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Runtime-adjustable behaviour of one demo server, plus per-method call counters.
///
/// Cloning is cheap and every clone shares the same state, so a test keeps a clone and turns
/// the knobs while the server runs. Every RPC first counts the call (and records its request
/// metadata), then sleeps for the latency, then applies an injected failure, then does its work.
#[derive(Clone, Default)]
pub struct Knobs {
    inner: Arc<Mutex<State>>,
    /// Woken whenever a stream counter changes ([`Knobs::wait_until`]).
    events: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Knobs")
            .field("latency", &state.latency)
            .field("error_rate", &state.error_rate)
            .field("fail_with", &state.fail_with)
            .field("fail_next", &state.fail_next)
            .field("fail_stream_after", &state.fail_stream_after)
            .field("total_calls", &state.total_calls)
            .finish_non_exhaustive()
    }
}

/// Everything behind the knobs' mutex.
#[derive(Default)]
struct State {
    /// The server's health reporter and the service name it reports for (set by `serve`).
    health: Option<(tonic_health::server::HealthReporter, &'static str)>,
    latency: Duration,
    error_rate: f64,
    fail_with: Option<Code>,
    fail_next: u64,
    fail_stream_after: Option<u32>,
    calls: HashMap<String, u64>,
    total_calls: u64,
    last_metadata: HashMap<String, MetadataMap>,
    /// `cache-control` sent with every reply that supports it, when set.
    cache_control: Option<String>,
    /// More metadata sent with those replies.
    reply_metadata: Vec<(String, String)>,
    /// Stream messages received, by method.
    received: HashMap<String, u64>,
    /// Stream messages sent (handed to the transport), by method.
    sent: HashMap<String, u64>,
    /// Calls whose client went away before the call ended, by method.
    cancelled: HashMap<String, u64>,
    /// TCP connections the server accepted (not reset by [`Knobs::reset`]).
    connections: u64,
}

impl Knobs {
    /// Creates knobs with no latency, no failures and zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delays every following call by `latency` before it does anything else.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Makes each following call fail with this probability (clamped to 0.0..=1.0; NaN means 0).
    pub fn set_error_rate(&self, rate: f64) {
        self.lock().error_rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
    }

    /// Sets the status code of injected failures; `None` restores the default, `UNAVAILABLE`.
    pub fn set_fail_with(&self, code: Option<Code>) {
        self.lock().fail_with = code;
    }

    /// Makes the next `n` calls fail (deterministically, before the error rate is consulted).
    pub fn fail_next(&self, n: u64) {
        self.lock().fail_next = n;
    }

    /// Makes every following server stream (WatchOrders) send `n` messages and then end with an
    /// injected failure instead of message `n + 1`; a stream shorter than that ends normally.
    /// `None` turns this off.
    pub fn fail_stream_after(&self, n: Option<u32>) {
        self.lock().fail_stream_after = n;
    }

    /// Sends `name: value` with the replies of the methods that support it (as
    /// [`Knobs::set_cache_control`], and `UpdateUser`), after what was added before.
    pub fn add_reply_metadata(&self, name: &str, value: &str) {
        self.lock()
            .reply_metadata
            .push((name.to_owned(), value.to_owned()));
    }

    /// Sends `cache-control: VALUE` with the replies of the methods that support it
    /// (`GetProduct`, `BatchGetProducts`, `GetUser`, `UpdateUser`), or nothing with `None`.
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.lock().cache_control = value.map(str::to_owned);
    }

    /// `message` as a reply, with the metadata the knobs add (see
    /// [`Knobs::set_cache_control`]).
    pub(crate) fn reply<T>(&self, message: T) -> tonic::Response<T> {
        let mut resp = tonic::Response::new(message);
        let state = self.lock();
        if let Some(v) = state.cache_control.as_deref()
            && let Ok(v) = v.parse()
        {
            resp.metadata_mut().insert("cache-control", v);
        }
        for (name, value) in &state.reply_metadata {
            if let (Ok(k), Ok(v)) = (
                tonic::metadata::AsciiMetadataKey::from_bytes(name.as_bytes()),
                value.parse(),
            ) {
                resp.metadata_mut().append(k, v);
            }
        }
        resp
    }

    /// Restores every knob to its default and clears the counters and recorded metadata.
    pub fn reset(&self) {
        let mut state = self.lock();
        let (health, connections) = (state.health.take(), state.connections);
        *state = State::default();
        state.health = health;
        state.connections = connections;
    }

    /// Called by the server: lets [`Knobs::set_serving`] drive its grpc.health.v1 answers.
    pub(crate) fn attach_health(
        &self,
        reporter: tonic_health::server::HealthReporter,
        service: &'static str,
    ) {
        self.lock().health = Some((reporter, service));
    }

    /// Makes the server's grpc.health.v1 report SERVING or NOT_SERVING, for the service and
    /// for the whole server (""), so health-checking clients take it out or put it back.
    /// Calls are still answered: only the health status changes.
    pub async fn set_serving(&self, serving: bool) {
        let health = self.lock().health.clone();
        let Some((reporter, service)) = health else {
            return;
        };
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter.set_service_status(service, status).await;
    }

    /// How many calls the method with this short rpc name (e.g. `"GetUser"`) has received.
    pub fn calls(&self, method: &str) -> u64 {
        self.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Counts a stream message `method` received from its client.
    pub(crate) fn count_received(&self, method: &str) {
        *self.lock().received.entry(method.to_owned()).or_insert(0) += 1;
        self.events.notify_waiters();
    }

    /// Counts a stream message `method` handed to the transport for its client.
    pub(crate) fn count_sent(&self, method: &str) {
        *self.lock().sent.entry(method.to_owned()).or_insert(0) += 1;
        self.events.notify_waiters();
    }

    /// Records that a call of `method` was cancelled: its client went away before it ended.
    pub(crate) fn count_cancelled(&self, method: &str) {
        *self.lock().cancelled.entry(method.to_owned()).or_insert(0) += 1;
        self.events.notify_waiters();
    }

    /// How many stream messages the method with this short rpc name received.
    pub fn received(&self, method: &str) -> u64 {
        self.lock().received.get(method).copied().unwrap_or(0)
    }

    /// How many stream messages the method sent (handed to the transport; a client that does
    /// not read stops it through flow control).
    pub fn sent(&self, method: &str) -> u64 {
        self.lock().sent.get(method).copied().unwrap_or(0)
    }

    /// How many calls of the method were cancelled by their client.
    pub fn cancelled(&self, method: &str) -> u64 {
        self.lock().cancelled.get(method).copied().unwrap_or(0)
    }

    /// Waits until `done(self)` holds, checked again whenever a stream counter changes
    /// ([`Knobs::received`], [`Knobs::sent`], [`Knobs::cancelled`]): how tests wait for the
    /// backend to see something, without sleeping.
    pub async fn wait_until(&self, done: impl Fn(&Knobs) -> bool) {
        loop {
            let notified = self.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    /// How many TCP connections the server has accepted since it started: how many
    /// connections a gateway opened to it.
    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    pub(crate) fn count_connection(&self) {
        self.lock().connections += 1;
    }

    /// How many calls all methods together have received.
    pub fn total_calls(&self) -> u64 {
        self.lock().total_calls
    }

    /// The request metadata of the last call of the method with this short rpc name.
    pub fn last_metadata(&self, method: &str) -> Option<MetadataMap> {
        self.lock().last_metadata.get(method).cloned()
    }

    /// The status code injected failures use.
    pub fn failure_code(&self) -> Code {
        self.lock().fail_with.unwrap_or(Code::Unavailable)
    }

    /// The current `fail_stream_after` setting.
    pub(crate) fn stream_failure_after(&self) -> Option<u32> {
        self.lock().fail_stream_after
    }

    /// The status an injected failure of `method` returns.
    pub(crate) fn injected_status(&self, method: &str) -> Status {
        Status::new(
            self.failure_code(),
            format!("injected failure in {method} (demo knobs)"),
        )
    }

    /// Runs the knob pipeline of one call: count it, sleep for the latency, maybe fail.
    pub(crate) async fn on_call(&self, method: &str, metadata: &MetadataMap) -> Result<(), Status> {
        let latency = {
            let mut state = self.lock();
            *state.calls.entry(method.to_owned()).or_insert(0) += 1;
            state.total_calls += 1;
            state
                .last_metadata
                .insert(method.to_owned(), metadata.clone());
            state.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fail = {
            let mut state = self.lock();
            if state.fail_next > 0 {
                state.fail_next -= 1;
                true
            } else {
                state.error_rate > 0.0 && rand::random::<f64>() < state.error_rate
            }
        };
        if fail {
            Err(self.injected_status(method))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_then_fails_next_then_recovers() {
        let knobs = Knobs::new();
        knobs.set_fail_with(Some(Code::Internal));
        knobs.fail_next(1);
        let mut md = MetadataMap::new();
        md.insert("x-request-id", "abc".parse().unwrap());
        let err = knobs.on_call("GetUser", &md).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(knobs.on_call("GetUser", &md).await.is_ok());
        assert_eq!(knobs.calls("GetUser"), 2);
        assert_eq!(knobs.calls("ListUsers"), 0);
        assert_eq!(knobs.total_calls(), 2);
        let last = knobs.last_metadata("GetUser").unwrap();
        assert_eq!(last.get("x-request-id").unwrap(), "abc");
    }

    #[tokio::test]
    async fn error_rate_one_always_fails_and_reset_clears() {
        let knobs = Knobs::new();
        knobs.set_error_rate(1.0);
        let md = MetadataMap::new();
        let err = knobs.on_call("GetOrder", &md).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        knobs.reset();
        assert_eq!(knobs.total_calls(), 0);
        assert!(knobs.last_metadata("GetOrder").is_none());
        assert!(knobs.on_call("GetOrder", &md).await.is_ok());
    }

    #[test]
    fn error_rate_is_clamped() {
        let knobs = Knobs::new();
        knobs.set_error_rate(7.0);
        assert!(format!("{knobs:?}").contains("error_rate: 1.0"));
        knobs.set_error_rate(f64::NAN);
        assert!(format!("{knobs:?}").contains("error_rate: 0.0"));
    }
}
