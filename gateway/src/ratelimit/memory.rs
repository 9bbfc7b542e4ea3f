//! The in-process store: each key's TAT in one of 64 mutex-guarded shards, bounded in size.
//! A decision over several keys locks their shards in order and writes only if every key
//! passes, so the strictest limit decides and the others are not charged for a refusal.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::Check;
use super::gcra::{self, Verdict};

const SHARDS: usize = 64;

/// One shard: key -> TAT (nanoseconds after the store's time zero).
type Shard = HashMap<Box<str>, u64>;

/// Rate-limit state in this process.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    max_per_shard: usize,
    /// Time zero of the TATs (a monotonic clock: a wall-clock jump changes nothing).
    base: Instant,
}

impl MemoryStore {
    /// A store tracking at most about `max_keys` keys.
    pub fn new(max_keys: u64) -> MemoryStore {
        let per = usize::try_from(max_keys / SHARDS as u64)
            .unwrap_or(usize::MAX)
            .max(16);
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            max_per_shard: per,
            base: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        // +1: a TAT of 0 means "never seen".
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    fn shard_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave a TAT half-written: keep going.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The verdict of every check, all or nothing: the keys are charged only if all pass.
    pub fn decide(&self, checks: &[Check]) -> Vec<Verdict> {
        let shard_ids: Vec<usize> = checks.iter().map(|c| self.shard_of(&c.key)).collect();
        let mut order = shard_ids.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, _>)> =
            order.into_iter().map(|i| (i, self.lock(i))).collect();
        let now = self.now_ns();
        let mut verdicts = Vec::with_capacity(checks.len());
        let mut tats = Vec::with_capacity(checks.len());
        for (check, shard) in checks.iter().zip(&shard_ids) {
            let Some(g) = guards.iter().find(|(i, _)| i == shard) else {
                continue;
            };
            let tat = g.1.get(check.key.as_str()).copied().unwrap_or(0);
            let (v, new_tat) = gcra::decide(tat, now, &check.rate, check.cost);
            verdicts.push(v);
            tats.push(new_tat);
        }
        if verdicts.iter().all(|v| v.allowed) {
            for ((check, shard), tat) in checks.iter().zip(&shard_ids).zip(tats) {
                if let Some((_, map)) = guards.iter_mut().find(|(i, _)| i == shard) {
                    if map.len() >= self.max_per_shard && !map.contains_key(check.key.as_str()) {
                        // Keys whose TAT passed are as good as new: drop them first.
                        map.retain(|_, t| *t > now);
                        if map.len() >= self.max_per_shard {
                            // Still full (an attack on the key space): forget the shard, which
                            // errs on the side of letting requests through.
                            map.clear();
                        }
                    }
                    map.insert(check.key.as_str().into(), tat);
                }
            }
        }
        verdicts
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ratelimit::gcra::Rate;

    fn check(key: &str, limit: u64) -> Check {
        Check {
            key: key.into(),
            rate: Rate::new(limit, Duration::from_secs(3600), None),
            cost: 1,
        }
    }

    #[test]
    fn the_strictest_limit_decides_and_a_refusal_charges_nothing() {
        let store = MemoryStore::new(1000);
        let both = [check("loose", 10), check("strict", 2)];
        assert!(store.decide(&both).iter().all(|v| v.allowed));
        assert!(store.decide(&both).iter().all(|v| v.allowed));
        let third = store.decide(&both);
        assert!(third[0].allowed && !third[1].allowed);
        // The loose key was not charged for the refused request: 8 left, not 7.
        assert_eq!(store.decide(&[check("loose", 10)])[0].remaining, 7);
    }

    #[test]
    fn keys_are_independent_and_bounded() {
        let store = MemoryStore::new(64 * 16);
        for i in 0..5000 {
            assert!(store.decide(&[check(&format!("k{i}"), 1)])[0].allowed);
        }
        assert!(store.len() <= 64 * 16, "{} keys", store.len());
    }

    #[test]
    fn concurrent_callers_share_one_limit() {
        let store = std::sync::Arc::new(MemoryStore::new(1000));
        let passed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (store, passed) = (store.clone(), passed.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if store.decide(&[check("shared", 50)])[0].allowed {
                            passed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(passed.load(std::sync::atomic::Ordering::Relaxed), 50);
    }
}
