//! REST requests and replies written straight between JSON and wire bytes (`rest.decoder` and
//! `rest.encoder: direct`, the defaults) against prost-reflect (`reflect`): the same requests
//! over the same demo data give the same answers (the same bytes, but for the order of map
//! entries) and the same errors, in both JSON styles, and the metrics show which way each
//! request and reply went (redacted types and `response_body` bindings go the reflect way).
//! Both walkers are differential-tested on random messages of every demo and corpus type in
//! `gateway/src/transcode/tests_direct.rs` and `tests_from_json.rs`.

use portico_e2e::faults::raw_grpc_backend;
use portico_e2e::{TestEnv, metric};
use serde_json::json;

/// Every unary REST route of the demo with data behind it: scalars of every kind, enums,
/// Timestamps, wrappers, Struct, maps, bytes, repeated messages, unknown ids (errors).
const GETS: &[&str] = &[
    "/v1/users/1",
    "/v1/people/2",
    "/v1/users/5",
    "/v1/users?pageSize=3",
    "/v1/users/1/orders",
    "/v1/users/5/orders",
    "/v1/orders/o-1001",
    "/v1/users/1/orders/o-1001",
    "/v1/products/p-1",
    "/v1/categories/books/products/p-2",
    "/v1/products:batchGet?ids=p-1&ids=p-2&ids=p-nope",
    "/v1/users/999999",
    "/v1/orders/nope",
];

/// Sends the same requests to `a` and `b`; returns how many answers were compared.
async fn same_answers(a: &TestEnv, b: &TestEnv) -> usize {
    let created = json!({
        "user": {
            "displayName": "Wire Bytes",
            "email": "wire@example.com",
            "role": "USER_ROLE_SUPPORT",
            "address": {"street": "1 Main St", "city": "Lyon", "countryCode": "FR"},
            "tags": ["a", "b"],
            "attributes": {"k1": "v1", "k2": "v2"},
            "nickname": "",
            "preferences": {"theme": "light", "sizes": [1, 2.5], "nested": {"on": true}, "none": null},
            "avatar": "AAEC/w==",
            "chatHandle": "@wb",
            "loyaltyPoints": "18446744073709551615",
            "verified": true,
            "rating": 3.25
        }
    });
    let (mut compared, mut identical) = (0, 0);
    let mut check = |what: String, x: portico_e2e::Reply, y: portico_e2e::Reply| {
        assert_eq!(
            x.status, y.status,
            "{what}: status: {} vs {}",
            x.text, y.text
        );
        assert_eq!(x.header("content-type"), y.header("content-type"), "{what}");
        compared += 1;
        if x.text == y.text {
            identical += 1;
            return;
        }
        // Map entries come in the backend's order on the direct path and in hash order from
        // prost-reflect (which changes from one process to the next); the user created by
        // each gateway has its own creation time. The rest is written the same way: same
        // length (but for the creation times, whose nanoseconds may end in zeros that
        // are not written), same values.
        let (mut u, mut v) = (x.json(), y.json());
        let without_time = |text: &str, json: &serde_json::Value| {
            ["createdAt", "created_at"]
                .iter()
                .filter_map(|k| json[*k].as_str())
                .fold(text.to_string(), |t, time| t.replace(time, ""))
        };
        assert_eq!(
            without_time(&x.text, &u).len(),
            without_time(&y.text, &v).len(),
            "{what}:\n{}\n{}",
            x.text,
            y.text
        );
        for w in [&mut u, &mut v] {
            if let Some(o) = w.as_object_mut() {
                o.remove("createdAt");
                o.remove("created_at");
            }
        }
        assert_eq!(u, v, "{what}: the answers differ:\n{}\n{}", x.text, y.text);
    };
    let (x, y) = (
        a.json("POST", "/v1/users", &created).await,
        b.json("POST", "/v1/users", &created).await,
    );
    assert_eq!(x.status, 200, "{}", x.text);
    let id = x.json()["id"].as_str().expect("an id").to_string();
    check("POST /v1/users".into(), x, y);
    let mut paths: Vec<String> = GETS.iter().map(|p| p.to_string()).collect();
    paths.push(format!("/v1/users/{id}"));
    for path in &paths {
        let (x, y) = (a.get(path).await, b.get(path).await);
        check(format!("GET {path}"), x, y);
    }
    // The default route, and a search (a POST body).
    for (path, body) in [
        ("/demo.v1.UserService/GetUser", json!({"id": id})),
        ("/demo.v1.CatalogService/GetProduct", json!({"id": "p-3"})),
        ("/v1/products:search", json!({"query": "a", "pageSize": 5})),
    ] {
        let (x, y) = (
            a.json("POST", path, &body).await,
            b.json("POST", path, &body).await,
        );
        check(format!("POST {path}"), x, y);
    }
    // Bodies that are not valid: the same 400 naming the same field.
    for body in [
        json!({"user": {"displayName": 5}}),
        json!({"user": {"loyaltyPoints": -1}}),
        json!({"user": {"role": "NO_SUCH_ROLE"}}),
        json!({"user": {"tags": [null]}}),
        json!({"user": {"nope": 1}}),
    ] {
        let (x, y) = (
            a.json("POST", "/v1/users", &body).await,
            b.json("POST", "/v1/users", &body).await,
        );
        assert_eq!(x.status, 400, "{body}: {}", x.text);
        assert_eq!(x.text, y.text, "{body}");
        compared += 1;
        identical += 1;
    }
    // Replies without maps are the same bytes, fields in the same order.
    assert!(identical >= 5, "{identical} of {compared} identical");
    compared
}

async fn requests(env: &TestEnv, decoder: &str) -> f64 {
    metric(
        &env.scrape().await,
        "portico_rest_requests_total",
        &[("decoder", decoder)],
    )
}

async fn replies(env: &TestEnv, encoder: &str) -> f64 {
    metric(
        &env.scrape().await,
        "portico_rest_replies_total",
        &[("encoder", encoder)],
    )
}

#[tokio::test]
async fn direct_replies_are_those_of_prost_reflect() {
    for style in [
        "",
        "  use_proto_field_names: true\n  emit_unpopulated: true\n",
    ] {
        let config = |way: &str| {
            format!(
                "admin: {{ listen: 127.0.0.1:0 }}\nrest:\n  encoder: {way}\n  decoder: {way}\n{style}"
            )
        };
        let direct = TestEnv::start_with(&config("direct")).await;
        let reflect = TestEnv::start_with(&config("reflect")).await;
        let compared = same_answers(&direct, &reflect).await;
        assert!(compared >= 17, "{compared}");

        // Every successful reply of the direct gateway was written from its bytes but the
        // search's (its binding's `response_body` picks a field); none of the reflect one's.
        let (d, r) = (
            replies(&direct, "direct").await,
            replies(&direct, "reflect").await,
        );
        assert!(
            d >= 14.0 && r == 1.0,
            "direct gateway: {d} direct, {r} reflect"
        );
        let (d, r) = (
            replies(&reflect, "direct").await,
            replies(&reflect, "reflect").await,
        );
        assert!(
            d == 0.0 && r >= 14.0,
            "reflect gateway: {d} direct, {r} reflect"
        );
        // Every request of the direct gateway was written from its JSON (the invalid ones
        // were refused, by the checking pass or the direct decoder, and are not counted).
        let (d, r) = (
            requests(&direct, "direct").await,
            requests(&direct, "reflect").await,
        );
        assert!(
            d >= 17.0 && r == 0.0,
            "direct gateway: {d} direct, {r} reflect"
        );
        let d = requests(&reflect, "direct").await;
        assert!(d == 0.0, "reflect gateway: {d} direct");
    }
}

#[tokio::test]
async fn redacted_types_are_decoded_and_redacted_before_they_are_written() {
    let env = TestEnv::start_with(
        "admin: { listen: 127.0.0.1:0 }\nshaping:\n  redact:\n    Card.cardNumber: last4\n    Order.internalNotes: drop\n",
    )
    .await;
    let r = env.get("/v1/orders/o-1001").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order = r.json();
    assert_eq!(order["card"]["cardNumber"], "************1111", "{order}");
    assert!(order.get("internalNotes").is_none(), "{order}");
    assert!(!r.text.contains("4111111111111111") && !r.text.contains("fragile"));
    assert_eq!(replies(&env, "reflect").await, 1.0);
    assert_eq!(replies(&env, "direct").await, 0.0);

    // A type no rule reaches still goes the direct way.
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(replies(&env, "direct").await, 1.0);
}

/// Both gateways with the catalog answered by a [`raw_grpc_backend`] sending `payload`.
async fn raw_pair(payload: &'static [u8]) -> (TestEnv, TestEnv) {
    let mut envs = Vec::new();
    for encoder in ["direct", "reflect"] {
        let endpoint = raw_grpc_backend(payload).await;
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .expect("demo backends start");
        let yaml = portico_e2e::demo_config(
            &demo,
            &format!("admin: {{ listen: 127.0.0.1:0 }}\nrest:\n  encoder: {encoder}\n"),
        )
        .replace(&demo.catalog.endpoint(), &endpoint);
        envs.push(TestEnv::start_config(demo, &yaml).await);
    }
    let reflect = envs.pop().unwrap();
    (envs.pop().unwrap(), reflect)
}

#[tokio::test]
async fn a_reply_the_plan_cannot_write_is_written_by_prost_reflect() {
    // `price` sent twice: the wire format merges the two (prost-reflect does), the direct
    // path does not and hands the reply over.
    const TWICE: &[u8] = b"\x0a\x03p-1\x2a\x05\x0a\x03EUR\x2a\x02\x10\x07";
    let (direct, reflect) = raw_pair(TWICE).await;
    let (x, y) = (
        direct.get("/v1/products/p-1").await,
        reflect.get("/v1/products/p-1").await,
    );
    assert_eq!(x.status, 200, "{}", x.text);
    assert_eq!(x.text, y.text);
    assert_eq!(
        x.json(),
        json!({"id": "p-1", "price": {"currencyCode": "EUR", "units": "7"}})
    );
    assert_eq!(replies(&direct, "reflect").await, 1.0);
    assert_eq!(replies(&direct, "direct").await, 0.0);
}

#[tokio::test]
async fn a_reply_that_is_not_its_type_is_the_same_clear_error_either_way() {
    // `id` is not UTF-8.
    const GARBLED: &[u8] = b"\x0a\x02\xff\xfe";
    let (direct, reflect) = raw_pair(GARBLED).await;
    let (x, y) = (
        direct.get("/v1/products/p-1").await,
        reflect.get("/v1/products/p-1").await,
    );
    assert_eq!(x.status, 500, "{}", x.text);
    assert_eq!(x.text, y.text);
    assert!(x.text.contains("not a valid demo.v1.Product"), "{}", x.text);
}
