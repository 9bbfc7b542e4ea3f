//! Active health checks: every endpoint of a backend is asked `grpc.health.v1.Health/Check`
//! every `interval`; SERVING within `timeout` is healthy, anything else unhealthy. Unhealthy
//! endpoints are skipped by the balancer until a check says SERVING again.

use std::sync::Weak;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::endpoints::{Endpoint, EndpointSet};
use crate::config::HealthCheckConfig;

/// Asks one endpoint; true when it answers SERVING in time.
pub async fn check(ep: &Endpoint, cfg: &HealthCheckConfig) -> bool {
    let mut client = HealthClient::new(ep.channel());
    let req = HealthCheckRequest {
        service: cfg.service.clone(),
    };
    match tokio::time::timeout(cfg.timeout.get(), client.check(req)).await {
        Ok(Ok(resp)) => resp.get_ref().status == ServingStatus::Serving as i32,
        _ => false,
    }
}

/// Checks every endpoint now and every `interval`, until the set is dropped.
pub(crate) async fn run(set: Weak<EndpointSet>, cfg: HealthCheckConfig) {
    loop {
        let Some(strong) = set.upgrade() else { return };
        let endpoints = strong.endpoints();
        let backend: std::sync::Arc<str> = strong.backend().into();
        drop(strong);
        let verdicts = futures::future::join_all(endpoints.iter().map(|ep| check(ep, &cfg))).await;
        for (ep, healthy) in endpoints.iter().zip(verdicts) {
            if ep.set_healthy(healthy) {
                if healthy {
                    tracing::info!(%backend, endpoint = %ep.label(), "endpoint healthy again");
                } else {
                    tracing::warn!(%backend, endpoint = %ep.label(), "endpoint failed its health check");
                }
            }
        }
        drop(endpoints);
        tokio::time::sleep(cfg.interval.get()).await;
    }
}
