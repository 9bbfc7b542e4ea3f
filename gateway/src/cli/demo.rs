//! `--demo` (feature `demo`): starts the bundled demo backends in-process for a BFF, with the
//! latency of `PORTICO_DEMO_LATENCY`, and names a request against their data in the banner.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::DemoBackends;

/// The environment variable that gives the demo backends a latency (e.g. `50ms`).
pub const LATENCY_ENV: &str = "PORTICO_DEMO_LATENCY";

/// The latency the `--demo` backends get from the `PORTICO_DEMO_LATENCY` environment
/// variable (e.g. `50ms`), for trying timeouts, bulkheads and drains by hand and in tests.
/// Unset or empty: none; invalid: an error naming the value.
pub fn latency_from_env() -> Result<Option<std::time::Duration>, String> {
    parse_latency(std::env::var(LATENCY_ENV).ok().as_deref())
}

/// Reads a `PORTICO_DEMO_LATENCY` value (`None`: the variable is unset).
fn parse_latency(value: Option<&str>) -> Result<Option<std::time::Duration>, String> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => humantime::parse_duration(v)
            .map(Some)
            .map_err(|e| format!("{LATENCY_ENV}={v:?}: {e} (write e.g. 50ms)")),
        _ => Ok(None),
    }
}

/// Starts the three demo backends on free ports of 127.0.0.1 (with `PORTICO_DEMO_LATENCY`
/// applied); their endpoints are keyed by the backend names of the example configs (`users`,
/// `orders`, `catalog`).
pub(super) async fn start() -> Result<DemoBackends, String> {
    let latency = latency_from_env()?;
    let cluster = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .map_err(|e| format!("cannot start the demo backends: {e}"))?;
    let services = [&cluster.users, &cluster.orders, &cluster.catalog];
    if let Some(latency) = latency {
        for s in services {
            s.knobs.set_latency(latency);
        }
    }
    let endpoints: BTreeMap<String, String> = services
        .into_iter()
        .map(|s| (s.service.to_string(), s.endpoint()))
        .collect();
    Ok(DemoBackends {
        _running: Box::new(cluster),
        endpoints,
    })
}

/// The banner's line for `--demo`: a request against the demo data, to paste.
pub(super) fn banner_hint(local: SocketAddr) -> String {
    format!("try: curl -s http://{local}/v1/users/1\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_read_from_the_variable() {
        assert_eq!(parse_latency(None), Ok(None));
        assert_eq!(parse_latency(Some("  ")), Ok(None));
        assert_eq!(
            parse_latency(Some(" 50ms ")),
            Ok(Some(std::time::Duration::from_millis(50)))
        );
        let e = parse_latency(Some("fast")).unwrap_err();
        assert!(e.starts_with("PORTICO_DEMO_LATENCY=\"fast\": "), "{e}");
    }

    #[test]
    fn the_hint_is_a_request_against_the_demo_data() {
        let hint = banner_hint(([127, 0, 0, 1], 8080).into());
        assert_eq!(hint, "try: curl -s http://127.0.0.1:8080/v1/users/1\n");
    }
}
