//! Tests of the whole endpoint against a toy dynamic schema, through `oneshot`: GraphQL over
//! HTTP here, SSE and WebSocket in `streams.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, Schema, Subscription, SubscriptionField,
    SubscriptionFieldFuture, TypeRef,
};
use async_graphql::{Pos, Value};
use axum::Router;
use axum::body::Body;
use futures::{SinkExt, StreamExt};
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower::ServiceExt;

use super::*;

mod streams;

/// Who the request is from, as put in request data by [`TestPrepare`].
struct Who(String);

/// A Prepare that records `x-user` (or the WS init payload's `user`) as request data and
/// rejects requests carrying `x-reject` with 429 / RATE_LIMITED.
struct TestPrepare;

impl Prepare for TestPrepare {
    async fn prepare(
        &self,
        req: async_graphql::Request,
        parts: &Parts,
    ) -> Result<async_graphql::Request, GatewayError> {
        if parts.headers.contains_key("x-reject") {
            return Err(GatewayError::rejected(
                ErrorKind::PersistedQueryRequired,
                "only persisted operations",
            ));
        }
        let header = parts
            .headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous");
        let from_init = parts
            .extensions
            .get::<ConnectionInitPayload>()
            .and_then(|p| p.0.get("user").and_then(Json::as_str).map(str::to_owned));
        let who = match from_init {
            Some(user) => format!("{header}+{user}"),
            None => header.to_owned(),
        };
        Ok(req.data(Who(who)))
    }
}

/// The toy schema with the [`ValidationSignal`] extension.
pub(crate) fn toy_schema() -> Schema {
    toy_schema_with(true)
}

/// Query { hello(name), whoami, fail, boom: String! }, Mutation { shout(text) },
/// Subscription { count(to: Int!): Int!, later: Int! }; `signal` registers [`ValidationSignal`].
fn toy_schema_with(signal: bool) -> Schema {
    let query = Object::new("Query")
        .field(
            Field::new("hello", TypeRef::named(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let name = match ctx.args.get("name") {
                        Some(v) => v.string()?.to_owned(),
                        None => "world".to_owned(),
                    };
                    Ok(Some(Value::from(format!("hello {name}"))))
                })
            })
            .argument(InputValue::new("name", TypeRef::named(TypeRef::STRING))),
        )
        .field(Field::new(
            "whoami",
            TypeRef::named(TypeRef::STRING),
            |ctx| {
                FieldFuture::new(async move {
                    let who = ctx.data_opt::<Who>().map(|w| w.0.clone());
                    Ok(who.map(Value::from))
                })
            },
        ))
        .field(Field::new("fail", TypeRef::named(TypeRef::STRING), |_| {
            FieldFuture::new(async move { Err::<Option<FieldValue>, _>("it failed".into()) })
        }))
        .field(Field::new(
            "boom",
            TypeRef::named_nn(TypeRef::STRING),
            |_| FieldFuture::new(async move { Err::<Option<FieldValue>, _>("it blew up".into()) }),
        ));
    let mutation = Object::new("Mutation").field(
        Field::new("shout", TypeRef::named(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let text = ctx.args.try_get("text")?.string()?.to_uppercase();
                Ok(Some(Value::from(text)))
            })
        })
        .argument(InputValue::new("text", TypeRef::named_nn(TypeRef::STRING))),
    );
    let subscription = Subscription::new("Subscription")
        .field(
            SubscriptionField::new("count", TypeRef::named_nn(TypeRef::INT), |ctx| {
                SubscriptionFieldFuture::new(async move {
                    let to = ctx.args.try_get("to")?.i64()?;
                    Ok(futures::stream::iter(1..=to).map(|i| Ok(Value::from(i))))
                })
            })
            .argument(InputValue::new("to", TypeRef::named_nn(TypeRef::INT))),
        )
        .field(SubscriptionField::new(
            "later",
            TypeRef::named_nn(TypeRef::INT),
            |_| {
                SubscriptionFieldFuture::new(async move {
                    // Not ready on the first poll: the SSE head is found while streaming.
                    Ok(futures::stream::once(async {
                        tokio::task::yield_now().await;
                        Ok(Value::from(7))
                    }))
                })
            },
        ));
    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"));
    if signal {
        builder = builder.extension(ValidationSignal);
    }
    builder
        .register(query)
        .register(mutation)
        .register(subscription)
        .finish()
        .unwrap()
}

fn app(graphiql: bool) -> Router {
    let settings = HttpSettings {
        graphiql,
        path: "/graphql".into(),
        ..HttpSettings::default()
    };
    router(toy_schema(), Arc::new(TestPrepare), settings)
}

/// A finished response: status, headers, body text.
struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    text: String,
}

impl Got {
    fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    fn code(&self) -> String {
        self.json()["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

async fn send(app: Router, request: Request<Body>) -> Got {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        headers,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn post(body: &Json, accept: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/graphql").header(CONTENT_TYPE, "application/json");
    if let Some(accept) = accept {
        builder = builder.header(ACCEPT, accept);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn get(query: &str, accept: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(format!("/graphql?{query}"));
    if let Some(accept) = accept {
        builder = builder.header(ACCEPT, accept);
    }
    builder.body(Body::empty()).unwrap()
}

const GQL: &str = "application/graphql-response+json";

#[tokio::test]
async fn post_query_both_media_types() {
    let body = json!({"query": "query Q($n: String) { hello(name: $n) }", "variables": {"n": "ada"}, "operationName": "Q"});
    let got = send(app(false), post(&body, Some(GQL))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.content_type(),
        "application/graphql-response+json; charset=utf-8"
    );
    assert_eq!(got.json(), json!({"data": {"hello": "hello ada"}}));
    let got = send(app(false), post(&body, None)).await;
    assert_eq!(got.content_type(), "application/json; charset=utf-8");
    assert_eq!(got.json(), json!({"data": {"hello": "hello ada"}}));
}

#[tokio::test]
async fn get_query_with_variables() {
    let got = send(
        app(false),
        get(
            "query=query%20Q(%24n%3AString)%7Bhello(name%3A%24n)%7D&variables=%7B%22n%22%3A%22bob%22%7D",
            Some(GQL),
        ),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.json(), json!({"data": {"hello": "hello bob"}}));
}

#[tokio::test]
async fn get_mutation_is_405_allow_post() {
    let got = send(
        app(false),
        get("query=mutation%7Bshout(text%3A%22a%22)%7D", Some(GQL)),
    )
    .await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(got.headers[ALLOW], "POST");
    assert_eq!(got.code(), "METHOD_NOT_ALLOWED");
    assert!(got.json().get("data").is_none());
    // Selected by name among several operations.
    let got = send(
        app(false),
        get(
            "query=query%20A%7Bhello%7D%20mutation%20B%7Bshout(text%3A%22a%22)%7D&operationName=B",
            None,
        ),
    )
    .await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
    // The same mutation over POST runs.
    let got = send(
        app(false),
        post(&json!({"query": "mutation { shout(text: \"a\") }"}), None),
    )
    .await;
    assert_eq!(got.json(), json!({"data": {"shout": "A"}}));
}

#[tokio::test]
async fn subscriptions_need_sse_or_websocket() {
    let got = send(
        app(false),
        get("query=subscription%7Bcount(to%3A1)%7D", None),
    )
    .await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
    let got = send(
        app(false),
        post(
            &json!({"query": "subscription { count(to: 1) }"}),
            Some(GQL),
        ),
    )
    .await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "BAD_REQUEST");
}

#[tokio::test]
async fn parse_and_validation_errors() {
    let parse = json!({"query": "{"});
    let got = send(app(false), post(&parse, Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "GRAPHQL_PARSE_FAILED");
    assert!(got.json().get("data").is_none());
    let got = send(app(false), post(&parse, Some("application/json"))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.code(), "GRAPHQL_PARSE_FAILED");

    let invalid = json!({"query": "{ nope }"});
    let got = send(app(false), post(&invalid, Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(got.json().get("data").is_none());
    let got = send(app(false), post(&invalid, None)).await;
    assert_eq!(got.status, StatusCode::OK);

    let coercion = json!({"query": "query C($id: ID!) { __typename }", "variables": {"id": null}});
    let got = send(app(false), post(&coercion, Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.text);
    assert_eq!(got.code(), "GRAPHQL_VALIDATION_FAILED");

    let unknown_op = json!({"query": "query A { hello }", "operationName": "B"});
    let got = send(app(false), post(&unknown_op, Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "OPERATION_RESOLUTION_FAILURE");
    let ambiguous = json!({"query": "query A { hello } query B { hello }"});
    let got = send(app(false), post(&ambiguous, None)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.code(), "OPERATION_RESOLUTION_FAILURE");
    assert!(got.json().get("data").is_none());
}

#[tokio::test]
async fn without_the_signal_extension_the_fallback_rule_applies() {
    let app = || {
        router(
            toy_schema_with(false),
            Arc::new(PassThrough),
            HttpSettings::default(),
        )
    };
    let got = send(app(), post(&json!({"query": "{ nope }"}), Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(got.code(), "GRAPHQL_VALIDATION_FAILED");
    let got = send(app(), post(&json!({"query": "{ hello fail }"}), Some(GQL))).await;
    assert_eq!(got.status, StatusCode::OK);
    // The documented limit: a failing non-null root field looks like a request error.
    let got = send(app(), post(&json!({"query": "{ boom }"}), Some(GQL))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn execution_errors_are_200_with_data() {
    let got = send(
        app(false),
        post(&json!({"query": "{ hello fail }"}), Some(GQL)),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    let json = got.json();
    assert!(
        json["errors"][0]["extensions"].get("code").is_none(),
        "{json}"
    );
    // (async-graphql's dynamic schema leaves a failed nullable field out of `data`.)
    assert_eq!(json["data"]["hello"], "hello world");
    assert_eq!(json["errors"][0]["message"], "it failed");
    // A non-null root field failing: data is null, but execution happened.
    let got = send(app(false), post(&json!({"query": "{ boom }"}), Some(GQL))).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.json()["data"], Json::Null);
    assert_eq!(got.json()["errors"][0]["message"], "it blew up");
}

#[tokio::test]
async fn http_level_errors() {
    // Malformed JSON, batch, missing query, wrong parameter types.
    for (body, needle) in [
        ("{ \"not a JSON", "not valid JSON"),
        ("[{\"query\":\"{hello}\"}]", "batched"),
        ("{\"qeury\":\"{hello}\"}", "missing"),
        ("{\"query\":\"{hello}\",\"variables\":[1]}", "map"),
        ("", "empty"),
    ] {
        let request = Request::post("/graphql")
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, GQL)
            .body(Body::from(body))
            .unwrap();
        let got = send(app(false), request).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(got.code(), "BAD_REQUEST");
        assert!(got.text.contains(needle), "{}", got.text);
        assert_eq!(
            got.content_type(),
            "application/graphql-response+json; charset=utf-8"
        );
    }
    // No content type / a wrong one.
    let request = Request::post("/graphql")
        .header(CONTENT_TYPE, "text/plain")
        .body(Body::from("{\"query\":\"{hello}\"}"))
        .unwrap();
    let got = send(app(false), request).await;
    assert_eq!(got.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(got.code(), "UNSUPPORTED_MEDIA_TYPE");
    // (Too large bodies are refused by the ingress: see the end-to-end tests.)
    // Unacceptable.
    let got = send(
        app(false),
        post(&json!({"query": "{hello}"}), Some("image/png")),
    )
    .await;
    assert_eq!(got.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(got.code(), "NOT_ACCEPTABLE");
    // Other methods.
    let request = Request::put("/graphql").body(Body::empty()).unwrap();
    let got = send(app(false), request).await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(got.headers[ALLOW], "GET, POST");
    // GET without a query.
    let got = send(app(false), get("", None)).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn prepare_sees_headers_and_can_reject() {
    let request = Request::post("/graphql")
        .header(CONTENT_TYPE, "application/json")
        .header("x-user", "ada")
        .body(Body::from(json!({"query": "{ whoami }"}).to_string()))
        .unwrap();
    let got = send(app(false), request).await;
    assert_eq!(got.json(), json!({"data": {"whoami": "ada"}}));
    let request = Request::post("/graphql")
        .header(CONTENT_TYPE, "application/json")
        .header("x-reject", "1")
        .body(Body::from(json!({"query": "{ whoami }"}).to_string()))
        .unwrap();
    let got = send(app(false), request).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        got.json(),
        json!({"errors": [{"message": "only persisted operations", "extensions": {"code": "PERSISTED_QUERY_REQUIRED"}}]})
    );
}

#[tokio::test]
async fn graphiql_for_browsers_only_when_enabled() {
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let got = send(app(true), get("", Some(browser))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type(), "text/html; charset=utf-8");
    assert!(got.text.contains("graphqlWs.createClient"));
    // A browser GET with a query gets the result, not the page.
    let got = send(app(true), get("query=%7Bhello%7D", Some(browser))).await;
    assert_eq!(got.json(), json!({"data": {"hello": "hello world"}}));
    // Off: a 400 like any GET without a query.
    let got = send(app(false), get("", Some(browser))).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
}

#[test]
fn route_paths_are_literal() {
    assert_eq!(route_path("/graphql"), "/graphql");
    assert_eq!(route_path("gql"), "/gql");
    assert_eq!(route_path("/g{x}"), "/g{{x}}");
}

#[tokio::test]
async fn odd_paths_do_not_panic() {
    let settings = HttpSettings {
        path: "/g{x}".into(),
        ..HttpSettings::default()
    };
    let app = router(toy_schema(), Arc::new(PassThrough), settings);
    let got = send(
        app,
        Request::get("/g{x}?query=%7Bhello%7D")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
}
