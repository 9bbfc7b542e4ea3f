//! The two shipped BFFs, each from its own example config: the same home screen served by
//! both, leaner on mobile; mobile runs only its trusted documents.

use portico_demo::DemoService;
use portico_e2e::TestEnv;
use serde_json::{Value, json};

fn count_nulls(v: &Value) -> usize {
    match v {
        Value::Null => 1,
        Value::Array(a) => a.iter().map(count_nulls).sum(),
        Value::Object(o) => o.values().map(count_nulls).sum(),
        _ => 0,
    }
}

#[tokio::test]
async fn the_home_screen_is_leaner_on_mobile_than_on_web() {
    let web = TestEnv::start_example("bff-web").await;
    let mobile = TestEnv::start_example("bff-mobile").await;
    let w = web.get("/api/home/1").await;
    let m = mobile.get("/api/home/1").await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(m.status, 200, "{}", m.text);
    // one batched fan-out each: user, orders, products
    for env in [&web, &mobile] {
        assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 1);
        assert_eq!(env.knobs(DemoService::Orders).calls("ListOrdersByUser"), 1);
        assert_eq!(env.knobs(DemoService::Catalog).calls("BatchGetProducts"), 1);
    }
    assert!(
        m.text.len() * 2 < w.text.len(),
        "mobile {} bytes vs web {} bytes",
        m.text.len(),
        w.text.len()
    );
    let (wj, mj) = (w.json(), m.json());
    assert_eq!(wj["displayName"], mj["displayName"]);
    // web keeps the full shape; mobile flattens the single-field product wrapper and omits nulls
    let web_item = &wj["orders"][0]["items"][0];
    let mobile_item = &mj["orders"][0]["items"][0];
    assert!(web_item["product"].is_object(), "{web_item}");
    assert!(mobile_item["product"].is_string(), "{mobile_item}");
    assert_eq!(count_nulls(&mj), 0, "{mj}");
    // both redact the staff-only notes and the card number
    for env in [&web, &mobile] {
        let r = env.get("/v1/orders/o-1001").await.json();
        assert!(r.get("internalNotes").is_none(), "{r}");
        if let Some(card) = r.get("card") {
            assert!(
                card["cardNumber"].as_str().unwrap().starts_with("****"),
                "{card}"
            );
        }
    }
}

#[tokio::test]
async fn mobile_runs_only_its_trusted_documents() {
    let mobile = TestEnv::start_example("bff-mobile").await;
    let r = mobile
        .graphql(r#"{ user(id: "1") { email } }"#, json!({}))
        .await;
    assert!(
        r["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap()
            .starts_with("PERSISTED_QUERY"),
        "{r}"
    );
    assert_eq!(mobile.knobs(DemoService::Users).total_calls(), 0);
    let web = TestEnv::start_example("bff-web").await;
    let r = web
        .graphql(r#"{ user(id: "1") { email } }"#, json!({}))
        .await;
    assert_eq!(r["data"]["user"]["email"], "ada@example.com", "{r}");
}
