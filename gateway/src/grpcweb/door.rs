//! The gRPC-Web door: a request's one message framed in, the call made with the client's
//! bytes as they are, the reply framed out with its status in a trailer frame.
//!
//! The ingress already read the request (its context, its snapshot, its body, the budget from
//! `grpc-timeout`); the call is built with
//! [`RequestCtx::call_to`](crate::request::RequestCtx::call_to) and leaves through the
//! snapshot's outbound path (policy chain, then upstream), as every door's. Any failure before
//! the first message is answered trailers-only by the one responder; a stream that fails after
//! it ends with the status in its trailer frame.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use prost::Message;
use prost_reflect::DynamicMessage;

use super::frame::{self, DATA, FrameError, Trailers};
use super::{Mode, WebContentType, method_of_path};
use crate::error::{ErrorKind, GatewayError};
use crate::ingress::body::bytes_of;
use crate::ingress::{Admitted, respond};
use crate::request::policy::CallSite;
use crate::snapshot::Snapshot;
use crate::upstream::{CallBody, Payload, ReplyForm, Target, UpstreamError};

/// Serves a request the ingress admitted to the gRPC-Web door.
pub async fn handle(admitted: Admitted, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match serve(&admitted, &parts, body).await {
        Ok(resp) => resp,
        Err(e) => respond(
            admitted.ctx.door,
            &e,
            &parts.headers,
            Some(admitted.snapshot.registry.pool()),
        ),
    }
}

impl From<FrameError> for GatewayError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Compressed => {
                GatewayError::rejected(ErrorKind::Unimplemented, e.to_string())
            }
            other => GatewayError::bad_request(None, other.to_string()),
        }
    }
}

/// The method a request calls, with what the door needs to know of it.
fn target_of(snap: &Snapshot, path: &str) -> Result<Arc<Target>, GatewayError> {
    let unimplemented = |message: String| GatewayError::rejected(ErrorKind::Unimplemented, message);
    let Some(name) = method_of_path(path) else {
        return Err(unimplemented(format!(
            "{path:?} is not a gRPC method path: gRPC-Web calls are POST /package.Service/Method"
        )));
    };
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
    let kind = match (m.is_client_streaming(), m.is_server_streaming()) {
        (true, false) => Some("client-streaming"),
        (true, true) => Some("bidirectional-streaming"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Err(unimplemented(format!(
            "{} is {kind}: gRPC-Web serves unary and server-streaming methods only (a browser cannot stream a request)",
            m.full_name()
        )));
    }
    Ok(target.clone())
}

async fn serve(
    admitted: &Admitted,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response, GatewayError> {
    let snap = &admitted.snapshot;
    let ctx = &admitted.ctx;
    if parts.method != Method::POST {
        return Err(GatewayError::MethodNotAllowed {
            method: parts.method.clone(),
            path: ctx.path.clone(),
            allowed: vec![Method::POST],
        });
    }
    let Some(web) = WebContentType::of(&parts.headers).filter(|w| w.proto) else {
        return Err(GatewayError::UnsupportedMediaType {
            got: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            expected: "application/grpc-web[-text][+proto] (protobuf messages)",
        });
    };
    let target = target_of(snap, &ctx.path)?;
    tracing::Span::current().record("rpc", target.method.full_name());
    let bytes = bytes_of(body).await?;
    let message = frame::request_message(
        &bytes,
        web.mode,
        snap.config.limits.max_body_bytes.as_usize(),
    )?;
    let site = CallSite::GrpcWeb(ctx.path.as_str().into());
    let output = target.method.output();
    // The reply goes out as the backend's bytes, unless this BFF redacts its type.
    let redacts = snap.shaping.redactions.affects(&output);
    let mut call = ctx.call_to(&target, CallBody::Wire(message));

    if target.method.is_server_streaming() {
        let deadline = call.deadline;
        let timeout = call.remaining();
        let backend = target.backend.clone();
        let limit = snap.config.limits.max_response_bytes.as_usize();
        let fail = move |status: Result<tonic::Status, tokio::time::error::Elapsed>| {
            GatewayError::Upstream(match status {
                Ok(status) => {
                    UpstreamError::from_call_status(&backend, status, deadline, timeout, limit)
                }
                Err(_) => UpstreamError::DeadlineExceeded {
                    backend: backend.to_string(),
                    timeout,
                },
            })
        };
        let mut reply = snap.outbound.server_streaming(ctx, &site, call).await?;
        // An error before the first message is answered trailers-only.
        let first = match tokio::time::timeout_at(deadline, reply.stream.message()).await {
            Err(elapsed) => return Err(fail(Err(elapsed))),
            Ok(Err(status)) => return Err(fail(Ok(status))),
            Ok(Ok(first)) => first,
        };
        let snap = snap.clone();
        let mode = web.mode;
        let mut stream = reply.stream;
        let body = async_stream::stream! {
            let mut next = first;
            let end = loop {
                let Some(mut msg) = next else { break Trailers::ok() };
                match message_frame(&snap, &mut msg, mode) {
                    Ok(bytes) => yield Ok::<Bytes, Infallible>(bytes),
                    Err(e) => break e.grpc_web_trailers(),
                }
                next = match tokio::time::timeout_at(deadline, stream.message()).await {
                    Ok(Ok(msg)) => msg,
                    Ok(Err(status)) => break fail(Ok(status)).grpc_web_trailers(),
                    Err(elapsed) => break fail(Err(elapsed)).grpc_web_trailers(),
                };
            };
            if end.code != tonic::Code::Ok {
                tracing::warn!(code = ?end.code, message = %end.message, "gRPC-Web stream ended with an error");
            }
            yield Ok(end.frame(mode));
        };
        let mut resp = reply_response(web, Body::from_stream(body));
        snap_headers(admitted, &reply.metadata, &mut resp);
        return Ok(resp);
    }

    if !redacts {
        call.reply_form = ReplyForm::Wire;
    }
    let reply = snap.outbound.unary(ctx, &site, call).await?;
    let bytes = match reply.payload {
        Payload::Wire(bytes) if !redacts => bytes,
        payload => {
            let mut message = payload.into_message(&output, &target.backend)?;
            snap.shaping.redact(Arc::make_mut(&mut message));
            Bytes::from(message.encode_to_vec())
        }
    };
    let data = frame::frame(DATA, &bytes, web.mode).ok_or_else(|| {
        GatewayError::Internal(format!("a reply of {} bytes cannot be framed", bytes.len()))
    })?;
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(&data);
    out.extend_from_slice(&Trailers::ok().frame(web.mode));
    let mut resp = reply_response(web, Body::from(out));
    snap_headers(admitted, &reply.metadata, &mut resp);
    if let Some(kind) = reply.fallback {
        resp.headers_mut().insert(
            "x-portico-fallback",
            HeaderValue::from_static(kind.as_str()),
        );
    }
    Ok(resp)
}

/// One stream message as a data frame, after this BFF's redaction rules.
fn message_frame(
    snap: &Snapshot,
    msg: &mut DynamicMessage,
    mode: Mode,
) -> Result<Bytes, GatewayError> {
    snap.shaping.redact(msg);
    let bytes = msg.encode_to_vec();
    frame::frame(DATA, &bytes, mode).ok_or_else(|| {
        GatewayError::Internal(format!(
            "a stream message of {} bytes cannot be framed",
            bytes.len()
        ))
    })
}

/// A `200` in the request's content-type family, never cached, with `body`.
fn reply_response(web: WebContentType, body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(web.reply_content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The backend's allowlisted response metadata, as the other doors write it.
fn snap_headers(admitted: &Admitted, metadata: &tonic::metadata::MetadataMap, resp: &mut Response) {
    admitted
        .snapshot
        .headers
        .response_headers(metadata, resp.headers_mut());
}
