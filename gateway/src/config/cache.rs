//! The `cache` section: which backend calls may be answered from a recent reply, for how
//! long, for whom, and how much memory the cache may hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::units::{ByteSize, HumanDuration};

/// The response cache of upstream calls.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// The in-process tier.
    #[serde(default)]
    pub memory: MemoryTierConfig,
    /// A second tier in Redis, shared by replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisTierConfig>,
    /// The cached methods, keyed by `package.Service.Method`.
    #[serde(default)]
    pub methods: BTreeMap<String, CachedMethodConfig>,
    /// Reply metadata by which a backend purges entries (a mutation's reply saying which
    /// reads it made stale): each value `package.Service.Method`, or that and the request as
    /// JSON after a space.
    #[serde(default = "d_purge_metadata")]
    pub purge_metadata: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory: MemoryTierConfig::default(),
            redis: None,
            methods: BTreeMap::new(),
            purge_metadata: d_purge_metadata(),
        }
    }
}

fn d_purge_metadata() -> String {
    "portico-cache-purge".into()
}

/// Bounds of the in-process tier: entries and bytes (the encoded replies and their keys).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemoryTierConfig {
    /// The most replies kept at once.
    #[serde(default = "d_max_entries")]
    pub max_entries: u64,
    /// The most bytes kept at once.
    #[serde(default = "d_max_bytes")]
    pub max_bytes: ByteSize,
}

impl Default for MemoryTierConfig {
    fn default() -> Self {
        Self {
            max_entries: d_max_entries(),
            max_bytes: d_max_bytes(),
        }
    }
}

fn d_max_entries() -> u64 {
    100_000
}

fn d_max_bytes() -> ByteSize {
    ByteSize(256 << 20)
}

/// The shared tier: replies every replica can answer from. Redis that is slow or down never
/// fails a request: the tier is skipped.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisTierConfig {
    /// `redis://host:port[/db]` (or `rediss://` for TLS).
    pub url: String,
    /// Prefix of every key the cache writes.
    #[serde(default = "d_redis_prefix")]
    pub prefix: String,
    /// How long a lookup may wait for Redis before it counts as a miss.
    #[serde(default = "d_redis_timeout")]
    pub timeout: HumanDuration,
}

fn d_redis_prefix() -> String {
    "portico:cache:".into()
}

fn d_redis_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(20))
}

/// How one method's replies are cached.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CachedMethodConfig {
    /// How long a reply is fresh (the backend may shorten or lengthen it with
    /// `cache-control: max-age=N`, or forbid storing it with `no-store`).
    pub ttl: HumanDuration,
    /// Whose answer it is: the same for everyone, or one per caller.
    #[serde(default)]
    pub scope: CacheScope,
    /// Request headers the answer also depends on (`accept-language`): each value gets its own
    /// entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vary: Vec<String>,
    /// The method is safe to cache though its descriptor does not say `NO_SIDE_EFFECTS`.
    #[serde(default)]
    pub cacheable: bool,
    /// How long past its freshness a reply still answers at once while one call refreshes it
    /// in the background. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate: Option<HumanDuration>,
    /// How long past its freshness a reply may still answer when the backend fails (sick,
    /// circuit open, bulkhead full), marked stale. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error: Option<HumanDuration>,
}

/// Whose answer a cached reply is.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// The same for every caller (anonymous callers included).
    #[default]
    Public,
    /// One per authenticated caller (JWT subject, API key, client certificate); anonymous
    /// calls are not cached.
    Subject,
    /// One per API key; calls without one are not cached.
    ApiKey,
}
