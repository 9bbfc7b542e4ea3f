//! Network faults between the gateway and a backend, through a real fault-injecting proxy
//! (`portico_e2e::faults`): each fault (latency, a reset or a truncated response, a response
//! without trailers, a black hole, garbage, nothing listening) gets its status and
//! `google.rpc.Status` over REST and its field error over GraphQL, with no transport detail in
//! either; a broken reply is retried only for idempotent methods; the breaker opens under a
//! fault and then never connects until it closes again;
//! outlier ejection leaves only the healthy endpoint; a client that goes away (HTTP/1.1 or
//! HTTP/2, REST or GraphQL) takes its upstream call and every task of its request with it; hundreds of failures leave nothing
//! behind. Also the two faulty replies that need no proxy: one over `max_response_bytes`, and
//! one that is not its message type.

use std::net::SocketAddr;
use std::time::Duration;

use portico_demo::{DemoService, RunningService};
use portico_e2e::faults::{Counts, Fault, FaultProxy, raw_grpc_backend, wait_until};
use portico_e2e::{Reply, TestEnv, assert_error, demo_config};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// A query with a field from the `users` backend (behind the proxy) and one from `catalog`.
const QUERY: &str = r#"{ user(id: "1") { displayName } product(id: "p-1") { title } }"#;

/// Demo backends and a gateway whose `users` endpoint is `endpoint` (the other backends are
/// reached directly); `users` is added under the `users` backend (YAML lines indented by four),
/// `extra` at the top level.
async fn gateway_with_users_at(endpoint: &str, users: &str, extra: &str) -> TestEnv {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let services = "    services: [demo.v1.UserService]\n";
    let yaml = demo_config(&demo, extra)
        .replace(
            &format!("endpoints: [{}]", demo.users.endpoint()),
            &format!("endpoints: [{endpoint}]"),
        )
        .replace(services, &format!("{services}{users}"));
    TestEnv::start_config(demo, &yaml).await
}

/// A demo users backend of its own, a proxy in front of it with `fault` set, and a gateway
/// whose `users` endpoint is the proxy (with an admin listener).
async fn behind_proxy(fault: Fault, users: &str) -> (TestEnv, FaultProxy, RunningService) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let backend = portico_demo::spawn(DemoService::Users, any).await.unwrap();
    let proxy = FaultProxy::start(backend.addr).await;
    proxy.set_fault(fault);
    let env =
        gateway_with_users_at(&proxy.endpoint(), users, "admin: { listen: 127.0.0.1:0 }\n").await;
    (env, proxy, backend)
}

/// The `/admin/backends` entry of `users`.
async fn users_admin(env: &TestEnv) -> Value {
    let url = format!("{}/admin/backends", env.admin.as_ref().expect("admin"));
    let all = env.send(env.client.get(url)).await.json();
    all["backends"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["name"] == "users").cloned())
        .unwrap_or_else(|| panic!("no users backend in {all}"))
}

/// Asserts a REST failure as the README's table has it, with no transport detail in it.
fn assert_failure(r: &Reply, http: u16, code: i64, fragment: &str) {
    assert_error(r, http, code, fragment);
    for leak in [
        "h2",
        "http2",
        "protocol",
        "connection",
        "127.0.0.1",
        "trailer",
    ] {
        assert!(!r.text.contains(leak), "{leak:?} leaked: {}", r.text);
    }
}

/// Asserts the GraphQL answer to [`QUERY`]: `user` null with one error of `code`, `product`
/// still there.
fn assert_field_error(r: &Value, code: &str) {
    assert_eq!(r["data"]["product"]["title"], "Espresso Cup", "{r}");
    assert_eq!(r["data"]["user"], Value::Null, "{r}");
    let errors = r["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{r}");
    let e = &errors[0];
    assert_eq!(e["path"], json!(["user"]), "{e}");
    assert_eq!(e["extensions"]["code"], code, "{e}");
    assert_eq!(e["extensions"]["backend"], "users", "{e}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        !msg.contains("h2") && !msg.contains("protocol"),
        "transport detail in {e}"
    );
}

#[tokio::test]
async fn each_fault_gets_its_status_and_no_transport_detail_on_both_doors() {
    // (HTTP status, gRPC code, message fragment, GraphQL code); the method timeout is 300ms.
    const LATE: (u16, i64, &str, &str) =
        (504, 4, "did not answer within 300ms", "DEADLINE_EXCEEDED");
    const GONE: (u16, i64, &str, &str) = (503, 14, "is unavailable", "UNAVAILABLE");
    let cases = [
        (Fault::Latency(Duration::from_secs(2)), LATE),
        (Fault::BlackHole, LATE),
        (Fault::ResetMidResponse, GONE),
        (Fault::TruncateFrames, GONE),
        (Fault::NoTrailers, GONE),
        (Fault::Garbage, GONE),
    ];
    let runs = cases.map(|(fault, (http, code, fragment, gql))| async move {
        let (env, proxy, _backend) = behind_proxy(fault, "    timeout: 300ms\n").await;
        let r = env.get("/v1/users/1").await;
        assert_failure(&r, http, code, fragment);
        assert_field_error(&env.graphql(QUERY, json!({})).await, gql);
        // Both calls went through the proxy: the answers are the fault's.
        let counts = proxy.counts();
        assert_eq!(counts.calls, 2, "{fault:?}: {counts:?}");
        // Calls cut by the deadline are cancelled upstream (RST_STREAM).
        if http == 504 {
            proxy
                .wait_for("both calls cancelled", |c| c.cancels == 2)
                .await;
        }
    });
    futures::future::join_all(runs).await;

    // Nothing listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = gateway_with_users_at(&nowhere, "", "").await;
    assert_failure(&env.get("/v1/users/1").await, 503, 14, "is unavailable");
    assert_field_error(&env.graphql(QUERY, json!({})).await, "UNAVAILABLE");
}

#[tokio::test]
async fn latency_within_the_timeout_is_served_and_a_removed_fault_heals() {
    let (env, proxy, _backend) = behind_proxy(
        Fault::Latency(Duration::from_millis(20)),
        "    timeout: 5s\n",
    )
    .await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["displayName"], "Ada Lovelace");

    // A fault on the open connection, then none: the gateway connects again and is served.
    for fault in [
        Fault::ResetMidResponse,
        Fault::TruncateFrames,
        Fault::NoTrailers,
    ] {
        proxy.set_fault(fault);
        assert_failure(&env.get("/v1/users/1").await, 503, 14, "is unavailable");
        proxy.set_fault(Fault::None);
        let accepted = proxy.counts().accepted;
        let r = env.get("/v1/users/1").await;
        assert_eq!(r.status, 200, "after {fault:?}: {}", r.text);
        assert_eq!(
            proxy.counts().accepted,
            accepted + 1,
            "after {fault:?}, a new connection"
        );
    }
}

#[tokio::test]
async fn a_broken_reply_is_retried_only_for_idempotent_methods() {
    let (env, proxy, backend) = behind_proxy(
        Fault::None,
        "    resilience: { breaker: { enabled: false }, retry: { max_attempts: 3, initial_backoff: 1ms, max_backoff: 5ms, budget_min_per_second: 100 } }\n",
    )
    .await;
    for fault in [
        Fault::NoTrailers,
        Fault::ResetMidResponse,
        Fault::TruncateFrames,
    ] {
        proxy.set_fault(fault);
        // GetUser (NO_SIDE_EFFECTS): every attempt made.
        let calls = proxy.counts().calls;
        assert_failure(&env.get("/v1/users/1").await, 503, 14, "is unavailable");
        assert_eq!(proxy.counts().calls - calls, 3, "{fault:?}: GET");
        // CreateUser: once, since the backend may have done it (it did).
        let (calls, created) = (proxy.counts().calls, backend.knobs.calls("CreateUser"));
        let r = env
            .json(
                "POST",
                "/v1/users",
                &json!({"user": {"displayName": "Grace", "email": "grace@example.com"}}),
            )
            .await;
        assert_failure(&r, 503, 14, "is unavailable");
        assert_eq!(proxy.counts().calls - calls, 1, "{fault:?}: POST");
        assert_eq!(backend.knobs.calls("CreateUser") - created, 1);
    }
}

#[tokio::test]
async fn the_breaker_opens_under_a_fault_then_never_connects_until_it_closes() {
    let (env, proxy, backend) = behind_proxy(
        Fault::Garbage,
        "    resilience: { breaker: { consecutive_failures: 3, open_for: 1s } }\n",
    )
    .await;
    for _ in 0..3 {
        assert_failure(&env.get("/v1/users/1").await, 503, 14, "is unavailable");
    }
    // Each failed call had a connection of its own (garbage ends it).
    let failed = proxy.counts();
    assert_eq!((failed.accepted, failed.calls), (3, 3), "{failed:?}");
    assert_eq!(users_admin(&env).await["breaker"]["state"], "open");

    let r = env.get("/v1/users/1").await;
    assert_failure(&r, 503, 14, "circuit breaker is open");
    assert_eq!(r.header("retry-after"), "1");
    let r = env.graphql(QUERY, json!({})).await;
    assert_field_error(&r, "CIRCUIT_OPEN");
    let Counts {
        accepted, calls, ..
    } = proxy.counts();
    assert_eq!(
        (accepted, calls),
        (3, 3),
        "an open breaker neither connects nor calls"
    );

    // The fault is gone: once `open_for` has passed, one probe goes through and closes it.
    proxy.set_fault(Fault::None);
    let mut refused = 0;
    wait_until("the breaker to let a probe through", async || {
        let r = env.get("/v1/users/1").await;
        if r.status == 200 {
            return true;
        }
        assert_failure(&r, 503, 14, "circuit breaker is open");
        refused += 1;
        false
    })
    .await;
    assert_eq!(
        proxy.counts().calls,
        4,
        "the {refused} calls refused never reached the proxy: the probe was the 4th call"
    );
    assert_eq!(users_admin(&env).await["breaker"]["state"], "closed");
    for _ in 0..3 {
        assert_eq!(env.get("/v1/users/2").await.status, 200);
    }
    assert_eq!(proxy.counts().calls, 7);
    assert_eq!(backend.knobs.calls("GetUser"), 4);
}

#[tokio::test]
async fn outlier_ejection_leaves_only_the_healthy_endpoint() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sick = portico_demo::spawn(DemoService::Users, any).await.unwrap();
    let healthy = portico_demo::spawn(DemoService::Users, any).await.unwrap();
    let proxy = FaultProxy::start(sick.addr).await;
    proxy.set_fault(Fault::Garbage);
    let env = gateway_with_users_at(
        &format!("{}, {}", proxy.endpoint(), healthy.endpoint()),
        "    resilience: { balance: round_robin, breaker: { enabled: false }, outlier: { consecutive_failures: 2, ejection_time: 30s } }\n",
        "admin: { listen: 127.0.0.1:0 }\n",
    )
    .await;
    // Round robin: the faulty endpoint gets every other call until its second failure.
    let mut failures = 0;
    for _ in 0..6 {
        let r = env.get("/v1/users/1").await;
        if r.status != 200 {
            assert_failure(&r, 503, 14, "is unavailable");
            failures += 1;
        }
    }
    assert_eq!(failures, 2);
    assert_eq!(proxy.counts().calls, 2);
    let eps = users_admin(&env).await["endpoints"].clone();
    let ejected: Vec<(String, bool)> = eps
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["address"].as_str().unwrap_or_default().to_string(),
                e["ejected"] == true,
            )
        })
        .collect();
    assert_eq!(
        ejected,
        [(proxy.endpoint(), true), (healthy.endpoint(), false)],
        "{eps}"
    );

    let before = healthy.knobs.calls("GetUser");
    for _ in 0..10 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    assert_eq!(healthy.knobs.calls("GetUser") - before, 10);
    let c = proxy.counts();
    assert_eq!(
        (c.accepted, c.calls),
        (2, 2),
        "the ejected endpoint got nothing"
    );
    assert_eq!(sick.knobs.total_calls(), 0);
}

/// Sends a REST request over a raw HTTP/1.1 connection and returns the connection, without
/// reading the answer.
async fn raw_get(env: &TestEnv, path: &str, headers: &str) -> tokio::net::TcpStream {
    let addr = env.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    s
}

/// Tasks alive on this test's runtime (each `#[tokio::test]` has a runtime of its own: the
/// gateway, the demo backends and the proxy of this test are all there, and nothing else).
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test]
async fn a_client_that_goes_away_takes_its_upstream_call_and_tasks_with_it() {
    let (env, proxy, _backend) = behind_proxy(Fault::BlackHole, "    timeout: 60s\n").await;
    let open = || env.gateway.readiness().open_connections();

    // A first call, cut by its own deadline, opens the connection to the proxy: from then on
    // the tasks alive are the steady ones.
    let first = raw_get(&env, "/v1/users/1", "grpc-timeout: 50m\r\n").await;
    proxy
        .wait_for("the first call cancelled at its deadline", |c| {
            c.calls == 1 && c.cancels == 1
        })
        .await;
    drop(first);
    wait_until("the first client connection closed", async || open() == 0).await;
    // The admin view's connection (kept open by the client's pool) is a steady task too.
    assert_eq!(users_admin(&env).await["in_flight"], 0);
    let baseline = alive_tasks();

    // A call with a minute to go, black-holed; its client hangs up.
    let client = raw_get(&env, "/v1/users/1", "").await;
    proxy.wait_for("the second call", |c| c.calls == 2).await;
    assert_eq!(open(), 1);
    assert!(alive_tasks() > baseline, "the request's work is counted");
    assert_eq!(users_admin(&env).await["in_flight"], 1);
    drop(client);

    // The gateway notices, drops the request, and cancels the upstream stream (RST_STREAM),
    // long before the deadline; every task of the request ends.
    proxy
        .wait_for("the second call cancelled", |c| c.cancels == 2)
        .await;
    wait_until("the request's tasks to end", async || {
        open() == 0 && alive_tasks() == baseline
    })
    .await;
    assert_eq!(users_admin(&env).await["in_flight"], 0);
    assert_eq!(proxy.counts().open, 1, "the upstream connection is kept");
}

#[tokio::test]
async fn graphql_and_http2_clients_that_go_away_take_their_calls_with_them() {
    let (env, proxy, _backend) = behind_proxy(Fault::BlackHole, "    timeout: 60s\n").await;
    let addr = env.base.trim_start_matches("http://").to_string();

    // GraphQL over HTTP/1.1: the query's backend call, black-holed; the client hangs up.
    let body = json!({ "query": r#"{ user(id: "1") { displayName } }"# }).to_string();
    let mut graphql = tokio::net::TcpStream::connect(&addr).await.unwrap();
    graphql
        .write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    proxy.wait_for("the GraphQL call", |c| c.calls == 1).await;
    drop(graphql);
    proxy
        .wait_for("the GraphQL call cancelled", |c| c.cancels == 1)
        .await;
    wait_until("the GraphQL client's connection closed", async || {
        env.gateway.readiness().open_connections() == 0
    })
    .await;
    assert_eq!(users_admin(&env).await["in_flight"], 0);

    // An HTTP/2 client: its connection stays open (and its tasks alive) after the request it
    // gives up on; the stream's reset is what the gateway must act on.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let warm = h2
        .get(env.url("/graphql?query=%7B__typename%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    assert_eq!(warm.version(), reqwest::Version::HTTP_2);
    let baseline = alive_tasks();
    let call = tokio::spawn({
        let (h2, url) = (h2.clone(), env.url("/v1/users/1"));
        async move { h2.get(url).send().await }
    });
    proxy
        .wait_for("the HTTP/2 client's call", |c| c.calls == 2)
        .await;
    assert_eq!(users_admin(&env).await["in_flight"], 1);
    call.abort();
    proxy
        .wait_for("the HTTP/2 client's call cancelled", |c| c.cancels == 2)
        .await;
    wait_until("the request's tasks to end", async || {
        alive_tasks() == baseline
    })
    .await;
    assert_eq!(users_admin(&env).await["in_flight"], 0);
    assert_eq!(
        env.gateway.readiness().open_connections(),
        1,
        "the HTTP/2 connection stays"
    );
}

#[tokio::test]
async fn hundreds_of_failures_leave_nothing_behind() {
    let (env, proxy, _backend) = behind_proxy(
        Fault::ResetMidResponse,
        "    resilience: { breaker: { enabled: false } }\n",
    )
    .await;
    assert_failure(&env.get("/v1/users/1").await, 503, 14, "is unavailable");
    proxy
        .wait_for("the first connection closed", |c| c.open == 0)
        .await;
    let baseline = alive_tasks();
    for _ in 0..300 {
        assert_eq!(env.get("/v1/users/1").await.status, 503);
    }
    let c = proxy
        .wait_for("every connection closed", |c| c.open == 0)
        .await;
    assert_eq!((c.accepted, c.calls), (301, 301), "{c:?}");
    wait_until("the task count back to where it was", async || {
        alive_tasks() == baseline
    })
    .await;
    let users = users_admin(&env).await;
    assert_eq!(users["in_flight"], 0, "{users}");
    assert_eq!(users["bulkhead"]["in_flight"], 0, "{users}");
}

#[tokio::test]
async fn a_reply_over_the_size_limit_is_a_502_and_a_field_error() {
    let env = TestEnv::start_with("limits:\n  max_response_bytes: 1KiB\n").await;
    assert_eq!(
        env.get("/v1/users/1").await.status,
        200,
        "a small reply fits"
    );
    let r = env.get("/v1/users?pageSize=50").await;
    assert_failure(&r, 502, 13, "larger than 1024 bytes");
    let r = env
        .graphql(
            r#"{ users(pageSize: 50) { users { id } } product(id: "p-1") { title } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["product"]["title"], "Espresso Cup", "{r}");
    assert_eq!(r["data"]["users"], Value::Null, "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "RESPONSE_TOO_LARGE",
        "{r}"
    );
    assert_eq!(r["errors"][0]["path"], json!(["users"]), "{r}");
}

#[tokio::test]
async fn a_reply_of_another_message_type_is_a_500_and_a_field_error() {
    // Field 1 of demo.v1.User (`id`, an int64) sent length-delimited: the wrong wire type.
    let endpoint = raw_grpc_backend(b"\x0a\x02hi").await;
    let env = gateway_with_users_at(&endpoint, "", "").await;
    let r = env.get("/v1/users/1").await;
    assert_failure(&r, 500, 13, "not a valid demo.v1.User");
    let r = env.graphql(QUERY, json!({})).await;
    assert_field_error(&r, "INTERNAL");
}
