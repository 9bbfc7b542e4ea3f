//! The admin listener, apart from client traffic: `/metrics`, `/healthz`, `/readyz`, the
//! read-only views of what is served (`views`), the backends' state, the reload history and
//! `POST /admin/reload`. With `admin.token_sha256`, everything but the health endpoints needs
//! `Authorization: Bearer <token>`.

pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::app::Gateway;
use crate::error::{ErrorKind, GatewayError};
use crate::reload::{Reloader, Trigger};

/// The admin listener's router:
///
/// | path | what |
/// |---|---|
/// | `GET /metrics` | Prometheus text (OpenMetrics when the `Accept` header asks for it) |
/// | `GET /healthz` | `ok` while the process runs |
/// | `GET /readyz` | 200 `ready` while taking traffic; 503 while draining or while a backend of `admin.ready_backends` has no healthy endpoint |
/// | `GET /admin/services` | services and methods, with backend and descriptor source |
/// | `GET /admin/routes` | the REST route table, and the bindings left out |
/// | `GET /admin/operations` | named operations and their REST endpoints |
/// | `GET /admin/schema` | the GraphQL SDL (text) |
/// | `GET /admin/backends` | breakers, bulkheads, endpoints and their health |
/// | `GET /admin/reloads` | the last reloads: time, trigger, result, error |
/// | `POST /admin/reload` | reload now; answers the reload's record (422 when it failed) |
/// | `POST /admin/cache/purge` | drops cached replies: `{"method": M}` or `{"method": M, "request": {...}}` |
///
/// `reloader` runs `POST /admin/reload` and keeps the history; without one (a gateway not
/// started from a config file) there is nothing to reload and no history.
pub fn router(gateway: Arc<Gateway>, reloader: Option<Arc<Reloader>>) -> Router {
    use axum::routing::{get, post};
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/admin/services", get(services))
        .route("/admin/routes", get(routes))
        .route("/admin/operations", get(operations))
        .route("/admin/schema", get(schema))
        .route("/admin/backends", get(backends))
        .route("/admin/reloads", get(reloads))
        .route("/admin/reload", post(reload))
        .route("/admin/cache/purge", post(purge))
        .fallback(|req: Request| async move {
            GatewayError::RouteNotFound {
                method: req.method().clone(),
                path: req.uri().path().to_string(),
            }
            .into_response()
        })
        .layer(middleware::from_fn_with_state(gateway.clone(), token))
        .with_state(Admin { gateway, reloader })
}

/// What the admin handlers share.
#[derive(Clone)]
struct Admin {
    gateway: Arc<Gateway>,
    reloader: Option<Arc<Reloader>>,
}

async fn metrics(State(Admin { gateway, .. }): State<Admin>, req: Request) -> Response {
    let openmetrics = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let metrics = gateway.current().metrics();
    metrics
        .connections_open
        .set(gateway.readiness().open_connections());
    metrics.runtime_tasks.set(
        i64::try_from(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        )
        .unwrap_or(i64::MAX),
    );
    let (content_type, body) = metrics.render(openmetrics);
    ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn ready(State(Admin { gateway, .. }): State<Admin>) -> Response {
    if !gateway.readiness().is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    let snapshot = gateway.snapshot();
    let required = snapshot
        .config
        .admin
        .as_ref()
        .map(|a| a.ready_backends.as_slice())
        .unwrap_or_default();
    for name in required {
        let serves = |b: &crate::upstream::Backend| {
            let set = b.endpoints();
            set.endpoints()
                .iter()
                .any(|ep| ep.is_healthy() && set.ejected_for(ep).is_none())
        };
        // A split backend is ready when every variant that takes traffic is.
        let healthy = match snapshot.upstream.split(name) {
            Some(split) => split
                .variants()
                .iter()
                .filter(|v| v.weight > 0)
                .all(|v| serves(&v.backend)),
            None => snapshot.upstream.backend(name).is_some_and(serves),
        };
        if !healthy {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("backend {name:?} has no healthy endpoint\n"),
            )
                .into_response();
        }
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn services(State(Admin { gateway, .. }): State<Admin>) -> Response {
    axum::Json(views::services(&gateway.snapshot())).into_response()
}

async fn routes(State(Admin { gateway, .. }): State<Admin>) -> Response {
    axum::Json(views::routes(&gateway.snapshot())).into_response()
}

async fn operations(State(Admin { gateway, .. }): State<Admin>) -> Response {
    axum::Json(views::operations(&gateway.snapshot())).into_response()
}

async fn schema(State(Admin { gateway, .. }): State<Admin>) -> Response {
    match &gateway.snapshot().graphql {
        Some(schema) => (
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            schema.sdl(),
        )
            .into_response(),
        None => GatewayError::Rejected {
            kind: ErrorKind::NotFound,
            message: "GraphQL is disabled in this config (graphql.enabled: false)".into(),
        }
        .into_response(),
    }
}

async fn backends(State(Admin { gateway, .. }): State<Admin>) -> Response {
    axum::Json(gateway.snapshot().upstream.status()).into_response()
}

async fn reloads(State(Admin { reloader, .. }): State<Admin>) -> Response {
    let records = reloader.map(|r| r.history().records()).unwrap_or_default();
    axum::Json(serde_json::json!({ "reloads": records })).into_response()
}

async fn reload(State(Admin { reloader, .. }): State<Admin>) -> Response {
    let Some(reloader) = reloader else {
        return GatewayError::Rejected {
            kind: ErrorKind::NotFound,
            message: "nothing to reload: this gateway was not started from a config file".into(),
        }
        .into_response();
    };
    let record = reloader.reload(Trigger::Admin).await;
    let status = if record.result == "error" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, axum::Json(record)).into_response()
}

/// What `POST /admin/cache/purge` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    /// `package.Service.Method`, a method of `cache.methods`.
    method: String,
    /// Only this request's entries (its message as JSON), whatever the caller.
    #[serde(default)]
    request: Option<serde_json::Value>,
}

async fn purge(State(Admin { gateway, .. }): State<Admin>, body: axum::body::Bytes) -> Response {
    let snapshot = gateway.snapshot();
    let Some(cache) = &snapshot.cache else {
        return GatewayError::Rejected {
            kind: ErrorKind::NotFound,
            message: "no response cache in this config (cache)".into(),
        }
        .into_response();
    };
    let body: PurgeBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return GatewayError::bad_request(
                None,
                format!(
                    "the body must be {{\"method\": \"package.Service.Method\"}}, with an optional \"request\" object: {e}"
                ),
            )
            .into_response();
        }
    };
    match cache.purge(&body.method, body.request.as_ref()).await {
        Ok(n) => axum::Json(serde_json::json!({
            "method": body.method,
            "request": body.request,
            "purged": n,
        }))
        .into_response(),
        Err(message) => GatewayError::bad_request(None, message).into_response(),
    }
}

/// The admin token check (health endpoints are open: probes must reach them).
async fn token(
    State(gateway): State<Arc<Gateway>>,
    req: Request,
    next: middleware::Next,
) -> Response {
    let path = req.uri().path();
    let expected = gateway
        .snapshot()
        .config
        .admin
        .as_ref()
        .and_then(|a| a.token_sha256.clone());
    if let Some(expected) = expected
        && path != "/healthz"
        && path != "/readyz"
    {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| hex::encode(sha2::Sha256::digest(t.trim().as_bytes())));
        let ok = presented.is_some_and(|p| {
            bool::from(p.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes()))
        });
        if !ok {
            return GatewayError::Unauthenticated {
                message: "the admin endpoints need `Authorization: Bearer <admin token>`".into(),
                challenge: "Bearer realm=\"portico-admin\"".into(),
            }
            .into_response();
        }
    }
    next.run(req).await
}
