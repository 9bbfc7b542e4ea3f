//! The `google.rpc.Status` renderer: how REST routes and operation endpoints write a failure.
//!
//! Body `{"code": <gRPC code number>, "message": ..., "details": [...]}` (the proto3 JSON of
//! `google.rpc.Status`, as grpc-gateway and Envoy write it), the status from the taxonomy, and
//! the headers the error implies: `Allow` (405), `Retry-After`, `Connection: close` when the
//! request body was not read to its end (408, 413).

use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, header};
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::{Value as Json, json};

use super::{ErrorKind, GatewayError, join_methods};
use crate::upstream::{UpstreamError, whole_secs};

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

impl GatewayError {
    /// Renders the error as a `google.rpc.Status` response. `pool` lets the backend's typed
    /// error details (`google.rpc.*` and the backend's own messages) be written as JSON
    /// objects with an `@type`.
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
        add_headers(self, resp.headers_mut());
        resp
    }

    /// The `google.rpc.Status` JSON of this error (also the error record of REST streams);
    /// logs what must not be sent.
    pub fn status_json(&self, pool: Option<&DescriptorPool>) -> StatusBody {
        self.log_hidden();
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
            GatewayError::Gone(r) => vec![retirement_info(r)],
            _ => Vec::new(),
        };
        StatusBody {
            code: self.grpc_code() as i32,
            message: self.client_message(),
            details,
        }
    }
}

/// The `google.rpc.ErrorInfo` detail of a retired version's answer: reason
/// `API_VERSION_RETIRED`, with the version, the replacement and its method and route.
pub fn retirement_info(r: &super::Retirement) -> Json {
    let mut metadata = serde_json::Map::new();
    metadata.insert("version".into(), Json::from(r.version.clone()));
    metadata.insert("method".into(), Json::from(r.method.clone()));
    for (k, v) in [
        ("replacement", &r.replacement),
        ("replacementMethod", &r.replacement_method),
        ("replacementRoute", &r.replacement_route),
    ] {
        if let Some(v) = v {
            metadata.insert(k.into(), Json::from(v.clone()));
        }
    }
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_VERSION_RETIRED",
        "domain": "portico",
        "metadata": metadata,
    })
}

/// The headers an error implies, whichever renderer writes its body.
pub(crate) fn add_headers(err: &GatewayError, headers: &mut http::HeaderMap) {
    if let GatewayError::MethodNotAllowed { allowed, .. } = err
        && let Ok(v) = HeaderValue::from_str(&join_methods(allowed))
    {
        headers.insert(header::ALLOW, v);
    }
    if let GatewayError::Unauthenticated { challenge, .. } = err
        && let Ok(v) = HeaderValue::from_str(challenge)
    {
        headers.insert(header::WWW_AUTHENTICATE, v);
    }
    if let GatewayError::RateLimited { policy, state, .. } = err {
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
    }
    if let Some(after) = err.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(whole_secs(after)));
    }
    // The rest of the body was not read: the connection cannot carry another request.
    if matches!(
        err.kind(),
        ErrorKind::RequestTimeout | ErrorKind::PayloadTooLarge
    ) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

/// Decodes `grpc-status-details-bin` (a `google.rpc.Status`) and renders each `Any` detail:
/// as its JSON form when the pool knows its type, else as `{"@type", "value": base64}`.
pub fn render_details(raw: &[u8], pool: Option<&DescriptorPool>) -> Vec<Json> {
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
    use std::time::Duration;

    use http::Method;
    use tonic::Code;

    use super::*;
    use crate::error::BodyTimeout;

    async fn body(resp: Response) -> Json {
        use http_body_util::BodyExt;
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_details_never_reach_the_body() {
        let e = GatewayError::Internal("pool lock poisoned at foo.rs:12".into());
        let resp = e.respond(None);
        assert_eq!(resp.status(), 500);
        let json = body(resp).await;
        assert_eq!(
            json,
            json!({"code": 13, "message": "internal gateway error", "details": []})
        );
    }

    #[test]
    fn an_open_circuit_is_a_503_with_retry_after() {
        let e = GatewayError::Upstream(UpstreamError::CircuitOpen {
            backend: "users".into(),
            retry_after: Duration::from_millis(1500),
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

    #[tokio::test]
    async fn a_slow_body_is_a_408_that_closes_the_connection() {
        let e = GatewayError::BodyTimeout(BodyTimeout::Idle(Duration::from_millis(200)));
        let resp = e.respond(None);
        assert_eq!(resp.status(), 408);
        assert_eq!(resp.headers()[header::CONNECTION], "close");
        let json = body(resp).await;
        assert_eq!(json["code"], 4);
        assert!(json["message"].as_str().unwrap().contains("200ms"));
    }

    #[tokio::test]
    async fn a_field_violation_is_a_typed_detail() {
        let e = GatewayError::bad_request(Some("user.email".into()), "not an email");
        let json = body(e.respond(None)).await;
        assert_eq!(
            json["details"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(
            json["details"][0]["fieldViolations"][0]["field"],
            "user.email"
        );
    }
}
