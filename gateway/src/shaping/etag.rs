//! ETags and conditional GETs: a strong `ETag` on every 200 response to `GET`/`HEAD` whose body
//! is fully buffered, and `304 Not Modified` when `If-None-Match` matches (RFC 9110 §13.1.2).
//!
//! - The tag is the first 128 bits of the SHA-256 of the identity body, in hex, quoted. A
//!   strong tag must differ between content codings (RFC 9110 §8.8.3), so when the response
//!   will be compressed the coding is appended inside the quotes: `"…-gzip"`, `"…-br"`,
//!   `"…-zstd"` (as Apache's mod_deflate does). The same content therefore has one tag per
//!   coding, and a client revalidating with the tag it got always gets its 304.
//! - A tag the handler set itself is kept and used for the comparison.
//! - `If-None-Match` uses the weak comparison (a `W/` prefix is ignored); `*` matches any
//!   current representation; a list matches when any member does.
//! - A 304 has no body and keeps every header of the 200 but the content ones
//!   (`Content-Type`, `Content-Length`...): `ETag`, `Cache-Control`, `Vary` stay.
//! - Skipped: other methods and statuses, streaming bodies (no exact size: NDJSON and SSE),
//!   bodies already encoded, and `Cache-Control: no-store` responses.
//!
//! The handler still runs for a request that ends in a 304 (the tag is of the response): the
//! saving is bandwidth and client work, not backend calls.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, TRANSFER_ENCODING,
};
use http::{HeaderValue, Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::compress::CompressPolicy;
use super::redact::hex;
use crate::config::Algorithm;
use crate::error::GatewayError;

/// What the ETag middleware needs: the compression policy, to make tags coding-specific.
#[derive(Clone, Debug, Default)]
pub struct EtagState {
    /// The compression policy when compression is on.
    pub compress: Option<Arc<CompressPolicy>>,
}

/// The strong entity tag of a body sent with `coding` (`None`: identity).
pub fn entity_tag(body: &[u8], coding: Option<Algorithm>) -> String {
    let digest = Sha256::digest(body);
    match coding {
        Some(a) => format!("\"{}-{}\"", hex(&digest[..16]), a.token()),
        None => format!("\"{}\"", hex(&digest[..16])),
    }
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
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
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
pub async fn etag(State(state): State<EtagState>, req: Request, next: Next) -> Response {
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
    let accept_encoding = req.headers().get(ACCEPT_ENCODING).cloned();
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
            let coding = state.compress.as_ref().and_then(|p| {
                p.coding_for(accept_encoding.as_ref(), &parts.headers, bytes.len() as u64)
            });
            let tag = entity_tag(&bytes, coding);
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
    fn tags_are_strong_and_coding_specific() {
        let t = entity_tag(b"{}", None);
        assert!(t.starts_with('"') && t.ends_with('"') && t.len() == 34, "{t}");
        assert_eq!(t, entity_tag(b"{}", None));
        assert_ne!(t, entity_tag(b"{ }", None));
        let g = entity_tag(b"{}", Some(Algorithm::Gzip));
        assert_eq!(g, format!("{}-gzip\"", &t[..t.len() - 1]));
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
        assert!(!if_none_match("\"abc-gzip\"", t), "another coding");
    }
}
