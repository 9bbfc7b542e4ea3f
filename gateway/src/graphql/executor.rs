//! Executing GraphQL operations against the current snapshot: the `async_graphql::Executor`
//! the HTTP, SSE and WebSocket transports drive.
//!
//! The transport's prepare step puts a [`RequestMeta`] (snapshot, metadata, deadline) into the
//! request's data; the executor runs the operation on that snapshot's schema, so the limits
//! checked and the schema executed always belong to the same snapshot.

use std::any::TypeId;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, Response, ServerError};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use super::batch::Driven;
use super::context::{Fallbacks, GraphqlCtx};
use crate::app::Gateway;
use crate::snapshot::Snapshot;

/// What the transport learned about a request before execution.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The snapshot the operation runs against.
    pub snapshot: Arc<Snapshot>,
    /// Metadata sent with every backend call (forwarded headers, request id).
    pub metadata: MetadataMap,
    /// The operation's budget: every call inherits what is left of it.
    pub deadline: Instant,
}

/// Runs operations on the gateway's snapshot.
#[derive(Clone)]
pub struct GatewayExecutor {
    gateway: Arc<Gateway>,
}

impl GatewayExecutor {
    /// An executor for `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }

    fn meta_of(&self, request: &Request) -> RequestMeta {
        if let Some(meta) = request
            .data
            .get(&TypeId::of::<RequestMeta>())
            .and_then(|d| d.downcast_ref::<RequestMeta>())
        {
            return meta.clone();
        }
        let snapshot = self.gateway.snapshot();
        let deadline = Instant::now() + snapshot.config.deadlines.default.get();
        RequestMeta {
            snapshot,
            metadata: MetadataMap::new(),
            deadline,
        }
    }
}

fn disabled() -> Response {
    Response::from_errors(vec![ServerError::new(
        "GraphQL is disabled in this gateway's configuration",
        None,
    )])
}

impl async_graphql::Executor for GatewayExecutor {
    async fn execute(&self, request: Request) -> Response {
        let meta = self.meta_of(&request);
        let Some(g) = meta.snapshot.graphql.clone() else {
            return disabled();
        };
        let shaping = meta.snapshot.shaping.clone();
        let fallbacks = Fallbacks::default();
        let ctx = GraphqlCtx::new(
            meta.snapshot,
            meta.metadata,
            meta.deadline,
            fallbacks.clone(),
        );
        let links = ctx.links.clone();
        let mut resp = Driven::new(g.schema.execute(request.data(ctx)).boxed(), links).await;
        let served: Vec<String> = fallbacks.lock().map(|f| f.clone()).unwrap_or_default();
        if !served.is_empty() {
            resp = resp.extension(
                "fallbacks",
                async_graphql::Value::List(
                    served.into_iter().map(async_graphql::Value::from).collect(),
                ),
            );
        }
        // Lean payloads of this BFF's profile (redaction already happened in the resolvers).
        shaping.shape_graphql(&mut resp);
        resp
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        let meta = self.meta_of(&request);
        let Some(g) = meta.snapshot.graphql.clone() else {
            return futures::stream::once(async { disabled() }).boxed();
        };
        // Subscriptions set their own per-call deadlines; the operation's one still bounds
        // queries and mutations sent over a streaming transport.
        let deadline = meta.deadline.max(Instant::now() + Duration::from_millis(1));
        let shaping = meta.snapshot.shaping.clone();
        let ctx = GraphqlCtx::new(meta.snapshot, meta.metadata, deadline, Fallbacks::default());
        let links = ctx.links.clone();
        let stream = match session_data {
            Some(data) => g
                .schema
                .execute_stream_with_session_data(request.data(ctx), data)
                .boxed(),
            None => g.schema.execute_stream(request.data(ctx)).boxed(),
        };
        // Link lookups are batched per round of resolution of each event.
        let stream = Driven::new(stream, links).boxed();
        if shaping.lean.is_noop() {
            return stream;
        }
        stream
            .map(move |mut resp| {
                shaping.shape_graphql(&mut resp);
                resp
            })
            .boxed()
    }
}
