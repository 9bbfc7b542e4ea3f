//! The `rate_limits` section: how much each caller may call, where the counts are kept
//! (this process, or Redis for every replica), and what happens when Redis is not there.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::access::Cidr;
use super::units::HumanDuration;

/// Rate limits and quotas.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Where the counts are kept: `memory` (this process) or `redis` (shared by replicas).
    #[serde(default)]
    pub store: LimitStore,
    /// The Redis store (with `store: redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisLimitConfig>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` is believed (also read from the top-level
    /// `trusted_proxies`; both lists count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<Cidr>,
    /// Whether answers under the limit carry the `RateLimit-Policy` and `RateLimit` headers
    /// too (refusals always do).
    #[serde(default = "d_true")]
    pub headers: bool,
    /// The rules; a request must pass every rule that applies to it.
    #[serde(default)]
    pub rules: Vec<LimitRule>,
    /// Limits per API-key plan (`auth.api_keys.keys[].plan`), each keyed by the caller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plans: BTreeMap<String, Vec<PlanLimit>>,
    /// The most keys the in-process store tracks at once (least recently used go first).
    #[serde(default = "d_max_keys")]
    pub max_keys: u64,
}

fn d_true() -> bool {
    true
}

fn d_max_keys() -> u64 {
    1_000_000
}

/// Where rate-limit counts are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitStore {
    /// In this process (each replica counts on its own).
    #[default]
    Memory,
    /// In Redis: every replica shares the counts.
    Redis,
}

/// The Redis store of rate limits.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisLimitConfig {
    /// `redis://host:port[/db]` (or `rediss://` for TLS).
    pub url: String,
    /// Prefix of every key the limiter writes.
    #[serde(default = "d_prefix")]
    pub prefix: String,
    /// How long one decision may wait for Redis before `on_error` decides instead.
    #[serde(default = "d_timeout")]
    pub timeout: HumanDuration,
    /// What a request gets when Redis cannot decide: `allow` (logged, counted) or `deny` (503).
    #[serde(default)]
    pub on_error: OnError,
    /// While Redis is unreachable, count in this process instead of applying `on_error`.
    #[serde(default)]
    pub fallback_to_memory: bool,
}

fn d_prefix() -> String {
    "portico:rl:".into()
}

fn d_timeout() -> HumanDuration {
    HumanDuration(Duration::from_millis(50))
}

/// What to do when the Redis store cannot decide.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Let the request through (and log a warning).
    #[default]
    Allow,
    /// Refuse it with 503.
    Deny,
}

/// One rate-limit rule.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// The rule's name: in the `RateLimit` headers, in logs and in Redis keys.
    pub name: String,
    /// What is counted separately: one part or several (`[subject, method]`).
    pub key: KeySpec,
    /// Only calls to these gRPC methods count (each call, whichever door planned it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Only these named GraphQL operations count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// How many per `per`.
    pub limit: u64,
    /// The period of `limit`.
    pub per: HumanDuration,
    /// How many may come at once (default: `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// What one request costs: `1`, or `graphql` (a GraphQL operation's estimated cost).
    #[serde(default)]
    pub cost: CostKind,
}

/// A limit of an API-key plan; it counts each caller of the plan separately.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanLimit {
    /// The name in headers and logs (default `<plan>-<per>`, e.g. `gold-1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How many per `per` (a daily quota is `per: 1d`).
    pub limit: u64,
    /// The period.
    pub per: HumanDuration,
    /// How many may come at once (default: `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// What one request costs.
    #[serde(default)]
    pub cost: CostKind,
}

/// What one request costs against a limit.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// Every request (or call) costs 1.
    #[default]
    #[serde(rename = "1", alias = "one")]
    One,
    /// A GraphQL operation costs its estimated cost (`graphql.limits`); other requests 1.
    Graphql,
}

/// One part of a rule's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyPart {
    /// The caller (a JWT's `sub`, an API key's id, a certificate's subject); anonymous
    /// callers are counted by their address.
    Subject,
    /// An API key's id (the rule applies to callers with a key only).
    ApiKey,
    /// An API key's plan (callers with a plan only).
    Plan,
    /// A client certificate's subject (callers identified by one only).
    Certificate,
    /// The client's address (see `trusted_proxies`).
    Ip,
    /// A request header's value (requests carrying it only).
    Header(String),
    /// The gRPC method called: each method counted on its own.
    Method,
    /// The REST route (`GET /v1/users/{id}`): calls planned by REST routes only.
    Route,
    /// The named GraphQL operation.
    Operation,
    /// Everything together: one count for all.
    Global,
}

impl KeyPart {
    const NAMES: &'static str =
        "subject, api_key, plan, certificate, ip, header:<name>, method, route, operation, global";

    fn parse(s: &str) -> Result<KeyPart, String> {
        Ok(match s {
            "subject" => KeyPart::Subject,
            "api_key" => KeyPart::ApiKey,
            "plan" => KeyPart::Plan,
            "certificate" => KeyPart::Certificate,
            "ip" => KeyPart::Ip,
            "method" => KeyPart::Method,
            "route" => KeyPart::Route,
            "operation" => KeyPart::Operation,
            "global" => KeyPart::Global,
            other => match other.strip_prefix("header:") {
                Some(h) if http::HeaderName::from_bytes(h.as_bytes()).is_ok() => {
                    KeyPart::Header(h.to_ascii_lowercase())
                }
                _ => {
                    return Err(format!(
                        "unknown key {other:?}: use {} (or a list of them)",
                        Self::NAMES
                    ));
                }
            },
        })
    }
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPart::Subject => f.write_str("subject"),
            KeyPart::ApiKey => f.write_str("api_key"),
            KeyPart::Plan => f.write_str("plan"),
            KeyPart::Certificate => f.write_str("certificate"),
            KeyPart::Ip => f.write_str("ip"),
            KeyPart::Header(h) => write!(f, "header:{h}"),
            KeyPart::Method => f.write_str("method"),
            KeyPart::Route => f.write_str("route"),
            KeyPart::Operation => f.write_str("operation"),
            KeyPart::Global => f.write_str("global"),
        }
    }
}

/// A rule's key: one part, or several combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec(pub Vec<KeyPart>);

impl<'de> Deserialize<'de> for KeySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let parts = match Raw::deserialize(d).map_err(|_| {
            de::Error::custom(format!(
                "a key is one of {} or a list of them",
                KeyPart::NAMES
            ))
        })? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        };
        if parts.is_empty() {
            return Err(de::Error::custom("the key needs at least one part"));
        }
        parts
            .iter()
            .map(|p| KeyPart::parse(p.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(KeySpec)
            .map_err(de::Error::custom)
    }
}

impl Serialize for KeySpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        parts.serialize(s)
    }
}

impl RateLimitsConfig {
    /// Checks what serde cannot; the error names the key under `rate_limits`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match (self.store, &self.redis) {
            (LimitStore::Redis, None) => {
                return Err((
                    "redis".into(),
                    "store: redis needs a redis section with its url".into(),
                ));
            }
            (_, Some(r)) => {
                if !(r.url.starts_with("redis://")
                    || r.url.starts_with("rediss://")
                    || r.url.starts_with("unix://"))
                {
                    return Err((
                        "redis.url".into(),
                        format!("{:?} is not a Redis URL: write redis://host:6379", r.url),
                    ));
                }
                if r.timeout.get().is_zero() {
                    return Err(("redis.timeout".into(), "must be more than zero".into()));
                }
            }
            _ => {}
        }
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = |k: &str| format!("rules[{i}].{k}");
            check_name(&r.name).map_err(|m| (at("name"), m))?;
            if !names.insert(r.name.clone()) {
                return Err((at("name"), format!("two rules are named {:?}", r.name)));
            }
            check_rate(r.limit, r.per, r.burst).map_err(|(k, m)| (at(k), m))?;
            let per_call =
                !r.methods.is_empty() || r.has_part(KeyPart::Method) || r.has_part(KeyPart::Route);
            let per_operation = !r.operations.is_empty() || r.has_part(KeyPart::Operation);
            if per_call && per_operation {
                return Err((
                    at("key"),
                    "a rule counts either backend calls (methods, key method or route) or GraphQL operations (operations, key operation), not both".into(),
                ));
            }
            if per_call && r.cost == CostKind::Graphql {
                return Err((
                    at("cost"),
                    "cost: graphql charges a GraphQL operation; a rule on backend calls charges each call 1".into(),
                ));
            }
        }
        for (plan, limits) in &self.plans {
            check_name(plan).map_err(|m| (format!("plans.{plan}"), m))?;
            for (i, l) in limits.iter().enumerate() {
                let at = |k: &str| format!("plans.{plan}[{i}].{k}");
                if let Some(n) = &l.name {
                    check_name(n).map_err(|m| (at("name"), m))?;
                }
                check_rate(l.limit, l.per, l.burst).map_err(|(k, m)| (at(k), m))?;
            }
        }
        Ok(())
    }
}

impl LimitRule {
    /// Whether the key has `part`.
    pub fn has_part(&self, part: KeyPart) -> bool {
        self.key.0.contains(&part)
    }
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{n:?}: a name is letters, digits, '-', '_' and '.' (it goes into headers and Redis keys)"
        ));
    }
    Ok(())
}

fn check_rate(
    limit: u64,
    per: HumanDuration,
    burst: Option<u64>,
) -> Result<(), (&'static str, String)> {
    if limit == 0 {
        return Err((
            "limit",
            "must be at least 1 (to refuse everything, use access lists or authorization)".into(),
        ));
    }
    if per.get() < Duration::from_millis(1) {
        return Err(("per", "must be at least 1ms".into()));
    }
    if per.get() > Duration::from_secs(366 * 86_400) {
        return Err(("per", "must be at most a year".into()));
    }
    if burst == Some(0) {
        return Err(("burst", "must be at least 1".into()));
    }
    if per.get().as_nanos() / u128::from(limit) == 0 {
        return Err((
            "limit",
            "more than one per nanosecond: use a longer period".into(),
        ));
    }
    Ok(())
}
