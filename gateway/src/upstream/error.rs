//! What can go wrong on the way to a backend, classified so callers decide by type, not text.

use std::time::Duration;

/// An upstream failure. The backend's name is kept for messages and metrics.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The backend answered with a non-OK gRPC status.
    #[error("backend {backend:?} answered {}: {}", .status.code(), .status.message())]
    Status {
        /// Backend name.
        backend: String,
        /// The status as the backend sent it (with its details).
        status: tonic::Status,
    },
    /// The backend could not be reached (connection refused, reset, TLS...).
    #[error("backend {backend:?} is unavailable: {detail}")]
    Unavailable {
        /// Backend name.
        backend: String,
        /// Transport detail, for logs only.
        detail: String,
    },
    /// The call's deadline passed; the call was cancelled.
    #[error("backend {backend:?} did not answer within {}", humantime::format_duration(round_ms(*.timeout)))]
    DeadlineExceeded {
        /// Backend name.
        backend: String,
        /// The deadline the call had.
        timeout: Duration,
    },
    /// A response message was larger than the configured limit.
    #[error("backend {backend:?} sent a response larger than {limit} bytes")]
    ResponseTooLarge {
        /// Backend name.
        backend: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// No configured backend serves the method's service.
    #[error("no backend serves {service}")]
    NoBackend {
        /// Fully-qualified service name.
        service: String,
    },
    /// The backend's circuit breaker is open: the call was not made.
    #[error("backend {backend:?} is unavailable: its circuit breaker is open (retry in {}s)", whole_secs(*.retry_after))]
    CircuitOpen {
        /// Backend name.
        backend: String,
        /// When trying again makes sense.
        retry_after: Duration,
    },
    /// The backend's bulkhead is full (too many calls in flight and queued): the call was not
    /// made.
    #[error("backend {backend:?} is overloaded: too many calls in flight, try again later")]
    Overloaded {
        /// Backend name.
        backend: String,
    },
}

/// How tonic's status begins for a response that ended without `grpc-status`.
const NO_STATUS: &str = "protocol error: missing grpc-status trailer";

/// A duration in whole seconds, rounded up, at least 1 (the `Retry-After` value).
pub fn whole_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).clamp(1, u128::from(u64::MAX)) as u64
}

/// Whether tonic failed to connect (the request was never sent, so retrying is always safe).
pub(crate) fn is_connect_error(status: &tonic::Status) -> bool {
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Rounds up to whole milliseconds, for messages (`49.93ms` left of a 50ms budget is "50ms").
fn round_ms(d: Duration) -> Duration {
    let ms = d.as_micros().div_ceil(1000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl UpstreamError {
    /// Classifies a status produced by tonic for a call to `backend`: local transport failures
    /// and size-limit errors become their own kinds; anything else is the backend's answer.
    pub(crate) fn from_status(backend: &str, status: tonic::Status, limit: usize) -> Self {
        let backend = backend.to_string();
        if status.code() == tonic::Code::OutOfRange
            && status
                .message()
                .starts_with("Error, decoded message length too large")
        {
            return UpstreamError::ResponseTooLarge { backend, limit };
        }
        // A status tonic made itself from a transport error carries that error as its source;
        // one decoded from the backend's trailers never does. Such a failure (connection
        // refused or reset, a TLS handshake the backend refused, bytes that are not HTTP/2, a
        // connection cut in the middle of a frame: tonic says UNAVAILABLE, UNKNOWN, or
        // INTERNAL for HTTP/2 protocol errors) means the backend could not be talked to. Only
        // CANCELLED and DEADLINE_EXCEEDED keep their code: they are about the deadline.
        if !matches!(
            status.code(),
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
        ) && let Some(src) = std::error::Error::source(&status)
        {
            let mut detail = src.to_string();
            let mut next = src.source();
            while let Some(e) = next {
                detail.push_str(": ");
                detail.push_str(&e.to_string());
                next = e.source();
            }
            return UpstreamError::Unavailable { backend, detail };
        }
        // A response whose body ended without a gRPC status (no trailers): tonic makes an
        // UNKNOWN of it, with no source. The backend's answer never arrived whole (a proxy or
        // load balancer on the way may have cut the stream), as when the connection breaks.
        if status.code() == tonic::Code::Unknown && status.message().starts_with(NO_STATUS) {
            return UpstreamError::Unavailable {
                backend,
                detail: status.message().to_string(),
            };
        }
        UpstreamError::Status { backend, status }
    }

    /// Classifies the status that ended a call with this `deadline` and `timeout` budget. A
    /// backend that gave up because of the `grpc-timeout` we sent (servers answer CANCELLED or
    /// DEADLINE_EXCEEDED) can beat our own timer by a few milliseconds: that is the gateway's
    /// deadline either way.
    pub fn from_call_status(
        backend: &str,
        status: tonic::Status,
        deadline: tokio::time::Instant,
        timeout: Duration,
        limit: usize,
    ) -> Self {
        let expired = matches!(
            status.code(),
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
        ) && deadline.saturating_duration_since(tokio::time::Instant::now())
            < Duration::from_millis(20);
        if expired {
            return UpstreamError::DeadlineExceeded {
                backend: backend.to_string(),
                timeout,
            };
        }
        Self::from_status(backend, status, limit)
    }

    /// The backend this error concerns, when known.
    pub fn backend(&self) -> Option<&str> {
        match self {
            UpstreamError::Status { backend, .. }
            | UpstreamError::Unavailable { backend, .. }
            | UpstreamError::DeadlineExceeded { backend, .. }
            | UpstreamError::ResponseTooLarge { backend, .. }
            | UpstreamError::CircuitOpen { backend, .. }
            | UpstreamError::Overloaded { backend } => Some(backend),
            UpstreamError::NoBackend { .. } => None,
        }
    }

    /// Whether this failure means the backend is unwell: UNAVAILABLE, DEADLINE_EXCEEDED,
    /// INTERNAL or UNKNOWN from the backend, an unreachable backend, or the deadline passing.
    /// Client errors (NOT_FOUND, INVALID_ARGUMENT, ...) never are. Breakers and outlier
    /// ejection count only these.
    pub fn is_sick(&self) -> bool {
        match self {
            UpstreamError::Status { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Internal
                    | tonic::Code::Unknown
            ),
            UpstreamError::Unavailable { .. } | UpstreamError::DeadlineExceeded { .. } => true,
            _ => false,
        }
    }

    /// Whether a static fallback may answer instead: a sick failure, an open circuit or a
    /// full bulkhead.
    pub fn allows_fallback(&self) -> bool {
        self.is_sick()
            || matches!(
                self,
                UpstreamError::CircuitOpen { .. } | UpstreamError::Overloaded { .. }
            )
    }

    /// When the client should try again (the `Retry-After` of an open circuit).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sick_failures_count() {
        let st = |code| UpstreamError::Status {
            backend: "b".into(),
            status: tonic::Status::new(code, "x"),
        };
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Internal,
            tonic::Code::Unknown,
        ] {
            assert!(st(code).is_sick(), "{code:?}");
        }
        for code in [
            tonic::Code::NotFound,
            tonic::Code::InvalidArgument,
            tonic::Code::PermissionDenied,
            tonic::Code::FailedPrecondition,
            tonic::Code::ResourceExhausted,
        ] {
            assert!(!st(code).is_sick(), "{code:?}");
            assert!(!st(code).allows_fallback(), "{code:?}");
        }
        let open = UpstreamError::CircuitOpen {
            backend: "b".into(),
            retry_after: Duration::from_millis(1200),
        };
        assert!(!open.is_sick() && open.allows_fallback());
        assert_eq!(whole_secs(open.retry_after().unwrap_or_default()), 2);
        assert_eq!(whole_secs(Duration::from_millis(10)), 1);
        assert!(open.to_string().contains("circuit breaker"), "{open}");
    }

    #[test]
    fn transport_failures_are_an_unavailable_backend_whatever_tonic_calls_them() {
        let transport = |code| {
            let mut status = tonic::Status::new(code, "h2 protocol error: http2 error");
            status.set_source(std::sync::Arc::new(std::io::Error::other("frame too big")));
            UpstreamError::from_status("b", status, 1024)
        };
        // Bytes that are not HTTP/2 (INTERNAL), a reset connection (UNKNOWN), a refused one.
        for code in [
            tonic::Code::Internal,
            tonic::Code::Unknown,
            tonic::Code::Unavailable,
        ] {
            let e = transport(code);
            assert!(
                matches!(&e, UpstreamError::Unavailable { detail, .. } if detail == "frame too big"),
                "{code:?}: {e:?}"
            );
        }
        // The deadline's codes stay theirs.
        for code in [tonic::Code::Cancelled, tonic::Code::DeadlineExceeded] {
            assert!(
                matches!(transport(code), UpstreamError::Status { .. }),
                "{code:?}"
            );
        }
        // A body that ended without a status (tonic's words), as when a proxy cuts the stream.
        let cut = tonic::Status::unknown(
            "protocol error: missing grpc-status trailer, stream was terminated without a final status (possible truncation by a proxy or load balancer)",
        );
        assert!(matches!(
            UpstreamError::from_status("b", cut, 1024),
            UpstreamError::Unavailable { .. }
        ));
        // The backend's own statuses are its answer, INTERNAL and UNKNOWN included.
        for code in [tonic::Code::Internal, tonic::Code::Unknown] {
            let e = UpstreamError::from_status("b", tonic::Status::new(code, "boom"), 1024);
            assert!(matches!(e, UpstreamError::Status { .. }), "{code:?}");
        }
    }
}
