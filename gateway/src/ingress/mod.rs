//! The ingress: the one place a request is read, for every door.
//!
//! [`admit`] runs first, for every request (inside the snapshot's CORS layer, when there is
//! one, which answers preflights): it assigns the request id, opens the request's span and
//! writes its log line, pins the snapshot the request will run on, enforces the header limits
//! (431 with a JSON body; see [`crate::server`] for the hard cap behind them), refuses a
//! request the server found framed two ways (400), normalises the path ([`path`]) and routes
//! by it to a [`Door`], turns `grpc-timeout` into the request's [`Budget`], computes the
//! metadata every call forwards, resolves the client's address ([`client_ip`]), runs the
//! policies' per-request hooks, hands the door an [`Admitted`] request, and writes the
//! rate-limit headers the limit stage noted on the answer. The body stage runs later,
//! around the request decompression layer ([`CheckEncodingLayer`] outside it,
//! [`ReadBodyLayer`] inside): the body is read once, under the size, idle and total bounds
//! ([`body`]), and doors get bytes.
//!
//! Every refusal here is written by [`respond`], the one responder, in the renderer of the
//! request's door.

pub mod body;
pub mod client_ip;
mod layers;
pub mod path;
mod request_id;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};
use prost_reflect::DescriptorPool;
use tower::{Layer, ServiceExt};
use tracing::Instrument;

use crate::config::LimitsConfig;
use crate::error::GatewayError;
use crate::graphql::bff::endpoints::Endpoint;
use crate::grpcweb::{WebContentType, method_of_path};
use crate::request::{
    Budget, Door, REQUEST_ID_HEADER, RequestCtx, TraceContext, parse_grpc_timeout,
};
use crate::rest::router::Lookup;
use crate::snapshot::{Current, Snapshot};
pub use layers::{CheckEncodingLayer, ReadBodyLayer};

/// A request the ingress let in: its context, and the snapshot it runs on from start to end.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The snapshot (config, descriptors, routes, schema, backends, policies) of the request.
    pub snapshot: Arc<Snapshot>,
    /// What is known about the request.
    pub ctx: Arc<RequestCtx>,
    /// For the endpoint door: the published operation the path matched, with the values of
    /// its path parameters, or the methods it is published under.
    pub endpoint: Option<EndpointMatch>,
}

/// What an operation endpoint's route table said about a request.
#[derive(Clone, Debug)]
pub enum EndpointMatch {
    /// The endpoint, and its path parameters by name.
    Found(Arc<Endpoint>, Vec<(String, String)>),
    /// The path is an endpoint's under other methods only (and no REST route's).
    MethodNotAllowed(Vec<Method>),
}

/// What the ingress needs: where the current snapshot is, and the GraphQL endpoint's path
/// (fixed when the HTTP router was built).
#[derive(Debug)]
pub struct Ingress {
    current: Arc<Current>,
    graphql_path: Option<String>,
}

/// The gateway's own paths on the client port (the admin door): health, and the OpenAPI
/// document of the REST routes. Metrics and views are on the admin listener
/// ([`crate::app::admin_router`]).
const ADMIN_PATHS: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

impl Ingress {
    /// An ingress admitting requests onto the snapshots of `current`; `graphql_path` is the
    /// route of the GraphQL door, when it has one.
    pub fn new(current: Arc<Current>, graphql_path: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            current,
            graphql_path,
        })
    }

    /// The door of a (normalised) path. A gRPC-Web content type picks the gRPC-Web door
    /// whatever the path (when it is on): its answers must be gRPC statuses.
    fn door(
        &self,
        snap: &Snapshot,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> (Door, Option<EndpointMatch>) {
        if is_grpc_web(snap, headers) {
            return (Door::GrpcWeb, None);
        }
        if self.graphql_path.as_deref() == Some(path) {
            return (Door::Graphql, None);
        }
        if snap.config.streams.websocket && crate::websocket::is_call(method, path, headers) {
            return (Door::WebSocket, None);
        }
        if ADMIN_PATHS.contains(&path)
            || (path.starts_with("/openapi/") && path.ends_with(".json"))
            || path == "/portal"
            || path.starts_with("/portal/")
            || path.starts_with("/graphiql/")
        {
            return (Door::Admin, None);
        }
        match snap.endpoints.lookup(method, path) {
            Lookup::Matched {
                value, bindings, ..
            } => {
                let values = bindings
                    .into_iter()
                    .map(|b| (b.field_path.join("."), b.value))
                    .collect();
                (
                    Door::Endpoint,
                    Some(EndpointMatch::Found(value.clone(), values)),
                )
            }
            Lookup::MethodNotAllowed { allowed }
                if matches!(snap.routes.lookup(method, path), Lookup::NotFound) =>
            {
                (
                    Door::Endpoint,
                    Some(EndpointMatch::MethodNotAllowed(allowed)),
                )
            }
            _ => (Door::Rest, None),
        }
    }

    /// The door of a path that could not be normalised.
    fn door_of_raw(&self, snap: &Snapshot, path: &str, headers: &HeaderMap) -> Door {
        if is_grpc_web(snap, headers) {
            Door::GrpcWeb
        } else if self.graphql_path.as_deref() == Some(path) {
            Door::Graphql
        } else {
            Door::Rest
        }
    }
}

/// Whether a request is a gRPC-Web call: its content type is one, and the door is on.
fn is_grpc_web(snap: &Snapshot, headers: &HeaderMap) -> bool {
    snap.config.grpc_web.enabled && WebContentType::of(headers).is_some()
}

/// The route of a gRPC-Web or WebSocket request, for its access line and metrics: its gRPC
/// path when it names a method this snapshot serves (bounded: never a raw path).
fn grpc_web_route(snap: &Snapshot, path: &str) -> Option<String> {
    method_of_path(path)
        .filter(|m| snap.targets.get(m).is_some())
        .map(|_| path.to_owned())
}

/// The route path of a literal path (a leading `/` ensured).
pub fn route_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// The one responder: writes `err` in the renderer of `door` (GraphQL errors for the GraphQL
/// door, negotiated from `headers`; a trailers-only gRPC status for the gRPC-Web door, in the
/// content type of `headers`; a `google.rpc.Status` body for every other door).
pub fn respond(
    door: Door,
    err: &GatewayError,
    headers: &HeaderMap,
    pool: Option<&DescriptorPool>,
) -> Response {
    match door {
        Door::Graphql => crate::graphql::transport::reject(err, headers),
        Door::GrpcWeb => crate::error::grpc_web::reject(err, headers),
        Door::Rest | Door::Endpoint | Door::Admin | Door::WebSocket => err.respond(pool),
    }
}

/// Middleware, outermost: admits the request (see the module docs), runs the rest of the
/// stack, and writes the request's log line. With a `cors` section, the snapshot's CORS layer
/// goes around all of it: preflights are answered there, before admission (no door, no
/// backend, no rate limit), and every answer, refusals included, gets the CORS headers, so a
/// page can read its 401 or 429.
pub async fn admit(State(ingress): State<Arc<Ingress>>, req: Request, next: Next) -> Response {
    let snapshot = ingress.current.load();
    let Some(cors) = snapshot.cors.clone() else {
        return admit_on(&ingress, snapshot, req, next).await;
    };
    let inner = tower::service_fn(move |req: Request| {
        let (ingress, snapshot, next) = (ingress.clone(), snapshot.clone(), next.clone());
        async move { Ok::<_, std::convert::Infallible>(admit_on(&ingress, snapshot, req, next).await) }
    });
    match cors.layer(inner).oneshot(req).await {
        Ok(resp) => resp.into_response(),
        Err(never) => match never {},
    }
}

/// [`admit`] on `snapshot`.
async fn admit_on(
    ingress: &Ingress,
    snapshot: Arc<Snapshot>,
    req: Request,
    next: Next,
) -> Response {
    let metrics = ingress.current.metrics().clone();
    let _active = Active::enter(&metrics);
    let method = req.method().clone();
    let (mut parts, body) = req.into_parts();
    let id = request_id::assign(&parts.headers);
    let span = tracing::info_span!(
        "request",
        request_id = %id.as_str(),
        method = %parts.method,
        path = %parts.uri.path(),
        door = tracing::field::Empty,
        client = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        caller = tracing::field::Empty,
        rpc = tracing::field::Empty,
    );
    let start = StdInstant::now();
    let started_at = std::time::SystemTime::now();
    let id_header = id.0.clone();
    let mut door_of = Door::Rest;
    let mut route_of: Option<String> = None;
    let mut ctx_of: Option<Arc<RequestCtx>> = None;
    let mut version_of: Option<Arc<crate::versions::Version>> = None;
    let admitted = async {
        match admit_parts(ingress, snapshot.clone(), &mut parts, id).await {
            Ok(admitted) => {
                door_of = admitted.ctx.door;
                route_of = match (&admitted.ctx.door, &admitted.endpoint) {
                    (Door::Graphql | Door::Admin, _) => Some(admitted.ctx.path.clone()),
                    (Door::Endpoint, Some(EndpointMatch::Found(ep, _))) => Some(ep.path.clone()),
                    (Door::GrpcWeb | Door::WebSocket, _) => {
                        grpc_web_route(&admitted.snapshot, &admitted.ctx.path)
                    }
                    _ => None,
                };
                span.record("door", admitted.ctx.door.as_str());
                if let Some(id) = &admitted.ctx.identity {
                    span.record("caller", id.subject.as_str());
                }
                let notes = admitted.ctx.limit_notes.clone();
                let split_notes = admitted.ctx.split.clone();
                let cache_notes = admitted.ctx.cache_notes.clone();
                let grpc_web_method = (admitted.ctx.door == Door::GrpcWeb)
                    .then(|| method_of_path(&admitted.ctx.path))
                    .flatten();
                ctx_of = Some(admitted.ctx.clone());
                parts.extensions.insert(admitted);
                let mut resp = next.run(Request::from_parts(parts, body)).await;
                // The API version of the method answered: its deprecation headers on every
                // answer, success or failure.
                let method = grpc_web_method.or_else(|| {
                    resp.extensions()
                        .get::<crate::rest::routes::MatchedRoute>()
                        .map(|m| m.0.full_name.clone())
                });
                if let Some(m) = method {
                    version_of = snapshot.versions.stamp(&m, resp.headers_mut()).cloned();
                }
                if let Some(notes) = notes {
                    notes.write(resp.headers_mut());
                }
                // The variants that answered, where a split backend says to tell.
                if let Some(notes) = split_notes {
                    notes.write(resp.headers_mut());
                }
                // A successful answer the handler did not mark itself.
                if let Some(notes) = cache_notes
                    && resp.status().is_success()
                    && !resp.headers().contains_key(http::header::CACHE_CONTROL)
                {
                    notes.write(resp.headers_mut());
                }
                resp
            }
            Err((door, err)) => {
                door_of = door;
                span.record("door", door.as_str());
                respond(door, &err, &parts.headers, Some(snapshot.registry.pool()))
            }
        }
    }
    .instrument(span.clone())
    .await;
    let mut resp = admitted;
    let status = resp.status().as_u16();
    let took = start.elapsed();
    let route = route_of
        .or_else(|| {
            resp.extensions()
                .get::<crate::rest::routes::MatchedRoute>()
                .map(|m| m.0.template.clone())
        })
        .unwrap_or_else(|| "unmatched".to_string());
    // A gRPC-Web failure is a 200 with its status in the headers (trailers-only): its line
    // says the code, and is logged and levelled as the HTTP status of that code would be.
    let grpc_status = (door_of == Door::GrpcWeb)
        .then(|| resp.headers().get("grpc-status"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    let severity = grpc_status
        .filter(|code| *code != 0)
        .map_or(status, |code| {
            crate::error::http_status_of(tonic::Code::from_i32(code)).as_u16()
        });
    let log = &snapshot.config.log;
    if log.access
        && (severity >= 400
            || log.access_sample >= 1.0
            || rand::random::<f64>() < log.access_sample)
    {
        let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let calls = ctx_of.as_ref().map_or(0, |c| c.calls.get());
        let version = version_of.as_ref().map(|v| v.name.as_str());
        let variant = ctx_of
            .as_ref()
            .and_then(|c| c.split.as_ref())
            .and_then(|s| s.chosen());
        let variant = variant.as_deref();
        span.in_scope(|| {
            if severity >= 500 {
                tracing::warn!(target: "portico::access", route = route.as_str(), status, grpc_status, latency_us, calls, version, variant, "request finished");
            } else {
                tracing::info!(target: "portico::access", route = route.as_str(), status, grpc_status, latency_us, calls, version, variant, "request finished");
            }
        });
    }
    if let (Some(tracer), Some(ctx)) = (ingress.current.tracer(), &ctx_of)
        && ctx.trace.recorded
    {
        tracer.request_span(crate::telemetry::traces::RequestSpan {
            ids: ctx.trace.request_span(),
            start: started_at,
            took,
            method: method.as_str(),
            route: (route != "unmatched").then_some(route.as_str()),
            path: &ctx.path,
            status,
            client: ctx.client_ip.map(|ip| ip.to_string()),
            door: door_of.as_str(),
            request_id: ctx.id.as_str(),
        });
    }
    metrics.http_request(&method, route, status, door_of.as_str(), took);
    if let Some(v) = &version_of {
        metrics.api_version(&v.name, v.state.as_str());
    }
    resp.headers_mut().insert(REQUEST_ID_HEADER, id_header);
    resp
}

/// Everything [`admit`] does before the door runs; an error comes with the door that
/// renders it.
async fn admit_parts(
    ingress: &Ingress,
    snapshot: Arc<Snapshot>,
    parts: &mut Parts,
    id: crate::request::RequestId,
) -> Result<Admitted, (Door, GatewayError)> {
    let limits = &snapshot.config.limits;
    let raw_door = ingress.door_of_raw(&snapshot, parts.uri.path(), &parts.headers);
    check_headers(parts, limits).map_err(|e| (raw_door, e))?;
    let normal = path::normalize(parts.uri.path())
        .map_err(|e| (raw_door, GatewayError::bad_request(None, e.to_string())))?
        .into_owned();
    if normal != parts.uri.path() {
        parts.uri = with_path(&parts.uri, &normal)
            .map_err(|e| (raw_door, GatewayError::bad_request(None, e)))?;
    }
    let (door, endpoint) = ingress.door(&snapshot, &parts.method, &normal, &parts.headers);
    let timeout = match parts.headers.get("grpc-timeout") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(parse_grpc_timeout).ok_or_else(|| {
            (
                door,
                GatewayError::bad_request(
                    Some("grpc-timeout".into()),
                    "invalid grpc-timeout header: expected up to 8 digits and a unit of H, M, S, m, u or n (e.g. \"500m\")",
                ),
            )
        })?),
    };
    let metadata = snapshot.headers.request_metadata(&parts.headers, Some(&id));
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client_ip =
        client.map(|peer| client_ip::resolve(peer.ip(), &parts.headers, &snapshot.trusted_proxies));
    if let Some(ip) = client_ip {
        tracing::Span::current().record("client", tracing::field::display(ip));
    }
    let mut ctx = RequestCtx {
        id,
        client,
        client_ip,
        trace: {
            let mut trace = TraceContext::from_headers(&parts.headers);
            if let Some(tracer) = ingress.current.tracer() {
                trace.decide_recording(|| tracer.sample());
            }
            tracing::Span::current().record("trace_id", tracing::field::display(trace.trace_id()));
            trace
        },
        client_cert: parts
            .extensions
            .get::<crate::request::PeerCertificates>()
            .cloned(),
        method: parts.method.clone(),
        path: normal,
        door,
        metadata,
        budget: Budget::new(timeout, snapshot.config.deadlines.max.get()),
        identity: None,
        limit_notes: None,
        cache_notes: None,
        calls: Default::default(),
        split: None,
    };
    snapshot
        .outbound
        .chain
        .on_request(parts, &mut ctx)
        .await
        .map_err(|e| (door, e))?;
    Ok(Admitted {
        snapshot,
        ctx: Arc::new(ctx),
        endpoint,
    })
}

/// The URI with its path replaced (the query kept).
fn with_path(uri: &Uri, path: &str) -> Result<Uri, String> {
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query =
        Some(PathAndQuery::try_from(pq).map_err(|e| format!("invalid path: {e}"))?);
    Uri::from_parts(parts).map_err(|e| format!("invalid path: {e}"))
}

/// The header limits, as the gateway answers them (431 with a body), and the framing the
/// server's watch found ambiguous (400). The HTTP server's own parser refuses headers past
/// twice these limits before any of this runs.
fn check_headers(parts: &Parts, limits: &LimitsConfig) -> Result<(), GatewayError> {
    if parts
        .extensions
        .get::<crate::request::AmbiguousFraming>()
        .is_some()
    {
        return Err(GatewayError::bad_request(
            None,
            "the request has both Content-Length and Transfer-Encoding headers: its body could be read two ways, so it is refused (send one of them); the connection is closed",
        ));
    }
    let count = parts.headers.len();
    if count > limits.max_headers {
        return Err(GatewayError::HeadersTooLarge(format!(
            "{count} headers, more than the limit of {}",
            limits.max_headers
        )));
    }
    let size = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size as u64 > limits.max_header_bytes.bytes() {
        return Err(GatewayError::HeadersTooLarge(format!(
            "{size} bytes of request line and headers, more than the limit of {}",
            limits.max_header_bytes.bytes()
        )));
    }
    Ok(())
}

/// Renders a refusal of a request in its door's renderer.
pub(crate) fn refuse(req: &Request, err: &GatewayError) -> Response {
    match req.extensions().get::<Admitted>() {
        Some(a) => respond(
            a.ctx.door,
            err,
            req.headers(),
            Some(a.snapshot.registry.pool()),
        ),
        None => err.respond(None),
    }
}

/// Counts a request as active until dropped (a cancelled request is uncounted too).
struct Active<'a>(&'a crate::telemetry::Metrics);

impl<'a> Active<'a> {
    fn enter(metrics: &'a crate::telemetry::Metrics) -> Self {
        metrics.http_active.inc();
        Active(metrics)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.http_active.dec();
    }
}
