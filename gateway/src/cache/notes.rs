//! What the calls of one GET request say about caching its answer at the edge, gathered by
//! the cache stage and written by the ingress on a successful answer: `Cache-Control`
//! (`public` or `private`, and `max-age`), `Age` (the oldest reply used), so that `max-age -
//! Age` is the least freshness left among the calls, and `Vary` (the metadata the entries
//! vary on). One call that is not
//! cached, or that failed, and the answer gets no caching headers; one stale reply, and it
//! gets `no-store`.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use http::header::{AGE, CACHE_CONTROL, VARY};
use http::{HeaderMap, HeaderValue};

/// The notes of one request.
#[derive(Debug, Default)]
pub struct CacheNotes(Mutex<Notes>);

#[derive(Debug, Default)]
struct Notes {
    calls: u32,
    uncacheable: bool,
    stale: bool,
    private: bool,
    max_age: Option<Duration>,
    age: Duration,
    vary: BTreeSet<String>,
}

impl CacheNotes {
    fn with(&self, f: impl FnOnce(&mut Notes)) {
        let mut n = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        n.calls += 1;
        f(&mut n);
    }

    /// A call whose answer is not cached (or failed).
    pub fn uncacheable(&self) {
        self.with(|n| n.uncacheable = true);
    }

    /// A call answered by a stale entry.
    pub fn stale(&self, age: Duration) {
        self.with(|n| {
            n.stale = true;
            n.age = n.age.max(age);
        });
    }

    /// A call answered by a fresh entry (`remaining` freshness left, `age` old), kept for
    /// everyone or `private`ly, varying on `vary`.
    pub fn fresh(&self, remaining: Duration, age: Duration, private: bool, vary: &[String]) {
        self.with(|n| {
            n.max_age = Some(n.max_age.map_or(remaining, |m| m.min(remaining)));
            n.age = n.age.max(age);
            n.private |= private;
            n.vary.extend(vary.iter().cloned());
        });
    }

    /// Writes the headers the notes call for (nothing when no call was made or one was not
    /// cached).
    pub fn write(&self, headers: &mut HeaderMap) {
        let n = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if n.calls == 0 || n.uncacheable {
            return;
        }
        let age = HeaderValue::from(n.age.as_secs());
        if n.stale {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(AGE, age);
            return;
        }
        let Some(remaining) = n.max_age else { return };
        // A client takes `max-age - Age` as what is left: the least left of any call.
        let max_age = n.age.saturating_add(remaining).as_secs();
        let who = if n.private { "private" } else { "public" };
        if let Ok(v) = HeaderValue::from_str(&format!("{who}, max-age={max_age}")) {
            headers.insert(CACHE_CONTROL, v);
        }
        headers.insert(AGE, age);
        if !n.vary.is_empty() {
            let names: Vec<&str> = n.vary.iter().map(String::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
                headers.append(VARY, v);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn written(n: &CacheNotes) -> HeaderMap {
        let mut h = HeaderMap::new();
        n.write(&mut h);
        h
    }

    #[test]
    fn the_least_fresh_call_and_the_strictest_scope_win() {
        let n = CacheNotes::default();
        assert!(written(&n).is_empty(), "no call, no header");
        n.fresh(Duration::from_secs(60), Duration::from_secs(3), false, &[]);
        n.fresh(
            Duration::from_secs(20),
            Duration::from_secs(1),
            true,
            &["accept-language".into()],
        );
        let h = written(&n);
        // 20 s left at most, the oldest reply 3 s old.
        assert_eq!(h[CACHE_CONTROL], "private, max-age=23");
        assert_eq!(h[AGE], "3");
        assert_eq!(h[VARY], "accept-language");
    }

    #[test]
    fn one_uncached_call_leaves_the_answer_alone_and_a_stale_one_forbids_storing() {
        let n = CacheNotes::default();
        n.fresh(Duration::from_secs(60), Duration::ZERO, false, &[]);
        n.uncacheable();
        assert!(written(&n).is_empty());
        let n = CacheNotes::default();
        n.fresh(Duration::from_secs(60), Duration::ZERO, false, &[]);
        n.stale(Duration::from_secs(90));
        let h = written(&n);
        assert_eq!(h[CACHE_CONTROL], "no-store");
        assert_eq!(h[AGE], "90");
    }
}
