//! Resilience, proved by counting backend calls: circuit breakers fail fast and recover,
//! bulkheads overflow fast without touching other backends, retries happen only where allowed
//! and within budget, two endpoints survive one being killed, fallbacks answer when the
//! backend cannot, and readiness plus the admin view report it all.

use std::time::{Duration, Instant};

use portico_demo::{DemoCluster, DemoService};
use portico_e2e::{TestEnv, assert_error, demo_config};
use serde_json::{Value, json};
use tonic::Code;

/// The demo config with `resilience` (a YAML flow mapping) added to one backend.
fn with_resilience(demo: &DemoCluster, backend: DemoService, resilience: &str) -> String {
    let services = format!("    services: [{}]\n", backend.grpc_name());
    demo_config(demo, "admin: { listen: 127.0.0.1:0 }\n").replace(
        &services,
        &format!("{services}    resilience: {resilience}\n"),
    )
}

async fn start(backend: DemoService, resilience: &str) -> TestEnv {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let yaml = with_resilience(&demo, backend, resilience);
    TestEnv::start_config(demo, &yaml).await
}

/// A gateway whose `users` backend has two endpoints, `a` and `b` (each its own demo users
/// server, returned with the env), with `resilience` on that backend.
async fn two_user_endpoints(
    resilience: &str,
) -> (
    TestEnv,
    portico_demo::RunningService,
    portico_demo::RunningService,
) {
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = portico_demo::spawn(DemoService::Users, any).await.unwrap();
    let b = portico_demo::spawn(DemoService::Users, any).await.unwrap();
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = with_resilience(&demo, DemoService::Users, resilience).replace(
        &format!("endpoints: [{}]", demo.users.endpoint()),
        &format!("endpoints: [{}, {}]", a.endpoint(), b.endpoint()),
    );
    (TestEnv::start_config(demo, &yaml).await, a, b)
}

/// The `/admin/backends` entry of one backend (on the admin listener).
async fn admin(env: &TestEnv, backend: &str) -> Value {
    let url = format!(
        "{}/admin/backends",
        env.admin.as_ref().expect("an admin listener")
    );
    let all = env.send(env.client.get(url)).await.json();
    all["backends"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["name"] == backend).cloned())
        .unwrap_or_else(|| panic!("no backend {backend} in {all}"))
}

#[tokio::test]
async fn an_open_breaker_fails_fast_without_calling_the_backend_and_half_open_recovers() {
    let open_for = Duration::from_millis(300);
    let env = start(
        DemoService::Users,
        "{ breaker: { consecutive_failures: 3, open_for: 300ms } }",
    )
    .await;
    let knobs = env.knobs(DemoService::Users);

    // Client errors never count.
    for _ in 0..5 {
        assert_eq!(env.get("/v1/users/4242").await.status, 404);
    }
    assert_eq!(admin(&env, "users").await["breaker"]["state"], "closed");
    knobs.reset();

    knobs.fail_next(3);
    for _ in 0..3 {
        assert_error(&env.get("/v1/users/1").await, 503, 14, "injected failure");
    }
    assert_eq!(knobs.calls("GetUser"), 3);
    assert_eq!(admin(&env, "users").await["breaker"]["state"], "open");

    let t0 = Instant::now();
    let r = env.get("/v1/users/1").await;
    let took = t0.elapsed();
    assert_error(&r, 503, 14, "circuit breaker is open");
    assert_eq!(r.header("retry-after"), "1");
    assert!(took < Duration::from_millis(100), "fails fast: {took:?}");
    assert_eq!(knobs.calls("GetUser"), 3, "the backend saw no call");
    // Other backends are not concerned.
    assert_eq!(env.get("/v1/products/p-1").await.status, 200);

    // Half-open: a failed probe opens the breaker again.
    tokio::time::sleep(open_for).await;
    knobs.fail_next(1);
    assert_error(&env.get("/v1/users/1").await, 503, 14, "injected failure");
    assert_eq!(knobs.calls("GetUser"), 4, "one probe went through");
    assert_error(&env.get("/v1/users/1").await, 503, 14, "circuit breaker");
    assert_eq!(knobs.calls("GetUser"), 4);

    // The backend healed: the next probe closes the breaker.
    tokio::time::sleep(open_for).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(knobs.calls("GetUser"), 5);
    assert_eq!(admin(&env, "users").await["breaker"]["state"], "closed");
    for _ in 0..3 {
        assert_eq!(env.get("/v1/users/2").await.status, 200);
    }
    assert_eq!(knobs.calls("GetUser"), 8);
}

#[tokio::test]
async fn the_error_ratio_trips_the_breaker() {
    let env = start(
        DemoService::Catalog,
        "{ breaker: { consecutive_failures: 0, min_requests: 4, error_ratio: 0.5, open_for: 10s } }",
    )
    .await;
    let knobs = env.knobs(DemoService::Catalog);
    knobs.set_fail_with(Some(Code::Internal));
    for i in 0..4 {
        if i % 2 == 1 {
            knobs.fail_next(1);
        }
        env.get("/v1/products/p-1").await;
    }
    assert_eq!(knobs.calls("GetProduct"), 4);
    let r = env.get("/v1/products/p-1").await;
    assert_error(&r, 503, 14, "circuit breaker is open");
    assert_eq!(r.header("retry-after"), "10");
    assert_eq!(knobs.calls("GetProduct"), 4);
}

#[tokio::test]
async fn a_slow_backends_bulkhead_overflows_fast_and_other_backends_are_unaffected() {
    let env = std::sync::Arc::new(
        start(
            DemoService::Users,
            "{ bulkhead: { max_concurrent: 2, max_queue: 0 } }",
        )
        .await,
    );
    env.knobs(DemoService::Users)
        .set_latency(Duration::from_millis(500));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { env.get("/v1/users/1").await.status })
        })
        .collect();
    // Wait until both slots are taken (a counter, not a sleep).
    let t0 = Instant::now();
    while admin(&env, "users").await["in_flight"] != 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "slots never taken");
        tokio::task::yield_now().await;
    }
    let overflow: Vec<_> = (0..4)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = env.get("/v1/users/2").await;
                (r, t.elapsed())
            })
        })
        .collect();
    let t = Instant::now();
    let other = env.get("/v1/products/p-1").await;
    assert_eq!(other.status, 200, "another backend is unaffected");
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    for h in overflow {
        let (r, took) = h.await.unwrap();
        assert_error(&r, 503, 14, "overloaded");
        assert!(took < Duration::from_millis(250), "rejected fast: {took:?}");
    }
    let bulkhead = &admin(&env, "users").await["bulkhead"];
    assert_eq!(bulkhead["max_concurrent"], 2);
    for h in slow {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 2);
}

#[tokio::test]
async fn retries_happen_only_where_allowed() {
    let env = start(
        DemoService::Users,
        "{ retry: { max_attempts: 3, initial_backoff: 5ms, max_backoff: 20ms, budget_min_per_second: 100 } }",
    )
    .await;
    let knobs = env.knobs(DemoService::Users);

    // GET (NO_SIDE_EFFECTS) on UNAVAILABLE: retried.
    knobs.fail_next(1);
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(knobs.calls("GetUser"), 2);

    // POST CreateUser (no idempotency level): not retried.
    knobs.fail_next(1);
    let r = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {"displayName": "Grace", "email": "grace@example.com"}}),
        )
        .await;
    assert_error(&r, 503, 14, "injected failure");
    assert_eq!(knobs.calls("CreateUser"), 1);

    // Other codes are not retried, even for a GET.
    knobs.set_fail_with(Some(Code::Internal));
    knobs.fail_next(1);
    assert_eq!(env.get("/v1/users/1").await.status, 500);
    assert_eq!(knobs.calls("GetUser"), 3);

    // At most max_attempts.
    knobs.set_fail_with(None);
    knobs.fail_next(5);
    assert_eq!(env.get("/v1/users/1").await.status, 503);
    assert_eq!(knobs.calls("GetUser"), 6);
}

#[tokio::test]
async fn retries_stay_within_the_budget_and_the_deadline() {
    let env = start(
        DemoService::Users,
        "{ retry: { max_attempts: 3, initial_backoff: 1ms, max_backoff: 1ms, budget_ratio: 0.5, budget_min_per_second: 0 } }",
    )
    .await;
    let knobs = env.knobs(DemoService::Users);
    // One call so far: 0.5 retries allowed, so none.
    knobs.fail_next(1);
    assert_eq!(env.get("/v1/users/1").await.status, 503);
    assert_eq!(knobs.calls("GetUser"), 1);
    // Four calls: two retries allowed.
    for _ in 0..2 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    knobs.fail_next(1);
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(knobs.calls("GetUser"), 5);

    // A retry never outlives the client's deadline: the first attempt takes 200ms of 250ms,
    // the retry is cut at the deadline.
    knobs.set_latency(Duration::from_millis(200));
    knobs.fail_next(1);
    let t0 = Instant::now();
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("grpc-timeout", "250m"),
        )
        .await;
    let took = t0.elapsed();
    assert_error(&r, 504, 4, "250ms");
    assert!(took < Duration::from_millis(450), "{took:?}");
}

#[tokio::test]
async fn with_two_endpoints_one_killed_mid_load_every_request_succeeds() {
    let (env, a, b) = two_user_endpoints(
        "{ retry: { max_attempts: 3, initial_backoff: 2ms, max_backoff: 10ms, budget_min_per_second: 1000 }, outlier: { consecutive_failures: 1, ejection_time: 30s } }",
    )
    .await;
    let env = std::sync::Arc::new(env);
    let (a_knobs, b_knobs) = (a.knobs.clone(), b.knobs.clone());
    a_knobs.set_latency(Duration::from_millis(5));
    b_knobs.set_latency(Duration::from_millis(5));

    let workers: Vec<_> = (0..4)
        .map(|w| {
            let env = env.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..40 {
                    let r = env
                        .get(&format!("/v1/users/{}", 1 + (w * 40 + i) % 25))
                        .await;
                    statuses.push((r.status, r.text));
                }
                statuses
            })
        })
        .collect();
    // Both endpoints serve; then one dies while the load runs.
    let t0 = Instant::now();
    while a_knobs.total_calls() < 10 || b_knobs.total_calls() < 10 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "load never reached both"
        );
        tokio::task::yield_now().await;
    }
    a.shutdown().await;
    let b_before = b_knobs.total_calls();
    for w in workers {
        for (status, text) in w.await.unwrap() {
            assert_eq!(status, 200, "{text}");
        }
    }
    assert!(b_knobs.total_calls() > b_before, "the survivor took over");
    let users = admin(&env, "users").await;
    let eps = users["endpoints"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2);
    assert!(
        eps.iter().any(|e| e["ejected"] == true),
        "the dead endpoint is ejected: {users}"
    );
    drop(b);
}

#[tokio::test]
async fn a_fallback_answers_when_the_backend_cannot_and_is_marked() {
    let env = start(
        DemoService::Catalog,
        r#"{ breaker: { enabled: false }, fallbacks: { demo.v1.CatalogService.GetProduct: { id: "p-0", title: "Temporarily unavailable" } } }"#,
    )
    .await;
    let knobs = env.knobs(DemoService::Catalog);
    let ok = env.get("/v1/products/p-1").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-portico-fallback"), "");

    knobs.fail_next(1);
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-portico-fallback"), "static");
    assert_eq!(r.json()["title"], "Temporarily unavailable");

    // A client error is the client's answer, not a reason for a fallback.
    let r = env.get("/v1/products/p-999").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn a_fallback_that_does_not_fit_its_method_is_a_load_error() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = with_resilience(
        &demo,
        DemoService::Catalog,
        "{ fallbacks: { demo.v1.CatalogService.GetProduct: { nope: 1 } } }",
    );
    let e = portico_e2e::build_snapshot(&yaml)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backends.catalog.resilience.fallbacks.demo.v1.CatalogService.GetProduct"),
        "{e}"
    );
    let yaml = with_resilience(
        &demo,
        DemoService::Catalog,
        "{ fallbacks: { demo.v1.UserService.GetUser: {} } }",
    );
    let e = portico_e2e::build_snapshot(&yaml)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not served by backend \"catalog\""), "{e}");
}

#[tokio::test]
async fn readiness_and_the_admin_view() {
    let env = start(
        DemoService::Orders,
        "{ health_check: { interval: 50ms, timeout: 1s } }",
    )
    .await;
    let r = env.get("/readyz").await;
    assert_eq!((r.status, r.text.as_str()), (200, "ready\n"));
    let orders = admin(&env, "orders").await;
    assert_eq!(orders["breaker"]["state"], "closed", "{orders}");
    assert_eq!(orders["in_flight"], 0);
    assert_eq!(orders["bulkhead"]["max_concurrent"], 256);
    let ep = &orders["endpoints"][0];
    assert_eq!(ep["address"], env.demo.orders.endpoint());
    assert_eq!(ep["healthy"], true);
    assert_eq!(ep["ejected"], false);
}

#[tokio::test]
async fn graphql_reports_an_open_circuit_and_fallbacks_per_field() {
    let env = start(
        DemoService::Catalog,
        "{ breaker: { consecutive_failures: 1, open_for: 10s } }",
    )
    .await;
    let knobs = env.knobs(DemoService::Catalog);
    knobs.fail_next(1);
    let q = r#"{ user(id: "1") { displayName } product(id: "p-1") { title } }"#;
    let r = env.graphql(q, json!({})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{r}");
    let calls = knobs.total_calls();
    let r = env.graphql(q, json!({})).await;
    assert_eq!(r["data"]["user"]["displayName"], "Ada Lovelace", "{r}");
    assert_eq!(r["data"]["product"], Value::Null);
    let e = &r["errors"][0];
    assert_eq!(e["extensions"]["code"], "CIRCUIT_OPEN", "{e}");
    assert!(e["extensions"]["retryAfter"].as_u64().unwrap() >= 1, "{e}");
    assert_eq!(
        knobs.total_calls(),
        calls,
        "an open circuit never reaches the backend"
    );

    let env = start(
        DemoService::Catalog,
        r#"{ breaker: { enabled: false }, fallbacks: { demo.v1.CatalogService.GetProduct: { id: "p-0", title: "Temporarily unavailable" } } }"#,
    )
    .await;
    env.knobs(DemoService::Catalog).fail_next(1);
    let r = env
        .graphql(r#"{ product(id: "p-1") { title } }"#, json!({}))
        .await;
    assert_eq!(
        r["data"]["product"]["title"], "Temporarily unavailable",
        "{r}"
    );
    assert_eq!(
        r["extensions"]["fallbacks"],
        json!(["demo.v1.CatalogService.GetProduct"]),
        "{r}"
    );
}

#[tokio::test]
async fn active_health_checks_take_a_sick_endpoint_out_and_put_it_back() {
    let (env, a, b) = two_user_endpoints(
        "{ balance: round_robin, health_check: { interval: 50ms, timeout: 1s } }",
    )
    .await;
    let healthy = |users: &Value| -> Vec<bool> {
        users["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["healthy"] == true)
            .collect()
    };
    // Waits (bounded) until the admin view shows the expected health of both endpoints.
    async fn wait_for(env: &TestEnv, want: [bool; 2], healthy: impl Fn(&Value) -> Vec<bool>) {
        let t0 = Instant::now();
        loop {
            let users = admin(env, "users").await;
            if healthy(&users) == want {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "health never became {want:?}: {users}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_for(&env, [true, true], healthy).await;

    b.knobs.set_serving(false).await;
    wait_for(&env, [true, false], healthy).await;
    let (a0, b0) = (a.knobs.total_calls(), b.knobs.total_calls());
    for _ in 0..10 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    assert_eq!(
        a.knobs.total_calls() - a0,
        10,
        "all calls went to the healthy endpoint"
    );
    assert_eq!(
        b.knobs.total_calls(),
        b0,
        "the NOT_SERVING endpoint got none"
    );

    b.knobs.set_serving(true).await;
    wait_for(&env, [true, true], healthy).await;
    for _ in 0..10 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    assert!(
        b.knobs.total_calls() > b0,
        "the healed endpoint is back in rotation"
    );
}
