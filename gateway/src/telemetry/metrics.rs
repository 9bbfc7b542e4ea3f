//! Prometheus metrics (prometheus-client, one registry per gateway: no global state), named
//! after OpenTelemetry's semantic conventions as Prometheus spells them. Labels have bounded
//! cardinality: route templates, never raw paths or ids.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code`, `portico_door` |
//! | `http_server_active_requests` | gauge | |
//! | `rpc_client_duration_seconds` | histogram | `rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`, `portico_backend`, `portico_variant` (a split backend's variant that served the call; empty for other backends) |
//! | `portico_reloads_total` | counter | `result` (`ok`, `error`) |
//! | `portico_api_version_requests_total` | counter | `version`, `state` (`current`, `deprecated`, `retired`) |
//! | `portico_rate_limit_decisions_total` | counter | `rule`, `decision` (`allowed`, `limited`) |
//! | `portico_rate_limit_store_errors_total` | counter | `outcome` (`allowed`, `denied`, `fallback`) |
//! | `portico_spans_dropped_total` | counter | |
//! | `portico_connections_open` | gauge | |
//! | `portico_runtime_tasks` | gauge | |
//! | `portico_connections_refused_total` | counter | `reason` (`max_connections`, `max_connections_per_ip`) |
//! | `portico_upstream_retries_total` | counter | `portico_backend`, `rpc_service`, `rpc_method` |
//! | `portico_graphql_operations_total` | counter | `graphql_operation_type`, `graphql_operation_name` (the BFF's named operations; `_OTHER` for any other name), `outcome` (`ok`, `partial`, `error`) |
//! | `portico_graphql_errors_total` | counter | `code` (`extensions.code`) |
//! | `portico_persisted_queries_total` | counter | `result` (`hit`, `registered`, `miss`) |
//! | `portico_cache_lookups_total` | counter | `rpc_method`, `result` (`hit`, `redis_hit`, `miss`, `coalesced`, `revalidate`, `stale`) |
//! | `portico_rest_replies_total` | counter | `encoder` (`direct`: from the wire bytes; `reflect`: decoded first) |
//! | `portico_rest_requests_total` | counter | `decoder` (`direct`: bytes from the JSON; `reflect`: decoded first) |
//!
//! The backends' state (breakers, bulkheads, endpoints) is read at scrape time ([`super::backends`]).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// OpenTelemetry's default bucket boundaries for HTTP and RPC durations, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The labels of one HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`... (anything else is `_OTHER`, as the conventions say).
    pub http_request_method: &'static str,
    /// The route template (`/v1/users/{id}`), the GraphQL path, an endpoint's template, an
    /// admin path; `unmatched` when nothing matched.
    pub http_route: String,
    /// The answer's status.
    pub http_response_status_code: u16,
    /// `rest`, `graphql`, `endpoint`, `admin` or `grpc_web`.
    pub portico_door: &'static str,
}

/// The labels of one backend call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Always `grpc`.
    pub rpc_system: &'static str,
    /// The full service name, `demo.v1.UserService`.
    pub rpc_service: String,
    /// The method name, `GetUser`.
    pub rpc_method: String,
    /// The gRPC status code, as a number (0 is OK).
    pub rpc_grpc_status_code: i32,
    /// The backend's name in the config.
    pub portico_backend: String,
    /// The variant of a split backend that served the call, named in the config (bounded);
    /// empty for other backends (which Prometheus reads as no label).
    pub portico_variant: String,
}

/// The labels of an answer of a versioned method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The API version's name (from the config: bounded).
    pub version: String,
    /// `current`, `deprecated` or `retired`.
    pub state: &'static str,
}

/// The labels of a reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The labels of a rate-limit decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The rule's name (from the config: bounded).
    pub rule: String,
    /// `allowed` or `limited`.
    pub decision: &'static str,
}

/// The labels of a decision the rate-limit store could not make.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    /// What the request got: `allowed` (`on_error: allow`), `denied` (`deny`) or `fallback`
    /// (counted in process).
    pub outcome: &'static str,
}

/// The labels of a retried backend call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// The backend's name in the config.
    pub portico_backend: String,
    /// The full service name.
    pub rpc_service: String,
    /// The method name.
    pub rpc_method: String,
}

/// The labels of a GraphQL operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GraphqlOperationLabels {
    /// `query`, `mutation` or `subscription`.
    pub graphql_operation_type: &'static str,
    /// One of the BFF's named operations, `_OTHER` for any other name, empty when anonymous.
    pub graphql_operation_name: String,
    /// `ok` (no errors), `partial` (data and errors) or `error` (no data).
    pub outcome: &'static str,
}

/// The labels of a GraphQL error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// Its `extensions.code` (`UNKNOWN` without one).
    pub code: String,
}

/// The labels of a persisted-operation lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PersistedLabels {
    /// `hit` (the document found by its id), `registered` (an APQ document stored) or `miss`
    /// (an unknown id, refused).
    pub result: &'static str,
}

/// A response-cache lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `package.Service.Method`.
    pub rpc_method: String,
    /// `hit` (answered from the memory tier), `redis_hit` (from the shared tier), `miss` (the call was made), `coalesced` (shared a
    /// call in flight), `revalidate` (answered stale while one call refreshes the entry), `stale`
    /// (a failing backend answered by a stale entry).
    pub result: &'static str,
}

/// How a REST reply was written.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EncoderLabels {
    /// `direct` or `reflect`.
    pub encoder: &'static str,
}

/// How a REST request body became the request message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecoderLabels {
    /// `direct` or `reflect`.
    pub decoder: &'static str,
}

/// Why a connection was closed on arrival.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `max_connections` or `max_connections_per_ip`.
    pub reason: &'static str,
}

/// The gateway's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status, with their durations.
    pub http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    /// Requests in flight.
    pub http_active: Gauge,
    /// Backend calls by method and status, with their durations.
    pub rpc_duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    /// Reloads by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Answers of versioned methods (`versions`), by version and state.
    pub api_versions: Family<VersionLabels, Counter>,
    /// Rate-limit decisions by rule.
    pub rate_limit: Family<LimitLabels, Counter>,
    /// Decisions the Redis store could not make, by what the request got.
    pub rate_limit_store_errors: Family<StoreErrorLabels, Counter>,
    /// Spans not exported: the queue was full, or the collector refused or did not answer.
    pub spans_dropped: Counter,
    /// Client connections open (set at scrape time from the server's count).
    pub connections_open: Gauge,
    /// Tasks alive on the gateway's tokio runtime (set at scrape time): flat under a steady
    /// load, back to its idle level after it; a climb is work left running.
    pub runtime_tasks: Gauge,
    /// Client connections closed on arrival, by the limit they were over (counted by the
    /// server: see [`Metrics::connection_refusals`]).
    pub connections_refused: Family<RefusedLabels, Counter>,
    /// Backend calls retried.
    pub retries: Family<RetryLabels, Counter>,
    /// GraphQL operations run, by type, name and outcome.
    pub graphql_operations: Family<GraphqlOperationLabels, Counter>,
    /// GraphQL errors by code.
    pub graphql_errors: Family<CodeLabels, Counter>,
    /// Persisted-operation lookups by result.
    pub persisted: Family<PersistedLabels, Counter>,
    /// Response-cache lookups by method and result.
    pub cache_lookups: Family<CacheLabels, Counter>,
    /// REST replies written straight from their wire bytes.
    pub rest_direct: Counter,
    /// REST replies decoded, then written by prost-reflect.
    pub rest_reflect: Counter,
    /// REST request messages written straight from their JSON bodies.
    pub rest_in_direct: Counter,
    /// REST request messages decoded by prost-reflect, then encoded.
    pub rest_in_reflect: Counter,
    /// The backends whose state is read at scrape time.
    pub backends: std::sync::Arc<super::backends::BackendsCollector>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let http_duration =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests",
            Unit::Seconds,
            http_duration.clone(),
        );
        let http_active = Gauge::default();
        registry.register(
            "http_server_active_requests",
            "Number of active HTTP server requests",
            http_active.clone(),
        );
        let rpc_duration = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register_with_unit(
            "rpc_client_duration",
            "Duration of outbound gRPC calls",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let api_versions = Family::<VersionLabels, Counter>::default();
        registry.register(
            "portico_api_version_requests",
            "Answers of the methods of an API version (the versions section), by version and state",
            api_versions.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "portico_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let rate_limit = Family::<LimitLabels, Counter>::default();
        registry.register(
            "portico_rate_limit_decisions",
            "Rate-limit decisions by rule",
            rate_limit.clone(),
        );
        let rate_limit_store_errors = Family::<StoreErrorLabels, Counter>::default();
        registry.register(
            "portico_rate_limit_store_errors",
            "Rate-limit decisions the shared store could not make",
            rate_limit_store_errors.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "portico_spans_dropped",
            "Spans not exported (queue full, or the OTLP collector failed)",
            spans_dropped.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "portico_connections_open",
            "Client connections open on the client port",
            connections_open.clone(),
        );
        let runtime_tasks = Gauge::default();
        registry.register(
            "portico_runtime_tasks",
            "Tasks alive on the gateway's tokio runtime",
            runtime_tasks.clone(),
        );
        let connections_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "portico_connections_refused",
            "Client connections closed on arrival, by the limit they were over",
            connections_refused.clone(),
        );
        let retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "portico_upstream_retries",
            "Backend calls retried (each retry once)",
            retries.clone(),
        );
        let graphql_operations = Family::<GraphqlOperationLabels, Counter>::default();
        registry.register(
            "portico_graphql_operations",
            "GraphQL operations run, by type, name and outcome",
            graphql_operations.clone(),
        );
        let graphql_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "portico_graphql_errors",
            "GraphQL errors answered, by extensions.code",
            graphql_errors.clone(),
        );
        let persisted = Family::<PersistedLabels, Counter>::default();
        registry.register(
            "portico_persisted_queries",
            "Persisted-operation lookups by result",
            persisted.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "portico_cache_lookups",
            "Response-cache lookups by method and result",
            cache_lookups.clone(),
        );
        let rest_replies = Family::<EncoderLabels, Counter>::default();
        registry.register(
            "portico_rest_replies",
            "REST replies by how they were written as JSON",
            rest_replies.clone(),
        );
        let rest_direct = rest_replies
            .get_or_create(&EncoderLabels { encoder: "direct" })
            .clone();
        let rest_reflect = rest_replies
            .get_or_create(&EncoderLabels { encoder: "reflect" })
            .clone();
        let rest_requests = Family::<DecoderLabels, Counter>::default();
        registry.register(
            "portico_rest_requests",
            "REST requests by how the request message was written from the JSON body",
            rest_requests.clone(),
        );
        let rest_in_direct = rest_requests
            .get_or_create(&DecoderLabels { decoder: "direct" })
            .clone();
        let rest_in_reflect = rest_requests
            .get_or_create(&DecoderLabels { decoder: "reflect" })
            .clone();
        let backends = std::sync::Arc::new(super::backends::BackendsCollector::default());
        registry.register_collector(Box::new(backends.clone()));
        Metrics {
            registry,
            spans_dropped,
            connections_open,
            connections_refused,
            runtime_tasks,
            retries,
            graphql_operations,
            graphql_errors,
            persisted,
            cache_lookups,
            rest_direct,
            rest_reflect,
            rest_in_direct,
            rest_in_reflect,
            backends,
            http_duration,
            http_active,
            rpc_duration,
            reloads,
            api_versions,
            rate_limit,
            rate_limit_store_errors,
        }
    }

    /// Counts one answer of a method of API version `version`, in `state`.
    pub fn api_version(&self, version: &str, state: &'static str) {
        self.api_versions
            .get_or_create(&VersionLabels {
                version: version.to_string(),
                state,
            })
            .inc();
    }

    /// Records one finished HTTP request.
    pub fn http_request(
        &self,
        method: &http::Method,
        route: String,
        status: u16,
        door: &'static str,
        took: Duration,
    ) {
        self.http_duration
            .get_or_create(&HttpLabels {
                http_request_method: method_label(method),
                http_route: route,
                http_response_status_code: status,
                portico_door: door,
            })
            .observe(took.as_secs_f64());
    }

    /// The counters of refused connections (past `max_connections`, past
    /// `max_connections_per_ip`), for the server to count in.
    pub fn connection_refusals(&self) -> (Counter, Counter) {
        let of = |reason| {
            self.connections_refused
                .get_or_create(&RefusedLabels { reason })
                .clone()
        };
        (of("max_connections"), of("max_connections_per_ip"))
    }

    /// Counts one response-cache lookup.
    pub fn cache_lookup(&self, method: &str, result: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLabels {
                rpc_method: method.to_string(),
                result,
            })
            .inc();
    }

    /// Records one finished backend call.
    pub fn rpc_call(&self, service: &str, method: &str, code: i32, backend: &str, took: Duration) {
        self.rpc_call_to(service, method, code, (backend, None), took);
    }

    /// [`Metrics::rpc_call`], to variant `variant` of `backend` when it is a split backend.
    pub fn rpc_call_to(
        &self,
        service: &str,
        method: &str,
        code: i32,
        (backend, variant): (&str, Option<&str>),
        took: Duration,
    ) {
        self.rpc_duration
            .get_or_create(&RpcLabels {
                rpc_system: "grpc",
                rpc_service: service.to_string(),
                rpc_method: method.to_string(),
                rpc_grpc_status_code: code,
                portico_backend: backend.to_string(),
                portico_variant: variant.unwrap_or_default().to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one retry of a call to `service`/`method` on `backend`.
    pub fn retry(&self, backend: &str, service: &str, method: &str) {
        self.retries
            .get_or_create(&RetryLabels {
                portico_backend: backend.to_string(),
                rpc_service: service.to_string(),
                rpc_method: method.to_string(),
            })
            .inc();
    }

    /// Counts one GraphQL operation and its errors' codes.
    pub fn graphql_operation(
        &self,
        kind: &'static str,
        name: String,
        has_data: bool,
        codes: &[String],
    ) {
        let outcome = match (codes.is_empty(), has_data) {
            (true, _) => "ok",
            (false, true) => "partial",
            (false, false) => "error",
        };
        self.graphql_operations
            .get_or_create(&GraphqlOperationLabels {
                graphql_operation_type: kind,
                graphql_operation_name: name,
                outcome,
            })
            .inc();
        for code in codes {
            self.graphql_error(code);
        }
    }

    /// Counts one GraphQL error answered with `code` (a code that is not an upper-case
    /// identifier of up to 64 characters counts as `OTHER`: labels stay bounded).
    pub fn graphql_error(&self, code: &str) {
        let bounded = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        self.graphql_errors
            .get_or_create(&CodeLabels {
                code: if bounded { code } else { "OTHER" }.to_string(),
            })
            .inc();
    }

    /// Counts one persisted-operation lookup.
    pub fn persisted_lookup(&self, result: &'static str) {
        self.persisted
            .get_or_create(&PersistedLabels { result })
            .inc();
    }

    /// The metrics in the Prometheus text format (0.0.4), or OpenMetrics when `openmetrics`;
    /// with the content type to answer with.
    pub fn render(&self, openmetrics: bool) -> (&'static str, String) {
        let mut out = String::new();
        if openmetrics {
            let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                out,
            )
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
            (
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                out,
            )
        }
    }
}

/// The method as a label: the standard ones by name, anything else `_OTHER` (a client cannot
/// make up label values).
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_name_the_series() {
        let m = Metrics::new();
        m.http_request(
            &http::Method::GET,
            "/v1/users/{id}".into(),
            200,
            "rest",
            Duration::from_millis(3),
        );
        m.http_request(
            &http::Method::from_bytes(b"BREW").unwrap_or(http::Method::GET),
            "unmatched".into(),
            404,
            "rest",
            Duration::from_millis(1),
        );
        let (ct, text) = m.render(false);
        assert!(ct.starts_with("text/plain; version=0.0.4"));
        assert!(
            text.contains("http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/v1/users/{id}\",http_response_status_code=\"200\",portico_door=\"rest\"} 1"),
            "{text}"
        );
        assert!(text.contains("http_request_method=\"_OTHER\""), "{text}");
        let (ct, text) = m.render(true);
        assert!(ct.starts_with("application/openmetrics-text"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
