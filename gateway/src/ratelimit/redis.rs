//! The Redis store: the GCRA of [`super::gcra`] as one Lua script, so a decision over every
//! key of a request is one round trip and atomic, on Redis's clock (replicas whose clocks
//! disagree still share one limit). Keys expire when their TAT passes.
//!
//! The connection is one multiplexed connection that reconnects by itself
//! ([`ConnectionManager`]); every decision is bounded by `timeout`. After a failure the store is
//! left alone for a second (requests do not each wait for a dead Redis), then tried again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Check;
use super::gcra::Verdict;
use crate::config::RedisLimitConfig;

/// The script: KEYS are the limits' keys; ARGV holds, per key, the interval and the tolerance
/// in microseconds and the cost. Returns, per key, allowed (0/1), remaining, reset and retry
/// after (microseconds). Writes only if every key passes.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local tats = {}
local ok = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - tolerance
  if allow_at > now then
    ok = false
    local retry = allow_at - now
    if cost * interval > tolerance then retry = -1 end
    out[#out + 1] = 0
    out[#out + 1] = math.floor(math.max(now + tolerance - tat, 0) / interval)
    out[#out + 1] = math.floor(tat - now)
    out[#out + 1] = math.floor(retry)
  else
    tats[i] = new_tat
    out[#out + 1] = 1
    out[#out + 1] = math.floor(math.max(now + tolerance - new_tat, 0) / interval)
    out[#out + 1] = math.floor(new_tat - now)
    out[#out + 1] = 0
  end
end
if ok then
  for i = 1, #KEYS do
    local ttl = math.ceil((tats[i] - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.17g', tats[i]), 'PX', ttl)
  end
end
return out
";

/// A failure of the Redis store.
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store {url}: {message}")]
pub struct StoreError {
    /// The store's URL (without a password).
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// Rate-limit state in Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    script: redis::Script,
    /// The URL as it can be logged.
    url: String,
    prefix: String,
    timeout: Duration,
    /// Until when (ms after `base`) Redis is left alone after a failure.
    down_until_ms: AtomicU64,
    base: Instant,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How long Redis is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

impl RedisStore {
    /// The store of `cfg`; it connects on first use.
    pub fn new(cfg: &RedisLimitConfig) -> Result<RedisStore, String> {
        let url = loggable(&cfg.url);
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| format!("{url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout.get()))
            .set_response_timeout(Some(cfg.timeout.get()))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("{url}: {e}"))?;
        // Connect and load the script now, in the background, so the first requests pay
        // neither (a Redis that is down at start only logs here; requests decide by on_error).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (mut c, script, url) = (conn.clone(), redis::Script::new(SCRIPT), url.clone());
            rt.spawn(async move {
                if let Err(e) = script.load_async(&mut c).await {
                    tracing::warn!(store = %url, error = %e, "the rate-limit store is not reachable yet");
                }
            });
        }
        Ok(RedisStore {
            conn,
            script: redis::Script::new(SCRIPT),
            url,
            prefix: cfg.prefix.clone(),
            timeout: cfg.timeout.get(),
            down_until_ms: AtomicU64::new(0),
            base: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn error(&self, message: impl Into<String>) -> StoreError {
        StoreError {
            url: self.url.clone(),
            message: message.into(),
        }
    }

    /// The verdict of every check, all or nothing, decided by Redis within the timeout.
    pub async fn decide(&self, checks: &[Check]) -> Result<Vec<Verdict>, StoreError> {
        if self.now_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(self.error("failed recently; not tried again yet"));
        }
        let mut invocation = self.script.prepare_invoke();
        for c in checks {
            let interval_us = c.rate.interval_ns as f64 / 1000.0;
            let tolerance_us = c.rate.tolerance_ns() as f64 / 1000.0;
            invocation
                .key(format!("{}{}", self.prefix, c.key))
                .arg(interval_us)
                .arg(tolerance_us)
                .arg(c.cost);
        }
        let mut conn = self.conn.clone();
        let result =
            tokio::time::timeout(self.timeout, invocation.invoke_async::<Vec<i64>>(&mut conn))
                .await;
        let raw = match result {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => {
                self.back_off();
                return Err(self.error(e.to_string()));
            }
            Err(_) => {
                self.back_off();
                return Err(self.error(format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                )));
            }
        };
        if raw.len() != checks.len() * 4 {
            return Err(self.error(format!(
                "the script answered {} numbers for {} keys",
                raw.len(),
                checks.len()
            )));
        }
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(raw
            .chunks_exact(4)
            .zip(checks)
            .map(|(v, c)| Verdict {
                allowed: v[0] == 1,
                remaining: u64::try_from(v[1]).unwrap_or(0),
                reset: us(v[2]),
                retry_after: if v[3] < 0 { c.rate.period } else { us(v[3]) },
            })
            .collect())
    }

    fn back_off(&self) {
        let until = self.now_ms().saturating_add(BACKOFF.as_millis() as u64);
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A Redis URL without its password.
pub(crate) fn loggable(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            loggable("redis://:s3cret@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(loggable("redis://cache:6379"), "redis://cache:6379");
    }
}
