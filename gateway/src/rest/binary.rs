//! `google.api.HttpBody` replies: the raw bytes with their content type, not JSON.
//!
//! - Unary: the reply's `data` is the body, its `content_type` the `Content-Type`
//!   (`application/octet-stream` when empty or not a valid media type: a value that could
//!   inject a header or is not `type/subtype` is never sent, and is logged). `extensions` are
//!   ignored, as grpc-gateway does. The answer has `X-Content-Type-Options: nosniff`, so a
//!   browser never reads it as another type than the one given; ETags and compression apply
//!   as to any buffered reply (by its content type).
//! - Server-streamed (a download): each message's `data` is written as it arrives; the
//!   content type is the first message's. An error before the first message is an ordinary
//!   JSON error; after it, the body ends abruptly (the chunked encoding is not terminated, an
//!   HTTP/2 stream is reset), so a client sees a truncated download, never a complete-looking
//!   one, and the error is logged. (A trailer could carry it, but browsers cannot read
//!   trailers.)

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use prost_reflect::{DynamicMessage, Value};
use tokio::time::Instant;

use super::routes::RouteTarget;
use crate::error::GatewayError;
use crate::snapshot::Snapshot;
use crate::upstream::{Payload, ReplyStream};

/// The content type of a reply whose `content_type` is empty or refused.
const OCTET_STREAM: &str = "application/octet-stream";
/// Longest content type sent on.
const MAX_CONTENT_TYPE: usize = 256;

/// `content_type` as a header value, when it is a well-formed media type: `type/subtype`
/// tokens, optional `; name=value` parameters, visible ASCII only (no CR, LF or other control
/// characters), at most 256 bytes. `None` otherwise (empty included).
pub(crate) fn content_type_header(content_type: &str) -> Option<HeaderValue> {
    let ct = content_type.trim();
    if ct.is_empty() || ct.len() > MAX_CONTENT_TYPE {
        return None;
    }
    if !ct
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return None;
    }
    let essence = ct.split(';').next().unwrap_or("").trim();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) || !token(sub) {
        return None;
    }
    HeaderValue::from_str(ct).ok()
}

/// The header for a reply's `content_type` (see [`content_type_header`]); a refused value is
/// logged (not its text: it may be anything).
fn reply_content_type(target: &RouteTarget, content_type: &str) -> HeaderValue {
    content_type_header(content_type).unwrap_or_else(|| {
        if !content_type.is_empty() {
            tracing::warn!(
                rpc = %target.full_name,
                len = content_type.len(),
                "google.api.HttpBody content_type is not a valid media type; sent as application/octet-stream"
            );
        }
        HeaderValue::from_static(OCTET_STREAM)
    })
}

/// The `content_type` and `data` of an HttpBody message (or of the HttpBody field the route's
/// `response_body` names).
fn parts_of(target: &RouteTarget, msg: &DynamicMessage) -> (String, Bytes) {
    let mut body = msg.clone();
    if let Some(path) = &target.response_body {
        for field in path.fields() {
            body = match body.get_field(field).into_owned() {
                Value::Message(inner) => inner,
                _ => return (String::new(), Bytes::new()),
            };
        }
    }
    let content_type = match body.get_field_by_name("content_type").as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let data = match body.get_field_by_name("data").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Bytes::new(),
    };
    (content_type, data)
}

/// The answer to a unary call whose reply is an HttpBody.
pub(crate) fn unary_reply(
    target: &RouteTarget,
    payload: Payload,
) -> Result<Response, GatewayError> {
    let message = payload.into_message(&target.method.output(), &target.call.backend)?;
    let (content_type, data) = parts_of(target, &message);
    let mut resp = Response::new(Body::from(data));
    *resp.status_mut() = target.success;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        reply_content_type(target, &content_type),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// The download of a server stream of HttpBody messages; `first` is already received (errors
/// before it were answered as plain HTTP errors by the caller). The whole stream must end by
/// `deadline`, `timeout` after the call started.
pub(crate) fn download(
    snap: Arc<Snapshot>,
    target: Arc<RouteTarget>,
    first: Option<DynamicMessage>,
    mut rest: ReplyStream,
    deadline: Instant,
    timeout: Duration,
) -> Response {
    let (content_type, first_data) = first
        .as_ref()
        .map(|m| parts_of(&target, m))
        .unwrap_or_default();
    let content_type = reply_content_type(&target, &content_type);
    let started = first.is_some();
    let body = async_stream::stream! {
        if !started {
            return;
        }
        if !first_data.is_empty() {
            yield Ok::<Bytes, std::io::Error>(first_data);
        }
        loop {
            let next = rest
                .next_by(
                    &target.call.backend,
                    deadline,
                    timeout,
                    snap.config.limits.max_response_bytes.as_usize(),
                )
                .await;
            let err = match next {
                Ok(Some(msg)) => {
                    let (_, data) = parts_of(&target, &msg);
                    if !data.is_empty() {
                        yield Ok(data);
                    }
                    continue;
                }
                Ok(None) => break,
                Err(e) => GatewayError::Upstream(e),
            };
            tracing::warn!(
                rpc = %target.full_name,
                error = %err,
                "download ended with an error; the body was cut short"
            );
            yield Err(std::io::Error::other(err.to_string()));
            break;
        }
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_checked_before_they_become_a_header() {
        for good in [
            "image/png",
            "text/csv; charset=utf-8",
            "application/vnd.api+json",
            "multipart/mixed; boundary=\"a b\"",
        ] {
            assert!(content_type_header(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "png",
            "text/html\r\nSet-Cookie: a=b",
            "text/html\nx: y",
            "text/\u{e9}",
            "image/png\0",
            "/png",
            "image/",
            "ima ge/png",
            &format!("text/{}", "x".repeat(300)),
        ] {
            assert!(content_type_header(bad).is_none(), "{bad:?}");
        }
    }
}
