//! Tests of the startup banner: what it names with and without GraphQL, routes and endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;

use super::banner;
use crate::snapshot::Snapshot;

/// A snapshot over the demo descriptors (no backend is called to build it); `extra` is appended
/// to the config.
async fn snapshot(extra: &str) -> Snapshot {
    let yaml = format!(
        "descriptors:\n  - file: descriptors/demo.binpb\nbackends:\n  users: {{ endpoints: [http://127.0.0.1:1], services: [demo.v1.UserService] }}\n{extra}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = crate::config::parse(&yaml, "test.yaml", &root).unwrap();
    Snapshot::build(cfg).await.unwrap()
}

fn local() -> SocketAddr {
    ([127, 0, 0, 1], 8080).into()
}

#[tokio::test]
async fn names_the_address_services_one_route_and_graphql() {
    let text = banner("web", &snapshot("").await, local());
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("bff-web serving 1 services, ")
            && lines[0].ends_with(" REST routes on http://127.0.0.1:8080"),
        "{text}"
    );
    assert_eq!(lines[1], "  demo.v1.UserService -> users", "{text}");
    let rest = lines
        .iter()
        .find(|l| l.starts_with("REST:"))
        .expect("an example route");
    assert!(
        rest.contains(" GET http://127.0.0.1:8080/v1/") && rest.contains("demo.v1.UserService."),
        "{text}"
    );
    assert!(
        lines.contains(&"GraphQL:   http://127.0.0.1:8080/graphql"),
        "{text}"
    );
    // Only `--demo` names a request against the demo data.
    assert!(!text.contains("curl"), "{text}");
    assert!(!text.contains("/v1/users/1"), "{text}");
}

#[tokio::test]
async fn follows_the_config_graphql_path_and_leaves_it_out_when_off() {
    let text = banner("web", &snapshot("graphql: { path: /gql }\n").await, local());
    assert!(
        text.contains("GraphQL:   http://127.0.0.1:8080/gql\n"),
        "{text}"
    );
    let text = banner(
        "web",
        &snapshot("graphql: { enabled: false }\n").await,
        local(),
    );
    assert!(!text.contains("GraphQL"), "{text}");
}

#[cfg(not(feature = "demo"))]
#[tokio::test]
async fn demo_without_the_feature_is_an_error_saying_so() {
    let e = super::start_demo().await.err().expect("no demo backends");
    assert!(e.contains("`demo` feature is off"), "{e}");
}
