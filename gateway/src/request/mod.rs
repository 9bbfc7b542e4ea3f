//! What the gateway knows about one request once the ingress has read it: the typed
//! [`RequestCtx`] every door and every policy sees, its [`Budget`] (the one deadline rule),
//! and the [`policy`] chain every backend call of the request passes through.
//!
//! Nothing here reads HTTP: the [`crate::ingress`] builds the context; doors and policies only
//! read it.

mod budget;
pub mod policy;
pub mod trace;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderValue, Method};
use tonic::metadata::MetadataMap;

pub use budget::{Budget, grpc_timeout_header, parse_grpc_timeout};
pub use trace::TraceContext;

use crate::upstream::{Call, CallBody, Target};

/// The header carrying the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The W3C trace headers every backend call carries.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// The id of a request: the client's `x-request-id` when it is sane, else a fresh one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }
}

/// The certificates a client presented over TLS and the listener verified (leaf first).
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<rustls::pki_types::CertificateDer<'static>>>);

/// Marks a request that came with both `Content-Length` and `Transfer-Encoding` (found by the
/// server's framing watch): the ingress refuses it with 400, and the connection closes after.
#[derive(Clone, Copy, Debug)]
pub struct AmbiguousFraming;

/// The connection's place under the connection limits (`limits.max_connections`,
/// `max_connections_per_ip`), travelling with every request of the connection: a door that
/// keeps the connection past its request (an upgraded WebSocket) holds a clone for as long,
/// so the socket still counts against the limits after hyper let the connection go.
#[derive(Clone)]
pub struct ConnectionHold(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for ConnectionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionHold")
    }
}

/// Tells a door that keeps a connection past its request (an upgraded WebSocket) that the
/// gateway is shutting down: end the socket cleanly within the drain grace period.
#[derive(Clone, Debug)]
pub struct ShuttingDown(pub tokio::sync::watch::Receiver<bool>);

impl ShuttingDown {
    /// Resolves once shutdown started (or the server is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Who is calling, as the identify stage established it.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The caller: a JWT's `sub`, an API key's id, a certificate's subject.
    pub subject: String,
    /// How the caller was identified.
    pub kind: IdentityKind,
    /// The caller's scopes.
    pub scopes: Vec<String>,
    /// A JWT's claims (empty for the other kinds).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The API key's plan, if any.
    pub plan: Option<String>,
}

/// How a caller was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityKind {
    /// A JWT bearer token.
    Jwt,
    /// An API key (the subject is its id).
    ApiKey,
    /// A client certificate verified by the listener.
    ClientCertificate,
}

impl IdentityKind {
    /// `jwt`, `api_key` or `client_certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Jwt => "jwt",
            IdentityKind::ApiKey => "api_key",
            IdentityKind::ClientCertificate => "client_certificate",
        }
    }
}

/// The front door a request goes through, which decides how its errors are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// A REST route transcoded from `google.api.http` (or a default route).
    Rest,
    /// The GraphQL endpoint (HTTP, SSE, WebSocket, GraphiQL).
    Graphql,
    /// A GraphQL operation published as a REST endpoint.
    Endpoint,
    /// The gateway's own endpoints (`/healthz`, `/readyz`, `/admin/...`).
    Admin,
    /// A gRPC-Web call (`POST /package.Service/Method` with an `application/grpc-web*` body).
    GrpcWeb,
    /// A streaming method over WebSocket (`GET /package.Service/Method` with
    /// `Upgrade: websocket`).
    WebSocket,
}

impl Door {
    /// `rest`, `graphql`, `endpoint`, `admin`, `grpc_web` or `websocket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Rest => "rest",
            Door::Graphql => "graphql",
            Door::Endpoint => "endpoint",
            Door::Admin => "admin",
            Door::GrpcWeb => "grpc_web",
            Door::WebSocket => "websocket",
        }
    }
}

/// The typed context of one request, built once by the ingress and shared (read-only) by the
/// door, the planner and every policy stage. The snapshot the request runs on is pinned beside
/// it ([`crate::ingress::Admitted`]).
#[derive(Clone, Debug)]
pub struct RequestCtx {
    /// The request id (sent back in `x-request-id`, forwarded to backends, in every log line).
    pub id: RequestId,
    /// The address of the TCP peer (the client, or the proxy in front of the gateway).
    pub client: Option<SocketAddr>,
    /// The client's address: the TCP peer, or the address a trusted proxy forwarded for
    /// (`trusted_proxies`). What access lists, rate limits and logs go by.
    pub client_ip: Option<IpAddr>,
    /// The client's certificate chain, when it presented one over TLS (verified by the
    /// listener against `tls.client_ca`).
    pub client_cert: Option<PeerCertificates>,
    /// The HTTP method.
    pub method: Method,
    /// The normalised path: what routing matched and what every policy sees.
    pub path: String,
    /// The door it goes through.
    pub door: Door,
    /// The metadata every backend call of the request sends: the forwarded headers (by the
    /// `headers.forward` rule) and the request id.
    pub metadata: MetadataMap,
    /// The request's time budget.
    pub budget: Budget,
    /// Who is calling (set by the identify stage; `None`: anonymous).
    pub identity: Option<Arc<Identity>>,
    /// The W3C trace the request belongs to (the client's, or one started for it).
    pub trace: TraceContext,
    /// The rate limits the request was counted against, for the answer's headers (set by
    /// the limit stage when `rate_limits.headers` is on).
    pub limit_notes: Option<Arc<crate::ratelimit::LimitNotes>>,
    /// What the calls of a GET request say about caching its answer (set by the cache stage;
    /// written by the ingress).
    pub cache_notes: Option<Arc<crate::cache::CacheNotes>>,
    /// How many backend calls the request made (for its access line).
    pub calls: CallCount,
    /// The headers traffic splitting reads and the variants the calls went to (set by the
    /// split stage, when a backend is split).
    pub split: Option<Arc<crate::split::policy::SplitNotes>>,
}

/// A count of backend calls, bumped by [`RequestCtx::call_to`]; shared by the clones of a
/// context (a GraphQL operation runs on a clone with a span of its own).
#[derive(Clone, Debug, Default)]
pub struct CallCount(Arc<std::sync::atomic::AtomicU32>);

impl CallCount {
    /// The count so far.
    pub fn get(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl RequestCtx {
    /// A context for work that did not come through the ingress (benchmarks, tests): no
    /// client, no forwarded metadata, a budget of `max`.
    pub fn internal(max: std::time::Duration) -> Self {
        Self {
            id: RequestId(HeaderValue::from_static("internal")),
            client: None,
            client_ip: None,
            client_cert: None,
            method: Method::POST,
            path: String::new(),
            door: Door::Graphql,
            metadata: MetadataMap::new(),
            budget: Budget::new(None, max),
            identity: None,
            trace: TraceContext::from_headers(&http::HeaderMap::new()),
            limit_notes: None,
            cache_notes: None,
            calls: CallCount::default(),
            split: None,
        }
    }

    /// The call to `target` with `body` for this request: the one place a [`Call`] is built.
    /// It sends the request's metadata, gets the deadline of the one rule
    /// ([`Budget::call_deadline`] of the target's timeout) and the target's idempotency.
    pub fn call_to(&self, target: &Target, body: CallBody) -> Call {
        self.calls.bump();
        let mut headers = self.metadata.clone().into_headers();
        // Each call is a span of its own in the request's trace, child of the request's span.
        let span_id = crate::telemetry::traces::new_span_id();
        headers.insert(TRACEPARENT, self.trace.child_with(span_id));
        match &self.trace.tracestate {
            Some(state) => {
                headers.insert(TRACESTATE, state.clone());
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
        let metadata = MetadataMap::from_headers(headers);
        Call {
            method: target.method.clone(),
            body,
            metadata,
            deadline: self.budget.call_deadline(target.timeout),
            idempotent: target.idempotent,
            span: self
                .trace
                .recorded
                .then_some(crate::telemetry::traces::SpanIds {
                    trace_id: self.trace.trace_id,
                    span_id,
                    parent_id: Some(self.trace.span_id),
                    parent_remote: false,
                }),
            reply_form: crate::upstream::ReplyForm::Decoded,
            backend: None,
        }
    }
}
