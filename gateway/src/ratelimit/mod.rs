//! Rate limits and quotas: the limit stage of the policy chain, built from `rate_limits`.
//!
//! Each rule counts something (its key: the caller, the client address, a header, the method,
//! the route, the operation, or a combination) at one of three moments:
//! - per request, in [`Policy::on_request`], for rules without a method or operation scope
//!   (and the limits of API-key plans);
//! - per backend call, in [`Policy::on_call`], for rules scoped to methods or keyed by method
//!   or route: every call counts, whichever door planned it (a GraphQL query making three calls
//!   to a limited method is charged three);
//! - per GraphQL operation, when it is about to run ([`Access::Execute`]), for rules scoped to
//!   operations or keyed by operation, and for rules charging the operation's estimated cost
//!   (`cost: graphql`; requests through other doors are charged 1 when they arrive).
//!
//! All the rules of one moment are decided together by the store ([`memory`] in this process,
//! [`redis`] shared by replicas), all or nothing: the strictest decides, and a refused request
//! is charged to none of them. Over a limit: 429 / `RATE_LIMITED` with `Retry-After` and the
//! `RateLimit` headers ([`headers`]); under it, the headers on the answer too.

pub mod gcra;
pub mod headers;
pub mod memory;
pub mod redis;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::request::Parts;
use sha2::{Digest, Sha256};

pub use headers::{LimitNotes, LimitStatus};

use self::gcra::{Rate, Verdict};
use self::memory::MemoryStore;
use self::redis::RedisStore;
use crate::config::{CostKind, KeyPart, LimitStore, OnError, RateLimitsConfig};
use crate::error::{ErrorKind, GatewayError};
use crate::request::policy::{Access, CallSite, Next, Outcome, Policy};
use crate::request::{Door, IdentityKind, RequestCtx};
use crate::upstream::{Call, whole_secs};

/// One key to decide on: the rule's key for this request, its rate, what the request costs.
#[derive(Clone, Debug)]
pub struct Check {
    /// The key (rule name and key parts).
    pub key: String,
    /// The rule's rate.
    pub rate: Rate,
    /// What the request costs.
    pub cost: u64,
}

/// When a rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    Request,
    Call,
    Operation,
}

/// A rule, compiled.
#[derive(Debug)]
struct Rule {
    name: Arc<str>,
    parts: Vec<KeyPart>,
    moment: Moment,
    methods: HashSet<String>,
    operations: HashSet<String>,
    /// For a plan's limit: the plan.
    plan: Option<String>,
    rate: Rate,
    cost: CostKind,
}

/// Where the counts are (kept across reloads that leave the store's settings alone).
#[derive(Debug)]
pub enum Store {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis.
    Redis {
        /// The store.
        redis: RedisStore,
        /// What a request gets when Redis cannot decide.
        on_error: OnError,
        /// The in-process store that decides while Redis cannot, if configured.
        fallback: Option<MemoryStore>,
        /// The settings it was built from (a reload with other settings builds a new one).
        settings: String,
    },
}

impl Store {
    /// The store `cfg` asks for.
    pub fn new(cfg: &RateLimitsConfig) -> Result<Store, (String, String)> {
        match (cfg.store, &cfg.redis) {
            (LimitStore::Redis, Some(r)) => Ok(Store::Redis {
                redis: RedisStore::new(r).map_err(|m| ("rate_limits.redis.url".to_string(), m))?,
                on_error: r.on_error,
                fallback: r.fallback_to_memory.then(|| MemoryStore::new(cfg.max_keys)),
                settings: Self::settings(cfg),
            }),
            _ => Ok(Store::Memory(MemoryStore::new(cfg.max_keys))),
        }
    }

    fn settings(cfg: &RateLimitsConfig) -> String {
        format!("{:?} {:?} {}", cfg.store, cfg.redis, cfg.max_keys)
    }

    /// Whether this store is the one `cfg` asks for (then a reload keeps it, and its counts).
    pub fn serves(&self, cfg: &RateLimitsConfig) -> bool {
        match self {
            Store::Memory(_) => cfg.store == LimitStore::Memory,
            Store::Redis { settings, .. } => *settings == Self::settings(cfg),
        }
    }

    /// `memory` or the Redis URL, for the startup listing.
    pub fn describe(&self) -> String {
        match self {
            Store::Memory(_) => "in this process".into(),
            Store::Redis { redis, .. } => format!("in Redis at {}", redis.url()),
        }
    }
}

/// The limit policy of a `rate_limits` section.
#[derive(Debug)]
pub struct Limiter {
    rules: Vec<Rule>,
    store: Arc<Store>,
    headers: bool,
    /// Header names whose values call- and operation-moment rules key on (read once per
    /// request, kept in its notes).
    captured: Vec<String>,
    /// Decisions let through because Redis could not decide (`on_error: allow`).
    let_through: AtomicU64,
    /// When the last warning about Redis was logged (ms after `base`), to log once a second.
    last_warning_ms: AtomicU64,
    base: Instant,
    /// Where decisions are counted (set when the snapshot is installed).
    metrics: std::sync::OnceLock<Arc<crate::telemetry::Metrics>>,
}

impl Limiter {
    /// Counts this limiter's decisions in `metrics` (once).
    pub fn set_metrics(&self, metrics: Arc<crate::telemetry::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    fn count(&self, rule: &Arc<str>, decision: &'static str) {
        if let Some(m) = self.metrics.get() {
            m.rate_limit
                .get_or_create(&crate::telemetry::metrics::LimitLabels {
                    rule: rule.to_string(),
                    decision,
                })
                .inc();
        }
    }

    fn count_store_error(&self, outcome: &'static str) {
        if let Some(m) = self.metrics.get() {
            m.rate_limit_store_errors
                .get_or_create(&crate::telemetry::metrics::StoreErrorLabels { outcome })
                .inc();
        }
    }

    /// The policy of `cfg`, counting in `store`.
    pub fn new(cfg: &RateLimitsConfig, store: Arc<Store>) -> Limiter {
        let mut rules: Vec<Rule> = cfg
            .rules
            .iter()
            .map(|r| {
                let per_call = !r.methods.is_empty()
                    || r.has_part(KeyPart::Method)
                    || r.has_part(KeyPart::Route);
                let per_operation = !r.operations.is_empty() || r.has_part(KeyPart::Operation);
                Rule {
                    name: r.name.as_str().into(),
                    parts: r.key.0.clone(),
                    moment: if per_call {
                        Moment::Call
                    } else if per_operation {
                        Moment::Operation
                    } else {
                        Moment::Request
                    },
                    methods: r.methods.iter().cloned().collect(),
                    operations: r.operations.iter().cloned().collect(),
                    plan: None,
                    rate: Rate::new(r.limit, r.per.get(), r.burst),
                    cost: r.cost,
                }
            })
            .collect();
        for (plan, limits) in &cfg.plans {
            for l in limits {
                let name = l
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{plan}-{}", l.per).replace(' ', ""));
                rules.push(Rule {
                    name: name.into(),
                    parts: vec![KeyPart::Subject],
                    moment: Moment::Request,
                    methods: HashSet::new(),
                    operations: HashSet::new(),
                    plan: Some(plan.clone()),
                    rate: Rate::new(l.limit, l.per.get(), l.burst),
                    cost: l.cost,
                });
            }
        }
        let mut captured: Vec<String> = rules
            .iter()
            .filter(|r| r.moment != Moment::Request)
            .flat_map(|r| r.parts.iter())
            .filter_map(|p| match p {
                KeyPart::Header(h) => Some(h.clone()),
                _ => None,
            })
            .collect();
        captured.sort();
        captured.dedup();
        Limiter {
            rules,
            store,
            headers: cfg.headers,
            captured,
            let_through: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
            base: Instant::now(),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// One line per rule, for the startup listing.
    pub fn describe(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| {
                let what = match (&r.plan, r.moment) {
                    (Some(p), _) => format!("callers on plan {p}"),
                    (None, Moment::Request) => "each request".into(),
                    (None, Moment::Call) => "each backend call".into(),
                    (None, Moment::Operation) => "each GraphQL operation".into(),
                };
                let key: Vec<String> = r.parts.iter().map(ToString::to_string).collect();
                format!(
                    "{}: {} per {} (burst {}) by {}, counting {what}",
                    r.name,
                    r.rate.limit,
                    humantime::format_duration(r.rate.period),
                    r.rate.capacity,
                    key.join("+"),
                )
            })
            .collect()
    }

    /// The key of `rule` for this request, or `None` if the rule does not apply to it.
    fn key(
        &self,
        rule: &Rule,
        ctx: &RequestCtx,
        parts: Option<&Parts>,
        call: Option<(&Call, &CallSite)>,
        operation: Option<&str>,
    ) -> Option<String> {
        let id = ctx.identity.as_deref();
        if let Some(plan) = &rule.plan
            && id.and_then(|i| i.plan.as_ref()) != Some(plan)
        {
            return None;
        }
        if !rule.methods.is_empty() {
            let (call, _) = call?;
            if !rule.methods.contains(call.method.full_name()) {
                return None;
            }
        }
        if !rule.operations.is_empty() && !rule.operations.contains(operation?) {
            return None;
        }
        let mut key = String::with_capacity(64);
        key.push_str(&rule.name);
        let mut push = |value: &str| {
            let _ = write!(key, ":{}:{value}", value.len());
        };
        for part in &rule.parts {
            match part {
                KeyPart::Subject => match id {
                    Some(i) => push(&format!("{}={}", i.kind.as_str(), i.subject)),
                    None => push(&format!("ip={}", ctx.client_ip?)),
                },
                KeyPart::ApiKey => match id {
                    Some(i) if i.kind == IdentityKind::ApiKey => push(&i.subject),
                    _ => return None,
                },
                KeyPart::Plan => push(id?.plan.as_deref()?),
                KeyPart::Certificate => match id {
                    Some(i) if i.kind == IdentityKind::ClientCertificate => push(&i.subject),
                    _ => return None,
                },
                KeyPart::Ip => push(&ctx.client_ip?.to_string()),
                KeyPart::Header(h) => {
                    let value = match parts {
                        Some(p) => p.headers.get(h.as_str()).and_then(|v| v.to_str().ok()),
                        None => {
                            let at = self.captured.iter().position(|c| c == h)?;
                            ctx.limit_notes.as_ref()?.captured(at)
                        }
                    };
                    push(value?);
                }
                KeyPart::Method => push(call?.0.method.full_name()),
                KeyPart::Route => match call? {
                    (_, CallSite::Route(route)) => push(route),
                    _ => return None,
                },
                KeyPart::Operation => push(operation?),
                KeyPart::Global => push("*"),
            }
        }
        // Keys built from long header values stay short in the store.
        if key.len() > 200 {
            let digest = hex::encode(Sha256::digest(key.as_bytes()));
            key = format!("{}:sha256:{digest}", rule.name);
        }
        Some(key)
    }

    /// Decides on `checks` (rule indexes and keys) for the request `ctx`.
    async fn decide(
        &self,
        ctx: &RequestCtx,
        checks: Vec<(usize, Check)>,
    ) -> Result<(), GatewayError> {
        if checks.is_empty() {
            return Ok(());
        }
        let keys: Vec<Check> = checks.iter().map(|(_, c)| c.clone()).collect();
        let verdicts: Vec<Verdict> = match self.store.as_ref() {
            Store::Memory(m) => m.decide(&keys),
            Store::Redis {
                redis,
                on_error,
                fallback,
                ..
            } => match redis.decide(&keys).await {
                Ok(v) => v,
                Err(e) => match (fallback, on_error) {
                    (Some(memory), _) => {
                        self.count_store_error("fallback");
                        self.warn(&e, "counted in this process meanwhile");
                        memory.decide(&keys)
                    }
                    (None, OnError::Allow) => {
                        self.count_store_error("allowed");
                        self.let_through.fetch_add(1, Ordering::Relaxed);
                        self.warn(&e, "requests let through (on_error: allow)");
                        return Ok(());
                    }
                    (None, OnError::Deny) => {
                        self.count_store_error("denied");
                        self.warn(&e, "requests refused (on_error: deny)");
                        return Err(GatewayError::rejected(
                            ErrorKind::LimiterUnavailable,
                            "the rate limiter cannot decide right now; try again shortly",
                        ));
                    }
                },
            },
        };
        let mut verdicts = verdicts;
        if verdicts.iter().any(|v| !v.allowed) {
            // A refused request is charged to no limit: the ones it passed stand as before.
            for ((_, c), v) in checks.iter().zip(verdicts.iter_mut()) {
                if v.allowed {
                    v.remaining = v.remaining.saturating_add(c.cost).min(c.rate.capacity);
                    let charged =
                        std::time::Duration::from_nanos(c.rate.interval_ns.saturating_mul(c.cost));
                    v.reset = v.reset.saturating_sub(charged);
                }
            }
        }
        let statuses: Vec<LimitStatus> = checks
            .iter()
            .zip(&verdicts)
            .map(|((i, c), v)| LimitStatus::new(self.rules[*i].name.clone(), &c.rate, v))
            .collect();
        let refused = checks
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| !v.allowed)
            .max_by_key(|(_, v)| v.retry_after);
        if let Some(notes) = &ctx.limit_notes {
            notes.record(statuses.iter().cloned());
        }
        let Some(((i, check), verdict)) = refused else {
            for (i, _) in &checks {
                self.count(&self.rules[*i].name, "allowed");
            }
            return Ok(());
        };
        let rule = &self.rules[*i];
        self.count(&rule.name, "limited");
        let retry = whole_secs(verdict.retry_after);
        let message = if check.cost > check.rate.capacity {
            format!(
                "rate limit {:?}: this request costs {}, more than the {} the limit allows at once",
                rule.name, check.cost, check.rate.capacity
            )
        } else {
            format!(
                "rate limit {:?} reached ({} per {}); retry in {retry}s",
                rule.name,
                check.rate.limit,
                humantime::format_duration(check.rate.period)
            )
        };
        tracing::info!(rule = %rule.name, retry_after_s = retry, "rate limited");
        let (policy, state) = headers::render(&statuses);
        Err(GatewayError::RateLimited {
            message,
            retry_after: verdict.retry_after,
            policy,
            state,
        })
    }

    /// Logs a Redis failure, at most once a second.
    fn warn(&self, e: &redis::StoreError, what: &str) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %e,
                let_through_total = self.let_through.load(Ordering::Relaxed),
                "the rate-limit store cannot decide: {what}"
            );
        }
    }

    /// Decisions let through because Redis could not decide, since start.
    pub fn let_through(&self) -> u64 {
        self.let_through.load(Ordering::Relaxed)
    }

    fn cost_of(rule: &Rule, graphql_cost: Option<u32>) -> u64 {
        match (rule.cost, graphql_cost) {
            (CostKind::Graphql, Some(c)) => u64::from(c).max(1),
            _ => 1,
        }
    }
}

impl Policy for Limiter {
    fn name(&self) -> &str {
        "rate-limit"
    }

    fn on_request<'a>(
        &'a self,
        parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        async move {
            if ctx.door == Door::Admin {
                return Ok(());
            }
            if self.headers || !self.captured.is_empty() {
                let captured = self
                    .captured
                    .iter()
                    .map(|h| {
                        parts
                            .headers
                            .get(h.as_str())
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    })
                    .collect();
                ctx.limit_notes = Some(Arc::new(LimitNotes::new(captured, self.headers)));
            }
            // A GraphQL operation's cost is known once it is parsed: rules charging it wait.
            let graphql = matches!(ctx.door, Door::Graphql | Door::Endpoint);
            let checks: Vec<(usize, Check)> = self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.moment == Moment::Request)
                .filter(|(_, r)| !(graphql && r.cost == CostKind::Graphql))
                .filter_map(|(i, r)| {
                    let key = self.key(r, ctx, Some(parts), None, None)?;
                    Some((
                        i,
                        Check {
                            key,
                            rate: r.rate,
                            cost: 1,
                        },
                    ))
                })
                .collect();
            self.decide(ctx, checks).await
        }
        .boxed()
    }

    fn on_access<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        access: &'a Access<'a>,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let Access::Execute { operation, cost } = access else {
            return futures::future::ready(Ok(())).boxed();
        };
        let checks: Vec<(usize, Check)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.moment == Moment::Operation
                    || (r.moment == Moment::Request && r.cost == CostKind::Graphql)
            })
            .filter_map(|(i, r)| {
                let key = self.key(r, ctx, None, None, *operation)?;
                Some((
                    i,
                    Check {
                        key,
                        rate: r.rate,
                        cost: Self::cost_of(r, Some(*cost)),
                    },
                ))
            })
            .collect();
        self.decide(ctx, checks).boxed()
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        let checks: Vec<(usize, Check)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.moment == Moment::Call)
            .filter_map(|(i, r)| {
                let key = self.key(r, ctx, None, Some((&call, site)), None)?;
                Some((
                    i,
                    Check {
                        key,
                        rate: r.rate,
                        cost: 1,
                    },
                ))
            })
            .collect();
        if checks.is_empty() {
            return next.run(ctx, site, call);
        }
        async move {
            self.decide(ctx, checks).await?;
            next.run(ctx, site, call).await
        }
        .boxed()
    }
}
