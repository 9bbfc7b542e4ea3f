//! The error taxonomy of a request, and the single responder that turns any of it into HTTP.
//!
//! Every failure of a request ends up as a [`GatewayError`]; [`GatewayError::respond`] is the
//! only place that picks an HTTP status and writes the `google.rpc.Status` JSON body
//! (`code`, `message`, `details`). Gateway internals never reach the body: they are logged.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::{Value as Json, json};
use tonic::Code;

use crate::upstream::{UpstreamError, whole_secs};

/// Everything that can make a request fail, classified by origin.
#[derive(Debug, thiserror::Error)]
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
        /// The request field concerned, as a dotted path, when known.
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
    /// The body is not JSON (or NDJSON for client streams).
    #[error("unsupported content type {got:?}: send {expected}")]
    UnsupportedMediaType {
        /// The content type received.
        got: String,
        /// What the route takes.
        expected: &'static str,
    },
    /// The client paused too long while sending its body.
    #[error("the request body was not received in time (idle for more than {0:?})")]
    BodyTimeout(std::time::Duration),
    /// A call to a backend failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A bug or an unexpected state in the gateway; the detail is logged, never sent.
    #[error("internal gateway error")]
    Internal(String),
}

fn join_methods(m: &[Method]) -> String {
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

    /// The gRPC code that classifies this error (the `code` of the JSON body).
    pub fn grpc_code(&self) -> Code {
        match self {
            GatewayError::RouteNotFound { .. } => Code::NotFound,
            GatewayError::MethodNotAllowed { .. } => Code::Unimplemented,
            GatewayError::BadRequest { .. } | GatewayError::UnsupportedMediaType { .. } => {
                Code::InvalidArgument
            }
            GatewayError::PayloadTooLarge { .. } => Code::ResourceExhausted,
            GatewayError::BodyTimeout(_) => Code::DeadlineExceeded,
            GatewayError::Upstream(u) => match u {
                UpstreamError::Status { status, .. } => status.code(),
                UpstreamError::Unavailable { .. }
                | UpstreamError::NoBackend { .. }
                | UpstreamError::CircuitOpen { .. }
                | UpstreamError::Overloaded { .. } => Code::Unavailable,
                UpstreamError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
                UpstreamError::ResponseTooLarge { .. } => Code::Internal,
            },
            GatewayError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status of the response.
    pub fn http_status(&self) -> StatusCode {
        match self {
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Upstream(UpstreamError::ResponseTooLarge { .. }) => {
                StatusCode::BAD_GATEWAY
            }
            _ => http_status_of(self.grpc_code()),
        }
    }

    fn client_message(&self) -> String {
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

    /// Renders the error. `pool` lets the backend's typed error details (`google.rpc.*` and
    /// the backend's own detail messages) be written as JSON objects with an `@type`.
    pub fn respond(&self, pool: Option<&DescriptorPool>) -> Response {
        let body = self.status_json(pool);
        let mut resp = (
            self.http_status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response();
        if let GatewayError::MethodNotAllowed { allowed, .. } = self
            && let Ok(v) = HeaderValue::from_str(&join_methods(allowed))
        {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        if let GatewayError::Upstream(u) = self
            && let Some(after) = u.retry_after()
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(whole_secs(after)));
        }
        resp
    }

    /// The `google.rpc.Status` JSON of this error (also used as the error record of streams);
    /// logs what must not be sent.
    pub fn status_json(&self, pool: Option<&DescriptorPool>) -> StatusBody {
        match self {
            GatewayError::Internal(detail) => tracing::error!(%detail, "internal gateway error"),
            GatewayError::Upstream(UpstreamError::Unavailable { backend, detail }) => {
                tracing::warn!(%backend, %detail, "backend unavailable")
            }
            _ => {}
        }
        let details = match self {
            GatewayError::Upstream(UpstreamError::Status { status, .. }) => {
                render_details(status.details(), pool)
            }
            GatewayError::BadRequest {
                field: Some(field),
                message,
            } => vec![json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{ "field": field, "description": message }],
            })],
            _ => Vec::new(),
        };
        StatusBody {
            code: self.grpc_code() as i32,
            message: self.client_message(),
            details,
        }
    }
}

/// A `google.rpc.Status` as JSON, fields in their proto order.
#[derive(Debug, serde::Serialize)]
pub struct StatusBody {
    /// The gRPC code, as a number.
    pub code: i32,
    /// The message for the client.
    pub message: String,
    /// Typed details, each with an `@type`.
    pub details: Vec<Json>,
}

impl std::fmt::Display for StatusBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(std::fmt::Error),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

/// The standard gRPC code -> HTTP status table (as grpc-gateway and Envoy use it).
pub fn http_status_of(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// Decodes `grpc-status-details-bin` (a `google.rpc.Status`) and renders each `Any` detail:
/// as its JSON form when the pool knows its type, else as `{"@type", "value": base64}`.
pub(crate) fn render_details(raw: &[u8], pool: Option<&DescriptorPool>) -> Vec<Json> {
    if raw.is_empty() {
        return Vec::new();
    }
    let Some(pool) = pool else {
        return vec![json!({ "@type": "type.googleapis.com/google.rpc.Status",
            "value": base64::engine::general_purpose::STANDARD.encode(raw) })];
    };
    let Some(status_desc) = pool.get_message_by_name("google.rpc.Status") else {
        return Vec::new();
    };
    let Ok(status) = DynamicMessage::decode(status_desc, Bytes::copy_from_slice(raw)) else {
        return Vec::new();
    };
    let Some(details) = status.get_field_by_name("details") else {
        return Vec::new();
    };
    let Value::List(items) = details.as_ref() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| item.as_message())
        .map(|any| {
            serde_json::to_value(any).unwrap_or_else(|_| {
                let type_url = any
                    .get_field_by_name("type_url")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let value = any
                    .get_field_by_name("value")
                    .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
                    .unwrap_or_default();
                json!({ "@type": type_url,
                    "value": base64::engine::general_purpose::STANDARD.encode(value) })
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_status_table() {
        for (code, http) in [
            (Code::NotFound, 404),
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::AlreadyExists, 409),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Cancelled, 499),
        ] {
            assert_eq!(http_status_of(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_body() {
        let e = GatewayError::Internal("pool lock poisoned at foo.rs:12".into());
        let resp = e.respond(None);
        assert_eq!(resp.status(), 500);
        assert_eq!(e.client_message(), "internal gateway error");
    }

    #[test]
    fn an_open_circuit_is_a_503_with_retry_after() {
        let e = GatewayError::Upstream(UpstreamError::CircuitOpen {
            backend: "users".into(),
            retry_after: std::time::Duration::from_millis(1500),
        });
        let resp = e.respond(None);
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        assert_eq!(e.grpc_code(), Code::Unavailable);
        assert!(e.client_message().contains("circuit breaker"));
        let e = GatewayError::Upstream(UpstreamError::Overloaded {
            backend: "users".into(),
        });
        let resp = e.respond(None);
        assert_eq!(resp.status(), 503);
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        assert!(e.client_message().contains("overloaded"));
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let e = GatewayError::MethodNotAllowed {
            method: Method::DELETE,
            path: "/v1/users".into(),
            allowed: vec![Method::GET, Method::POST],
        };
        let resp = e.respond(None);
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[header::ALLOW], "GET, POST");
    }
}
