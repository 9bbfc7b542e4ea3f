//! The backends' state as metrics, read at scrape time from the current snapshot's upstream
//! (a prometheus-client `Collector`): breaker states and transitions, bulkheads, endpoints by
//! health.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `portico_breaker_state` | gauge (1 for the current state, 0 for the others) | `portico_backend`, `rpc_method` (empty for a backend-wide breaker), `state` (`closed`, `open`, `half_open`) |
//! | `portico_breaker_transitions_total` | counter | `portico_backend`, `rpc_method`, `to` (the state entered) |
//! | `portico_bulkhead_in_flight` | gauge | `portico_backend` |
//! | `portico_bulkhead_queued` | gauge | `portico_backend` |
//! | `portico_backend_endpoints` | gauge | `portico_backend`, `state` (`healthy`, `unhealthy`, `ejected`) |
//!
//! Every series also has `portico_variant`: a split backend's variants each have their own
//! series; it is empty for other backends (which Prometheus reads as no label).

use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::resilience::BreakerState;
use crate::upstream::{Backend, Upstream};

/// Reads the state of the upstream it watches at every scrape.
#[derive(Debug, Default)]
pub struct BackendsCollector {
    upstream: RwLock<Option<Arc<Upstream>>>,
}

impl BackendsCollector {
    /// Reports the backends of `upstream` from now on (the snapshot just installed).
    pub fn watch(&self, upstream: Arc<Upstream>) {
        *self
            .upstream
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(upstream);
    }
}

/// The labels of a series of backend `b`: `portico_backend`, `portico_variant` (a split
/// backend's variant; empty for other backends), then `rest`.
fn with_variant<'a, const N: usize>(
    b: &'a Backend,
    rest: [(&'static str, &'a str); N],
) -> Vec<(&'static str, &'a str)> {
    let mut labels = vec![
        ("portico_backend", b.name()),
        ("portico_variant", b.variant().unwrap_or("")),
    ];
    labels.extend(rest);
    labels
}

const STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

impl Collector for BackendsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(upstream) = self
            .upstream
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return Ok(());
        };
        let backends = upstream.backends();
        let breakers: Vec<_> = backends.iter().map(|b| (*b, b.breakers())).collect();

        let mut e = encoder.encode_descriptor(
            "portico_breaker_state",
            "Circuit breaker state (1 for the current one)",
            None,
            MetricType::Gauge,
        )?;
        for (backend, list) in &breakers {
            for (method, breaker) in list {
                let current = breaker.state();
                for state in STATES {
                    let labels = with_variant(
                        backend,
                        [
                            ("rpc_method", method.as_deref().unwrap_or("")),
                            ("state", state.as_str()),
                        ],
                    );
                    ConstGauge::new(i64::from(state == current))
                        .encode(e.encode_family(&labels)?)?;
                }
            }
        }

        let mut e = encoder.encode_descriptor(
            "portico_breaker_transitions",
            "Circuit breaker transitions, by the state entered",
            None,
            MetricType::Counter,
        )?;
        for (backend, list) in &breakers {
            for (method, breaker) in list {
                for to in STATES {
                    let labels = with_variant(
                        backend,
                        [
                            ("rpc_method", method.as_deref().unwrap_or("")),
                            ("to", to.as_str()),
                        ],
                    );
                    ConstCounter::new(breaker.transitions_to(to))
                        .encode(e.encode_family(&labels)?)?;
                }
            }
        }

        let mut e = encoder.encode_descriptor(
            "portico_bulkhead_in_flight",
            "Calls holding a bulkhead slot",
            None,
            MetricType::Gauge,
        )?;
        for b in &backends {
            let labels = with_variant(b, []);
            let n = i64::try_from(b.bulkhead().in_flight()).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(e.encode_family(&labels)?)?;
        }
        let mut e = encoder.encode_descriptor(
            "portico_bulkhead_queued",
            "Calls waiting for a bulkhead slot",
            None,
            MetricType::Gauge,
        )?;
        for b in &backends {
            let labels = with_variant(b, []);
            let n = i64::try_from(b.bulkhead().queued()).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(e.encode_family(&labels)?)?;
        }

        let mut e = encoder.encode_descriptor(
            "portico_backend_endpoints",
            "Backend endpoints by state (ejected ones are not counted as healthy or unhealthy)",
            None,
            MetricType::Gauge,
        )?;
        for b in &backends {
            let set = b.endpoints();
            let (mut healthy, mut unhealthy, mut ejected) = (0i64, 0i64, 0i64);
            for ep in set.endpoints().iter() {
                if set.ejected_for(ep).is_some() {
                    ejected += 1;
                } else if ep.is_healthy() {
                    healthy += 1;
                } else {
                    unhealthy += 1;
                }
            }
            for (state, n) in [
                ("healthy", healthy),
                ("unhealthy", unhealthy),
                ("ejected", ejected),
            ] {
                let labels = with_variant(b, [("state", state)]);
                ConstGauge::new(n).encode(e.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
