//! CORS, outermost: browsers' preflight requests answered here, without reaching a door or a
//! backend, and the CORS headers on every answer (refusals included, so a page can read its
//! 401 or 429). tower-http's `CorsLayer` does the protocol ([`crate::cors`] builds it from the
//! `cors` section); it is taken from the current snapshot, so a reload changes it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};

use crate::snapshot::Current;

/// Middleware, outside the ingress: the current snapshot's CORS layer around the rest.
pub async fn cors(State(current): State<Arc<Current>>, req: Request, next: Next) -> Response {
    let snapshot = current.load();
    match &snapshot.cors {
        None => next.run(req).await,
        Some(cors) => match cors.layer(next).oneshot(req).await {
            Ok(resp) => resp.into_response(),
            Err(never) => match never {},
        },
    }
}
