//! Reading a request body, once, for every door: at most `limits.max_body_bytes` (counted
//! after decompression), no pause longer than `limits.body_idle_timeout` between two pieces,
//! the whole of it within `limits.body_timeout`. Doors get the bytes, never the stream.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::{BodyTimeout, GatewayError};

/// The bounds a body is read under.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Largest body, in bytes, after decompression.
    pub max_bytes: u64,
    /// Longest pause between two pieces.
    pub idle: Duration,
    /// Longest time for the whole body.
    pub total: Duration,
}

impl BodyLimits {
    /// The limits of the `limits` section.
    pub fn of(l: &crate::config::LimitsConfig) -> Self {
        Self {
            max_bytes: l.max_body_bytes.bytes(),
            idle: l.body_idle_timeout.get(),
            total: l.body_timeout.get(),
        }
    }
}

/// Reads the whole body under `limits`. A `Content-Length` over the limit is refused before
/// anything is read (unless the body is compressed: the limit counts decompressed bytes).
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    limits: BodyLimits,
) -> Result<Bytes, GatewayError> {
    let mut reader = BodyReader::new(body, headers, limits)?;
    let mut buf = BytesMut::new();
    while let Some(data) = reader.next().await? {
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// A body read piece by piece under `limits` (for a door that streams it: an NDJSON client
/// stream); [`read`] is this, collected.
pub struct BodyReader {
    body: Body,
    limits: BodyLimits,
    total_deadline: Instant,
    seen: u64,
}

impl BodyReader {
    /// A reader of `body`; a `Content-Length` over the limit is refused now (unless the body
    /// is compressed: the limit counts decompressed bytes).
    pub fn new(body: Body, headers: &HeaderMap, limits: BodyLimits) -> Result<Self, GatewayError> {
        let max = limits.max_bytes;
        if headers.get(header::CONTENT_ENCODING).is_none()
            && let Some(len) = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            && len > max
        {
            return Err(GatewayError::PayloadTooLarge { limit: max });
        }
        Ok(Self {
            body,
            limits,
            total_deadline: Instant::now() + limits.total,
            seen: 0,
        })
    }

    /// The next piece of the body, `None` at its end; an error once a bound is broken.
    pub async fn next(&mut self) -> Result<Option<Bytes>, GatewayError> {
        let limits = self.limits;
        loop {
            if self.body.is_end_stream() {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= self.total_deadline {
                return Err(GatewayError::BodyTimeout(BodyTimeout::Total(limits.total)));
            }
            let total_left = self.total_deadline - now;
            let (wait, bound) = if limits.idle <= total_left {
                (limits.idle, BodyTimeout::Idle(limits.idle))
            } else {
                (total_left, BodyTimeout::Total(limits.total))
            };
            match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => return Err(GatewayError::BodyTimeout(bound)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(GatewayError::bad_request(
                        None,
                        format!("the request body could not be read: {e}"),
                    ));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.seen += data.len() as u64;
                        if self.seen > limits.max_bytes {
                            return Err(GatewayError::PayloadTooLarge {
                                limit: limits.max_bytes,
                            });
                        }
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// Checks that a body is declared JSON (`application/json` or `*+json`; with `ndjson`, also
/// `application/x-ndjson` or `application/jsonl`): 415 otherwise. No `Content-Type` passes (a
/// JSON body is what the doors expect).
pub fn check_json(headers: &HeaderMap, ndjson: bool) -> Result<(), GatewayError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = essence == "application/json"
        || essence.ends_with("+json")
        || (ndjson
            && matches!(
                essence.as_str(),
                "application/x-ndjson" | "application/jsonl"
            ));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::UnsupportedMediaType {
            got: ct.to_string(),
            expected: if ndjson {
                "application/x-ndjson (one JSON message per line)"
            } else {
                "application/json"
            },
        })
    }
}

/// The bytes of a body the ingress has already read (an in-memory body: no waiting).
pub async fn bytes_of(body: Body) -> Result<Bytes, GatewayError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| GatewayError::Internal(format!("reading a buffered body: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use futures::StreamExt;
    use http::HeaderValue;

    use super::*;

    const LIMITS: BodyLimits = BodyLimits {
        max_bytes: 10,
        idle: Duration::from_millis(100),
        total: Duration::from_millis(250),
    };

    /// A body sending `pieces`, each after `gap`.
    fn trickle(pieces: usize, gap: Duration) -> Body {
        let s = futures::stream::iter(0..pieces).then(move |_| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, Infallible>(Bytes::from_static(b"x"))
        });
        Body::from_stream(s)
    }

    #[test]
    fn json_and_ndjson_content_types() {
        let mut h = HeaderMap::new();
        assert!(check_json(&h, false).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_json(&h, false).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(check_json(&h, false).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert!(check_json(&h, true).is_ok());
        assert!(check_json(&h, false).is_err());
    }

    #[tokio::test]
    async fn the_size_limit_counts_what_arrives_and_what_is_announced() {
        let ok = read(Body::from("0123456789"), &HeaderMap::new(), LIMITS).await;
        assert_eq!(ok.unwrap().len(), 10);
        let over = read(Body::from("0123456789!"), &HeaderMap::new(), LIMITS).await;
        assert!(matches!(
            over,
            Err(GatewayError::PayloadTooLarge { limit: 10 })
        ));
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        let announced = read(Body::from("x"), &h, LIMITS).await;
        assert!(matches!(
            announced,
            Err(GatewayError::PayloadTooLarge { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_breaks_the_idle_bound() {
        let r = read(
            trickle(3, Duration::from_millis(150)),
            &HeaderMap::new(),
            LIMITS,
        )
        .await;
        assert!(
            matches!(r, Err(GatewayError::BodyTimeout(BodyTimeout::Idle(_)))),
            "{r:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_breaks_the_total_bound() {
        // Every gap is under the idle bound, the sum is over the total one.
        let r = read(
            trickle(8, Duration::from_millis(60)),
            &HeaderMap::new(),
            LIMITS,
        )
        .await;
        assert!(
            matches!(r, Err(GatewayError::BodyTimeout(BodyTimeout::Total(_)))),
            "{r:?}"
        );
        let ok = read(
            trickle(3, Duration::from_millis(60)),
            &HeaderMap::new(),
            LIMITS,
        )
        .await;
        assert_eq!(ok.unwrap().len(), 3);
    }
}
