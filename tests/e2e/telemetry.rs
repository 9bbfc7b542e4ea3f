//! What operators see: the admin listener (apart from the client port, optionally behind a
//! token) and its Prometheus metrics, scraped after traffic through each door and parsed with
//! a real Prometheus text parser.

use portico_demo::DemoService;
use portico_e2e::{Scrape, TestEnv, metric as count};
use serde_json::json;

async fn scrape(env: &TestEnv) -> Scrape {
    env.scrape().await
}

/// Every value of label `name` in `family`.
fn label_values(s: &Scrape, family: &str, name: &str) -> Vec<String> {
    s.families.get(family).map_or_else(Vec::new, |f| {
        f.iter_samples()
            .filter_map(|x| {
                x.get_labelset()
                    .ok()
                    .and_then(|l| l.get_label_value(name).map(str::to_owned))
            })
            .collect()
    })
}

const HTTP: &str = "http_server_request_duration_seconds";
const RPC: &str = "rpc_client_duration_seconds";

#[tokio::test]
async fn metrics_count_every_door_with_route_templates() {
    let env = TestEnv::start_example("bff-web").await;
    for id in ["1", "2", "3"] {
        assert_eq!(env.get(&format!("/v1/users/{id}")).await.status, 200);
    }
    assert_eq!(env.get("/v1/users/4242").await.status, 404);
    assert_eq!(env.get("/no/such/route/77").await.status, 404);
    let s = scrape(&env).await;
    let rest = |status: &'static str| {
        count(
            &s,
            HTTP,
            &[
                ("http_request_method", "GET"),
                ("http_route", "/v1/users/{id}"),
                ("http_response_status_code", status),
                ("portico_door", "rest"),
            ],
        )
    };
    assert_eq!(rest("200"), 3.0);
    assert_eq!(rest("404"), 1.0);
    assert_eq!(count(&s, HTTP, &[("http_route", "unmatched")]), 1.0);
    // Raw paths never become label values.
    let routes = label_values(&s, HTTP, "http_route");
    assert!(
        !routes
            .iter()
            .any(|r| r.contains("4242") || r.contains("77")),
        "a raw path leaked into a label: {routes:?}"
    );
    let get_user = |code: &'static str| {
        count(
            &s,
            RPC,
            &[
                ("rpc_system", "grpc"),
                ("rpc_service", "demo.v1.UserService"),
                ("rpc_method", "GetUser"),
                ("rpc_grpc_status_code", code),
                ("portico_backend", "users"),
            ],
        )
    };
    assert_eq!(get_user("0"), 3.0);
    assert_eq!(get_user("5"), 1.0, "NOT_FOUND is code 5");

    // GraphQL and an operation endpoint.
    let g = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": r#"{ user(id: "1") { displayName } }"#}),
        )
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(env.get("/api/home/1").await.status, 200);
    let s = scrape(&env).await;
    assert_eq!(
        count(
            &s,
            HTTP,
            &[
                ("http_route", "/graphql"),
                ("portico_door", "graphql"),
                ("http_request_method", "POST")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            &s,
            HTTP,
            &[
                ("http_route", "/api/home/{userId}"),
                ("portico_door", "endpoint")
            ]
        ),
        1.0
    );
    assert!(get_user_total(&s) >= 5.0);
    // Nothing in flight on the client port while the admin listener is scraped.
    assert_eq!(count(&s, "http_server_active_requests", &[]), 0.0);
}

fn get_user_total(s: &Scrape) -> f64 {
    count(s, RPC, &[("rpc_method", "GetUser")])
}

#[tokio::test]
async fn the_admin_listener_is_apart_and_can_need_a_token() {
    let env = TestEnv::start_with("admin: { listen: 127.0.0.1:0 }\n").await;
    // Not on the client port.
    assert_eq!(env.get("/metrics").await.status, 404);
    assert_eq!(env.get("/admin/backends").await.status, 404);
    // Health stays on both (load balancers probe the client port).
    assert_eq!(env.get("/healthz").await.status, 200);
    let admin = env.admin.clone().unwrap();
    let r = env
        .send(env.client.get(format!("{admin}/admin/backends")))
        .await;
    assert!(r.json()["backends"].is_array(), "{}", r.text);
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("accept", "application/openmetrics-text; version=1.0.0"),
        )
        .await;
    assert!(
        r.header("content-type")
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text.ends_with("# EOF\n"), "{}", r.text);

    let token_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
    let env = TestEnv::start_with(&format!(
        "admin: {{ listen: 127.0.0.1:0, token_sha256: {token_hash} }}\n"
    ))
    .await;
    let admin = env.admin.clone().unwrap();
    let r = env.send(env.client.get(format!("{admin}/metrics"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.header("www-authenticate").starts_with("Bearer"));
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("authorization", "Bearer nope"),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = env
        .send(
            env.client
                .get(format!("{admin}/metrics"))
                .header("authorization", "Bearer test"),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = env.send(env.client.get(format!("{admin}/healthz"))).await;
    assert_eq!(r.status, 200, "probes need no token");
}

#[tokio::test]
async fn admin_mistakes_name_the_key() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    for (extra, key) in [
        (
            "admin: { listen: 127.0.0.1:9901, token_sha256: secret }\n",
            "admin.token_sha256",
        ),
        ("admin: { port: 9901 }\n", "port"),
    ] {
        let yaml = portico_e2e::demo_config(&demo, extra);
        let e = portico_e2e::build_snapshot(&yaml)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: {e}");
    }
}

/// GETs `path` on the admin listener.
async fn admin_get(env: &TestEnv, path: &str) -> portico_e2e::Reply {
    let admin = env.admin.clone().expect("an admin listener");
    env.send(env.client.get(format!("{admin}{path}"))).await
}

#[tokio::test]
async fn the_admin_views_show_what_is_served_and_where_it_came_from() {
    let env = TestEnv::start_example("bff-web").await;
    let services = admin_get(&env, "/admin/services").await.json();
    let users = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "demo.v1.UserService")
        .unwrap_or_else(|| panic!("{services}"));
    assert_eq!(users["backend"], "users");
    assert!(
        users["source"].as_str().unwrap().contains("demo.binpb"),
        "{users}"
    );
    let get_user = users["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "GetUser")
        .unwrap();
    assert_eq!(get_user["input"], "demo.v1.GetUserRequest");
    assert_eq!(get_user["streaming"], "unary");

    let routes = admin_get(&env, "/admin/routes").await.json();
    let list = routes["routes"].as_array().unwrap();
    assert!(
        list.iter().any(|r| r["method"] == "GET"
            && r["path"] == "/v1/users/{id}"
            && r["rpc"] == "demo.v1.UserService.GetUser"
            && r["backend"] == "users"),
        "{routes}"
    );
    assert!(routes["skipped"].is_array());
    // the table is the one served: every GET route without variables answers
    assert_eq!(list.len(), env.gateway.snapshot().routes.len());

    let ops = admin_get(&env, "/admin/operations").await.json();
    let home = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Home")
        .unwrap_or_else(|| panic!("{ops}"));
    assert_eq!(home["kind"], "query");
    assert_eq!(home["id"].as_str().unwrap().len(), 64);
    assert!(
        ops["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "/api/home/{userId}" && e["operation"] == "Home"),
        "{ops}"
    );

    let sdl = admin_get(&env, "/admin/schema").await;
    assert_eq!(sdl.status, 200);
    assert!(sdl.header("content-type").starts_with("text/plain"));
    assert_eq!(
        sdl.text,
        env.gateway.snapshot().graphql.as_ref().unwrap().sdl()
    );
    // none of them on the client port
    for path in [
        "/admin/services",
        "/admin/routes",
        "/admin/operations",
        "/admin/schema",
        "/admin/reloads",
    ] {
        assert_eq!(env.get(path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn readiness_can_require_a_healthy_endpoint_of_named_backends() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = portico_e2e::demo_config(
        &demo,
        "admin: { listen: 127.0.0.1:0, ready_backends: [users] }\n",
    )
    .replace(
        "    services: [demo.v1.UserService]\n",
        "    services: [demo.v1.UserService]\n    resilience: { health_check: { interval: 50ms, timeout: 1s } }\n",
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    // Waits (bounded) until /readyz answers `status`.
    async fn ready_becomes(env: &TestEnv, status: u16) -> String {
        let t0 = std::time::Instant::now();
        loop {
            let r = admin_get(env, "/readyz").await;
            if r.status == status {
                return r.text;
            }
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "/readyz never answered {status}: {} {}",
                r.status,
                r.text
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    ready_becomes(&env, 200).await;
    // the only endpoint of `users` reports NOT_SERVING: not ready, and the answer says which
    env.knobs(DemoService::Users).set_serving(false).await;
    let text = ready_becomes(&env, 503).await;
    assert!(text.contains("\"users\""), "{text}");
    // the health endpoint of the process stays up, and so do other backends' routes
    assert_eq!(admin_get(&env, "/healthz").await.status, 200);
    assert_eq!(env.get("/v1/products/p-1").await.status, 200);
    env.knobs(DemoService::Users).set_serving(true).await;
    ready_becomes(&env, 200).await;

    // a backend the config does not have is refused at load, naming the key
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let e = portico_e2e::build_snapshot(&portico_e2e::demo_config(
        &demo,
        "admin: { listen: 127.0.0.1:0, ready_backends: [user] }\n",
    ))
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("admin.ready_backends[0]"), "{e}");
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn one_access_line_per_request_names_the_route_caller_and_calls_never_the_key() {
    let logs = portico_e2e::logs();
    let env = TestEnv::start_with(&format!(
        "auth:\n  api_keys: {{ keys: [{{ id: partner-a, sha256: {} }}] }}\nauthorization:\n  default: anonymous\n",
        sha256_hex("sekret-key-a")
    ))
    .await;
    let get = |path: &str, id: &str| {
        env.client
            .get(format!("{}{path}", env.base))
            .header("x-request-id", format!("access-one-{id}"))
    };
    let r = env
        .send(
            get("/v1/users/1", "1")
                .header("x-api-key", "sekret-key-a")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let query = json!({ "query": "{ user(id: \"1\") { displayName orders { id } } }" });
    let r = env
        .send(
            env.client
                .post(format!("{}/graphql", env.base))
                .header("x-request-id", "access-one-2")
                .json(&query),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.send(get("/v1/nothing-here", "3")).await.status, 404);

    let lines = logs.access_lines("access-one-");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let rest = &lines[0];
    assert_eq!(rest["route"], "/v1/users/{id}", "{rest}");
    assert_eq!(rest["status"], 200);
    assert_eq!(rest["calls"], 1);
    assert!(rest["latency_us"].as_u64().is_some(), "{rest}");
    assert_eq!(rest["span"]["caller"], "partner-a", "{rest}");
    assert_eq!(
        rest["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{rest}"
    );
    assert_eq!(rest["span"]["request_id"], "access-one-1");
    assert_eq!(rest["level"], "INFO");
    // the GraphQL request made two calls (the user, then the orders link)
    assert_eq!(lines[1]["route"], "/graphql");
    assert_eq!(lines[1]["calls"], 2, "{}", lines[1]);
    assert_eq!(lines[2]["route"], "unmatched");
    assert_eq!(lines[2]["status"], 404);
    // the key is never written, in no line of the request
    assert!(
        !logs.text().contains("sekret-key-a"),
        "the API key was logged"
    );
}

#[tokio::test]
async fn the_access_log_can_be_sampled_or_turned_off() {
    let logs = portico_e2e::logs();
    async fn get(env: &TestEnv, path: &str, id: String) -> u16 {
        env.send(
            env.client
                .get(format!("{}{path}", env.base))
                .header("x-request-id", id),
        )
        .await
        .status
    }
    // sampled to nothing: failures are still written
    let env = TestEnv::start_with("log: { access_sample: 0 }\n").await;
    for i in 0..20 {
        assert_eq!(get(&env, "/v1/users/1", format!("sampled-{i}")).await, 200);
    }
    assert_eq!(get(&env, "/v1/users/4242", "sampled-x".into()).await, 404);
    let lines = logs.access_lines("sampled-");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], 404);
    drop(env);

    // off: not even failures
    let env = TestEnv::start_with("log: { access: false }\n").await;
    assert_eq!(get(&env, "/v1/users/1", "off-1".into()).await, 200);
    assert_eq!(get(&env, "/v1/users/4242", "off-2".into()).await, 404);
    assert!(logs.access_lines("off-").is_empty());
    // while the default writes them
    let env = TestEnv::start().await;
    assert_eq!(get(&env, "/v1/users/1", "on-1".into()).await, 200);
    assert_eq!(logs.access_lines("on-").len(), 1);
}

fn attr(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn spans_of_requests_and_backend_calls_reach_an_otlp_collector_linked_parent_to_child() {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    let collector = portico_e2e::OtlpCollector::start().await;
    let env = TestEnv::start_with(&format!(
        "telemetry: {{ otlp: {{ endpoint: \"{}\", flush_interval: 20ms }}, service_name: bff-test }}\n",
        collector.endpoint
    ))
    .await;
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let r = env
        .send(
            env.client
                .get(format!("{}/v1/users/1", env.base))
                .header("traceparent", format!("00-{client_trace}-{client_span}-01")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let spans = collector
        .wait_for(|s| {
            s.iter()
                .filter(|(_, sp)| hex::encode(&sp.trace_id) == client_trace)
                .count()
                >= 2
        })
        .await;
    let ours: Vec<_> = spans
        .iter()
        .filter(|(_, sp)| hex::encode(&sp.trace_id) == client_trace)
        .collect();
    assert!(ours.iter().all(|(service, _)| service == "bff-test"));
    let server = &ours
        .iter()
        .find(|(_, sp)| sp.kind == SpanKind::Server as i32)
        .expect("a server span")
        .1;
    let call = &ours
        .iter()
        .find(|(_, sp)| sp.kind == SpanKind::Client as i32)
        .expect("a client span")
        .1;
    // the request's span is a child of the client's; the call's, of the request's
    assert_eq!(hex::encode(&server.parent_span_id), client_span);
    assert_eq!(call.parent_span_id, server.span_id);
    assert_eq!(server.name, "GET /v1/users/{id}");
    assert_eq!(attr(server, "http.route"), "/v1/users/{id}");
    assert_eq!(attr(server, "http.request.method"), "GET");
    assert_eq!(attr(server, "http.response.status_code"), "200");
    assert_eq!(attr(server, "portico.request_id"), r.header("x-request-id"));
    assert_eq!(call.name, "demo.v1.UserService/GetUser");
    assert_eq!(attr(call, "rpc.system"), "grpc");
    assert_eq!(attr(call, "rpc.grpc.status_code"), "0");
    assert_eq!(attr(call, "portico.backend"), "users");
    assert!(call.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(call.end_time_unix_nano <= server.end_time_unix_nano);
    // the backend got the call's span as its parent: its own spans hang under it
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .expect("the backend saw the call");
    let sent = md.get("traceparent").unwrap().to_str().unwrap().to_string();
    assert_eq!(
        sent,
        format!("00-{client_trace}-{}-01", hex::encode(&call.span_id))
    );

    // a GraphQL request: request span -> operation span -> one span per backend call
    let graphql_trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let query = json!({
        "query": "query Profile { user(id: \"1\") { displayName orders { id } } }",
        "operationName": "Profile"
    });
    let r = env
        .send(
            env.client
                .post(format!("{}/graphql", env.base))
                .header(
                    "traceparent",
                    format!("00-{graphql_trace}-{client_span}-01"),
                )
                .json(&query),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let spans = collector
        .wait_for(|s| {
            s.iter()
                .filter(|(_, sp)| hex::encode(&sp.trace_id) == graphql_trace)
                .count()
                >= 4
        })
        .await;
    let ours: Vec<_> = spans
        .iter()
        .map(|(_, sp)| sp)
        .filter(|sp| hex::encode(&sp.trace_id) == graphql_trace)
        .collect();
    let request = ours
        .iter()
        .find(|sp| sp.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(request.name, "POST /graphql");
    let operation = ours
        .iter()
        .find(|sp| sp.kind == SpanKind::Internal as i32)
        .unwrap_or_else(|| panic!("{ours:#?}"));
    assert_eq!(operation.name, "query Profile");
    assert_eq!(attr(operation, "graphql.operation.type"), "query");
    assert_eq!(attr(operation, "graphql.operation.name"), "Profile");
    assert_eq!(operation.parent_span_id, request.span_id);
    let calls: Vec<_> = ours
        .iter()
        .filter(|sp| sp.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(
        calls.iter().all(|c| c.parent_span_id == operation.span_id),
        "{calls:#?}"
    );

    // a trace the client marked unsampled is not exported, and stays unsampled downstream
    let before = collector.count();
    let r = env
        .send(env.client.get(format!("{}/v1/users/2", env.base)).header(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-00",
        ))
        .await;
    assert_eq!(r.status, 200);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert!(
        md.get("traceparent")
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-00")
    );
    // a third, sampled request is exported; the unsampled one never is
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200);
    let spans = collector
        .wait_for(|s| {
            s.iter()
                .any(|(_, sp)| sp.name == "demo.v1.CatalogService/GetProduct")
        })
        .await;
    assert!(spans.len() > before);
    assert!(
        !spans
            .iter()
            .any(|(_, sp)| hex::encode(&sp.trace_id) == "11111111111111111111111111111111")
    );
}

#[tokio::test]
async fn a_sample_ratio_of_zero_exports_nothing_the_gateway_starts_and_a_dead_collector_costs_no_request()
 {
    // the collector's address is closed: exports fail, requests do not
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let env = TestEnv::start_with(&format!(
        "admin: {{ listen: 127.0.0.1:0 }}\ntelemetry: {{ otlp: {{ endpoint: \"http://{closed}\", flush_interval: 10ms, timeout: 200ms }} }}\n"
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(env.get("/v1/users/1").await.status, 200);
    }
    // the failed spans are counted (bounded wait: the export runs in the background)
    let t0 = std::time::Instant::now();
    loop {
        let s = scrape(&env).await;
        if count(&s, "portico_spans_dropped_total", &[]) >= 10.0 {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "no drop counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let collector = portico_e2e::OtlpCollector::start().await;
    let env = TestEnv::start_with(&format!(
        "telemetry: {{ otlp: {{ endpoint: \"{}\", flush_interval: 10ms }}, sample_ratio: 0 }}\n",
        collector.endpoint
    ))
    .await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    // started by the gateway, unsampled: the backend is told so
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert!(
        md.get("traceparent")
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-00")
    );
    // a client's sampled trace is still exported
    let r = env
        .send(env.client.get(format!("{}/v1/users/1", env.base)).header(
            "traceparent",
            "00-33333333333333333333333333333333-4444444444444444-01",
        ))
        .await;
    assert_eq!(r.status, 200);
    let spans = collector.wait_for(|s| s.len() >= 2).await;
    assert!(
        spans
            .iter()
            .all(|(_, sp)| hex::encode(&sp.trace_id) == "33333333333333333333333333333333"),
        "{spans:#?}"
    );
}

#[tokio::test]
async fn breaker_bulkhead_endpoint_and_retry_metrics_follow_the_backends() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = portico_e2e::demo_config(&demo, "admin: { listen: 127.0.0.1:0 }\n").replace(
        "    services: [demo.v1.UserService]\n",
        "    services: [demo.v1.UserService]\n    resilience: { breaker: { consecutive_failures: 2, open_for: 60s }, retry: { max_attempts: 2, initial_backoff: 1ms, max_backoff: 1ms, budget_min_per_second: 100 } }\n",
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    let knobs = env.knobs(DemoService::Users);
    let users = |state: &'static str| [("portico_backend", "users"), ("state", state)];

    let s = scrape(&env).await;
    assert_eq!(count(&s, "portico_breaker_state", &users("closed")), 1.0);
    assert_eq!(count(&s, "portico_breaker_state", &users("open")), 0.0);
    assert_eq!(
        count(&s, "portico_backend_endpoints", &users("healthy")),
        1.0
    );
    assert_eq!(
        count(
            &s,
            "portico_bulkhead_in_flight",
            &[("portico_backend", "users")]
        ),
        0.0
    );

    // one failure, retried: the answer is good and the retry is counted
    knobs.fail_next(1);
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    let s = scrape(&env).await;
    assert_eq!(
        count(
            &s,
            "portico_upstream_retries_total",
            &[("portico_backend", "users"), ("rpc_method", "GetUser")]
        ),
        1.0
    );

    // two failed attempts in a row open the breaker: the state and the transition show it
    knobs.fail_next(2);
    assert_eq!(env.get("/v1/users/1").await.status, 503);
    let s = scrape(&env).await;
    assert_eq!(count(&s, "portico_breaker_state", &users("open")), 1.0);
    assert_eq!(count(&s, "portico_breaker_state", &users("closed")), 0.0);
    assert_eq!(
        count(
            &s,
            "portico_breaker_transitions_total",
            &[("portico_backend", "users"), ("to", "open")]
        ),
        1.0
    );
    // other backends are untouched
    assert_eq!(
        count(
            &s,
            "portico_breaker_state",
            &[("portico_backend", "orders"), ("state", "closed")]
        ),
        1.0
    );
}

#[tokio::test]
async fn graphql_operations_errors_and_persisted_lookups_are_counted() {
    let env = TestEnv::start_example("bff-web").await;
    let home_id = {
        let snap = env.gateway.snapshot();
        snap.operations
            .as_ref()
            .unwrap()
            .get("Home")
            .unwrap()
            .id
            .clone()
    };
    // a named operation of the BFF, by its id: a persisted hit
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"documentId": home_id, "operationName": "Home", "variables": {"userId": "1"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // a client's own name: counted as _OTHER (labels stay bounded)
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": "query MyScreen { user(id: \"1\") { displayName } }", "operationName": "MyScreen"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // an anonymous query failing at the backend: an error by its code
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": "{ user(id: \"4242\") { displayName } }"}),
        )
        .await;
    assert!(r.text.contains("NOT_FOUND"), "{}", r.text);
    // an unknown id: a persisted miss, and its refusal by code
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0".repeat(64)}}}),
        )
        .await;
    assert!(r.text.contains("PERSISTED_QUERY_NOT_FOUND"), "{}", r.text);

    let s = scrape(&env).await;
    let ops = "portico_graphql_operations_total";
    assert_eq!(
        count(
            &s,
            ops,
            &[
                ("graphql_operation_name", "Home"),
                ("graphql_operation_type", "query"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            &s,
            ops,
            &[("graphql_operation_name", "_OTHER"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        count(
            &s,
            ops,
            &[("graphql_operation_name", ""), ("outcome", "partial")]
        ) + count(
            &s,
            ops,
            &[("graphql_operation_name", ""), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(
        count(&s, "portico_graphql_errors_total", &[("code", "NOT_FOUND")]),
        1.0
    );
    assert_eq!(
        count(
            &s,
            "portico_graphql_errors_total",
            &[("code", "PERSISTED_QUERY_NOT_FOUND")]
        ),
        1.0
    );
    assert_eq!(
        count(&s, "portico_persisted_queries_total", &[("result", "hit")]),
        1.0
    );
    assert_eq!(
        count(&s, "portico_persisted_queries_total", &[("result", "miss")]),
        1.0
    );

    // a subscription over SSE with three events: one operation
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("accept", "text/event-stream")
                .json(&json!({"query": r#"subscription { watchOrders(userId: "1", maxEvents: 3) { sequence } }"#})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text.matches("event: next").count(), 3, "{}", r.text);
    let s = scrape(&env).await;
    assert_eq!(
        count(
            &s,
            ops,
            &[
                ("graphql_operation_type", "subscription"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
}

#[tokio::test]
async fn open_client_connections_are_counted() {
    let env = TestEnv::start_with("admin: { listen: 127.0.0.1:0 }\n").await;
    let open = |s: &Scrape| count(s, "portico_connections_open", &[]);
    // Waits (bounded) until the count is `want`.
    async fn becomes(env: &TestEnv, want: f64) {
        let t0 = std::time::Instant::now();
        loop {
            let s = scrape(env).await;
            let n = count(&s, "portico_connections_open", &[]);
            if n == want {
                return;
            }
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "open connections stayed {n}, not {want}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let before = open(&scrape(&env).await);
    let addr = env.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    becomes(&env, before + 3.0).await;
    drop(idle);
    becomes(&env, before).await;
}
