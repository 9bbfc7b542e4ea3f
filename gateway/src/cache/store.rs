//! The in-process tier: moka, bounded by entries and by bytes, each entry expiring when its
//! freshness ends. An entry is a reply's wire bytes and metadata; its decoded message is made
//! once, by the first caller that needs it.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::metadata::MetadataMap;

use super::key::Key;
use crate::config::MemoryTierConfig;
use crate::upstream::{Fallback, Payload, Reply, ReplyForm, UpstreamError};

/// One reply, as the backend sent it.
#[derive(Debug)]
pub struct Entry {
    /// The message's wire bytes.
    pub bytes: Bytes,
    /// The reply's metadata (headers and trailers).
    pub metadata: MetadataMap,
    /// When it arrived.
    pub stored: Instant,
    /// How long it is fresh.
    pub fresh_for: Duration,
    /// How long it is kept: its freshness, then the time it may still answer for a failing
    /// backend (`stale_if_error`).
    pub keep_for: Duration,
    /// The reply was a fallback (never stored; shared with the calls that waited for it).
    pub fallback: Option<Fallback>,
    decoded: OnceLock<Arc<DynamicMessage>>,
}

impl Entry {
    /// An entry for a reply that arrived now.
    pub fn new(bytes: Bytes, metadata: MetadataMap, fresh_for: Duration) -> Self {
        Self {
            bytes,
            metadata,
            stored: Instant::now(),
            fresh_for,
            keep_for: fresh_for,
            fallback: None,
            decoded: OnceLock::new(),
        }
    }

    /// An entry that arrived `age` ago (read from the shared tier), fresh for `fresh_for` and
    /// kept for `keep_for` from its arrival.
    pub fn aged(
        bytes: Bytes,
        metadata: MetadataMap,
        age: Duration,
        fresh_for: Duration,
        keep_for: Duration,
    ) -> Self {
        let mut e = Self::new(bytes, metadata, fresh_for);
        e.stored = Instant::now().checked_sub(age).unwrap_or(e.stored);
        e.keep_for = keep_for;
        e
    }

    /// This entry marked as a fallback, or not.
    pub fn fallback(mut self, fallback: Option<Fallback>) -> Self {
        self.fallback = fallback;
        self
    }

    /// This entry kept `stale_for` past its freshness.
    pub fn stale_for(mut self, stale_for: Duration) -> Self {
        self.keep_for = self.fresh_for.saturating_add(stale_for);
        self
    }

    /// How much longer it is fresh (zero once stale).
    pub fn remaining(&self) -> Duration {
        self.fresh_for.saturating_sub(self.age())
    }

    /// This entry with its message already decoded.
    pub fn decoded(self, message: Arc<DynamicMessage>) -> Self {
        let _ = self.decoded.set(message);
        self
    }

    /// Whether it is still fresh.
    pub fn is_fresh(&self) -> bool {
        self.stored.elapsed() < self.fresh_for
    }

    /// How long ago it arrived.
    pub fn age(&self) -> Duration {
        self.stored.elapsed()
    }

    /// The reply in the form a call asked for; the message (of type `desc`, from `backend`)
    /// is decoded at most once per entry.
    pub fn reply(
        &self,
        form: ReplyForm,
        desc: &MessageDescriptor,
        backend: &str,
    ) -> Result<Reply, UpstreamError> {
        let payload = match form {
            ReplyForm::Wire => Payload::Wire(self.bytes.clone()),
            ReplyForm::Decoded => match self.decoded.get() {
                Some(m) => Payload::Decoded(m.clone()),
                None => {
                    let m = Payload::Wire(self.bytes.clone()).into_message(desc, backend)?;
                    Payload::Decoded(self.decoded.get_or_init(|| m).clone())
                }
            },
        };
        Ok(Reply {
            payload,
            metadata: self.metadata.clone(),
            fallback: self.fallback,
        })
    }

    /// Bytes it holds, for the memory bound (wire bytes, metadata, bookkeeping).
    fn weight(&self, key: &Key) -> u64 {
        let metadata: usize = self
            .metadata
            .iter()
            .map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => k.as_str().len() + v.len(),
                tonic::metadata::KeyAndValueRef::Binary(k, v) => {
                    k.as_str().len() + v.as_encoded_bytes().len()
                }
            })
            .sum();
        (key.len() + self.bytes.len() + metadata + 128) as u64
    }
}

/// Entries expire when their freshness ends.
struct Freshness;

impl Expiry<Key, Arc<Entry>> for Freshness {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep_for)
    }
}

/// The in-process tier.
#[derive(Clone)]
pub struct MemoryTier {
    cache: Cache<Key, Arc<Entry>>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl MemoryTier {
    /// A tier holding at most `max_entries` entries and `max_bytes` bytes: each entry weighs
    /// its bytes, and at least `max_bytes / max_entries`, so both bounds hold under one
    /// weighted capacity.
    pub fn new(cfg: &MemoryTierConfig) -> Self {
        let max_bytes = cfg.max_bytes.bytes().max(1);
        let floor = (max_bytes / cfg.max_entries.max(1)).max(1);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &Key, v: &Arc<Entry>| {
                u32::try_from(v.weight(k).max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(Freshness)
            .build();
        Self { cache }
    }

    /// The entry under `key`, if any is still kept (fresh, or stale within its
    /// `stale_if_error` window: see [`Entry::is_fresh`]).
    pub async fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        let entry = self.cache.get(key).await?;
        if entry.age() < entry.keep_for {
            Some(entry)
        } else {
            self.cache.invalidate(key).await;
            None
        }
    }

    /// Keeps `entry` under `key`.
    pub async fn put(&self, key: Key, entry: Arc<Entry>) {
        self.cache.insert(key, entry).await;
    }

    /// Drops every entry whose key starts with `prefix`; returns how many.
    pub async fn purge(&self, prefix: &[u8]) -> u64 {
        let keys: Vec<Key> = self
            .cache
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| Key::clone(&k))
            .collect();
        for k in &keys {
            self.cache.invalidate(k).await;
        }
        keys.len() as u64
    }

    /// How many entries it holds (after pending maintenance).
    pub async fn entries(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

    fn entry(size: usize, fresh_for: Duration) -> Arc<Entry> {
        Arc::new(Entry::new(
            Bytes::from(vec![0u8; size]),
            MetadataMap::new(),
            fresh_for,
        ))
    }

    fn key(i: u32) -> Key {
        i.to_le_bytes().to_vec().into()
    }

    #[tokio::test]
    async fn bounded_by_entries_and_by_bytes() {
        let hour = Duration::from_secs(3600);
        // 10 entries at most.
        let t = MemoryTier::new(&MemoryTierConfig {
            max_entries: 10,
            max_bytes: ByteSize(1 << 20),
        });
        for i in 0..100 {
            t.put(key(i), entry(10, hour)).await;
        }
        assert!(t.entries().await <= 10, "{}", t.entries().await);
        // 64 KiB at most: 16 entries of 4 KiB (and their bookkeeping) do not all fit.
        let t = MemoryTier::new(&MemoryTierConfig {
            max_entries: 1000,
            max_bytes: ByteSize(64 << 10),
        });
        for i in 0..100 {
            t.put(key(i), entry(4096, hour)).await;
        }
        let n = t.entries().await;
        assert!((1..16).contains(&n), "{n}");
    }

    #[tokio::test]
    async fn a_stale_entry_is_not_returned() {
        let t = MemoryTier::new(&MemoryTierConfig::default());
        t.put(key(1), entry(1, Duration::ZERO)).await;
        assert!(t.get(&key(1)).await.is_none());
        t.put(key(2), entry(1, Duration::from_secs(60))).await;
        assert!(t.get(&key(2)).await.is_some_and(|e| e.is_fresh()));
        // Kept past its freshness for stale-if-error: returned, not fresh.
        let e = Entry::new(Bytes::new(), MetadataMap::new(), Duration::ZERO)
            .stale_for(Duration::from_secs(60));
        t.put(key(3), Arc::new(e)).await;
        assert!(t.get(&key(3)).await.is_some_and(|e| !e.is_fresh()));
    }
}
