//! The gRPC-Web renderer: how the gRPC-Web door writes a failure. Never an HTTP error: an
//! answer `200` with the error's gRPC code (from the taxonomy, [`ErrorKind::grpc_code`](crate::error::ErrorKind::grpc_code)) and
//! its client message as `grpc-status` / `grpc-message`, and a backend's typed details as
//! `grpc-status-details-bin`.
//!
//! A failure before any message is sent "trailers-only": the status in the response's
//! headers, an empty body ([`reject`]). A stream that fails after its first message ends with
//! the same status in its trailer frame ([`GatewayError::grpc_web_trailers`]).

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::GatewayError;
use super::status::add_headers;
use crate::grpcweb::frame::Trailers;
use crate::grpcweb::{Mode, WebContentType};
use crate::upstream::UpstreamError;

impl GatewayError {
    /// The error as gRPC trailers: its code, its client message, the backend's details.
    /// Logs what must not be sent.
    pub fn grpc_web_trailers(&self) -> Trailers {
        self.log_hidden();
        let details = match self {
            GatewayError::Upstream(UpstreamError::Status { status, .. }) => {
                Bytes::copy_from_slice(status.details())
            }
            _ => Bytes::new(),
        };
        Trailers {
            code: self.grpc_code(),
            message: self.client_message(),
            details,
        }
    }
}

/// Answers a gRPC-Web request that failed before any message with a trailers-only response:
/// `200`, the content type of the request's family, the status in the headers (with the
/// headers the error implies: `Retry-After`, `WWW-Authenticate`, `RateLimit`), no body.
pub fn reject(err: &GatewayError, request_headers: &HeaderMap) -> Response {
    let web = WebContentType::of(request_headers).unwrap_or(WebContentType {
        mode: Mode::Binary,
        proto: true,
    });
    let mut resp = (StatusCode::OK, ()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(web.reply_content_type()),
    );
    for (name, value) in err.grpc_web_trailers().pairs() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    add_headers(err, headers);
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;

    fn text(h: &HeaderMap, name: &str) -> String {
        h.get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn refusals_are_trailers_only_with_the_taxonomys_code() {
        let mut req = HeaderMap::new();
        req.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web-text"),
        );
        let err = GatewayError::RateLimited {
            message: "rate limit \"x\" reached".into(),
            retry_after: Duration::from_secs(3),
            policy: "\"x\";q=1;w=60".into(),
            state: "\"x\";r=0;t=3".into(),
        };
        let resp = reject(&err, &req);
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(text(h, "content-type"), "application/grpc-web-text+proto");
        assert_eq!(text(h, "grpc-status"), "8");
        assert_eq!(text(h, "grpc-message"), "rate limit \"x\" reached");
        assert_eq!(text(h, "retry-after"), "3");
        assert_eq!(text(h, "ratelimit"), "\"x\";r=0;t=3");
    }

    #[test]
    fn backend_statuses_pass_through_with_their_details() {
        let status = tonic::Status::with_details(
            Code::NotFound,
            "no user 42",
            Bytes::from_static(b"\x08\x05"),
        );
        let err = GatewayError::Upstream(UpstreamError::Status {
            backend: "users".into(),
            status,
        });
        let t = err.grpc_web_trailers();
        assert_eq!(t.code, Code::NotFound);
        assert_eq!(t.message, "no user 42");
        assert_eq!(&t.details[..], b"\x08\x05");
        let resp = reject(&err, &HeaderMap::new());
        assert_eq!(
            text(resp.headers(), "content-type"),
            "application/grpc-web+proto"
        );
        assert_eq!(text(resp.headers(), "grpc-status-details-bin"), "CAU");
    }

    #[test]
    fn internals_stay_hidden() {
        let err = GatewayError::Internal("lock poisoned at x.rs:1".into());
        let t = err.grpc_web_trailers();
        assert_eq!(t.code, Code::Internal);
        assert_eq!(t.message, "internal gateway error");
        let err = GatewayError::bad_request(None, "bad frame");
        assert_eq!(err.grpc_web_trailers().code, Code::InvalidArgument);
        let err = GatewayError::Unauthenticated {
            message: "send a token".into(),
            challenge: "Bearer realm=\"portico\"".into(),
        };
        let resp = reject(&err, &HeaderMap::new());
        assert_eq!(text(resp.headers(), "grpc-status"), "16");
        assert_eq!(
            text(resp.headers(), "www-authenticate"),
            "Bearer realm=\"portico\""
        );
    }
}
