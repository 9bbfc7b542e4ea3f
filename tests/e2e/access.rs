//! Where requests may come from: IP allow and deny lists (listener, method, operation), the
//! client address behind trusted proxies (and a spoofed `X-Forwarded-For` ignored), and CORS
//! for browsers (preflights answered at the edge, headers on every answer).

use portico_demo::DemoService;
use portico_e2e::{TestEnv, assert_error};
use serde_json::json;

#[tokio::test]
async fn the_listener_lists_keep_addresses_out_but_not_health_checks() {
    let env = TestEnv::start_with("access: { allow: [10.0.0.0/8] }\n").await;
    let r = env.get("/v1/users/1").await;
    assert_error(&r, 403, 7, "not open to requests from this address");
    let g = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": r#"{ user(id: "1") { id } }"#}),
        )
        .await;
    assert_eq!(g.status, 403);
    assert_eq!(
        g.json()["errors"][0]["extensions"]["code"],
        "PERMISSION_DENIED"
    );
    assert_eq!(env.get("/healthz").await.status, 200);
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);

    let env =
        TestEnv::start_with("access: { allow: [127.0.0.0/8, \"::1\"], deny: [127.0.0.1] }\n").await;
    assert_eq!(
        env.get("/v1/users/1").await.status,
        403,
        "deny wins over allow"
    );
    let env = TestEnv::start_with("access: { allow: [127.0.0.0/8, \"::1/128\"] }\n").await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let lists = "access: { deny: [203.0.113.0/24] }\n";
    // The gateway's peer (127.0.0.1) is a trusted proxy: the header names the client.
    let env = TestEnv::start_with(&format!("trusted_proxies: [127.0.0.1/32]\n{lists}")).await;
    let from = |ip: &'static str| {
        env.client
            .get(env.url("/v1/users/1"))
            .header("x-forwarded-for", ip)
    };
    assert_eq!(env.send(from("203.0.113.9")).await.status, 403);
    assert_eq!(env.send(from("198.51.100.7")).await.status, 200);
    // A client prepending a spoofed address does not get past the proxy's own entry.
    assert_eq!(
        env.send(from("198.51.100.7, 203.0.113.9")).await.status,
        403
    );
    let fwd = env
        .client
        .get(env.url("/v1/users/1"))
        .header("forwarded", "for=203.0.113.9;proto=https");
    assert_eq!(env.send(fwd).await.status, 403, "Forwarded is read too");

    // Not trusted: the header is ignored, whatever it says.
    let env = TestEnv::start_with(lists).await;
    let spoofed = env
        .client
        .get(env.url("/v1/users/1"))
        .header("x-forwarded-for", "203.0.113.9");
    assert_eq!(env.send(spoofed).await.status, 200);
    // ...and rate limits by address go by the peer.
    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: per-ip, key: ip, limit: 1, per: 1h }\n",
    )
    .await;
    let spoof = |ip: &'static str| {
        env.client
            .get(env.url("/v1/users/1"))
            .header("x-forwarded-for", ip)
    };
    assert_eq!(env.send(spoof("192.0.2.1")).await.status, 200);
    assert_eq!(
        env.send(spoof("192.0.2.2")).await.status,
        429,
        "a new fake address is no new allowance"
    );
}

#[tokio::test]
async fn method_and_operation_lists_apply_on_every_door() {
    let env = TestEnv::start_with(
        "access:\n  methods: { demo.v1.UserService.GetUser: { allow: [10.0.0.0/8] } }\n  operations: { Admin: { deny: [127.0.0.0/8] } }\n",
    )
    .await;
    assert_error(
        &env.get("/v1/users/1").await,
        403,
        7,
        "demo.v1.UserService.GetUser",
    );
    assert_eq!(env.get("/v1/products/p-1").await.status, 200);
    let q = json!({"query": r#"{ user(id: "1") { id } product(id: "p-1") { id } }"#});
    let g = env.json("POST", "/graphql", &q).await.json();
    assert_eq!(g["data"]["product"]["id"], "p-1", "{g}");
    assert_eq!(
        g["errors"][0]["extensions"]["code"], "PERMISSION_DENIED",
        "{g}"
    );
    assert_eq!(g["errors"][0]["path"][0], "user", "{g}");
    let admin = json!({"query": r#"query Admin { product(id: "p-1") { id } }"#});
    let r = env.json("POST", "/graphql", &admin).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let other = json!({"query": r#"query Home { product(id: "p-1") { id } }"#});
    assert_eq!(env.json("POST", "/graphql", &other).await.status, 200);

    // A route list holds for that route only: the method's other binding and door stay open.
    let env = TestEnv::start_with(
        "access:\n  routes: { \"GET /v1/people/{id}\": { allow: [10.0.0.0/8] } }\n",
    )
    .await;
    assert_error(
        &env.get("/v1/people/1").await,
        403,
        7,
        "GET /v1/people/{id}",
    );
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    let g = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": r#"{ user(id: "1") { id } }"#}),
        )
        .await;
    assert_eq!(g.json()["data"]["user"]["id"], "1");
}

#[tokio::test]
async fn access_mistakes_name_the_key() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    for (extra, key) in [
        ("access: { allow: [10.0.0.1/8] }\n", "10.0.0.0/8"),
        ("access: { deny: [localhost] }\n", "not an address"),
        ("trusted_proxies: [\"10.0.0.0/40\"]\n", "trusted_proxies"),
        (
            "access:\n  methods: { demo.v1.UserService.GetUsr: { allow: [10.0.0.0/8] } }\n",
            "access.methods.demo.v1.UserService.GetUsr",
        ),
        (
            "access:\n  routes: { \"GET /v1/persons/{id}\": { allow: [10.0.0.0/8] } }\n",
            "access.routes.GET /v1/persons/{id}",
        ),
        (
            "cors: { origins: [\"*\"], credentials: true }\n",
            "cors.origins[0]",
        ),
        (
            "cors: { origins: [\"app.example.com\"] }\n",
            "cors.origins[0]",
        ),
    ] {
        let yaml = portico_e2e::demo_config(&demo, extra);
        let e = portico_e2e::build_snapshot(&yaml)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: {e}");
    }
}

const CORS: &str = "cors:\n  origins: [\"https://app.example.com\", \"https://*.example.com\"]\n  credentials: true\n  max_age: 10m\nrate_limits:\n  rules:\n    - { name: per-ip, key: ip, limit: 1, per: 1h }\n";

fn preflight(env: &TestEnv, origin: &str) -> reqwest::RequestBuilder {
    env.client
        .request(reqwest::Method::OPTIONS, env.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
}

#[tokio::test]
async fn cors_preflights_are_answered_at_the_edge() {
    let env = TestEnv::start_with(CORS).await;
    for origin in ["https://app.example.com", "https://a.b.example.com"] {
        let r = env.send(preflight(&env, origin)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("access-control-allow-origin"), origin);
        assert_eq!(r.header("access-control-allow-credentials"), "true");
        assert_eq!(r.header("access-control-max-age"), "600");
        assert!(r.header("access-control-allow-methods").contains("POST"));
        let allowed = r.header("access-control-allow-headers");
        assert!(
            allowed.contains("content-type") && allowed.contains("authorization"),
            "{allowed}"
        );
    }
    for origin in [
        "https://example.com",
        "https://evil.test",
        "http://app.example.com",
    ] {
        let r = env.send(preflight(&env, origin)).await;
        assert_eq!(r.header("access-control-allow-origin"), "", "{origin}");
    }
    // Preflights reach no backend and are not counted by the rate limits.
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn cors_headers_are_on_answers_and_refusals() {
    let env = TestEnv::start_with(CORS).await;
    let get = || {
        env.client
            .get(env.url("/v1/users/1"))
            .header("origin", "https://app.example.com")
    };
    let r = env.send(get()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    let exposed = r.header("access-control-expose-headers");
    assert!(
        exposed.contains("x-request-id") && exposed.contains("ratelimit"),
        "{exposed}"
    );
    assert!(r.header("vary").contains("origin"), "{:?}", r.headers);
    // A page can read its 429.
    let r = env.send(get()).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    // Without the section, no CORS header at all.
    let plain = TestEnv::start().await;
    let r = plain
        .send(
            plain
                .client
                .get(plain.url("/v1/users/1"))
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), "");
}
