//! The error taxonomy of a request, and its renderers.
//!
//! Every failure of a request, whichever door it came through, is a [`GatewayError`]. Its
//! [`ErrorKind`] (the table in [`kind`]) decides everything a client sees: the origin (client,
//! gateway or upstream), whether retrying may help, the machine-readable code, the gRPC code
//! and the HTTP status. Nothing else picks a status. A renderer per door writes it:
//! [`status`] as a `google.rpc.Status` JSON body (REST routes and operation endpoints),
//! [`graphql`] as GraphQL errors with `extensions` (the GraphQL door), [`grpc_web`] as gRPC
//! statuses in headers or trailers (the gRPC-Web door). Gateway internals never reach a body:
//! they are logged.

pub mod graphql;
pub mod grpc_web;
pub mod kind;
pub mod status;

use std::time::Duration;

use http::{Method, StatusCode};
use tonic::Code;

pub use kind::{ErrorKind, Origin, code_name, http_status_of};
pub use status::{StatusBody, render_details};

use crate::upstream::UpstreamError;

/// Everything that can make a request fail.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GatewayError {
    /// No route matches the path.
    #[error("no route matches {method} {path}")]
    RouteNotFound {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
    },
    /// The path exists under other methods.
    #[error("method {method} is not allowed on {path}; allowed: {}", join_methods(.allowed))]
    MethodNotAllowed {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// Methods that would match.
        allowed: Vec<Method>,
    },
    /// The client sent something the gateway cannot turn into a valid call.
    #[error("{message}")]
    BadRequest {
        /// The request field (or header) concerned, as a dotted path, when known.
        field: Option<String>,
        /// What is wrong, for the client.
        message: String,
    },
    /// The request body exceeded the limit (counted after decompression).
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body's media type or encoding is not one the door takes.
    #[error("unsupported content type {got:?}: send {expected}")]
    UnsupportedMediaType {
        /// The content type (or encoding) received.
        got: String,
        /// What the door takes.
        expected: &'static str,
    },
    /// The client took too long to send its body.
    #[error("{0}")]
    BodyTimeout(BodyTimeout),
    /// The request headers are over a limit.
    #[error("the request headers are too large: {0}")]
    HeadersTooLarge(String),
    /// A request refused before anything ran, for a reason its kind names (GraphQL limits,
    /// persisted operations, the GraphQL-over-HTTP protocol).
    #[error("{message}")]
    Rejected {
        /// What kind of refusal (its code and status).
        kind: ErrorKind,
        /// The message for the client.
        message: String,
    },
    /// The caller is not identified (for something that needs it), or its credentials are not
    /// valid; `challenge` is the `WWW-Authenticate` value that says how to identify.
    #[error("{message}")]
    Unauthenticated {
        /// The message for the client (never why a token failed: that is logged).
        message: String,
        /// The `WWW-Authenticate` challenge.
        challenge: String,
    },
    /// The caller is identified but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller is over a rate limit; the fields are what the refusal's headers say.
    #[error("{message}")]
    RateLimited {
        /// The message for the client (which limit, and when to come back).
        message: String,
        /// When a request would pass again (`Retry-After`).
        retry_after: Duration,
        /// The `RateLimit-Policy` value of the limits that decided.
        policy: String,
        /// The `RateLimit` value of the limits that decided.
        state: String,
    },
    /// A method of a retired API version: 410 Gone, naming the replacement.
    #[error("{}", .0.message)]
    Gone(Box<Retirement>),
    /// A call to a backend failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A bug or an unexpected state in the gateway; the detail is logged, never sent.
    #[error("internal gateway error")]
    Internal(String),
}

/// What the answer of a retired API version's method says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retirement {
    /// The message for the client.
    pub message: String,
    /// The retired version, e.g. `v1`.
    pub version: String,
    /// The method called, `package.Service.Method`.
    pub method: String,
    /// The version that replaces it, when one is configured.
    pub replacement: Option<String>,
    /// The same method in the replacement version, e.g. `demo.v2.UserService.GetUser`.
    pub replacement_method: Option<String>,
    /// Its first REST route, e.g. `GET /v2/users/{id}`.
    pub replacement_route: Option<String>,
}

/// Which bound a slow body broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// The client paused longer than `limits.body_idle_timeout` between two pieces.
    #[error("the request body was not received in time (idle for more than {})", humantime::format_duration(*.0))]
    Idle(Duration),
    /// The whole body took longer than `limits.body_timeout`.
    #[error("the request body was not received in time (not complete within {})", humantime::format_duration(*.0))]
    Total(Duration),
}

pub(crate) fn join_methods(m: &[Method]) -> String {
    m.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

impl GatewayError {
    /// A 400 naming a field.
    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        GatewayError::BadRequest {
            field,
            message: message.into(),
        }
    }

    /// A refusal of this kind.
    pub fn rejected(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError::Rejected {
            kind,
            message: message.into(),
        }
    }

    /// Its row in the taxonomy.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GatewayError::RouteNotFound { .. } => ErrorKind::NotFound,
            GatewayError::MethodNotAllowed { .. } => ErrorKind::MethodNotAllowed,
            GatewayError::BadRequest { .. } => ErrorKind::BadRequest,
            GatewayError::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            GatewayError::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            GatewayError::BodyTimeout(_) => ErrorKind::RequestTimeout,
            GatewayError::HeadersTooLarge(_) => ErrorKind::HeadersTooLarge,
            GatewayError::Rejected { kind, .. } => *kind,
            GatewayError::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            GatewayError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            GatewayError::RateLimited { .. } => ErrorKind::RateLimited,
            GatewayError::Gone(_) => ErrorKind::Gone,
            GatewayError::Upstream(u) => upstream_kind(u),
            GatewayError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Who caused it.
    pub fn origin(&self) -> Origin {
        self.kind().origin()
    }

    /// Whether sending the same request again later may succeed.
    pub fn retryable(&self) -> bool {
        self.kind().retryable()
    }

    /// The gRPC code that classifies it (the `code` of a `google.rpc.Status` body).
    pub fn grpc_code(&self) -> Code {
        self.kind().grpc_code()
    }

    /// The HTTP status of a response failing with it.
    pub fn http_status(&self) -> StatusCode {
        self.kind().http_status()
    }

    /// When the client should try again (`Retry-After`), if the gateway knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::Upstream(u) => u.retry_after(),
            GatewayError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The backend concerned, when it is about one.
    pub fn backend(&self) -> Option<&str> {
        match self {
            GatewayError::Upstream(u) => u.backend(),
            _ => None,
        }
    }

    /// The message for the client: never a gateway internal or a transport detail.
    pub fn client_message(&self) -> String {
        match self {
            GatewayError::Upstream(UpstreamError::Status { status, .. }) => {
                status.message().to_string()
            }
            GatewayError::Upstream(UpstreamError::Unavailable { backend, .. }) => {
                format!("backend {backend:?} is unavailable")
            }
            other => other.to_string(),
        }
    }

    /// Logs what must not be sent (internal details, transport errors); renderers call it
    /// once per rendered error.
    pub fn log_hidden(&self) {
        match self {
            GatewayError::Internal(detail) => tracing::error!(%detail, "internal gateway error"),
            GatewayError::Upstream(UpstreamError::Unavailable { backend, detail }) => {
                tracing::warn!(%backend, %detail, "backend unavailable")
            }
            _ => {}
        }
    }
}

/// The kind of an upstream failure.
fn upstream_kind(e: &UpstreamError) -> ErrorKind {
    match e {
        UpstreamError::Status { status, .. } => ErrorKind::Upstream(status.code()),
        UpstreamError::Unavailable { .. } => ErrorKind::Unavailable,
        UpstreamError::DeadlineExceeded { .. } => ErrorKind::DeadlineExceeded,
        UpstreamError::ResponseTooLarge { .. } => ErrorKind::ResponseTooLarge,
        UpstreamError::NoBackend { .. } => ErrorKind::NoBackend,
        UpstreamError::CircuitOpen { .. } => ErrorKind::CircuitOpen,
        UpstreamError::Overloaded { .. } => ErrorKind::Overloaded,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_client() {
        let e = GatewayError::Internal("pool lock poisoned at foo.rs:12".into());
        assert_eq!(e.client_message(), "internal gateway error");
        assert_eq!(e.http_status(), 500);
        assert_eq!(e.origin(), Origin::Gateway);
        let e = GatewayError::Upstream(UpstreamError::Unavailable {
            backend: "users".into(),
            detail: "tcp connect error: 127.0.0.1:9".into(),
        });
        assert_eq!(e.client_message(), "backend \"users\" is unavailable");
        assert!(e.retryable());
    }

    #[test]
    fn upstream_errors_keep_their_kind() {
        let e = GatewayError::Upstream(UpstreamError::Status {
            backend: "users".into(),
            status: tonic::Status::not_found("no user 9"),
        });
        assert_eq!(e.kind(), ErrorKind::Upstream(Code::NotFound));
        assert_eq!(e.kind().code(), "NOT_FOUND");
        assert_eq!(e.http_status(), 404);
        assert_eq!(e.client_message(), "no user 9");
        assert_eq!(e.backend(), Some("users"));
        let e = GatewayError::Upstream(UpstreamError::NoBackend {
            service: "x.Y".into(),
        });
        assert_eq!(e.kind().code(), "UNAVAILABLE");
        assert_eq!(e.http_status(), 503);
        let e = GatewayError::Upstream(UpstreamError::CircuitOpen {
            backend: "users".into(),
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(e.kind().code(), "CIRCUIT_OPEN");
    }

    #[test]
    fn body_timeouts_say_which_bound() {
        let idle = GatewayError::BodyTimeout(BodyTimeout::Idle(Duration::from_millis(200)));
        assert_eq!(idle.http_status(), 408);
        assert!(
            idle.to_string().contains("idle for more than 200ms"),
            "{idle}"
        );
        let total = GatewayError::BodyTimeout(BodyTimeout::Total(Duration::from_secs(2)));
        assert!(
            total.to_string().contains("not complete within 2s"),
            "{total}"
        );
    }
}
