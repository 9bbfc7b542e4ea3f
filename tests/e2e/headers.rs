//! Request ids and header forwarding, both ways.

use portico_demo::DemoService;
use portico_e2e::TestEnv;

#[tokio::test]
async fn every_request_gets_an_id_that_reaches_the_backend() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1").await;
    let id = r.header("x-request-id").to_string();
    assert_eq!(id.len(), 32, "a fresh id: {id:?}");
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-request-id").unwrap().to_str().unwrap(), id);

    // a sane client id is kept; an unsafe one is replaced
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-request-id", "abc-123"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), "abc-123");
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-request-id", "bad id\"<>"),
        )
        .await;
    assert_ne!(r.header("x-request-id"), "bad id\"<>");
    // error responses carry it too
    let r = env.get("/nowhere").await;
    assert_eq!(r.header("x-request-id").len(), 32);
}

#[tokio::test]
async fn only_allowlisted_headers_are_forwarded() {
    let env = TestEnv::start_with("headers:\n  forward: [x-tenant-*]\n").await;
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1"))
                .header("x-tenant-id", "acme")
                .header("cookie", "session=secret")
                .header("authorization", "Bearer t"),
        )
        .await;
    assert_eq!(r.status, 200);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-tenant-id").unwrap(), "acme");
    assert!(md.get("cookie").is_none());
    assert!(md.get("authorization").is_none());
    // the deadline travels as grpc-timeout
    assert!(md.get("grpc-timeout").is_some(), "{md:?}");
}

#[tokio::test]
async fn allowlisted_response_metadata_comes_back_as_prefixed_headers() {
    let env = TestEnv::start_with("headers:\n  response: [x-demo-*]\n").await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-metadata-x-demo-served-by"), "users");
    // not allowlisted: not returned
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.header("grpc-metadata-x-demo-served-by"), "");
}
