//! Every kind of route: google.api.http bindings, additional bindings, custom verbs,
//! multi-segment variables, `**`, query parameters, default routes, 404 and 405.

use portico_demo::DemoService;
use portico_e2e::{TestEnv, assert_error};
use serde_json::json;

#[tokio::test]
async fn get_with_a_path_variable() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/json");
    let u = r.json();
    assert_eq!(u["id"], "1");
    assert_eq!(u["displayName"], "Ada Lovelace");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 1);
}

#[tokio::test]
async fn additional_bindings_and_default_routes_reach_the_same_method() {
    let env = TestEnv::start().await;
    let a = env.get("/v1/people/2").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["displayName"], "Grace Hopper");
    let b = env
        .json("POST", "/demo.v1.UserService/GetUser", &json!({"id": "2"}))
        .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(a.json(), b.json());
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 2);
}

#[tokio::test]
async fn query_parameters_fill_nested_and_repeated_fields() {
    let env = TestEnv::start().await;
    let r = env
        .get("/v1/users?pageSize=50&filter.role=USER_ROLE_ADMIN&filter.tags=vip&filter.tags=early-adopter")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let users = r.json()["users"].as_array().cloned().unwrap_or_default();
    assert!(!users.is_empty());
    for u in &users {
        assert_eq!(u["role"], "USER_ROLE_ADMIN");
        let tags = u["tags"].as_array().unwrap();
        assert!(tags.contains(&json!("vip")) && tags.contains(&json!("early-adopter")));
    }
    // proto names work too, and paging returns a token
    let p = env.get("/v1/users?page_size=5").await.json();
    assert_eq!(p["users"].as_array().unwrap().len(), 5);
    assert!(!p["nextPageToken"].as_str().unwrap_or("").is_empty());
    assert_eq!(p["totalSize"], 25);
}

#[tokio::test]
async fn post_with_body_star_and_a_configured_success_status() {
    let env = TestEnv::start_with(
        "rest:\n  methods:\n    demo.v1.UserService.CreateUser: { success_status: 201 }\n",
    )
    .await;
    let r = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {"displayName": "Linus", "email": "linus@example.com"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let u = r.json();
    assert_eq!(u["displayName"], "Linus");
    assert!(u["id"].as_str().unwrap().parse::<i64>().unwrap() > 25);
    let again = env
        .get(&format!("/v1/users/{}", u["id"].as_str().unwrap()))
        .await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn patch_with_a_sub_field_body_fills_the_update_mask() {
    let env = TestEnv::start().await;
    let r = env
        .json(
            "PATCH",
            "/v1/users/3",
            &json!({"displayName": "Renamed", "address": {"city": "Oslo"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    assert_eq!(u["displayName"], "Renamed");
    assert_eq!(u["address"]["city"], "Oslo");
    // fields outside the mask were kept
    assert!(!u["email"].as_str().unwrap_or("").is_empty(), "{u}");
    assert!(
        !u["address"]["street"].as_str().unwrap_or("").is_empty(),
        "street kept: {u}"
    );
}

#[tokio::test]
async fn custom_verbs_and_response_body() {
    let env = TestEnv::start().await;
    let r = env
        .get("/v1/products:batchGet?ids=p-1&ids=p-2&ids=nope")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut ids: Vec<String> = r.json()["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["p-1", "p-2"]);
    // response_body: "products" makes the body the array itself
    let s = env
        .json("POST", "/v1/products:search", &json!({"query": ""}))
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert!(s.json().is_array(), "{}", s.text);
}

#[tokio::test]
async fn multi_segment_variables_and_double_star() {
    let env = TestEnv::start().await;
    let p1 = env.get("/v1/products/p-1").await.json();
    let name = p1["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("categories/"), "{name}");
    let by_name = env.get(&format!("/v1/{name}")).await;
    assert_eq!(by_name.status, 200, "{}", by_name.text);
    assert_eq!(by_name.json()["id"], "p-1");

    let img = env.get("/v1/products/p-1/images/front/large.png").await;
    assert_eq!(img.status, 200, "{}", img.text);
    let img = img.json();
    assert_eq!(img["path"], "front/large.png");
    assert_eq!(img["contentType"], "image/png");
    // %2F stays encoded inside a multi-segment variable
    let enc = env.get("/v1/products/p-1/images/a%2Fb/c.webp").await.json();
    assert_eq!(enc["path"], "a%2Fb/c.webp");
    // but a single-segment variable is fully decoded
    let r = env.get("/v1/products/p%2D1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["id"], "p-1");
}

#[tokio::test]
async fn unknown_paths_404_and_wrong_methods_405_with_allow() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/nothing/here").await;
    assert_error(&r, 404, 5, "no route matches GET /v1/nothing/here");
    let r = env.send(env.client.delete(env.url("/v1/users/1"))).await;
    assert_error(&r, 405, 12, "not allowed");
    let allow = r.header("allow");
    assert!(allow.contains("GET") && allow.contains("PATCH"), "{allow}");
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}
