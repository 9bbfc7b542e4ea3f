//! Choosing an endpoint: power of two choices on calls in flight, or round robin, over the
//! healthy, non-ejected endpoints.
//!
//! Preference order: healthy, not ejected and not the endpoint to avoid; then healthy and not
//! ejected; then any endpoint but the one to avoid; then any endpoint. So an attempt is never
//! refused for lack of a healthy endpoint: when all are sick, all are tried ("panic mode").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::endpoints::Endpoint;
use crate::config::BalancePolicy;

/// Preference levels, strictest first.
const LEVELS: usize = 4;

fn eligible(ep: &Arc<Endpoint>, level: usize, avoid: Option<&Arc<Endpoint>>, now_ms: u64) -> bool {
    let avoided = avoid.is_some_and(|a| Arc::ptr_eq(a, ep));
    let well = ep.is_healthy() && ep.ejected_until_ms() <= now_ms;
    match level {
        0 => well && !avoided,
        1 => well,
        2 => !avoided,
        _ => true,
    }
}

fn scan(
    list: &[Arc<Endpoint>],
    start: usize,
    avoid: Option<&Arc<Endpoint>>,
    now_ms: u64,
    from_level: usize,
) -> Option<Arc<Endpoint>> {
    let n = list.len();
    (from_level..LEVELS).find_map(|level| {
        (0..n)
            .map(|k| &list[(start + k) % n])
            .find(|ep| eligible(ep, level, avoid, now_ms))
            .cloned()
    })
}

/// Picks an endpoint from `list` (`None` only when it is empty).
pub(crate) fn pick(
    list: &[Arc<Endpoint>],
    policy: BalancePolicy,
    rr: &AtomicUsize,
    avoid: Option<&Arc<Endpoint>>,
    now_ms: u64,
) -> Option<Arc<Endpoint>> {
    let n = list.len();
    match n {
        0 => None,
        1 => list.first().cloned(),
        _ => match policy {
            BalancePolicy::RoundRobin => scan(
                list,
                rr.fetch_add(1, Ordering::Relaxed) % n,
                avoid,
                now_ms,
                0,
            ),
            BalancePolicy::P2c => {
                let i = rand::random_range(0..n);
                let j = (i + 1 + rand::random_range(0..n - 1)) % n;
                let (a, b) = (&list[i], &list[j]);
                match (eligible(a, 0, avoid, now_ms), eligible(b, 0, avoid, now_ms)) {
                    (true, true) if b.in_flight() < a.in_flight() => Some(b.clone()),
                    (true, _) => Some(a.clone()),
                    (false, true) => Some(b.clone()),
                    (false, false) => scan(list, i, avoid, now_ms, 0),
                }
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use crate::resilience::endpoints::EndpointSet;

    async fn set(n: usize, policy: &str) -> Arc<EndpointSet> {
        let eps: Vec<String> = (1..=n).map(|p| format!("http://127.0.0.1:{p}")).collect();
        let cfg: BackendConfig = yaml_serde::from_str(&format!(
            "endpoints: [{}]\nresilience: {{ balance: {policy} }}",
            eps.join(", ")
        ))
        .unwrap();
        EndpointSet::new("b", &cfg).unwrap()
    }

    #[tokio::test]
    async fn round_robin_takes_turns_and_skips_the_unhealthy() {
        let s = set(3, "round_robin").await;
        let labels: Vec<String> = (0..3)
            .map(|_| s.pick(None).unwrap().label().to_string())
            .collect();
        assert_eq!(
            labels,
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:3"
            ]
        );
        s.endpoints()[1].set_healthy(false);
        for _ in 0..6 {
            assert_ne!(s.pick(None).unwrap().label(), "http://127.0.0.1:2");
        }
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded_and_avoids_the_failed_one() {
        let s = set(2, "p2c").await;
        let list = s.endpoints();
        let _busy: Vec<_> = (0..5).map(|_| list[0].start()).collect();
        for _ in 0..20 {
            assert!(Arc::ptr_eq(&s.pick(None).unwrap(), &list[1]));
        }
        for _ in 0..20 {
            assert!(Arc::ptr_eq(&s.pick(Some(&list[1])).unwrap(), &list[0]));
        }
    }

    #[tokio::test]
    async fn with_every_endpoint_sick_all_are_still_tried() {
        let s = set(2, "p2c").await;
        for ep in s.endpoints().iter() {
            ep.set_healthy(false);
        }
        let list = s.endpoints();
        assert!(Arc::ptr_eq(&s.pick(Some(&list[0])).unwrap(), &list[1]));
        let single = set(1, "p2c").await;
        single.endpoints()[0].set_healthy(false);
        assert!(single.pick(None).is_some());
    }
}
