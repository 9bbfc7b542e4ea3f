//! The shared tier: entries in Redis, so that replicas answer from one another's replies.
//!
//! Keys are `{prefix}{method}:{sha256(request)}:{sha256(key)}` (hex), so a purge finds a
//! method's or a request's entries with `SCAN MATCH`; values are a small binary record (when
//! it arrived, how long it is fresh and kept, its metadata, its bytes) that Redis expires when
//! it is no longer kept. Every command is bounded by `timeout`; a failure or a timeout is a
//! miss (never a failed request), and after one the tier is left alone for a second.
//!
//! Purges reach every replica's memory tier too: a purge is published on `{prefix}purge`, and
//! each replica's listener drops the matching entries from its own memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tonic::metadata::{KeyAndValueRef, MetadataMap};

use super::store::Entry;
use crate::config::RedisTierConfig;
use crate::ratelimit::redis::loggable;

/// The format of a stored record.
const VERSION: u8 = 1;

/// How long the tier is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

/// The Redis tier.
pub struct RedisTier {
    client: redis::Client,
    conn: ConnectionManager,
    url: String,
    prefix: String,
    timeout: Duration,
    down_until_ms: AtomicU64,
    base: Instant,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Where an entry lives in Redis: its method, request and whole key.
pub struct RedisKey(String);

impl RedisTier {
    /// The tier of `cfg`; it connects on first use.
    pub fn new(cfg: &RedisTierConfig) -> Result<Self, String> {
        let url = loggable(&cfg.url);
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| format!("{url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout.get().max(Duration::from_millis(200))))
            .set_response_timeout(Some(cfg.timeout.get()))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Self {
            client,
            conn,
            url,
            prefix: cfg.prefix.clone(),
            timeout: cfg.timeout.get(),
            down_until_ms: AtomicU64::new(0),
            base: Instant::now(),
        })
    }

    /// The Redis key of an entry.
    pub fn key(&self, method: &str, request: &[u8], key: &[u8]) -> RedisKey {
        RedisKey(format!(
            "{}{method}:{}:{}",
            self.prefix,
            hex::encode(Sha256::digest(request)),
            hex::encode(Sha256::digest(key))
        ))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn resting(&self) -> bool {
        self.now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        // One warning per back-off, not one per request.
        if !self.resting() {
            tracing::warn!(tier = %self.url, error = %error, "the cache's Redis tier failed to {what}; skipping it for {}s", BACKOFF.as_secs());
        }
        let until = self.now_ms().saturating_add(BACKOFF.as_millis() as u64);
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Option<T> {
        if self.resting() {
            return None;
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(
                    what,
                    &format!("no answer within {}", humantime::format_duration(timeout)),
                );
                None
            }
        }
    }

    /// The entry under `key`, if Redis has it and answers in time.
    pub async fn get(&self, key: &RedisKey) -> Option<Entry> {
        let raw: Option<Vec<u8>> = self
            .run("read", redis::cmd("GET").arg(&key.0), self.timeout)
            .await?;
        let entry = decode(&raw?);
        if entry.is_none() {
            tracing::warn!(key = %key.0, "an unreadable cache record in Redis; ignored");
        }
        entry
    }

    /// Stores `entry` under `key` until it is no longer kept. The miss that fetched it waits
    /// for the write (within `timeout`), so a replica asked right after finds it.
    pub async fn put(&self, key: RedisKey, entry: &Entry) {
        let keep = entry.keep_for.saturating_sub(entry.age());
        let ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key.0).arg(encode(entry)).arg("PX").arg(ms);
        self.run::<()>("write", &cmd, self.timeout).await;
    }

    /// Deletes the entries of `method` (and `request`, when given); returns how many.
    pub async fn purge(&self, method: &str, request: Option<&[u8]>) -> u64 {
        let mut pattern = glob_escape(&self.prefix);
        pattern.push_str(&glob_escape(method));
        pattern.push(':');
        if let Some(r) = request {
            pattern.push_str(&hex::encode(Sha256::digest(r)));
            pattern.push(':');
        }
        pattern.push('*');
        // A purge may take longer than a lookup: it is an operator's or a mutation's.
        let timeout = self.timeout.max(Duration::from_secs(2));
        let (mut cursor, mut purged) = (0u64, 0u64);
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let Some((next, keys)) = self
                .run::<(u64, Vec<String>)>("purge", &scan, timeout)
                .await
            else {
                return purged;
            };
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&keys);
                purged += self
                    .run::<u64>("purge", &unlink, timeout)
                    .await
                    .unwrap_or(0);
            }
            if next == 0 {
                return purged;
            }
            cursor = next;
        }
    }
}

impl RedisTier {
    fn channel(&self) -> String {
        format!("{}purge", self.prefix)
    }

    /// Tells every replica's listener to drop the entries of `method` (and `request`) from
    /// its memory.
    pub async fn publish_purge(&self, method: &str, request: Option<&[u8]>) {
        let payload = format!("{method}\n{}", request.map(hex::encode).unwrap_or_default());
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(payload);
        self.run::<i64>(
            "publish a purge",
            &cmd,
            self.timeout.max(Duration::from_secs(1)),
        )
        .await;
    }

    /// Listens for purges published by any replica and applies them to `memory`, until the
    /// returned handle is dropped. It reconnects after a failure (a second later); `state`
    /// tells whether it is subscribed and how many purges it applied.
    pub fn listen(
        &self,
        memory: super::store::MemoryTier,
        state: tokio::sync::watch::Sender<Heard>,
    ) -> Option<tokio::sync::oneshot::Sender<()>> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        let (client, channel, url) = (self.client.clone(), self.channel(), self.url.clone());
        rt.spawn(async move {
            loop {
                let listening = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    state.send_modify(|h| h.subscribed = true);
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = futures::StreamExt::next(&mut messages).await {
                        let payload = String::from_utf8_lossy(msg.get_payload_bytes()).to_string();
                        if let Some((method, request)) = payload.split_once('\n') {
                            let request = match request {
                                "" => None,
                                hex_bytes => hex::decode(hex_bytes).ok(),
                            };
                            memory
                                .purge(&super::key::KeyBuilder::prefix(method, request.as_deref()))
                                .await;
                        }
                        state.send_modify(|h| h.purges += 1);
                    }
                    Ok::<(), redis::RedisError>(())
                };
                tokio::select! {
                    _ = &mut stop => return,
                    r = listening => {
                        state.send_modify(|h| h.subscribed = false);
                        if let Err(e) = r {
                            tracing::debug!(tier = %url, error = %e, "the cache's purge listener lost Redis; retrying");
                        }
                    }
                }
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(BACKOFF) => {}
                }
            }
        });
        Some(stop_tx)
    }
}

/// What a replica's purge listener has done.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heard {
    /// It is subscribed to the purge channel.
    pub subscribed: bool,
    /// How many published purges it applied.
    pub purges: u64,
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The record of an entry: version, arrival (Unix ms), fresh and kept (ms), its ASCII
/// metadata (count, then length-prefixed names and values), its bytes.
fn encode(entry: &Entry) -> Vec<u8> {
    let arrived = SystemTime::now()
        .checked_sub(entry.age())
        .unwrap_or(UNIX_EPOCH);
    let mut out = Vec::with_capacity(entry.bytes.len() + 64);
    out.push(VERSION);
    out.extend_from_slice(&unix_ms(arrived).to_le_bytes());
    out.extend_from_slice(&ms(entry.fresh_for).to_le_bytes());
    out.extend_from_slice(&ms(entry.keep_for).to_le_bytes());
    let ascii: Vec<(&str, &[u8])> = entry
        .metadata
        .iter()
        .filter_map(|kv| match kv {
            KeyAndValueRef::Ascii(k, v) => Some((k.as_str(), v.as_bytes())),
            KeyAndValueRef::Binary(..) => None,
        })
        .collect();
    out.extend_from_slice(&(ascii.len() as u32).to_le_bytes());
    for (k, v) in ascii {
        for part in [k.as_bytes(), v] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(&entry.bytes);
    out
}

fn decode(raw: &[u8]) -> Option<Entry> {
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = raw.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        Some(s)
    };
    let u64_at = |pos: &mut usize| -> Option<u64> {
        Some(u64::from_le_bytes(take(pos, 8)?.try_into().ok()?))
    };
    let u32_at = |pos: &mut usize| -> Option<u32> {
        Some(u32::from_le_bytes(take(pos, 4)?.try_into().ok()?))
    };
    if *take(&mut pos, 1)?.first()? != VERSION {
        return None;
    }
    let arrived = u64_at(&mut pos)?;
    let fresh_for = Duration::from_millis(u64_at(&mut pos)?);
    let keep_for = Duration::from_millis(u64_at(&mut pos)?);
    let mut metadata = MetadataMap::new();
    for _ in 0..u32_at(&mut pos)? {
        let n = u32_at(&mut pos)? as usize;
        let name = take(&mut pos, n)?;
        let n = u32_at(&mut pos)? as usize;
        let value = take(&mut pos, n)?;
        let key = tonic::metadata::AsciiMetadataKey::from_bytes(name).ok()?;
        let value = tonic::metadata::AsciiMetadataValue::try_from(value).ok()?;
        metadata.append(key, value);
    }
    let bytes = Bytes::copy_from_slice(raw.get(pos..)?);
    let age = Duration::from_millis(unix_ms(SystemTime::now()).saturating_sub(arrived));
    Some(Entry::aged(bytes, metadata, age, fresh_for, keep_for))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let mut md = MetadataMap::new();
        md.insert("x-demo", "1".parse().unwrap());
        md.append("cache-control", "max-age=5".parse().unwrap());
        let e = Entry::new(
            Bytes::from_static(b"\x0a\x03p-1"),
            md,
            Duration::from_secs(5),
        )
        .stale_for(Duration::from_secs(60));
        let back = decode(&encode(&e)).unwrap();
        assert_eq!(back.bytes, e.bytes);
        assert_eq!(back.fresh_for, e.fresh_for);
        assert_eq!(back.keep_for, e.keep_for);
        assert_eq!(back.metadata.get("x-demo").unwrap(), "1");
        assert_eq!(back.metadata.get("cache-control").unwrap(), "max-age=5");
        assert!(back.is_fresh());
        let raw = encode(&e);
        for cut in 0..30 {
            assert!(decode(&raw[..cut]).is_none(), "{cut}");
        }
        assert!(decode(b"\x02rest").is_none());
    }

    #[test]
    fn glob_characters_of_a_prefix_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
