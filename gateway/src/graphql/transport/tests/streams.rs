//! SSE bodies through `oneshot`, and WebSocket round trips over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = v.trim_start().to_owned();
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn sse_subscription_streams_then_completes() {
    let accept = Some("text/event-stream");
    let got = send(
        app(false),
        post(&json!({"query": "subscription { count(to: 3) }"}), accept),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type(), "text/event-stream; charset=utf-8");
    assert_eq!(
        got.text,
        "event: next\ndata: {\"data\":{\"count\":1}}\n\n\
         event: next\ndata: {\"data\":{\"count\":2}}\n\n\
         event: next\ndata: {\"data\":{\"count\":3}}\n\n\
         event: complete\ndata:\n\n"
    );
    // Over GET too.
    let got = send(
        app(false),
        get("query=subscription%7Bcount(to%3A1)%7D", accept),
    )
    .await;
    assert_eq!(sse_events(&got.text).len(), 2);
}

#[tokio::test]
async fn sse_subscription_not_ready_at_first_poll() {
    let got = send(
        app(false),
        post(
            &json!({"query": "subscription { later }"}),
            Some("text/event-stream"),
        ),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.text,
        "event: next\ndata: {\"data\":{\"later\":7}}\n\nevent: complete\ndata:\n\n"
    );
}

#[tokio::test]
async fn sse_query_and_mutation_give_one_next() {
    let accept = Some("text/event-stream");
    for (query, data) in [
        ("{ hello }", json!({"hello": "hello world"})),
        ("mutation { shout(text: \"x\") }", json!({"shout": "X"})),
    ] {
        let got = send(app(false), post(&json!({"query": query}), accept)).await;
        let events = sse_events(&got.text);
        assert_eq!(events.len(), 2, "{}", got.text);
        assert_eq!(events[0].0, "next");
        assert_eq!(
            serde_json::from_str::<Json>(&events[0].1).unwrap()["data"],
            data
        );
        assert_eq!(events[1], ("complete".to_owned(), String::new()));
    }
    // Mutations stay POST-only under SSE.
    let got = send(
        app(false),
        get("query=mutation%7Bshout(text%3A%22a%22)%7D", accept),
    )
    .await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn sse_errors_before_start_are_http_errors() {
    let accept = Some("text/event-stream");
    for query in ["subscription { nope }", "{ nope }", "{"] {
        let got = send(app(false), post(&json!({"query": query}), accept)).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{query}: {}", got.text);
        assert_eq!(got.content_type(), "application/json; charset=utf-8");
        assert!(got.code().starts_with("GRAPHQL_"), "{}", got.text);
    }
}

#[test]
fn sse_framing() {
    let response = async_graphql::Response::new(Value::from_json(json!({"a": "x\ny"})).unwrap());
    assert_eq!(
        &sse::next_event(response, false)[..],
        b"event: next\ndata: {\"data\":{\"a\":\"x\\ny\"}}\n\n"
    );
    let error = async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
        "bad",
        Some(Pos { line: 1, column: 1 }),
    )]);
    let text = String::from_utf8(sse::next_event(error, true).to_vec()).unwrap();
    assert!(text.contains("GRAPHQL_VALIDATION_FAILED") && !text.contains("\"data\""));
    assert_eq!(sse::COMPLETE, b"event: complete\ndata:\n\n");
}

/// Serves the app on an ephemeral port; returns its address.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn ws_connect(
    addr: std::net::SocketAddr,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocol).unwrap(),
    );
    request
        .headers_mut()
        .insert("x-user", HeaderValue::from_static("ws-header"));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn next_json<S>(socket: &mut S) -> Json
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_graphql_transport_ws_round_trip() {
    let addr = serve(app(false)).await;
    let mut socket = ws_connect(addr, "graphql-transport-ws").await;
    let init = json!({"type": "connection_init", "payload": {"user": "init"}});
    socket.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "connection_ack"})
    );

    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { count(to: 2) }"}});
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    for i in 1..=2 {
        assert_eq!(
            next_json(&mut socket).await,
            json!({"id": "1", "type": "next", "payload": {"data": {"count": i}}})
        );
    }
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "1", "type": "complete"})
    );

    // Prepare saw the upgrade request's headers and the connection_init payload.
    let who = json!({"id": "2", "type": "subscribe", "payload": {"query": "{ whoami }"}});
    socket.send(Message::text(who.to_string())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "2", "type": "next", "payload": {"data": {"whoami": "ws-header+init"}}})
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "2", "type": "complete"})
    );

    // Validation errors carry their code.
    let bad =
        json!({"id": "3", "type": "subscribe", "payload": {"query": "subscription { nope }"}});
    socket.send(Message::text(bad.to_string())).await.unwrap();
    let got = next_json(&mut socket).await;
    assert_eq!(got["type"], "next");
    assert_eq!(
        got["payload"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
}

#[tokio::test]
async fn websocket_legacy_protocol_and_rejection() {
    let addr = serve(app(false)).await;
    let mut socket = ws_connect(addr, "graphql-ws").await;
    socket
        .send(Message::text(
            json!({"type": "connection_init"}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "connection_ack"})
    );
    let start =
        json!({"id": "a", "type": "start", "payload": {"query": "subscription { count(to: 1) }"}});
    socket.send(Message::text(start.to_string())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "a", "type": "data", "payload": {"data": {"count": 1}}})
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "a", "type": "complete"})
    );

    // A Prepare rejection ends the operation with the rejection's code.
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    headers.insert("x-reject", HeaderValue::from_static("1"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({"type": "connection_init"}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "connection_ack"})
    );
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "{ hello }"}});
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    let got = next_json(&mut socket).await;
    assert_eq!(
        got["payload"]["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_REQUIRED"
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({"id": "1", "type": "complete"})
    );
}

#[tokio::test]
async fn websocket_without_a_known_subprotocol_is_400() {
    let request = Request::get("/graphql")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "chat")
        .body(Body::empty())
        .unwrap();
    let got = send(app(false), request).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "BAD_REQUEST");
}
