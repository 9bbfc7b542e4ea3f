//! The sample Grafana dashboard (`deploy/grafana/portico.json`) only charts metrics the
//! gateway registers: every metric name in a panel's query is checked against the metrics'
//! own exposition.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

/// Metric names in a PromQL expression: identifiers directly followed by `{`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'{' {
            continue;
        }
        let start = expr[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |p| p + 1);
        if start < i {
            names.push(expr[start..i].to_string());
        }
    }
    names
}

#[tokio::test]
async fn every_panel_queries_metrics_the_gateway_exposes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/portico.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // One sample in every family (an empty family is not exposed).
    use portico::telemetry::metrics::{LimitLabels, ReloadLabels, StoreErrorLabels};
    let metrics = portico::telemetry::Metrics::new();
    let ms = std::time::Duration::from_millis(1);
    metrics.http_request(&http::Method::GET, "/v1/users/{id}".into(), 200, "rest", ms);
    metrics.rpc_call("demo.v1.UserService", "GetUser", 0, "users", ms);
    metrics
        .reloads
        .get_or_create(&ReloadLabels { result: "ok" })
        .inc();
    let rule = LimitLabels {
        rule: "per-ip".into(),
        decision: "allowed",
    };
    metrics.rate_limit.get_or_create(&rule).inc();
    let outcome = StoreErrorLabels { outcome: "allowed" };
    metrics
        .rate_limit_store_errors
        .get_or_create(&outcome)
        .inc();
    metrics.retry("users", "demo.v1.UserService", "GetUser");
    metrics.graphql_operation("query", "Home".into(), true, &["NOT_FOUND".into()]);
    metrics.persisted_lookup("hit");
    // and a backend, whose state is read at scrape time
    let cfg: portico::config::BackendConfig =
        yaml_serde::from_str("{ endpoints: [\"http://127.0.0.1:9\"] }").unwrap();
    let backend = portico::upstream::Backend::new("users", &cfg).unwrap();
    let backends = std::collections::HashMap::from([("users".to_string(), backend)]);
    let upstream = portico::upstream::Upstream::new(backends, &Default::default(), 1 << 20);
    metrics.backends.watch(std::sync::Arc::new(upstream));
    let (_, exposition) = metrics.render(true);
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            for name in names {
                let base = ["_bucket", "_count", "_sum", "_total"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    exposition.contains(&format!("# TYPE {base} ")),
                    "panel {:?} charts {name}, which the gateway does not expose",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} metrics checked");
}

#[test]
fn metric_names_are_read_from_queries() {
    assert_eq!(
        metric_names(r#"sum by (le) (rate(a_b_bucket{job=~"$job"}[5m])) / sum(c:d{x="1"})"#),
        vec!["a_b_bucket", "c:d"]
    );
}
