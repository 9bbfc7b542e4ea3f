//! Writing GraphQL results as HTTP: the request-error rule, status codes, error codes, bodies.
//!
//! # Request errors
//! A request error (the operation never ran) is told from an execution result by the
//! `ValidationSignal` extension when the executor's schema has it (see `signal.rs`),
//! otherwise by the fallback rule of [`is_request_error`]. Parse errors are found by the HTTP
//! layer itself, before the executor; unresolvable operation names too.
//!
//! A request error is written without a `data` entry; with
//! `application/graphql-response+json` (or before an SSE stream starts) it gets status 400,
//! with legacy `application/json` status 200. Errors without an `extensions.code` get
//! `GRAPHQL_VALIDATION_FAILED` (`GRAPHQL_PARSE_FAILED` for documents that do not parse).
//! An execution result is always 200 and keeps its `data` (even `null`).

use std::collections::BTreeMap;

use async_graphql::{ServerError, Value};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::negotiate::MediaType;
use crate::error::graphql::request_error as error_value;
use crate::error::{ErrorKind, GatewayError};

/// The code given to errors of documents that do not parse.
pub(crate) const PARSE_FAILED: &str = ErrorKind::GraphqlParseFailed.code();
/// The code given to the other request errors from the executor.
pub(crate) const VALIDATION_FAILED: &str = ErrorKind::GraphqlValidationFailed.code();

/// The wire shape of a GraphQL response: `data` left out entirely for request errors.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

/// The fallback rule, for executors without the `ValidationSignal` extension: a request
/// error has `data` null, at least one error, and no error with a `path`.
///
/// async-graphql's executors build a request error with `Response::from_errors` when
/// preparing the request fails (parse, limits, validation, operation selection): `data` is
/// null and no field ran, so no error has a path. Static-schema resolver errors always have
/// a path; the dynamic schema's do not, so a failing non-null root field (data null) is
/// taken for a request error by this rule: register the extension to be exact.
pub(crate) fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Sets `extensions.code` on every error that has none.
pub(crate) fn label(errors: &mut [ServerError], code: &str) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code);
        }
    }
}

/// Serializes a response: without `data` when it is a request error.
pub(crate) fn to_bytes(response: &async_graphql::Response, request_error: bool) -> Bytes {
    let wire = Wire {
        errors: &response.errors,
        data: (!request_error).then_some(&response.data),
        extensions: &response.extensions,
    };
    match serde_json::to_vec(&wire) {
        Ok(bytes) => Bytes::from(bytes),
        // Serializing GraphQL values cannot fail (string keys only); keep a valid body anyway.
        Err(_) => Bytes::from_static(
            br#"{"errors":[{"message":"the response could not be serialized","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#,
        ),
    }
}

/// Serializes an execution result whose `data` the executor wrote as JSON text
/// (`data_json`, valid JSON): the same bytes as [`to_bytes`] for the same data.
fn to_bytes_with_data(response: &async_graphql::Response, data_json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data_json.len() + 16);
    out.push(b'{');
    if !response.errors.is_empty() {
        out.extend_from_slice(b"\"errors\":");
        if serde_json::to_writer(&mut out, &response.errors).is_err() {
            return to_bytes(response, false);
        }
        out.push(b',');
    }
    out.extend_from_slice(b"\"data\":");
    out.extend_from_slice(data_json);
    if !response.extensions.is_empty() {
        out.extend_from_slice(b",\"extensions\":");
        if serde_json::to_writer(&mut out, &response.extensions).is_err() {
            return to_bytes(response, false);
        }
    }
    out.push(b'}');
    Bytes::from(out)
}

/// A JSON body of bytes with the media type's `Content-Type`.
fn json_response(status: StatusCode, media: MediaType, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    response
}

/// The JSON media type error bodies use: SSE requests get `application/json`.
fn json_media(media: MediaType) -> MediaType {
    match media {
        MediaType::EventStream => MediaType::Json,
        other => other,
    }
}

/// A rejection (HTTP-level or from `Prepare`) as `{"errors":[{message, extensions}]}`, with
/// the status of its kind and the headers it implies (`Retry-After`...).
pub fn rejection(err: &GatewayError, media: MediaType) -> Response {
    let response = async_graphql::Response::from_errors(vec![error_value(err, None)]);
    let mut http = json_response(
        err.http_status(),
        json_media(media),
        to_bytes(&response, true),
    );
    crate::error::status::add_headers(err, http.headers_mut());
    http
}

/// A [`rejection`] with status 405 and the methods that would work in `Allow`.
pub(crate) fn method_not_allowed(message: &str, allow: &'static str, media: MediaType) -> Response {
    let err = GatewayError::rejected(ErrorKind::MethodNotAllowed, message);
    let mut http = rejection(&err, media);
    http.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    http
}

/// A document that did not parse: a request error labelled [`PARSE_FAILED`].
pub(crate) fn parse_failure(error: ServerError, media: MediaType) -> Response {
    let mut response = async_graphql::Response::from_errors(vec![error]);
    label(&mut response.errors, PARSE_FAILED);
    graphql(response, true, media, None)
}

/// A request error found by the HTTP layer in a well-formed request (as a validation error
/// would be): 400, or 200 with legacy `application/json`.
pub(crate) fn request_error(code: &'static str, message: String, media: MediaType) -> Response {
    let mut error = ServerError::new(message, None);
    label(std::slice::from_mut(&mut error), code);
    graphql(
        async_graphql::Response::from_errors(vec![error]),
        true,
        media,
        None,
    )
}

/// A response from the executor; `request_error` says whether the operation never ran;
/// `data_json` is its `data` when the executor wrote it as JSON text (see
/// [`DataSlot`](super::DataSlot)).
pub(crate) fn executed(
    mut response: async_graphql::Response,
    request_error: bool,
    media: MediaType,
    data_json: Option<Vec<u8>>,
) -> Response {
    if request_error {
        label(&mut response.errors, VALIDATION_FAILED);
    }
    graphql(response, request_error, media, data_json)
}

/// Writes a GraphQL response with its status, headers set by resolvers and cache control.
fn graphql(
    response: async_graphql::Response,
    request_error: bool,
    media: MediaType,
    data_json: Option<Vec<u8>>,
) -> Response {
    let status = if request_error && media != MediaType::Json {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = match data_json {
        Some(data) if !request_error => to_bytes_with_data(&response, &data),
        _ => to_bytes(&response, request_error),
    };
    let mut http = json_response(status, json_media(media), body);
    if response.is_ok()
        && let Some(value) = response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        http.headers_mut().insert(CACHE_CONTROL, value);
    }
    // Headers set by resolvers; the content type stays ours.
    for (name, value) in &response.http_headers {
        if name != CONTENT_TYPE {
            http.headers_mut().append(name, value.clone());
        }
    }
    http
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use async_graphql::{PathSegment, Pos};
    use serde_json::{Value as Json, json};

    fn body_json(bytes: &Bytes) -> Json {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn request_error_rule() {
        let validation = async_graphql::Response::from_errors(vec![ServerError::new(
            "Unknown field",
            Some(Pos { line: 1, column: 3 }),
        )]);
        assert!(is_request_error(&validation));

        let mut field_error = ServerError::new("boom", None);
        field_error.path = vec![PathSegment::Field("hello".into())];
        let execution = async_graphql::Response::from_errors(vec![field_error.clone()]);
        assert!(!is_request_error(&execution));

        let mut partial =
            async_graphql::Response::new(Value::from_json(json!({"hello": null})).unwrap());
        partial.errors = vec![field_error];
        assert!(!is_request_error(&partial));

        assert!(!is_request_error(&async_graphql::Response::new(
            Value::Null
        )));
    }

    #[test]
    fn request_errors_have_no_data_and_a_code() {
        let mut response =
            async_graphql::Response::from_errors(vec![ServerError::new("bad", None)]);
        label(&mut response.errors, VALIDATION_FAILED);
        let json = body_json(&to_bytes(&response, true));
        assert_eq!(
            json,
            json!({"errors": [{"message": "bad", "extensions": {"code": VALIDATION_FAILED}}]})
        );
    }

    #[test]
    fn data_written_as_json_gives_the_bytes_the_value_gives() {
        let data = json!({"user": {"id": "1", "name": "Ada \"Countess\"", "n": 1.5}});
        let mut field_error = ServerError::new("boom", Some(Pos { line: 1, column: 3 }));
        field_error.path = vec![PathSegment::Field("other".into())];
        let text = serde_json::to_vec(&data).unwrap();
        for (errors, extensions) in [(vec![], false), (vec![field_error], true)] {
            let mut response =
                async_graphql::Response::new(Value::from_json(data.clone()).unwrap());
            response.errors = errors;
            if extensions {
                response = response.extension("fallbacks", Value::List(vec!["a.B/C".into()]));
            }
            assert_eq!(
                to_bytes_with_data(&response, &text),
                to_bytes(&response, false)
            );
            let http = executed(response, false, MediaType::Json, Some(text.clone()));
            assert_eq!(http.status(), StatusCode::OK);
        }
    }

    #[test]
    fn existing_codes_are_kept() {
        let mut error = ServerError::new("nope", None);
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", "PERSISTED_QUERY_NOT_FOUND");
        let mut errors = vec![error];
        label(&mut errors, VALIDATION_FAILED);
        assert_eq!(
            errors[0].extensions.as_ref().unwrap().get("code"),
            Some(&Value::String("PERSISTED_QUERY_NOT_FOUND".into()))
        );
    }

    #[test]
    fn execution_results_keep_null_data() {
        let mut field_error = ServerError::new("boom", None);
        field_error.path = vec![PathSegment::Field("hello".into())];
        let response = async_graphql::Response::from_errors(vec![field_error]);
        let http = executed(response, false, MediaType::GraphQLResponseJson, None);
        assert_eq!(http.status(), StatusCode::OK);
    }

    #[test]
    fn status_by_media_type() {
        let validation =
            || async_graphql::Response::from_errors(vec![ServerError::new("bad", None)]);
        let new = executed(validation(), true, MediaType::GraphQLResponseJson, None);
        assert_eq!(new.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            new.headers()[CONTENT_TYPE],
            "application/graphql-response+json; charset=utf-8"
        );
        let legacy = executed(validation(), true, MediaType::Json, None);
        assert_eq!(legacy.status(), StatusCode::OK);
        assert_eq!(
            legacy.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let ok = executed(
            async_graphql::Response::new(Value::from_json(json!({"a": 1})).unwrap()),
            false,
            MediaType::GraphQLResponseJson,
            None,
        );
        assert_eq!(ok.status(), StatusCode::OK);
        let sse = executed(validation(), true, MediaType::EventStream, None);
        assert_eq!(sse.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            sse.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn rejections_carry_status_code_and_allow() {
        let http = method_not_allowed(
            "mutations need POST",
            "POST",
            MediaType::GraphQLResponseJson,
        );
        assert_eq!(http.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(http.headers()[ALLOW], "POST");
        let deep = GatewayError::rejected(ErrorKind::QueryTooDeep, "too deep");
        let http = rejection(&deep, MediaType::Json);
        assert_eq!(http.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            http.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn resolver_headers_pass_but_not_content_type() {
        let mut response = async_graphql::Response::new(Value::Null);
        response
            .http_headers
            .insert("x-custom", HeaderValue::from_static("1"));
        response
            .http_headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let http = executed(response, false, MediaType::Json, None);
        assert_eq!(http.headers()["x-custom"], "1");
        assert_eq!(
            http.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }
}
