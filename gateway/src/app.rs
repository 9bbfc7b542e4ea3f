//! Assembling the gateway: the current snapshot, the axum router with the edge layers, and
//! running it on a listener.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::{DecompressionBody, RequestDecompressionLayer};

use crate::edge;
use crate::error::GatewayError;
use crate::graphql::{
    self, executor::GatewayExecutor, http::HttpSettings, prepare::GatewayPrepare,
};
use crate::server::Readiness;
use crate::shaping;
use crate::snapshot::Snapshot;

/// The running gateway: holds the snapshot requests are served from, and its readiness.
#[derive(Debug)]
pub struct Gateway {
    current: RwLock<Arc<Snapshot>>,
    readiness: Readiness,
}

impl Gateway {
    /// A gateway serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(snapshot)),
            readiness: Readiness::new(),
        })
    }

    /// Whether it takes new traffic (`/readyz`); the server flips it when draining.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The snapshot a new request should use; the request keeps it to the end.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the snapshot for requests that start from now on.
    pub fn swap(&self, snapshot: Snapshot) {
        let new = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// The answer to a request whose handler panicked: the detail is logged, the client gets the
/// standard 500 body.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    GatewayError::Internal(format!("handler panicked: {detail}")).into_response()
}

/// Request encodings the gateway can decompress.
const ACCEPTED_ENCODINGS: &[&str] = &["gzip", "x-gzip", "br", "identity"];

/// Rejects a `Content-Encoding` the gateway cannot decompress with a clear 415.
async fn content_encoding_guard(req: Request, next: Next) -> Response {
    if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
        let text = enc.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if !ACCEPTED_ENCODINGS.contains(&text.as_str()) {
            return GatewayError::UnsupportedMediaType {
                got: format!("content-encoding: {text}"),
                expected: "a body encoded with gzip, br or identity",
            }
            .into_response();
        }
    }
    next.run(req).await
}

/// `GET /readyz`: 200 `ready` while taking traffic, 503 `draining` once shutdown started.
async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.readiness.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    }
}

/// `GET /admin/backends`: per backend, breaker state, calls in flight, bulkhead and endpoints
/// with their health (JSON). Not authenticated: expose the gateway's port only where that is
/// acceptable, until the admin endpoints get their own listener or auth.
async fn admin_backends(State(gateway): State<Arc<Gateway>>) -> Response {
    axum::Json(gateway.snapshot().upstream.status()).into_response()
}

/// The axum router of the gateway: health, readiness and admin endpoints, the REST door, and
/// the layers (request id and access log outermost, then response compression and ETags as
/// `shaping` configures them, then request decompression).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let snapshot = gateway.snapshot();
    let mut app: Router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/admin/backends", get(admin_backends))
        // Operations published as REST endpoints first; everything else is the REST door's.
        .fallback(crate::endpoints::handle)
        .with_state(gateway.clone());
    if snapshot.graphql.is_some() {
        let cfg = &snapshot.config;
        let settings = HttpSettings {
            graphiql: cfg.graphql.graphiql,
            path: cfg.graphql.path.clone(),
            max_body_bytes: cfg.limits.max_body_bytes.as_usize(),
        };
        app = app.merge(graphql::http::router(
            GatewayExecutor::new(gateway.clone()),
            Arc::new(GatewayPrepare::new(gateway.clone())),
            settings,
        ));
    }
    let app = app.layer(
        ServiceBuilder::new()
            // A bug must cost one request a clean 500, never the connection or the process.
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(middleware::from_fn(content_encoding_guard))
            .layer(RequestDecompressionLayer::new())
            .map_request(|req: http::Request<DecompressionBody<Body>>| req.map(Body::new)),
    );
    // Response shaping (ETag/304, compression) over every route, then the edge layer.
    shaping::layers(app, &snapshot.config.shaping).layer(middleware::from_fn(edge::request_context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_a_plain_500_without_its_message() {
        use http_body_util::BodyExt;
        let resp = panic_response(Box::new("index out of bounds at foo.rs:3".to_string()));
        assert_eq!(resp.status(), 500);
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("internal gateway error"), "{text}");
        assert!(!text.contains("foo.rs"), "{text}");
    }
}
