//! gRPC-Web on the client port: unary and server-streaming calls in binary and text, backend
//! statuses passed through, the gateway's refusals as gRPC statuses (auth, rate limits,
//! malformed frames, unserved methods, deadlines), CORS for browsers, redaction, metadata,
//! the access line and metrics, and REST keeping the same path for JSON.

use std::time::Duration;

use portico_demo::DemoService;
use portico_demo::pb::{
    GetOrderRequest, GetUserRequest, Order, OrderEvent, User, WatchOrdersRequest, order,
};
use portico_e2e::grpc_web::{WebMode, frame};
use portico_e2e::{TestEnv, logs, metric};
use serde_json::json;
use sha2::Digest;

const GET_USER: &str = "/demo.v1.UserService/GetUser";
const WATCH: &str = "/demo.v1.OrderService/WatchOrders";

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const DEADLINE_EXCEEDED: i32 = 4;
const NOT_FOUND: i32 = 5;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNIMPLEMENTED: i32 = 12;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn watch(user_id: i64, max_events: i32) -> WatchOrdersRequest {
    WatchOrdersRequest {
        user_id,
        max_events,
        interval: None,
    }
}

#[tokio::test]
async fn unary_calls_in_binary_and_text() {
    let env = TestEnv::start().await;
    for (mode, content_type) in [
        (WebMode::Binary, "application/grpc-web+proto"),
        (WebMode::Text, "application/grpc-web-text+proto"),
    ] {
        let r = env
            .grpc_web(GET_USER, &GetUserRequest { id: 1 }, mode, &[])
            .await;
        assert_eq!(r.http, 200, "{r:?}");
        assert_eq!(r.headers["content-type"], content_type);
        assert!(!r.trailers_only, "{r:?}");
        assert_eq!(r.code(), OK, "{r:?}");
        let users: Vec<User> = r.decode();
        assert_eq!(users.len(), 1, "{r:?}");
        assert_eq!(users[0].id, 1);
        assert_eq!(users[0].display_name, "Ada Lovelace");
        assert!(!r.headers["x-request-id"].is_empty());
    }
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 2);
}

#[tokio::test]
async fn server_streams_send_each_message_then_an_ok_trailer() {
    let env = TestEnv::start().await;
    for mode in [WebMode::Binary, WebMode::Text] {
        let r = env.grpc_web(WATCH, &watch(1, 3), mode, &[]).await;
        assert_eq!(r.code(), OK, "{r:?}");
        let events: Vec<OrderEvent> = r.decode();
        assert_eq!(
            events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [1, 2, 3],
            "{r:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| e.order.as_ref().is_some_and(|o| o.user_id == 1))
        );
    }
}

#[tokio::test]
async fn a_stream_failing_midway_ends_with_the_status_in_its_trailer_frame() {
    let env = TestEnv::start().await;
    env.knobs(DemoService::Orders).fail_stream_after(Some(2));
    let r = env
        .grpc_web(WATCH, &watch(1, 5), WebMode::Binary, &[])
        .await;
    assert!(!r.trailers_only, "{r:?}");
    assert_eq!(r.decode::<OrderEvent>().len(), 2, "{r:?}");
    assert_eq!(r.code(), UNAVAILABLE, "{r:?}");
    // An error before the first message is trailers-only.
    let r = env
        .grpc_web(WATCH, &watch(999, 3), WebMode::Text, &[])
        .await;
    assert!(r.trailers_only, "{r:?}");
    r.assert_status(NOT_FOUND, "user 999 has no orders to watch");
}

#[tokio::test]
async fn backend_statuses_pass_through_with_their_message_and_details() {
    let env = TestEnv::start().await;
    let r = env
        .grpc_web(GET_USER, &GetUserRequest { id: 4242 }, WebMode::Binary, &[])
        .await;
    assert!(r.trailers_only, "{r:?}");
    r.assert_status(NOT_FOUND, "user 4242 not found");
    assert_eq!(r.headers["content-type"], "application/grpc-web+proto");
    // The backend's typed details, as gRPC sends them (a google.rpc.Status, base64).
    assert!(!r.trailer("grpc-status-details-bin").is_empty(), "{r:?}");
}

fn sha256(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

#[tokio::test]
async fn callers_without_credentials_are_unauthenticated() {
    let env = TestEnv::start_with(&format!(
        "auth:\n  api_keys:\n    header: x-api-key\n    keys:\n      - {{ id: partner-a, sha256: {} }}\n",
        sha256("key-a")
    ))
    .await;
    let call = |headers: &'static [(&'static str, &'static str)]| {
        env.grpc_web(
            GET_USER,
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            headers,
        )
    };
    let r = call(&[]).await;
    r.assert_status(UNAUTHENTICATED, "");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 0);
    call(&[("x-api-key", "wrong")])
        .await
        .assert_status(UNAUTHENTICATED, "");
    let ok = call(&[("x-api-key", "key-a")]).await;
    assert_eq!(ok.code(), OK, "{ok:?}");
    assert_eq!(ok.decode::<User>()[0].id, 1);
}

#[tokio::test]
async fn rules_by_method_refuse_with_permission_denied() {
    let env = TestEnv::start_with(&format!(
        "auth:\n  api_keys:\n    keys:\n      - {{ id: partner-a, sha256: {} }}\nauthorization:\n  default: authenticated\n  methods:\n    demo.v1.UserService.GetUser: {{ scopes: [users.read] }}\n",
        sha256("key-a")
    ))
    .await;
    let r = env
        .grpc_web(
            GET_USER,
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[("x-api-key", "key-a")],
        )
        .await;
    r.assert_status(PERMISSION_DENIED, "calling demo.v1.UserService.GetUser");
}

#[tokio::test]
async fn a_rate_limited_call_is_resource_exhausted() {
    let env = TestEnv::start_with(
        "rate_limits:\n  rules:\n    - { name: per-ip, key: ip, methods: [demo.v1.UserService.GetUser], limit: 1, per: 1h }\n",
    )
    .await;
    let first = env
        .grpc_web(GET_USER, &GetUserRequest { id: 1 }, WebMode::Binary, &[])
        .await;
    assert_eq!(first.code(), OK, "{first:?}");
    let second = env
        .grpc_web(GET_USER, &GetUserRequest { id: 1 }, WebMode::Binary, &[])
        .await;
    second.assert_status(RESOURCE_EXHAUSTED, "rate limit \"per-ip\" reached");
    assert!(!second.headers["retry-after"].is_empty(), "{second:?}");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 1);
}

#[tokio::test]
async fn unserved_methods_are_unimplemented() {
    let env = TestEnv::start().await;
    let body = GetUserRequest { id: 1 };
    for (path, fragment) in [
        (
            "/demo.v1.OrderService/ImportOrders",
            "demo.v1.OrderService.ImportOrders is client-streaming",
        ),
        (
            "/demo.v1.UserService/Nope",
            "unknown method Nope of service demo.v1.UserService",
        ),
        ("/nope.v1.Nothing/Get", "unknown service nope.v1.Nothing"),
        ("/v1/users/1", "is not a gRPC method path"),
    ] {
        let r = env.grpc_web(path, &body, WebMode::Binary, &[]).await;
        r.assert_status(UNIMPLEMENTED, fragment);
    }
    // A compressed message: no grpc-encoding is served.
    let compressed = frame(0x01, b"\x08\x01");
    env.grpc_web_raw(GET_USER, compressed, WebMode::Binary, &[])
        .await
        .assert_status(UNIMPLEMENTED, "compressed");
    assert_eq!(env.demo.users.knobs.total_calls(), 0);
}

#[tokio::test]
async fn malformed_bodies_are_invalid_argument() {
    let env = TestEnv::start().await;
    let mut two = frame(0, b"\x08\x01");
    two.extend(frame(0, b"\x08\x02"));
    for (body, mode, fragment) in [
        (
            b"\x00\x00\x00".to_vec(),
            WebMode::Binary,
            "truncated gRPC-Web frame",
        ),
        (
            b"\x00\x00\x00\x00\x09\x08\x01".to_vec(),
            WebMode::Binary,
            "truncated gRPC-Web frame: 9 bytes expected at byte 5, 2 present",
        ),
        (
            b"\x00\x7f\xff\xff\xff".to_vec(),
            WebMode::Binary,
            "over the limit of 1048576 bytes",
        ),
        (b"AAAA!!!!".to_vec(), WebMode::Text, "not valid base64"),
        (Vec::new(), WebMode::Binary, "has no message"),
        (two, WebMode::Binary, "has 2 messages"),
        (
            frame(0x80, b"grpc-status: 0\r\n"),
            WebMode::Binary,
            "flag 0x80",
        ),
    ] {
        let r = env.grpc_web_raw(GET_USER, body.clone(), mode, &[]).await;
        r.assert_status(INVALID_ARGUMENT, fragment);
    }
    // Other codecs than protobuf are not served.
    let r = env
        .send(
            env.client
                .post(env.url(GET_USER))
                .header("content-type", "application/grpc-web+json")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), "3", "{r:?}");
    // A malformed grpc-timeout, refused by the ingress in the door's form.
    env.grpc_web(
        GET_USER,
        &GetUserRequest { id: 1 },
        WebMode::Binary,
        &[("grpc-timeout", "soon")],
    )
    .await
    .assert_status(INVALID_ARGUMENT, "invalid grpc-timeout");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 0);
    // Bytes that are not the method's input message go through as they are: the backend
    // refuses them, with its own status.
    let r = env
        .grpc_web_raw(GET_USER, frame(0, b"\xff\xff"), WebMode::Binary, &[])
        .await;
    assert_ne!(r.code(), OK, "{r:?}");
    assert!(r.messages.is_empty(), "{r:?}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_resource_exhausted() {
    let env = TestEnv::start_with("limits: { max_body_bytes: 64 }\n").await;
    let r = env
        .grpc_web_raw(GET_USER, frame(0, &[0u8; 100]), WebMode::Binary, &[])
        .await;
    r.assert_status(RESOURCE_EXHAUSTED, "larger than the limit of 64 bytes");
}

#[tokio::test]
async fn grpc_timeout_sets_the_deadline() {
    let env = TestEnv::start().await;
    env.knobs(DemoService::Users)
        .set_latency(Duration::from_secs(30));
    let r = env
        .grpc_web(
            GET_USER,
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[("grpc-timeout", "200m")],
        )
        .await;
    r.assert_status(DEADLINE_EXCEEDED, "did not answer within");
    // The stream's whole life is under the deadline too.
    env.knobs(DemoService::Orders)
        .set_latency(Duration::from_secs(30));
    let r = env
        .grpc_web(
            WATCH,
            &watch(1, 3),
            WebMode::Text,
            &[("grpc-timeout", "100m")],
        )
        .await;
    r.assert_status(DEADLINE_EXCEEDED, "");
}

const CORS: &str = "cors:\n  origins: [\"https://app.example.com\"]\n";

#[tokio::test]
async fn browsers_get_the_cors_headers_grpc_web_needs() {
    let env = TestEnv::start_with(CORS).await;
    let preflight = env
        .send(
            env.client
                .request(reqwest::Method::OPTIONS, env.url(GET_USER))
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,x-grpc-web,x-user-agent,grpc-timeout",
                ),
        )
        .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .contains("POST")
    );
    let allowed = preflight.header("access-control-allow-headers");
    for h in ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert_eq!(env.demo.users.knobs.total_calls(), 0);
    // The call itself, and a refusal: a page can read their status.
    for id in [1, 4242] {
        let r = env
            .grpc_web(
                GET_USER,
                &GetUserRequest { id },
                WebMode::Text,
                &[("origin", "https://app.example.com")],
            )
            .await;
        let exposed = r.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_string();
        for h in ["grpc-status", "grpc-message"] {
            assert!(exposed.contains(h), "{h} not in {exposed}");
        }
        assert_eq!(
            r.headers["access-control-allow-origin"],
            "https://app.example.com"
        );
    }
}

#[tokio::test]
async fn json_to_the_same_path_is_still_rest() {
    let env = TestEnv::start().await;
    let r = env.json("POST", GET_USER, &json!({"id": "1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json()["displayName"], "Ada Lovelace");
    // And with gRPC-Web off, a gRPC-Web body there is the REST door's 415.
    let env = TestEnv::start_with("grpc_web: { enabled: false }\n").await;
    let r = env
        .grpc_web(GET_USER, &GetUserRequest { id: 1 }, WebMode::Binary, &[])
        .await;
    assert_eq!(r.http, 415, "{r:?}");
}

#[tokio::test]
async fn the_switch_is_strict_config() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let yaml = portico_e2e::demo_config(&demo, "grpc_web: { enable: false }\n");
    let e = portico_e2e::build_snapshot(&yaml)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("grpc_web") && e.contains("enable"), "{e}");
}

#[tokio::test]
async fn redaction_holds_on_grpc_web_too() {
    let env = TestEnv::start_example("bff-web").await;
    let r = env
        .grpc_web(
            "/demo.v1.OrderService/GetOrder",
            &GetOrderRequest {
                id: "o-1001".into(),
                user_id: 0,
            },
            WebMode::Binary,
            &[],
        )
        .await;
    assert_eq!(r.code(), OK, "{r:?}");
    let order = &r.decode::<Order>()[0];
    let Some(order::Payment::Card(card)) = &order.payment else {
        panic!("o-1001 is paid by card: {order:?}");
    };
    assert_eq!(card.card_number, "************1111");
    assert!(order.internal_notes.is_empty(), "{order:?}");
}

#[tokio::test]
async fn forwarded_headers_reach_the_backend_as_metadata() {
    let env = TestEnv::start().await;
    let r = env
        .grpc_web(
            GET_USER,
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[("x-tenant-id", "acme"), ("x-request-id", "grpc-web-md-1")],
        )
        .await;
    assert_eq!(r.code(), OK, "{r:?}");
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .expect("the call's metadata");
    assert_eq!(md.get("x-tenant-id").unwrap(), "acme");
    assert_eq!(md.get("x-request-id").unwrap(), "grpc-web-md-1");
    // grpc-web's own headers are not forwarded.
    assert!(md.get("x-grpc-web").is_none());
}

#[tokio::test]
async fn access_lines_and_metrics_name_the_door() {
    let logs = logs();
    let env = TestEnv::start_with("admin: { listen: 127.0.0.1:0 }\n").await;
    for (id, user) in [("gw-access-1", 1), ("gw-access-2", 4242)] {
        env.grpc_web(
            GET_USER,
            &GetUserRequest { id: user },
            WebMode::Binary,
            &[("x-request-id", id)],
        )
        .await;
    }
    let lines = logs.access_lines("gw-access-");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["span"]["door"], "grpc_web", "{}", lines[0]);
    assert_eq!(lines[0]["route"], GET_USER);
    assert_eq!(lines[0]["status"], 200);
    assert!(lines[0].get("grpc_status").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["grpc_status"], NOT_FOUND, "{}", lines[1]);
    assert_eq!(lines[1]["span"]["rpc"], "demo.v1.UserService.GetUser");

    let s = env.scrape().await;
    let of = |route: &str| {
        metric(
            &s,
            "http_server_request_duration_seconds",
            &[("portico_door", "grpc_web"), ("http_route", route)],
        )
    };
    assert_eq!(of(GET_USER), 2.0);
    // An unknown method is counted unmatched, never under its raw path.
    env.grpc_web(
        "/demo.v1.UserService/Nope",
        &GetUserRequest { id: 1 },
        WebMode::Binary,
        &[],
    )
    .await;
    let s = env.scrape().await;
    let unmatched = metric(
        &s,
        "http_server_request_duration_seconds",
        &[("portico_door", "grpc_web"), ("http_route", "unmatched")],
    );
    assert_eq!(unmatched, 1.0);
}
