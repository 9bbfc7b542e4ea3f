//! The aggregated GraphQL schema over the demo services: joins across services with batching,
//! field kinds, partial failures with precise errors.

use portico_demo::DemoService;
use portico_e2e::TestEnv;
use serde_json::json;

const HOME: &str = r#"
query Home($id: Int64!) {
  user(id: $id) {
    id
    displayName
    orders {
      id
      status
      items {
        quantity
        product { id title price { currencyCode units } }
      }
    }
  }
}"#;

#[tokio::test]
async fn one_query_joins_users_orders_and_products_with_one_batch_call() {
    let env = TestEnv::start().await;
    let r = env.graphql(HOME, json!({"id": "1"})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let user = &r["data"]["user"];
    assert_eq!(user["displayName"], "Ada Lovelace");
    let orders = user["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3);
    let mut product_ids = std::collections::BTreeSet::new();
    for o in orders {
        for item in o["items"].as_array().unwrap() {
            let p = &item["product"];
            assert!(p["title"].is_string(), "{item}");
            product_ids.insert(p["id"].as_str().unwrap().to_string());
        }
    }
    assert!(product_ids.len() > 1);
    let users = env.knobs(DemoService::Users);
    let orders_k = env.knobs(DemoService::Orders);
    let catalog = env.knobs(DemoService::Catalog);
    assert_eq!(users.calls("GetUser"), 1);
    assert_eq!(orders_k.calls("ListOrdersByUser"), 1);
    assert_eq!(
        catalog.calls("BatchGetProducts"),
        1,
        "all products in one batch"
    );
    assert_eq!(catalog.calls("GetProduct"), 0);
}

#[tokio::test]
async fn identical_calls_in_one_request_are_made_once() {
    let env = TestEnv::start().await;
    let q = r#"{ a: user(id: "2") { displayName } b: user(id: "2") { email } c: user(id: "3") { id } }"#;
    let r = env.graphql(q, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["data"]["a"]["displayName"], "Grace Hopper");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 2);
}

#[tokio::test]
async fn a_failing_backend_nulls_only_its_fields_with_precise_errors() {
    let env = TestEnv::start().await;
    env.knobs(DemoService::Catalog).fail_next(1);
    let q = r#"{ user(id: "1") { displayName orders { id items { product { title } } } } product(id: "p-2") { title } }"#;
    let r = env.graphql(q, json!({})).await;
    assert_eq!(r["data"]["user"]["displayName"], "Ada Lovelace", "{r}");
    let errors = r["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    let e = &errors[0];
    assert_eq!(e["extensions"]["code"], "UNAVAILABLE", "{e}");
    assert_eq!(e["extensions"]["service"], "demo.v1.CatalogService", "{e}");
    assert!(e["path"].is_array(), "{e}");
}

#[tokio::test]
async fn not_found_is_a_field_error_with_the_status_name_and_details() {
    let env = TestEnv::start().await;
    let r = env
        .graphql(
            r#"{ user(id: "999") { id } product(id: "p-1") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["user"], json!(null), "{r}");
    assert_eq!(r["data"]["product"]["id"], "p-1");
    let e = &r["errors"][0];
    assert_eq!(e["extensions"]["code"], "NOT_FOUND");
    assert_eq!(e["path"], json!(["user"]));
    assert_eq!(
        e["extensions"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ResourceInfo"
    );
}

#[tokio::test]
async fn every_field_kind_round_trips_through_graphql() {
    let env = TestEnv::start().await;
    let m = r#"
mutation($u: UserInput!) {
  createUser(user: $u) {
    id displayName role tags loyaltyPoints avatar nickname verified rating createdAt
    attributes { key value }
    preferences
    address { city }
    phone chatHandle
  }
}"#;
    let vars = json!({"u": {
        "displayName": "GQL", "email": "g@q.l", "role": "USER_ROLE_SUPPORT",
        "tags": ["x", "y"], "loyaltyPoints": "18446744073709551615", "avatar": "AAEC/w==",
        "nickname": "", "verified": true, "rating": 2.5,
        "attributes": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}],
        "preferences": {"theme": "dark", "n": [1, 2]},
        "address": {"city": "Rome"},
        "contact": {"chatHandle": "@gql"}
    }});
    let r = env.graphql(m, vars).await;
    assert!(r.get("errors").is_none(), "{r}");
    let u = &r["data"]["createUser"];
    assert_eq!(u["role"], "USER_ROLE_SUPPORT");
    assert_eq!(u["loyaltyPoints"], "18446744073709551615");
    assert_eq!(u["avatar"], "AAEC/w==");
    assert_eq!(u["nickname"], "");
    assert_eq!(
        u["attributes"],
        json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    );
    assert_eq!(u["preferences"]["theme"], "dark");
    assert_eq!(u["address"]["city"], "Rome");
    assert_eq!(u["chatHandle"], "@gql");
    assert_eq!(u["phone"], json!(null));
    assert!(u["createdAt"].as_str().unwrap().ends_with('Z'));

    // two oneof members at once is rejected by validation, before any call
    let bad = json!({"u": {"displayName": "X", "email": "a@b", "contact": {"phone": "1", "chatHandle": "2"}}});
    let r = env.graphql(m, bad).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("exactly one field"),
        "{r}"
    );
}

#[tokio::test]
async fn products_durations_wrappers_and_unsigned_ids() {
    let env = TestEnv::start().await;
    let r = env
        .graphql(
            r#"{ batchGetProducts(ids: ["p-1", "p-2"]) { products { id sku shippingTime reviewScore status attributes { key value } thumbnail } } }"#,
            json!({}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let p = &r["data"]["batchGetProducts"]["products"][0];
    assert!(p["sku"].is_string());
    assert!(p["shippingTime"].as_str().unwrap().ends_with('s'));
    assert!(p["status"].as_str().unwrap().starts_with("PRODUCT_STATUS_"));
}
