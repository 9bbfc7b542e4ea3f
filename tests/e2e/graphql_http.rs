//! GraphQL over HTTP, SSE and WebSocket against the real BFF, the graphql-http conformance
//! audit, and query limits that reject abusive operations before any backend call.

use std::time::Duration;

use futures::SinkExt;
use portico_demo::DemoService;
use portico_e2e::{TestEnv, run_graphql_http_audit};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn the_graphql_http_audit_passes_against_the_bff() {
    let env = TestEnv::start().await;
    let (ok, output) = run_graphql_http_audit(&env.url("/graphql")).await;
    assert!(ok, "graphql-http audit failed:\n{output}");
}

#[tokio::test]
async fn get_serves_queries_but_not_mutations() {
    let env = TestEnv::start().await;
    let r = env
        .send(
            env.client
                .get(env.url("/graphql"))
                .query(&[("query", r#"{ user(id: "2") { displayName } }"#)]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["user"]["displayName"], "Grace Hopper");
    let r = env
        .send(env.client.get(env.url("/graphql")).query(&[(
            "query",
            r#"mutation { createUser(user: {displayName: "x", email: "a@b"}) { id } }"#,
        )]))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "POST");
    assert_eq!(env.knobs(DemoService::Users).calls("CreateUser"), 0);
}

#[tokio::test]
async fn browsers_get_graphiql_unless_turned_off() {
    let env = TestEnv::start().await;
    let r = env
        .send(
            env.client
                .get(env.url("/graphql"))
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.contains("graphiql"),
        "{}",
        &r.text[..200.min(r.text.len())]
    );
    let env = TestEnv::start_with(&format!(
        "graphql:\n  graphiql: false\n  introspection: false\n  links:{}",
        portico_e2e::DEMO_LINKS
    ))
    .await;
    let r = env
        .send(
            env.client
                .get(env.url("/graphql"))
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(r.status, 406, "no GraphiQL page: HTML is not acceptable");
    let r = env
        .graphql("{ __schema { types { name } } }", json!({}))
        .await;
    assert!(r["errors"].is_array(), "introspection is off: {r}");
}

#[tokio::test]
async fn a_backend_deadline_is_a_field_error_with_its_code() {
    let env = TestEnv::start_with(&format!(
        "deadlines:\n  default: 200ms\ngraphql:\n  links:{}",
        portico_e2e::DEMO_LINKS
    ))
    .await;
    env.knobs(DemoService::Catalog)
        .set_latency(Duration::from_secs(3));
    let r = env
        .graphql(
            r#"{ user(id: "1") { displayName } product(id: "p-1") { title } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["user"]["displayName"], "Ada Lovelace", "{r}");
    assert_eq!(r["data"]["product"], Value::Null);
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "DEADLINE_EXCEEDED",
        "{r}"
    );
}

#[tokio::test]
async fn limits_reject_abusive_queries_before_any_backend_call() {
    let env = TestEnv::start_with(&format!(
        "graphql:\n  limits: {{ max_depth: 5, max_aliases: 3, max_root_fields: 4, max_tokens: 400, max_cost: 300, size_args: {} }}\n  links:{}",
        portico_e2e::DEMO_SIZE_ARGS,
        portico_e2e::DEMO_LINKS
    ))
    .await;
    let cases = [
        (
            r#"{ user(id: "1") { orders { user { orders { user { orders { id } } } } } } }"#,
            "QUERY_TOO_DEEP",
        ),
        (
            r#"{ a: user(id: "1") { id } b: user(id: "2") { id } c: user(id: "3") { id } d: user(id: "4") { id } }"#,
            "TOO_MANY_ALIASES",
        ),
        (
            r#"{ user(id: "1") { id } product(id: "p-1") { id } order(id: "o-1001") { id } users { totalSize } products: batchGetProducts(ids: ["p-1"]) { products { id } } }"#,
            "TOO_MANY_ROOT_FIELDS",
        ),
        (
            &format!("{{ user(id: \"1\") {{ {} }} }}", "id ".repeat(500)),
            "TOO_MANY_TOKENS",
        ),
        (
            r#"{ users { users { orders { id status } } } }"#,
            "QUERY_TOO_COSTLY",
        ),
    ];
    for (q, code) in cases {
        let r = env
            .send(
                env.client
                    .post(env.url("/graphql"))
                    .header("accept", "application/graphql-response+json")
                    .json(&json!({ "query": q })),
            )
            .await;
        assert_eq!(r.status, 400, "{code}: {}", r.text);
        let body = r.json();
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
        assert!(body.get("data").is_none(), "{body}");
    }
    for s in [
        DemoService::Users,
        DemoService::Orders,
        DemoService::Catalog,
    ] {
        assert_eq!(env.knobs(s).total_calls(), 0, "{s} was called");
    }
    // an ordinary query still passes
    let r = env
        .graphql(r#"{ user(id: "1") { displayName } }"#, json!({}))
        .await;
    assert_eq!(r["data"]["user"]["displayName"], "Ada Lovelace", "{r}");
}

/// The payloads of the `next` events of an SSE response body.
fn sse_nexts(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|e| e.starts_with("event: next"))
        .map(|e| serde_json::from_str(e.split_once("data: ").unwrap().1).unwrap())
        .collect()
}

#[tokio::test]
async fn a_subscription_streams_over_sse() {
    let env = TestEnv::start().await;
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("accept", "text/event-stream")
                .json(&json!({"query": r#"subscription { watchOrders(userId: "1", maxEvents: 3) { sequence order { id status } } }"#})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    let nexts = sse_nexts(&r.text);
    assert_eq!(nexts.len(), 3, "{}", r.text);
    assert_eq!(nexts[2]["data"]["watchOrders"]["sequence"], "3");
    assert!(r.text.contains("event: complete"), "{}", r.text);
}

#[tokio::test]
async fn links_inside_subscription_events_are_batched_per_event() {
    let env = TestEnv::start().await;
    let q = r#"subscription { watchOrders(userId: "1", maxEvents: 2) { sequence order { id items { quantity product { title } } } } }"#;
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("accept", "text/event-stream")
                .json(&json!({ "query": q })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let nexts = sse_nexts(&r.text);
    assert_eq!(nexts.len(), 2, "{}", r.text);
    for event in &nexts {
        assert!(event.get("errors").is_none(), "{event}");
        let items = event["data"]["watchOrders"]["order"]["items"]
            .as_array()
            .unwrap();
        assert!(!items.is_empty(), "{event}");
        for item in items {
            assert!(item["product"]["title"].is_string(), "{event}");
        }
    }
    let catalog = env.knobs(DemoService::Catalog);
    assert_eq!(catalog.calls("BatchGetProducts"), 2, "one batch per event");
    assert_eq!(catalog.calls("GetProduct"), 0);
}

#[tokio::test]
async fn a_subscription_streams_over_websocket() {
    let env = TestEnv::start().await;
    let url = env.url("/graphql").replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    req.headers_mut()
        .insert("x-tenant-id", "acme".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = portico_e2e::next_ws_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": r#"subscription { watchOrders(userId: "2", maxEvents: 2) { sequence } }"#
        }})
        .to_string(),
    ))
    .await
    .unwrap();
    let mut seqs = Vec::new();
    loop {
        let m = portico_e2e::next_ws_json(&mut ws).await;
        match m["type"].as_str() {
            Some("next") => seqs.push(m["payload"]["data"]["watchOrders"]["sequence"].clone()),
            Some("complete") => break,
            other => panic!("unexpected {other:?}: {m}"),
        }
    }
    assert_eq!(seqs, vec![json!("1"), json!("2")]);
    let md = env
        .knobs(DemoService::Orders)
        .last_metadata("WatchOrders")
        .unwrap();
    assert_eq!(
        md.get("x-tenant-id").unwrap(),
        "acme",
        "upgrade headers are forwarded"
    );
}
