//! The one front door: every door (REST routes, GraphQL, operation endpoints) goes through the
//! same ingress (body limits, header limits, path normalisation, deadline) and the same policy
//! chain, and a request runs on one snapshot from start to end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt};
use portico::error::{ErrorKind, GatewayError};
use portico::request::policy::{CallSite, Next, Outcome, Policy, Stage};
use portico::request::{Door, RequestCtx};
use portico::upstream::Call;
use portico_demo::DemoService;
use portico_e2e::grpc_web::WebMode;
use portico_e2e::{TestEnv, build_snapshot, demo_config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// The web BFF's endpoints (as in `bff-web/config.yaml`).
const ENDPOINTS: &str = r#"
operations: { dir: bff-web/operations }
endpoints:
  - { path: "/api/home/{userId}", operation: Home, unwrap: user }
  - { path: "/api/profile/{id}", operation: UpdateProfile, method: POST, unwrap: updateUser }
"#;

/// A policy that records what it sees and refuses calls of one method.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(Door, String)>>,
    calls: Mutex<Vec<(Door, CallSite, String)>>,
    refuse: Option<&'static str>,
}

impl Recorder {
    fn calls(&self) -> Vec<(Door, CallSite, String)> {
        self.calls.lock().unwrap().clone()
    }

    fn saw(&self, door: Door, site: CallSite) -> bool {
        self.calls()
            .iter()
            .any(|(d, s, _)| *d == door && *s == site)
    }
}

impl Policy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn on_request<'a>(
        &'a self,
        _parts: &'a http::request::Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        self.requests
            .lock()
            .unwrap()
            .push((ctx.door, ctx.path.clone()));
        futures::future::ready(Ok(())).boxed()
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        let method = call.method.full_name().to_string();
        self.calls
            .lock()
            .unwrap()
            .push((ctx.door, site.clone(), method.clone()));
        if self.refuse == Some(method.as_str()) {
            let err = GatewayError::rejected(ErrorKind::PermissionDenied, "not for you");
            return futures::future::ready(Err(err)).boxed();
        }
        next.run(ctx, site, call)
    }
}

fn site(f: fn(Arc<str>) -> CallSite, name: &str) -> CallSite {
    f(name.into())
}

async fn env_with_policy(extra: &str, policy: Arc<dyn Policy>) -> TestEnv {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let snapshot = build_snapshot(&demo_config(&demo, extra))
        .await
        .unwrap()
        .with_policy(Stage::Authorize, policy);
    TestEnv::serve(demo, snapshot).await
}

#[tokio::test]
async fn a_policy_stage_sees_every_doors_calls() {
    let rec = Arc::new(Recorder::default());
    let env = env_with_policy(ENDPOINTS, rec.clone()).await;

    // REST: a unary route and a server-streaming one.
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    let r = env.get("/v1/users/1/orders:watch?maxEvents=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(rec.saw(Door::Rest, site(CallSite::Route, "GET /v1/users/{id}")));
    assert!(rec.saw(
        Door::Rest,
        site(CallSite::Route, "GET /v1/users/{user_id}/orders:watch")
    ));

    // GraphQL: a root field, two links and a batched link.
    let r = env
        .graphql(
            r#"{ user(id: "1") { orders { user { id } items { product { title } } } } }"#,
            json!({}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    for s in [
        site(CallSite::RootField, "Query.user"),
        site(CallSite::LinkField, "User.orders"),
        site(CallSite::LinkField, "Order.user"),
        site(CallSite::LinkBatch, "OrderItem.product"),
    ] {
        assert!(
            rec.saw(Door::Graphql, s.clone()),
            "{s:?} in {:?}",
            rec.calls()
        );
    }

    // A subscription, over SSE.
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("accept", "text/event-stream")
                .json(&json!({"query": r#"subscription { watchOrders(userId: "1", maxEvents: 1) { sequence } }"#})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(rec.saw(
        Door::Graphql,
        site(CallSite::Subscription, "Subscription.watchOrders")
    ));

    // A subscription over a WebSocket, and a query sent over the same connection.
    let subscriptions = || {
        rec.calls()
            .iter()
            .filter(|(_, s, _)| matches!(s, CallSite::Subscription(_)))
            .count()
    };
    let before = subscriptions();
    let mut ws = env.graphql_ws(None).await;
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": r#"subscription { watchOrders(userId: "2", maxEvents: 1) { sequence } }"#
        }})
        .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(portico_e2e::next_ws_json(&mut ws).await["type"], "next");
    assert_eq!(portico_e2e::next_ws_json(&mut ws).await["type"], "complete");
    assert_eq!(subscriptions(), before + 1);
    let roots_before = rec.calls().len();
    ws.send(Message::text(
        json!({"id": "2", "type": "subscribe", "payload": {"query": r#"{ product(id: "p-1") { title } }"#}})
            .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(portico_e2e::next_ws_json(&mut ws).await["type"], "next");
    assert!(rec.calls()[roots_before..].contains(&(
        Door::Graphql,
        site(CallSite::RootField, "Query.product"),
        "demo.v1.CatalogService.GetProduct".into()
    )));

    // An operation endpoint: its operation's root, link and batch calls.
    let r = env.get("/api/home/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(rec.saw(Door::Endpoint, site(CallSite::RootField, "Query.user")));
    assert!(rec.saw(
        Door::Endpoint,
        site(CallSite::LinkBatch, "OrderItem.product")
    ));

    // gRPC-Web: a unary call and a server stream, by their gRPC paths.
    let r = env
        .grpc_web(
            "/demo.v1.UserService/GetUser",
            &portico_demo::pb::GetUserRequest { id: 1 },
            WebMode::Binary,
            &[],
        )
        .await;
    assert_eq!(r.code(), 0, "{r:?}");
    let r = env
        .grpc_web(
            "/demo.v1.OrderService/WatchOrders",
            &portico_demo::pb::WatchOrdersRequest {
                user_id: 1,
                max_events: 1,
                interval: None,
            },
            WebMode::Text,
            &[],
        )
        .await;
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(rec.saw(
        Door::GrpcWeb,
        site(CallSite::GrpcWeb, "/demo.v1.UserService/GetUser")
    ));
    assert!(rec.saw(
        Door::GrpcWeb,
        site(CallSite::GrpcWeb, "/demo.v1.OrderService/WatchOrders")
    ));

    // Every request went through the per-request hook, with its door.
    let requests = rec.requests.lock().unwrap().clone();
    for door in [Door::Rest, Door::Graphql, Door::Endpoint, Door::GrpcWeb] {
        assert!(
            requests.iter().any(|(d, _)| *d == door),
            "{door:?} in {requests:?}"
        );
    }
}

#[tokio::test]
async fn a_policy_refusal_is_written_by_each_doors_renderer() {
    let rec = Arc::new(Recorder {
        refuse: Some("demo.v1.UserService.GetUser"),
        ..Recorder::default()
    });
    let env = env_with_policy(ENDPOINTS, rec.clone()).await;
    let before = env.knobs(DemoService::Users).total_calls();

    // REST: a google.rpc.Status body with the refusal's status.
    let r = env.get("/v1/users/1").await;
    portico_e2e::assert_error(&r, 403, 7, "not for you");

    // GraphQL: a field error at its path, the rest of the data kept.
    let r = env
        .graphql(
            r#"{ user(id: "1") { id } product(id: "p-1") { title } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["user"], Value::Null, "{r}");
    assert_eq!(r["data"]["product"]["title"], "Espresso Cup", "{r}");
    assert_eq!(r["errors"][0]["path"], json!(["user"]), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["code"], "PERMISSION_DENIED");

    // An endpoint whose only root field is refused: that status.
    let r = env.get("/api/home/1").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "PERMISSION_DENIED"
    );

    // gRPC-Web: the status, trailers-only.
    env.grpc_web(
        "/demo.v1.UserService/GetUser",
        &portico_demo::pb::GetUserRequest { id: 1 },
        WebMode::Binary,
        &[],
    )
    .await
    .assert_status(7, "not for you");

    // The backend never saw a refused call.
    assert_eq!(env.knobs(DemoService::Users).total_calls(), before);
}

/// A policy that holds the first call it sees until released, and says when it has it.
struct Gate {
    entered: Notify,
    release: Mutex<Option<oneshot::Receiver<()>>>,
    calls: Mutex<u32>,
}

impl Policy for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        *self.calls.lock().unwrap() += 1;
        let release = self.release.lock().unwrap().take();
        async move {
            if let Some(release) = release {
                self.entered.notify_one();
                let _ = release.await;
            }
            next.run(ctx, site, call).await
        }
        .boxed()
    }
}

/// An operations folder holding one `Home` operation selecting `root`.
fn home_operations(name: &str, root: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portico-e2e-front-door-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("home.graphql"),
        format!("query Home($userId: Int64!) {{ {root}(id: $userId) {{ id displayName }} }}\n"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn a_reload_during_an_endpoints_execution_never_mixes_snapshots() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    // Before: the root field is `user`; after: it is renamed `person`, and the operation
    // follows. An operation of one run against the schema of the other fails validation.
    let before_ops = home_operations("before", "user");
    let after_ops = home_operations("after", "person");
    let config = |ops: &std::path::Path, root: &str, extra: &str| {
        demo_config(
            &demo,
            &format!(
                "operations: {{ dir: {} }}\nendpoints:\n  - {{ path: \"/api/home/{{userId}}\", operation: Home, unwrap: {root} }}\n{extra}",
                ops.display()
            ),
        )
    };
    let (release, released) = oneshot::channel();
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Mutex::new(Some(released)),
        calls: Mutex::new(0),
    });
    let before = build_snapshot(&config(&before_ops, "user", ""))
        .await
        .unwrap()
        .with_policy(Stage::Limit, gate.clone());
    let after_yaml = config(
        &after_ops,
        "person",
        &format!(
            "graphql:\n  methods:\n    demo.v1.UserService.GetUser: {{ field: person }}\n  links:{}",
            portico_e2e::DEMO_LINKS
        ),
    );
    let env = Arc::new(TestEnv::serve(demo, before).await);

    // The request starts on the old snapshot and is held at its first call...
    let in_flight = {
        let env = env.clone();
        tokio::spawn(async move { env.get("/api/home/1").await })
    };
    gate.entered.notified().await;
    // ...while the new snapshot is swapped in.
    env.gateway.swap(build_snapshot(&after_yaml).await.unwrap());
    release.send(()).unwrap();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"id": "1", "displayName": "Ada Lovelace"}));

    // The next request runs wholly on the new snapshot (and not through the old policy).
    let r = env.get("/api/home/2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["displayName"], "Grace Hopper");
    assert_eq!(*gate.calls.lock().unwrap(), 1);
    let _ = std::fs::remove_dir_all(before_ops);
    let _ = std::fs::remove_dir_all(after_ops);
}

#[tokio::test]
async fn a_method_timeout_applies_to_graphql_root_and_link_fields() {
    let env = TestEnv::start_with(
        "rest:\n  methods:\n    demo.v1.UserService.GetUser: { timeout: 100ms }\n",
    )
    .await;
    env.knobs(DemoService::Users)
        .set_latency(Duration::from_millis(400));
    // A root field calling the method.
    let r = env
        .graphql(r#"{ user(id: "1") { displayName } }"#, json!({}))
        .await;
    assert_eq!(r["data"]["user"], Value::Null, "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "DEADLINE_EXCEEDED",
        "{r}"
    );
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("100ms"),
        "{r}"
    );
    // A link field calling it: the order is there, its user is not.
    let r = env
        .graphql(
            r#"{ order(id: "o-1001") { id user { displayName } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["order"]["id"], "o-1001", "{r}");
    assert_eq!(r["data"]["order"]["user"], Value::Null, "{r}");
    assert_eq!(r["errors"][0]["path"], json!(["order", "user"]), "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "DEADLINE_EXCEEDED",
        "{r}"
    );
    // The same rule on the REST door.
    let r = env.get("/v1/users/1").await;
    portico_e2e::assert_error(&r, 504, 4, "100ms");
}

#[tokio::test]
async fn a_backend_timeout_applies_to_a_batched_link() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = demo_config(&demo, "").replace(
        "services: [demo.v1.CatalogService]",
        "services: [demo.v1.CatalogService]\n    timeout: 100ms",
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    env.knobs(DemoService::Catalog)
        .set_latency(Duration::from_millis(400));
    let r = env
        .graphql(
            r#"{ order(id: "o-1001") { id items { product { title } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["order"]["id"], "o-1001", "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "DEADLINE_EXCEEDED",
        "{r}"
    );
    assert_eq!(r["errors"][0]["extensions"]["backend"], "catalog", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("100ms"),
        "{r}"
    );
}

/// Writes a request head and the first piece of its body on a fresh connection.
async fn start_upload(env: &TestEnv, path: &str, first: &[u8]) -> tokio::net::TcpStream {
    let addr = env.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(first).await.unwrap();
    s
}

/// Reads the response the gateway sends on its own: status line and JSON body. The
/// connection must then be closed.
async fn read_response(mut s: tokio::net::TcpStream) -> (String, Value) {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the gateway answers and closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    let body: Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("a JSON body ({e}): {text}"));
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    (status, body)
}

/// The error code of a body: GraphQL's `extensions.code`, or the gRPC code of a status.
fn error_of(body: &Value) -> (String, String) {
    match body.get("errors") {
        Some(errors) => (
            errors[0]["extensions"]["code"]
                .as_str()
                .unwrap()
                .to_string(),
            errors[0]["message"].as_str().unwrap().to_string(),
        ),
        None => (
            body["code"].to_string(),
            body["message"].as_str().unwrap().to_string(),
        ),
    }
}

/// One door's slow-body cases: a body that stalls, and one that trickles steadily but too
/// long; a request of another client is served meanwhile.
async fn slow_bodies(env: &TestEnv, path: &str, code: &str) {
    // Stalled: a piece of the body, then nothing.
    let stalled = start_upload(env, path, b"{\"a\":").await;
    // Trickling: a byte every 200ms (never idle for the 1s idle bound) for 1.6s: the 2s
    // total bound ends it first.
    let mut trickle = start_upload(env, path, b"{").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trickle.write_all(b" ").await.unwrap();
    }
    // Other clients are served meanwhile.
    let r = env.get("/v1/users/2").await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);

    let (status, body) = read_response(stalled).await;
    assert!(status.contains(" 408 "), "{path}: {status}");
    let (c, message) = error_of(&body);
    assert_eq!(c, code, "{path}: {body}");
    assert!(
        message.contains("idle for more than 1s"),
        "{path}: {message}"
    );

    let (status, body) = read_response(trickle).await;
    assert!(status.contains(" 408 "), "{path}: {status}");
    let (c, message) = error_of(&body);
    assert_eq!(c, code, "{path}: {body}");
    assert!(
        message.contains("not complete within 2s"),
        "{path}: {message}"
    );
}

#[tokio::test]
async fn stalled_and_trickling_bodies_get_a_408_on_every_door() {
    let env = TestEnv::start_with(&format!(
        "limits:\n  body_idle_timeout: 1s\n  body_timeout: 2s\n{ENDPOINTS}"
    ))
    .await;
    futures::join!(
        slow_bodies(&env, "/v1/users", "4"),
        slow_bodies(&env, "/graphql", "REQUEST_TIMEOUT"),
        slow_bodies(&env, "/api/profile/1", "4"),
    );
    assert_eq!(env.knobs(DemoService::Users).calls("CreateUser"), 0);
    assert_eq!(env.knobs(DemoService::Users).calls("UpdateUser"), 0);
}

#[tokio::test]
async fn limit_refusals_carry_a_json_body_on_every_door() {
    let env = TestEnv::start_with(&format!(
        "limits:\n  max_body_bytes: 1KiB\n  max_headers: 20\n  max_header_bytes: 4KiB\n{ENDPOINTS}"
    ))
    .await;
    let big = json!({"query": format!("{{ user(id: \"1\") {{ id }} }} #{}", "x".repeat(2000)), "variables": {}});
    // 413, on each door.
    let r = env.json("POST", "/v1/users", &big).await;
    portico_e2e::assert_error(&r, 413, 8, "1024 bytes");
    let r = env.json("POST", "/graphql", &big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "PAYLOAD_TOO_LARGE"
    );
    let r = env.json("POST", "/api/profile/1", &big).await;
    portico_e2e::assert_error(&r, 413, 8, "1024 bytes");

    // 431: too many headers, too large ones; JSON in each door's shape.
    let many = |path: &str| {
        let mut req = env.client.get(env.url(path));
        for i in 0..30 {
            req = req.header(format!("x-h{i}"), "v");
        }
        req
    };
    let r = env.send(many("/v1/users/1")).await;
    portico_e2e::assert_error(&r, 431, 8, "more than the limit of 20");
    let r = env.send(many("/graphql?query=%7B__typename%7D")).await;
    assert_eq!(r.status, 431, "{}", r.text);
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "REQUEST_HEADER_FIELDS_TOO_LARGE"
    );
    let r = env
        .send(
            env.client
                .get(env.url("/api/home/1"))
                .header("x-big", "v".repeat(5000)),
        )
        .await;
    portico_e2e::assert_error(&r, 431, 8, "more than the limit of 4096");
    // Past twice the limit the HTTP parser refuses the request itself: a bare 431.
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-big", "v".repeat(10_000)),
        )
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(r.text, "");

    // 415 for an encoding the gateway cannot decompress, on the GraphQL door too.
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("content-type", "application/json")
                .header("content-encoding", "compress")
                .body("x"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}

#[tokio::test]
async fn the_path_is_normalised_once_for_routing_and_policies() {
    let rec = Arc::new(Recorder::default());
    let env = env_with_policy(ENDPOINTS, rec.clone()).await;
    // Escaped unreserved characters route as their plain selves, on every door.
    let r = env.get("/v1/us%65rs/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.get("/api/hom%65/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .send(
            env.client
                .post(env.url("/gr%61phql"))
                .json(&json!({"query": "{ __typename }"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let paths: Vec<String> = rec
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(paths, ["/v1/users/1", "/api/home/1", "/graphql"]);
    // A dot segment, however escaped, is refused before routing (sent raw: HTTP clients
    // resolve dot segments before sending).
    for path in [
        "/v1/users/%2E%2E/users/1",
        "/v1/users/../users/1",
        "/v1/./users/1",
    ] {
        let addr = env.base.trim_start_matches("http://").to_string();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 400"), "{path}: {text}");
        assert!(text.contains("segment"), "{path}: {text}");
    }
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 2);
}

#[tokio::test]
async fn an_invalid_grpc_timeout_is_refused_on_every_door() {
    let env = TestEnv::start_with(ENDPOINTS).await;
    let with = |path: &str| env.client.get(env.url(path)).header("grpc-timeout", "soon");
    let r = env.send(with("/v1/users/1")).await;
    portico_e2e::assert_error(&r, 400, 3, "grpc-timeout");
    let r = env.send(with("/api/home/1")).await;
    portico_e2e::assert_error(&r, 400, 3, "grpc-timeout");
    let r = env.send(with("/graphql?query=%7B__typename%7D")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}
