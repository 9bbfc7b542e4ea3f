//! The `RateLimit-Policy` and `RateLimit` response headers, as draft-ietf-httpapi-ratelimit-
//! headers-10 writes them (Structured Field lists, one item per limit):
//!
//! ```text
//! RateLimit-Policy: "per-caller";q=100;w=60, "search";q=10;w=1
//! RateLimit: "per-caller";r=97;t=2, "search";r=9;t=1
//! ```
//!
//! `q` is the limit per window of `w` seconds; `r` what is left now, `t` the seconds until the
//! limit is whole again. A request records every limit it was counted against in its
//! [`LimitNotes`]; the ingress writes them on the answer.

use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, HeaderValue};

use super::gcra::{Rate, Verdict};
use crate::upstream::whole_secs;

/// One limit a request was counted against, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitStatus {
    /// The rule's name.
    pub name: Arc<str>,
    /// How many per window.
    pub quota: u64,
    /// The window, in seconds (at least 1).
    pub window: u64,
    /// What is left.
    pub remaining: u64,
    /// Seconds until the limit is whole again (or, refused, until a request passes).
    pub reset: u64,
}

impl LimitStatus {
    /// The status of `rate` after `verdict`.
    pub fn new(name: Arc<str>, rate: &Rate, verdict: &Verdict) -> LimitStatus {
        let reset = if verdict.allowed {
            if verdict.reset.is_zero() {
                0
            } else {
                whole_secs(verdict.reset)
            }
        } else {
            whole_secs(verdict.retry_after)
        };
        LimitStatus {
            name,
            quota: rate.limit,
            window: rate.period.as_secs().max(1),
            remaining: verdict.remaining,
            reset,
        }
    }
}

/// The limit stage's notes on one request: the limits it was counted against (updated by
/// every decision; the last word on each limit wins), and the header values that rules
/// deciding later (per call, per operation) key on, read when the request arrived.
#[derive(Debug, Default)]
pub struct LimitNotes {
    statuses: Mutex<Vec<LimitStatus>>,
    captured: Vec<Option<String>>,
    headers: bool,
}

impl LimitNotes {
    /// Notes holding `captured` header values; `headers`: whether the answer gets the
    /// `RateLimit` headers.
    pub fn new(captured: Vec<Option<String>>, headers: bool) -> LimitNotes {
        LimitNotes {
            statuses: Mutex::default(),
            captured,
            headers,
        }
    }

    /// The `at`-th captured header value.
    pub fn captured(&self, at: usize) -> Option<&str> {
        self.captured.get(at)?.as_deref()
    }

    /// Records `statuses`.
    pub fn record(&self, statuses: impl IntoIterator<Item = LimitStatus>) {
        let mut all = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        for s in statuses {
            match all.iter_mut().find(|o| o.name == s.name) {
                Some(old) => *old = s,
                None => all.push(s),
            }
        }
    }

    /// Writes the headers on an answer, unless it has its own (a refusal's).
    pub fn write(&self, headers: &mut HeaderMap) {
        if !self.headers || headers.contains_key("ratelimit") {
            return;
        }
        let all = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        if all.is_empty() {
            return;
        }
        let (policy, state) = render(&all);
        if let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert("ratelimit-policy", p);
            headers.insert("ratelimit", s);
        }
    }
}

/// The `RateLimit-Policy` and `RateLimit` values of `statuses`.
pub fn render(statuses: &[LimitStatus]) -> (String, String) {
    let mut policy = String::new();
    let mut state = String::new();
    for (i, s) in statuses.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
            state.push_str(", ");
        }
        // Names are letters, digits, '-', '_' and '.': nothing to escape in an sf-string.
        let _ = write!(policy, "\"{}\";q={};w={}", s.name, s.quota, s.window);
        let _ = write!(state, "\"{}\";r={};t={}", s.name, s.remaining, s.reset);
    }
    (policy, state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn headers_are_structured_field_lists() {
        let notes = LimitNotes::new(Vec::new(), true);
        let rate = Rate::new(100, Duration::from_secs(60), None);
        let v = Verdict {
            allowed: true,
            remaining: 97,
            reset: Duration::from_millis(1800),
            retry_after: Duration::ZERO,
        };
        notes.record([LimitStatus::new("per-caller".into(), &rate, &v)]);
        let search = Rate::new(10, Duration::from_millis(500), None);
        notes.record([LimitStatus::new("search".into(), &search, &v)]);
        let mut h = HeaderMap::new();
        notes.write(&mut h);
        assert_eq!(
            h["ratelimit-policy"],
            "\"per-caller\";q=100;w=60, \"search\";q=10;w=1"
        );
        assert_eq!(
            h["ratelimit"],
            "\"per-caller\";r=97;t=2, \"search\";r=97;t=2"
        );
        // A refusal's own headers are left alone.
        let mut h = HeaderMap::new();
        h.insert("ratelimit", HeaderValue::from_static("\"x\";r=0;t=5"));
        notes.write(&mut h);
        assert!(!h.contains_key("ratelimit-policy"));
    }
}
