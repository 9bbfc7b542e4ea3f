//! Operations as files and as REST endpoints: variables bound from path, query and body, the
//! GraphQL engine's fan-out behind one REST call, the status rule, per-endpoint deadlines, and
//! load errors for broken operations and clashing routes.

use std::time::Duration;

use portico_demo::DemoService;
use portico_e2e::{TestEnv, build_snapshot, demo_config};
use serde_json::json;
use tonic::Code;

/// The web BFF's operations folder and endpoints, as in `bff-web/config.yaml`.
const WEB: &str = r#"
headers:
  forward: [x-tenant-id]
operations: { dir: bff-web/operations }
endpoints:
  - { path: "/api/home/{userId}", operation: Home, unwrap: user }
  - { path: "/api/products/{id}", operation: Product, unwrap: product }
  - { path: "/api/users/{userId}/orders", operation: Orders, unwrap: ordersByUser }
  - { path: "/api/orders", operation: Orders }
  - { path: "/api/profile/{id}", operation: UpdateProfile, method: POST, unwrap: updateUser }
"#;

/// A field error's code at `errors[i]`.
fn code(body: &serde_json::Value, i: usize) -> &str {
    body["errors"][i]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A 400 in the gateway's google.rpc.Status shape naming `field`.
fn assert_bad_variable(reply: &portico_e2e::Reply, field: &str, fragment: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["code"], 3, "{body}");
    let violation = &body["details"][0]["fieldViolations"][0];
    assert_eq!(violation["field"], field, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(fragment),
        "{fragment:?} in {body}"
    );
}

#[tokio::test]
async fn the_home_endpoint_fans_out_to_three_batched_calls() {
    let env = TestEnv::start_with(WEB).await;
    let r = env
        .send(
            env.client
                .get(env.url("/api/home/1"))
                .header("x-tenant-id", "acme"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-portico-partial"), "");
    let user = r.json();
    assert_eq!(user["displayName"], "Ada Lovelace");
    assert!(user.get("errors").is_none(), "{user}");
    // Unwrapped to `user`, fields in the operation's order.
    assert!(
        r.text
            .starts_with(r#"{"id":"1","displayName":"Ada Lovelace""#),
        "{}",
        r.text
    );
    let orders = user["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3);
    let products: std::collections::BTreeSet<_> = orders
        .iter()
        .flat_map(|o| o["items"].as_array().unwrap().iter())
        .map(|i| i["product"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(products.len() > 1);
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 1);
    assert_eq!(env.knobs(DemoService::Orders).calls("ListOrdersByUser"), 1);
    let catalog = env.knobs(DemoService::Catalog);
    assert_eq!(
        catalog.calls("BatchGetProducts"),
        1,
        "one batch for all products"
    );
    assert_eq!(catalog.calls("GetProduct"), 0);
    // The prepare step's metadata reaches every call.
    let md = env
        .knobs(DemoService::Catalog)
        .last_metadata("BatchGetProducts")
        .unwrap();
    assert_eq!(md.get("x-tenant-id").unwrap(), "acme");
}

#[tokio::test]
async fn path_and_query_parameters_bind_typed_variables() {
    let env = TestEnv::start_with(WEB).await;
    let r = env
        .get("/api/users/1/orders?status=ORDER_STATUS_SHIPPED&pageSize=2")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = r.json();
    let orders = page["orders"].as_array().unwrap();
    assert!(!orders.is_empty());
    assert!(
        orders.iter().all(|o| o["status"] == "ORDER_STATUS_SHIPPED"),
        "{page}"
    );
    // Query parameters alone bind too.
    let r = env.get("/api/orders?userId=2&pageSize=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["ordersByUser"]["orders"].as_array().unwrap().len(),
        1
    );
    let r = env.get("/api/products/p-3").await;
    assert_eq!(r.json()["id"], "p-3");

    assert_bad_variable(&env.get("/api/home/abc").await, "userId", "Int64");
    assert_bad_variable(
        &env.get("/api/users/1/orders?status=LOST").await,
        "status",
        "ORDER_STATUS_PAID",
    );
    assert_bad_variable(
        &env.get("/api/users/1/orders?pageSize=ten").await,
        "pageSize",
        "Int",
    );
    assert_bad_variable(&env.get("/api/orders").await, "userId", "missing variable");
    assert_bad_variable(
        &env.get("/api/users/1/orders?userId=2").await,
        "userId",
        "twice",
    );
    assert_bad_variable(
        &env.get("/api/products/p-1?color=red").await,
        "color",
        "unknown query parameter",
    );
    // Nothing reached a backend for the refused requests.
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 0);
}

#[tokio::test]
async fn mutations_take_a_json_body_on_post() {
    let env = TestEnv::start_with(WEB).await;
    let r = env
        .json(
            "POST",
            "/api/profile/2",
            &json!({"displayName": "Grace B. Hopper"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"id": "2", "displayName": "Grace B. Hopper"})
    );
    assert_eq!(env.knobs(DemoService::Users).calls("UpdateUser"), 1);

    assert_bad_variable(
        &env.json("POST", "/api/profile/2", &json!({})).await,
        "displayName",
        "missing variable",
    );
    assert_bad_variable(
        &env.json("POST", "/api/profile/2", &json!({"displayName": 7}))
            .await,
        "displayName",
        "String",
    );
    assert_bad_variable(
        &env.json(
            "POST",
            "/api/profile/2",
            &json!({"id": "3", "displayName": "x"}),
        )
        .await,
        "id",
        "twice",
    );
    let r = env
        .raw("POST", "/api/profile/2", "text/plain", "displayName=x")
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    let r = env
        .raw("POST", "/api/profile/2", "application/json", "[1]")
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // A query endpoint is GET only; the path exists, so 405 with Allow.
    let r = env.json("POST", "/api/home/1", &json!({})).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("allow"), "GET");
    assert_eq!(env.knobs(DemoService::Users).calls("UpdateUser"), 1);
}

#[tokio::test]
async fn a_partial_result_is_200_with_errors_and_marked() {
    let env = TestEnv::start_with(WEB).await;
    env.knobs(DemoService::Catalog).fail_next(1);
    let r = env.get("/api/home/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-portico-partial"), "true");
    let body = r.json();
    assert_eq!(body["displayName"], "Ada Lovelace");
    assert_eq!(code(&body, 0), "UNAVAILABLE", "{body}");
    assert!(body["orders"][0]["items"][0]["product"].is_null(), "{body}");
}

#[tokio::test]
async fn when_everything_failed_the_most_severe_status_wins() {
    let two = r#"query Two($userId: Int64!, $id: String!) {
  user(id: $userId) { id }
  product(id: $id) { id }
}"#;
    let dir = ops_dir("two", &[("two.graphql", two)]);
    let env = TestEnv::start_with(&format!(
        "operations: {{ dir: {} }}\nendpoints:\n  - {{ path: \"/two/{{userId}}/{{id}}\", operation: Two }}\n  - {{ path: \"/user/{{userId}}\", operation: Two, unwrap: user }}\n",
        dir.display()
    ))
    .await;
    // NOT_FOUND (404) from one root field, UNAVAILABLE (503) from the other: 503.
    env.knobs(DemoService::Users).set_error_rate(1.0);
    let r = env.get("/two/1/p-999").await;
    assert_eq!(r.status, 503, "{}", r.text);
    let body = r.json();
    assert!(body.get("user").is_none(), "{body}");
    let mut codes = vec![code(&body, 0), code(&body, 1)];
    codes.sort();
    assert_eq!(codes, ["NOT_FOUND", "UNAVAILABLE"], "{body}");
    assert_eq!(r.header("x-portico-partial"), "");
    // Only NOT_FOUND: 404.
    env.knobs(DemoService::Users).set_error_rate(0.0);
    let r = env.get("/two/999/p-999").await;
    assert_eq!(r.status, 404, "{}", r.text);
    // One root field fine, the other failed: partial.
    let r = env.get("/two/1/p-999").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-portico-partial"), "true");
    assert_eq!(r.json()["user"]["id"], "1");
    // PERMISSION_DENIED: 403.
    env.knobs(DemoService::Users)
        .set_fail_with(Some(Code::PermissionDenied));
    env.knobs(DemoService::Users).set_error_rate(1.0);
    let r = env.get("/two/1/p-999").await;
    assert_eq!(r.status, 404, "404 beats 403: {}", r.text);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn each_endpoint_has_its_own_deadline() {
    let env = TestEnv::start_with(&format!(
        "{WEB}  - {{ path: \"/api/quick/{{userId}}\", operation: Home, unwrap: user, timeout: 100ms }}\n"
    ))
    .await;
    env.knobs(DemoService::Users)
        .set_latency(Duration::from_millis(400));
    let r = env.get("/api/quick/1").await;
    assert_eq!(r.status, 504, "{}", r.text);
    assert_eq!(code(&r.json(), 0), "DEADLINE_EXCEEDED");
    // The same operation without the short deadline succeeds.
    let r = env.get("/api/home/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn rest_and_graphql_doors_still_work_beside_endpoints() {
    let env = TestEnv::start_with(WEB).await;
    let r = env.get("/v1/users/2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["displayName"], "Grace Hopper");
    let r = env.graphql("{ user(id: 3) { id } }", json!({})).await;
    assert_eq!(r["data"]["user"]["id"], "3");
    let r = env.get("/api/nothing-here").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// A fresh folder holding `files`.
fn ops_dir(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portico-e2e-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn an_operation_broken_by_a_schema_change_fails_the_load() {
    // `shoeSize` is not (or no longer) a field of User.
    let dir = ops_dir(
        "broken",
        &[
            ("fine.graphql", "query Fine { product(id: \"p-1\") { id } }"),
            (
                "broken.graphql",
                "# the profile screen\nquery Profile($userId: Int64!) {\n  user(id: $userId) {\n    id\n    shoeSize\n  }\n}\n",
            ),
        ],
    );
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = demo_config(
        &demo,
        &format!("operations: {{ dir: {} }}\n", dir.display()),
    );
    let e = build_snapshot(&yaml).await.unwrap_err().to_string();
    let file = dir.join("broken.graphql").display().to_string();
    assert!(
        e.contains(&format!(
            "{file}:5:5: operation Profile, field shoeSize: Unknown field \"shoeSize\" on type \"User\""
        )),
        "{e}"
    );
    assert!(e.starts_with("test.yaml: operations: "), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn endpoint_config_errors_name_the_key_and_the_clash() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let build = |endpoints: &str| {
        let yaml = demo_config(
            &demo,
            &format!("operations: {{ dir: bff-web/operations }}\nendpoints:\n{endpoints}"),
        );
        async move {
            build_snapshot(&yaml)
                .await
                .map(|_| ())
                .unwrap_err()
                .to_string()
        }
    };
    let e = build("  - { path: \"/v1/users/{id}\", operation: Product }\n").await;
    assert!(
        e.contains("endpoints[0].path: GET /v1/users/{id} clashes with the REST route GET /v1/users/{id} of demo.v1.UserService.GetUser"),
        "{e}"
    );
    let e = build("  - { path: \"/a/{id}\", operation: Nope }\n").await;
    assert!(
        e.contains("endpoints[0].operation") && e.contains("Home"),
        "{e}"
    );
    let e = build("  - { path: \"/a/{nope}\", operation: Product }\n").await;
    assert!(
        e.contains("endpoints[0].path: {nope} is not a variable"),
        "{e}"
    );
    let e = build("  - { path: \"/a/{id}\", operation: UpdateProfile, method: GET }\n").await;
    assert!(e.contains("endpoints[0].method"), "{e}");
    let e = build("  - { path: \"/a/{id}\", operation: Product, unwrap: user }\n").await;
    assert!(e.contains("endpoints[0].unwrap"), "{e}");
    let e = build(
        "  - { path: \"/a/{id}\", operation: Product }\n  - { path: \"/a/{userId}\", operation: Home }\n",
    )
    .await;
    assert!(
        e.contains("endpoints[1].path") && e.contains("endpoints[0]"),
        "{e}"
    );
}
