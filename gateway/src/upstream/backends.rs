//! Backends and their resilience state, and the one place a call is actually made.
//!
//! [`Upstream::unary`] and [`Upstream::server_streaming`] are the single entry point of every
//! call, whichever door it came through. A call runs: its backend (for a split backend, the
//! variant the split stage chose, else the round robin's turn; see [`crate::split`]) ->
//! breaker admission (fail fast while open) -> bulkhead slot (bounded queue, then 503) ->
//! endpoint choice (p2c or round robin over healthy, non-ejected endpoints) -> the gRPC call
//! under the remaining deadline -> result recorded on the breaker and the endpoint -> maybe a
//! retry (allowed failure, budget left, backoff fits in the deadline, on another endpoint when
//! there is one) -> maybe a fallback.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use prost_reflect::DescriptorPool;
use serde_json::{Value as Json, json};
use tokio::time::Instant;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use super::call::CallGuard;
use super::encoded::EncodedCodec;
use super::error::is_connect_error;
use super::{Call, CallBody, Fallback, Payload, Reply, ReplyStream, StreamReply, UpstreamError};
use crate::config::{BackendConfig, BreakerConfig};
use crate::resilience::{
    Breaker, Bulkhead, BulkheadRejection, Endpoint, EndpointSet, Failure, Fallbacks, RetryBudget,
    RetryPolicy,
};
use crate::split::Split;

/// A gRPC client on `channel`, capped at `limit` bytes per response, once the channel can
/// take a call.
async fn ready_client(channel: Channel, limit: usize) -> Result<Grpc<Channel>, tonic::Status> {
    let mut grpc = Grpc::new(channel).max_decoding_message_size(limit);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::from_error(Box::new(e)))?;
    Ok(grpc)
}

/// One backend: its endpoints, breaker(s), bulkhead and retry policy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Backend {
    inner: Arc<BackendInner>,
}

#[derive(Debug)]
struct BackendInner {
    name: Arc<str>,
    /// The split variant this is, for a variant of a split backend (`name` is the backend's).
    variant: Option<Arc<str>>,
    endpoints: Arc<EndpointSet>,
    /// The channel of the first configured endpoint, for [`Backend::channel`].
    first: Channel,
    /// The backend's breaker, or `None` with one breaker per method.
    breaker: Option<Arc<Breaker>>,
    method_breakers: RwLock<HashMap<Box<str>, Arc<Breaker>>>,
    breaker_cfg: BreakerConfig,
    bulkhead: Bulkhead,
    retry: RetryPolicy,
    budget: RetryBudget,
    /// What it was built from ([`Backend::fingerprint`]).
    fingerprint: u64,
}

impl Backend {
    /// Builds the backend's endpoints (lazily-connecting channels) and resilience state, and
    /// starts its background tasks; must run inside a tokio runtime. Errors name the bad
    /// endpoint.
    pub fn new(name: &str, cfg: &BackendConfig) -> Result<Self, String> {
        Self::build(name, None, cfg)
    }

    /// [`Backend::new`] for variant `variant` of the split backend `name`, from the config
    /// [`BackendConfig::variant_config`] gives; its logs say `name/variant`.
    pub fn new_variant(name: &str, variant: &str, cfg: &BackendConfig) -> Result<Self, String> {
        Self::build(name, Some(variant), cfg)
    }

    fn build(name: &str, variant: Option<&str>, cfg: &BackendConfig) -> Result<Self, String> {
        let label = match variant {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        };
        let endpoints = EndpointSet::new(&label, cfg)?;
        let first = endpoints
            .endpoints()
            .first()
            .map(|e| e.channel())
            .ok_or_else(|| format!("backend {label:?}: no endpoint"))?;
        let r = &cfg.resilience;
        let breaker = (!r.breaker.per_method).then(|| Arc::new(Breaker::new(&label, &r.breaker)));
        Ok(Self {
            inner: Arc::new(BackendInner {
                name: name.into(),
                variant: variant.map(Into::into),
                endpoints,
                first,
                breaker,
                method_breakers: RwLock::new(HashMap::new()),
                breaker_cfg: r.breaker.clone(),
                bulkhead: Bulkhead::new(&r.bulkhead),
                retry: RetryPolicy::new(&r.retry),
                budget: RetryBudget::new(&r.retry),
                fingerprint: Self::fingerprint(cfg),
            }),
        })
    }

    /// A hash of what a backend is built from: its config (with TLS paths already resolved)
    /// and the contents of its TLS files. A reload keeps a backend whose fingerprint did not
    /// change, with its breaker, health, outlier and connection state.
    pub fn fingerprint(cfg: &BackendConfig) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(cfg).unwrap_or_default().hash(&mut h);
        if let Some(tls) = &cfg.tls {
            for p in [&tls.ca, &tls.cert, &tls.key].into_iter().flatten() {
                // An unreadable file hashes as such: building the backend reports it.
                std::fs::read(p).ok().hash(&mut h);
            }
        }
        h.finish()
    }

    /// Whether `other` is this very backend (the same state, not a rebuilt one).
    pub fn same_as(&self, other: &Backend) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether this backend was built from `cfg` (same [`Backend::fingerprint`]).
    pub fn built_from(&self, cfg: &BackendConfig) -> bool {
        self.inner.fingerprint == Self::fingerprint(cfg)
    }

    /// The backend's name (a split backend's, for one of its variants).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The variant of a split backend this is (`None` for a backend without `split`).
    pub fn variant(&self) -> Option<&str> {
        self.inner.variant.as_deref()
    }

    /// A channel to one of its endpoints (for reflection at startup).
    pub fn channel(&self) -> Channel {
        self.inner
            .endpoints
            .pick(None)
            .map_or_else(|| self.inner.first.clone(), |e| e.channel())
    }

    /// `name`, or `name/variant` for a variant of a split backend (for logs).
    fn label(&self) -> String {
        match &self.inner.variant {
            Some(v) => format!("{}/{v}", self.inner.name),
            None => self.inner.name.to_string(),
        }
    }

    /// Its endpoints.
    pub fn endpoints(&self) -> &EndpointSet {
        &self.inner.endpoints
    }

    /// Its bulkhead.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.inner.bulkhead
    }

    /// The breaker deciding calls to `method` (`package.Service.Method`).
    pub fn breaker_for(&self, method: &str) -> Arc<Breaker> {
        if let Some(b) = &self.inner.breaker {
            return b.clone();
        }
        if let Some(b) = self
            .inner
            .method_breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
        {
            return b.clone();
        }
        let mut map = self
            .inner
            .method_breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(method.into())
            .or_insert_with(|| {
                Arc::new(Breaker::new(
                    &format!("{}/{method}", self.label()),
                    &self.inner.breaker_cfg,
                ))
            })
            .clone()
    }

    /// Its breakers: the backend's one (`None`), or one per method that was called
    /// (`Some(method)`), sorted.
    pub fn breakers(&self) -> Vec<(Option<String>, Arc<Breaker>)> {
        if let Some(b) = &self.inner.breaker {
            return vec![(None, b.clone())];
        }
        let map = self
            .inner
            .method_breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<(Option<String>, Arc<Breaker>)> = map
            .iter()
            .map(|(m, b)| (Some(m.to_string()), b.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The backend's state as JSON (for `GET /admin/backends`).
    pub fn status(&self) -> Json {
        let b = &self.inner;
        let breaker_json = |br: &Breaker| {
            let (calls, failures) = br.window_counts();
            json!({ "state": br.state().as_str(), "calls_in_window": calls,
                    "sick_failures_in_window": failures })
        };
        let breaker = match &b.breaker {
            Some(br) => breaker_json(br),
            None => {
                let map = b
                    .method_breakers
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut methods: Vec<(&Box<str>, &Arc<Breaker>)> = map.iter().collect();
                methods.sort_by(|x, y| x.0.cmp(y.0));
                let per: serde_json::Map<String, Json> = methods
                    .into_iter()
                    .map(|(m, br)| (m.to_string(), breaker_json(br)))
                    .collect();
                json!({ "per_method": per })
            }
        };
        let endpoints: Vec<Json> = b
            .endpoints
            .endpoints()
            .iter()
            .map(|ep| {
                let ejected = b.endpoints.ejected_for(ep);
                json!({
                    "address": ep.label(),
                    "healthy": ep.is_healthy(),
                    "ejected": ejected.is_some(),
                    "ejected_for_ms": ejected.map_or(0, |d| d.as_millis() as u64),
                    "in_flight": ep.in_flight(),
                    "consecutive_failures": ep.consecutive_failures(),
                    "channels": ep.channels_made(),
                })
            })
            .collect();
        json!({
            "name": &*b.name,
            "breaker": breaker,
            "in_flight": b.bulkhead.in_flight(),
            "bulkhead": {
                "max_concurrent": b.bulkhead.max_concurrent(),
                "in_flight": b.bulkhead.in_flight(),
                "max_queue": b.bulkhead.max_queue(),
                "queued": b.bulkhead.queued(),
            },
            "endpoints": endpoints,
        })
    }
}

/// The request of a call, encoded once for all its attempts.
#[derive(Clone)]
enum Encoded {
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Encoded {
    fn new(body: CallBody) -> Self {
        match body {
            CallBody::Unary(m) => Encoded::One(m.encode_to_vec().into()),
            CallBody::Wire(b) => Encoded::One(b),
            CallBody::Stream(v) => Encoded::Many(v),
            // Live bodies go through `Upstream::streaming` (see `make` in the policy chain);
            // one that reaches here sends no message.
            CallBody::Live(_) => Encoded::Many(Vec::new()),
        }
    }

    /// The single request of a server stream (the last one if several were given).
    fn single(self, empty: impl FnOnce() -> Bytes) -> Bytes {
        match self {
            Encoded::One(b) => b,
            Encoded::Many(mut v) => v.pop().unwrap_or_else(empty),
        }
    }
}

/// Routes calls to backends by service, and makes them.
#[derive(Clone, Debug)]
pub struct Upstream {
    backends: HashMap<String, Backend>,
    by_service: HashMap<String, Backend>,
    /// Split backends by name, and by the services they serve.
    splits: HashMap<String, Arc<Split>>,
    split_by_service: HashMap<String, Arc<Split>>,
    max_response_bytes: usize,
    fallbacks: Arc<Fallbacks>,
    /// Where calls are counted (set when the snapshot is installed).
    metrics: std::sync::OnceLock<Arc<crate::telemetry::Metrics>>,
    /// Where calls' spans go, when spans are exported (set when the snapshot is installed).
    tracer: std::sync::OnceLock<Arc<crate::telemetry::Tracer>>,
}

impl Upstream {
    /// Counts this upstream's calls in `metrics` (once; later calls change nothing).
    pub fn set_metrics(&self, metrics: Arc<crate::telemetry::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Exports this upstream's calls' spans through `tracer` (once; later calls change
    /// nothing).
    pub fn set_tracer(&self, tracer: Arc<crate::telemetry::Tracer>) {
        let _ = self.tracer.set(tracer);
    }

    /// Records one call to `method` on `to` (a backend, or a split backend's variant) that
    /// took `took` and ended with `code`: its metrics, and its span when it has one.
    fn record(
        &self,
        method: &prost_reflect::MethodDescriptor,
        span: Option<crate::telemetry::traces::SpanIds>,
        to: Option<&Backend>,
        code: i32,
        took: Duration,
    ) {
        let service = method.parent_service().full_name();
        let backend = to.map_or("none", Backend::name);
        if let Some(m) = self.metrics.get() {
            let variant = to.and_then(Backend::variant);
            m.rpc_call_to(service, method.name(), code, (backend, variant), took);
        }
        if let (Some(ids), Some(tracer)) = (span, self.tracer.get()) {
            tracer.call_span(crate::telemetry::traces::CallSpan {
                ids,
                took,
                service,
                method: method.name(),
                code,
                backend,
                variant: to.and_then(Backend::variant),
            });
        }
    }

    /// `backends` by name; `services` maps a fully-qualified service to a backend name.
    pub fn new(
        backends: HashMap<String, Backend>,
        services: &HashMap<String, String>,
        max_response_bytes: usize,
    ) -> Self {
        let by_service = services
            .iter()
            .filter_map(|(svc, b)| backends.get(b).map(|be| (svc.clone(), be.clone())))
            .collect();
        Self {
            backends,
            by_service,
            splits: HashMap::new(),
            split_by_service: HashMap::new(),
            max_response_bytes,
            fallbacks: Arc::new(Fallbacks::default()),
            metrics: std::sync::OnceLock::new(),
            tracer: std::sync::OnceLock::new(),
        }
    }

    /// Adds the split backends, by name; `services` maps a fully-qualified service to a
    /// backend name (as for [`Upstream::new`]).
    pub fn with_splits(
        mut self,
        splits: HashMap<String, Arc<Split>>,
        services: &HashMap<String, String>,
    ) -> Self {
        self.split_by_service = services
            .iter()
            .filter_map(|(svc, b)| splits.get(b).map(|s| (svc.clone(), s.clone())))
            .collect();
        self.splits = splits;
        self
    }

    /// Checks and loads the configured static fallbacks against the descriptors. Errors give
    /// the config key (`backends.NAME.resilience.fallbacks.METHOD`) and what is wrong.
    pub fn with_fallbacks<'a>(
        mut self,
        configs: impl IntoIterator<Item = (&'a String, &'a BackendConfig)>,
        pool: &DescriptorPool,
    ) -> Result<Self, (String, String)> {
        let mut fallbacks = Fallbacks::default();
        for (name, cfg) in configs {
            fallbacks
                .add_backend(name, &cfg.resilience, pool, |svc| {
                    self.by_service
                        .get(svc)
                        .map(Backend::name)
                        .or_else(|| self.split_by_service.get(svc).map(|s| s.name()))
                })
                .map_err(|(k, m)| (format!("backends.{name}.resilience.{k}"), m))?;
        }
        self.fallbacks = Arc::new(fallbacks);
        Ok(self)
    }

    /// The backend serving a service, if any.
    pub fn backend_for(&self, service: &str) -> Option<&Backend> {
        self.by_service.get(service)
    }

    /// A backend by name (not a split one: see [`Upstream::split`]).
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.get(name)
    }

    /// A split backend by name.
    pub fn split(&self, name: &str) -> Option<&Arc<Split>> {
        self.splits.get(name)
    }

    /// The split backend serving a service, if it is split.
    pub fn split_for(&self, service: &str) -> Option<&Arc<Split>> {
        self.split_by_service.get(service)
    }

    /// Every split backend, in no particular order.
    pub fn splits(&self) -> impl Iterator<Item = &Arc<Split>> {
        self.splits.values()
    }

    /// Every backend and every variant of a split backend, sorted by name and variant.
    pub fn backends(&self) -> Vec<&Backend> {
        let variants = self
            .splits
            .values()
            .flat_map(|s| s.variants().iter().map(|v| &v.backend));
        let mut list: Vec<&Backend> = self.backends.values().chain(variants).collect();
        list.sort_by(|a, b| (a.name(), a.variant()).cmp(&(b.name(), b.variant())));
        list
    }

    /// Every backend's state, sorted by name (for `GET /admin/backends`); a split backend
    /// lists its variants with their weights.
    pub fn status(&self) -> Json {
        let mut names: Vec<&String> = self.backends.keys().chain(self.splits.keys()).collect();
        names.sort();
        let list: Vec<Json> = names
            .into_iter()
            .filter_map(|n| match self.backends.get(n) {
                Some(b) => Some(b.status()),
                None => self.splits.get(n).map(|s| s.status()),
            })
            .collect();
        json!({ "backends": list })
    }

    /// The backend `call` goes to: the one already chosen (a split backend's variant, by the
    /// split stage), else its service's, else the next variant of its service's split.
    fn route(&self, call: &Call) -> Option<Backend> {
        if let Some(b) = &call.backend {
            return Some(b.clone());
        }
        let service = call.method.parent_service().full_name();
        self.by_service.get(service).cloned().or_else(|| {
            self.split_by_service
                .get(service)
                .map(|s| s.weighted().backend.clone())
        })
    }

    fn prepare(&self, call: &Call) -> Result<(Backend, PathAndQuery, Duration), UpstreamError> {
        let service = call.method.parent_service().full_name();
        let backend = self.route(call).ok_or_else(|| UpstreamError::NoBackend {
            service: service.to_string(),
        })?;
        let path = PathAndQuery::try_from(call.path()).map_err(|_| UpstreamError::NoBackend {
            service: call.method.full_name().to_string(),
        })?;
        let remaining = call.remaining();
        if remaining.is_zero() {
            return Err(UpstreamError::DeadlineExceeded {
                backend: backend.name().to_string(),
                timeout: remaining,
            });
        }
        Ok((backend, path, remaining))
    }

    fn request<T>(msg: T, metadata: MetadataMap, timeout: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        *req.metadata_mut() = metadata;
        // Sends `grpc-timeout` so the backend knows the budget too.
        req.metadata_mut().as_mut().insert(
            http::header::HeaderName::from_static("grpc-timeout"),
            crate::request::grpc_timeout_header(timeout),
        );
        req
    }

    /// Makes a unary or client-streaming call. Past the deadline the call is dropped, which
    /// cancels the HTTP/2 stream, so the backend stops working on it. When it fails because
    /// the backend is sick, its circuit is open or its bulkhead is full, and the method has a
    /// static fallback, the fallback is the reply (with `fallback: true`).
    pub async fn unary(&self, mut call: Call) -> Result<Reply, UpstreamError> {
        let (method, span) = (call.method.clone(), call.span);
        call.backend = self.route(&call);
        let to = call.backend.clone();
        let start = std::time::Instant::now();
        let result = self.unary_call(call).await;
        self.record(
            &method,
            span,
            to.as_ref(),
            code_of(result.as_ref().err()),
            start.elapsed(),
        );
        match result {
            Err(e) if e.allows_fallback() => match self.fallbacks.get(method.full_name()) {
                Some(msg) => {
                    tracing::warn!(method = %method.full_name(), error = %e, "answering with the static fallback");
                    Ok(Reply {
                        payload: Payload::Decoded(Arc::new(msg.clone())),
                        metadata: MetadataMap::new(),
                        fallback: Some(Fallback::Static),
                    })
                }
                None => Err(e),
            },
            other => other,
        }
    }

    async fn unary_call(&self, call: Call) -> Result<Reply, UpstreamError> {
        let (backend, path, timeout) = self.prepare(&call)?;
        let codec = EncodedCodec::unary(call.method.output(), call.reply_form);
        let limit = self.max_response_bytes;
        let body = Encoded::new(call.body);
        let mut metadata = Some(call.metadata);
        let attempt = |channel: Channel, remaining: Duration, last: bool| {
            let md = take_or_clone(&mut metadata, last);
            let (codec, path, body) = (codec.clone(), path.clone(), body.clone());
            async move {
                let mut grpc = ready_client(channel, limit).await?;
                match body {
                    Encoded::One(msg) => {
                        grpc.unary(Self::request(msg, md, remaining), path, codec)
                            .await
                    }
                    Encoded::Many(msgs) => {
                        let stream = tokio_stream::iter(msgs);
                        grpc.client_streaming(Self::request(stream, md, remaining), path, codec)
                            .await
                    }
                }
            }
        };
        let (resp, _guard) = self
            .run(
                &backend,
                &call.method,
                call.deadline,
                timeout,
                Retries::Policy {
                    idempotent: call.idempotent,
                },
                attempt,
            )
            .await?;
        let (metadata, payload, _) = resp.into_parts();
        Ok(Reply {
            payload,
            metadata,
            fallback: None,
        })
    }

    /// Starts a server-streaming call and returns once the backend sent its headers; only
    /// this establishment is retried, never a stream that has started. The deadline covers
    /// the whole stream (it is sent as `grpc-timeout`); the caller enforces it while reading
    /// with [`Call::remaining`]-based timeouts. The stream keeps its bulkhead slot until it is
    /// dropped.
    pub async fn server_streaming(&self, call: Call) -> Result<StreamReply, UpstreamError> {
        self.stream_recorded(call, |call| self.server_streaming_call(call))
            .await
    }

    /// Routes a stream's `call` (a split backend's variant) and starts it with `start`,
    /// recording it when it starts (its headers), not when it ends.
    async fn stream_recorded<'a, F, Fut>(
        &'a self,
        mut call: Call,
        start: F,
    ) -> Result<StreamReply, UpstreamError>
    where
        F: FnOnce(Call) -> Fut,
        Fut: Future<Output = Result<StreamReply, UpstreamError>> + 'a,
    {
        let (method, span) = (call.method.clone(), call.span);
        call.backend = self.route(&call);
        let to = call.backend.clone();
        let began = std::time::Instant::now();
        let result = start(call).await;
        self.record(
            &method,
            span,
            to.as_ref(),
            code_of(result.as_ref().err()),
            began.elapsed(),
        );
        result
    }

    async fn server_streaming_call(&self, call: Call) -> Result<StreamReply, UpstreamError> {
        let (backend, path, timeout) = self.prepare(&call)?;
        let codec = EncodedCodec::stream(call.method.output());
        let limit = self.max_response_bytes;
        let input = call.method.input();
        let msg = Encoded::new(call.body).single(|| {
            prost_reflect::DynamicMessage::new(input)
                .encode_to_vec()
                .into()
        });
        let mut metadata = Some(call.metadata);
        let attempt = |channel: Channel, remaining: Duration, last: bool| {
            let md = take_or_clone(&mut metadata, last);
            let (codec, path, msg) = (codec.clone(), path.clone(), msg.clone());
            async move {
                let mut grpc = ready_client(channel, limit).await?;
                grpc.server_streaming(Self::request(msg, md, remaining), path, codec)
                    .await
            }
        };
        let (resp, guard) = self
            .run(
                &backend,
                &call.method,
                call.deadline,
                timeout,
                Retries::Policy {
                    idempotent: call.idempotent,
                },
                attempt,
            )
            .await?;
        let (metadata, stream, _) = resp.into_parts();
        Ok(StreamReply {
            metadata,
            stream: ReplyStream::new(stream, guard),
        })
    }

    /// Starts a call whose request messages arrive as they come ([`CallBody::Live`]): a
    /// client-streaming or bidirectional call (or a server stream fed its one message that
    /// way), returning once the backend sent its headers; a client-streaming method's one
    /// reply is the stream's one message. It is admitted like every call (breaker, bulkhead,
    /// endpoint choice, deadline sent as `grpc-timeout`, metrics) but made once: a stream
    /// already read from its client cannot be sent again. The reply stream keeps the bulkhead
    /// slot until it is dropped; dropping it (or this future) cancels the call.
    pub async fn streaming(&self, call: Call) -> Result<StreamReply, UpstreamError> {
        self.stream_recorded(call, |call| self.streaming_call(call))
            .await
    }

    async fn streaming_call(&self, call: Call) -> Result<StreamReply, UpstreamError> {
        let (backend, path, timeout) = self.prepare(&call)?;
        let codec = EncodedCodec::stream(call.method.output());
        let limit = self.max_response_bytes;
        let mut body = match call.body {
            CallBody::Live(s) => Some(s),
            CallBody::Stream(v) => Some(super::RequestStream::new(tokio_stream::iter(v))),
            other => Some(super::RequestStream::new(tokio_stream::iter([
                Encoded::new(other).single(Bytes::new),
            ]))),
        };
        let mut metadata = Some(call.metadata);
        let attempt = |channel: Channel, remaining: Duration, _last: bool| {
            let (md, body) = (metadata.take().unwrap_or_default(), body.take());
            let (codec, path) = (codec.clone(), path.clone());
            async move {
                let Some(body) = body else {
                    return Err(tonic::Status::internal("a stream is made once"));
                };
                let mut grpc = ready_client(channel, limit).await?;
                grpc.streaming(Self::request(body, md, remaining), path, codec)
                    .await
            }
        };
        let (resp, guard) = self
            .run(
                &backend,
                &call.method,
                call.deadline,
                timeout,
                Retries::Never,
                attempt,
            )
            .await?;
        let (metadata, stream, _) = resp.into_parts();
        Ok(StreamReply {
            metadata,
            stream: ReplyStream::new(stream, guard),
        })
    }

    /// The resilient attempt loop around `attempt(channel, remaining, is_last)`.
    async fn run<T, F, Fut>(
        &self,
        backend: &Backend,
        method: &prost_reflect::MethodDescriptor,
        deadline: Instant,
        timeout: Duration,
        retries: Retries,
        mut attempt: F,
    ) -> Result<(T, CallGuard), UpstreamError>
    where
        F: FnMut(Channel, Duration, bool) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let b = &backend.inner;
        let name = backend.name();
        let deadline_err = || UpstreamError::DeadlineExceeded {
            backend: name.to_string(),
            timeout,
        };
        b.budget.record_call();
        let breaker = backend.breaker_for(method.full_name());
        let mut avoid: Option<Arc<Endpoint>> = None;
        let mut n = 0u32;
        loop {
            n += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(deadline_err());
            }
            let permit = breaker
                .try_acquire()
                .map_err(|r| UpstreamError::CircuitOpen {
                    backend: name.to_string(),
                    retry_after: r.retry_after,
                })?;
            let slot = b.bulkhead.acquire(remaining).await.map_err(|r| match r {
                BulkheadRejection::Full => UpstreamError::Overloaded {
                    backend: name.to_string(),
                },
                BulkheadRejection::Deadline => deadline_err(),
            })?;
            let ep =
                b.endpoints
                    .pick(avoid.as_ref())
                    .ok_or_else(|| UpstreamError::Unavailable {
                        backend: name.to_string(),
                        detail: "no endpoint".into(),
                    })?;
            let in_flight = ep.start();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let last = n >= b.retry.max_attempts();
            let outcome =
                tokio::time::timeout(remaining, attempt(ep.channel(), remaining, last)).await;
            let (err, failure) = match outcome {
                Ok(Ok(value)) => {
                    permit.record(false);
                    b.endpoints.record(&ep, false);
                    let guard = CallGuard {
                        _slot: Some(slot),
                        _in_flight: Some(in_flight),
                    };
                    return Ok((value, guard));
                }
                Err(_) => (deadline_err(), Failure::Other),
                Ok(Err(status)) => {
                    let connect = is_connect_error(&status);
                    // A status tonic made from a transport error (the connection broke) has
                    // a source; one decoded from the backend's trailers never has.
                    let transport = std::error::Error::source(&status).is_some();
                    let unavailable = status.code() == tonic::Code::Unavailable;
                    let err = UpstreamError::from_call_status(
                        name,
                        status,
                        deadline,
                        timeout,
                        self.max_response_bytes,
                    );
                    // A connection that broke mid-call, a stream cut without a status, or
                    // the backend's UNAVAILABLE.
                    let broken = match &err {
                        UpstreamError::Unavailable { .. } => true,
                        UpstreamError::Status { .. } => unavailable || transport,
                        _ => false,
                    };
                    let failure = if connect {
                        Failure::Connect
                    } else if broken {
                        Failure::Unavailable
                    } else {
                        Failure::Other
                    };
                    (err, failure)
                }
            };
            let sick = err.is_sick();
            permit.record(sick);
            b.endpoints.record(&ep, sick);
            drop((in_flight, slot));
            let may_retry = match retries {
                Retries::Policy { idempotent } => b.retry.should_retry(n, failure, idempotent),
                Retries::Never => false,
            };
            if !may_retry {
                return Err(err);
            }
            let backoff = b.retry.backoff(n);
            if Instant::now() + backoff >= deadline {
                tracing::debug!(backend = %name, error = %err, "no time left to retry");
                return Err(err);
            }
            if !b.budget.try_retry() {
                tracing::warn!(backend = %name, error = %err, "retry budget exhausted; not retrying");
                return Err(err);
            }
            tracing::info!(backend = %name, method = %method.full_name(), attempt = n,
                endpoint = %ep.label(), error = %err, backoff = ?backoff, "retrying");
            if let Some(m) = self.metrics.get() {
                m.retry(name, method.parent_service().full_name(), method.name());
            }
            tokio::time::sleep(backoff).await;
            avoid = Some(ep);
        }
    }
}

/// Which failed attempts of a call may be tried again.
#[derive(Clone, Copy, Debug)]
enum Retries {
    /// Those the backend's retry policy allows, for a method that is idempotent or not.
    Policy {
        /// Whether the method is idempotent.
        idempotent: bool,
    },
    /// None: the request cannot be sent twice (a live stream).
    Never,
}

/// The metadata of an attempt: moved into the last one, cloned for the others.
fn take_or_clone(slot: &mut Option<MetadataMap>, last: bool) -> MetadataMap {
    if last {
        slot.take().unwrap_or_default()
    } else {
        slot.clone().unwrap_or_default()
    }
}

/// The gRPC status code of a call's outcome, as a number (0 is OK).
fn code_of(e: Option<&UpstreamError>) -> i32 {
    use tonic::Code;
    let code = match e {
        None => Code::Ok,
        Some(UpstreamError::Status { status, .. }) => status.code(),
        Some(UpstreamError::DeadlineExceeded { .. }) => Code::DeadlineExceeded,
        Some(UpstreamError::ResponseTooLarge { .. }) => Code::ResourceExhausted,
        Some(
            UpstreamError::Unavailable { .. }
            | UpstreamError::NoBackend { .. }
            | UpstreamError::CircuitOpen { .. }
            | UpstreamError::Overloaded { .. },
        ) => Code::Unavailable,
    };
    code as i32
}
