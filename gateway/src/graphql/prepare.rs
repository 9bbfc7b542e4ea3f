//! The gateway's prepare step for every GraphQL operation, whatever the transport: pin the
//! snapshot, resolve persisted operations (before anything is parsed), enforce the query limits
//! before any backend is called, and attach the metadata and the deadline every call of the
//! operation inherits.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tokio::time::Instant;

use super::executor::RequestMeta;
use super::http::Prepare;
use super::limits::{self, codes};
use crate::app::Gateway;
use crate::edge::RequestId;
use crate::error::{ErrorKind, GatewayError};
use crate::rest::handler::parse_grpc_timeout;
use crate::snapshot::Snapshot;

/// Prepares operations against the gateway's current snapshot.
#[derive(Debug)]
pub struct GatewayPrepare {
    gateway: Arc<Gateway>,
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
    /// A prepare step for `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }

    /// Prepares `req` on `snapshot`. `default_budget` replaces `deadlines.default` as the
    /// operation's deadline when the client sends no `grpc-timeout` (which is capped by
    /// `deadlines.max`, and by `default_budget` too when given).
    pub async fn prepare_on(
        snapshot: Arc<Snapshot>,
        req: async_graphql::Request,
        parts: &Parts,
        origin: Origin,
        default_budget: Option<Duration>,
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
        let cap = snapshot.config.deadlines.max.get();
        let default = default_budget.unwrap_or(snapshot.config.deadlines.default.get());
        let budget = parts
            .headers
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| d.min(cap).min(default_budget.unwrap_or(cap)))
            .unwrap_or(default)
            .max(Duration::from_millis(1));
        let metadata = snapshot
            .headers
            .request_metadata(&parts.headers, parts.extensions.get::<RequestId>());
        Ok(req.data(RequestMeta {
            snapshot,
            metadata,
            deadline: Instant::now() + budget,
        }))
    }
}

impl Prepare for GatewayPrepare {
    async fn prepare(
        &self,
        req: async_graphql::Request,
        parts: &Parts,
    ) -> Result<async_graphql::Request, GatewayError> {
        Self::prepare_on(self.gateway.snapshot(), req, parts, Origin::Client, None).await
    }
}
