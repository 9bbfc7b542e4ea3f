//! The per-request context of a GraphQL operation: the snapshot it runs against, the metadata
//! and deadline every call inherits, and the request's call deduplication and link batcher.

use std::sync::Arc;

use futures::FutureExt;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use super::batch::{Batcher, LoadFn};
use super::schema::links::{LinkKey, LinkLoader, LinkValue};
use crate::descriptors::{Idempotency, http_bindings, idempotency};
use crate::error::GatewayError;
use crate::fanout::{CallResult, Dedup};
use crate::snapshot::Snapshot;
use crate::upstream::{Call, CallBody};

/// Methods whose reply in this operation was a configured fallback, not the backend's answer
/// (reported in the response's `extensions.fallbacks`).
pub type Fallbacks = Arc<std::sync::Mutex<Vec<String>>>;

/// Whether a method may be retried: declared idempotent or free of side effects, or read
/// through a GET rule. Reads the method's options (a decode): call it when building the
/// schema, not per request.
pub fn is_idempotent(method: &MethodDescriptor) -> bool {
    idempotency(method) != Idempotency::Unknown
        || http_bindings(method)
            .iter()
            .any(|b| b.method == http::Method::GET)
}

/// What every resolver of one operation shares.
pub struct GraphqlCtx {
    /// The snapshot the operation runs against (never changes mid-operation).
    pub snapshot: Arc<Snapshot>,
    calls: Arc<Calls>,
    /// Batches link calls: one call per batch method per round of resolution, when the
    /// operation runs under [`super::batch::Driven`].
    pub links: Arc<Batcher<LinkKey, LinkValue>>,
}

impl std::fmt::Debug for GraphqlCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlCtx")
            .field("deadline", &self.calls.deadline)
            .finish_non_exhaustive()
    }
}

impl GraphqlCtx {
    /// A context for one operation; `metadata` goes to every backend call, `deadline` bounds
    /// every call.
    pub fn new(
        snapshot: Arc<Snapshot>,
        metadata: MetadataMap,
        deadline: Instant,
        fallbacks: Fallbacks,
    ) -> Self {
        let calls = Arc::new(Calls {
            snapshot: snapshot.clone(),
            metadata,
            deadline,
            dedup: Dedup::default(),
            fallbacks,
        });
        let links = snapshot
            .graphql
            .as_ref()
            .map(|g| g.links.clone())
            .unwrap_or_default();
        let loader = Arc::new(LinkLoader {
            calls: calls.clone(),
            links,
        });
        let load: LoadFn<LinkKey, LinkValue> = Arc::new(move |keys: Vec<LinkKey>| {
            let loader = loader.clone();
            async move { loader.load(&keys).await }.boxed()
        });
        Self {
            snapshot,
            calls,
            links: Arc::new(Batcher::new(load)),
        }
    }

    /// Calls `method` once per distinct request within this operation; `idempotent` (from
    /// [`is_idempotent`], resolved when the schema is built) allows retries.
    pub async fn call(
        &self,
        method: &MethodDescriptor,
        idempotent: bool,
        request: DynamicMessage,
    ) -> CallResult {
        self.calls.call(method, idempotent, request).await
    }

    /// The metadata every call of this operation sends.
    pub fn metadata(&self) -> &MetadataMap {
        &self.calls.metadata
    }

    /// How many distinct backend calls this operation made so far.
    pub fn calls_made(&self) -> usize {
        self.calls.dedup.len()
    }
}

/// The backend calls of one operation: what they inherit (metadata, deadline) and the
/// deduplication that makes each distinct call once. Shared by the resolvers and the link
/// loader.
pub(crate) struct Calls {
    pub(crate) snapshot: Arc<Snapshot>,
    metadata: MetadataMap,
    deadline: Instant,
    dedup: Dedup,
    fallbacks: Fallbacks,
}

impl Calls {
    /// Makes a call through the snapshot's upstream, deduplicated within the operation.
    pub(crate) async fn call(
        &self,
        method: &MethodDescriptor,
        idempotent: bool,
        request: DynamicMessage,
    ) -> CallResult {
        let snap = self.snapshot.clone();
        let call = Call {
            method: method.clone(),
            body: CallBody::Unary(request.clone()),
            metadata: self.metadata.clone(),
            deadline: self.deadline,
            idempotent,
        };
        let fallbacks = self.fallbacks.clone();
        let name = method.full_name().to_string();
        self.dedup
            .call(method, &request, move || async move {
                let reply = snap
                    .upstream
                    .unary(call)
                    .await
                    .map_err(|e| Arc::new(GatewayError::Upstream(e)))?;
                if reply.fallback
                    && let Ok(mut f) = fallbacks.lock()
                {
                    f.push(name);
                }
                Ok(Arc::new(reply.message))
            })
            .await
    }
}
