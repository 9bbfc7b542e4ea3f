//! The OpenAPI 3.1 document of the REST routes: served at `/openapi.json`, valid for a real
//! OpenAPI 3.1 validator, listing every route the router serves with its parameters as the
//! router binds them, and the answers the gateway gives match the schemas it documents.

use portico_e2e::{TestEnv, validate_openapi};
use serde_json::{Value, json};

async fn document(env: &TestEnv) -> Value {
    let r = env.get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/json");
    r.json()
}

fn params<'a>(op: &'a Value, place: &str) -> Vec<&'a str> {
    op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == place)
                .filter_map(|p| p["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_document_is_valid_openapi_and_lists_every_route() {
    let env = TestEnv::start().await;
    let doc = document(&env).await;
    assert_eq!(doc["openapi"], "3.1.0");

    // Every route of the router, under its method.
    let snapshot = env.gateway.snapshot();
    let mut count = 0;
    for (method, template, _) in snapshot.routes.routes() {
        let (path, _) = portico::openapi::paths::openapi_path(template);
        let op = &doc["paths"][&path][method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{method} {template:?} ({path}) is not documented"
        );
        count += 1;
    }
    assert!(count >= 20, "{count} routes");

    // Parameters as the router binds them.
    let get_user = &doc["paths"]["/v1/users/{id}"]["get"];
    assert_eq!(params(get_user, "path"), ["id"]);
    assert_eq!(get_user["x-grpc-method"], "demo.v1.UserService.GetUser");
    let list = &doc["paths"]["/v1/users"]["get"];
    assert!(params(list, "query").contains(&"pageSize"), "{list}");
    let by_name = &doc["paths"]["/v1/{name}"]["get"];
    assert_eq!(
        by_name["parameters"][0]["schema"]["pattern"],
        "^categories/[^/]+/products/[^/]+$"
    );
    let images = &doc["paths"]["/v1/products/{product_id}/images/{path}"]["get"];
    assert!(images.is_object(), "a ** variable is one parameter");
    assert!(doc["paths"]["/v1/products:batchGet"]["get"].is_object());
    let create = &doc["paths"]["/v1/users"]["post"];
    assert!(create["requestBody"]["content"]["application/json"].is_object());
    let watch = &doc["paths"]["/v1/users/{user_id}/orders:watch"]["get"];
    assert!(watch["responses"]["200"]["content"]["application/x-ndjson"].is_object());
    let import = &doc["paths"]["/v1/orders:import"]["post"];
    assert!(import["requestBody"]["content"]["application/x-ndjson"].is_object());
    // The proto3 JSON mapping of field kinds.
    let user = &doc["components"]["schemas"]["demo.v1.User"]["properties"];
    assert_eq!(user["id"]["type"], "string", "int64 as a string");
    assert_eq!(user["createdAt"]["format"], "date-time");
    assert_eq!(user["avatar"]["contentEncoding"], "base64");
    assert_eq!(user["attributes"]["type"], "object");
    assert!(doc["components"]["schemas"]["demo.v1.UserRole"]["enum"].is_array());
    assert!(doc["components"]["schemas"]["google.rpc.Status"].is_object());
    assert!(
        doc["components"]["schemas"]["google.rpc.BadRequest"]["properties"]["fieldViolations"]
            .is_object(),
        "the detail types errors carry are documented"
    );

    // The answers match the schemas documented for them (and the document is valid 3.1).
    let mut samples = Vec::new();
    let created = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {"displayName": "Doc", "email": "doc@example.com", "attributes": {"a": "b"}, "preferences": {"x": [1, "y"]}, "avatar": "AAE="}}),
        )
        .await;
    samples.push(json!({"method": "post", "path": "/v1/users", "status": created.status, "body": created.json()}));
    for (path, doc_path) in [
        ("/v1/users/1", "/v1/users/{id}"),
        ("/v1/people/2", "/v1/people/{id}"),
        ("/v1/users?pageSize=3", "/v1/users"),
        ("/v1/users/1/orders", "/v1/users/{user_id}/orders"),
        ("/v1/orders/o-1001", "/v1/orders/{id}"),
        ("/v1/products/p-1", "/v1/products/{id}"),
        ("/v1/categories/books/products/p-2", "/v1/{name}"),
        (
            "/v1/products:batchGet?ids=p-1&ids=p-2",
            "/v1/products:batchGet",
        ),
        ("/v1/users/999999", "/v1/users/{id}"),
        ("/v1/users/abc", "/v1/users/{id}"),
    ] {
        let r = env.get(path).await;
        samples
            .push(json!({"method": "get", "path": doc_path, "status": r.status, "body": r.json()}));
    }
    let r = env
        .json("POST", "/v1/products:search", &json!({"query": "a"}))
        .await;
    samples.push(json!({"method": "post", "path": "/v1/products:search", "status": r.status, "body": r.json()}));
    let r = env
        .json(
            "POST",
            "/demo.v1.CatalogService/GetProduct",
            &json!({"id": "p-3"}),
        )
        .await;
    samples.push(json!({"method": "post", "path": "/demo.v1.CatalogService/GetProduct", "status": r.status, "body": r.json()}));
    let n = samples.len();
    let (ok, report) = validate_openapi(&doc, &Value::Array(samples)).await;
    assert!(ok, "{report}");
    assert_eq!(
        report.matches("\nok ").count() + usize::from(report.starts_with("ok ")),
        n,
        "{report}"
    );
    assert!(
        report.contains("ok get /v1/users/{id} 404"),
        "an error answer checked: {report}"
    );

    // And a body that does not match is caught.
    let wrong =
        json!([{"method": "get", "path": "/v1/users/{id}", "status": 200, "body": {"id": 5}}]);
    let (ok, report) = validate_openapi(&doc, &wrong).await;
    assert!(
        !ok && report.contains("FAIL get /v1/users/{id} 200"),
        "{report}"
    );
}

#[tokio::test]
async fn it_follows_the_config_and_can_be_turned_off() {
    let env = TestEnv::start_with("rest:\n  use_proto_field_names: true\n").await;
    let doc = document(&env).await;
    let user = &doc["components"]["schemas"]["demo.v1.User"]["properties"];
    assert!(user["display_name"].is_object(), "{user}");
    let off = TestEnv::start_with("rest:\n  openapi: false\n").await;
    assert_eq!(off.get("/openapi.json").await.status, 404);
}

#[tokio::test]
async fn operation_endpoints_are_documented_from_their_operations() {
    let env = TestEnv::start_with(
        "operations: { dir: bff-web/operations }\nendpoints:\n  - { path: \"/api/home/{userId}\", operation: Home, unwrap: user }\n  - { path: \"/api/products/{id}\", operation: Product, unwrap: product }\n  - { path: \"/api/users/{userId}/orders\", operation: Orders, unwrap: ordersByUser }\n  - { path: \"/api/orders\", operation: Orders }\n  - { path: \"/api/profile/{id}\", operation: UpdateProfile, method: POST, unwrap: updateUser }\n",
    )
    .await;
    let doc = document(&env).await;
    let product = &doc["paths"]["/api/products/{id}"]["get"];
    assert_eq!(params(product, "path"), ["id"]);
    assert_eq!(product["x-graphql-operation"], "Product");
    let orders = &doc["paths"]["/api/orders"]["get"];
    assert!(params(orders, "query").contains(&"userId"), "{orders}");
    let profile = &doc["paths"]["/api/profile/{id}"]["post"];
    assert!(
        profile["requestBody"]["content"]["application/json"]["schema"]["properties"].is_object()
    );

    let mut samples = Vec::new();
    for (path, doc_path) in [
        ("/api/products/p-1", "/api/products/{id}"),
        ("/api/home/1", "/api/home/{userId}"),
        ("/api/users/1/orders", "/api/users/{userId}/orders"),
        ("/api/orders?userId=2", "/api/orders"),
        ("/api/products/p-999", "/api/products/{id}"),
    ] {
        let r = env.get(path).await;
        samples
            .push(json!({"method": "get", "path": doc_path, "status": r.status, "body": r.json()}));
    }
    let r = env
        .json(
            "POST",
            "/api/profile/1",
            &json!({"displayName": "Documented"}),
        )
        .await;
    samples.push(json!({"method": "post", "path": "/api/profile/{id}", "status": r.status, "body": r.json()}));
    let n = samples.len();
    let (ok, report) = validate_openapi(&doc, &Value::Array(samples)).await;
    assert!(ok, "{report}");
    assert_eq!(report.matches("ok ").count(), n, "{report}");
    assert!(report.contains("ok get /api/products/{id} 404"), "{report}");
}

/// A value for a path parameter of this schema.
fn example(schema: &Value) -> String {
    if let Some(p) = schema["pattern"].as_str()
        && !p.starts_with("^-?[0-9]")
    {
        // A multi-segment variable: its shape with a value in each wildcard.
        return p
            .trim_start_matches('^')
            .trim_end_matches('$')
            .replace("[^/]+", "p-1")
            .replace(".*", "front/large.png")
            .replace('\\', "");
    }
    match schema["type"].as_str() {
        Some("integer") => "1".into(),
        Some("string") if schema["format"].is_string() => "1".into(),
        _ => match schema["enum"].as_array().and_then(|e| e.first()) {
            Some(v) => v.as_str().unwrap_or("1").into(),
            None => "1".into(),
        },
    }
}

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let env = TestEnv::start().await;
    let doc = document(&env).await;
    let mut samples = Vec::new();
    let mut streams = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut url = path.clone();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    url = url.replace(&format!("{{{name}}}"), &example(&p["schema"]));
                }
            }
            let content = &op["requestBody"]["content"];
            let mut req = env
                .client
                .request(method.to_uppercase().parse().unwrap(), env.url(&url));
            if content["application/json"].is_object() {
                req = req.json(&json!({}));
            } else if content["application/x-ndjson"].is_object() {
                req = req
                    .header("content-type", "application/x-ndjson")
                    .body("{}\n");
            }
            let r = env.send(req).await;
            let ok = op["responses"][r.status.to_string()].is_object() || r.status >= 400;
            assert!(ok, "{method} {url}: {} is not documented", r.status);
            let documented = &op["responses"][r.status.to_string()]["content"];
            if documented["application/x-ndjson"].is_object() {
                assert!(r.header("content-type").starts_with("application/x-ndjson"));
                streams += 1;
                continue;
            }
            if documented["*/*"]["schema"]["format"] == "binary" {
                // Raw bytes (a google.api.HttpBody reply): anything but the JSON of a message.
                assert_ne!(
                    r.header("content-type"),
                    "application/json",
                    "{method} {url}"
                );
                continue;
            }
            let body: Value = serde_json::from_str(&r.text)
                .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {}", r.text));
            samples.push(json!({"method": method, "path": path, "status": r.status, "body": body}));
        }
    }
    assert!(
        streams >= 1 && samples.len() >= 20,
        "{streams} streams, {} answers",
        samples.len()
    );
    let n = samples.len();
    let (ok, report) = validate_openapi(&doc, &Value::Array(samples)).await;
    assert!(ok, "{report}");
    assert_eq!(report.matches("ok ").count(), n, "{report}");

    // One service's document.
    let r = env.get("/openapi/demo.v1.CatalogService.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let one = r.json();
    assert!(one["paths"]["/v1/products/{id}"].is_object());
    assert!(one["paths"]["/v1/users/{id}"].is_null());
    let r = env.get("/openapi/demo.v1.Nope.json").await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("demo.v1.CatalogService"), "{}", r.text);
}
