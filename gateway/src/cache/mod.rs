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
//! - **Stale while revalidate**: a method with `stale_while_revalidate` answers from an entry
//!   that just went stale and refreshes it in the background, one call per key.
//! - **Stale if error**: a method with `stale_if_error` keeps its entries that long past their
//!   freshness; a call that fails because the backend is unwell (or its circuit is open, or
//!   its bulkhead full) is answered by such an entry, marked `Fallback::Stale`.
//! - **The edge** ([`notes`]): the calls of a GET request decide its `Cache-Control`, `Age`
//!   and `Vary`, written by the ingress.
//! - **The tiers**: moka in this process, bounded by entries and bytes ([`store`]), and
//!   optionally Redis, shared by replicas ([`redis`]).

pub mod control;
pub mod inflight;
pub mod key;
pub mod notes;
pub mod redis;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::request::Parts;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

use self::control::Directives;
use self::inflight::{InFlight, Turn, follow};
use self::key::{Key, KeyBuilder};
pub use self::notes::CacheNotes;
use self::redis::{Heard, RedisKey, RedisTier};
use self::store::{Entry, MemoryTier};
use crate::config::{CacheConfig, CacheScope};
use crate::descriptors::{Idempotency, idempotency};
use crate::error::GatewayError;
use crate::request::policy::{CallSite, Next, Outcome, Policy};
use crate::request::{Door, IdentityKind, RequestCtx};
use crate::telemetry::Metrics;
use crate::upstream::{
    Call, CallBody, Fallback, Payload, Reply, ReplyForm, Targets, Upstream, UpstreamError,
};

/// How the calls of one method are treated.
#[derive(Debug)]
struct Rule {
    /// The backend serving it (for the errors of a reply that does not decode).
    backend: Arc<str>,
    /// Its request type can hold maps (their entries are sorted for the key).
    has_maps: bool,
    /// How its replies are stored; none: coalesced only.
    store: Option<Arc<StoreRule>>,
}

#[derive(Debug)]
struct StoreRule {
    /// The request type (to read a purge's request JSON).
    input: prost_reflect::MessageDescriptor,
    ttl: Duration,
    scope: CacheScope,
    vary: Vec<String>,
    stale_if_error: Duration,
    stale_while_revalidate: Duration,
}

/// Where entries are kept: memory, and Redis when configured. Cheap to clone (a background
/// revalidation takes its own).
#[derive(Clone, Debug)]
struct Tiers {
    memory: MemoryTier,
    redis: Option<Arc<RedisTier>>,
}

impl Tiers {
    /// Turns a reply into an entry, and keeps it when `store` (the method's rule, when the
    /// call's reply may be stored) and the backend's `cache-control` allow.
    async fn keep(
        &self,
        store: Option<&StoreRule>,
        key: &Key,
        redis_key: Option<RedisKey>,
        reply: Reply,
    ) -> Arc<Entry> {
        let (bytes, decoded) = match reply.payload {
            Payload::Wire(b) => (b, None),
            Payload::Decoded(m) => (m.encode_to_vec().into(), Some(m)),
        };
        let fresh_for = match store {
            Some(store) if reply.fallback.is_none() => {
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
        if let Some(store) = store {
            entry = entry.stale_for(store.stale_if_error.max(store.stale_while_revalidate));
        }
        if let Some(m) = decoded {
            entry = entry.decoded(m);
        }
        let entry = Arc::new(entry);
        if !fresh_for.is_zero() {
            self.memory.put(key.clone(), entry.clone()).await;
            if let (Some(r), Some(rk)) = (&self.redis, redis_key) {
                r.put(rk, &entry).await;
            }
        }
        entry
    }
}

/// The cache stage.
#[derive(Debug)]
pub struct ResponseCache {
    rules: HashMap<String, Rule>,
    /// The reply metadata by which backends purge.
    purge_metadata: String,
    tiers: Tiers,
    inflight: Arc<InFlight>,
    /// For background revalidations, made outside any request's chain.
    upstream: Arc<Upstream>,
    /// The purge listener's state, and what stops it (dropped with the cache).
    heard: tokio::sync::watch::Receiver<Heard>,
    _listener: Option<tokio::sync::oneshot::Sender<()>>,
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
        upstream: Arc<Upstream>,
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
                        has_maps: key::reaches_map(&m.input()),
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
                    has_maps: key::reaches_map(&method.input()),
                    store: Some(Arc::new(StoreRule {
                        input: method.input(),
                        ttl: mc.ttl.get(),
                        scope: mc.scope,
                        vary,
                        stale_if_error: mc.stale_if_error.map(|d| d.get()).unwrap_or_default(),
                        stale_while_revalidate: mc
                            .stale_while_revalidate
                            .map(|d| d.get())
                            .unwrap_or_default(),
                    })),
                },
            );
        }
        if tonic::metadata::AsciiMetadataKey::from_bytes(cfg.purge_metadata.as_bytes()).is_err() {
            return Err((
                "cache.purge_metadata".into(),
                format!("{:?} is not a lowercase metadata name", cfg.purge_metadata),
            ));
        }
        let redis = match &cfg.redis {
            Some(r) => Some(Arc::new(
                RedisTier::new(r).map_err(|e| ("cache.redis.url".to_string(), e))?,
            )),
            None => None,
        };
        let memory = MemoryTier::new(&cfg.memory);
        let (heard_tx, heard) = tokio::sync::watch::channel(Heard::default());
        let listener = redis
            .as_ref()
            .and_then(|r| r.listen(memory.clone(), heard_tx));
        Ok(Self {
            rules,
            purge_metadata: cfg.purge_metadata.clone(),
            heard,
            _listener: listener,
            tiers: Tiers { memory, redis },
            inflight: Arc::default(),
            upstream,
            metrics: OnceLock::new(),
        })
    }

    /// Counts lookups in `metrics` (once).
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Waits until this replica listens for purges published through Redis (at once without
    /// Redis: there is nothing to listen to).
    pub async fn listening(&self) {
        if self.tiers.redis.is_none() {
            return;
        }
        let mut heard = self.heard.clone();
        let _ = heard.wait_for(|h| h.subscribed).await;
    }

    /// How many purges published through Redis this replica applied so far.
    pub fn purges_heard(&self) -> u64 {
        self.heard.borrow().purges
    }

    /// Waits until this replica applied at least `n` purges published through Redis (its own
    /// included).
    pub async fn heard_purges(&self, n: u64) {
        let mut heard = self.heard.clone();
        let _ = heard.wait_for(|h| h.purges >= n).await;
    }

    /// Waits until no call the cache shares is in flight, background revalidations included.
    pub async fn idle(&self) {
        self.inflight.idle().await;
    }

    /// The in-process tier.
    pub fn memory(&self) -> &MemoryTier {
        &self.tiers.memory
    }

    /// Drops the entries of a cached method (`request` JSON: only that request's, whatever
    /// the caller); returns how many. The error names what is wrong (not a cached method, a
    /// request that is not one of its messages).
    pub async fn purge(
        &self,
        method: &str,
        request: Option<&serde_json::Value>,
    ) -> Result<u64, String> {
        let (rule, store) = self
            .rules
            .get(method)
            .and_then(|r| Some((r, r.store.as_ref()?)))
            .ok_or_else(|| format!("{method} is not a cached method (cache.methods)"))?;
        let bytes = match request {
            None => None,
            Some(json) => {
                let text = serde_json::to_vec(json).map_err(|e| e.to_string())?;
                let msg = crate::transcode::decode_json(
                    &store.input,
                    &text,
                    &crate::transcode::DecodeOptions::default(),
                )
                .map_err(|e| format!("request: {e}"))?;
                Some(key::request_bytes(&msg, rule.has_maps))
            }
        };
        let mut n = self
            .tiers
            .memory
            .purge(&KeyBuilder::prefix(method, bytes.as_deref()))
            .await;
        if let Some(r) = &self.tiers.redis {
            n += r.purge(method, bytes.as_deref()).await;
            r.publish_purge(method, bytes.as_deref()).await;
        }
        tracing::info!(
            method,
            request = request.is_some(),
            entries = n,
            "cache purged"
        );
        Ok(n)
    }

    /// Purges what a reply's purge metadata names (values that name nothing cached are
    /// logged and skipped).
    async fn purge_from(&self, outcome: &Result<Outcome, GatewayError>) {
        let Ok(Outcome::Unary(reply)) = outcome else {
            return;
        };
        for value in reply.metadata.get_all(self.purge_metadata.as_str()) {
            let Ok(text) = value.to_str() else { continue };
            let (method, request) = match text.trim().split_once(' ') {
                Some((m, json)) => match serde_json::from_str(json) {
                    Ok(v) => (m, Some(v)),
                    Err(e) => {
                        tracing::warn!(value = text, error = %e, "a purge request that is not JSON");
                        continue;
                    }
                },
                None => (text.trim(), None),
            };
            if let Err(e) = self.purge(method, request.as_ref()).await {
                tracing::warn!(value = text, error = %e, "a purge the cache cannot do");
            }
        }
    }

    fn count(&self, method: &str, result: &'static str) {
        if let Some(m) = self.metrics.get() {
            m.cache_lookup(method, result);
        }
    }

    /// The key of `call`, and whether its reply may be stored under it.
    fn key_of(&self, rule: &Rule, ctx: &RequestCtx, call: &Call, request: &[u8]) -> (Key, bool) {
        let mut b = KeyBuilder::new(call.method.full_name(), request);
        // A split backend's variants may answer differently: each has entries of its own.
        if let Some(variant) = call.backend.as_ref().and_then(|b| b.variant()) {
            b = b.with("variant", Some(variant.as_bytes()));
        }
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

    /// Answers `call` from the cache, from a call in flight, or by making it (and keeping the
    /// reply when it may be stored); a failing backend is answered by a stale entry when the
    /// method allows one.
    async fn serve<'a>(
        &'a self,
        rule: &'a Rule,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        mut call: Call,
        next: Next<'a>,
    ) -> Result<Outcome, GatewayError> {
        let notes = ctx.cache_notes.as_deref();
        let request = match &call.body {
            CallBody::Unary(m) => key::request_bytes(m, rule.has_maps),
            // Keyed as the decoded message would be (the direct decoder's bytes put the URL's
            // fields last), so a purge by request JSON finds it.
            CallBody::Wire(b) => match DynamicMessage::decode(call.method.input(), b.as_ref()) {
                Ok(m) => key::request_bytes(&m, rule.has_maps),
                Err(_) => return next.run(ctx, site, call).await,
            },
            CallBody::Stream(_) | CallBody::Live(_) => {
                if let Some(n) = notes {
                    n.uncacheable();
                }
                return next.run(ctx, site, call).await;
            }
        };
        let method = call.method.full_name().to_string();
        let desc = call.method.output();
        let form = call.reply_form;
        let (key, storable) = self.key_of(rule, ctx, &call, &request);
        let store = rule.store.as_ref().filter(|_| storable);
        let redis_key = match (&self.tiers.redis, store) {
            (Some(r), Some(_)) => Some(r.key(&method, &request, &key)),
            _ => None,
        };
        let mut stale = None;
        let mut found = match store {
            Some(_) => self.tiers.memory.get(&key).await.map(|e| (e, "hit")),
            None => None,
        };
        if found.is_none()
            && let (Some(r), Some(rk)) = (&self.tiers.redis, &redis_key)
            && let Some(entry) = r.get(rk).await
            && entry.age() < entry.keep_for
        {
            let entry = Arc::new(entry);
            self.tiers.memory.put(key.clone(), entry.clone()).await;
            found = Some((entry, "redis_hit"));
        }
        if let Some(store) = store
            && let Some((entry, tier)) = found
        {
            if entry.is_fresh() {
                self.count(&method, tier);
                note_fresh(notes, store, &entry);
                return Ok(Outcome::Unary(entry.reply(form, &desc, &rule.backend)?));
            }
            // Stale, but within stale-while-revalidate: answer now, refresh behind.
            if entry.age() < entry.fresh_for.saturating_add(store.stale_while_revalidate) {
                self.count(&method, "revalidate");
                if let Some(n) = notes {
                    n.fresh(
                        Duration::ZERO,
                        entry.age(),
                        store.scope != CacheScope::Public,
                        &store.vary,
                    );
                }
                let reply = entry.reply(form, &desc, &rule.backend)?;
                self.revalidate(store.clone(), key, redis_key, call);
                return Ok(Outcome::Unary(reply));
            }
            stale = Some(entry);
        }
        // The bytes are what is kept and shared; each caller gets its own form.
        call.reply_form = ReplyForm::Wire;
        let deadline = call.deadline;
        let timeout = call.remaining();
        let mut next = Some(next);
        let mut call = Some(call);
        let mut outcome = None;
        // A leader that went away lets a follower lead; after a few, call without sharing.
        for _ in 0..3 {
            match self.inflight.join(&key) {
                Turn::Lead(leader) => {
                    let (Some(next), Some(call)) = (next.take(), call.take()) else {
                        break;
                    };
                    if store.is_some() {
                        self.count(&method, "miss");
                    }
                    let fetched = self
                        .fetch(store.map(|s| &**s), &key, redis_key, ctx, site, call, next)
                        .await;
                    leader.finish(fetched.clone());
                    outcome = Some(fetched);
                    break;
                }
                Turn::Follow(slot) => match tokio::time::timeout_at(deadline, follow(slot)).await {
                    Err(_) => {
                        outcome = Some(Err(GatewayError::Upstream(
                            UpstreamError::DeadlineExceeded {
                                backend: rule.backend.to_string(),
                                timeout,
                            },
                        )));
                        break;
                    }
                    Ok(Some(shared)) => {
                        self.count(&method, "coalesced");
                        outcome = Some(shared);
                        break;
                    }
                    Ok(None) => continue,
                },
            }
        }
        let Some(outcome) = outcome else {
            if let Some(n) = notes {
                n.uncacheable();
            }
            return match (next, call) {
                (Some(next), Some(mut call)) => {
                    call.reply_form = form;
                    next.run(ctx, site, call).await
                }
                _ => Err(GatewayError::Internal("the cache lost its call".into())),
            };
        };
        // A stale entry beats a failure and a static fallback alike.
        let failed = match &outcome {
            Err(GatewayError::Upstream(e)) => e.allows_fallback(),
            Ok(entry) => entry.fallback == Some(Fallback::Static),
            Err(_) => false,
        };
        if failed && let Some(entry) = stale {
            self.count(&method, "stale");
            tracing::warn!(method = %method, age_s = entry.age().as_secs(), "answering with a stale reply");
            if let Some(n) = notes {
                n.stale(entry.age());
            }
            let mut reply = entry.reply(form, &desc, &rule.backend)?;
            reply.fallback = Some(Fallback::Stale);
            return Ok(Outcome::Unary(reply));
        }
        let entry = match outcome {
            Ok(entry) => entry,
            Err(e) => {
                if let Some(n) = notes {
                    n.uncacheable();
                }
                return Err(e);
            }
        };
        match store {
            Some(store) if !entry.fresh_for.is_zero() => note_fresh(notes, store, &entry),
            _ => {
                if let Some(n) = notes {
                    n.uncacheable();
                }
            }
        }
        Ok(Outcome::Unary(entry.reply(form, &desc, &rule.backend)?))
    }

    /// Makes the call (as the leader) and keeps its reply when it may be stored.
    #[allow(clippy::too_many_arguments)]
    async fn fetch<'a>(
        &'a self,
        store: Option<&StoreRule>,
        key: &Key,
        redis_key: Option<RedisKey>,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> Result<Arc<Entry>, GatewayError> {
        let reply = next.run(ctx, site, call).await?.into_unary()?;
        Ok(self.tiers.keep(store, key, redis_key, reply).await)
    }

    /// Refreshes an entry in the background, once at a time per key: the call goes straight
    /// to the upstream stack (resilience included), with the request's metadata and deadline.
    fn revalidate(
        &self,
        store: Arc<StoreRule>,
        key: Key,
        redis_key: Option<RedisKey>,
        mut call: Call,
    ) {
        let Turn::Lead(leader) = self.inflight.join(&key) else {
            return; // a refresh (or a miss) is already on its way
        };
        call.reply_form = ReplyForm::Wire;
        let (tiers, upstream) = (self.tiers.clone(), self.upstream.clone());
        tokio::spawn(async move {
            let method = call.method.full_name().to_string();
            let outcome = match upstream.unary(call).await {
                Ok(reply) => Ok(tiers.keep(Some(&store), &key, redis_key, reply).await),
                Err(e) => {
                    tracing::warn!(method = %method, error = %e, "a background revalidation failed; the stale entry stays");
                    Err(GatewayError::Upstream(e))
                }
            };
            leader.finish(outcome);
        });
    }
}

/// Notes a fresh entry for the edge headers.
fn note_fresh(notes: Option<&CacheNotes>, store: &StoreRule, entry: &Entry) {
    if let Some(n) = notes {
        n.fresh(
            entry.remaining(),
            entry.age(),
            store.scope != CacheScope::Public,
            &store.vary,
        );
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
        let rule = self.rules.get(call.method.full_name());
        if rule.is_none()
            && let Some(n) = &ctx.cache_notes
        {
            n.uncacheable();
        }
        async move {
            let outcome = match rule {
                Some(rule) => self.serve(rule, ctx, site, call, next).await,
                None => next.run(ctx, site, call).await,
            };
            self.purge_from(&outcome).await;
            outcome
        }
        .boxed()
    }

    fn on_request<'a>(
        &'a self,
        parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        // Only answers to GET (and HEAD) are cacheable at the edge.
        if matches!(parts.method, http::Method::GET | http::Method::HEAD) && ctx.door != Door::Admin
        {
            ctx.cache_notes = Some(Arc::new(CacheNotes::default()));
        }
        futures::future::ready(Ok(())).boxed()
    }
}
