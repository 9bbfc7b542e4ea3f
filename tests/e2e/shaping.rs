//! Response shaping per client, with the real `shaping` sections of `bff-web/config.yaml` and
//! `bff-mobile/config.yaml`: redaction on the GraphQL and REST doors, lean mobile payloads,
//! ETag/304 and compression negotiation.

use std::io::{Read, Write};
use std::time::Duration;

use futures::StreamExt;
use portico_e2e::{TestEnv, build_snapshot, demo_config, repo_root};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The `shaping` section of a BFF's example config, as a top-level YAML key (JSON is YAML).
fn profile_shaping(bff: &str) -> String {
    let cfg = portico::config::load(&repo_root().join(bff).join("config.yaml"))
        .unwrap_or_else(|e| panic!("{bff}/config.yaml loads: {e}"));
    format!(
        "shaping: {}\n",
        serde_json::to_string(&cfg.shaping).expect("shaping serializes")
    )
}

/// Demo backends + a gateway with the shaping of `bff-web` or `bff-mobile`.
async fn start_profile(bff: &str) -> TestEnv {
    TestEnv::start_with(&profile_shaping(bff)).await
}

/// A raw response: status, headers, body bytes (not decoded).
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn raw(req: reqwest::RequestBuilder) -> Raw {
    let resp = req.send().await.expect("request sent");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body read").to_vec(),
    }
}

async fn get(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = env.client.get(env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    raw(req).await
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gzip");
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("br");
        }
        "zstd" => out = zstd::stream::decode_all(body).expect("zstd"),
        other => panic!("unexpected coding {other}"),
    }
    out
}

/// A JSON body, parsed (protobuf maps come in any order: compare values, not bytes).
fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

const ORDER_QUERY: &str =
    r#"{ order(id: "o-1001") { id internalNotes card { brand cardNumber } } }"#;

#[tokio::test]
async fn redaction_applies_to_graphql_fields() {
    let env = start_profile("bff-web").await;
    let r = env.graphql(ORDER_QUERY, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let order = &r["data"]["order"];
    assert_eq!(order["card"]["cardNumber"], "************1111", "{r}");
    assert_eq!(order["card"]["brand"], "visa");
    assert_eq!(order["internalNotes"], Value::Null, "dropped: null");

    // Through a link, at depth, in lists.
    let r = env
        .graphql(
            r#"{ user(id: "1") { orders { id internalNotes card { cardNumber } } } }"#,
            json!({}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let text = r.to_string();
    assert!(!text.contains("4111111111111111"), "{text}");
    assert!(!text.contains("fragile"), "{text}");
    assert!(text.contains("************1111"), "{text}");

    // The schema says so.
    let r = env
        .graphql(
            r#"{ __type(name: "Order") { fields { name description type { kind } } } }"#,
            json!({}),
        )
        .await;
    let fields = r["data"]["__type"]["fields"].as_array().unwrap();
    let notes = fields
        .iter()
        .find(|f| f["name"] == "internalNotes")
        .unwrap();
    assert_eq!(notes["type"]["kind"], "SCALAR", "nullable now: {notes}");
    assert!(
        notes["description"]
            .as_str()
            .unwrap()
            .contains("always null")
    );
}

#[tokio::test]
async fn redaction_applies_to_transcoded_rest_replies_and_streams() {
    let env = start_profile("bff-web").await;
    let r = env.get("/v1/orders/o-1001").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order = r.json();
    assert_eq!(order["card"]["cardNumber"], "************1111", "{order}");
    assert_eq!(order["card"]["brand"], "visa");
    assert!(order.get("internalNotes").is_none(), "dropped: absent");
    assert!(!r.text.contains("fragile") && !r.text.contains("4111111111111111"));

    let r = env.get("/v1/users/1/orders").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("************1111"), "{}", r.text);
    assert!(
        !r.text.contains("4111111111111111") && !r.text.contains("fragile"),
        "{}",
        r.text
    );

    let r = env.get("/v1/users/1/orders:watch?maxEvents=3").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains("4111111111111111") && !r.text.contains("fragile"),
        "{}",
        r.text
    );
}

/// The mobile home screen as a GraphQL query: user 5 has no tags, every other order is paid
/// by voucher (no card), notes are dropped.
const HOME: &str = r#"
query Home($id: Int64!) {
  user(id: $id) {
    displayName
    tags
    nickname
    orders {
      id
      status
      internalNotes
      voucherCode
      card { cardNumber }
      items { quantity product { title } }
    }
  }
}"#;

async fn home_bytes(env: &TestEnv) -> (usize, Value) {
    let body = json!({"query": HOME, "variables": {"id": "5"}});
    let r = env.json("POST", "/graphql", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.text.len(), r.json())
}

#[tokio::test]
async fn the_mobile_home_screen_is_leaner_than_the_web_one() {
    let web = start_profile("bff-web").await;
    let mobile = start_profile("bff-mobile").await;
    let (web_bytes, w) = home_bytes(&web).await;
    let (mobile_bytes, m) = home_bytes(&mobile).await;
    assert!(
        w.get("errors").is_none() && m.get("errors").is_none(),
        "{w} {m}"
    );

    // Web: full payload, nulls and empty lists kept, products as objects.
    let wu = &w["data"]["user"];
    assert_eq!(wu["tags"], json!([]), "{wu}");
    let wo = wu["orders"].as_array().unwrap();
    assert_eq!(wo.len(), 3);
    for o in wo {
        assert!(o.as_object().unwrap().contains_key("internalNotes"), "{o}");
        assert_eq!(o["internalNotes"], Value::Null);
        assert!(o.as_object().unwrap().contains_key("voucherCode"));
        assert!(o.as_object().unwrap().contains_key("card"));
        for item in o["items"].as_array().unwrap() {
            assert!(item["product"]["title"].is_string(), "{item}");
        }
    }

    // Mobile: no null members, no empty lists, products flattened to their title.
    let mu = &m["data"]["user"];
    assert_eq!(mu["displayName"], wu["displayName"]);
    assert!(mu.get("tags").is_none(), "empty list omitted: {mu}");
    let mo = mu["orders"].as_array().unwrap();
    assert_eq!(mo.len(), 3);
    for (o, full) in mo.iter().zip(wo) {
        let keys = o.as_object().unwrap();
        assert!(!keys.contains_key("internalNotes"), "{o}");
        assert_eq!(keys.contains_key("card"), !full["card"].is_null(), "{o}");
        assert_eq!(
            keys.contains_key("voucherCode"),
            !full["voucherCode"].is_null()
        );
        if let Some(card) = o.get("card") {
            assert_eq!(card["cardNumber"], "************1111");
        }
        for (item, full_item) in o["items"]
            .as_array()
            .unwrap()
            .iter()
            .zip(full["items"].as_array().unwrap())
        {
            assert_eq!(item["product"], full_item["product"]["title"], "{item}");
        }
    }
    assert!(
        mobile_bytes < web_bytes,
        "mobile {mobile_bytes} bytes, web {web_bytes} bytes"
    );
    // The fields removed account for at least the nulls of three orders.
    assert!(
        web_bytes - mobile_bytes > 3 * r#","internalNotes":null"#.len(),
        "mobile {mobile_bytes} bytes, web {web_bytes} bytes"
    );
}

#[tokio::test]
async fn lean_payloads_keep_the_nulls_errors_point_at() {
    let env = start_profile("bff-mobile").await;
    let r = env
        .graphql(
            r#"{ user(id: "4242") { id } other: user(id: "1") { displayName nickname } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["path"], json!(["user"]), "{r}");
    assert_eq!(r["data"]["user"], Value::Null, "{r}");
    assert_eq!(r["data"]["other"]["displayName"], "Ada Lovelace");
}

#[tokio::test]
async fn etag_and_304_on_get_for_graphql_and_rest() {
    let env = start_profile("bff-web").await;
    for path in [
        "/v1/orders/o-1001".to_string(),
        format!(
            "/graphql?query={}",
            "%7B%20order(id%3A%20%22o-1001%22)%20%7B%20id%20status%20%7D%20%7D"
        ),
    ] {
        let first = get(&env, &path, &[]).await;
        assert_eq!(first.status, 200, "{path}");
        let tag = first.header("etag").to_string();
        assert!(
            tag.starts_with("W/\"") && tag.ends_with('"') && tag.len() == 36,
            "{path}: a weak ETag: {tag:?}"
        );
        let again = get(&env, &path, &[]).await;
        assert_eq!(again.header("etag"), tag, "stable");

        let strong = tag.trim_start_matches("W/").to_string();
        let list = format!("\"nope\", {tag}");
        for condition in [tag.as_str(), strong.as_str(), list.as_str(), "*"] {
            let r = get(&env, &path, &[("if-none-match", condition)]).await;
            assert_eq!(r.status, 304, "{path} with If-None-Match: {condition}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), tag);
            assert_eq!(r.header("content-type"), "");
        }
        let r = get(&env, &path, &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status, 200);
        assert_eq!(json_of(&r.body), json_of(&first.body));
    }

    // Not on POST, not on errors, not on streams.
    let r = env
        .json("POST", "/graphql", &json!({"query": ORDER_QUERY}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), "");
    let r = env.get("/v1/orders/o-404").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("etag"), "");
    let r = env.get("/v1/users/1/orders:watch?maxEvents=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), "");
}

#[tokio::test]
async fn compression_is_negotiated_by_accept_encoding() {
    let env = start_profile("bff-web").await;
    let path = "/v1/users?pageSize=25";
    let identity = get(&env, path, &[]).await;
    assert_eq!(identity.status, 200);
    assert!(identity.body.len() > 1024, "{} bytes", identity.body.len());
    assert_eq!(identity.header("content-encoding"), "");
    assert!(
        identity.header("vary").contains("accept-encoding"),
        "a response that could be compressed varies: {:?}",
        identity.headers
    );
    let identity_tag = identity.header("etag").to_string();

    for (accept, coding) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("gzip;q=0, br", "br"),
        ("*;q=0.5, zstd;q=0", "br"),
    ] {
        let r = get(&env, path, &[("accept-encoding", accept)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-encoding"),
            coding,
            "Accept-Encoding: {accept}"
        );
        assert!(r.body.len() < identity.body.len());
        assert_eq!(
            json_of(&decode(coding, &r.body)),
            json_of(&identity.body),
            "{accept}"
        );
        assert!(r.header("vary").contains("accept-encoding"));
        // One weak tag for all codings (of the identity content), revalidating to a 304.
        let tag = r.header("etag").to_string();
        assert_eq!(tag, identity_tag, "{accept}");
        let not_modified = get(
            &env,
            path,
            &[("accept-encoding", accept), ("if-none-match", &tag)],
        )
        .await;
        assert_eq!(not_modified.status, 304, "{accept}");
        assert_eq!(not_modified.header("etag"), tag);
        assert!(not_modified.header("vary").contains("accept-encoding"));
    }

    // q=0 everywhere, or only unknown codings: identity.
    for accept in [
        "gzip;q=0",
        "deflate",
        "identity",
        "br;q=0, zstd;q=0, gzip;q=0",
    ] {
        let r = get(&env, path, &[("accept-encoding", accept)]).await;
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(r.header("content-encoding"), "", "{accept}");
        assert_eq!(json_of(&r.body), json_of(&identity.body));
    }

    // Below min_size (1KiB on the web profile): never compressed.
    let small = get(&env, "/v1/users/2", &[("accept-encoding", "gzip")]).await;
    assert_eq!(small.status, 200);
    assert!(small.body.len() < 1024, "{} bytes", small.body.len());
    assert_eq!(small.header("content-encoding"), "");

    // GraphQL answers too.
    let q = json!({"query": r#"{ users(pageSize: 25) { users { id displayName email } } }"#});
    let r = raw(env
        .client
        .post(env.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept-encoding", "br")
        .body(q.to_string()))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "br");
    let body: Value = serde_json::from_slice(&decode("br", &r.body)).unwrap();
    assert_eq!(body["data"]["users"]["users"].as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn compressed_streams_are_flushed_message_by_message() {
    let env = start_profile("bff-web").await;
    // The second event would come a minute later: the first one must arrive on its own.
    let resp = env
        .client
        .get(env.url("/v1/users/1/orders:watch?maxEvents=2&interval=60s"))
        .header("accept-encoding", "gzip")
        .header("grpc-timeout", "50S")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-encoding").unwrap(),
        "gzip",
        "streams are compressed"
    );
    let mut chunks = resp.bytes_stream();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let first_line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = chunks.next().await {
            decoder.write_all(&chunk.unwrap()).unwrap();
            decoder.flush().unwrap();
            if let Some(end) = decoder.get_ref().iter().position(|b| *b == b'\n') {
                return decoder.get_ref()[..end].to_vec();
            }
        }
        panic!("the stream ended before its first line");
    })
    .await
    .expect("the first event arrives while the stream is still open");
    let event: Value = serde_json::from_slice(&first_line).unwrap();
    assert_eq!(event["result"]["sequence"], "1", "{event}");
}

#[tokio::test]
async fn mobile_compresses_from_a_smaller_size() {
    let web = start_profile("bff-web").await;
    let mobile = start_profile("bff-mobile").await;
    let path = "/v1/users/2";
    let w = get(&web, path, &[("accept-encoding", "gzip")]).await;
    let m = get(&mobile, path, &[("accept-encoding", "gzip")]).await;
    assert!(m.body.len() < 1024);
    assert_eq!(w.header("content-encoding"), "");
    assert_eq!(m.header("content-encoding"), "gzip");
    assert_eq!(json_of(&decode("gzip", &m.body)), json_of(&w.body));
}

#[tokio::test]
async fn bad_rules_fail_the_load_naming_the_key() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let load = |extra: &str| build_snapshot_text(demo_config(&demo, extra));
    let e = load("shaping:\n  redact:\n    Card.pin: drop\n").await;
    assert!(
        e.contains("shaping.redact.Card.pin: Card (demo.v1.Card) has no field \"pin\""),
        "{e}"
    );
    let e = load("shaping:\n  redact:\n    Carte.cardNumber: drop\n").await;
    assert!(
        e.contains("shaping.redact.Carte.cardNumber: unknown type \"Carte\""),
        "{e}"
    );
    let e = load("shaping:\n  redact:\n    Card.expiryYear: mask\n").await;
    assert!(
        e.contains("shaping.redact.Card.expiryYear: mask applies to string fields only"),
        "{e}"
    );
    let e = load("shaping:\n  flatten: [\"user..orders\"]\n").await;
    assert!(e.contains("shaping.flatten[0]"), "{e}");
    let e = load("shaping:\n  redact:\n    Card.cardNumber: blur\n").await;
    assert!(e.contains("shaping.redact.Card.cardNumber"), "{e}");
    // With GraphQL off, full protobuf names.
    let e = load(
        "graphql: { enabled: false }\nshaping:\n  redact:\n    demo.v1.Card.cardNumber: last4\n    demo.v1.Order.nope: drop\n",
    )
    .await;
    assert!(e.contains("shaping.redact.demo.v1.Order.nope"), "{e}");
}

async fn build_snapshot_text(yaml: String) -> String {
    match build_snapshot(&yaml).await {
        Ok(_) => String::from("(loaded)"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn head_gets_the_tag_of_get() {
    let env = start_profile("bff-web").await;
    let g = get(&env, "/healthz", &[]).await;
    let h = raw(env.client.head(env.url("/healthz"))).await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert!(!g.header("etag").is_empty());
    assert_eq!(h.header("etag"), g.header("etag"));
    let tag = g.header("etag").to_string();
    let h = raw(env
        .client
        .head(env.url("/healthz"))
        .header("if-none-match", tag))
    .await;
    assert_eq!(h.status, 304);
}
