//! Streaming methods over WebSocket (JSON messages both ways, half-close, cancellation each
//! way, final status and close code, limits, backpressure), and client streaming from an
//! NDJSON body read line by line.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use portico_e2e::TestEnv;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHAT: &str = "/demo.v1.ChatService/Chat";

/// A chat deadline far past the tests' waits: a call the gateway did not cancel would still
/// be running when they give up.
const LONG_CHATS: &str = "rest:\n  methods:\n    demo.v1.ChatService.Chat: { timeout: 50s }\n";

/// The test gateway, with the demo's chat served by the users backend; `extra` is appended.
async fn start(extra: &str) -> TestEnv {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let yaml = portico_e2e::demo_config(&demo, extra).replace(
        "    services: [demo.v1.UserService]\n",
        "    services: [demo.v1.UserService, demo.v1.ChatService]\n",
    );
    TestEnv::start_config(demo, &yaml).await
}

async fn open(env: &TestEnv, path: &str) -> Ws {
    let url = env.url(path).replace("http://", "ws://");
    let (ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

async fn half_close(ws: &mut Ws) {
    ws.send(Message::text("")).await.unwrap();
}

/// Everything the gateway sends until its Close frame: the JSON text frames, and the close
/// code and reason.
async fn rest_of(ws: &mut Ws) -> (Vec<Value>, u16, String) {
    let mut frames = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(Some(c)))) => {
                return (frames, u16::from(c.code), c.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => panic!("a Close frame without a code: {frames:?}"),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a Close frame: {other:?} after {frames:?}"),
        }
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_chat_round_trip_with_half_close() {
    let env = start("").await;
    let mut ws = open(&env, CHAT).await;
    // Interleaved: each message is answered before the next is sent.
    for (i, text) in ["hello", "how are you", "bye"].iter().enumerate() {
        send_json(&mut ws, json!({"user": "ana", "text": text})).await;
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["result"]["text"], *text, "{reply}");
        assert_eq!(reply["result"]["user"], "server");
        // int64 as a string, as everywhere in the gateway's JSON.
        assert_eq!(reply["result"]["seq"], (i + 1).to_string());
    }
    half_close(&mut ws).await;
    let (frames, code, reason) = rest_of(&mut ws).await;
    assert_eq!(
        frames,
        vec![json!({"status": {"code": 0, "message": "", "details": []}})]
    );
    assert_eq!((code, reason.as_str()), (1000, ""));
    assert_eq!(env.demo.users.knobs.received("Chat"), 3);
    assert_eq!(env.demo.users.knobs.cancelled("Chat"), 0);
}

#[tokio::test]
async fn a_client_streaming_method_answers_once_after_the_half_close() {
    let env = start("").await;
    let mut ws = open(&env, "/demo.v1.OrderService/ImportOrders").await;
    for id in ["a", "b"] {
        send_json(
            &mut ws,
            json!({"id": id, "userId": "1", "total": {"currencyCode": "EUR", "units": "5"}}),
        )
        .await;
    }
    half_close(&mut ws).await;
    let (frames, code, _) = rest_of(&mut ws).await;
    assert_eq!(code, 1000, "{frames:?}");
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["result"]["imported"], 2);
    assert_eq!(frames[0]["result"]["orderIds"], json!(["a", "b"]));
    assert_eq!(frames[0]["result"]["totalUnits"], "10");
    assert_eq!(frames[1]["status"]["code"], 0);
}

#[tokio::test]
async fn the_client_closing_mid_call_cancels_it_at_the_backend() {
    let env = start(LONG_CHATS).await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "one"})).await;
    assert_eq!(next_json(&mut ws).await["result"]["text"], "one");
    ws.close(None).await.unwrap();
    let knobs = env.demo.users.knobs.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.cancelled("Chat") == 1),
    )
    .await
    .expect("the backend sees the call cancelled");
}

#[tokio::test]
async fn a_dropped_connection_cancels_the_call_too() {
    let env = start(LONG_CHATS).await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "one"})).await;
    assert_eq!(next_json(&mut ws).await["result"]["text"], "one");
    drop(ws);
    let knobs = env.demo.users.knobs.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.cancelled("Chat") == 1),
    )
    .await
    .expect("the backend sees the call cancelled");
}

#[tokio::test]
async fn a_backend_failure_ends_with_its_status_and_a_mapped_close_code() {
    let env = start("").await;
    env.demo.users.knobs.fail_stream_after(Some(1));
    env.demo
        .users
        .knobs
        .set_fail_with(Some(tonic::Code::PermissionDenied));
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "flood 3 2"})).await;
    let (frames, code, reason) = rest_of(&mut ws).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["result"]["text"], "xx");
    let status = &frames[1]["status"];
    assert_eq!(status["code"], 7, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{status}"
    );
    assert_eq!((code, reason.as_str()), (4007, "PERMISSION_DENIED"));
}

#[tokio::test]
async fn a_frame_that_is_not_a_message_ends_the_call_with_invalid_argument() {
    let env = start(LONG_CHATS).await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "fine"})).await;
    assert_eq!(next_json(&mut ws).await["result"]["text"], "fine");
    ws.send(Message::text("{\"text\": ")).await.unwrap();
    let (frames, code, reason) = rest_of(&mut ws).await;
    let status = &frames.last().unwrap()["status"];
    assert_eq!(status["code"], 3, "{frames:?}");
    assert!(
        status["message"].as_str().unwrap().contains("message 2"),
        "{status}"
    );
    assert_eq!((code, reason.as_str()), (4003, "INVALID_ARGUMENT"));
    // The call was cancelled at the backend, not left running.
    let knobs = env.demo.users.knobs.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.cancelled("Chat") == 1),
    )
    .await
    .expect("the backend sees the call cancelled");

    let mut ws = open(&env, CHAT).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let (frames, code, _) = rest_of(&mut ws).await;
    let message = frames[0]["status"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("binary frames are not served"),
        "{message}"
    );
    assert_eq!(code, 4003);
}

#[tokio::test]
async fn message_size_and_count_limits_end_the_call() {
    let env = start("streams: { max_messages: 2, max_message_bytes: 64 }\n").await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "x".repeat(100)})).await;
    let (frames, code, reason) = rest_of(&mut ws).await;
    let status = &frames.last().unwrap()["status"];
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("more than the limit of 64"),
        "{status}"
    );
    assert_eq!((code, reason.as_str()), (4008, "RESOURCE_EXHAUSTED"));

    let mut ws = open(&env, CHAT).await;
    for _ in 0..3 {
        send_json(&mut ws, json!({"text": "hi"})).await;
    }
    let (frames, code, _) = rest_of(&mut ws).await;
    let status = &frames.last().unwrap()["status"];
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("more than 2 messages"),
        "{status}"
    );
    assert_eq!(code, 4008);
}

#[tokio::test]
async fn unary_methods_and_unknown_methods_are_refused_before_the_upgrade() {
    let env = start("").await;
    for (path, needle) in [
        ("/demo.v1.UserService/GetUser", "is unary"),
        ("/demo.v1.ChatService/Talk", "unknown method Talk"),
    ] {
        let url = env.url(path).replace("http://", "ws://");
        let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
            panic!("expected an HTTP answer, got {err:?}");
        };
        assert_eq!(resp.status(), 501, "{path}");
        let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
        assert!(body.contains(needle), "{body}");
    }
}

#[tokio::test]
async fn authentication_applies_at_the_upgrade() {
    let env = start(
        "auth:\n  api_keys: { keys: [{ id: a, sha256: 0000000000000000000000000000000000000000000000000000000000000000 }] }\n",
    )
    .await;
    let mut req = env
        .url(CHAT)
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-api-key", "wrong".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP answer, got {err:?}");
    };
    assert_eq!(resp.status(), 401);
    assert_eq!(env.demo.users.knobs.calls("Chat"), 0);
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_the_backend_back() {
    let env = start("").await;
    const N: u64 = 400;
    const SIZE: u64 = 128 * 1024;
    let knobs = env.demo.users.knobs.clone();
    let mut ws = open(&env, CHAT).await;
    // 50 MiB the backend wants to send, to a client that reads nothing for now.
    send_json(&mut ws, json!({"text": format!("flood {N} {SIZE}")})).await;
    half_close(&mut ws).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.sent("Chat") > 0),
    )
    .await
    .expect("the backend starts sending");
    // Buffered without bound, the whole flood would be taken from the backend at once.
    let all_sent = tokio::time::timeout(
        Duration::from_secs(3),
        knobs.wait_until(|k| k.sent("Chat") >= N),
    )
    .await;
    assert!(
        all_sent.is_err(),
        "the backend sent all {N} messages to a client that read none"
    );
    let held = knobs.sent("Chat");
    assert!(held < N / 2, "the backend sent {held} of {N}");
    // Once the client reads, everything arrives, in order, then OK.
    let (frames, code, _) = rest_of(&mut ws).await;
    assert_eq!(code, 1000);
    assert_eq!(frames.len() as u64, N + 1);
    assert_eq!(frames[N as usize - 1]["result"]["seq"], N.to_string());
    assert_eq!(knobs.sent("Chat"), N);
}

/// The lines of a streamed request body, sent one by one.
type Lines = tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// A POST of an NDJSON body to `/v1/orders:import` whose lines the test sends one by one:
/// the sender, and the answer (status, body) to come.
fn import_stream(env: &TestEnv) -> (Lines, tokio::task::JoinHandle<(u16, Value)>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let req = env
        .client
        .post(env.url("/v1/orders:import"))
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
    let answer = tokio::spawn(async move {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    });
    (tx, answer)
}

#[tokio::test]
async fn an_ndjson_body_is_fed_to_the_call_line_by_line() {
    let env = start("").await;
    let knobs = env.knobs(portico_demo::DemoService::Orders);
    let (tx, answer) = import_stream(&env);
    tx.send(Ok("{\"id\": \"a\", \"userId\": \"1\"}\n".into()))
        .await
        .unwrap();
    // Read whole first, the body would reach the backend only after its end, which has not
    // been sent yet.
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.received("ImportOrders") == 1),
    )
    .await
    .expect("the backend gets the first line before the body ends");
    tx.send(Ok("{\"id\": \"b\", \"userId\": \"1\"}\n".into()))
        .await
        .unwrap();
    drop(tx);
    let (status, body) = answer.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orderIds"], json!(["a", "b"]));
}

#[tokio::test]
async fn a_bad_line_mid_stream_cancels_the_call_with_a_400_naming_it() {
    let env = start("").await;
    let knobs = env.knobs(portico_demo::DemoService::Orders);
    let (tx, answer) = import_stream(&env);
    tx.send(Ok("{\"id\": \"a\"}\n\n".into())).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        knobs.wait_until(|k| k.received("ImportOrders") == 1),
    )
    .await
    .expect("the backend gets the first line");
    tx.send(Ok("{\"id\": 5}\n".into())).await.unwrap();
    let (status, body) = answer.await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 3, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("line 3"),
        "{body}"
    );
    assert_eq!(knobs.received("ImportOrders"), 1);
}

#[tokio::test]
async fn an_ndjson_stream_has_a_message_count_and_line_size_limit() {
    let env = start("streams: { max_messages: 2, max_message_bytes: 64 }\n").await;
    let three = "{\"id\": \"a\"}\n{\"id\": \"b\"}\n{\"id\": \"c\"}\n";
    let r = env
        .raw("POST", "/v1/orders:import", "application/x-ndjson", three)
        .await;
    portico_e2e::assert_error(&r, 413, 8, "more than 2 messages");
    let long = format!("{{\"id\": \"{}\"}}\n", "x".repeat(100));
    let r = env
        .raw("POST", "/v1/orders:import", "application/x-ndjson", long)
        .await;
    portico_e2e::assert_error(&r, 413, 8, "line 1 is");
    assert_eq!(
        env.knobs(portico_demo::DemoService::Orders)
            .calls("ImportOrders"),
        0
    );
}

#[tokio::test]
async fn a_server_stream_over_websocket_takes_one_message_then_the_half_close() {
    let env = start("").await;
    let mut ws = open(&env, "/demo.v1.OrderService/WatchOrders").await;
    send_json(&mut ws, json!({"userId": "1", "maxEvents": 2})).await;
    half_close(&mut ws).await;
    let (frames, code, _) = rest_of(&mut ws).await;
    assert_eq!(code, 1000, "{frames:?}");
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[1]["result"]["sequence"], "2");
    assert_eq!(frames[2]["status"]["code"], 0);
}

#[tokio::test]
async fn with_cors_only_allowed_origins_may_open_a_call() {
    let env = start("cors: { origins: [\"https://app.example.com\"] }\n").await;
    let upgrade = |origin: &str| {
        let mut req = env
            .url(CHAT)
            .replace("http://", "ws://")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let err = upgrade("https://evil.example").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP answer, got {err:?}");
    };
    assert_eq!(resp.status(), 403);
    let (mut ws, resp) = upgrade("https://app.example.com").await.unwrap();
    assert_eq!(resp.status(), 101);
    // A trailing newline (as websocat sends each line) is fine; a blank frame half-closes.
    ws.send(Message::text("{\"text\": \"hi\"}\n"))
        .await
        .unwrap();
    ws.send(Message::text("\n")).await.unwrap();
    let (frames, code, _) = rest_of(&mut ws).await;
    assert_eq!(code, 1000, "{frames:?}");
    assert_eq!(frames[0]["result"]["text"], "hi");
}

#[tokio::test]
async fn a_silent_call_and_a_call_past_its_deadline_end_with_deadline_exceeded() {
    let env = start("streams: { idle_timeout: 200ms }\n").await;
    let mut ws = open(&env, CHAT).await;
    // Nothing sent either way.
    let (frames, code, reason) = rest_of(&mut ws).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["status"]["code"], 4);
    assert_eq!((code, reason.as_str()), (4004, "DEADLINE_EXCEEDED"));

    let env = start("rest:\n  methods:\n    demo.v1.ChatService.Chat: { timeout: 300ms }\n").await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "still there?"})).await;
    let (frames, code, _) = rest_of(&mut ws).await;
    assert_eq!(frames[0]["result"]["text"], "still there?");
    assert_eq!(frames.last().unwrap()["status"]["code"], 4, "{frames:?}");
    assert_eq!(code, 4004);
}

#[tokio::test]
async fn without_cors_only_the_gateways_own_pages_may_open_a_call() {
    let env = start("").await;
    let upgrade = |origin: Option<&str>| {
        let mut req = env
            .url(CHAT)
            .replace("http://", "ws://")
            .into_client_request()
            .unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    let err = upgrade(Some("https://evil.example")).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP answer, got {err:?}");
    };
    assert_eq!(resp.status(), 403);
    // the gateway's own page, and a client that is not a page
    for origin in [Some(env.base.as_str()), None] {
        let (mut ws, resp) = upgrade(origin).await.unwrap();
        assert_eq!(resp.status(), 101);
        ws.send(Message::text("{\"text\": \"hi\"}")).await.unwrap();
        half_close(&mut ws).await;
        let (frames, code, _) = rest_of(&mut ws).await;
        assert_eq!(code, 1000, "{frames:?}");
    }
}

/// A connection from `local` (a 127.0.0.0/8 address of its own, under its own per-address
/// limit) to the gateway.
async fn connect_from(env: &TestEnv, local: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let addr = env.base.trim_start_matches("http://").parse().unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether a fresh connection from `local` gets an answer to a GET (else it was closed at once,
/// past the connection limits).
async fn served_from(env: &TestEnv, local: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = connect_from(env, local).await;
    if s.write_all(b"GET /v1/users/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer or a close")
        .unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200")
}

#[tokio::test]
async fn an_open_socket_keeps_its_place_under_the_connection_limits() {
    let env = start("limits:\n  max_connections_per_ip: 1\n").await;
    let local = "127.0.0.7";
    let req = env
        .url(CHAT)
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(connect_from(&env, local).await);
    let (mut ws, resp) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    send_json(&mut ws, json!({"text": "hi"})).await;
    assert_eq!(next_json(&mut ws).await["result"]["text"], "hi");
    // the upgraded socket is still this address's one connection
    assert!(!served_from(&env, local).await);
    assert!(
        served_from(&env, "127.0.0.8").await,
        "other addresses are served"
    );
    half_close(&mut ws).await;
    let (_, code, _) = rest_of(&mut ws).await;
    assert_eq!(code, 1000);
    drop(ws);
    // once the socket is gone, the address may connect again
    portico_e2e::faults::wait_until("the socket's place released", async || {
        served_from(&env, local).await
    })
    .await;
}

#[tokio::test]
async fn a_shutdown_ends_open_calls_with_unavailable() {
    let mut env = start(LONG_CHATS).await;
    let mut ws = open(&env, CHAT).await;
    send_json(&mut ws, json!({"text": "hi"})).await;
    assert_eq!(next_json(&mut ws).await["result"]["text"], "hi");
    env.begin_shutdown();
    let (frames, code, reason) = rest_of(&mut ws).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["status"]["code"], 14, "{frames:?}");
    assert!(
        frames[0]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{frames:?}"
    );
    assert_eq!((code, reason.as_str()), (4014, "UNAVAILABLE"));
    // the backend's call was cancelled, not left running
    let knobs = env.demo.users.knobs.clone();
    portico_e2e::faults::wait_until("the chat cancelled at the backend", async || {
        knobs.cancelled("Chat") == 1
    })
    .await;
}
