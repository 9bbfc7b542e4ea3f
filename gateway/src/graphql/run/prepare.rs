//! The gateway's prepare step for every GraphQL operation, whatever the transport or door:
//! resolve persisted operations (before anything is parsed), enforce the query limits before
//! any backend is called, ask the policies about the operation by its name, and attach the snapshot and request context the ingress pinned
//! (every call of the operation inherits its metadata and budget).

use std::sync::Arc;

use async_graphql::parser::types::DocumentOperations;
use http::request::Parts;

use super::executor::Prepared;
use crate::error::{ErrorKind, GatewayError};
use crate::graphql::bff::persisted::Persisted;
use crate::graphql::engine::limits::{self, QueryStats, codes};
use crate::graphql::transport::{ConnectionInitPayload, Prepare, is_websocket};
use crate::ingress::Admitted;
use crate::request::RequestCtx;
use crate::request::policy::Access;
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
        let metrics = snapshot.metrics().cloned();
        let result = Self::prepare_checked(snapshot, ctx, req, origin).await;
        if let (Err(e), Some(m)) = (&result, &metrics) {
            m.graphql_error(e.kind().code());
        }
        result
    }

    /// [`GatewayPrepare::prepare_on`] before its refusals are counted.
    async fn prepare_checked(
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
            Origin::Client => {
                let by_id = Persisted::names_an_id(&req);
                let resolved = snapshot.persisted.resolve(req).await;
                if let (true, Some(m)) = (by_id, snapshot.metrics()) {
                    m.persisted_lookup(match &resolved {
                        Ok((_, Some(_))) => "registered",
                        Ok((_, None)) => "hit",
                        Err(_) => "miss",
                    });
                }
                resolved?
            }
            Origin::Trusted => (req, None),
        };
        let lim = &snapshot.config.graphql.limits;
        let operation = req.operation_name.clone();
        // A document seen before whose figures do not depend on variables: nothing is left
        // to parse or measure (what is known is found by the query text), and the document
        // is not even copied into the request (the executor fetches it if it needs it).
        let seen = schema
            .plans
            .known(&req.query, operation.as_deref())
            .filter(|k| k.operation.is_some());
        // Its token count too, when the first request counted them all (0: not counted).
        let counted = seen
            .as_ref()
            .and_then(|k| k.limits.get())
            .map_or(0, |s| s.tokens);
        let mut tokens = 0;
        if lim.max_tokens > 0 {
            tokens = match counted {
                0 => limits::count_tokens(&req.query, lim.max_tokens),
                n => n,
            };
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
        let mut introspection = false;
        let mut cost = None;
        let (known, parsed, named) = match seen.as_ref().and_then(|k| Some((k, k.limits.get()?))) {
            Some((k, stats)) => {
                introspection = stats.introspection;
                cost = Some(stats.cost);
                let named = operation.clone().or_else(|| k.only_name.clone());
                (Some(k.clone()), false, named)
            }
            None => {
                // A document that does not parse is left to the executor, which reports it
                // the standard way; everything else is measured before execution.
                let mut parsed = false;
                let mut named: Option<String> = None;
                schema.documents.prime(&mut req);
                // What is known of the operation (its plan; its figures when they do not
                // depend on variables), learnt by the first request of the same document.
                let known = super::executor::known_of(&schema, &mut req);
                let memo = known.as_ref().and_then(|k| k.limits.get()).copied();
                let variables = match memo {
                    Some(_) => serde_json::Value::Null,
                    None => req
                        .variables
                        .clone()
                        .into_value()
                        .into_json()
                        .unwrap_or(serde_json::Value::Null),
                };
                if let Ok(doc) = req.parsed_query() {
                    parsed = true;
                    named = operation.clone().or_else(|| match &doc.operations {
                        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
                            ops.keys().next().map(|n| n.to_string())
                        }
                        _ => None,
                    });
                    let measured = match memo {
                        Some(stats) => Ok(stats),
                        None => {
                            let measured = limits::check_document(
                                doc,
                                operation.as_deref(),
                                &variables,
                                lim,
                                schema.as_ref(),
                            );
                            if let (Ok(stats), Some(k)) = (&measured, &known)
                                && !stats.variables_read
                            {
                                // `tokens` is the whole count only when it was counted
                                // under a limit it kept to (else 0: counted next time).
                                let _ = k.limits.set(QueryStats { tokens, ..*stats });
                            }
                            measured
                        }
                    };
                    match measured {
                        Ok(stats) => {
                            introspection = stats.introspection;
                            cost = Some(stats.cost);
                        }
                        Err(v)
                            if v.kind == codes::GRAPHQL_PARSE_FAILED
                                || v.kind == codes::OPERATION_RESOLUTION_FAILURE => {}
                        Err(v) => {
                            return Err(GatewayError::rejected(v.kind, v.message));
                        }
                    }
                }
                (known, parsed, named)
            }
        };
        // The policies' word on the operation by its name, and on reading the schema.
        let chain = &snapshot.outbound.chain;
        if let Some(name) = &named {
            chain.on_access(&ctx, &Access::Operation(name)).await?;
        }
        if introspection {
            chain.on_access(&ctx, &Access::Introspection).await?;
        }
        if let Some(cost) = cost {
            let operation = named.as_deref();
            chain
                .on_access(&ctx, &Access::Execute { operation, cost })
                .await?;
        }
        // APQ: only documents that parse and pass the limits are registered.
        if let Some(pending) = pending
            && (parsed || seen.is_some())
        {
            snapshot.persisted.register(pending).await;
        }
        if let Some(known) = known {
            req = req.data(known);
        }
        Ok(req.data(Prepared {
            snapshot,
            ctx,
            document: parsed,
        }))
    }
}

impl Prepare for GatewayPrepare {
    async fn allow_graphiql(&self, parts: &Parts) -> Result<(), GatewayError> {
        match parts.extensions.get::<Admitted>() {
            Some(admitted) => {
                admitted
                    .snapshot
                    .outbound
                    .chain
                    .on_access(&admitted.ctx, &Access::Graphiql)
                    .await
            }
            None => Err(GatewayError::Internal(
                "the GraphiQL page was asked for unadmitted".into(),
            )),
        }
    }

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
        // Browsers cannot set headers on a WebSocket: the `connection_init` payload's string
        // entries count as request headers (`{"Authorization": "Bearer ..."}`), over the
        // upgrade request's own. Each operation passes the policies' per-request hooks as a
        // request of its own (identified, checked against the access lists, counted by the
        // rate limits).
        let snapshot = self.current.load();
        let mut ctx = (*admitted.ctx).clone();
        ctx.budget = ctx.budget.restarted(snapshot.config.deadlines.max.get());
        let with_payload = payload_headers(parts);
        let parts = with_payload.as_ref().unwrap_or(parts);
        ctx.metadata = snapshot
            .headers
            .request_metadata(&parts.headers, Some(&ctx.id));
        ctx.identity = None;
        ctx.limit_notes = None;
        ctx.cache_notes = None;
        snapshot.outbound.chain.on_request(parts, &mut ctx).await?;
        Self::prepare_on(snapshot, Arc::new(ctx), req, Origin::Client).await
    }
}

/// The upgrade request's parts with the string entries of the connection's `connection_init`
/// payload set as headers; `None` when the payload has none.
fn payload_headers(parts: &Parts) -> Option<Parts> {
    let payload = parts.extensions.get::<ConnectionInitPayload>()?;
    let entries = payload.0.as_object()?;
    let mut out: Option<Parts> = None;
    for (name, value) in entries {
        let (Some(value), Ok(name)) = (
            value.as_str(),
            http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        ) else {
            continue;
        };
        let Ok(value) = http::HeaderValue::from_str(value) else {
            continue;
        };
        out.get_or_insert_with(|| parts.clone())
            .headers
            .insert(name, value);
    }
    out
}
