//! The gateway's spans, exported over OTLP: a server span per request, an internal span per
//! GraphQL operation, and a client span per backend call, with exactly the ids the W3C trace context carries, so a backend's spans hang
//! under the gateway's call span, which hangs under its request span, which hangs under the
//! client's span.
//!
//! Spans are built whole when their work ends ([`Tracer::request_span`],
//! [`Tracer::call_span`]) and queued for one task on the gateway's runtime that sends them in
//! batches with opentelemetry-otlp's gRPC exporter. (The SDK's batch processor exports from an
//! OS thread of its own, where the tonic exporter finds no runtime.) A full queue drops the
//! span and counts it; a request never waits for telemetry.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use tokio::sync::mpsc;

use super::Metrics;
use crate::config::TelemetryConfig;

/// The most spans sent in one export.
const BATCH: usize = 512;

/// Where spans go; cheap to share.
#[derive(Debug)]
pub struct Tracer {
    queue: mpsc::Sender<SpanData>,
    sample_ratio: f64,
    scope: InstrumentationScope,
    metrics: Arc<Metrics>,
}

/// The ids of one span: its trace, its own id, its parent's id (`None`: a root span), and
/// whether the parent is another process's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanIds {
    /// The trace.
    pub trace_id: u128,
    /// The span.
    pub span_id: u64,
    /// Its parent, if any.
    pub parent_id: Option<u64>,
    /// Whether the parent is remote (the client's span).
    pub parent_remote: bool,
}

/// What a request span says.
#[derive(Debug)]
pub struct RequestSpan<'a> {
    /// Its ids.
    pub ids: SpanIds,
    /// When the request arrived.
    pub start: SystemTime,
    /// How long it took.
    pub took: Duration,
    /// `http.request.method`.
    pub method: &'a str,
    /// `http.route` (the route template, operation endpoint or GraphQL path), if matched.
    pub route: Option<&'a str>,
    /// `url.path`.
    pub path: &'a str,
    /// `http.response.status_code`.
    pub status: u16,
    /// `client.address`.
    pub client: Option<String>,
    /// The door (`portico.door`).
    pub door: &'static str,
    /// The request id (`portico.request_id`).
    pub request_id: &'a str,
}

/// What a backend call span says.
#[derive(Debug)]
pub struct CallSpan<'a> {
    /// Its ids (the span id is the one sent in the call's `traceparent`).
    pub ids: SpanIds,
    /// How long it took (retries included).
    pub took: Duration,
    /// `rpc.service`.
    pub service: &'a str,
    /// `rpc.method`.
    pub method: &'a str,
    /// `rpc.grpc.status_code`.
    pub code: i32,
    /// The backend's name (`portico.backend`).
    pub backend: &'a str,
    /// The variant of a split backend that served it (`portico.variant`).
    pub variant: Option<&'a str>,
}

impl Tracer {
    /// Starts exporting to `cfg.otlp` (none without it): builds the exporter and spawns the
    /// task that sends the queued spans; must run inside a tokio runtime. Errors say what is
    /// wrong with the exporter's settings.
    pub fn start(
        cfg: &TelemetryConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Arc<Self>>, String> {
        let Some(otlp) = &cfg.otlp else {
            return Ok(None);
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (name, value) in &otlp.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| format!("telemetry.otlp.headers.{name}: not a metadata name"))?;
            let value = value
                .parse()
                .map_err(|_| format!("telemetry.otlp.headers.{name}: not a metadata value"))?;
            metadata.insert(key, value);
        }
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(otlp.endpoint.clone())
            .with_timeout(otlp.timeout.get())
            .with_metadata(metadata)
            .build()
            .map_err(|e| format!("telemetry.otlp: {e}"))?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(cfg.service_name.clone())
                .build(),
        );
        let (queue, rx) = mpsc::channel(otlp.queue);
        tokio::spawn(export(
            exporter,
            rx,
            otlp.flush_interval.get(),
            metrics.clone(),
        ));
        Ok(Some(Arc::new(Self {
            queue,
            sample_ratio: cfg.sample_ratio,
            scope: InstrumentationScope::builder("portico")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            metrics,
        })))
    }

    /// Whether a trace the gateway starts is sampled (`telemetry.sample_ratio`).
    pub fn sample(&self) -> bool {
        self.sample_ratio >= 1.0 || rand::random::<f64>() < self.sample_ratio
    }

    /// Queues the span of a finished request.
    pub fn request_span(&self, r: RequestSpan<'_>) {
        let mut attributes = vec![
            KeyValue::new("http.request.method", r.method.to_string()),
            KeyValue::new("url.path", r.path.to_string()),
            KeyValue::new("http.response.status_code", i64::from(r.status)),
            KeyValue::new("portico.door", r.door),
            KeyValue::new("portico.request_id", r.request_id.to_string()),
        ];
        if let Some(route) = r.route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        if let Some(client) = r.client {
            attributes.push(KeyValue::new("client.address", client));
        }
        let name = match r.route {
            Some(route) => format!("{} {route}", r.method),
            None => r.method.to_string(),
        };
        let status = if r.status >= 500 {
            Status::error(format!("HTTP {}", r.status))
        } else {
            Status::Unset
        };
        self.queue(self.span(
            r.ids,
            SpanKind::Server,
            name,
            r.start,
            r.took,
            attributes,
            status,
        ));
    }

    /// Queues the span of a finished GraphQL operation (`query Home`; attributes
    /// `graphql.operation.type`, `graphql.operation.name`, and `portico.graphql.errors`, the
    /// number of errors answered).
    pub fn operation_span(
        &self,
        ids: SpanIds,
        start: SystemTime,
        took: Duration,
        kind: &'static str,
        name: Option<&str>,
        errors: usize,
    ) {
        let mut attributes = vec![
            KeyValue::new("graphql.operation.type", kind),
            KeyValue::new(
                "portico.graphql.errors",
                i64::try_from(errors).unwrap_or(i64::MAX),
            ),
        ];
        if let Some(name) = name {
            attributes.push(KeyValue::new("graphql.operation.name", name.to_string()));
        }
        let span_name = match name {
            Some(n) => format!("{kind} {n}"),
            None => kind.to_string(),
        };
        let status = if errors == 0 {
            Status::Unset
        } else {
            Status::error(format!("{errors} GraphQL error(s)"))
        };
        self.queue(self.span(
            ids,
            SpanKind::Internal,
            span_name,
            start,
            took,
            attributes,
            status,
        ));
    }

    /// Queues the span of a finished backend call.
    pub fn call_span(&self, c: CallSpan<'_>) {
        let mut attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", c.service.to_string()),
            KeyValue::new("rpc.method", c.method.to_string()),
            KeyValue::new("rpc.grpc.status_code", i64::from(c.code)),
            KeyValue::new("portico.backend", c.backend.to_string()),
        ];
        if let Some(v) = c.variant {
            attributes.push(KeyValue::new("portico.variant", v.to_string()));
        }
        let status = if c.code == 0 {
            Status::Unset
        } else {
            Status::error(format!("gRPC status {}", c.code))
        };
        let start = SystemTime::now() - c.took;
        let name = format!("{}/{}", c.service, c.method);
        self.queue(self.span(
            c.ids,
            SpanKind::Client,
            name,
            start,
            c.took,
            attributes,
            status,
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        ids: SpanIds,
        kind: SpanKind,
        name: String,
        start: SystemTime,
        took: Duration,
        attributes: Vec<KeyValue>,
        status: Status,
    ) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(ids.trace_id),
                SpanId::from(ids.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: ids.parent_id.map_or(SpanId::INVALID, SpanId::from),
            parent_span_is_remote: ids.parent_remote,
            span_kind: kind,
            name: Cow::Owned(name),
            start_time: start,
            end_time: start + took,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    fn queue(&self, span: SpanData) {
        if self.queue.try_send(span).is_err() {
            self.metrics.spans_dropped.inc();
        }
    }
}

/// Sends queued spans in batches: when [`BATCH`] are waiting, every `every`, and what is left
/// when the queue closes. Failures are logged once per run of failures and counted.
async fn export(
    exporter: opentelemetry_otlp::SpanExporter,
    mut rx: mpsc::Receiver<SpanData>,
    every: Duration,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let closed = tokio::select! {
            span = rx.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() < BATCH {
                        continue;
                    }
                    false
                }
                None => true,
            },
            _ = tick.tick() => false,
        };
        if !batch.is_empty() {
            let spans = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let n = spans.len() as u64;
            match exporter.export(spans).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("spans are exported again");
                    }
                    failing = false;
                }
                Err(e) => {
                    metrics.spans_dropped.inc_by(n);
                    if !failing {
                        tracing::warn!(error = %e, "cannot export spans to the OTLP collector; dropping them until it answers");
                    }
                    failing = true;
                }
            }
        }
        if closed {
            return;
        }
    }
}

/// A span id of its own (never zero).
pub fn new_span_id() -> u64 {
    rand::random::<u64>().max(1)
}
