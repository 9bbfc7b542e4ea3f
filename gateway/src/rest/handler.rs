//! The REST handler: match a route, transcode the request, make the call, write the reply.
//!
//! This is the whole REST door. Below it there is nothing REST-specific: it builds an
//! [`upstream::Call`](crate::upstream::Call) and hands it to the upstream stack.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::router::Lookup;
use super::routes::{RouteTarget, Streaming};
use super::stream::stream_response;
use crate::app::Gateway;
use crate::descriptors::{Idempotency, idempotency};
use crate::edge::RequestId;
use crate::error::{BodyTimeout, GatewayError};
use crate::snapshot::Snapshot;
use crate::transcode::{self, BodyTarget, FieldPath, HttpRequestParts, TranscodeError};
use crate::upstream::{Call, CallBody, UpstreamError};

/// The axum fallback handler serving every REST route of the current snapshot.
pub async fn handle(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let snap = gateway.snapshot();
    match serve(&snap, req).await {
        Ok(resp) => resp,
        Err(e) => e.respond(Some(snap.registry.pool())),
    }
}

impl From<TranscodeError> for GatewayError {
    fn from(e: TranscodeError) -> Self {
        GatewayError::BadRequest {
            field: e.field.clone(),
            message: e.to_string(),
        }
    }
}

async fn serve(snap: &Arc<Snapshot>, req: Request) -> Result<Response, GatewayError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let (target, bindings) = match snap.routes.lookup(&parts.method, path) {
        Lookup::Matched {
            value, bindings, ..
        } => (value.clone(), bindings),
        Lookup::MethodNotAllowed { allowed } => {
            return Err(GatewayError::MethodNotAllowed {
                method: parts.method.clone(),
                path: path.to_string(),
                allowed,
            });
        }
        Lookup::NotFound => {
            return Err(GatewayError::RouteNotFound {
                method: parts.method.clone(),
                path: path.to_string(),
            });
        }
        Lookup::BadPath { reason } => {
            return Err(GatewayError::bad_request(
                None,
                format!("invalid path: {reason}"),
            ));
        }
    };
    tracing::Span::current().record("rpc", target.full_name.as_str());
    let timeout = call_timeout(&parts.headers, &target, snap)?;
    let deadline = Instant::now() + timeout;
    let takes_body = !matches!(target.body, BodyTarget::None);
    if takes_body {
        check_content_type(&parts.headers, target.streaming == Streaming::Client)?;
    }
    let limits = &snap.config.limits;
    let bytes = read_body(
        body,
        &parts.headers,
        limits.max_body_bytes.bytes(),
        limits.body_idle_timeout.get(),
    )
    .await?;

    let mut path_values: Vec<(&FieldPath, &str)> = Vec::with_capacity(bindings.len());
    for b in &bindings {
        let fp = target
            .variables
            .iter()
            .find(|fp| {
                fp.as_str()
                    .split('.')
                    .eq(b.field_path.iter().map(String::as_str))
            })
            .ok_or_else(|| {
                GatewayError::Internal(format!("unresolved path variable in {}", target.template))
            })?;
        path_values.push((fp, b.value.as_str()));
    }
    let input = target.method.input();
    let body = if target.streaming == Streaming::Client {
        CallBody::Stream(decode_ndjson(&input, &bytes, snap)?)
    } else {
        let parts_in = HttpRequestParts {
            body: &bytes,
            body_target: &target.body,
            path_bindings: &path_values,
            query: parts.uri.query(),
            fill_update_mask: target.fill_update_mask,
        };
        CallBody::Unary(transcode::decode_request(&input, &parts_in, &snap.decode)?)
    };
    let call = Call {
        method: target.method.clone(),
        body,
        metadata: snap
            .headers
            .request_metadata(&parts.headers, parts.extensions.get::<RequestId>()),
        deadline,
        idempotent: target.http_method == http::Method::GET
            || idempotency(&target.method) != Idempotency::Unknown,
    };

    if target.streaming == Streaming::Server {
        let sse = wants_sse(&parts.headers);
        let mut reply = snap.upstream.server_streaming(call).await?;
        // An error before the first message is an ordinary HTTP error.
        let first = match tokio::time::timeout_at(deadline, reply.stream.message()).await {
            Err(_) => {
                return Err(GatewayError::Upstream(UpstreamError::DeadlineExceeded {
                    backend: target.backend.clone(),
                    timeout,
                }));
            }
            Ok(Err(status)) => {
                return Err(GatewayError::Upstream(UpstreamError::from_call_status(
                    &target.backend,
                    status,
                    deadline,
                    timeout,
                    snap.config.limits.max_response_bytes.as_usize(),
                )));
            }
            Ok(Ok(first)) => first,
        };
        let mut resp = stream_response(
            snap.clone(),
            target.clone(),
            first,
            reply.stream,
            deadline,
            sse,
        );
        snap.headers
            .response_headers(&reply.metadata, resp.headers_mut());
        return Ok(resp);
    }

    let mut reply = snap.upstream.unary(call).await?;
    // This BFF's redaction rules, before anything is written.
    snap.shaping.redact(&mut reply.message);
    let json =
        transcode::encode_response(&reply.message, target.response_body.as_ref(), &snap.encode)
            .map_err(|e| {
                GatewayError::Internal(format!("encoding the reply of {}: {e}", target.full_name))
            })?;
    let mut resp = (
        target.success,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(json),
    )
        .into_response();
    snap.headers
        .response_headers(&reply.metadata, resp.headers_mut());
    if reply.fallback {
        resp.headers_mut()
            .insert("x-portico-fallback", HeaderValue::from_static("static"));
    }
    Ok(resp)
}

/// The call's deadline: the client's `grpc-timeout` (capped by `deadlines.max`), else the
/// method's configured default.
fn call_timeout(
    headers: &HeaderMap,
    target: &RouteTarget,
    snap: &Snapshot,
) -> Result<Duration, GatewayError> {
    let Some(v) = headers.get("grpc-timeout") else {
        return Ok(target.timeout);
    };
    let asked = v
        .to_str()
        .ok()
        .and_then(parse_grpc_timeout)
        .ok_or_else(|| {
            GatewayError::bad_request(
                Some("grpc-timeout".into()),
                "invalid grpc-timeout header: expected up to 8 digits and a unit of H, M, S, m, u or n (e.g. \"500m\")",
            )
        })?;
    Ok(asked.min(snap.config.deadlines.max.get()))
}

/// Parses the gRPC wire format of a timeout: `1-8 digits` + `H|M|S|m|u|n`.
pub fn parse_grpc_timeout(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    if num.is_empty() || num.len() > 8 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn check_content_type(headers: &HeaderMap, ndjson: bool) -> Result<(), GatewayError> {
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

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().starts_with("text/event-stream"))
        })
}

/// Reads the whole body, at most `limit` bytes (after decompression), failing when the client
/// pauses longer than `idle` between two pieces.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: u64,
    idle: Duration,
) -> Result<Bytes, GatewayError> {
    if headers.get(header::CONTENT_ENCODING).is_none()
        && let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut body = body;
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(GatewayError::BodyTimeout(BodyTimeout::Idle(idle))),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(GatewayError::bad_request(
                    None,
                    format!("the request body could not be read: {e}"),
                ));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if (buf.len() + data.len()) as u64 > limit {
                        return Err(GatewayError::PayloadTooLarge { limit });
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(buf.freeze())
}

/// Decodes a newline-delimited JSON body into the messages of a client stream.
fn decode_ndjson(
    input: &prost_reflect::MessageDescriptor,
    bytes: &[u8],
    snap: &Snapshot,
) -> Result<Vec<prost_reflect::DynamicMessage>, GatewayError> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let msg = transcode::decode_json(input, line, &snap.decode).map_err(|e| {
            GatewayError::BadRequest {
                field: e.field.clone(),
                message: format!("line {}: {e}", i + 1),
            }
        })?;
        out.push(msg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_wire_format() {
        assert_eq!(parse_grpc_timeout("500m"), Some(Duration::from_millis(500)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("5s"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }

    #[test]
    fn json_and_ndjson_content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h, false).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_content_type(&h, false).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(check_content_type(&h, false).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert!(check_content_type(&h, true).is_ok());
        assert!(check_content_type(&h, false).is_err());
    }
}
