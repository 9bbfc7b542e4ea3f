//! What operators see: the admin listener (apart from the client port, optionally behind a
//! token) and its Prometheus metrics, scraped after traffic through each door and parsed with
//! a real Prometheus text parser.

use portico_e2e::{Scrape, TestEnv, metric as count};
use serde_json::json;

async fn scrape(env: &TestEnv) -> Scrape {
    env.scrape().await
}

/// Every value of label `name` in `family`.
fn label_values(s: &Scrape, family: &str, name: &str) -> Vec<String> {
    s.families.get(family).map_or_else(Vec::new, |f| {
        f.iter_samples()
            .filter_map(|x| {
                x.get_labelset()
                    .ok()
                    .and_then(|l| l.get_label_value(name).map(str::to_owned))
            })
            .collect()
    })
}

const HTTP: &str = "http_server_request_duration_seconds";
const RPC: &str = "rpc_client_duration_seconds";

#[tokio::test]
async fn metrics_count_every_door_with_route_templates() {
    let env = TestEnv::start_example("bff-web").await;
    for id in ["1", "2", "3"] {
        assert_eq!(env.get(&format!("/v1/users/{id}")).await.status, 200);
    }
    assert_eq!(env.get("/v1/users/4242").await.status, 404);
    assert_eq!(env.get("/no/such/route/77").await.status, 404);
    let s = scrape(&env).await;
    let rest = |status: &'static str| {
        count(
            &s,
            HTTP,
            &[
                ("http_request_method", "GET"),
                ("http_route", "/v1/users/{id}"),
                ("http_response_status_code", status),
                ("portico_door", "rest"),
            ],
        )
    };
    assert_eq!(rest("200"), 3.0);
    assert_eq!(rest("404"), 1.0);
    assert_eq!(count(&s, HTTP, &[("http_route", "unmatched")]), 1.0);
    // Raw paths never become label values.
    let routes = label_values(&s, HTTP, "http_route");
    assert!(
        !routes
            .iter()
            .any(|r| r.contains("4242") || r.contains("77")),
        "a raw path leaked into a label: {routes:?}"
    );
    let get_user = |code: &'static str| {
        count(
            &s,
            RPC,
            &[
                ("rpc_system", "grpc"),
                ("rpc_service", "demo.v1.UserService"),
                ("rpc_method", "GetUser"),
                ("rpc_grpc_status_code", code),
                ("portico_backend", "users"),
            ],
        )
    };
    assert_eq!(get_user("0"), 3.0);
    assert_eq!(get_user("5"), 1.0, "NOT_FOUND is code 5");

    // GraphQL and an operation endpoint.
    let g = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": r#"{ user(id: "1") { displayName } }"#}),
        )
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(env.get("/api/home/1").await.status, 200);
    let s = scrape(&env).await;
    assert_eq!(
        count(
            &s,
            HTTP,
            &[
                ("http_route", "/graphql"),
                ("portico_door", "graphql"),
                ("http_request_method", "POST")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            &s,
            HTTP,
            &[
                ("http_route", "/api/home/{userId}"),
                ("portico_door", "endpoint")
            ]
        ),
        1.0
    );
    assert!(get_user_total(&s) >= 5.0);
    // Nothing in flight on the client port while the admin listener is scraped.
    assert_eq!(count(&s, "http_server_active_requests", &[]), 0.0);
}

fn get_user_total(s: &Scrape) -> f64 {
    count(s, RPC, &[("rpc_method", "GetUser")])
}

#[tokio::test]
async fn the_admin_listener_is_apart_and_can_need_a_token() {
    let env = TestEnv::start_with("admin: { listen: 127.0.0.1:0 }\n").await;
    // Not on the client port.
    assert_eq!(env.get("/metrics").await.status, 404);
    assert_eq!(env.get("/admin/backends").await.status, 404);
    // Health stays on both (load balancers probe the client port).
    assert_eq!(env.get("/healthz").await.status, 200);
    let admin = env.admin.clone().unwrap();
    let r = env
        .send(env.client.get(format!("{admin}/admin/backends")))
        .await;
    assert!(r.json()["backends"].is_array(), "{}", r.text);
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("accept", "application/openmetrics-text; version=1.0.0"),
        )
        .await;
    assert!(
        r.header("content-type")
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text.ends_with("# EOF\n"), "{}", r.text);

    let token_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
    let env = TestEnv::start_with(&format!(
        "admin: {{ listen: 127.0.0.1:0, token_sha256: {token_hash} }}\n"
    ))
    .await;
    let admin = env.admin.clone().unwrap();
    let r = env.send(env.client.get(format!("{admin}/metrics"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.header("www-authenticate").starts_with("Bearer"));
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("authorization", "Bearer nope"),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("authorization", "Bearer test"),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = env.send(env.client.get(format!("{admin}/healthz"))).await;
    assert_eq!(r.status, 200, "probes need no token");
}

#[tokio::test]
async fn admin_mistakes_name_the_key() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    for (extra, key) in [
        (
            "admin: { listen: 127.0.0.1:9901, token_sha256: secret }\n",
            "admin.token_sha256",
        ),
        ("admin: { port: 9901 }\n", "port"),
    ] {
        let yaml = portico_e2e::demo_config(&demo, extra);
        let e = portico_e2e::build_snapshot(&yaml)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: {e}");
    }
}
