//! The gateway's prepare step for every GraphQL operation, whatever the transport or door:
//! resolve persisted operations (before anything is parsed), enforce the query limits before
//! any backend is called, and attach the snapshot and request context the ingress pinned
//! (every call of the operation inherits its metadata and budget).

use std::sync::Arc;

use http::request::Parts;

use super::executor::Prepared;
use crate::error::{ErrorKind, GatewayError};
use crate::graphql::engine::limits::{self, codes};
use crate::graphql::transport::{Prepare, is_websocket};
use crate::ingress::Admitted;
use crate::request::RequestCtx;
use crate::snapshot::{Current, Snapshot};

/// Prepares operations against the gateway's current snapshot.
#[derive(Debug)]
pub struct GatewayPrepare {
    current: Arc<Current>,
}

/// Where an operation comes from, which decides whether persisted-operation rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client's GraphQL request: persisted-operation rules apply.
    Client,
    /// A document of the operations folder run by the gateway itself (a REST endpoint):
    /// already trusted and validated.
    Trusted,
}

impl GatewayPrepare {
    /// A prepare step whose WebSocket operations run on the snapshots of `current`.
    pub fn new(current: Arc<Current>) -> Self {
        Self { current }
    }

    /// Prepares `req` of the request `ctx` on `snapshot`: persisted-operation rules (for
    /// clients' documents), query limits, and the [`Prepared`] the executor runs it with.
    pub async fn prepare_on(
        snapshot: Arc<Snapshot>,
        ctx: Arc<RequestCtx>,
        req: async_graphql::Request,
        origin: Origin,
    ) -> Result<async_graphql::Request, GatewayError> {
        let Some(schema) = snapshot.graphql.clone() else {
            return Err(GatewayError::rejected(
                ErrorKind::GraphqlDisabled,
                "GraphQL is disabled in this gateway's configuration",
            ));
        };
        let (mut req, pending) = match origin {
            Origin::Client => snapshot.persisted.resolve(req).await?,
            Origin::Trusted => (req, None),
        };
        let lim = &snapshot.config.graphql.limits;
        if lim.max_tokens > 0 {
            let tokens = limits::count_tokens(&req.query, lim.max_tokens);
            if tokens > lim.max_tokens {
                return Err(GatewayError::rejected(
                    ErrorKind::TooManyTokens,
                    format!(
                        "the document has more than {} tokens (limit graphql.limits.max_tokens)",
                        lim.max_tokens
                    ),
                ));
            }
        }
        let variables = req
            .variables
            .clone()
            .into_value()
            .into_json()
            .unwrap_or(serde_json::Value::Null);
        let operation = req.operation_name.clone();
        // A document that does not parse is left to the executor, which reports it the
        // standard way; everything else is measured before execution.
        let mut parsed = false;
        schema.documents.prime(&mut req);
        if let Ok(doc) = req.parsed_query() {
            parsed = true;
            match limits::check_document(
                doc,
                operation.as_deref(),
                &variables,
                lim,
                schema.as_ref(),
            ) {
                Ok(_) => {}
                Err(v)
                    if v.kind == codes::GRAPHQL_PARSE_FAILED
                        || v.kind == codes::OPERATION_RESOLUTION_FAILURE => {}
                Err(v) => {
                    return Err(GatewayError::rejected(v.kind, v.message));
                }
            }
        }
        // APQ: only documents that parse and pass the limits are registered.
        if let Some(pending) = pending
            && parsed
        {
            snapshot.persisted.register(pending).await;
        }
        Ok(req.data(Prepared { snapshot, ctx }))
    }
}

impl Prepare for GatewayPrepare {
    async fn prepare(
        &self,
        req: async_graphql::Request,
        parts: &Parts,
    ) -> Result<async_graphql::Request, GatewayError> {
        let Some(admitted) = parts.extensions.get::<Admitted>() else {
            return Err(GatewayError::Internal(
                "a GraphQL request reached the prepare step unadmitted".into(),
            ));
        };
        if !is_websocket(parts) {
            return Self::prepare_on(
                admitted.snapshot.clone(),
                admitted.ctx.clone(),
                req,
                Origin::Client,
            )
            .await;
        }
        // An operation of a WebSocket connection: the connection may outlive a reload, its
        // operations run on the snapshot current when they start, each with its own clock.
        let snapshot = self.current.load();
        let mut ctx = (*admitted.ctx).clone();
        ctx.budget = ctx.budget.restarted(snapshot.config.deadlines.max.get());
        if !Arc::ptr_eq(&snapshot, &admitted.snapshot) {
            ctx.metadata = snapshot
                .headers
                .request_metadata(&parts.headers, Some(&ctx.id));
            snapshot.outbound.chain.on_request(parts, &mut ctx).await?;
        }
        Self::prepare_on(snapshot, Arc::new(ctx), req, Origin::Client).await
    }
}
