//! Safe limits: body size (after decompression), header count and size, slow clients, and the
//! size of a backend's response. (Slow bodies on every door: `front_door.rs`.)

use std::io::Write;
use std::time::Duration;

use portico_demo::DemoService;
use portico_e2e::{TestEnv, assert_error};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let env = TestEnv::start_with("limits:\n  max_body_bytes: 1KiB\n").await;
    let big = json!({"user": {"displayName": "x".repeat(2000), "email": "a@b"}});
    let r = env.json("POST", "/v1/users", &big).await;
    assert_error(&r, 413, 8, "1024 bytes");
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}

#[tokio::test]
async fn the_limit_counts_decompressed_bytes() {
    let env = TestEnv::start_with("limits:\n  max_body_bytes: 1KiB\n").await;
    let big = json!({"user": {"displayName": "x".repeat(5000), "email": "a@b"}}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(big.as_bytes()).unwrap();
    let compressed = gz.finish().unwrap();
    assert!(
        compressed.len() < 1024,
        "the compressed body fits the limit"
    );
    let r = env
        .send(
            env.client
                .post(env.url("/v1/users"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(compressed),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);

    // a small gzip body is decompressed and served
    let small = json!({"user": {"displayName": "Zip", "email": "z@x.io"}}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(small.as_bytes()).unwrap();
    let r = env
        .send(
            env.client
                .post(env.url("/v1/users"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(gz.finish().unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["displayName"], "Zip");

    let r = env
        .send(
            env.client
                .post(env.url("/v1/users"))
                .header("content-encoding", "compress")
                .body("x"),
        )
        .await;
    assert_error(&r, 415, 3, "compress");
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_a_431() {
    let env = TestEnv::start_with("limits:\n  max_headers: 20\n  max_header_bytes: 8KiB\n").await;
    let mut req = env.client.get(env.url("/v1/users/1"));
    for i in 0..30 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let r = env.send(req).await;
    assert_error(&r, 431, 8, "more than the limit of 20");
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-big", "v".repeat(10_000)),
        )
        .await;
    assert_error(&r, 431, 8, "more than the limit of 8192");
    // Past twice the limits, the HTTP parser refuses the request before the gateway sees it.
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-big", "v".repeat(20_000)),
        )
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}

#[tokio::test]
async fn a_response_over_the_limit_is_a_502() {
    let env = TestEnv::start_with("limits:\n  max_response_bytes: 200B\n").await;
    let r = env.get("/v1/users?page_size=50").await;
    assert_error(&r, 502, 13, "larger than 200 bytes");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let env = TestEnv::start_with("limits:\n  header_read_timeout: 200ms\n").await;
    let addr = env.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /v1/users/1 HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the gateway gives up on a slow client")
        .unwrap_or(0);
    // hyper ends the connection without an answer: there is no request to answer yet.
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}

/// An `Upgrade` header does not make a request with a body skip the body limits: a POST
/// saying `Upgrade: x` (no door upgrades a POST) is read under them like any other, on the
/// REST, multipart and gRPC-Web doors alike.
#[tokio::test]
async fn an_upgrade_header_does_not_lift_the_body_limit() {
    let env = TestEnv::start_with("limits:\n  max_body_bytes: 1KiB\n").await;
    let addr = env.base.trim_start_matches("http://").to_string();
    let cases = [
        ("/v1/users", "application/json"),
        ("/v1/products/p-3/photo", "multipart/form-data; boundary=b"),
        ("/demo.v1.UserService/GetUser", "application/grpc-web+proto"),
    ];
    for (path, content_type) in cases {
        let body = vec![b'a'; 4000];
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nupgrade: x\r\nconnection: upgrade\r\n\
             content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // the gateway may answer before it has read everything: a failed write is fine
        let _ = s.write_all(&body).await;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        if content_type.starts_with("application/grpc-web") {
            // gRPC-Web answers 200 with the status in its headers: RESOURCE_EXHAUSTED
            assert!(text.contains("grpc-status: 8"), "{path}: {text}");
        } else {
            assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        }
    }
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
    assert_eq!(env.knobs(DemoService::Catalog).total_calls(), 0);
}
