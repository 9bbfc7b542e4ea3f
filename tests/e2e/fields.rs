//! Every field kind round-trips through the canonical proto3 JSON mapping, both ways.

use portico_e2e::TestEnv;
use serde_json::json;

#[tokio::test]
async fn every_user_field_kind_round_trips() {
    let env = TestEnv::start().await;
    let input = json!({
        "user": {
            "displayName": "Round Trip",
            "email": "rt@example.com",
            "role": "USER_ROLE_SUPPORT",
            "address": {"street": "1 Main St", "city": "Lyon", "countryCode": "FR"},
            "tags": ["a", "b"],
            "attributes": {"k1": "v1", "k2": "v2"},
            "nickname": "",
            "preferences": {"theme": "light", "sizes": [1, 2.5], "nested": {"on": true}, "none": null},
            "avatar": "AAEC/w==",
            "chatHandle": "@rt",
            "loyaltyPoints": "18446744073709551615",
            "verified": true,
            "rating": 3.25,
            "legacyUsername": "old"
        }
    });
    let r = env.json("POST", "/v1/users", &input).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    let sent = &input["user"];
    for key in [
        "displayName",
        "email",
        "role",
        "address",
        "tags",
        "attributes",
        "avatar",
        "chatHandle",
        "loyaltyPoints",
        "verified",
        "rating",
        "legacyUsername",
    ] {
        assert_eq!(u[key], sent[key], "field {key} in {u}");
    }
    // a wrapper keeps an empty string (presence), int64 ids are strings, timestamps RFC 3339
    assert_eq!(u["nickname"], "");
    assert!(u["id"].is_string());
    assert!(u["createdAt"].as_str().unwrap().ends_with('Z'), "{u}");
    // Struct numbers are doubles: 1 comes back as 1.0, which JSON compares equal to 1
    assert_eq!(u["preferences"]["sizes"], json!([1.0, 2.5]));
    assert_eq!(u["preferences"]["nested"], json!({"on": true}));
    assert_eq!(u["preferences"]["none"], json!(null));
    assert!(u.get("phone").is_none(), "only one oneof member: {u}");
}

#[tokio::test]
async fn alternative_input_forms_are_accepted() {
    let env = TestEnv::start().await;
    // proto field names, numbers for 64-bit ints and enums, URL-safe base64
    let r = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {
                "display_name": "Alt", "email": "alt@example.com", "role": 2,
                "loyalty_points": 42, "avatar": "AAEC_w"
            }}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    assert_eq!(u["role"], "USER_ROLE_ADMIN");
    assert_eq!(u["loyaltyPoints"], "42");
    assert_eq!(u["avatar"], "AAEC/w==");
}

#[tokio::test]
async fn big_integers_keep_their_precision() {
    let env = TestEnv::start().await;
    let u = env.get("/v1/users/1").await.json();
    // beyond 2^53: a JSON number would have lost the last digits
    assert_eq!(u["loyaltyPoints"], "18446744073709551000");
}

#[tokio::test]
async fn orders_and_products_carry_the_remaining_kinds() {
    let env = TestEnv::start().await;
    let orders = env.get("/v1/users/1/orders").await;
    assert_eq!(orders.status, 200, "{}", orders.text);
    let orders = orders.json();
    let o = &orders["orders"][0];
    assert!(o["placedAt"].as_str().unwrap().ends_with('Z'), "{o}");
    assert!(
        o["deliveryEstimate"].as_str().unwrap().ends_with('s'),
        "duration: {o}"
    );
    assert!(o["items"].as_array().is_some_and(|i| !i.is_empty()));
    assert!(
        o["total"]["units"].is_string(),
        "int64 in nested message: {o}"
    );
    assert!(
        o.get("card").is_some() || o.get("voucherCode").is_some(),
        "{o}"
    );

    let p = env.get("/v1/products/p-1").await.json();
    assert!(p["sku"].is_string(), "fixed64 as string: {p}");
    assert!(p["shippingTime"].as_str().unwrap().ends_with('s'), "{p}");
    assert!(
        p["status"].as_str().unwrap().starts_with("PRODUCT_STATUS_"),
        "{p}"
    );
    assert!(p["attributes"].is_object(), "{p}");
}

#[tokio::test]
async fn proto_field_names_on_output_when_configured() {
    let env = TestEnv::start_with("rest:\n  use_proto_field_names: true\n").await;
    let u = env.get("/v1/users/1").await.json();
    assert_eq!(u["display_name"], "Ada Lovelace");
    assert!(u.get("displayName").is_none());
}

#[tokio::test]
async fn unpopulated_fields_on_output_when_configured() {
    let env = TestEnv::start_with("rest:\n  emit_unpopulated: true\n").await;
    let r = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {"displayName": "Min", "email": "m@x.io"}, "validateOnly": true}),
        )
        .await;
    let u = r.json();
    assert_eq!(u["verified"], false, "{u}");
    assert_eq!(u["tags"], json!([]), "{u}");
}
