//! ETags and conditional GETs: an `ETag` on every 200 response to `GET`/`HEAD` whose body is
//! fully buffered, and `304 Not Modified` when `If-None-Match` matches (RFC 9110 §13.1.2).
//!
//! - The tag is the first 128 bits of a SHA-256, in hex: of the canonical form of a JSON body
//!   (members sorted at every level, no whitespace), of the bytes of any other body. Canonical,
//!   because protobuf maps and `Struct`s have no order and are written in a different order
//!   from one response to the next: hashing the bytes would give the same data a new tag
//!   every time.
//! - The tag is therefore weak (`W/"…"`): two responses with one tag hold the same data but may
//!   differ in member order, and in content coding: the tag is computed on the identity
//!   content, before compression, and is the same for gzip, br, zstd and identity (a strong tag
//!   would have to differ per coding, RFC 9110 §8.8.3). `If-None-Match` uses the weak
//!   comparison anyway, so clients revalidate with it as with any tag.
//! - A tag the handler set itself is kept and used for the comparison.
//! - `If-None-Match`: `*` matches any current representation; a list matches when any member
//!   does; a `W/` prefix is ignored.
//! - A 304 has no body and keeps every header of the 200 but the content ones
//!   (`Content-Type`, `Content-Length`...): `ETag`, `Cache-Control`, `Vary` stay.
//! - Skipped: other methods and statuses, streaming bodies (no exact size: NDJSON and SSE),
//!   bodies already encoded, and `Cache-Control: no-store` responses.
//!
//! The handler still runs for a request that ends in a 304 (the tag is of the response): the
//! saving is bandwidth and client work, not backend calls.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, TRANSFER_ENCODING,
};
use http::{HeaderValue, Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::redact::hex;
use crate::error::GatewayError;

/// The weak entity tag of a body: over its canonical form when `json`, else its bytes.
pub fn entity_tag(body: &[u8], json: bool) -> String {
    let mut hasher = Sha256::new();
    let canonical = json
        && serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| serde_json::to_writer(&mut hasher, &v).is_ok());
    if !canonical {
        hasher = Sha256::new();
        hasher.update(body);
    }
    format!("W/\"{}\"", hex(&hasher.finalize()[..16]))
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"))
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison; `*` matches anything).
/// A malformed list matches nothing from the first malformed member on.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let ours = opaque(etag.trim());
    let mut rest = header.trim();
    if rest == "*" {
        return true;
    }
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(body) = tag.strip_prefix('"') else {
            return false;
        };
        let Some(end) = body.find('"') else {
            return false;
        };
        if Some(&body[..end]) == ours {
            return true;
        }
        rest = &body[end + 1..];
    }
}

/// The opaque part of an entity tag (between the quotes), ignoring a `W/` prefix.
fn opaque(tag: &str) -> Option<&str> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')
}

fn is_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| {
            matches!(
                ct.as_str(),
                "text/event-stream" | "application/x-ndjson" | "application/jsonl"
            )
        })
}

fn no_store(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
}

/// The middleware (see the module docs).
pub async fn etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let condition: Option<String> = {
        let values: Vec<&str> = req
            .headers()
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let resp = next.run(req).await;
    if resp.status() != StatusCode::OK
        || resp.headers().contains_key(CONTENT_ENCODING)
        || is_stream(resp.headers())
        || no_store(resp.headers())
        || resp.body().size_hint().exact().is_none()
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return GatewayError::Internal(format!("reading a response body for its ETag: {e}"))
                .into_response();
        }
    };
    let tag = match parts.headers.get(ETAG) {
        Some(existing) => existing.to_str().unwrap_or("").to_string(),
        None => {
            let tag = entity_tag(&bytes, is_json(&parts.headers));
            if let Ok(v) = HeaderValue::from_str(&tag) {
                parts.headers.insert(ETAG, v);
            }
            tag
        }
    };
    if condition.is_some_and(|c| if_none_match(&c, &tag)) {
        for h in [
            CONTENT_TYPE,
            CONTENT_LENGTH,
            CONTENT_ENCODING,
            CONTENT_LANGUAGE,
            CONTENT_RANGE,
            TRANSFER_ENCODING,
        ] {
            parts.headers.remove(h);
        }
        parts.status = StatusCode::NOT_MODIFIED;
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_weak_and_stable_across_member_order() {
        let t = entity_tag(br#"{"a":1,"m":{"x":1,"y":2}}"#, true);
        assert!(
            t.starts_with("W/\"") && t.ends_with('"') && t.len() == 36,
            "{t}"
        );
        assert_eq!(t, entity_tag(br#"{"m":{"y":2,"x":1}, "a":1}"#, true));
        assert_ne!(t, entity_tag(br#"{"a":2,"m":{"x":1,"y":2}}"#, true));
        assert_ne!(
            entity_tag(br#"{"a":1}"#, false),
            entity_tag(br#"{ "a":1}"#, false),
            "bytes for non-JSON"
        );
        assert_eq!(
            entity_tag(b"not json", true),
            entity_tag(b"not json", false),
            "invalid JSON falls back to the bytes"
        );
    }

    #[test]
    fn if_none_match_rules() {
        let t = "\"abc\"";
        assert!(if_none_match("\"abc\"", t));
        assert!(if_none_match("W/\"abc\"", t), "weak comparison");
        assert!(if_none_match("W/\"abc\"", "W/\"abc\""));
        assert!(if_none_match("\"x\", \"abc\"", t));
        assert!(if_none_match("\"x\",W/\"abc\"", t));
        assert!(if_none_match("*", t));
        assert!(if_none_match(" * ", t));
        assert!(!if_none_match("\"abcd\"", t));
        assert!(!if_none_match("abc", t), "unquoted");
        assert!(!if_none_match("\"abc", t), "unterminated");
        assert!(!if_none_match("", t));
        assert!(if_none_match("\"a,b\", \"abc\"", t), "commas inside tags");
    }
}
