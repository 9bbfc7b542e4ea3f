//! gRPC statuses map to HTTP statuses with a google.rpc.Status body and typed details; bad
//! input is a clear 4xx that names the problem, before any backend is called.

use std::time::Duration;

use portico_demo::DemoService;
use portico_e2e::{TestEnv, assert_error};
use serde_json::json;
use tonic::Code;

#[tokio::test]
async fn not_found_carries_the_backends_typed_details() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/4242").await;
    assert_error(&r, 404, 5, "user 4242 not found");
    let details = r.json()["details"].clone();
    assert_eq!(
        details[0]["@type"], "type.googleapis.com/google.rpc.ResourceInfo",
        "{details}"
    );
    assert_eq!(details[0]["resourceName"], "users/4242");
}

#[tokio::test]
async fn invalid_argument_carries_field_violations() {
    let env = TestEnv::start().await;
    let r = env
        .json(
            "POST",
            "/v1/users",
            &json!({"user": {"displayName": "X", "email": "no-at-sign"}}),
        )
        .await;
    assert_error(&r, 400, 3, "");
    let d = &r.json()["details"][0];
    assert_eq!(
        d["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{d}"
    );
    assert_eq!(d["fieldViolations"][0]["field"], "user.email");
}

#[tokio::test]
async fn the_status_table() {
    let env = TestEnv::start().await;
    let knobs = env.knobs(DemoService::Catalog);
    for (code, http) in [
        (Code::Unauthenticated, 401),
        (Code::PermissionDenied, 403),
        (Code::ResourceExhausted, 429),
        (Code::Unavailable, 503),
        (Code::AlreadyExists, 409),
        (Code::FailedPrecondition, 400),
        (Code::Unimplemented, 501),
        (Code::Internal, 500),
        (Code::DeadlineExceeded, 504),
    ] {
        knobs.set_fail_with(Some(code));
        knobs.fail_next(1);
        let r = env.get("/v1/products/p-1").await;
        assert_eq!(r.status, http, "{code:?}: {}", r.text);
        assert_eq!(r.json()["code"], code as i32, "{code:?}");
    }
    knobs.reset();
    assert_eq!(env.get("/v1/products/p-1").await.status, 200);
}

#[tokio::test]
async fn a_deadline_is_a_504_and_the_client_can_shorten_it() {
    let env = TestEnv::start_with("deadlines:\n  default: 300ms\n").await;
    env.knobs(DemoService::Users)
        .set_latency(Duration::from_secs(3));
    let r = env.get("/v1/users/1").await;
    assert_error(&r, 504, 4, "did not answer within");
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("grpc-timeout", "50m"),
        )
        .await;
    // The call gets what is left of the client's 50ms (a few ms go to the gateway's own work
    // before the call on a busy machine): never more than 50ms, never the 300ms default.
    assert_error(&r, 504, 4, "did not answer within");
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    let ms: u64 = message
        .rsplit_once("within ")
        .and_then(|(_, t)| t.strip_suffix("ms"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no budget in milliseconds in {message:?}"));
    assert!((1..=50).contains(&ms), "{message}");
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("grpc-timeout", "soon"),
        )
        .await;
    assert_error(&r, 400, 3, "grpc-timeout");
}

#[tokio::test]
async fn a_dead_backend_is_a_503_without_internal_details() {
    let env = TestEnv::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let yaml = portico_e2e::demo_config(&env.demo, "")
        .replace(&env.demo.users.endpoint(), &format!("http://{dead}"));
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let env2 = TestEnv::start_config(demo, &yaml).await;
    let r = env2.get("/v1/users/1").await;
    assert_error(&r, 503, 14, "backend \"users\" is unavailable");
    assert!(
        !r.text.contains("tcp"),
        "no transport detail leaks: {}",
        r.text
    );
}

#[tokio::test]
async fn bad_json_is_a_400_naming_the_problem() {
    let env = TestEnv::start().await;
    let cases: &[(&str, &str)] = &[
        (r#"{"user": {"displayName": "x""#, "line"),
        (r#"{"user": {"verified": "yes"}}"#, "verified"),
        (r#"{"user": {"dispayName": "x"}}"#, "dispayName"),
        (r#"{"user": {"email": "a@b", "email": "c@d"}}"#, "email"),
        (
            r#"{"user": {"email": "a@b", "displayName": "x", "display_name": "y"}}"#,
            "display",
        ),
        (r#"{"user": {"role": "USER_ROLE_KING"}}"#, "role"),
        (r#"{"user": {"id": "12abc"}}"#, "id"),
        (r#"[1, 2]"#, ""),
    ];
    for (body, fragment) in cases {
        let r = env
            .raw("POST", "/v1/users", "application/json", body.to_string())
            .await;
        assert_eq!(r.status, 400, "{body} -> {}", r.text);
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains(fragment),
            "{body}: {msg:?} should mention {fragment:?}"
        );
    }
    // nesting past limits.max_json_depth (32) is refused before any parsing cost is paid
    let deep = format!(
        "{{\"user\":{{\"preferences\":{{\"a\":{}{}}}}}}}",
        "[".repeat(60),
        "]".repeat(60)
    );
    let r = env.raw("POST", "/v1/users", "application/json", deep).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("nest"), "{}", r.text);
    assert_eq!(
        env.knobs(DemoService::Users).total_calls(),
        0,
        "no call was made"
    );
}

#[tokio::test]
async fn bad_path_and_query_values_are_400s() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/abc").await;
    assert_error(&r, 400, 3, "id");
    let r = env.get("/v1/users?page_size=1&page_size=2").await;
    assert_error(&r, 400, 3, "page_size");
    let r = env.get("/v1/users?colour=red").await;
    assert_error(&r, 400, 3, "colour");
    let r = env.get("/v1/users?filter.role=NOPE").await;
    assert_error(&r, 400, 3, "filter.role");
    let r = env.get("/v1/users/%FF").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
}

#[tokio::test]
async fn ignored_query_params_are_configurable() {
    let env = TestEnv::start_with("rest:\n  ignored_query_params: [utm_source]\n").await;
    assert_eq!(env.get("/v1/users/1?utm_source=mail").await.status, 200);
}

#[tokio::test]
async fn a_body_value_disagreeing_with_the_path_is_a_400() {
    let env = TestEnv::start().await;
    let r = env
        .json(
            "PATCH",
            "/v1/users/1",
            &json!({"id": "2", "displayName": "x"}),
        )
        .await;
    assert_error(&r, 400, 3, "id");
    // the same value is fine
    let r = env
        .json(
            "PATCH",
            "/v1/users/1",
            &json!({"id": "1", "displayName": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn wrong_content_type_is_a_415() {
    let env = TestEnv::start().await;
    let r = env.raw("POST", "/v1/users", "text/plain", "hello").await;
    assert_error(&r, 415, 3, "application/json");
}
