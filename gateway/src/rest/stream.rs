//! Server-streaming responses over HTTP: newline-delimited JSON, or Server-Sent Events.
//!
//! NDJSON (`application/x-ndjson`, the default): one line per message, `{"result": MESSAGE}`;
//! if the stream fails after it started, one last line `{"error": STATUS}` (a
//! `google.rpc.Status`), then the body ends. The wrapper keeps a message from ever being
//! mistaken for the error record (this is grpc-gateway's format).
//!
//! SSE (`text/event-stream`, when the client's `Accept` asks for it): each message is a
//! `data:` event; a failure is an `event: error` whose data is the status.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use prost_reflect::DynamicMessage;
use tokio::time::Instant;

use super::routes::RouteTarget;
use crate::error::GatewayError;
use crate::snapshot::Snapshot;
use crate::transcode;
use crate::upstream::ReplyStream;

/// Builds the streaming response; `first` is already received (so errors before it were
/// answered as plain HTTP errors by the caller). The whole stream must end by `deadline`,
/// `timeout` after the call started.
pub(crate) fn stream_response(
    snap: Arc<Snapshot>,
    target: Arc<RouteTarget>,
    first: Option<DynamicMessage>,
    mut rest: ReplyStream,
    deadline: Instant,
    timeout: Duration,
    sse: bool,
) -> Response {
    let body = async_stream::stream! {
        let Some(mut first) = first else { return; };
        match message_frame(&snap, &target, &mut first, sse) {
            Ok(b) => yield Ok::<Bytes, Infallible>(b),
            Err(e) => { yield Ok(error_frame(&snap, &e, sse)); return; }
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
                Ok(Some(mut msg)) => match message_frame(&snap, &target, &mut msg, sse) {
                    Ok(b) => { yield Ok(b); continue; }
                    Err(e) => e,
                },
                Ok(None) => break,
                Err(e) => GatewayError::Upstream(e),
            };
            tracing::warn!(method = %target.full_name, error = %err, "stream ended with an error");
            yield Ok(error_frame(&snap, &err, sse));
            break;
        }
    };
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// One message as a frame, after this BFF's redaction rules.
fn message_frame(
    snap: &Snapshot,
    target: &RouteTarget,
    msg: &mut DynamicMessage,
    sse: bool,
) -> Result<Bytes, GatewayError> {
    snap.shaping.redact(msg);
    let json = transcode::encode_response(msg, target.response_body.as_ref(), &snap.encode)
        .map_err(|e| GatewayError::Internal(format!("encoding a stream message: {e}")))?;
    let mut out = Vec::with_capacity(json.len() + 16);
    if sse {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
    } else {
        out.extend_from_slice(b"{\"result\":");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"}\n");
    }
    Ok(Bytes::from(out))
}

fn error_frame(snap: &Snapshot, err: &GatewayError, sse: bool) -> Bytes {
    let status = err.status_json(Some(snap.registry.pool()));
    let text = if sse {
        format!("event: error\ndata: {status}\n\n")
    } else {
        format!("{{\"error\":{status}}}\n")
    };
    Bytes::from(text)
}
