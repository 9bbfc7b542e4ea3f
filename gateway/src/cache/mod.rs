//! The response cache: the cache stage of the policy chain, built from `cache`. It runs after
//! identify, authorize and limit, so a call is answered from the cache only once it was
//! allowed; every door's calls pass through it (REST routes, GraphQL root fields, links and
//! batch calls, operation endpoints).
//!
//! - **What is cached**: replies of the unary methods listed in `cache.methods`, each safe to
//!   cache (`idempotency_level = NO_SIDE_EFFECTS` in its descriptor, or `cacheable: true`).
//!   Never a failure, a static fallback, or a reply the backend marked `no-store` (or
//!   `private`, for a method whose scope is public); the backend's `max-age` replaces the
//!   configured TTL ([`control`]).
//! - **The key** ([`key`]): the method, the request message's bytes, and its scope: nothing
//!   more for `public`, the caller for `subject` (calls without one are not stored), the API
//!   key for `api_key`; plus the values of the metadata named in `vary`.
//! - **Coalescing** ([`inflight`]): concurrent identical calls to any method without side
//!   effects share one in-flight call, listed in `cache.methods` or not (unlisted ones keyed by
//!   everything the backend would receive, so only truly identical calls share).
//! - **The tier** ([`store`]): moka in this process, bounded by entries and bytes.

pub mod control;
pub mod inflight;
pub mod key;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use prost_reflect::DescriptorPool;

use self::control::Directives;
use self::inflight::{InFlight, Turn, follow};
use self::key::{Key, KeyBuilder};
use self::store::{Entry, MemoryTier};
use crate::config::{CacheConfig, CacheScope};
use crate::descriptors::{Idempotency, idempotency};
use crate::error::GatewayError;
use crate::request::policy::{CallSite, Next, Outcome, Policy};
use crate::request::{IdentityKind, RequestCtx};
use crate::telemetry::Metrics;
use crate::upstream::{Call, CallBody, Payload, ReplyForm, Targets, UpstreamError};

/// How the calls of one method are treated.
#[derive(Debug)]
struct Rule {
    /// The backend serving it (for the errors of a reply that does not decode).
    backend: Arc<str>,
    /// How its replies are stored; none: coalesced only.
    store: Option<StoreRule>,
}

#[derive(Debug)]
struct StoreRule {
    ttl: Duration,
    scope: CacheScope,
    vary: Vec<String>,
}

/// The cache stage.
#[derive(Debug)]
pub struct ResponseCache {
    rules: HashMap<String, Rule>,
    memory: MemoryTier,
    inflight: InFlight,
    metrics: OnceLock<Arc<Metrics>>,
}

/// A config problem: the key and what is wrong.
pub type CacheConfigError = (String, String);

impl ResponseCache {
    /// The cache of a snapshot: `cfg`'s methods checked against the descriptors (`pool`) and
    /// the call targets.
    pub fn new(
        cfg: &CacheConfig,
        pool: &DescriptorPool,
        targets: &Targets,
    ) -> Result<Self, CacheConfigError> {
        let mut rules = HashMap::new();
        // Coalescing: every unary method without side effects.
        for t in targets.iter() {
            let m = &t.method;
            if !m.is_client_streaming()
                && !m.is_server_streaming()
                && idempotency(m) == Idempotency::NoSideEffects
            {
                rules.insert(
                    m.full_name().to_string(),
                    Rule {
                        backend: t.backend.clone(),
                        store: None,
                    },
                );
            }
        }
        for (name, mc) in &cfg.methods {
            let key = format!("cache.methods.{name}");
            let method = name
                .rsplit_once('.')
                .and_then(|(service, method)| {
                    pool.get_service_by_name(service)?
                        .methods()
                        .find(|m| m.name() == method)
                })
                .ok_or_else(|| {
                    (
                        key.clone(),
                        format!(
                            "no method {name} in the descriptors (write package.Service.Method)"
                        ),
                    )
                })?;
            if method.is_client_streaming() || method.is_server_streaming() {
                return Err((key, "streaming methods are not cached".into()));
            }
            if idempotency(&method) != Idempotency::NoSideEffects && !mc.cacheable {
                return Err((
                    key,
                    format!(
                        "{name} may have side effects (its descriptor does not say idempotency_level = NO_SIDE_EFFECTS): set cacheable: true if its answers may be shared"
                    ),
                ));
            }
            if mc.ttl.get().is_zero() {
                return Err((format!("{key}.ttl"), "must be more than 0s".into()));
            }
            let backend = targets
                .get(name)
                .map(|t| t.backend.clone())
                .ok_or_else(|| (key.clone(), format!("no backend serves {name}")))?;
            let mut vary = Vec::new();
            for h in &mc.vary {
                let lower = h.to_ascii_lowercase();
                if tonic::metadata::AsciiMetadataKey::from_bytes(lower.as_bytes()).is_err() {
                    return Err((format!("{key}.vary"), format!("{h:?} is not a header name")));
                }
                vary.push(lower);
            }
            rules.insert(
                name.clone(),
                Rule {
                    backend,
                    store: Some(StoreRule {
                        ttl: mc.ttl.get(),
                        scope: mc.scope,
                        vary,
                    }),
                },
            );
        }
        Ok(Self {
            rules,
            memory: MemoryTier::new(&cfg.memory),
            inflight: InFlight::default(),
            metrics: OnceLock::new(),
        })
    }

    /// Counts lookups in `metrics` (once).
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The in-process tier.
    pub fn memory(&self) -> &MemoryTier {
        &self.memory
    }

    fn count(&self, method: &str, result: &'static str) {
        if let Some(m) = self.metrics.get() {
            m.cache_lookup(method, result);
        }
    }

    /// The key of `call`, and whether its reply may be stored under it.
    fn key_of(&self, rule: &Rule, ctx: &RequestCtx, call: &Call, request: &[u8]) -> (Key, bool) {
        let b = KeyBuilder::new(call.method.full_name(), request);
        let Some(store) = &rule.store else {
            return (b.with_all_metadata(&call.metadata).build(), false);
        };
        let b = b.with_metadata(&call.metadata, &store.vary);
        let caller = match store.scope {
            CacheScope::Public => return (b.build(), true),
            CacheScope::Subject => ctx.identity.as_deref(),
            CacheScope::ApiKey => ctx
                .identity
                .as_deref()
                .filter(|id| id.kind == IdentityKind::ApiKey),
        };
        match caller {
            Some(id) => (
                b.with("kind", Some(id.kind.as_str().as_bytes()))
                    .with("subject", Some(id.subject.as_bytes()))
                    .build(),
                true,
            ),
            // No caller to file it under: not stored, coalesced only with calls the backend
            // could not tell apart.
            None => (b.with_all_metadata(&call.metadata).build(), false),
        }
    }

    async fn serve<'a>(
        &'a self,
        rule: &'a Rule,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        mut call: Call,
        next: Next<'a>,
    ) -> Result<Outcome, GatewayError> {
        let request = match &call.body {
            CallBody::Unary(m) => m.encode_to_vec(),
            CallBody::Stream(_) => return next.run(ctx, site, call).await,
        };
        let method = call.method.full_name().to_string();
        let desc = call.method.output();
        let form = call.reply_form;
        let (key, storable) = self.key_of(rule, ctx, &call, &request);
        if storable && let Some(entry) = self.memory.get(&key).await {
            self.count(&method, "hit");
            return Ok(Outcome::Unary(entry.reply(form, &desc, &rule.backend)?));
        }
        // The bytes are what is kept and shared; each caller gets its own form.
        call.reply_form = ReplyForm::Wire;
        let deadline = call.deadline;
        let timeout = call.remaining();
        let mut next = Some(next);
        // A leader that went away lets a follower lead; after a few, call without sharing.
        for _ in 0..3 {
            match self.inflight.join(&key) {
                Turn::Lead(leader) => {
                    let Some(next) = next.take() else { break };
                    if rule.store.is_some() {
                        self.count(&method, "miss");
                    }
                    let fetched = self
                        .fetch(rule, storable, &key, ctx, site, call, next)
                        .await;
                    leader.finish(fetched.clone());
                    return Ok(Outcome::Unary(fetched?.reply(
                        form,
                        &desc,
                        &rule.backend,
                    )?));
                }
                Turn::Follow(slot) => match tokio::time::timeout_at(deadline, follow(slot)).await {
                    Err(_) => {
                        return Err(GatewayError::Upstream(UpstreamError::DeadlineExceeded {
                            backend: rule.backend.to_string(),
                            timeout,
                        }));
                    }
                    Ok(Some(shared)) => {
                        self.count(&method, "coalesced");
                        return Ok(Outcome::Unary(shared?.reply(form, &desc, &rule.backend)?));
                    }
                    Ok(None) => continue,
                },
            }
        }
        call.reply_form = form;
        match next {
            Some(next) => next.run(ctx, site, call).await,
            None => Err(GatewayError::Internal("the cache lost its call".into())),
        }
    }

    /// Makes the call (as the leader) and keeps its reply when it may be stored.
    #[allow(clippy::too_many_arguments)]
    async fn fetch<'a>(
        &'a self,
        rule: &'a Rule,
        storable: bool,
        key: &Key,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> Result<Arc<Entry>, GatewayError> {
        let reply = next.run(ctx, site, call).await?.into_unary()?;
        let (bytes, decoded) = match reply.payload {
            Payload::Wire(b) => (b, None),
            Payload::Decoded(m) => (m.encode_to_vec().into(), Some(m)),
        };
        let fresh_for = match (&rule.store, storable && !reply.fallback) {
            (Some(store), true) => {
                let d = Directives::of(&reply.metadata);
                let private = d.private && store.scope == CacheScope::Public;
                if d.no_store || private {
                    Duration::ZERO
                } else {
                    d.max_age.unwrap_or(store.ttl)
                }
            }
            _ => Duration::ZERO,
        };
        let mut entry = Entry::new(bytes, reply.metadata, fresh_for).fallback(reply.fallback);
        if let Some(m) = decoded {
            entry = entry.decoded(m);
        }
        let entry = Arc::new(entry);
        if !fresh_for.is_zero() {
            self.memory.put(key.clone(), entry.clone()).await;
        }
        Ok(entry)
    }
}

impl Policy for ResponseCache {
    fn name(&self) -> &str {
        "cache"
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        match self.rules.get(call.method.full_name()) {
            Some(rule) => self.serve(rule, ctx, site, call, next).boxed(),
            None => next.run(ctx, site, call),
        }
    }
}
