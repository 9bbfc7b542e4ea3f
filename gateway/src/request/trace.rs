//! W3C Trace Context (`traceparent`, `tracestate`): the client's trace is continued when it
//! sends a valid `traceparent`, else a new one is started; every backend call carries the
//! trace id with a span id of its own, so a backend's spans join the client's trace.
//!
//! `traceparent` is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; an invalid one
//! (wrong length or version 00 with extra fields, upper-case hex, all-zero ids) is ignored, as
//! the recommendation says, and a new trace started. `tracestate` travels with a valid
//! `traceparent` only.

use std::fmt;

use http::{HeaderMap, HeaderValue};

/// The trace a request belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never zero).
    pub trace_id: u128,
    /// The client's span (the parent), when it sent one.
    pub parent_id: Option<u64>,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
    /// The client's `tracestate`, passed on untouched.
    pub tracestate: Option<HeaderValue>,
    /// The gateway's own span for this request: the parent of its backend calls' spans.
    pub span_id: u64,
    /// Whether the gateway records (exports) this trace's spans: spans are exported and the
    /// trace is sampled.
    pub recorded: bool,
}

impl TraceContext {
    /// The context of a request with these headers: the client's, or a new trace (sampled).
    pub fn from_headers(headers: &HeaderMap) -> TraceContext {
        let mut parents = headers.get_all("traceparent").iter();
        let parsed = match (parents.next(), parents.next()) {
            (Some(v), None) => parse(v.as_bytes()),
            _ => None,
        };
        match parsed {
            Some((trace_id, parent_id, flags)) => TraceContext {
                trace_id,
                parent_id: Some(parent_id),
                flags,
                tracestate: headers.get("tracestate").cloned(),
                span_id: nonzero_u64(),
                recorded: false,
            },
            None => TraceContext {
                trace_id: nonzero_u128(),
                parent_id: None,
                flags: 0x01,
                tracestate: None,
                span_id: nonzero_u64(),
                recorded: false,
            },
        }
    }

    /// A `traceparent` for a backend call: this trace, a new span id.
    pub fn child(&self) -> HeaderValue {
        self.child_with(nonzero_u64())
    }

    /// A `traceparent` for a backend call whose span is `span_id`. Marked sensitive, so
    /// HTTP/2 sends it as a never-indexed literal: a value unique to each call would only
    /// churn the HPACK table (evicting the headers every call repeats).
    pub fn child_with(&self, span_id: u64) -> HeaderValue {
        let mut text = [0u8; 55];
        text[..3].copy_from_slice(b"00-");
        write_hex(&mut text[3..35], self.trace_id);
        text[35] = b'-';
        write_hex(&mut text[36..52], u128::from(span_id));
        text[52] = b'-';
        write_hex(&mut text[53..55], u128::from(self.flags));
        let mut value = HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(
            "00-00000000000000000000000000000001-0000000000000001-01",
        ));
        value.set_sensitive(true);
        value
    }

    /// Whether the trace is sampled (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// Decides, for a trace the gateway exports spans of, whether this request's are: a
    /// client's trace by its sampled flag, one the gateway started by `sample` (which also
    /// sets the flag the backends see).
    pub fn decide_recording(&mut self, sample: impl FnOnce() -> bool) {
        if self.parent_id.is_none() {
            self.flags = if sample() { 0x01 } else { 0x00 };
        }
        self.recorded = self.sampled();
    }

    /// The ids of the request's own span.
    pub fn request_span(&self) -> crate::telemetry::traces::SpanIds {
        crate::telemetry::traces::SpanIds {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_id: self.parent_id,
            parent_remote: self.parent_id.is_some(),
        }
    }

    /// The trace id as 32 hex digits, formatted when displayed (for log lines).
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }
}

/// A trace id that formats itself as 32 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId(pub u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

fn nonzero_u128() -> u128 {
    rand::random::<u128>().max(1)
}

fn nonzero_u64() -> u64 {
    rand::random::<u64>().max(1)
}

/// `00-<trace>-<parent>-<flags>` (or a later version, of which the first four fields are
/// read): (trace id, parent id, flags).
/// Writes the low `4 * out.len()` bits of `n` into `out` as lower-case hex, zero-padded.
fn write_hex(out: &mut [u8], mut n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

fn parse(v: &[u8]) -> Option<(u128, u64, u8)> {
    if v.len() < 55 {
        return None;
    }
    let version = hex(v.get(0..2)?)? as u8;
    // Version ff is forbidden; version 00 is exactly 55 characters; later versions may append.
    if version == 0xff
        || (version == 0 && v.len() != 55)
        || (version != 0 && v.get(55) != Some(&b'-'))
    {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = hex(&v[3..35])?;
    let parent_id = u64::try_from(hex(&v[36..52])?).ok()?;
    let flags = u8::try_from(hex(&v[53..55])?).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

/// Lower-case hex digits as a number (at most 32 of them).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u128::from(d))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CLIENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_child_traceparent_is_the_w3c_text_and_never_indexed() {
        let t = TraceContext::from_headers(&headers(&[("traceparent", CLIENT)]));
        let child = t.child_with(0x0000_0000_00ab_cdef);
        assert_eq!(
            child.to_str().unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000abcdef-01"
        );
        assert!(child.is_sensitive());
        // what it writes, a backend (or the next gateway) reads back
        assert_eq!(
            parse(child.as_bytes()),
            Some((t.trace_id, 0x00ab_cdef, 0x01))
        );
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span_per_call() {
        let t = TraceContext::from_headers(&headers(&[
            ("traceparent", CLIENT),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]));
        assert_eq!(t.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_eq!(t.tracestate.as_ref().unwrap(), "congo=t61rcWkgMzE");
        let (a, b) = (t.child(), t.child());
        let a = a.to_str().unwrap();
        assert!(a.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{a}");
        assert!(a.ends_with("-01"));
        assert_eq!(a.len(), 55);
        assert_ne!(&a[36..52], "00f067aa0ba902b7");
        assert_ne!(a, b.to_str().unwrap());
    }

    #[test]
    fn invalid_ones_start_a_new_trace() {
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "nonsense",
        ] {
            let t = TraceContext::from_headers(&headers(&[
                ("traceparent", bad),
                ("tracestate", "a=b"),
            ]));
            assert_eq!(t.parent_id, None, "{bad}");
            assert!(t.tracestate.is_none(), "{bad}");
            assert_ne!(t.trace_id, 0);
        }
        // A later version may append fields.
        let t = TraceContext::from_headers(&headers(&[(
            "traceparent",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever",
        )]));
        assert!(t.parent_id.is_some());
        // Two traceparent headers: neither is believed.
        let t = TraceContext::from_headers(&headers(&[
            ("traceparent", CLIENT),
            ("traceparent", CLIENT),
        ]));
        assert!(t.parent_id.is_none());
    }
}
