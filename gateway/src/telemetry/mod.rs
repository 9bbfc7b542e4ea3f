//! Telemetry: what the gateway tells its operators. Metric names and labels live here
//! ([`metrics`]), recorded at the front door's stages (the ingress for every request, the
//! outbound chain for every backend call) and served on the admin listener.

pub mod metrics;

pub use metrics::Metrics;
