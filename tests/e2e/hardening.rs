//! The front door under attack: request smuggling by ambiguous framing, connection floods
//! (in all and from one address), bodies trickled to hold a connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portico_demo::DemoService;
use portico_e2e::{TestEnv, metric};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(env: &TestEnv) -> SocketAddr {
    env.base.trim_start_matches("http://").parse().unwrap()
}

/// Writes `bytes` on a fresh connection and reads until the gateway closes it.
async fn exchange(env: &TestEnv, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(env)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The responses in a byte stream: (status line, headers lowercased, body), each framed by
/// its Content-Length.
fn responses(mut text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    while let Some((head, rest)) = text.split_once("\r\n\r\n") {
        let head_lc = head.to_ascii_lowercase();
        let len = head_lc
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        let status = head.lines().next().unwrap_or("").to_string();
        out.push((status, head_lc, rest[..len].to_string()));
        text = &rest[len..];
    }
    out
}

const SMUGGLED_GET: &str = "GET /v1/users/2 HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_request_with_both_content_length_and_transfer_encoding_is_refused_and_the_connection_closed()
 {
    let env = TestEnv::start().await;
    let body = r#"{"name":"Mallory","email":"m@example.com"}"#;
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for (order, head) in [
        (
            "length first",
            format!(
                "POST /v1/users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\n",
                chunked.len()
            ),
        ),
        (
            "coding first",
            format!(
                "POST /v1/users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n",
                chunked.len()
            ),
        ),
    ] {
        // A second request pipelined behind it: never served.
        let text = exchange(&env, format!("{head}{chunked}{SMUGGLED_GET}").as_bytes()).await;
        let all = responses(&text);
        assert_eq!(all.len(), 1, "{order}: one answer, then the close: {text}");
        let (status, headers, body) = &all[0];
        assert!(status.contains(" 400 "), "{order}: {text}");
        assert!(headers.contains("connection: close"), "{order}: {text}");
        assert!(
            headers.contains("content-type: application/json"),
            "{order}: {text}"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], 3, "{order}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("both Content-Length and Transfer-Encoding"),
            "{order}: {body}"
        );
    }
    // The GraphQL door answers in its own shape.
    let q = r#"{"query":"{ __typename }"}"#;
    let text = exchange(
        &env,
        format!(
            "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{q}\r\n0\r\n\r\n",
            q.len(),
            q.len()
        )
        .as_bytes(),
    )
    .await;
    let all = responses(&text);
    assert_eq!(all.len(), 1, "{text}");
    assert!(all[0].0.contains(" 400 "), "{text}");
    let body: Value = serde_json::from_str(&all[0].2).unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Transfer-Encoding"),
        "{body}"
    );
    assert_eq!(env.knobs(DemoService::Users).calls("CreateUser"), 0);
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 0);
}

#[tokio::test]
async fn pipelined_requests_framed_one_way_each_are_all_served() {
    let env = TestEnv::start().await;
    let q = r#"{"query":"{ user(id: \"1\") { id } }"}"#;
    // A chunked body holding text that looks like a smuggled request, a body framed by its
    // length, then a GET: three answers.
    let inner = format!(
        "POST /x HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n{SMUGGLED_GET}"
    );
    let json_with_inner = serde_json::json!({"query": "{ user(id: \"1\") { id } }", "operationName": null, "extensions": {"note": inner}}).to_string();
    let stream = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{json_with_inner}\r\n0\r\n\r\n\
         POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{q}\
         GET /v1/users/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        json_with_inner.len(),
        q.len()
    );
    let text = exchange(&env, stream.as_bytes()).await;
    let all = responses(&text);
    assert_eq!(all.len(), 3, "{text}");
    for (status, _, body) in &all {
        assert!(status.contains(" 200 "), "{text}");
        assert!(body.contains("\"1\""), "{body}");
    }
}

/// Opens a connection from `local` (an address of the loopback network) and makes one
/// keep-alive request on it, so the gateway has surely accepted it.
async fn served_connection(env: &TestEnv, local: &str) -> TcpStream {
    let mut s = connect_from(env, local).await;
    assert_eq!(get_on(&mut s).await, 200);
    s
}

async fn connect_from(env: &TestEnv, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(addr(env)).await.unwrap()
}

/// One keep-alive GET on `s`: its status, or 0 when the connection was closed without one.
async fn get_on(s: &mut TcpStream) -> u16 {
    if s.write_all(b"GET /v1/users/1 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .is_err()
    {
        return 0;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("an answer or a close")
        {
            Ok(0) | Err(_) => return 0,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((status, head, body)) = responses(&text).into_iter().next() {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if body.len() == len {
                return status.split(' ').nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

/// Waits until the gateway counts `n` open connections (it notices a close asynchronously).
async fn until_open(env: &TestEnv, n: i64) {
    let readiness = env.gateway.readiness().clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while readiness.open_connections() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} connections open, not {n}", readiness.open_connections()));
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_while_the_open_ones_are_served() {
    let env = TestEnv::start_with(
        "limits:\n  max_connections: 4\n  max_connections_per_ip: null\nadmin:\n  listen: 127.0.0.1:0\n",
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(served_connection(&env, "127.0.0.1").await);
    }
    // The fifth is closed without an answer, from any address.
    for local in ["127.0.0.1", "127.0.0.3"] {
        let mut extra = connect_from(&env, local).await;
        assert_eq!(get_on(&mut extra).await, 0, "refused from {local}");
    }
    // The open ones go on being served.
    for s in &mut open {
        assert_eq!(get_on(s).await, 200);
    }
    assert_eq!(env.gateway.readiness().refusals(), (2, 0));
    let scrape = env.scrape().await;
    assert_eq!(
        metric(
            &scrape,
            "portico_connections_refused_total",
            &[("reason", "max_connections")]
        ),
        2.0
    );
    // One closes: a new one is served again.
    drop(open.pop());
    until_open(&env, 3).await;
    let _again = served_connection(&env, "127.0.0.1").await;
}

#[tokio::test]
async fn with_one_runtime_per_core_the_limit_counts_every_cores_connections() {
    let env = TestEnv::start_cores(
        "limits:\n  max_connections: 16\n  max_connections_per_ip: null\n",
        2,
    )
    .await;
    // 16 connections spread over the two cores' listeners (each core alone would admit 16).
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(served_connection(&env, "127.0.0.1").await);
    }
    assert_eq!(
        env.knobs(DemoService::Users).connections(),
        2,
        "both cores serve"
    );
    for _ in 0..4 {
        let mut extra = connect_from(&env, "127.0.0.1").await;
        assert_eq!(get_on(&mut extra).await, 0, "past the limit, on any core");
    }
    for s in &mut open {
        assert_eq!(get_on(s).await, 200);
    }
    assert_eq!(env.gateway.readiness().refusals(), (4, 0));
    drop(open.pop());
    until_open(&env, 15).await;
    let _again = served_connection(&env, "127.0.0.1").await;
}

#[tokio::test]
async fn one_address_cannot_take_more_than_its_share_of_connections() {
    let env = TestEnv::start_with("limits:\n  max_connections_per_ip: 2\n").await;
    let _a = served_connection(&env, "127.0.0.1").await;
    let mut b = served_connection(&env, "127.0.0.1").await;
    let mut third = connect_from(&env, "127.0.0.1").await;
    assert_eq!(get_on(&mut third).await, 0, "a third from 127.0.0.1");
    // Another address is served, and so are the first two.
    let _c = served_connection(&env, "127.0.0.2").await;
    assert_eq!(get_on(&mut b).await, 200);
    assert_eq!(env.gateway.readiness().refusals(), (0, 1));
    // When one of them closes, the address may open another.
    drop(b);
    until_open(&env, 2).await;
    let _d = served_connection(&env, "127.0.0.1").await;
}

/// Starts an upload of a 1,000-byte body on a fresh connection, then sends one byte every
/// `every` until the gateway answers; returns the answer and how long it took.
async fn trickle(env: &TestEnv, path: &'static str, every: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(addr(env)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
    );
    let start = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            read = s.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = tick.tick() => {
                // The gateway may have answered and closed already.
                let _ = s.write_all(b" ").await;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never cut off: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    (String::from_utf8_lossy(&buf).into_owned(), start.elapsed())
}

#[tokio::test]
async fn bodies_trickled_a_byte_every_two_seconds_are_cut_off_by_the_total_deadline() {
    // The idle bound (10 s by default) never fires on a byte every 2 s; the total one does.
    let env = TestEnv::start_with("limits:\n  body_timeout: 3s\n").await;
    let attackers: Vec<_> = (0..60)
        .map(|i| {
            let path = ["/v1/users", "/graphql", "/v1/users"][i % 3];
            trickle(&env, path, Duration::from_secs(2))
        })
        .collect();
    let attack = futures::future::join_all(attackers);
    // Other clients are served while the attack runs.
    let others = async {
        for _ in 0..20 {
            let r = env.get("/v1/users/2").await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    };
    let (answers, ()) = futures::join!(attack, others);
    for (text, took) in answers {
        let all = responses(&text);
        assert_eq!(all.len(), 1, "{text}");
        let (status, headers, body) = &all[0];
        assert!(status.contains(" 408 "), "{text}");
        assert!(headers.contains("connection: close"), "{text}");
        assert!(body.contains("not complete within 3s"), "{body}");
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(10),
            "cut off after {took:?}"
        );
    }
    assert_eq!(env.knobs(DemoService::Users).calls("CreateUser"), 0);
}

#[tokio::test]
async fn a_raw_utf8_path_reaches_the_backend_as_sent() {
    // Found by cargo-fuzz (`path`): the path normaliser copied bytes above 0x7F one by one as
    // Latin-1 characters, so `café` arrived as `cafÃ©`.
    let env = TestEnv::start().await;
    let text = exchange(
        &env,
        "GET /v1/products/caf\u{e9}%2D1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            .as_bytes(),
    )
    .await;
    let all = responses(&text);
    assert_eq!(all.len(), 1, "{text}");
    assert!(all[0].0.contains(" 404 "), "{text}");
    let body: Value = serde_json::from_str(&all[0].2).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("caf\u{e9}-1"),
        "{body}"
    );
}

#[tokio::test]
async fn free_form_json_is_bounded_by_its_value_count() {
    // A `google.protobuf.Struct` value decodes to a message of its own (~800 bytes of heap for
    // `0,`): 1 MiB of zeros would have taken ~400 MiB. Past `limits.max_struct_values` the
    // body is refused by the scan, before anything is built.
    let env = TestEnv::start_with("limits:\n  max_struct_values: 100\n").await;
    let body = |n: usize| serde_json::json!({"user": {"displayName": "x", "email": "x@example.com", "preferences": {"a": vec![0; n]}}});
    let r = env.json("POST", "/v1/users", &body(98)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.json("POST", "/v1/users", &body(99)).await;
    portico_e2e::assert_error(
        &r,
        400,
        3,
        "more than 100 values inside google.protobuf.Struct",
    );
    assert_eq!(
        r.json()["details"][0]["fieldViolations"][0]["field"],
        "user.preferences.a[98]",
        "{}",
        r.text
    );
    // GraphQL arguments: the same bound.
    let mutation = |n: usize| {
        format!(
            "mutation {{ createUser(user: {{displayName: \"x\", email: \"x@example.com\", preferences: {{a: [{}]}}}}) {{ id }} }}",
            vec!["0"; n].join(", ")
        )
    };
    let ok = env.graphql(&mutation(98), json!({})).await;
    assert!(ok["data"]["createUser"]["id"].is_string(), "{ok}");
    let refused = env.graphql(&mutation(99), json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("more than 100 values inside google.protobuf.Struct"),
        "{refused}"
    );
}

#[tokio::test]
async fn graphql_variables_are_bounded_before_they_are_parsed() {
    // Parsed, a one-letter string in `variables` takes about 95 bytes for its 4 of JSON: the
    // count is checked on the body first (graphql.limits.max_variable_values).
    let env = TestEnv::start_with("graphql:\n  limits:\n    max_variable_values: 100\n").await;
    let query = "query($ids: [String!]) { batchGetProducts(ids: $ids) { products { id } } }";
    let ids = |n: usize| vec!["p-1"; n];
    let refused = env
        .json(
            "POST",
            "/graphql",
            &serde_json::json!({"query": query, "variables": {"ids": ids(100)}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("more than 100 values")
            && refused.text.contains("graphql.limits.max_variable_values"),
        "{}",
        refused.text
    );
    // Within the limit (the variables object, the list, 98 ids): served.
    let served = env
        .json(
            "POST",
            "/graphql",
            &serde_json::json!({"query": query, "variables": {"ids": ids(98)}}),
        )
        .await;
    assert_eq!(served.status, 200, "{}", served.text);
}
