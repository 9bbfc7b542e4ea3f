//! The REST door: match a route, transcode the request, make the call, write the reply.
//!
//! The ingress already read the request (its context, its snapshot, its body); below this
//! door there is nothing REST-specific: it builds a [`Call`](crate::upstream::Call) with
//! [`RequestCtx::call_to`](crate::request::RequestCtx::call_to) and hands it to the snapshot's
//! outbound path (policy chain, then upstream).
//!
//! Bodies are JSON, except: a `google.api.HttpBody` body is the raw bytes ([`binary`] answers
//! an HttpBody reply the same way), and a `multipart/form-data` body fills the message part by
//! part ([`super::multipart`], then [`crate::transcode::encode_form_request`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::binary;
use super::multipart::{is_form, read_form};
use super::ndjson;
use super::router::Lookup;
use super::routes::{MatchedRoute, RouteTarget, Streaming};
use super::stream::stream_response;
use crate::error::GatewayError;
use crate::ingress::body::{BodyLimits, BodyReader, bytes_of, check_json};
use crate::ingress::{Admitted, respond};
use crate::snapshot::Snapshot;
use crate::transcode::direct::{TypePlan, Unsupported};
use crate::transcode::{self, BodyTarget, FieldPath, HttpRequestParts, TranscodeError};
use crate::upstream::{CallBody, Payload, ReplyForm, RequestStream};

/// Serves a request the ingress admitted to the REST door.
pub async fn handle(admitted: Admitted, req: Request) -> Response {
    let mut matched = None;
    let mut selected = false;
    let mut resp = match serve(&admitted, req, &mut matched, &mut selected).await {
        Ok(resp) => resp,
        Err(e) => respond(
            admitted.ctx.door,
            &e,
            &HeaderMap::new(),
            Some(admitted.snapshot.registry.pool()),
        ),
    };
    if let Some(target) = matched {
        resp.extensions_mut().insert(MatchedRoute(target));
    }
    // The version of an unversioned path came from the request's headers: caches must key on
    // them.
    if selected && let Some(vary) = admitted.snapshot.versions.vary() {
        resp.headers_mut().append(header::VARY, vary);
    }
    resp
}

impl From<TranscodeError> for GatewayError {
    fn from(e: TranscodeError) -> Self {
        GatewayError::BadRequest {
            field: e.field.clone(),
            message: e.to_string(),
        }
    }
}

async fn serve(
    admitted: &Admitted,
    req: Request,
    matched: &mut Option<Arc<RouteTarget>>,
    selected: &mut bool,
) -> Result<Response, GatewayError> {
    let snap = &admitted.snapshot;
    let ctx = &admitted.ctx;
    let (parts, body) = req.into_parts();
    let path = ctx.path.as_str();
    let mut lookup = snap.routes.lookup(&parts.method, path);
    // An unversioned path no route has: looked up again under the prefix of the version the
    // request names (header, Accept vendor type, query parameter), else the default one.
    if matches!(lookup, Lookup::NotFound)
        && !snap.versions.is_empty()
        && !snap.versions.is_versioned(path)
        && let Some(version) = snap.versions.select(&parts.headers, parts.uri.query())?
    {
        let again = snap
            .routes
            .lookup(&parts.method, &format!("{}{path}", version.prefix));
        if !matches!(again, Lookup::NotFound) {
            lookup = again;
            *selected = true;
        }
    }
    let (target, bindings) = match lookup {
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
    *matched = Some(target.clone());
    // A retired version answers 410 before its body is even read (the policy chain refuses
    // its calls from every door too).
    snap.versions.refuse(&target.full_name)?;
    let takes_body = !matches!(target.body, BodyTarget::None);
    // A form upload: a body that is a message, from a multipart/form-data request.
    let multipart = &snap.config.rest.multipart;
    let form_ok = target.takes_form;
    let form = form_ok && is_form(&parts.headers);
    // A form or a raw body is what a page of another site can send without a preflight.
    if takes_body && (form || target.raw_request) {
        crate::cors::refuse_cross_site(
            snap.config.cors.as_ref(),
            &parts.headers,
            &parts.uri,
            if form { "form uploads" } else { "raw bodies" },
        )?;
    }
    if takes_body && !target.raw_request && !form {
        check_json(&parts.headers, target.streaming == Streaming::Client).map_err(|e| match e {
            GatewayError::UnsupportedMediaType { got, .. } if form_ok => {
                GatewayError::UnsupportedMediaType {
                    got,
                    expected: "application/json or multipart/form-data",
                }
            }
            other => other,
        })?;
    }
    if target.streaming == Streaming::Client {
        return client_stream(admitted, &target, &parts.headers, body).await;
    }
    let bytes = bytes_of(body).await?;

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
    let body = if target.raw_request || form {
        let parts_in = HttpRequestParts {
            body: &[],
            body_target: &target.body,
            path_bindings: &path_values,
            query: parts.uri.query(),
            fill_update_mask: false,
        };
        let encoded = if form {
            let limit = snap.config.limits.max_body_bytes.bytes();
            let form = read_form(&parts.headers, bytes, multipart, limit).await?;
            transcode::encode_form_request(&input, &parts_in, &form, &snap.decode)?
        } else {
            let content_type = match parts.headers.get(header::CONTENT_TYPE) {
                None => "",
                Some(v) => v.to_str().map_err(|_| {
                    GatewayError::bad_request(None, "the Content-Type header is not ASCII text")
                })?,
            };
            transcode::encode_raw_request(&input, &parts_in, content_type, bytes, &snap.decode)?
        };
        count_request(snap, false);
        CallBody::Wire(encoded.into())
    } else {
        let parts_in = HttpRequestParts {
            body: &bytes,
            body_target: &target.body,
            path_bindings: &path_values,
            query: parts.uri.query(),
            fill_update_mask: target.fill_update_mask,
        };
        let encoded = transcode::encode_request(
            &input,
            target.request_plan.as_ref(),
            &parts_in,
            &snap.decode,
        )?;
        count_request(snap, encoded.direct);
        CallBody::Wire(encoded.bytes.into())
    };
    // Replies written straight from their wire bytes, unless this BFF redacts the type.
    let direct = target
        .reply_plan
        .as_ref()
        .filter(|_| !snap.shaping.redactions.affects(&target.method.output()));
    let mut call = ctx.call_to(&target.call, body);
    if direct.is_some() {
        call.reply_form = ReplyForm::Wire;
    }

    if target.streaming == Streaming::Server {
        let sse = wants_sse(&parts.headers);
        let deadline = call.deadline;
        let timeout = call.remaining();
        let mut reply = snap
            .outbound
            .server_streaming(ctx, &target.site, call)
            .await?;
        // An error before the first message is an ordinary HTTP error.
        let first = reply
            .stream
            .next_by(
                &target.call.backend,
                deadline,
                timeout,
                snap.config.limits.max_response_bytes.as_usize(),
            )
            .await?;
        let mut resp = if target.raw_reply {
            binary::download(
                snap.clone(),
                target.clone(),
                first,
                reply.stream,
                deadline,
                timeout,
            )
        } else {
            stream_response(
                snap.clone(),
                target.clone(),
                first,
                reply.stream,
                deadline,
                timeout,
                sse,
            )
        };
        snap.headers
            .response_headers(&reply.metadata, resp.headers_mut());
        return Ok(resp);
    }

    let reply = snap.outbound.unary(ctx, &target.site, call).await?;
    let mut resp = if target.raw_reply {
        binary::unary_reply(&target, reply.payload)?
    } else {
        let json = reply_json(snap, &target, direct, reply.payload)?;
        (
            target.success,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from(json),
        )
            .into_response()
    };
    snap.headers
        .response_headers(&reply.metadata, resp.headers_mut());
    if let Some(kind) = reply.fallback {
        resp.headers_mut().insert(
            "x-portico-fallback",
            HeaderValue::from_static(kind.as_str()),
        );
    }
    Ok(resp)
}

/// Writes a reply message as the JSON body: straight from its bytes with the route's plan, or
/// decoded, redacted and serialised by prost-reflect (a reply the plan cannot write, a
/// fallback, a `response_body` binding, `rest.encoder: reflect`).
fn reply_json(
    snap: &Snapshot,
    target: &RouteTarget,
    plan: Option<&TypePlan>,
    payload: Payload,
) -> Result<Vec<u8>, GatewayError> {
    let metrics = snap.metrics();
    if let (Some(plan), Payload::Wire(bytes)) = (plan, &payload) {
        match plan.encode(bytes, &snap.encode) {
            Ok(json) => {
                if let Some(m) = metrics {
                    m.rest_direct.inc();
                }
                return Ok(json);
            }
            Err(Unsupported(why)) => {
                tracing::debug!(rpc = %target.full_name, reason = why, "reply written by prost-reflect");
            }
        }
    }
    if let Some(m) = metrics {
        m.rest_reflect.inc();
    }
    let mut message = payload.into_message(&target.method.output(), &target.call.backend)?;
    // This BFF's redaction rules, before anything is written.
    snap.shaping.redact(Arc::make_mut(&mut message));
    transcode::encode_response(&message, target.response_body.as_ref(), &snap.encode).map_err(|e| {
        GatewayError::Internal(format!("encoding the reply of {}: {e}", target.full_name))
    })
}

/// Counts how a request's message was written (`portico_rest_requests_total{decoder}`).
fn count_request(snap: &Snapshot, direct: bool) {
    if let Some(m) = snap.metrics() {
        if direct {
            m.rest_in_direct.inc();
        } else {
            m.rest_in_reflect.inc();
        }
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

/// A client-streaming call fed from the body, line by line ([`ndjson`]), while it runs; its
/// one reply written as the JSON body. A bad line cancels the call and answers 400 naming it.
async fn client_stream(
    admitted: &Admitted,
    target: &Arc<RouteTarget>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let snap = &admitted.snapshot;
    let ctx = &admitted.ctx;
    let reader = BodyReader::new(body, headers, BodyLimits::of(&snap.config.limits))?;
    let (tx, rx) = mpsc::channel(ndjson::REQUEST_BUFFER);
    let (start, started) = oneshot::channel();
    let call = ctx.call_to(
        &target.call,
        CallBody::Live(RequestStream::new(ReceiverStream::new(rx))),
    );
    let (deadline, timeout) = (call.deadline, call.remaining());
    let input = target.method.input();
    let feeding = ndjson::feed(
        reader,
        &input,
        target.request_plan.as_ref(),
        snap,
        tx,
        start,
    );
    let calling = async {
        // Nothing reaches the backend before the first lines are checked.
        if started.await.is_err() {
            return Err(GatewayError::Internal(
                "the body reader stopped without a word".into(),
            ));
        }
        let mut reply = snap
            .outbound
            .call(ctx, &target.site, call)
            .await?
            .into_stream()?;
        let next = reply
            .stream
            .next_by(
                &target.call.backend,
                deadline,
                timeout,
                snap.config.limits.max_response_bytes.as_usize(),
            )
            .await?;
        match next {
            None => Err(GatewayError::Internal(format!(
                "{} ended without its reply",
                target.full_name
            ))),
            Some(msg) => Ok((msg, reply.metadata)),
        }
    };
    tokio::pin!(feeding, calling);
    let mut fed = false;
    let (msg, metadata) = loop {
        tokio::select! {
            reply = &mut calling => break reply?,
            read = &mut feeding, if !fed => match read {
                Ok(direct) => {
                    fed = true;
                    count_request(snap, direct);
                }
                // Dropping the call cancels it at the backend.
                Err(e) => return Err(e),
            },
        }
    };
    let json = reply_json(snap, target, None, Payload::Decoded(Arc::new(msg)))?;
    let mut resp = (
        target.success,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(json),
    )
        .into_response();
    snap.headers.response_headers(&metadata, resp.headers_mut());
    Ok(resp)
}
