//! Upstream failures as GraphQL field errors: the message, and in `extensions` the code (the
//! gRPC status name, or the gateway's own such as `DEADLINE_EXCEEDED`), the service, the backend
//! and the backend's typed details.

use async_graphql::{Error, ErrorExtensions};
use prost_reflect::DescriptorPool;
use tonic::Code;

use crate::error::render_details;
use crate::upstream::UpstreamError;

/// The SCREAMING_SNAKE_CASE name of a gRPC code, as GraphQL error codes are written.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A field error for a failed call to `service`.
pub fn upstream_error(e: &UpstreamError, service: &str, pool: &DescriptorPool) -> Error {
    let (code, message, details) = match e {
        UpstreamError::Status { status, .. } => (
            code_name(status.code()),
            status.message().to_string(),
            render_details(status.details(), Some(pool)),
        ),
        UpstreamError::Unavailable { backend, .. } => (
            "UNAVAILABLE",
            format!("backend {backend:?} is unavailable"),
            Vec::new(),
        ),
        UpstreamError::DeadlineExceeded { .. } => ("DEADLINE_EXCEEDED", e.to_string(), Vec::new()),
        UpstreamError::ResponseTooLarge { .. } => ("RESPONSE_TOO_LARGE", e.to_string(), Vec::new()),
        UpstreamError::NoBackend { .. } => ("UNAVAILABLE", e.to_string(), Vec::new()),
        UpstreamError::CircuitOpen { .. } => ("CIRCUIT_OPEN", e.to_string(), Vec::new()),
        UpstreamError::Overloaded { .. } => ("OVERLOADED", e.to_string(), Vec::new()),
    };
    let retry_after = e.retry_after().map(crate::upstream::whole_secs);
    let backend = e.backend().map(str::to_string);
    let service = service.to_string();
    Error::new(message).extend_with(move |_, ext| {
        ext.set("code", code);
        ext.set("service", service.as_str());
        if let Some(b) = &backend {
            ext.set("backend", b.as_str());
        }
        if let Some(secs) = retry_after {
            ext.set("retryAfter", secs);
        }
        if !details.is_empty()
            && let Ok(v) =
                async_graphql::Value::from_json(serde_json::Value::Array(details.clone()))
        {
            ext.set("details", v);
        }
    })
}
