//! The GraphQL renderer: a [`GatewayError`] as a GraphQL error, message and `extensions`.
//!
//! `extensions.code` is the kind's code (the gRPC status name for a backend's answer, the
//! gateway's own otherwise: `DEADLINE_EXCEEDED`, `CIRCUIT_OPEN`, `QUERY_TOO_DEEP`...); an
//! error about a backend call adds `service` and `backend`, `retryAfter` (seconds) when the
//! gateway knows when to try again, and the backend's typed `details`. Where such an error
//! goes (a field error at its path, or a request error) and with which HTTP status is the
//! GraphQL transport's business; what it says is decided here.

use async_graphql::{ErrorExtensionValues, ServerError};
use prost_reflect::DescriptorPool;

use super::{GatewayError, render_details};
use crate::upstream::{UpstreamError, whole_secs};

/// The extensions of `err`; `service` is the gRPC service of the failed call, if any.
pub fn extensions(
    err: &GatewayError,
    service: Option<&str>,
    pool: Option<&DescriptorPool>,
) -> ErrorExtensionValues {
    err.log_hidden();
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", err.kind().code());
    if let Some(service) = service {
        ext.set("service", service);
    }
    if let Some(backend) = err.backend() {
        ext.set("backend", backend);
    }
    if let Some(after) = err.retry_after() {
        ext.set("retryAfter", whole_secs(after));
    }
    if let GatewayError::Upstream(UpstreamError::Status { status, .. }) = err {
        let details = render_details(status.details(), pool);
        if !details.is_empty()
            && let Ok(v) = async_graphql::Value::from_json(serde_json::Value::Array(details))
        {
            ext.set("details", v);
        }
    }
    if let GatewayError::Gone(r) = err {
        if let Some(rep) = &r.replacement {
            ext.set("replacement", rep.as_str());
        }
        if let Some(m) = &r.replacement_method {
            ext.set("replacementMethod", m.as_str());
        }
        if let Ok(v) = async_graphql::Value::from_json(serde_json::Value::Array(vec![
            super::status::retirement_info(r),
        ])) {
            ext.set("details", v);
        }
    }
    ext
}

/// A field error for `err` (the resolver sets its path).
pub fn field_error(
    err: &GatewayError,
    service: Option<&str>,
    pool: Option<&DescriptorPool>,
) -> async_graphql::Error {
    async_graphql::Error {
        message: err.client_message(),
        source: None,
        extensions: Some(extensions(err, service, pool)),
    }
}

/// A request error for `err`: no path, no location.
pub fn request_error(err: &GatewayError, pool: Option<&DescriptorPool>) -> ServerError {
    let mut e = ServerError::new(err.client_message(), None);
    e.extensions = Some(extensions(err, None, pool));
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use async_graphql::Value;

    use super::*;
    use crate::error::ErrorKind;

    fn code(e: &ServerError) -> Option<&Value> {
        e.extensions.as_ref().and_then(|x| x.get("code"))
    }

    #[test]
    fn codes_and_backend_extensions() {
        let e = GatewayError::Upstream(UpstreamError::CircuitOpen {
            backend: "users".into(),
            retry_after: Duration::from_millis(1200),
        });
        let f = field_error(&e, Some("demo.v1.UserService"), None);
        let ext = f.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&Value::from("CIRCUIT_OPEN")));
        assert_eq!(
            ext.get("service"),
            Some(&Value::from("demo.v1.UserService"))
        );
        assert_eq!(ext.get("backend"), Some(&Value::from("users")));
        assert_eq!(ext.get("retryAfter"), Some(&Value::from(2u64)));

        let r = request_error(
            &GatewayError::rejected(ErrorKind::QueryTooDeep, "too deep"),
            None,
        );
        assert_eq!(r.message, "too deep");
        assert_eq!(code(&r), Some(&Value::from("QUERY_TOO_DEEP")));
        assert!(r.path.is_empty());
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let r = request_error(&GatewayError::Internal("secret at x.rs:1".into()), None);
        assert_eq!(r.message, "internal gateway error");
        assert_eq!(code(&r), Some(&Value::from("INTERNAL")));
    }
}
