//! Where APQ documents are kept: in memory (moka: bounded, with a TTL) or in Redis (shared by
//! replicas, keys `<prefix><sha256>` with a TTL). A Redis failure is an error the caller logs
//! and gets past (the document is then simply not known), never a panic.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{ApqStoreKind, PersistedConfig};

/// A store failure (Redis unreachable, timed out, or refusing the command).
#[derive(Debug, thiserror::Error)]
#[error("APQ store {store}: {message}")]
pub struct StoreError {
    /// Which store, e.g. `redis://127.0.0.1:6379`.
    pub store: String,
    /// What went wrong.
    pub message: String,
}

/// The APQ document store.
#[derive(Clone)]
pub enum ApqStore {
    /// In this process.
    Memory(Cache<String, Arc<str>>),
    /// In Redis.
    Redis(RedisStore),
}

impl std::fmt::Debug for ApqStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApqStore::Memory(c) => write!(f, "ApqStore::Memory({} entries)", c.entry_count()),
            ApqStore::Redis(r) => write!(f, "ApqStore::Redis({}, prefix {:?})", r.url, r.prefix),
        }
    }
}

/// Documents in Redis, `SET <prefix><hash> <document> EX <ttl>`.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    url: String,
    prefix: String,
    ttl_secs: u64,
}

/// How long a Redis command (or connecting) may take before the store gives up.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl ApqStore {
    /// The store `cfg` describes; a Redis store connects lazily (on first use).
    pub fn new(cfg: &PersistedConfig) -> Result<ApqStore, String> {
        match cfg.store {
            ApqStoreKind::Memory => Ok(ApqStore::Memory(
                Cache::builder()
                    .max_capacity(cfg.max_entries)
                    .time_to_live(cfg.ttl.get())
                    .build(),
            )),
            ApqStoreKind::Redis => {
                let url = cfg.redis_url.clone().unwrap_or_default();
                let client =
                    redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {e}"))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                let conn = ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|e| format!("{url}: {e}"))?;
                Ok(ApqStore::Redis(RedisStore {
                    conn,
                    url,
                    prefix: cfg.redis_prefix.clone(),
                    ttl_secs: cfg.ttl.get().as_secs().max(1),
                }))
            }
        }
    }

    /// The document registered under `hash`, if any.
    pub async fn get(&self, hash: &str) -> Result<Option<Arc<str>>, StoreError> {
        match self {
            ApqStore::Memory(cache) => Ok(cache.get(hash).await),
            ApqStore::Redis(r) => {
                let mut conn = r.conn.clone();
                let key = format!("{}{hash}", r.prefix);
                let got: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| r.error(e))?;
                Ok(got.map(Arc::from))
            }
        }
    }

    /// Registers `document` under `hash`.
    pub async fn put(&self, hash: &str, document: Arc<str>) -> Result<(), StoreError> {
        match self {
            ApqStore::Memory(cache) => {
                cache.insert(hash.to_string(), document).await;
                Ok(())
            }
            ApqStore::Redis(r) => {
                let mut conn = r.conn.clone();
                let key = format!("{}{hash}", r.prefix);
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&*document)
                    .arg("EX")
                    .arg(r.ttl_secs)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| r.error(e))
            }
        }
    }
}

impl RedisStore {
    fn error(&self, e: redis::RedisError) -> StoreError {
        StoreError {
            store: self.url.clone(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn cfg(store: ApqStoreKind, url: Option<&str>, prefix: &str) -> PersistedConfig {
        PersistedConfig {
            apq: true,
            store,
            redis_url: url.map(str::to_string),
            redis_prefix: prefix.to_string(),
            max_entries: 2,
            ttl: HumanDuration(Duration::from_secs(60)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let s = ApqStore::new(&cfg(ApqStoreKind::Memory, None, "")).unwrap();
        assert_eq!(s.get("h").await.unwrap(), None);
        s.put("h", Arc::from("{a}")).await.unwrap();
        assert_eq!(s.get("h").await.unwrap().as_deref(), Some("{a}"));
    }

    #[tokio::test]
    async fn unreachable_redis_is_an_error_not_a_panic() {
        // Port 1 on localhost: nothing listens there.
        let s = ApqStore::new(&cfg(
            ApqStoreKind::Redis,
            Some("redis://127.0.0.1:1"),
            "portico-test:",
        ))
        .unwrap();
        let e = s.get("h").await.unwrap_err();
        assert!(e.to_string().contains("redis://127.0.0.1:1"), "{e}");
        assert!(s.put("h", Arc::from("{a}")).await.is_err());
    }

    #[test]
    fn a_bad_redis_url_is_refused() {
        assert!(ApqStore::new(&cfg(ApqStoreKind::Redis, Some("nope://x"), "")).is_err());
    }
}
