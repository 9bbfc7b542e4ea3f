//! The WebSocket door: a streaming call per WebSocket, its messages moved both ways with
//! backpressure, its end (half-close, cancellation, final status) mapped both ways.
//!
//! The ingress admitted the upgrade request (its context, its snapshot, the policies' request
//! hooks: a caller without credentials gets its 401 before any upgrade). Then the call is
//! built with [`RequestCtx::call_to`](crate::request::RequestCtx::call_to) and leaves through
//! the snapshot's outbound path (policy chain, then [`Upstream::streaming`]) as every door's.
//!
//! One task runs a session, polling three things: the feeder (socket -> call: each text frame
//! transcoded and handed to the call through a small bounded channel; while the backend does
//! not take messages the socket is not read), the pump (call -> socket: a reply is read only
//! once the previous one was written to the socket, so a slow client stops the backend
//! through HTTP/2 flow control) and the idle timer. Whichever ends first decides: the call's
//! end writes the final status and the Close frame; the client's Close (or a dropped
//! connection) drops the call, which cancels it at the backend; a bad frame ends the call with
//! INVALID_ARGUMENT.
//!
//! [`Upstream::streaming`]: crate::upstream::Upstream::streaming

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::{ClientFrame, close_of, ok_status, result_frame, status_frame};
use crate::error::{ErrorKind, GatewayError, StatusBody};
use crate::grpcweb::method_of_path;
use crate::ingress::{Admitted, respond};
use crate::request::policy::CallSite;
use crate::request::{ConnectionHold, RequestCtx, ShuttingDown};
use crate::snapshot::Snapshot;
use crate::transcode::{self, BodyTarget, HttpRequestParts};
use crate::upstream::{CallBody, RequestStream, Target, UpstreamError};

/// Request messages transcoded ahead of the backend taking them: past these the socket is
/// not read.
const REQUEST_BUFFER: usize = 4;

/// How long the gateway waits for the client's answer to its Close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves an upgrade request the ingress admitted to the WebSocket door: refusals (an unknown
/// or unary method, a bad handshake) are ordinary HTTP errors, before any upgrade.
pub async fn handle(admitted: Admitted, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    match upgrade(&admitted, &mut parts).await {
        Ok(resp) => resp,
        Err(e) => respond(
            admitted.ctx.door,
            &e,
            &parts.headers,
            Some(admitted.snapshot.registry.pool()),
        ),
    }
}

/// The method a WebSocket path calls: a streaming one.
fn target_of(snap: &Snapshot, path: &str) -> Result<Arc<Target>, GatewayError> {
    let unimplemented = |message: String| GatewayError::rejected(ErrorKind::Unimplemented, message);
    let name = method_of_path(path).ok_or_else(|| {
        unimplemented(format!(
            "{path:?} is not a gRPC method path: WebSocket calls are GET /package.Service/Method"
        ))
    })?;
    let Some(target) = snap.targets.get(&name) else {
        let (service, method) = name.rsplit_once('.').unwrap_or(("", &name));
        let known = snap.services.iter().any(|(s, _)| s.full_name() == service);
        return Err(unimplemented(if known {
            format!("unknown method {method} of service {service}")
        } else {
            format!("unknown service {service}")
        }));
    };
    let m = &target.method;
    if !m.is_client_streaming() && !m.is_server_streaming() {
        return Err(unimplemented(format!(
            "{} is unary: call it over REST or gRPC-Web; WebSocket serves streaming methods",
            m.full_name()
        )));
    }
    Ok(target.clone())
}

async fn upgrade(
    admitted: &Admitted,
    parts: &mut http::request::Parts,
) -> Result<Response, GatewayError> {
    let snap = &admitted.snapshot;
    // Browsers do not apply CORS to WebSockets: a page of another site is refused here.
    crate::cors::refuse_cross_site(
        snap.config.cors.as_ref(),
        &parts.headers,
        &parts.uri,
        "WebSocket calls",
    )?;
    let target = target_of(snap, &admitted.ctx.path)?;
    tracing::Span::current().record("rpc", target.method.full_name());
    let ws = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|r| {
            GatewayError::bad_request(
                None,
                format!("not a WebSocket handshake: {}", r.body_text()),
            )
        })?;
    let limit = snap.config.streams.max_message_bytes.as_usize();
    // Frames a little over the limit are read and refused with a status; far over it, the
    // WebSocket layer drops the connection without reading them.
    let hard = limit.saturating_mul(2).saturating_add(1024);
    let admitted = admitted.clone();
    // The socket keeps its connection's place under the connection limits until it ends.
    let hold = parts.extensions.get::<ConnectionHold>().cloned();
    let stopping = parts.extensions.get::<ShuttingDown>().cloned();
    Ok(ws
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| async move {
            let span = tracing::info_span!(
                "websocket",
                request_id = %admitted.ctx.id.as_str(),
                rpc = %target.method.full_name(),
            );
            tracing::Instrument::instrument(session(admitted, target, socket, stopping), span)
                .await;
            drop(hold);
        }))
}

/// How the feeder stopped.
enum FeedEnd {
    /// The client closed the socket, or the connection broke: the call is cancelled.
    Gone,
    /// A frame broke the protocol or a limit: the call ends with this error.
    Refused(GatewayError),
}

/// What a session counts, for its log line.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
    /// Milliseconds since the session started at the last message either way.
    last_activity_ms: AtomicU64,
}

impl Counts {
    fn touch(&self, start: Instant) {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }
}

/// Runs one call over `socket` (see the module docs).
async fn session(
    admitted: Admitted,
    target: Arc<Target>,
    socket: WebSocket,
    stopping: Option<ShuttingDown>,
) {
    let start = Instant::now();
    let snap = admitted.snapshot.clone();
    let ctx = admitted.ctx.clone();
    let (mut sink, mut source) = socket.split();
    let (tx, rx) = mpsc::channel::<Bytes>(REQUEST_BUFFER);
    let call = ctx.call_to(
        &target,
        CallBody::Live(RequestStream::new(ReceiverStream::new(rx))),
    );
    let deadline = call.deadline;
    let timeout = call.remaining();
    let site = CallSite::WebSocket(ctx.path.as_str().into());
    let counts = Counts::default();
    let idle = snap.config.streams.idle_timeout.get();

    let outcome = {
        let calling = async {
            let reply = snap.outbound.call(&ctx, &site, call).await?.into_stream()?;
            pump(
                &snap, &target, reply, &mut sink, &counts, start, deadline, timeout,
            )
            .await
        };
        let feeding = feed(&snap, &target, &mut source, tx, &counts, start);
        let idling = async {
            loop {
                let last = counts.last_activity_ms.load(Ordering::Relaxed);
                // (an idle timeout too far to add to now never fires)
                match (start + Duration::from_millis(last)).checked_add(idle) {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
                if counts.last_activity_ms.load(Ordering::Relaxed) == last {
                    break;
                }
            }
        };
        tokio::select! {
            end = calling => end.map_err(Some),
            end = feeding => match end {
                FeedEnd::Gone => Err(None),
                FeedEnd::Refused(e) => Err(Some(e)),
            },
            () = idling => Err(Some(GatewayError::Upstream(UpstreamError::DeadlineExceeded {
                backend: target.backend.to_string(),
                timeout: idle,
            }))),
            // The gateway shutting down ends the call (the client may open it again on
            // another replica).
            () = async {
                match stopping {
                    Some(stopping) => stopping.wait().await,
                    None => std::future::pending().await,
                }
            } => Err(Some(GatewayError::rejected(
                ErrorKind::Unavailable,
                "the gateway is shutting down: open the call again",
            ))),
            // The deadline holds even while a reply waits for a client that does not read.
            () = tokio::time::sleep_until(deadline) => {
                Err(Some(GatewayError::Upstream(UpstreamError::DeadlineExceeded {
                    backend: target.backend.to_string(),
                    timeout,
                })))
            }
        }
        // The call, if still running, is dropped here: its HTTP/2 stream is reset, and the
        // backend sees CANCELLED.
    };
    let (code, message) = match outcome {
        Err(None) => {
            log_end(
                &ctx,
                &target,
                start,
                &counts,
                tonic::Code::Cancelled as i32,
                "the client left",
            );
            return;
        }
        Ok(()) => (ok_status(), "call finished"),
        Err(Some(e)) => {
            tracing::info!(method = %target.method.full_name(), error = %e, "websocket call failed");
            (e.status_json(Some(snap.registry.pool())), "call failed")
        }
    };
    finish(&mut sink, &mut source, &code).await;
    log_end(&ctx, &target, start, &counts, code.code, message);
}

/// Writes the final status and the Close frame, then waits for the client's Close; a client
/// that reads nothing gets [`CLOSE_GRACE`] for all of it, then the connection is dropped.
async fn finish(
    sink: &mut SplitSink<WebSocket, Message>,
    source: &mut SplitStream<WebSocket>,
    status: &StatusBody,
) {
    let (code, reason) = close_of(status.code);
    let sent = async {
        sink.send(Message::Text(status_frame(status).into()))
            .await?;
        sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await
    };
    if !matches!(tokio::time::timeout(CLOSE_GRACE, sent).await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = source.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The session's log line (the ingress's line for the upgrade says 101), with the variant the
/// call went to when its backend is split.
fn log_end(
    ctx: &RequestCtx,
    target: &Target,
    start: Instant,
    counts: &Counts,
    code: i32,
    what: &str,
) {
    let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let variant = ctx.split.as_ref().and_then(|s| s.chosen());
    tracing::info!(
        target: "portico::access",
        door = "websocket",
        rpc = target.method.full_name(),
        grpc_status = code,
        latency_us,
        messages_in = counts.received.load(Ordering::Relaxed),
        messages_out = counts.sent.load(Ordering::Relaxed),
        variant = variant.as_deref(),
        "websocket {what}"
    );
}

/// Socket -> call: reads frames while the call takes messages; see [`FeedEnd`]. After the
/// half-close it only watches for the client leaving.
async fn feed(
    snap: &Snapshot,
    target: &Target,
    source: &mut SplitStream<WebSocket>,
    tx: mpsc::Sender<Bytes>,
    counts: &Counts,
    start: Instant,
) -> FeedEnd {
    let limits = &snap.config.streams;
    let max_bytes = limits.max_message_bytes.as_usize();
    let input = target.method.input();
    let mut tx = Some(tx);
    // The call stopped taking messages (it ended, or is ending): later frames are ignored,
    // and its end is the pump's to report, with its real status.
    let mut call_ended = false;
    let mut n: u64 = 0;
    loop {
        let text = match source.next().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return FeedEnd::Gone,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return FeedEnd::Refused(GatewayError::bad_request(
                    None,
                    "binary frames are not served: send each message as proto3 JSON in a text frame",
                ));
            }
            Some(Ok(Message::Text(t))) => t,
        };
        let json = match ClientFrame::of(text.as_str()) {
            ClientFrame::HalfClose => {
                // The request stream ends when its sender is dropped.
                tx = None;
                continue;
            }
            ClientFrame::Message(_) if call_ended => continue,
            ClientFrame::Message(json) => json,
        };
        let Some(sender) = &tx else {
            return FeedEnd::Refused(GatewayError::bad_request(
                None,
                "a message after the half-close (the empty frame)",
            ));
        };
        n += 1;
        counts.touch(start);
        if n > limits.max_messages {
            return FeedEnd::Refused(GatewayError::rejected(
                ErrorKind::PayloadTooLarge,
                format!(
                    "more than {} messages in one call (streams.max_messages)",
                    limits.max_messages
                ),
            ));
        }
        if json.len() > max_bytes {
            return FeedEnd::Refused(GatewayError::rejected(
                ErrorKind::PayloadTooLarge,
                format!(
                    "message {n} is {} bytes, more than the limit of {max_bytes} (streams.max_message_bytes)",
                    json.len()
                ),
            ));
        }
        let parts = HttpRequestParts {
            body: json.as_bytes(),
            body_target: &BodyTarget::Whole,
            path_bindings: &[],
            query: None,
            fill_update_mask: false,
        };
        let bytes = match transcode::encode_request(&input, None, &parts, &snap.decode) {
            Ok(encoded) => Bytes::from(encoded.bytes),
            Err(e) => {
                return FeedEnd::Refused(GatewayError::BadRequest {
                    field: e.field.clone(),
                    message: format!("message {n}: {e}"),
                });
            }
        };
        counts.received.fetch_add(1, Ordering::Relaxed);
        // Waits while the call does not take messages: the socket is not read meanwhile. A
        // call that ended takes none; its end is the pump's to report.
        if sender.send(bytes).await.is_err() {
            tx = None;
            call_ended = true;
        }
    }
}

/// Call -> socket: each reply written before the next is read; `Ok` once the call ended
/// with OK.
#[allow(clippy::too_many_arguments)]
async fn pump(
    snap: &Snapshot,
    target: &Target,
    mut reply: crate::upstream::StreamReply,
    sink: &mut SplitSink<WebSocket, Message>,
    counts: &Counts,
    start: Instant,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), GatewayError> {
    loop {
        let next = reply
            .stream
            .next_by(
                &target.backend,
                deadline,
                timeout,
                snap.config.limits.max_response_bytes.as_usize(),
            )
            .await?;
        let Some(mut msg) = next else {
            return Ok(());
        };
        snap.shaping.redact(&mut msg);
        let json = transcode::encode_response(&msg, None, &snap.encode).map_err(|e| {
            GatewayError::Internal(format!(
                "encoding a reply of {}: {e}",
                target.method.full_name()
            ))
        })?;
        counts.touch(start);
        if sink
            .send(Message::Text(result_frame(&json).into()))
            .await
            .is_err()
        {
            // The client is gone: nothing more can be written; the call is cancelled when
            // the session drops it.
            return Err(GatewayError::rejected(
                ErrorKind::Upstream(tonic::Code::Cancelled),
                "the client left",
            ));
        }
        counts.sent.fetch_add(1, Ordering::Relaxed);
    }
}
