//! Traffic splitting: the demo user service twice (`stable`, the demo cluster's, and `canary`,
//! a second instance) behind one split backend. Weighted calls (95/5 over 1,000 requests:
//! exactly 950/50), sticky callers by header and by subject, the testers' override header on
//! REST, GraphQL, gRPC-Web and WebSocket (whose session log line names its variant), the
//! opt-in response header, a reload to 50/50 under load (no request fails, in-flight calls
//! finish on the variant they started on, unchanged variants are kept), the response cache
//! keeping variants apart, the access-log field, the metric label and the admin status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use portico::reload::ConfigSource;
use portico_demo::pb::GetUserRequest;
use portico_demo::{DemoCluster, DemoService, RunningService};
use portico_e2e::grpc_web::WebMode;
use portico_e2e::{Reply, TestEnv, build_snapshot, demo_config, logs, metric, repo_root};
use serde_json::json;
use sha2::Digest;

/// Which instance served a reply: each says its own name in `x-demo-variant`.
const SERVED: &str = "grpc-metadata-x-demo-variant";

/// The demo config with `users` split between the cluster's users service (`stable`) and
/// `canary`, weighted `weights`, with `extra` lines under `split:` and `top` at top level.
fn config(
    demo: &DemoCluster,
    canary: &RunningService,
    weights: (u32, u32),
    extra: &str,
    top: &str,
) -> String {
    let users = format!("  users:\n    endpoints: [{}]\n", demo.users.endpoint());
    let split = format!(
        "  users:\n    split:\n      variants:\n        - {{ name: stable, weight: {}, endpoints: [{}] }}\n        - {{ name: canary, weight: {}, endpoints: [{}] }}\n{extra}",
        weights.0,
        demo.users.endpoint(),
        weights.1,
        canary.endpoint(),
    );
    let yaml = demo_config(
        demo,
        &format!(
            "admin: {{ listen: 127.0.0.1:0 }}\nheaders: {{ response: [x-demo-variant] }}\n{top}"
        ),
    );
    assert!(yaml.contains(&users));
    yaml.replacen(&users, &split, 1)
}

/// The demo cluster and a second user service, each naming itself in its replies.
async fn backends() -> (DemoCluster, RunningService) {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let canary = portico_demo::spawn(DemoService::Users, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    demo.users
        .knobs
        .add_reply_metadata("x-demo-variant", "stable");
    canary.knobs.add_reply_metadata("x-demo-variant", "canary");
    (demo, canary)
}

async fn start(weights: (u32, u32), extra: &str, top: &str) -> (TestEnv, RunningService) {
    let (demo, canary) = backends().await;
    let snapshot = build_snapshot(&config(&demo, &canary, weights, extra, top))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (TestEnv::serve(demo, snapshot).await, canary)
}

async fn get_with(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = env.client.get(env.url(path));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    env.send(req).await
}

fn served(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    r.header(SERVED).to_string()
}

#[tokio::test]
async fn a_95_5_split_sends_exactly_950_of_1000_requests_to_stable_and_50_to_canary() {
    let logs = logs();
    let (env, canary) = start((95, 5), "", "").await;
    let mut by_reply: HashMap<String, usize> = HashMap::new();
    for i in 0..1000 {
        let id = format!("split-95-{i}");
        let r = get_with(&env, "/v1/users/1", &[("x-request-id", &id)]).await;
        assert_eq!(r.json()["displayName"], "Ada Lovelace");
        *by_reply.entry(served(&r)).or_default() += 1;
    }
    // Smooth weighted round robin is exact: the tolerance is 0. Counted three ways: what the
    // replies say, what each backend received, and the gateway's metric.
    assert_eq!(by_reply["stable"], 950, "{by_reply:?}");
    assert_eq!(by_reply["canary"], 50, "{by_reply:?}");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 950);
    assert_eq!(canary.knobs.calls("GetUser"), 50);
    let s = env.scrape().await;
    let calls = |variant| {
        metric(
            &s,
            "rpc_client_duration_seconds",
            &[
                ("portico_backend", "users"),
                ("portico_variant", variant),
                ("rpc_method", "GetUser"),
                ("rpc_grpc_status_code", "0"),
            ],
        )
    };
    assert_eq!(calls("stable"), 950.0);
    assert_eq!(calls("canary"), 50.0);
    // an unsplit backend's series has an empty variant label (Prometheus: no label)
    assert_eq!(env.get("/v1/orders/o-1001").await.status, 200);
    let s = env.scrape().await;
    let orders = s.families["rpc_client_duration_seconds"]
        .iter_samples()
        .find(|x| x.get_labelset().unwrap().get_label_value("portico_backend") == Some("orders"))
        .expect("a series for orders");
    assert_eq!(
        orders
            .get_labelset()
            .unwrap()
            .get_label_value("portico_variant")
            .filter(|v| !v.is_empty()),
        None
    );
    // each variant's bulkhead and breaker are its own
    assert_eq!(
        metric(
            &s,
            "portico_breaker_state",
            &[
                ("portico_backend", "users"),
                ("portico_variant", "canary"),
                ("state", "closed")
            ]
        ),
        1.0
    );

    // the access line of each request names the variant that served it
    let lines = logs.access_lines("split-95-");
    assert_eq!(lines.len(), 1000);
    let canary_lines = lines
        .iter()
        .filter(|l| l["variant"] == "users:canary")
        .count();
    assert_eq!(canary_lines, 50);
    assert!(
        lines
            .iter()
            .all(|l| l["variant"] == "users:canary" || l["variant"] == "users:stable")
    );

    // the admin status lists the variants with their weights
    let admin = env.admin.clone().unwrap();
    let status = env
        .send(env.client.get(format!("{admin}/admin/backends")))
        .await
        .json();
    let users = status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "users")
        .unwrap()
        .clone();
    let variants = users["split"]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["name"], "stable");
    assert_eq!(variants[0]["weight"], 95);
    assert_eq!(variants[1]["name"], "canary");
    assert_eq!(variants[1]["share"], 0.05);
    assert_eq!(variants[1]["breaker"]["state"], "closed");
    assert_eq!(
        variants[1]["endpoints"][0]["address"],
        canary.endpoint(),
        "{users}"
    );
    // a client never learns which variant answered unless the backend says so
    let r = env.get("/v1/users/1").await;
    assert!(
        r.headers.iter().all(|(n, v)| n.as_str() == SERVED
            || !v.to_str().unwrap_or("").contains("canary")
                && !v.to_str().unwrap_or("").contains("stable")),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn sticky_callers_by_header_always_land_on_the_same_variant() {
    let (env, canary) = start((95, 5), "      sticky: { header: x-user }\n", "").await;
    let mut of_caller: HashMap<String, String> = HashMap::new();
    for round in 0..5 {
        for k in 0..100 {
            let user = format!("user-{k}");
            let r = get_with(&env, "/v1/users/1", &[("x-user", &user)]).await;
            let v = served(&r);
            let first = of_caller.entry(user.clone()).or_insert_with(|| v.clone());
            assert_eq!(*first, v, "{user} moved in round {round}");
        }
    }
    let on_canary = of_caller.values().filter(|v| *v == "canary").count();
    // The hash is fixed, so this count is too; 5% of 100 callers is 5 (a standard deviation
    // of 2.2): this range catches a split that ignores the weights or the key.
    assert!(
        (1..=12).contains(&on_canary),
        "{on_canary} callers on canary"
    );
    assert_eq!(canary.knobs.calls("GetUser"), on_canary as u64 * 5);
    // a caller without the header is spread by weight
    let mut anonymous = HashMap::<String, usize>::new();
    for _ in 0..20 {
        *anonymous
            .entry(served(&env.get("/v1/users/1").await))
            .or_default() += 1;
    }
    assert_eq!(anonymous.get("canary"), Some(&1), "{anonymous:?}");

    // GraphQL: one request's calls of a sticky caller all go to its variant
    let some_canary = of_caller
        .iter()
        .find(|(_, v)| *v == "canary")
        .map(|(u, _)| u.clone())
        .unwrap();
    let before = canary.knobs.calls("GetUser");
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("x-user", &some_canary)
                .json(&json!({"query": r#"{ a: user(id: "1") { displayName } b: user(id: "2") { displayName } c: user(id: "3") { displayName } }"#})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("errors").is_none(), "{}", r.text);
    assert_eq!(canary.knobs.calls("GetUser") - before, 3);
}

fn sha256(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

#[tokio::test]
async fn sticky_callers_by_subject_keep_their_variant_and_anonymous_ones_are_weighted() {
    let keys: String = (0..40)
        .map(|k| {
            format!(
                "      - {{ id: partner-{k}, sha256: {} }}\n",
                sha256(&format!("key-{k}"))
            )
        })
        .collect();
    let auth =
        format!("auth:\n  api_keys:\n    keys:\n{keys}authorization: {{ default: anonymous }}\n");
    let (env, _canary) = start((50, 50), "      sticky: { subject: true }\n", &auth).await;
    let mut on = HashMap::<String, usize>::new();
    for k in 0..40 {
        let key = format!("key-{k}");
        let first = served(&get_with(&env, "/v1/users/1", &[("x-api-key", &key)]).await);
        for _ in 0..3 {
            let again = served(&get_with(&env, "/v1/users/1", &[("x-api-key", &key)]).await);
            assert_eq!(again, first, "partner-{k} moved");
        }
        *on.entry(first).or_default() += 1;
    }
    // both variants have callers (40 callers at 50/50: each side is 20 +- 3)
    assert!(on["stable"] >= 10 && on["canary"] >= 10, "{on:?}");
    // anonymous callers alternate
    let a = served(&env.get("/v1/users/1").await);
    let b = served(&env.get("/v1/users/1").await);
    assert_ne!(a, b);
}

#[tokio::test]
async fn the_override_header_picks_a_variant_on_every_door_and_a_wrong_name_is_refused() {
    // canary takes no traffic by weight: only testers reach it
    let (env, canary) = start(
        (1, 0),
        "      override_header: x-portico-variant\n      response_header: x-variant\n",
        "",
    )
    .await;
    for _ in 0..10 {
        let r = env.get("/v1/users/1").await;
        assert_eq!(served(&r), "stable");
        // configured to tell: the answer names its variant
        assert_eq!(r.header("x-variant"), "stable");
    }
    assert_eq!(canary.knobs.total_calls(), 0);
    let r = get_with(&env, "/v1/users/1", &[("x-portico-variant", "canary")]).await;
    assert_eq!(served(&r), "canary");
    assert_eq!(r.header("x-variant"), "canary");
    let r = get_with(&env, "/v1/users/1", &[("x-portico-variant", "stable")]).await;
    assert_eq!(served(&r), "stable");
    // GraphQL too
    let before = canary.knobs.calls("GetUser");
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("x-portico-variant", "canary")
                .json(&json!({"query": r#"{ user(id: "1") { displayName } }"#})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["user"]["displayName"], "Ada Lovelace");
    assert_eq!(canary.knobs.calls("GetUser") - before, 1);
    // gRPC-Web too, and a wrong name is INVALID_ARGUMENT there
    let before = canary.knobs.calls("GetUser");
    let web = env
        .grpc_web(
            "/demo.v1.UserService/GetUser",
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[("x-portico-variant", "canary")],
        )
        .await;
    assert_eq!(web.code(), 0, "{web:?}");
    assert_eq!(canary.knobs.calls("GetUser") - before, 1);
    let web = env
        .grpc_web(
            "/demo.v1.UserService/GetUser",
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[("x-portico-variant", "canry")],
        )
        .await;
    web.assert_status(3, "\"canry\" is not a variant of backend \"users\"");
    // a name that is no variant: 400, naming the header and the variants; no call made
    let total = canary.knobs.total_calls() + env.knobs(DemoService::Users).total_calls();
    let r = get_with(&env, "/v1/users/1", &[("x-portico-variant", "canry")]).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        "x-portico-variant: \"canry\" is not a variant of backend \"users\" (its variants: stable, canary)"
    );
    assert_eq!(r.json()["code"], 3, "INVALID_ARGUMENT");
    assert_eq!(
        canary.knobs.total_calls() + env.knobs(DemoService::Users).total_calls(),
        total
    );
}

#[tokio::test]
async fn a_reload_to_50_50_drops_no_request_and_keeps_the_variants() {
    let (demo, canary) = backends().await;
    let dir = std::env::temp_dir().join(format!("portico-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bff.yaml");
    let descriptors = repo_root().join("descriptors/demo.binpb");
    let yaml = |w| {
        config(&demo, &canary, w, "      sticky: { header: x-user }\n", "")
            .replace("descriptors/demo.binpb", &descriptors.display().to_string())
    };
    let (before, after) = (yaml((95, 5)), yaml((50, 50)));
    std::fs::write(&path, &before).unwrap();
    let source = ConfigSource {
        path: path.clone(),
        ..Default::default()
    };
    let snapshot = source.build().await.unwrap();
    let canary_knobs = canary.knobs.clone();
    let stable_knobs = demo.users.knobs.clone();
    let env = Arc::new(TestEnv::serve(demo, snapshot).await);
    let old = env.gateway.snapshot();
    let old_split = old.upstream.split("users").unwrap().clone();

    // where 200 sticky callers are before
    let mut was = HashMap::new();
    for k in 0..200 {
        let user = format!("user-{k}");
        was.insert(
            user.clone(),
            served(&get_with(&env, "/v1/users/1", &[("x-user", &user)]).await),
        );
    }

    // 40 calls held in flight by the backends (they count a call, then wait)
    stable_knobs.set_latency(std::time::Duration::from_millis(400));
    canary_knobs.set_latency(std::time::Duration::from_millis(400));
    let (s0, c0) = (stable_knobs.total_calls(), canary_knobs.total_calls());
    let in_flight: Vec<_> = (0..40)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { served(&env.get("/v1/users/1").await) })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stable_knobs.total_calls() + canary_knobs.total_calls() < s0 + c0 + 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the calls never arrived"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let held_canary = canary_knobs.total_calls() - c0;
    assert_eq!(held_canary, 2, "40 calls at 95/5");

    std::fs::write(&path, &after).unwrap();
    portico::reload::reload(&env.gateway, &source)
        .await
        .unwrap();
    let new = env.gateway.snapshot();
    assert!(!Arc::ptr_eq(&old, &new), "the reload swapped the snapshot");
    let new_split = new.upstream.split("users").unwrap();
    assert_eq!(new_split.variant("canary").unwrap().weight, 50);
    for name in ["stable", "canary"] {
        assert!(
            old_split
                .variant(name)
                .unwrap()
                .backend
                .same_as(&new_split.variant(name).unwrap().backend),
            "{name}: a weight change keeps its connections, breaker and bulkhead"
        );
    }
    // every held call finishes, on the variant it started on
    let mut finished = HashMap::<String, u64>::new();
    for t in in_flight {
        *finished.entry(t.await.unwrap()).or_default() += 1;
    }
    assert_eq!(finished.get("canary").copied().unwrap_or(0), held_canary);
    assert_eq!(finished.values().sum::<u64>(), 40);
    stable_knobs.set_latency(std::time::Duration::ZERO);
    canary_knobs.set_latency(std::time::Duration::ZERO);

    // the new weights: 100 calls without a key are exactly 50/50
    let mut now = HashMap::<String, usize>::new();
    for _ in 0..100 {
        *now.entry(served(&env.get("/v1/users/1").await))
            .or_default() += 1;
    }
    assert_eq!(now["stable"], 50, "{now:?}");
    assert_eq!(now["canary"], 50, "{now:?}");
    // sticky callers only move from stable to canary, and about 45% of them do
    let mut moved = 0;
    for (user, before) in &was {
        let v = served(&get_with(&env, "/v1/users/1", &[("x-user", user)]).await);
        if v != *before {
            assert_eq!(
                (before.as_str(), v.as_str()),
                ("stable", "canary"),
                "{user}"
            );
            moved += 1;
        }
    }
    assert!((60..=120).contains(&moved), "{moved} of 200 callers moved");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn split_configs_that_cannot_work_are_refused_naming_the_key() {
    let (demo, canary) = backends().await;
    let err = |yaml: String| async move {
        match build_snapshot(&yaml).await {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    let e = err(config(&demo, &canary, (0, 0), "", "")).await;
    assert!(
        e.contains("backends.users.split.variants: every weight is 0"),
        "{e}"
    );
    let e = err(config(
        &demo,
        &canary,
        (95, 5),
        "      sticky: { header: \"x user\" }\n",
        "",
    ))
    .await;
    assert!(e.contains("backends.users.split.sticky.header"), "{e}");
    // a fallback of a split backend's method is checked like any other
    let e = err(config(&demo, &canary, (95, 5), "", "").replacen(
        "    split:\n",
        "    resilience: { fallbacks: { demo.v1.UserService.GetUsr: {} } }\n    split:\n",
        1,
    ))
    .await;
    assert!(e.contains("backends.users.resilience.fallbacks"), "{e}");
}

#[tokio::test]
async fn the_response_cache_keeps_each_variants_answers_apart() {
    let (env, canary) = start(
        (1, 1),
        "      override_header: x-portico-variant\n",
        "cache:\n  methods:\n    demo.v1.UserService.GetUser: { ttl: 1h, scope: public }\n",
    )
    .await;
    let stable = env.knobs(DemoService::Users).clone();
    let as_variant = |v: &'static str| {
        let env = &env;
        async move { get_with(env, "/v1/users/1", &[("x-portico-variant", v)]).await }
    };
    assert_eq!(as_variant("canary").await.status, 200);
    assert_eq!(as_variant("canary").await.status, 200);
    assert_eq!(canary.knobs.calls("GetUser"), 1, "the second was a hit");
    // canary's cached answer is not stable's
    assert_eq!(as_variant("stable").await.status, 200);
    assert_eq!(stable.calls("GetUser"), 1, "stable was asked");
    assert_eq!(as_variant("stable").await.status, 200);
    assert_eq!(
        stable.calls("GetUser"),
        1,
        "then answered from its own entry"
    );
    // by weight, each request is answered by one variant's entry: no more backend calls
    for _ in 0..10 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    assert_eq!(
        (stable.calls("GetUser"), canary.knobs.calls("GetUser")),
        (1, 1)
    );
    let s = env.scrape().await;
    assert_eq!(
        metric(
            &s,
            "portico_cache_lookups_total",
            &[
                ("rpc_method", "demo.v1.UserService.GetUser"),
                ("result", "hit")
            ]
        ),
        12.0
    );
}

#[tokio::test]
async fn a_websocket_call_goes_to_a_variant_and_its_log_line_names_it() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let logs = logs();
    let (demo, canary) = backends().await;
    // the chat is served by the users backend, so it is split with it
    let yaml = config(
        &demo,
        &canary,
        (1, 0),
        "      override_header: x-portico-variant\n",
        "",
    )
    .replace(
        "    services: [demo.v1.UserService]\n",
        "    services: [demo.v1.UserService, demo.v1.ChatService]\n",
    );
    let snapshot = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let env = TestEnv::serve(demo, snapshot).await;

    let mut req = env
        .url("/demo.v1.ChatService/Chat")
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-portico-variant", "canary".parse().unwrap());
    req.headers_mut()
        .insert("x-request-id", "split-ws-1".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text(r#"{"user":"ana","text":"hi"}"#))
        .await
        .unwrap();
    let reply = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                break serde_json::from_str::<serde_json::Value>(&t).unwrap();
            }
            Some(Ok(_)) => {}
            other => panic!("expected the reply, got {other:?}"),
        }
    };
    assert_eq!(reply["result"]["text"], "hi", "{reply}");
    ws.send(Message::text("")).await.unwrap();
    // the final status, then the gateway's Close, answered by the client as it reads on
    // until the socket ends
    while let Some(Ok(_)) = ws.next().await {}
    // weight 0: only the override reached canary
    assert_eq!(canary.knobs.received("Chat"), 1);
    assert_eq!(env.demo.users.knobs.received("Chat"), 0);
    // the session's own line (written when the socket is closed) names the variant
    portico_e2e::faults::wait_until("the WebSocket session's log line", async || {
        logs.of_requests("split-ws-")
            .iter()
            .any(|l| l["message"] == "websocket call finished")
    })
    .await;
    let line = logs
        .of_requests("split-ws-")
        .into_iter()
        .find(|l| l["message"] == "websocket call finished")
        .unwrap();
    assert_eq!(line["variant"], "users:canary", "{line}");
}
