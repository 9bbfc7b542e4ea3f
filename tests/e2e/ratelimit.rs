//! Rate limits and quotas end to end: each kind of key, the `RateLimit` headers, rules on
//! methods (every door), on operations and on GraphQL cost, API-key plans, limits shared by
//! two gateways through a Redis of the test's own, and that Redis failing (refused, frozen)
//! under `on_error: allow`, `deny` and the in-process fallback.

use std::time::{Duration, Instant};

use portico_e2e::{RedisServer, Reply, TestEnv, assert_error};
use serde_json::{Value, json};
use sha2::Digest;

fn sha256(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// API keys `key-a` (partner-a, plan gold) and `key-b` (partner-b, no plan), everyone may call.
fn keys() -> String {
    format!(
        "auth:\n  api_keys:\n    header: x-api-key\n    keys:\n      - {{ id: partner-a, sha256: {}, plan: gold }}\n      - {{ id: partner-b, sha256: {} }}\nauthorization: {{ default: anonymous }}\n",
        sha256("key-a"),
        sha256("key-b")
    )
}

async fn get_as(env: &TestEnv, path: &str, key: Option<&str>) -> Reply {
    let mut req = env.client.get(env.url(path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    env.send(req).await
}

/// The `r=` of limit `name` in a `RateLimit` header.
fn remaining(reply: &Reply, name: &str) -> u64 {
    let header = reply.header("ratelimit");
    header
        .split(", ")
        .find(|item| item.starts_with(&format!("\"{name}\"")))
        .and_then(|item| item.split(';').find_map(|p| p.strip_prefix("r=")))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in RateLimit: {header:?}"))
}

#[tokio::test]
async fn a_limit_per_caller_counts_each_caller_and_says_where_it_stands() {
    let env = TestEnv::start_with(&format!(
        "{}rate_limits:\n  rules:\n    - {{ name: per-caller, key: subject, limit: 3, per: 1h }}\n",
        keys()
    ))
    .await;
    for left in [2, 1, 0] {
        let r = get_as(&env, "/v1/users/1", Some("key-a")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("ratelimit-policy"), "\"per-caller\";q=3;w=3600");
        assert_eq!(remaining(&r, "per-caller"), left);
    }
    let r = get_as(&env, "/v1/users/1", Some("key-a")).await;
    assert_error(&r, 429, 8, "rate limit \"per-caller\" reached (3 per 1h)");
    let retry: u64 = r.header("retry-after").parse().unwrap();
    // One request in 20 minutes comes back at the sustained rate of 3 per hour.
    assert!((1195..=1200).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("ratelimit-policy"), "\"per-caller\";q=3;w=3600");
    assert_eq!(remaining(&r, "per-caller"), 0);
    // Another caller has its own count; an anonymous caller is counted by its address.
    assert_eq!(get_as(&env, "/v1/users/1", Some("key-b")).await.status, 200);
    for _ in 0..3 {
        assert_eq!(get_as(&env, "/v1/users/1", None).await.status, 200);
    }
    assert_eq!(get_as(&env, "/v1/users/1", None).await.status, 429);
    // The refused calls never reached the backend.
    assert_eq!(
        env.knobs(portico_demo::DemoService::Users).calls("GetUser"),
        7
    );
}

#[tokio::test]
async fn graphql_refusals_are_rate_limited_errors_with_the_retry_time() {
    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: per-ip, key: ip, limit: 1, per: 1h }\n",
    )
    .await;
    let q = json!({"query": r#"{ user(id: "1") { displayName } }"#});
    let ok = env.json("POST", "/graphql", &q).await;
    assert_eq!(ok.status, 200);
    assert_eq!(remaining(&ok, "per-ip"), 0);
    let refused = env.json("POST", "/graphql", &q).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    let body = refused.json();
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(err["extensions"]["retryAfter"], 3600, "{body}");
    assert!(!refused.header("retry-after").is_empty());
}

#[tokio::test]
async fn a_method_rule_counts_calls_from_every_door_and_spares_the_rest_of_a_query() {
    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: search, key: ip, methods: [demo.v1.CatalogService.SearchProducts], limit: 2, per: 1h }\n",
    )
    .await;
    let search = json!({"query": "shoe"});
    let r = env.json("POST", "/v1/products:search", &search).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(remaining(&r, "search"), 1);
    // Other methods are not counted (and carry no header of a rule they are not under).
    let other = env.get("/v1/products/p-1").await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("ratelimit"), "");
    // The GraphQL field calling the same method takes the last one...
    let q = json!({"query": r#"{ searchProducts(query: "shoe") { products { id } } user(id: "1") { displayName } }"#});
    let g = env.json("POST", "/graphql", &q).await.json();
    assert!(g["data"]["searchProducts"]["products"].is_array(), "{g}");
    // ...and the next query gets a field error there, while its other field is served.
    let g = env.json("POST", "/graphql", &q).await.json();
    assert_eq!(g["data"]["searchProducts"], Value::Null, "{g}");
    assert_eq!(g["data"]["user"]["displayName"], "Ada Lovelace", "{g}");
    assert_eq!(g["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{g}");
    assert_eq!(g["errors"][0]["path"][0], "searchProducts", "{g}");
    let r = env.json("POST", "/v1/products:search", &search).await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn keys_by_header_route_and_operation() {
    let env = TestEnv::start_with(
        r#"rate_limits:
  rules:
    - { name: tenant, key: "header:x-tenant", limit: 1, per: 1h }
    - { name: route, key: route, limit: 1, per: 1h }
    - { name: op, key: [ip, operation], limit: 1, per: 1h }
"#,
    )
    .await;
    // By header: only requests carrying it, one count per value.
    let with = |t: &'static str| env.client.get(env.url("/v1/users/1")).header("x-tenant", t);
    // The route rule counts GET /v1/users/{id} once: the tenant requests use another route.
    assert_eq!(env.send(with("acme")).await.status, 200);
    assert_eq!(env.send(with("acme")).await.status, 429);
    assert_eq!(
        env.send(with("globex")).await.status,
        429,
        "the route's one call is spent"
    );
    let r = env.get("/v1/people/1").await;
    assert_eq!(
        r.status, 200,
        "another route of the same method has its own count"
    );
    assert_eq!(env.get("/v1/people/1").await.status, 429);
    // By operation name: each named operation its own count; anonymous ones not counted.
    let op =
        |name: &str| json!({"query": format!(r#"query {name} {{ product(id: "p-1") {{ id }} }}"#)});
    assert_eq!(env.json("POST", "/graphql", &op("A")).await.status, 200);
    assert_eq!(env.json("POST", "/graphql", &op("A")).await.status, 429);
    assert_eq!(env.json("POST", "/graphql", &op("B")).await.status, 200);
    let anon = json!({"query": r#"{ product(id: "p-1") { id } }"#});
    assert_eq!(env.json("POST", "/graphql", &anon).await.status, 200);
    assert_eq!(env.json("POST", "/graphql", &anon).await.status, 200);
}

#[tokio::test]
async fn graphql_operations_are_charged_their_cost() {
    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: budget, key: ip, limit: 1000, per: 1h, cost: graphql }\n",
    )
    .await;
    let small = json!({"query": r#"{ product(id: "p-1") { id } }"#});
    let big =
        json!({"query": r#"{ users(pageSize: 20) { users { id displayName orders { id } } } }"#});
    let r1 = env.json("POST", "/graphql", &small).await;
    let small_cost = 1000 - remaining(&r1, "budget");
    let r2 = env.json("POST", "/graphql", &big).await;
    let big_cost = 1000 - small_cost - remaining(&r2, "budget");
    assert!(
        big_cost > small_cost && big_cost > 20,
        "costs {small_cost}, {big_cost}"
    );
    // REST requests through the same rule cost 1.
    let before = remaining(&r2, "budget");
    let r3 = env.get("/v1/users/1").await;
    assert_eq!(remaining(&r3, "budget"), before - 1);
}

#[tokio::test]
async fn plans_carry_their_own_limits() {
    let env = TestEnv::start_with(&format!(
        "{}rate_limits:\n  plans:\n    gold:\n      - {{ limit: 2, per: 1m }}\n      - {{ name: gold-daily, limit: 1000, per: 1d }}\n",
        keys()
    ))
    .await;
    let r = get_as(&env, "/v1/users/1", Some("key-a")).await;
    assert_eq!(
        r.header("ratelimit-policy"),
        "\"gold-1m\";q=2;w=60, \"gold-daily\";q=1000;w=86400"
    );
    assert_eq!(remaining(&r, "gold-daily"), 999);
    assert_eq!(get_as(&env, "/v1/users/1", Some("key-a")).await.status, 200);
    let r = get_as(&env, "/v1/users/1", Some("key-a")).await;
    assert_error(&r, 429, 8, "gold-1m");
    // The strictest limit refused it, and the daily quota was not charged for the refusal.
    assert_eq!(remaining(&r, "gold-daily"), 998);
    // A key without a plan is not under the plan's limits.
    for _ in 0..3 {
        let r = get_as(&env, "/v1/users/1", Some("key-b")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit"), "");
    }
}

#[tokio::test]
async fn headers_under_the_limit_can_be_turned_off() {
    let env = TestEnv::start_with(
        "rate_limits:\n  headers: false\n  rules:\n    - { name: per-ip, key: ip, limit: 1, per: 1h }\n",
    )
    .await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit"), "");
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 429);
    assert!(
        r.header("ratelimit").contains("r=0"),
        "refusals always say why"
    );
}

#[tokio::test]
async fn a_reload_keeps_the_counts() {
    let yaml = "rate_limits:\n  rules:\n    - { name: per-ip, key: ip, limit: 2, per: 1h }\n";
    let env = TestEnv::start_with(yaml).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    let cfg = portico_e2e::demo_config(&env.demo, yaml);
    let snapshot = portico::snapshot::Snapshot::build_after(
        portico::config::parse(&cfg, "test.yaml", &portico_e2e::repo_root()).unwrap(),
        Some(&env.gateway.snapshot()),
    )
    .await
    .unwrap();
    env.gateway.swap(snapshot);
    assert_eq!(
        env.get("/v1/users/1").await.status,
        429,
        "a reload is no fresh allowance"
    );
}

#[tokio::test]
async fn rate_limit_mistakes_name_the_key() {
    let err = |extra: &'static str| async move {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .unwrap();
        let yaml = portico_e2e::demo_config(&demo, extra);
        portico_e2e::build_snapshot(&yaml)
            .await
            .unwrap_err()
            .to_string()
    };
    let e = err("rate_limits:\n  rules:\n    - { name: x, key: sub, limit: 1, per: 1s }\n").await;
    assert!(
        e.contains("rate_limits.rules[0].key") && e.contains("subject"),
        "{e}"
    );
    let e = err("rate_limits:\n  rules:\n    - { name: x, key: ip, limit: 0, per: 1s }\n").await;
    assert!(e.contains("rate_limits.rules[0].limit"), "{e}");
    let e = err("rate_limits:\n  rules:\n    - { name: x, key: ip, limit: 1, per: 1s, methods: [demo.v1.UserService.GetUsr] }\n").await;
    assert!(
        e.contains("rate_limits.rules[0].methods[0]") && e.contains("no exposed method"),
        "{e}"
    );
    let e = err("rate_limits:\n  store: redis\n  rules: []\n").await;
    assert!(e.contains("rate_limits.redis"), "{e}");
    let e = err("rate_limits:\n  rules:\n    - { name: x, key: plan, limit: 1, per: 1s }\n").await;
    assert!(
        e.contains("rate_limits.rules[0].key") && e.contains("auth"),
        "{e}"
    );
    let e =
        err("rate_limits:\n  rules:\n    - { name: x, key: ip, limit: 1, per: 1s, colour: red }\n")
            .await;
    assert!(e.contains("colour"), "{e}");
}

fn redis_limits(url: &str, extra: &str, limit: u64) -> String {
    format!(
        "admin: {{ listen: 127.0.0.1:0 }}\nrate_limits:\n  store: redis\n  redis: {{ url: \"{url}\", prefix: \"rl-test:\", timeout: 100ms{extra} }}\n  rules:\n    - {{ name: shared, key: global, limit: {limit}, per: 1h }}\n"
    )
}

#[tokio::test]
async fn two_gateways_sharing_redis_hold_one_limit() {
    let redis = RedisServer::start();
    let cfg = redis_limits(&redis.url(), "", 100);
    let a = TestEnv::start_with(&cfg).await;
    let b = TestEnv::start_with(&cfg).await;
    // 300 requests, alternating between the two replicas, 20 at a time.
    let mut passed = 0;
    for round in 0..15 {
        let sends = (0..20).map(|i| {
            let env = if (round + i) % 2 == 0 { &a } else { &b };
            env.get("/v1/users/1")
        });
        for r in futures::future::join_all(sends).await {
            match r.status {
                200 => passed += 1,
                429 => {}
                other => panic!("status {other}: {}", r.text),
            }
        }
    }
    assert_eq!(passed, 100, "exactly the limit passed across both replicas");
}

#[tokio::test]
async fn redis_going_away_lets_requests_through_without_waiting() {
    let mut redis = RedisServer::start();
    let env = TestEnv::start_with(&redis_limits(&redis.url(), ", on_error: allow", 2)).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(env.get("/v1/users/1").await.status, 429);
    // Frozen: connections stay open and nothing answers. No request waits for Redis past the
    // timeout (100ms); the bound below leaves room for a busy test machine, not for a hang.
    redis.pause();
    for _ in 0..5 {
        let start = Instant::now();
        let r = env.get("/v1/users/1").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            start.elapsed() < Duration::from_millis(1000),
            "took {:?}",
            start.elapsed()
        );
    }
    redis.resume();
    redis.stop();
    // Gone: connections refused.
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(env.get("/v1/users/1").await.status, 200);
        assert!(
            start.elapsed() < Duration::from_millis(1000),
            "took {:?}",
            start.elapsed()
        );
    }
    // Every decision Redis could not make is counted, and so are the ones it made.
    let s = env.scrape().await;
    let errors = portico_e2e::metric(
        &s,
        "portico_rate_limit_store_errors_total",
        &[("outcome", "allowed")],
    );
    assert_eq!(errors, 10.0);
    let m = |d: &str| {
        portico_e2e::metric(
            &s,
            "portico_rate_limit_decisions_total",
            &[("rule", "shared"), ("decision", d)],
        )
    };
    assert_eq!((m("allowed"), m("limited")), (2.0, 1.0));
}

#[tokio::test]
async fn redis_going_away_refuses_requests_when_told_to() {
    let mut redis = RedisServer::start();
    let env = TestEnv::start_with(&redis_limits(&redis.url(), ", on_error: deny", 100)).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    redis.stop();
    let r = env.get("/v1/users/1").await;
    assert_error(&r, 503, 14, "rate limiter cannot decide");
    let g = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": r#"{ user(id: "1") { id } }"#}),
        )
        .await;
    assert_eq!(g.status, 503, "{}", g.text);
    assert_eq!(g.json()["errors"][0]["extensions"]["code"], "UNAVAILABLE");
    assert_eq!(
        env.knobs(portico_demo::DemoService::Users).calls("GetUser"),
        1
    );
}

#[tokio::test]
async fn the_in_process_store_takes_over_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let env =
        TestEnv::start_with(&redis_limits(&redis.url(), ", fallback_to_memory: true", 3)).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    redis.stop();
    // The fallback counts from zero: three more, then refused.
    for _ in 0..3 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    assert_eq!(env.get("/v1/users/1").await.status, 429);
}

#[tokio::test]
async fn each_operation_on_a_websocket_is_counted() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: per-ip, key: ip, limit: 3, per: 1h }\n",
    )
    .await;
    // The upgrade is the first request.
    let mut ws = env.graphql_ws(None).await;
    let mut codes = Vec::new();
    for id in ["1", "2", "3"] {
        ws.send(Message::text(
            json!({"id": id, "type": "subscribe", "payload": {
                "query": r#"{ user(id: "1") { displayName } }"#
            }})
            .to_string(),
        ))
        .await
        .unwrap();
        let msg = portico_e2e::next_ws_json(&mut ws).await;
        codes.push(match msg["type"].as_str() {
            Some("next") => msg["payload"]["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("ok")
                .to_string(),
            Some("error") => msg["payload"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            _ => panic!("{msg}"),
        });
        if msg["type"] == "next" {
            assert_eq!(portico_e2e::next_ws_json(&mut ws).await["type"], "complete");
        }
    }
    assert_eq!(codes, ["ok", "ok", "RATE_LIMITED"]);
}
