//! Assembling the gateway: the current snapshot and its readiness, and the HTTP stack every request goes through (the ingress, response shaping, the doors). The
//! admin listener's router is [`crate::admin::router`].
//!
//! ```text
//! (CORS)                    preflights answered, CORS headers on every answer (with `cors`)
//! ingress::admit            request id, span + log line, snapshot pinned, header limits,
//!                           path normalised and routed to a door, budget, metadata,
//!                           policies' per-request hooks            -> Admitted
//!   shaping                 ETag/304, response compression
//!     CatchPanic            a bug costs one request a clean 500
//!       ingress: the encoding check, request decompression, the body read once
//!         the doors         by the Admitted door: GraphQL, operation endpoints,
//!                           REST routes, gRPC-Web, the admin endpoints
//! ```

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::{DecompressionBody, RequestDecompressionLayer};

use crate::error::GatewayError;
use crate::graphql::run::executor::GatewayExecutor;
use crate::graphql::run::prepare::GatewayPrepare;
use crate::graphql::transport::{GraphqlHttp, HttpSettings};
use crate::ingress::{self, Admitted, Ingress};
use crate::request::Door;
use crate::server::Readiness;
use crate::shaping;
use crate::snapshot::{Current, Snapshot};

/// The running gateway: the snapshot requests are served from, and its readiness.
#[derive(Debug)]
pub struct Gateway {
    current: Arc<Current>,
    readiness: Readiness,
}

impl Gateway {
    /// A gateway serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Arc<Self> {
        let current = Arc::new(Current::new(snapshot));
        let (full, per_address) = current.metrics().connection_refusals();
        Arc::new(Self {
            current,
            readiness: Readiness::counting_refusals(full, per_address),
        })
    }

    /// Whether it takes new traffic (`/readyz`); the server flips it when draining.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The snapshot a new request gets.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load()
    }

    /// Where the current snapshot is held.
    pub fn current(&self) -> &Arc<Current> {
        &self.current
    }

    /// Replaces the snapshot for requests admitted from now on.
    pub fn swap(&self, snapshot: Snapshot) {
        self.current.store(snapshot);
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

/// What the doors share.
#[derive(Clone)]
struct Doors {
    gateway: Arc<Gateway>,
    graphql: Option<GraphqlHttp<GatewayExecutor, GatewayPrepare>>,
}

/// Every request, served by the door the ingress chose.
async fn doors(State(doors): State<Doors>, req: Request) -> Response {
    let Some(admitted) = req.extensions().get::<Admitted>().cloned() else {
        return GatewayError::Internal("a request reached the doors unadmitted".into())
            .into_response();
    };
    match (admitted.ctx.door, &doors.graphql) {
        (Door::Graphql, Some(graphql)) => graphql.serve(req).await,
        (Door::Endpoint, _) => crate::graphql::bff::endpoints::handle(admitted, req).await,
        (Door::Admin, _) => admin(&doors.gateway, &admitted, req).await,
        (Door::GrpcWeb, _) => crate::grpcweb::door::handle(admitted, req).await,
        (Door::WebSocket, _) => crate::websocket::door::handle(admitted, req).await,
        (Door::Rest | Door::Graphql, _) => crate::rest::handler::handle(admitted, req).await,
    }
}

/// The admin door on the client port: `GET /healthz` (`ok`) and `GET /readyz` (200 `ready`
/// while taking traffic, 503 `draining` once shutdown started), for load balancers, and
/// `GET /openapi.json` (the REST routes' OpenAPI document, unless `rest.openapi: false`).
/// Metrics and views are only on the admin listener ([`crate::admin::router`]).
async fn admin(gateway: &Gateway, admitted: &Admitted, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return GatewayError::MethodNotAllowed {
            method: req.method().clone(),
            path: admitted.ctx.path.clone(),
            allowed: vec![Method::GET, Method::HEAD],
        }
        .into_response();
    }
    match admitted.ctx.path.as_str() {
        "/healthz" => (StatusCode::OK, "ok\n").into_response(),
        "/readyz" if gateway.readiness.is_ready() => (StatusCode::OK, "ready\n").into_response(),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response(),
        "/openapi.json" if admitted.snapshot.config.rest.openapi => (
            [(http::header::CONTENT_TYPE, "application/json")],
            admitted.snapshot.openapi_json(),
        )
            .into_response(),
        other
            if admitted.snapshot.config.portal.enabled
                && (other == "/portal" || other.starts_with("/portal/")) =>
        {
            use crate::portal::Page;
            if admitted.snapshot.config.portal.access == crate::config::PortalAccess::Identified
                && let Err(e) = identified(admitted, req).await
            {
                return e.into_response();
            }
            match crate::portal::page(&admitted.snapshot, other) {
                Page::Html(html) => (
                    [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    html,
                )
                    .into_response(),
                Page::Text(text) => (
                    [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    text,
                )
                    .into_response(),
                Page::NotFound(message) => GatewayError::Rejected {
                    kind: crate::error::ErrorKind::NotFound,
                    message,
                }
                .into_response(),
            }
        }
        // The files of the GraphiQL page, embedded (it works without internet access).
        other if other.starts_with("/graphiql/") && admitted.snapshot.config.graphql.graphiql => {
            match crate::graphql::transport::graphiql::asset(&other["/graphiql/".len()..]) {
                Some((bytes, content_type)) => (
                    [
                        (http::header::CONTENT_TYPE, content_type),
                        // Versioned with the binary: a day is safe, and lets browsers keep them.
                        (http::header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    bytes,
                )
                    .into_response(),
                None => GatewayError::RouteNotFound {
                    method: req.method().clone(),
                    path: other.to_string(),
                }
                .into_response(),
            }
        }
        // One service's routes: /openapi/demo.v1.UserService.json.
        other
            if admitted.snapshot.config.rest.openapi
                && other.starts_with("/openapi/")
                && other.ends_with(".json") =>
        {
            let snap = &admitted.snapshot;
            let service = &other["/openapi/".len()..other.len() - ".json".len()];
            match snap.openapi_service_json(service) {
                Some(doc) => {
                    ([(http::header::CONTENT_TYPE, "application/json")], doc).into_response()
                }
                None => GatewayError::Rejected {
                    kind: crate::error::ErrorKind::NotFound,
                    message: format!(
                        "no REST routes of a service {service:?}; documented: {}",
                        crate::openapi::services(snap)
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
                .into_response(),
            }
        }
        other => GatewayError::RouteNotFound {
            method: req.method().clone(),
            path: other.to_string(),
        }
        .into_response(),
    }
}

/// Identifies the caller of a portal page (`portal.access: identified`) with the snapshot's
/// policies, as for a REST request: an invalid credential is refused as it would be there, a
/// missing one with 401.
async fn identified(admitted: &Admitted, req: Request) -> Result<(), GatewayError> {
    let (parts, _) = req.into_parts();
    let mut ctx = (*admitted.ctx).clone();
    ctx.door = Door::Rest;
    admitted
        .snapshot
        .outbound
        .chain
        .on_request(&parts, &mut ctx)
        .await?;
    match ctx.identity {
        Some(_) => Ok(()),
        None => Err(GatewayError::Unauthenticated {
            message: "the developer portal is for identified callers (portal.access: identified): send your token or API key".into(),
            challenge: "Bearer realm=\"portico\"".into(),
        }),
    }
}

/// The axum router of the gateway: one handler for every door (the ingress routes, by the
/// normalised path), inside the layers of the module docs.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let snapshot = gateway.snapshot();
    let cfg = &snapshot.config;
    let graphql_path = snapshot
        .graphql
        .is_some()
        .then(|| ingress::route_path(&cfg.graphql.path));
    let graphql = graphql_path.as_ref().map(|path| {
        let settings = HttpSettings {
            graphiql: cfg.graphql.graphiql,
            path: path.clone(),
            max_variable_values: usize::try_from(cfg.graphql.limits.max_variable_values)
                .unwrap_or(usize::MAX),
        };
        let current = gateway.current().clone();
        GraphqlHttp::new(
            GatewayExecutor::new(current.clone()),
            Arc::new(GatewayPrepare::new(current)),
            settings,
        )
    });
    let app: Router = Router::new().fallback(doors).with_state(Doors {
        gateway: gateway.clone(),
        graphql,
    });
    let app = app.layer(
        ServiceBuilder::new()
            // A bug must cost one request a clean 500, never the connection or the process.
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(ingress::CheckEncodingLayer)
            .map_response(IntoResponse::into_response)
            .layer(RequestDecompressionLayer::new())
            .map_request(|req: http::Request<DecompressionBody<Body>>| req.map(Body::new))
            .layer(ingress::ReadBodyLayer),
    );
    let ingress = Ingress::new(gateway.current().clone(), graphql_path);
    shaping::layers(app, &cfg.shaping)
        .layer(middleware::from_fn_with_state(ingress, ingress::admit))
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
