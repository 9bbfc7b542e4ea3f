//! The time budget of a request, and the one rule every backend call's deadline follows.
//!
//! A request may take at most `deadlines.max`, or less when the client says so with a
//! `grpc-timeout` header (an operation endpoint's own `timeout` narrows it further). Each call
//! then gets its method's timeout (`rest.methods.<m>.timeout`, else the backend's `timeout`,
//! else `deadlines.default`), capped by what is left of the request's budget: a client can
//! shorten a call's deadline, never lengthen it, and a GraphQL operation's later calls get only
//! what its earlier ones left.

use std::time::Duration;

use tokio::time::Instant;

/// The time budget of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// What the client asked for (`grpc-timeout`), if anything.
    client: Option<Duration>,
    /// When the request's budget runs out.
    deadline: Instant,
}

impl Budget {
    /// A budget starting now: the client's `grpc-timeout` when given, never more than `max`.
    pub fn new(client: Option<Duration>, max: Duration) -> Self {
        let total = client.map_or(max, |c| c.min(max));
        Self {
            client,
            deadline: Instant::now() + total,
        }
    }

    /// When the request's budget runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What the client asked for with `grpc-timeout`, if anything.
    pub fn client(&self) -> Option<Duration> {
        self.client
    }

    /// The time left (zero once the deadline has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// This budget narrowed to at most `limit` from now (an operation endpoint's `timeout`).
    pub fn narrowed(&self, limit: Duration) -> Self {
        Self {
            client: self.client,
            deadline: self.deadline.min(Instant::now() + limit),
        }
    }

    /// The same client request, budgeted again from now (each operation of a WebSocket
    /// connection starts its own clock).
    pub fn restarted(&self, max: Duration) -> Self {
        Self::new(self.client, max)
    }

    /// The deadline of a call whose own timeout is `timeout` (the method's, else its
    /// backend's, else `deadlines.default`): `timeout` from now, never past the request's
    /// deadline. The one rule every door's calls follow.
    pub fn call_deadline(&self, timeout: Duration) -> Instant {
        (Instant::now() + timeout).min(self.deadline)
    }
}

/// Parses the gRPC wire format of a timeout: `1-8 digits` + `H|M|S|m|u|n`.
pub fn parse_grpc_timeout(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    if num.is_empty() || num.len() > 8 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `d` in the gRPC wire format of a timeout, in the finest unit that fits 8 digits (as tonic
/// writes it), for the `grpc-timeout` header of a backend call. Marked sensitive, so HTTP/2
/// sends it as a never-indexed literal: a remaining budget differs from call to call, and
/// indexing each one would churn the HPACK table.
pub fn grpc_timeout_header(d: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let secs = u128::from(d.as_secs());
    let (n, unit) = [
        (d.as_nanos(), b'n'),
        (d.as_micros(), b'u'),
        (d.as_millis(), b'm'),
        (secs, b'S'),
        (secs / 60, b'M'),
    ]
    .into_iter()
    .find(|(n, _)| *n <= MAX)
    .unwrap_or(((secs / 3600).min(MAX), b'H'));
    let mut text = [0u8; 9];
    let mut at = text.len() - 1;
    text[at] = unit;
    let mut rest = n;
    loop {
        at -= 1;
        text[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut value =
        http::HeaderValue::from_bytes(&text[at..]).unwrap_or(http::HeaderValue::from_static("0n"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_uses_the_finest_unit_that_fits() {
        let h = |d| grpc_timeout_header(d).to_str().unwrap().to_string();
        assert_eq!(h(Duration::ZERO), "0n");
        assert_eq!(h(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(h(Duration::from_millis(100)), "100000u");
        assert_eq!(h(Duration::from_micros(29_999_876)), "29999876u");
        assert_eq!(h(Duration::from_secs(30)), "30000000u");
        assert_eq!(h(Duration::from_secs(200)), "200000m");
        assert_eq!(h(Duration::from_secs(100_000)), "100000S");
        assert_eq!(h(Duration::from_secs(100_000_000 * 60)), "1666666H");
        assert!(grpc_timeout_header(Duration::from_secs(1)).is_sensitive());
        // what it writes, the ingress reads back (to the unit's precision)
        for d in [
            Duration::from_millis(1234),
            Duration::from_secs(86_400 * 400),
        ] {
            let back = parse_grpc_timeout(&h(d)).unwrap();
            assert!(back <= d && d - back < Duration::from_secs(3600), "{d:?}");
        }
    }

    #[test]
    fn grpc_timeout_wire_format() {
        assert_eq!(parse_grpc_timeout("500m"), Some(Duration::from_millis(500)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("5s"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_gets_its_timeout_capped_by_what_the_request_has_left() {
        let max = Duration::from_secs(60);
        let start = Instant::now();
        // No client deadline: the request may take `max`, a call its own timeout.
        let b = Budget::new(None, max);
        assert_eq!(b.deadline(), start + max);
        assert_eq!(
            b.call_deadline(Duration::from_secs(10)),
            start + Duration::from_secs(10)
        );
        // The client shortens it; it cannot lengthen it past `max`.
        let b = Budget::new(Some(Duration::from_millis(50)), max);
        assert_eq!(
            b.call_deadline(Duration::from_secs(10)),
            start + Duration::from_millis(50)
        );
        let b = Budget::new(Some(Duration::from_secs(600)), max);
        assert_eq!(b.deadline(), start + max);
        // Later calls get what is left.
        let b = Budget::new(Some(Duration::from_secs(1)), max);
        tokio::time::advance(Duration::from_millis(700)).await;
        assert_eq!(b.remaining(), Duration::from_millis(300));
        assert_eq!(
            b.call_deadline(Duration::from_secs(10)),
            start + Duration::from_secs(1)
        );
        assert_eq!(
            b.call_deadline(Duration::from_millis(100)),
            start + Duration::from_millis(800)
        );
        // An endpoint's timeout narrows; a WebSocket operation restarts the clock.
        let n = b.narrowed(Duration::from_millis(100));
        assert_eq!(n.deadline(), start + Duration::from_millis(800));
        let r = b.restarted(max);
        assert_eq!(r.deadline(), start + Duration::from_millis(1700));
        assert_eq!(r.client(), Some(Duration::from_secs(1)));
    }
}
