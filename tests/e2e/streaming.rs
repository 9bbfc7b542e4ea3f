//! Server streaming as NDJSON and SSE (errors before and after the first message), and client
//! streaming from an NDJSON body.

use portico_demo::DemoService;
use portico_e2e::{TestEnv, assert_error};
use serde_json::Value;

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

#[tokio::test]
async fn server_streaming_as_ndjson() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/1/orders:watch?maxEvents=3").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let events = lines(&r.text);
    assert_eq!(events.len(), 3, "{}", r.text);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["result"]["sequence"], (i + 1).to_string(), "{e}");
        assert_eq!(e["result"]["order"]["userId"], "1");
    }
}

#[tokio::test]
async fn server_streaming_as_server_sent_events() {
    let env = TestEnv::start().await;
    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/2/orders:watch?maxEvents=2"))
                .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), "text/event-stream");
    let data: Vec<Value> = r
        .text
        .split("\n\n")
        .filter_map(|ev| ev.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data.len(), 2, "{}", r.text);
    assert_eq!(data[1]["sequence"], "2");
}

#[tokio::test]
async fn an_error_before_the_first_message_is_a_plain_http_error() {
    let env = TestEnv::start().await;
    let r = env.get("/v1/users/999/orders:watch").await;
    assert_error(&r, 404, 5, "");
}

#[tokio::test]
async fn an_error_after_the_first_message_ends_with_an_error_record() {
    let env = TestEnv::start().await;
    env.knobs(DemoService::Orders).fail_stream_after(Some(2));
    let r = env.get("/v1/users/1/orders:watch?maxEvents=5").await;
    assert_eq!(r.status, 200);
    let events = lines(&r.text);
    assert_eq!(events.len(), 3, "{}", r.text);
    assert!(events[0].get("result").is_some() && events[1].get("result").is_some());
    let err = &events[2]["error"];
    assert_eq!(err["code"], 14, "{err}");
    assert!(events[2].get("result").is_none());

    let r = env
        .send(
            env.client
                .get(env.url("/v1/users/1/orders:watch?maxEvents=5"))
                .header("accept", "text/event-stream"),
        )
        .await;
    assert!(r.text.contains("event: error\ndata: {"), "{}", r.text);
}

#[tokio::test]
async fn client_streaming_from_an_ndjson_body() {
    let env = TestEnv::start().await;
    let body = concat!(
        r#"{"id": "imp-1", "userId": "1", "total": {"currencyCode": "EUR", "units": "10"}}"#,
        "\n",
        "\n",
        r#"{"userId": "2", "total": {"currencyCode": "EUR", "units": "5"}}"#,
        "\n",
    );
    let r = env
        .raw("POST", "/v1/orders:import", "application/x-ndjson", body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = r.json();
    assert_eq!(s["imported"], 2);
    assert_eq!(s["totalUnits"], "15");
    assert_eq!(s["orderIds"][0], "imp-1");

    let bad = "{\"userId\": \"1\"}\n{\"userId\": true}\n";
    let r = env
        .raw("POST", "/v1/orders:import", "application/x-ndjson", bad)
        .await;
    assert_error(&r, 400, 3, "line 2");
    assert_eq!(env.knobs(DemoService::Orders).calls("ImportOrders"), 1);
}
