//! The immutable bundle a request runs against: config, descriptors, routes and backends.
//!
//! A snapshot is built completely on the side and validated before it serves anything; the
//! ingress pins one `Arc<Snapshot>` to each request, which keeps it to the end, so a request
//! never mixes old routes with new descriptors. [`Current`] holds the snapshot new requests
//! get, and swaps it whole on reload.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prost_reflect::ServiceDescriptor;

use crate::config::{Config, ConfigError, DescriptorKind};
use crate::descriptors::{self, Registry, RegistryError, SourceFiles};
use crate::graphql::bff::endpoints::{self, Endpoint};
use crate::graphql::bff::operations::{self, Operations, OperationsError};
use crate::graphql::bff::persisted::Persisted;
use crate::graphql::engine::schema::{GraphqlBuildError, GraphqlSchema};
use crate::request::policy::{Chain, Outbound, Policy, Stage};
use crate::rest::headers::HeaderRules;
use crate::rest::router::Router;
use crate::rest::routes::{RouteError, RouteTarget, build_routes};
use crate::shaping::{Redactions, Shaping};
use crate::transcode::{DecodeOptions, EncodeOptions};
use crate::upstream::{Backend, Targets, Upstream};

/// Why a snapshot could not be built; each names the file, key, source or method at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config itself is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A descriptor source is wrong, or two sources conflict.
    #[error("{file}: descriptors: {source}")]
    Registry {
        /// The config file.
        file: String,
        /// The registry's error.
        source: RegistryError,
    },
    /// The GraphQL schema could not be built.
    #[error("{file}: {source}")]
    Graphql {
        /// The config file.
        file: String,
        /// What is wrong.
        source: GraphqlBuildError,
    },
    /// An operation of the operations folder is wrong (names its file, operation and field).
    #[error("{file}: operations: {source}")]
    Operations {
        /// The config file.
        file: String,
        /// What is wrong.
        source: Box<OperationsError>,
    },
    /// A route could not be built.
    #[error("{file}: routes: {source}")]
    Route {
        /// The config file.
        file: String,
        /// The route error.
        source: RouteError,
    },
}

/// Everything one version of the configuration serves.
#[derive(Debug)]
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// The merged descriptors.
    pub registry: Registry,
    /// Backends and the calls to them.
    pub upstream: Arc<Upstream>,
    /// Every exposed method as a call target (backend, timeout, idempotency).
    pub targets: Targets,
    /// The way out for every call: the policy chain, then the upstream stack.
    pub outbound: Outbound,
    /// The REST route table.
    pub routes: Router<Arc<RouteTarget>>,
    /// HTTP bindings left out of the route table, each with its reason (see `rest.strict`).
    pub skipped_routes: Vec<RouteError>,
    /// Exposed services and the backend of each, sorted by service name.
    pub services: Vec<(ServiceDescriptor, String)>,
    /// Header rules.
    pub headers: HeaderRules,
    /// JSON/query decoding options.
    pub decode: DecodeOptions,
    /// JSON encoding options.
    pub encode: EncodeOptions,
    /// The GraphQL schema (when `graphql.enabled`).
    pub graphql: Option<Arc<GraphqlSchema>>,
    /// Response shaping: redaction rules and lean payloads.
    pub shaping: Arc<Shaping>,
    /// The operations folder, validated against the schema (when `operations.dir` is set).
    pub operations: Option<Arc<Operations>>,
    /// The operations published as REST endpoints.
    pub endpoints: Router<Arc<Endpoint>>,
    /// Trusted documents and APQ.
    pub persisted: Persisted,
    /// The JWT verifier of `auth.jwt` (kept across reloads that leave that section alone).
    pub jwt: Option<Arc<crate::auth::JwtVerifier>>,
    /// Proxies whose forwarding headers are believed (`trusted_proxies`).
    pub trusted_proxies: Vec<crate::config::Cidr>,
    /// The CORS layer of the `cors` section.
    pub cors: Option<tower_http::cors::CorsLayer>,
    /// Where rate-limit counts are kept (kept across reloads that leave the store alone, so
    /// a reload gives nobody a fresh allowance).
    pub limit_store: Option<Arc<crate::ratelimit::Store>>,
    /// The limit stage, for the startup listing.
    pub limiter: Option<Arc<crate::ratelimit::Limiter>>,
    /// The response cache (`cache`), also in the policy chain.
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
    /// The API versions of `versions` (empty without it).
    pub versions: Arc<crate::versions::Versions>,
    /// The gateway's metrics, once the snapshot is installed.
    metrics: std::sync::OnceLock<Arc<crate::telemetry::Metrics>>,
    /// Where spans go, once the snapshot is installed (when spans are exported).
    tracer: std::sync::OnceLock<Arc<crate::telemetry::Tracer>>,
    /// The OpenAPI document of its routes, made on first request, and each service's.
    openapi: std::sync::OnceLock<bytes::Bytes>,
    openapi_services: std::sync::OnceLock<HashMap<String, bytes::Bytes>>,
}

impl Snapshot {
    /// Builds and validates a snapshot: loads every descriptor source (contacting backends
    /// that are registered by reflection), maps services to backends, and builds the routes.
    pub async fn build(config: Config) -> Result<Snapshot, LoadError> {
        Self::build_after(config, None).await
    }

    /// [`Snapshot::build`], for a reload of `previous`: what can carry over does (backends
    /// whose config did not change, with their breaker, health and connections; the JWT
    /// verifier and its cached keys, when `auth.jwt` did not change; the rate-limit store).
    pub async fn build_after(
        config: Config,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, LoadError> {
        let file = config.source_name.clone();
        let invalid = |key: String, message: String| {
            LoadError::Config(ConfigError::Invalid {
                file: file.clone(),
                key,
                message,
            })
        };
        crate::config::validate_bff(&config)?;
        let mut backends = HashMap::new();
        let mut splits = HashMap::new();
        for (name, b) in &config.backends {
            // TLS files are read relative to the config file.
            let mut b = b.clone();
            let variant_tls = b
                .split
                .iter_mut()
                .flat_map(|s| s.variants.iter_mut())
                .filter_map(|v| v.tls.as_mut());
            for tls in b.tls.iter_mut().chain(variant_tls) {
                for p in [&mut tls.ca, &mut tls.cert, &mut tls.key]
                    .into_iter()
                    .flatten()
                {
                    *p = config.resolve_path(p);
                }
            }
            if b.split.is_some() {
                // Variants whose config did not change are kept, whatever their weights.
                let old = previous.and_then(|p| p.upstream.split(name));
                let split = crate::split::Split::build(name, &b, old.map(|s| &**s))
                    .map_err(|(k, m)| invalid(format!("backends.{name}.{k}"), m))?;
                splits.insert(name.clone(), Arc::new(split));
                continue;
            }
            // A backend whose config did not change is kept, with its breaker, health,
            // outlier and connection state.
            let kept = previous
                .and_then(|p| p.upstream.backend(name))
                .filter(|old| old.built_from(&b))
                .cloned();
            let backend = match kept {
                Some(backend) => backend,
                None => {
                    Backend::new(name, &b).map_err(|m| invalid(format!("backends.{name}"), m))?
                }
            };
            backends.insert(name.clone(), backend);
        }

        let mut sources: Vec<SourceFiles> = Vec::new();
        let mut reflected: Vec<(String, Vec<String>)> = Vec::new();
        let reg_err = |source| LoadError::Registry {
            file: file.clone(),
            source,
        };
        for src in &config.descriptors {
            match src.kind() {
                Some(DescriptorKind::File(p)) => {
                    sources.push(
                        descriptors::load_descriptor_set(&config.resolve_path(&p))
                            .map_err(reg_err)?,
                    );
                }
                Some(DescriptorKind::Proto { path, imports }) => {
                    let imports: Vec<_> = imports.iter().map(|i| config.resolve_path(i)).collect();
                    sources.push(
                        descriptors::compile_protos(&config.resolve_path(&path), &imports)
                            .map_err(reg_err)?,
                    );
                }
                Some(DescriptorKind::Reflection(name)) => {
                    // A split backend is asked through its first variant.
                    let first_variant = |s: &Arc<crate::split::Split>| {
                        s.variants().first().map(|v| v.backend.clone())
                    };
                    let Some(backend) = backends
                        .get(&name)
                        .cloned()
                        .or_else(|| splits.get(&name).and_then(first_variant))
                    else {
                        continue; // validated by config loading
                    };
                    let endpoints = config
                        .backends
                        .get(&name)
                        .map(|b| match &b.split {
                            Some(s) => s.variants.first().map(|v| v.endpoints.join(", ")),
                            None => Some(b.endpoints.join(", ")),
                        })
                        .unwrap_or_default()
                        .unwrap_or_default();
                    let origin = format!("reflection from backend {name:?} ({endpoints})");
                    let r = descriptors::fetch_reflection(backend.channel(), origin)
                        .await
                        .map_err(reg_err)?;
                    sources.push(r.files);
                    reflected.push((name, r.services));
                }
                None => {}
            }
        }
        let registry = Registry::build(sources).map_err(reg_err)?;

        // Which backend serves which service: listed ones first, then reflected ones.
        let mut service_backend: HashMap<String, String> = HashMap::new();
        for (name, b) in &config.backends {
            for (i, svc) in b.services.iter().enumerate() {
                if registry.pool().get_service_by_name(svc).is_none() {
                    return Err(invalid(
                        format!("backends.{name}.services[{i}]"),
                        format!(
                            "no service {svc:?} in the registered descriptors{}",
                            suggest(&registry, svc)
                        ),
                    ));
                }
                if let Some(other) = service_backend.insert(svc.clone(), name.clone())
                    && &other != name
                {
                    return Err(invalid(
                        format!("backends.{name}.services[{i}]"),
                        format!("{svc} is already served by backend {other:?}"),
                    ));
                }
            }
        }
        for (name, services) in reflected {
            for svc in services {
                service_backend.entry(svc).or_insert_with(|| name.clone());
            }
        }
        for method in config.rest.methods.keys() {
            if registry
                .pool()
                .get_service_by_name(method.rsplit_once('.').map_or("", |(s, _)| s))
                .is_none_or(|s| s.methods().all(|m| m.full_name() != method))
            {
                return Err(invalid(
                    format!("rest.methods.{method}"),
                    "no such method in the registered descriptors (write package.Service.Method)"
                        .into(),
                ));
            }
        }

        let mut services: Vec<(ServiceDescriptor, String)> = service_backend
            .iter()
            .filter_map(|(svc, b)| {
                registry
                    .pool()
                    .get_service_by_name(svc)
                    .map(|s| (s, b.clone()))
            })
            .collect();
        services.sort_by(|a, b| a.0.full_name().cmp(b.0.full_name()));
        let targets = Targets::new(&services, |backend, method| {
            config.call_timeout(backend, method)
        });
        let built =
            build_routes(&services, &targets, &config).map_err(|source| LoadError::Route {
                file: file.clone(),
                source,
            })?;
        for skipped in &built.skipped {
            tracing::warn!(
                method = %skipped.method,
                binding = %skipped.binding,
                reason = %skipped.message,
                "HTTP binding left out (set rest.strict to refuse the config instead)"
            );
        }
        let (routes, skipped_routes) = (built.router, built.skipped);
        let versions = Arc::new(
            crate::versions::Versions::build(config.versions.as_ref(), &services)
                .map_err(|(key, message)| invalid(key, message))?,
        );
        let graphql = if config.graphql.enabled {
            let schema = crate::graphql::engine::schema::build_with(
                &services,
                &targets,
                &config.graphql,
                registry.pool(),
                &config.shaping.redact,
                &versions,
            )
            .map_err(|source| LoadError::Graphql {
                file: file.clone(),
                source,
            })?;
            Some(Arc::new(schema))
        } else {
            None
        };
        // Redaction rules: those the schema resolved (GraphQL type names), else by full name.
        let redactions = match &graphql {
            Some(g) => g.redactions.clone(),
            None => Arc::new(
                Redactions::resolve(&config.shaping.redact, registry.pool(), &|_| None)
                    .map_err(|e| invalid(e.key, e.message))?,
            ),
        };
        let shaping = Shaping::build(&config.shaping, redactions)
            .map_err(|e| invalid(format!("shaping.flatten[{}]", e.index), e.message.clone()))?;
        let operations = match (&config.operations.dir, &graphql) {
            (Some(dir), Some(schema)) => Some(Arc::new(
                operations::load(&config.resolve_path(dir), schema)
                    .await
                    .map_err(|source| LoadError::Operations {
                        file: file.clone(),
                        source: Box::new(source),
                    })?,
            )),
            _ => None,
        };
        let endpoints = endpoints::build(&config, operations.as_deref(), &routes)
            .map_err(|e| invalid(e.key, e.message))?;
        let persisted = if graphql.is_some() {
            Persisted::new(&config.persisted, operations.clone())
                .map_err(|m| invalid("persisted.redis_url".into(), m))?
        } else {
            Persisted::none()
        };
        let upstream = Arc::new(
            Upstream::new(
                backends,
                &service_backend,
                config.limits.max_response_bytes.as_usize(),
            )
            .with_splits(splits, &service_backend)
            .with_fallbacks(&config.backends, registry.pool())
            .map_err(|(key, message)| invalid(key, message))?,
        );
        let access_methods = config
            .access
            .iter()
            .flat_map(|a| a.methods.keys())
            .map(|m| (format!("access.methods.{m}"), m));
        let limit_methods = config.rate_limits.iter().flat_map(|r| {
            r.rules.iter().enumerate().flat_map(|(i, rule)| {
                rule.methods
                    .iter()
                    .enumerate()
                    .map(move |(j, m)| (format!("rate_limits.rules[{i}].methods[{j}]"), m))
            })
        });
        let authz_methods = config
            .authorization
            .iter()
            .flat_map(|a| a.methods.keys())
            .map(|m| (format!("authorization.methods.{m}"), m));
        for (key, method) in authz_methods.chain(access_methods).chain(limit_methods) {
            if targets.get(method).is_none() {
                return Err(invalid(
                    key,
                    format!(
                        "no exposed method {method:?} (write package.Service.Method){}",
                        suggest(&registry, method.rsplit_once('.').map_or("", |(s, _)| s))
                    ),
                ));
            }
        }
        if let Some(access) = &config.access {
            let known: std::collections::HashSet<&str> =
                routes.routes().map(|(_, _, t)| t.site.name()).collect();
            for route in access.routes.keys() {
                if !known.contains(route.as_str()) {
                    return Err(invalid(
                        format!("access.routes.{route}"),
                        format!(
                            "no REST route {route:?}: write the method and the template as the google.api.http rule has them, e.g. \"GET /v1/users/{{id}}\""
                        ),
                    ));
                }
            }
        }
        if config.portal.access == crate::config::PortalAccess::Identified && config.auth.is_none()
        {
            return Err(invalid(
                "portal.access".into(),
                "identified needs an auth section (JWT, API keys or client certificates) to identify callers with".into(),
            ));
        }
        let (policies, jwt) = crate::auth::policies(&config, previous.and_then(|p| p.jwt.clone()))
            .await
            .map_err(|(key, message)| invalid(key, message))?;
        let mut chain = Chain::default();
        if config
            .versions
            .iter()
            .flat_map(|v| &v.list)
            .any(|v| v.retired.is_some())
        {
            chain = chain.with(
                Stage::Version,
                Arc::new(crate::versions::policy::Retire(versions.clone())),
            );
        }
        for (stage, policy) in policies {
            chain = chain.with(stage, policy);
        }
        let mut limit_store = None;
        let mut limiter = None;
        if let Some(rl) = &config.rate_limits {
            let store = match previous.and_then(|p| p.limit_store.clone()) {
                Some(s) if s.serves(rl) => s,
                _ => Arc::new(
                    crate::ratelimit::Store::new(rl)
                        .map_err(|(key, message)| invalid(key, message))?,
                ),
            };
            let l = Arc::new(crate::ratelimit::Limiter::new(rl, store.clone()));
            chain = chain.with(Stage::Limit, l.clone());
            limit_store = Some(store);
            limiter = Some(l);
        }
        let mut cache = None;
        if let Some(c) = &config.cache {
            let built = Arc::new(
                crate::cache::ResponseCache::new(c, registry.pool(), &targets, upstream.clone())
                    .map_err(|(key, message)| invalid(key, message))?,
            );
            chain = chain.with(Stage::Cache, built.clone());
            cache = Some(built);
        }
        if upstream.splits().next().is_some() {
            chain = chain.with(
                Stage::Split,
                Arc::new(crate::split::policy::SplitStage::new(upstream.clone())),
            );
        }
        let cors = config
            .cors
            .as_ref()
            .map(|c| crate::cors::layer(c, config.grpc_web.enabled));
        let trusted_proxies = config.trusted_proxies();
        let mut ignored_query_params = config.rest.ignored_query_params.clone();
        // An API key sent as a query parameter is the gateway's, not a request field.
        if let Some(q) = config
            .auth
            .as_ref()
            .and_then(|a| a.api_keys.as_ref())
            .and_then(|k| k.query.clone())
        {
            ignored_query_params.push(q);
        }
        // The parameter naming an API version is the gateway's too.
        if let Some(q) = versions.query_param() {
            ignored_query_params.push(q.to_string());
        }
        let decode = DecodeOptions {
            ignore_unknown_fields: config.rest.ignore_unknown_fields,
            max_depth: config.limits.max_json_depth,
            query_plus_is_space: config.rest.query_plus_is_space,
            ignored_query_params,
            max_struct_values: config.limits.max_struct_values,
        };
        let encode = EncodeOptions {
            use_proto_field_names: config.rest.use_proto_field_names,
            emit_unpopulated: config.rest.emit_unpopulated,
        };
        Ok(Snapshot {
            headers: HeaderRules::new(&config.headers),
            config,
            registry,
            outbound: Outbound {
                chain,
                upstream: upstream.clone(),
            },
            upstream,
            targets,
            routes,
            skipped_routes,
            services,
            decode,
            encode,
            graphql,
            shaping: Arc::new(shaping),
            operations,
            endpoints,
            persisted,
            jwt,
            trusted_proxies,
            cors,
            limit_store,
            limiter,
            cache,
            versions,
            metrics: std::sync::OnceLock::new(),
            tracer: std::sync::OnceLock::new(),
            openapi: std::sync::OnceLock::new(),
            openapi_services: std::sync::OnceLock::new(),
        })
    }

    /// Where spans go, when they are exported and this snapshot was installed.
    pub fn tracer(&self) -> Option<&Arc<crate::telemetry::Tracer>> {
        self.tracer.get()
    }

    fn openapi_title(&self) -> &str {
        std::path::Path::new(&self.config.source_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("config")
    }

    /// The OpenAPI document of this snapshot's REST routes, as JSON (made once).
    pub fn openapi_json(&self) -> bytes::Bytes {
        self.openapi
            .get_or_init(|| {
                let doc = crate::openapi::document(self, self.openapi_title());
                serde_json::to_vec_pretty(&doc).unwrap_or_default().into()
            })
            .clone()
    }

    /// The OpenAPI document of one service's REST routes (made once, with every other
    /// service's); `None` for a service without routes.
    pub fn openapi_service_json(&self, service: &str) -> Option<bytes::Bytes> {
        self.openapi_services
            .get_or_init(|| {
                crate::openapi::services(self)
                    .into_iter()
                    .map(|s| {
                        let doc =
                            crate::openapi::document_for(self, self.openapi_title(), Some(&s));
                        (
                            s,
                            serde_json::to_vec_pretty(&doc).unwrap_or_default().into(),
                        )
                    })
                    .collect()
            })
            .get(service)
            .cloned()
    }

    /// The gateway's metrics, once this snapshot was installed (none before: nothing is
    /// counted for a snapshot that never served).
    pub fn metrics(&self) -> Option<&Arc<crate::telemetry::Metrics>> {
        self.metrics.get()
    }

    /// Whether `other` was built from the same config and descriptors (a reflection poll that
    /// found nothing new need not swap).
    pub fn same_inputs(&self, other: &Snapshot) -> bool {
        serde_json::to_string(&self.config).ok() == serde_json::to_string(&other.config).ok()
            && self.registry.pool().encode_to_vec() == other.registry.pool().encode_to_vec()
    }

    /// Points what this snapshot counts (backend calls, rate-limit decisions) at `metrics`,
    /// and its backend calls' spans at `tracer`.
    fn install_telemetry(
        &self,
        metrics: &Arc<crate::telemetry::Metrics>,
        tracer: Option<&Arc<crate::telemetry::Tracer>>,
    ) {
        self.upstream.set_metrics(metrics.clone());
        let _ = self.metrics.set(metrics.clone());
        metrics.backends.watch(self.upstream.clone());
        if let Some(t) = tracer {
            self.upstream.set_tracer(t.clone());
            let _ = self.tracer.set(t.clone());
        }
        if let Some(l) = &self.limiter {
            l.set_metrics(metrics.clone());
        }
        if let Some(c) = &self.cache {
            c.set_metrics(metrics.clone());
        }
    }

    /// This snapshot with `policy` added to the chain's `stage` (after the policies already
    /// there): it applies to every call of every door.
    pub fn with_policy(mut self, stage: Stage, policy: Arc<dyn Policy>) -> Self {
        self.outbound.chain = self.outbound.chain.with(stage, policy);
        self
    }

    /// A human-readable listing of what this snapshot serves (for `--check` and startup).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(auth) = &self.config.auth {
            let mut how = Vec::new();
            if let (Some(j), Some(v)) = (&auth.jwt, &self.jwt) {
                how.push(format!(
                    "JWTs of {} ({} signing keys loaded)",
                    j.issuer,
                    v.key_count()
                ));
            }
            if let Some(k) = &auth.api_keys {
                how.push(format!("{} API keys", k.keys.len()));
            }
            if auth.client_certificates {
                how.push("client certificates".into());
            }
            out.push_str(&format!("callers identified by {}\n", how.join(", ")));
        }
        let rules = self.config.authorization.clone().unwrap_or_default();
        if self.config.auth.is_some() || self.config.authorization.is_some() {
            let default = match rules.default {
                Some(crate::config::DefaultRule::Anonymous) => "anyone",
                Some(crate::config::DefaultRule::Authenticated) => "identified callers",
                None if self.config.auth.is_some() => "identified callers",
                None => "anyone",
            };
            out.push_str(&format!(
                "authorization: {} method rules, {} operation rules, other methods open to {default}\n",
                rules.methods.len(),
                rules.operations.len()
            ));
        }
        if let Some(l) = &self.limiter
            && let Some(store) = &self.limit_store
        {
            out.push_str(&format!("rate limits, counted {}:\n", store.describe()));
            for line in l.describe() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if let Some(network) = self
            .config
            .access
            .as_ref()
            .and_then(crate::auth::Network::new)
        {
            out.push_str(&network.describe());
            out.push('\n');
        }
        if let Some(cors) = &self.config.cors {
            out.push_str(&format!("CORS: origins {}\n", cors.origins.join(", ")));
        }
        for (svc, backend) in &self.services {
            let origin = self.registry.service_origin(svc.full_name()).unwrap_or("?");
            out.push_str(&format!(
                "service {} -> backend {backend:?} (from {origin})\n",
                svc.full_name()
            ));
        }
        let mut lines: Vec<String> = self
            .routes
            .routes()
            .map(|(m, t, target)| format!("  {:<6} {t}  ->  {}", m.as_str(), target.full_name))
            .collect();
        lines.sort();
        out.push_str(&format!("{} REST routes:\n", lines.len()));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        if !self.skipped_routes.is_empty() {
            out.push_str(&format!(
                "{} HTTP bindings left out (rest.strict refuses them instead):\n",
                self.skipped_routes.len()
            ));
            for s in &self.skipped_routes {
                out.push_str(&format!("  {s}\n"));
            }
        }
        if let Some(ops) = &self.operations {
            out.push_str(&format!("{} operations:\n", ops.len()));
            for op in ops.iter() {
                out.push_str(&format!(
                    "  {:<12} {}  ({})\n",
                    op.kind.to_string(),
                    op.name,
                    &op.id[..12]
                ));
            }
        }
        let mut eps: Vec<String> = self
            .endpoints
            .routes()
            .map(|(m, t, ep)| format!("  {:<6} {t}  ->  {}", m.as_str(), ep.operation.name))
            .collect();
        eps.sort();
        if !eps.is_empty() {
            out.push_str(&format!("{} operation endpoints:\n", eps.len()));
            for l in eps {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// The snapshot new requests run on; [`Current::store`] swaps it whole (requests already
/// admitted keep theirs).
#[derive(Debug)]
pub struct Current {
    inner: RwLock<Arc<Snapshot>>,
    /// The gateway's metrics: they outlive every snapshot.
    metrics: Arc<crate::telemetry::Metrics>,
    /// Where spans go, when `telemetry.otlp` was configured at startup (changing it needs a
    /// restart).
    tracer: Option<Arc<crate::telemetry::Tracer>>,
}

impl Current {
    /// Holds `snapshot`, and starts exporting spans when its config says where to (inside a
    /// tokio runtime; an exporter that cannot start is logged and left out).
    pub fn new(snapshot: Snapshot) -> Self {
        let metrics = Arc::new(crate::telemetry::Metrics::new());
        let tracer =
            match crate::telemetry::Tracer::start(&snapshot.config.telemetry, metrics.clone()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "spans will not be exported");
                    None
                }
            };
        snapshot.install_telemetry(&metrics, tracer.as_ref());
        Self {
            inner: RwLock::new(Arc::new(snapshot)),
            metrics,
            tracer,
        }
    }

    /// Where spans go, if they are exported.
    pub fn tracer(&self) -> Option<&Arc<crate::telemetry::Tracer>> {
        self.tracer.as_ref()
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<crate::telemetry::Metrics> {
        &self.metrics
    }

    /// The snapshot a new request runs on.
    pub fn load(&self) -> Arc<Snapshot> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the snapshot for requests admitted from now on.
    pub fn store(&self, snapshot: Snapshot) {
        snapshot.install_telemetry(&self.metrics, self.tracer.as_ref());
        let new = Arc::new(snapshot);
        match self.inner.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

fn suggest(registry: &Registry, wanted: &str) -> String {
    let short = wanted.rsplit('.').next().unwrap_or(wanted);
    let near: Vec<String> = registry
        .services()
        .iter()
        .map(|s| s.full_name().to_string())
        .filter(|n| n.ends_with(short))
        .collect();
    if near.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", near.join(" or "))
    }
}
