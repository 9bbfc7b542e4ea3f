//! Request ids and header forwarding, both ways.

use portico_demo::DemoService;
use portico_e2e::TestEnv;

#[tokio::test]
async fn every_request_gets_an_id_that_reaches_the_backend() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1").await;
    let id = r.header("x-request-id").to_string();
    assert_eq!(id.len(), 32, "a fresh id: {id:?}");
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-request-id").unwrap().to_str().unwrap(), id);

    // a sane client id is kept; an unsafe one is replaced
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-request-id", "abc-123"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), "abc-123");
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-request-id", "bad id\"<>"),
        )
        .await;
    assert_ne!(r.header("x-request-id"), "bad id\"<>");
    // error responses carry it too
    let r = env.get("/nowhere").await;
    assert_eq!(r.header("x-request-id").len(), 32);
}

#[tokio::test]
async fn only_allowlisted_headers_are_forwarded() {
    let env = TestEnv::start_with("headers:\n  forward: [x-tenant-*]\n").await;
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-tenant-id", "acme")
                .header("cookie", "session=secret")
                .header("authorization", "Bearer t"),
        )
        .await;
    assert_eq!(r.status, 200);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-tenant-id").unwrap(), "acme");
    assert!(md.get("cookie").is_none());
    assert!(md.get("authorization").is_none());
    // the deadline travels as grpc-timeout
    assert!(md.get("grpc-timeout").is_some(), "{md:?}");
}

#[tokio::test]
async fn allowlisted_response_metadata_comes_back_as_prefixed_headers() {
    let env = TestEnv::start_with("headers:\n  response: [x-demo-*]\n").await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-metadata-x-demo-served-by"), "users");
    // not allowlisted: not returned
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.header("grpc-metadata-x-demo-served-by"), "");
}

#[tokio::test]
async fn the_client_trace_reaches_every_backend_call_with_a_span_of_its_own() {
    let env = TestEnv::start().await;
    let client_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("traceparent", client_parent)
                .header("tracestate", "congo=t61rcWkgMzE"),
        )
        .await;
    assert_eq!(r.status, 200);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    let sent = md.get("traceparent").unwrap().to_str().unwrap().to_string();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert!(sent.ends_with("-01"), "{sent}");
    assert_ne!(
        &sent[36..52],
        "00f067aa0ba902b7",
        "a span of the gateway's own"
    );
    assert_eq!(md.get("tracestate").unwrap(), "congo=t61rcWkgMzE");

    // GraphQL: every call of one request shares the trace, each with its own span.
    let q = serde_json::json!({"query": r#"{ user(id: "1") { displayName orders { id } } }"#});
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("content-type", "application/json")
                .header("traceparent", client_parent)
                .body(q.to_string()),
        )
        .await;
    assert_eq!(r.status, 200);
    let user = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    let orders = env
        .knobs(DemoService::Orders)
        .last_metadata("ListOrdersByUser")
        .unwrap();
    let (a, b) = (
        user.get("traceparent")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
        orders
            .get("traceparent")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(a[3..35], b[3..35], "one trace");
    assert_ne!(a[36..52], b[36..52], "two spans");

    // No traceparent, or a broken one: a new trace, well formed; no tracestate without it.
    for sent in [None, Some("00-XYZ-1-01")] {
        let mut req = env.client.get(env.url("/v1/users/1"));
        if let Some(v) = sent {
            req = req.header("traceparent", v).header("tracestate", "a=b");
        }
        assert_eq!(env.send(req).await.status, 200);
        let md = env
            .knobs(DemoService::Users)
            .last_metadata("GetUser")
            .unwrap();
        let tp = md.get("traceparent").unwrap().to_str().unwrap().to_string();
        assert_eq!(tp.len(), 55, "{tp}");
        assert!(!tp.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(md.get("tracestate").is_none());
    }
}
