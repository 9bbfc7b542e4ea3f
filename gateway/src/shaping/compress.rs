//! Response compression: which coding a client gets (`Accept-Encoding` with q-values, the
//! configured order breaking ties), which responses qualify, and the middleware that applies
//! the choice to tower-http's `CompressionLayer`.
//!
//! Rules: only configured codings; a coding with `q=0` is never used; `*` stands for every
//! coding not listed; no `Accept-Encoding` means identity. A response qualifies when it has a
//! textual content type (`text/*`, JSON, `+json`, NDJSON, XML, JavaScript), no
//! `Content-Encoding` yet, and at least `min_size` bytes (a stream, whose size is unknown,
//! always qualifies: NDJSON and SSE streams are compressed and flushed whenever the gateway
//! waits for the next message, so events are never held back). Responses that qualify, and
//! 304s, carry `Vary: Accept-Encoding` whatever coding was chosen.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as _;
use tower_http::compression::predicate::Predicate;

use crate::config::{Algorithm, CompressionConfig};

/// The compression settings of a profile.
#[derive(Clone, Debug)]
pub struct CompressPolicy {
    algorithms: Vec<Algorithm>,
    min_size: u64,
}

impl CompressPolicy {
    /// The policy, or `None` when compression is off (or no algorithm is listed).
    pub fn new(cfg: &CompressionConfig) -> Option<Self> {
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for a in &cfg.algorithms {
            if !algorithms.contains(a) {
                algorithms.push(*a);
            }
        }
        (cfg.enabled && !algorithms.is_empty()).then(|| Self {
            algorithms,
            min_size: cfg.min_size.bytes(),
        })
    }

    /// Whether `a` is offered.
    pub fn offers(&self, a: Algorithm) -> bool {
        self.algorithms.contains(&a)
    }

    /// The coding for a request with these headers, or `None` for identity.
    pub fn negotiate(&self, headers: &HeaderMap) -> Option<Algorithm> {
        let mut explicit: Vec<(String, u16)> = Vec::new();
        let mut wildcard: Option<u16> = None;
        for value in headers.get_all(ACCEPT_ENCODING) {
            let Ok(text) = value.to_str() else { continue };
            for item in text.split(',') {
                let mut parts = item.split(';');
                let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                if token.is_empty() {
                    continue;
                }
                let mut q = Some(1000);
                for p in parts {
                    let p = p.trim();
                    if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                        q = parse_q(v.trim());
                    }
                }
                let Some(q) = q else { continue };
                let token = if token == "x-gzip" {
                    "gzip".to_string()
                } else {
                    token
                };
                if token == "*" {
                    wildcard = Some(q);
                } else {
                    explicit.push((token, q));
                }
            }
        }
        let mut best: Option<(Algorithm, u16)> = None;
        for a in &self.algorithms {
            let q = explicit
                .iter()
                .find(|(t, _)| t == a.token())
                .map(|(_, q)| *q)
                .or(wildcard)
                .unwrap_or(0);
            if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((*a, q));
            }
        }
        best.map(|(a, _)| a)
    }

    /// Whether a response with these headers and body size (`None`: unknown, a stream)
    /// qualifies for compression.
    pub fn eligible(&self, headers: &HeaderMap, size: Option<u64>) -> bool {
        if headers.contains_key(CONTENT_ENCODING) {
            return false;
        }
        let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if !compressible_type(ct) {
            return false;
        }
        let size = size.or_else(|| {
            headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        size.is_none_or(|s| s >= self.min_size)
    }
}

/// A q-value (`0` to `1` with up to three decimals) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut digits = frac.to_string();
    while digits.len() < 3 {
        digits.push('0');
    }
    let part: u16 = digits.parse().ok()?;
    let q = whole + part;
    (q <= 1000).then_some(q)
}

/// Textual media types that are worth compressing.
fn compressible_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/x-ndjson"
                | "application/jsonl"
                | "application/xml"
                | "application/javascript"
        )
}

/// tower-http's predicate: [`CompressPolicy::eligible`].
#[derive(Clone, Debug)]
pub struct Eligible(pub Arc<CompressPolicy>);

impl Predicate for Eligible {
    fn should_compress<B>(&self, response: &http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        self.0
            .eligible(response.headers(), response.body().size_hint().exact())
    }
}

/// Middleware outside tower-http's `CompressionLayer`: replaces `Accept-Encoding` by the
/// negotiated coding (or `identity`), so the layer uses exactly this choice and never answers
/// 406; then adds `Vary: Accept-Encoding` to responses that qualify and to 304s.
pub async fn negotiate(
    State(policy): State<Arc<CompressPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let chosen = policy.negotiate(req.headers());
    req.headers_mut().insert(
        ACCEPT_ENCODING,
        HeaderValue::from_static(chosen.map_or("identity", Algorithm::token)),
    );
    let mut resp = next.run(req).await;
    let varies = resp
        .headers()
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.eq_ignore_ascii_case("accept-encoding")
        });
    if !varies
        && (resp.status() == StatusCode::NOT_MODIFIED
            || policy.eligible(resp.headers(), resp.body().size_hint().exact()))
    {
        resp.headers_mut()
            .append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

    fn policy(algorithms: &[Algorithm]) -> CompressPolicy {
        CompressPolicy::new(&CompressionConfig {
            enabled: true,
            min_size: ByteSize(100),
            algorithms: algorithms.to_vec(),
        })
        .unwrap()
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation_follows_q_values_then_the_configured_order() {
        use Algorithm::*;
        let p = policy(&[Zstd, Br, Gzip]);
        assert_eq!(p.negotiate(&HeaderMap::new()), None);
        assert_eq!(p.negotiate(&accept("gzip")), Some(Gzip));
        assert_eq!(p.negotiate(&accept("x-gzip")), Some(Gzip));
        assert_eq!(p.negotiate(&accept("gzip, deflate, br")), Some(Br));
        assert_eq!(p.negotiate(&accept("gzip, br, zstd")), Some(Zstd));
        assert_eq!(p.negotiate(&accept("br;q=0.5, gzip;q=0.8")), Some(Gzip));
        assert_eq!(p.negotiate(&accept("zstd;q=0, br;q=0")), None);
        assert_eq!(p.negotiate(&accept("gzip;q=0")), None);
        assert_eq!(p.negotiate(&accept("*")), Some(Zstd));
        assert_eq!(
            p.negotiate(&accept("*;q=0.1, zstd;q=0, br;q=0")),
            Some(Gzip)
        );
        assert_eq!(p.negotiate(&accept("identity")), None);
        assert_eq!(p.negotiate(&accept("GZIP;Q=1.000")), Some(Gzip));
        assert_eq!(p.negotiate(&accept("gzip;q=2")), None);
        let p = policy(&[Gzip, Br]);
        assert_eq!(p.negotiate(&accept("br, gzip, zstd")), Some(Gzip));
        assert_eq!(p.negotiate(&accept("zstd")), None);
        assert!(
            CompressPolicy::new(&CompressionConfig {
                enabled: false,
                ..CompressionConfig::default()
            })
            .is_none()
        );
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("x"), None);
    }

    #[test]
    fn eligibility() {
        let p = policy(&[Algorithm::Gzip]);
        let mut h = HeaderMap::new();
        assert!(!p.eligible(&h, Some(1000)), "no content type");
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(p.eligible(&h, Some(100)));
        assert!(!p.eligible(&h, Some(99)));
        assert!(p.eligible(&h, None), "streams qualify");
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
        );
        assert!(p.eligible(&h, Some(1000)));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        assert!(p.eligible(&h, None));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert!(!p.eligible(&h, Some(1000)));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!p.eligible(&h, Some(1000)), "already encoded");
    }
}
