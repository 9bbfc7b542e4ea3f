//! Telemetry: what the gateway tells its operators. Metric names and labels live here
//! ([`metrics`]), recorded at the front door's stages (the ingress for every request, the
//! outbound chain for every backend call) and served on the admin listener; the spans of
//! requests and backend calls are exported over OTLP ([`traces`]); the backends' state is read
//! at scrape time ([`backends`]); JSON log lines are written by [`json_log`].

pub mod backends;
pub mod json_log;
pub mod metrics;
pub mod traces;

pub use metrics::Metrics;
pub use traces::Tracer;
