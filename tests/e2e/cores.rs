//! One runtime per core (`runtime.mode: per_core`): every core serves the same gateway, each
//! calls the backends over its own connections, and a shutdown drains every core. (That the
//! connection limits count the cores together: `hardening`.)

use std::time::Duration;

use portico_demo::DemoService;
use portico_e2e::TestEnv;
use portico_e2e::faults::wait_until;
use serde_json::json;

/// A client that opens a new connection for every request (the kernel then spreads them over
/// the cores' listeners).
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// 64 GETs of one user, each on a new connection.
async fn sixty_four_gets(env: &TestEnv) {
    let client = fresh_connections();
    for _ in 0..64 {
        let r = client.get(env.url("/v1/users/1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn each_core_calls_the_backends_over_its_own_connection() {
    let env = TestEnv::start_cores("admin: { listen: 127.0.0.1:0 }\n", 2).await;
    // 64 connections over 2 listeners: all on one core has odds of 2^-63.
    sixty_four_gets(&env).await;
    let data = env
        .graphql(
            r#"{ user(id: "1") { displayName orders { id } } }"#,
            json!({}),
        )
        .await;
    assert!(data.get("errors").is_none(), "{data}");
    assert_eq!(data["data"]["user"]["displayName"], "Ada Lovelace");
    assert_eq!(
        env.knobs(DemoService::Users).connections(),
        2,
        "one connection per core, none from the control plane"
    );
    // The admin view counts the endpoint's channels: the control plane's and each core's.
    let url = format!("{}/admin/backends", env.admin.as_ref().unwrap());
    let all = env.send(env.client.get(url)).await.json();
    let users = all["backends"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["name"] == "users"))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(users["endpoints"][0]["channels"], 3, "{users}");
    // The same traffic through one multi-threaded runtime shares one connection.
    let shared = TestEnv::start().await;
    sixty_four_gets(&shared).await;
    assert_eq!(shared.knobs(DemoService::Users).connections(), 1);
}

#[tokio::test]
async fn a_shutdown_lets_the_calls_in_flight_on_every_core_finish() {
    let mut env = TestEnv::start_cores("", 2).await;
    let users = env.knobs(DemoService::Users).clone();
    users.set_latency(Duration::from_millis(300));
    let client = fresh_connections();
    let calls: Vec<_> = (0..16)
        .map(|_| tokio::spawn(client.get(env.url("/v1/users/1")).send()))
        .collect();
    wait_until("16 calls in flight", async || users.calls("GetUser") == 16).await;
    assert_eq!(users.connections(), 2, "both cores have calls in flight");
    env.begin_shutdown();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    assert!(!env.gateway.readiness().is_ready());
    // Every core's listener is closed.
    let addr = env.base.trim_start_matches("http://").to_string();
    wait_until("the listeners closed", async || {
        tokio::net::TcpStream::connect(&addr).await.is_err()
    })
    .await;
}
