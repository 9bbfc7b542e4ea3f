//! Configuration of a BFF's own operations: the operations folder, the operations published as
//! REST endpoints, and persisted operations (trusted documents and APQ).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, HumanDuration};

/// The `operations` section: where the BFF's named GraphQL operations live.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationsConfig {
    /// A folder of `*.graphql` files (relative to the config file); none: no operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// The HTTP method of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EndpointMethod {
    /// Variables from the path and the query string (queries only).
    Get,
    /// Variables from the path and a JSON object body.
    Post,
}

impl EndpointMethod {
    /// As an `http::Method`.
    pub fn http(self) -> http::Method {
        match self {
            EndpointMethod::Get => http::Method::GET,
            EndpointMethod::Post => http::Method::POST,
        }
    }
}

/// One operation published as a REST endpoint (an entry of `endpoints`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Path template, e.g. `/api/home/{userId}`: each `{name}` binds the variable `$name`.
    pub path: String,
    /// The name of an operation of the operations folder.
    pub operation: String,
    /// `GET` (default for queries) or `POST` (default for mutations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<EndpointMethod>,
    /// Return `data.<unwrap>` instead of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrap: Option<String>,
    /// Deadline of the whole operation (default: `deadlines.default`); a client's
    /// `grpc-timeout` header may shorten it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// Which documents the GraphQL endpoint runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersistedMode {
    /// No trusted documents: ids are only known through APQ (when on).
    Off,
    /// Any document runs; the operations folder's documents are also known by id.
    #[default]
    Allow,
    /// Only the operations folder's documents run, by id; any other document is refused.
    PersistedOnly,
}

/// Where APQ documents are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApqStoreKind {
    /// In this process (bounded, with a TTL).
    #[default]
    Memory,
    /// In Redis, shared by the replicas.
    Redis,
}

/// The `persisted` section: trusted documents and automatic persisted queries.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedConfig {
    /// `off`, `allow` (default) or `persisted_only`.
    #[serde(default)]
    pub mode: PersistedMode,
    /// Automatic persisted queries (Apollo's protocol): clients register documents by hash.
    #[serde(default)]
    pub apq: bool,
    /// `memory` (default) or `redis`.
    #[serde(default)]
    pub store: ApqStoreKind,
    /// Redis URL when `store: redis`, e.g. `redis://127.0.0.1:6379`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys (replicas that share documents use the same one).
    #[serde(default = "d_prefix")]
    pub redis_prefix: String,
    /// Most documents kept in memory.
    #[serde(default = "d_max_entries")]
    pub max_entries: u64,
    /// How long a registered document is kept after it was registered.
    #[serde(default = "d_ttl")]
    pub ttl: HumanDuration,
}

fn d_prefix() -> String {
    "portico:apq:".into()
}
fn d_max_entries() -> u64 {
    10_000
}
fn d_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}

impl Default for PersistedConfig {
    fn default() -> Self {
        Self {
            mode: PersistedMode::default(),
            apq: false,
            store: ApqStoreKind::default(),
            redis_url: None,
            redis_prefix: d_prefix(),
            max_entries: d_max_entries(),
            ttl: d_ttl(),
        }
    }
}

/// Checks the BFF sections of `cfg` for what the types cannot say; names the key at fault.
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let p = &cfg.persisted;
    if p.apq && p.mode == PersistedMode::PersistedOnly {
        return Err(ConfigError::invalid(
            cfg,
            "persisted.apq",
            "APQ registers documents sent by clients, which `mode: persisted_only` refuses: \
             turn one of them off",
        ));
    }
    if p.store == ApqStoreKind::Redis && p.apq && p.redis_url.is_none() {
        return Err(ConfigError::invalid(
            cfg,
            "persisted.redis_url",
            "`store: redis` needs a `redis_url` (e.g. redis://127.0.0.1:6379)",
        ));
    }
    if let Some(url) = &p.redis_url
        && !(url.starts_with("redis://") || url.starts_with("rediss://"))
    {
        return Err(ConfigError::invalid(
            cfg,
            "persisted.redis_url",
            format!("{url:?} is not a redis:// URL"),
        ));
    }
    if p.max_entries == 0 {
        return Err(ConfigError::invalid(
            cfg,
            "persisted.max_entries",
            "must be at least 1",
        ));
    }
    if p.ttl.get().is_zero() {
        return Err(ConfigError::invalid(
            cfg,
            "persisted.ttl",
            "must be longer than 0s",
        ));
    }
    if cfg.operations.dir.is_none() {
        if !cfg.endpoints.is_empty() {
            return Err(ConfigError::invalid(
                cfg,
                "endpoints",
                "endpoints publish operations of the operations folder: set `operations.dir`",
            ));
        }
        if p.mode == PersistedMode::PersistedOnly {
            return Err(ConfigError::invalid(
                cfg,
                "persisted.mode",
                "`persisted_only` runs the operations folder's documents: set `operations.dir`",
            ));
        }
    }
    if (cfg.operations.dir.is_some() || p.apq) && !cfg.graphql.enabled {
        return Err(ConfigError::invalid(
            cfg,
            if p.apq { "persisted.apq" } else { "operations" },
            "needs the GraphQL schema: set `graphql.enabled: true`",
        ));
    }
    for (i, ep) in cfg.endpoints.iter().enumerate() {
        if let Some(t) = ep.timeout
            && t.get().is_zero()
        {
            return Err(ConfigError::invalid(
                cfg,
                format!("endpoints[{i}].timeout"),
                "must be longer than 0s",
            ));
        }
        if ep.unwrap.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::invalid(
                cfg,
                format!("endpoints[{i}].unwrap"),
                "must name a root field of the operation",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::parse;

    const BASE: &str = "descriptors: [{file: x.binpb}]\nbackends: { b: { endpoints: [\"http://127.0.0.1:1\"], services: [a.B] } }\n";

    fn check(extra: &str) -> Result<(), String> {
        let cfg = parse(
            &format!("{BASE}{extra}"),
            "bff.yaml",
            std::path::Path::new("/"),
        )
        .map_err(|e| e.to_string())?;
        validate(&cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_allow_without_apq() {
        let cfg = parse(BASE, "bff.yaml", std::path::Path::new("/")).unwrap();
        assert_eq!(cfg.persisted.mode, PersistedMode::Allow);
        assert!(!cfg.persisted.apq);
        assert_eq!(cfg.persisted.max_entries, 10_000);
        assert!(cfg.endpoints.is_empty());
        assert!(cfg.operations.dir.is_none());
        validate(&cfg).unwrap();
    }

    #[test]
    fn full_sections_parse() {
        check(
            "operations: { dir: ops }\n\
             endpoints:\n  - { path: '/api/home/{userId}', operation: Home, method: GET, unwrap: user, timeout: 2s }\n\
             persisted: { mode: allow, apq: true, store: redis, redis_url: 'redis://127.0.0.1:6379', ttl: 1h }\n",
        )
        .unwrap();
    }

    #[test]
    fn contradictions_name_the_key() {
        let e = check("operations: { dir: ops }\npersisted: { mode: persisted_only, apq: true }\n")
            .unwrap_err();
        assert!(e.contains("persisted.apq"), "{e}");
        let e = check("endpoints: [{ path: /a, operation: A }]\n").unwrap_err();
        assert!(
            e.contains("endpoints") && e.contains("operations.dir"),
            "{e}"
        );
        let e = check("persisted: { apq: true, store: redis }\n").unwrap_err();
        assert!(e.contains("persisted.redis_url"), "{e}");
        let e = check("persisted: { mode: persisted_only }\n").unwrap_err();
        assert!(e.contains("persisted.mode"), "{e}");
        let e = check("operations: { dir: ops }\ngraphql: { enabled: false }\n").unwrap_err();
        assert!(e.contains("graphql.enabled"), "{e}");
        let e = check("persisted: { mode: nope }\n").unwrap_err();
        assert!(e.contains("persisted.mode"), "{e}");
        let e =
            check("endpoints: [{ path: /a, operation: A, method: PUT }]\noperations: {dir: o}\n")
                .unwrap_err();
        assert!(e.contains("endpoints[0].method"), "{e}");
    }
}
