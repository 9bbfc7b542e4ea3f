//! Content negotiation: which media type a GraphQL response is written in, from `Accept`.
//!
//! The rules (those the `graphql-http` audit checks):
//! - no `Accept`, an empty one, `*/*` or `application/*` → `application/json` (the legacy
//!   type; the spec says to assume it while the `application/graphql-response+json`
//!   watershed has not passed);
//! - `application/graphql-response+json` listed explicitly → that type, unless
//!   `application/json` has a strictly higher `q` (both explicit with equal `q`: the new type);
//! - `text/event-stream` listed explicitly (not through a wildcard) → GraphQL over SSE; it
//!   wins ties, because a client that names it can only mean streaming;
//! - nothing acceptable (e.g. `Accept: image/png`) → `None`, answered with 406.

use http::HeaderMap;
use http::header::ACCEPT;

/// The media types the GraphQL endpoint can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/graphql-response+json`: spec status codes (4xx on request errors).
    GraphQLResponseJson,
    /// `application/json`: legacy, 200 for every well-formed request.
    Json,
    /// `text/event-stream`: GraphQL over SSE, distinct connections mode.
    EventStream,
}

impl MediaType {
    /// The `Content-Type` header value, with its charset.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::GraphQLResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
            Self::EventStream => "text/event-stream; charset=utf-8",
        }
    }

    /// The `type/subtype` this media type answers to.
    fn essence(self) -> (&'static str, &'static str) {
        match self {
            Self::GraphQLResponseJson => ("application", "graphql-response+json"),
            Self::Json => ("application", "json"),
            Self::EventStream => ("text", "event-stream"),
        }
    }
}

/// One media range of an `Accept` header (borrowed from it; compared ignoring ASCII case).
#[derive(Debug, PartialEq)]
struct Range<'a> {
    ty: &'a str,
    subtype: &'a str,
    /// Quality in thousandths (0..=1000).
    q: u16,
}

/// Parses every `Accept` header of the request into media ranges (malformed ranges skipped).
fn ranges(headers: &HeaderMap) -> Vec<Range<'_>> {
    let mut out = Vec::new();
    for value in headers.get_all(ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut pieces = item.split(';');
            let essence = pieces.next().unwrap_or("").trim();
            let Some((ty, subtype)) = essence.split_once('/') else {
                continue;
            };
            let mut q = 1000;
            for param in pieces {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_q(value.trim()).unwrap_or(1000);
                }
            }
            out.push(Range {
                ty: ty.trim(),
                subtype: subtype.trim(),
                q,
            });
        }
    }
    out
}

/// Parses a quality value (`0`, `0.5`, `1.000`) into thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let value: f32 = text.parse().ok()?;
    if !(0.0..=1.0).contains(&value) {
        return None;
    }
    // In range 0..=1000 by the check above.
    Some((value * 1000.0).round() as u16)
}

/// How a media type matched: its quality and how specific the matching range was
/// (2 exact, 1 `type/*`, 0 `*/*`). The most specific range decides the quality.
fn matched(ranges: &[Range], media: MediaType) -> Option<(u16, u8)> {
    let (ty, subtype) = media.essence();
    ranges
        .iter()
        .filter_map(|r| {
            let is_type = r.ty.eq_ignore_ascii_case(ty);
            let specificity = match (r.ty, r.subtype) {
                (_, s) if is_type && s.eq_ignore_ascii_case(subtype) => 2,
                (_, "*") if is_type => 1,
                ("*", "*") => 0,
                _ => return None,
            };
            Some((specificity, r.q))
        })
        .max_by_key(|(specificity, _)| *specificity)
        .map(|(specificity, q)| (q, specificity))
}

/// Picks the response media type for these request headers; `None` means 406.
pub(crate) fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let ranges = ranges(headers);
    if ranges.is_empty() {
        return Some(MediaType::Json);
    }
    let candidates = [
        MediaType::EventStream,
        MediaType::GraphQLResponseJson,
        MediaType::Json,
    ];
    candidates
        .into_iter()
        .filter_map(|media| {
            let (q, specificity) = matched(&ranges, media)?;
            // SSE only when asked for by name: a browser's `*/*` must not start a stream.
            if q == 0 || (media == MediaType::EventStream && specificity < 2) {
                return None;
            }
            let preference = match (media, specificity) {
                (MediaType::EventStream, _) => 3,
                (MediaType::GraphQLResponseJson, 2) | (MediaType::Json, 0 | 1) => 2,
                _ => 1,
            };
            Some(((q, specificity, preference), media))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, media)| media)
}

/// True when the client names `text/html` (a browser navigating to the endpoint).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    ranges(headers).iter().any(|r| {
        r.ty.eq_ignore_ascii_case("text") && r.subtype.eq_ignore_ascii_case("html") && r.q > 0
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn pick(value: Option<&str>) -> Option<MediaType> {
        negotiate(&accept(value))
    }

    #[test]
    fn legacy_json_by_default_and_for_wildcards() {
        assert_eq!(pick(None), Some(MediaType::Json));
        assert_eq!(pick(Some("")), Some(MediaType::Json));
        assert_eq!(pick(Some("*/*")), Some(MediaType::Json));
        assert_eq!(pick(Some("application/*")), Some(MediaType::Json));
        assert_eq!(pick(Some("application/json")), Some(MediaType::Json));
        assert_eq!(
            pick(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Some(MediaType::Json)
        );
    }

    #[test]
    fn graphql_response_json_when_named() {
        assert_eq!(
            pick(Some("application/graphql-response+json")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            pick(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            pick(Some("application/json, application/graphql-response+json")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            pick(Some("Application/GraphQL-Response+JSON; charset=utf-8")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            pick(Some(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(MediaType::Json)
        );
        assert_eq!(
            pick(Some("application/graphql-response+json, */*;q=0.1")),
            Some(MediaType::GraphQLResponseJson)
        );
    }

    #[test]
    fn event_stream_only_by_name() {
        assert_eq!(
            pick(Some("text/event-stream")),
            Some(MediaType::EventStream)
        );
        assert_eq!(
            pick(Some("text/event-stream, application/json")),
            Some(MediaType::EventStream)
        );
        assert_eq!(
            pick(Some("text/event-stream;q=0.5, application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(pick(Some("text/*")), None);
    }

    #[test]
    fn unacceptable_and_refused() {
        assert_eq!(pick(Some("image/png")), None);
        assert_eq!(pick(Some("application/json;q=0")), None);
        assert_eq!(pick(Some("*/*;q=0")), None);
        // The exact range wins over the wildcard, in both directions.
        assert_eq!(
            pick(Some("*/*, application/json;q=0")),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(pick(Some("nonsense")), Some(MediaType::Json));
    }

    #[test]
    fn html_detection() {
        assert!(wants_html(&accept(Some("text/html,*/*;q=0.8"))));
        assert!(!wants_html(&accept(Some("*/*"))));
        assert!(!wants_html(&accept(Some("text/html;q=0"))));
        assert!(!wants_html(&accept(None)));
    }

    #[test]
    fn quality_values() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("x"), None);
    }
}
