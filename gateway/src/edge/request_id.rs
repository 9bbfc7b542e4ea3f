//! Request ids and the per-request log line.
//!
//! Every request gets an id: the client's `x-request-id` when it is sane (1-128 characters of
//! `[A-Za-z0-9._:-]`), else a fresh random one. The id is put in the request extensions (the
//! REST door forwards it to the backend as metadata), returned in the response header, and
//! carried by the tracing span, so every log line of the request has it.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

/// The header carrying the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }
}

fn sane(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

fn fresh() -> HeaderValue {
    let n: u128 = rand::random();
    HeaderValue::from_str(&format!("{n:032x}")).unwrap_or(HeaderValue::from_static("0"))
}

/// Middleware: assigns the request id, opens the request's span, writes one log line per
/// request with method, path, status and latency (time to the response head). The REST door
/// records the gRPC method it called in the span's `rpc` field.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .filter(|v| sane(v))
        .cloned()
        .unwrap_or_else(fresh);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %RequestId(id.clone()).as_str(),
        %method,
        %path,
        rpc = tracing::field::Empty,
    );
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_us, "request finished");
        } else {
            tracing::info!(status, latency_us, "request finished");
        }
    });
    resp.headers_mut().insert(REQUEST_ID_HEADER, id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(sane(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!sane(&HeaderValue::from_static("")));
        assert!(!sane(&HeaderValue::from_static("has space")));
        assert!(!sane(&HeaderValue::from_static("semi;colon")));
        let long = "a".repeat(129);
        assert!(!sane(&HeaderValue::from_str(&long).unwrap_or(fresh())));
        assert_eq!(fresh().len(), 32);
    }
}
