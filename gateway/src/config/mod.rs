//! Typed gateway configuration: the YAML document, its defaults, and strict loading.
//!
//! Every struct rejects unknown keys; [`load`] names the file and the key in every error and
//! resolves relative paths against the config file's folder.

mod access;
mod admin;
mod auth;
mod bff;
mod cache;
mod cors;
mod graphql;
mod load;
mod multipart;
mod operate;
mod ratelimit;
mod resilience;
mod shaping;
mod split;
mod streams;
mod tls;
mod units;
mod versions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use access::{AccessConfig, AccessList, Cidr, any_contains, canonical};
pub use admin::AdminConfig;
pub use auth::{
    ApiKeyConfig, ApiKeysConfig, AuthConfig, AuthorizationConfig, DefaultRule, ForwardConfig,
    JWT_ALGORITHMS, JwtConfig, Rule,
};
pub use bff::{
    ApqStoreKind, EndpointConfig, EndpointMethod, OperationsConfig, PersistedConfig, PersistedMode,
    validate as validate_bff,
};
pub use cache::{CacheConfig, CacheScope, CachedMethodConfig, MemoryTierConfig, RedisTierConfig};
pub use cors::{CorsConfig, OriginPattern, origin_pattern};
pub use graphql::{
    BatchConfig, Execution, GraphqlConfig, GraphqlMethodConfig, LinkConfig, OperationKind,
};
pub use load::{ConfigError, load, parse};
pub use multipart::MultipartConfig;
pub use operate::{
    LogConfig, LogFormat, OtlpConfig, ReloadConfig, RuntimeConfig, RuntimeMode, TelemetryConfig,
};
pub use ratelimit::{
    CostKind, KeyPart, KeySpec, LimitRule, LimitStore, OnError, PlanLimit, RateLimitsConfig,
    RedisLimitConfig,
};
pub use resilience::{
    BalancePolicy, BreakerConfig, BulkheadConfig, DrainConfig, HealthCheckConfig, OutlierConfig,
    ResilienceConfig, RetryConfig,
};
pub use shaping::{Algorithm, CompressionConfig, RedactAction, ShapingConfig};
pub use split::{SplitConfig, StickyConfig, VariantConfig};
pub use streams::StreamsConfig;
pub use tls::{ClientAuth, TlsConfig};
pub use units::{ByteSize, HumanDuration};
pub use versions::{
    DeprecatedConfig, RetiredConfig, Rfc3339, SelectConfig, VersionConfig, VersionsConfig,
};

/// The whole configuration of one BFF.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The admin listener: metrics, health, read-only views (none without this section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminConfig>,
    /// Live reloads: watching files, re-polling reflection.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// Log format and the access log.
    #[serde(default)]
    pub log: LogConfig,
    /// The gateway's spans, exported over OTLP.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// One multi-threaded runtime, or one runtime per core (read at startup).
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// TLS on the listener (plain HTTP without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// How callers are identified (JWT, API keys, client certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Who may call what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationConfig>,
    /// Proxies in front of the gateway whose `X-Forwarded-For` / `Forwarded` is believed
    /// when they are the TCP peer (the client's address is then read from those headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<Cidr>,
    /// IP allow and deny lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessConfig>,
    /// Rate limits and quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitsConfig>,
    /// Cross-origin requests from browsers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// Where the protobuf descriptors come from, merged in order.
    #[serde(default)]
    pub descriptors: Vec<DescriptorSource>,
    /// The gRPC backends, by name.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// How REST/JSON is mapped onto gRPC.
    #[serde(default)]
    pub rest: RestConfig,
    /// Protective limits on requests and responses.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Which headers cross the gateway, in each direction.
    #[serde(default)]
    pub headers: HeadersConfig,
    /// Deadlines of upstream calls.
    #[serde(default)]
    pub deadlines: DeadlinesConfig,
    /// The GraphQL door.
    #[serde(default)]
    pub graphql: GraphqlConfig,
    /// Graceful drain on SIGTERM/SIGINT.
    #[serde(default)]
    pub drain: DrainConfig,
    /// Response shaping for this BFF's client: redaction, lean payloads, ETags, compression.
    #[serde(default)]
    pub shaping: ShapingConfig,
    /// The BFF's named GraphQL operations (a folder of `*.graphql` files).
    #[serde(default)]
    pub operations: OperationsConfig,
    /// Operations published as REST endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Trusted documents and automatic persisted queries.
    #[serde(default)]
    pub persisted: PersistedConfig,
    /// The developer portal at `/portal` on the client port.
    #[serde(default)]
    pub portal: PortalConfig,
    /// gRPC-Web on the client port (browser gRPC clients).
    #[serde(default)]
    pub grpc_web: GrpcWebConfig,
    /// Client streams over WebSocket and NDJSON: on/off and limits.
    #[serde(default)]
    pub streams: StreamsConfig,
    /// The response cache of backend calls (off without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
    /// API versions: which services each is, how callers pick one, deprecation and
    /// retirement (nothing is versioned without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionsConfig>,
    /// Folder relative paths are resolved against (the config file's folder); not read from YAML.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Name of the file this was read from, for messages; not read from YAML.
    #[serde(skip)]
    pub source_name: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// One source of descriptors: exactly one of `file`, `proto` or `reflection`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorSource {
    /// A binary `FileDescriptorSet` (`protoc --include_imports -o`, `buf build -o`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// A `.proto` file or a folder of them, compiled in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<PathBuf>,
    /// Extra import roots for `proto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<PathBuf>,
    /// The name of a backend whose gRPC server reflection provides the descriptors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflection: Option<String>,
}

/// The kind of a [`DescriptorSource`], once validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DescriptorKind {
    /// A descriptor-set file.
    File(PathBuf),
    /// `.proto` sources and their import roots.
    Proto {
        /// The file or folder.
        path: PathBuf,
        /// Extra import roots.
        imports: Vec<PathBuf>,
    },
    /// Server reflection of a backend.
    Reflection(String),
}

impl DescriptorSource {
    /// The validated kind (loading guarantees exactly one is set).
    pub fn kind(&self) -> Option<DescriptorKind> {
        match (&self.file, &self.proto, &self.reflection) {
            (Some(f), None, None) => Some(DescriptorKind::File(f.clone())),
            (None, Some(p), None) => Some(DescriptorKind::Proto {
                path: p.clone(),
                imports: self.imports.clone(),
            }),
            (None, None, Some(r)) => Some(DescriptorKind::Reflection(r.clone())),
            _ => None,
        }
    }
}

/// One gRPC backend.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Endpoints, e.g. `http://127.0.0.1:50051`; calls are balanced over them (none with
    /// `split`, whose variants have their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Fully-qualified services this backend serves; optional when it serves reflection.
    #[serde(default)]
    pub services: Vec<String>,
    /// Default deadline of a call to this backend (else `deadlines.default`).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// How long to wait for a TCP connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Breaker, bulkhead, retries, balancing, health checks and fallbacks.
    #[serde(default)]
    pub resilience: ResilienceConfig,
    /// TLS to this backend's `https://` endpoints (without it, `https://` endpoints are
    /// verified against the system's and Mozilla's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTlsConfig>,
    /// Traffic splitting: the backend is several variants (versions), each call going to one
    /// by weight, sticky key or override header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
}

/// TLS to a backend: which CA to trust, the client certificate to present (mTLS), and the
/// name to expect in the backend's certificate.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// CA certificates (PEM) the backend's certificate must chain to (instead of the
    /// system's and Mozilla's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The gateway's client certificate chain (PEM), for backends that require mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The key of `cert` (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The name the backend's certificate must hold (and sent as SNI); default: the host of
    /// each endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

/// The developer portal.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Serve `/portal` (services, routes, types with examples, operations, the SDL).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Who may read it: `anyone`, or `identified` callers (by the `auth` section: a valid
    /// token, API key or client certificate).
    #[serde(default)]
    pub access: PortalAccess,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            access: PortalAccess::default(),
        }
    }
}

/// gRPC-Web: every unary and server-streaming method of the registered services, called by
/// browser gRPC clients at `POST /{package.Service}/{Method}` with an `application/grpc-web*`
/// body, on the client port.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcWebConfig {
    /// Serve gRPC-Web (on by default: it reaches the methods the REST default routes and
    /// GraphQL already reach, through the same policies).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for GrpcWebConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Who may read the developer portal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalAccess {
    /// Anyone who reaches the client port.
    #[default]
    Anyone,
    /// Callers the `auth` section identifies.
    Identified,
}

/// How REST/JSON is mapped onto gRPC.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Serve every method at `POST /{package.Service}/{Method}` too.
    #[serde(default = "yes")]
    pub default_routes: bool,
    /// Write original proto field names (`display_name`) instead of lowerCamelCase.
    #[serde(default)]
    pub use_proto_field_names: bool,
    /// Write fields that hold their default value (0, "", false, []).
    #[serde(default)]
    pub emit_unpopulated: bool,
    /// Ignore unknown JSON fields instead of answering 400.
    #[serde(default)]
    pub ignore_unknown_fields: bool,
    /// Read `+` in a query string as a space (HTML form encoding); off: `+` stays `+`.
    #[serde(default)]
    pub query_plus_is_space: bool,
    /// Query parameters that are ignored rather than rejected as unknown.
    #[serde(default)]
    pub ignored_query_params: Vec<String>,
    /// Per-method settings, keyed by `package.Service.Method`.
    #[serde(default)]
    pub methods: BTreeMap<String, MethodConfig>,
    /// Refuse the configuration when an HTTP binding cannot be served (a template the router
    /// cannot express, a streaming binding it does not serve, a route two methods claim),
    /// instead of leaving that binding out with a warning and serving the rest.
    #[serde(default)]
    pub strict: bool,
    /// Serve the OpenAPI document of the REST routes at `/openapi.json` on the client port.
    #[serde(default = "yes")]
    pub openapi: bool,
    /// How replies are written as JSON: straight from the backend's bytes (`direct`), or
    /// decoded first and written by prost-reflect (`reflect`, the way back).
    #[serde(default)]
    pub encoder: RestEncoder,
    /// How request bodies become the request message's bytes: written straight from the JSON
    /// (`direct`), or decoded into a message first and encoded (`reflect`, the way back).
    #[serde(default)]
    pub decoder: RestDecoder,
    /// `multipart/form-data` bodies (file uploads): on or off, and their limits.
    #[serde(default)]
    pub multipart: MultipartConfig,
}

/// How the REST door turns a JSON body into the request message's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestDecoder {
    /// From the JSON with a per-type plan built with the snapshot (no decoded message); what
    /// it leaves (update masks to fill, a path variable also in the body, invalid bodies,
    /// which get the `reflect` path's error) goes the `reflect` way.
    #[default]
    Direct,
    /// Decoded into a `DynamicMessage` by prost-reflect, then encoded.
    Reflect,
}

/// How the REST door writes a reply message as JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestEncoder {
    /// From the wire bytes with a per-type plan built with the snapshot (no decoded message);
    /// replies it cannot write (extensions, a field sent twice, redacted types, a
    /// `response_body` binding) are written the `reflect` way.
    #[default]
    Direct,
    /// Decoded into a `DynamicMessage`, then serialised by prost-reflect.
    Reflect,
}

fn yes() -> bool {
    true
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            default_routes: true,
            use_proto_field_names: false,
            emit_unpopulated: false,
            ignore_unknown_fields: false,
            query_plus_is_space: false,
            ignored_query_params: Vec::new(),
            methods: BTreeMap::new(),
            strict: false,
            openapi: true,
            encoder: RestEncoder::default(),
            decoder: RestDecoder::default(),
            multipart: MultipartConfig::default(),
        }
    }
}

/// Settings of one method.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// HTTP status of a success (e.g. 201 for a create); default 200.
    #[serde(default)]
    pub success_status: Option<u16>,
    /// Deadline of this method's calls, overriding the backend's.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// Protective limits, all on by default.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, counted after decompression (413 past it).
    #[serde(default = "d_body")]
    pub max_body_bytes: ByteSize,
    /// Deepest JSON nesting accepted in a body (400 past it).
    #[serde(default = "d_depth")]
    pub max_json_depth: usize,
    /// Most JSON values inside `google.protobuf.Struct`/`Value`/`ListValue` fields of one body
    /// (400 past it): each decodes to a message of its own, about 800 bytes of heap for as
    /// little as 2 bytes of JSON.
    #[serde(default = "d_struct_values")]
    pub max_struct_values: usize,
    /// Most request headers (431 past it, with a JSON body; past twice as many the HTTP
    /// parser refuses the request itself, with a bare 431).
    #[serde(default = "d_headers")]
    pub max_headers: usize,
    /// Largest total size of the request line and headers (431 past it, with a JSON body;
    /// past twice the size the HTTP parser refuses the request itself, with a bare 431).
    #[serde(default = "d_header_bytes")]
    pub max_header_bytes: ByteSize,
    /// Time a client has to send its request headers (past it the connection is closed without
    /// an answer: the HTTP parser gives the gateway no request to answer).
    #[serde(default = "d_header_timeout")]
    pub header_read_timeout: HumanDuration,
    /// Longest pause allowed between two pieces of a request body (408 past it).
    #[serde(default = "d_body_idle")]
    pub body_idle_timeout: HumanDuration,
    /// Longest time a client may take to send its whole request body (408 past it), however
    /// steadily it trickles.
    #[serde(default = "d_body_total")]
    pub body_timeout: HumanDuration,
    /// Largest gRPC response message accepted from a backend (502 past it).
    #[serde(default = "d_response")]
    pub max_response_bytes: ByteSize,
    /// HTTP/2: concurrent streams per connection.
    #[serde(default = "d_streams")]
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: streams reset by the client before being served, kept per connection (rapid-reset guard).
    #[serde(default = "d_resets")]
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2: streams the server may reset for protocol errors before closing the connection.
    #[serde(default = "d_local_resets")]
    pub http2_max_local_error_reset_streams: usize,
    /// Most client connections open at once; past it a new connection is closed at once while
    /// the open ones are served. Read at startup.
    #[serde(default = "d_connections")]
    pub max_connections: usize,
    /// Most client connections open at once from one address (IPv4, or an IPv6 /64); `null`:
    /// no per-address limit (behind a load balancer, whose address every connection has).
    /// Read at startup.
    #[serde(default = "d_connections_per_ip")]
    pub max_connections_per_ip: Option<usize>,
}

fn d_body() -> ByteSize {
    ByteSize(1 << 20)
}
fn d_depth() -> usize {
    32
}
fn d_struct_values() -> usize {
    10_000
}
fn d_headers() -> usize {
    100
}
fn d_header_bytes() -> ByteSize {
    ByteSize(16 << 10)
}
fn d_header_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn d_body_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn d_body_total() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn d_response() -> ByteSize {
    ByteSize(4 << 20)
}
fn d_streams() -> u32 {
    256
}
fn d_resets() -> usize {
    20
}
fn d_local_resets() -> usize {
    1024
}
fn d_connections() -> usize {
    10_000
}
fn d_connections_per_ip() -> Option<usize> {
    Some(1_000)
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: d_body(),
            max_json_depth: d_depth(),
            max_struct_values: d_struct_values(),
            max_headers: d_headers(),
            max_header_bytes: d_header_bytes(),
            header_read_timeout: d_header_timeout(),
            body_idle_timeout: d_body_idle(),
            body_timeout: d_body_total(),
            max_response_bytes: d_response(),
            http2_max_concurrent_streams: d_streams(),
            http2_max_pending_accept_reset_streams: d_resets(),
            http2_max_local_error_reset_streams: d_local_resets(),
            max_connections: d_connections(),
            max_connections_per_ip: d_connections_per_ip(),
        }
    }
}

/// Which headers cross the gateway.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// Request headers forwarded to backends as gRPC metadata: exact names, or prefixes
    /// ending in `*` (`x-tenant-*`). Hop-by-hop and `grpc-*` headers are never forwarded.
    #[serde(default = "d_forward")]
    pub forward: Vec<String>,
    /// Backend response metadata (headers and trailers) returned to the client: exact names or
    /// `prefix*` patterns; each is returned as `<response_prefix><name>`.
    #[serde(default)]
    pub response: Vec<String>,
    /// Prefix of returned metadata headers (grpc-gateway's convention).
    #[serde(default = "d_response_prefix")]
    pub response_prefix: String,
}

fn d_forward() -> Vec<String> {
    vec!["accept-language".into(), "x-tenant-id".into()]
}
fn d_response_prefix() -> String {
    "grpc-metadata-".into()
}

impl Default for HeadersConfig {
    fn default() -> Self {
        Self {
            forward: d_forward(),
            response: Vec::new(),
            response_prefix: d_response_prefix(),
        }
    }
}

/// Deadlines of requests and of their upstream calls (one rule for every door: a call gets
/// its method's timeout, else its backend's, else `default`, never more than what is left of
/// its request's budget).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesConfig {
    /// Deadline of a call when neither the method nor its backend sets one.
    #[serde(default = "d_deadline")]
    pub default: HumanDuration,
    /// The longest any request may take: its budget, unless the client asks for less with a
    /// `grpc-timeout` header (or an operation endpoint sets less). Bounds every call of the
    /// request, a GraphQL operation's whole fan-out and a stream's life.
    #[serde(default = "d_deadline_max")]
    pub max: HumanDuration,
}

fn d_deadline() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn d_deadline_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        Self {
            default: d_deadline(),
            max: d_deadline_max(),
        }
    }
}

impl Config {
    /// The deadline of a call to `method` (full name `pkg.Svc.Method`) on `backend`.
    pub fn call_timeout(&self, backend: &str, method: &str) -> Duration {
        self.rest
            .methods
            .get(method)
            .and_then(|m| m.timeout)
            .or_else(|| self.backends.get(backend).and_then(|b| b.timeout))
            .unwrap_or(self.deadlines.default)
            .get()
    }

    /// The proxies whose forwarding headers are believed: `trusted_proxies` and
    /// `rate_limits.trusted_proxies` together.
    pub fn trusted_proxies(&self) -> Vec<Cidr> {
        let mut all = self.trusted_proxies.clone();
        if let Some(rl) = &self.rate_limits {
            all.extend(rl.trusted_proxies.iter().copied());
        }
        all
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve_path(&self, p: &std::path::Path) -> PathBuf {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        normalize(&joined)
    }
}

/// Removes `.` and `a/..` pairs lexically (no file system access), for readable messages.
fn normalize(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(
                    out.components().next_back(),
                    Some(Component::Normal(_)) | None
                ) || !out.pop()
                {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
