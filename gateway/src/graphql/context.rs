//! The per-request context of a GraphQL operation: the snapshot it runs against, the metadata
//! and deadline every call inherits, and the request's call deduplication and link loader.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use super::schema::links::LinkLoader;
use crate::descriptors::{Idempotency, http_bindings, idempotency};
use crate::fanout::{CallResult, Dedup};
use crate::snapshot::Snapshot;
use crate::upstream::{Call, CallBody};

/// Methods whose reply in this operation was a configured fallback, not the backend's answer
/// (reported in the response's `extensions.fallbacks`).
pub type Fallbacks = Arc<std::sync::Mutex<Vec<String>>>;

/// Whether a method may be retried: declared idempotent or free of side effects, or read
/// through a GET rule.
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
    metadata: MetadataMap,
    deadline: Instant,
    dedup: Arc<Dedup>,
    fallbacks: Fallbacks,
    /// Batches link calls (one call per batch method per round of resolution).
    pub loader: DataLoader<LinkLoader>,
}

impl std::fmt::Debug for GraphqlCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlCtx")
            .field("deadline", &self.deadline)
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
        let dedup = Arc::new(Dedup::default());
        let links = snapshot
            .graphql
            .as_ref()
            .map(|g| g.links.clone())
            .unwrap_or_default();
        let loader = DataLoader::new(
            LinkLoader {
                snapshot: snapshot.clone(),
                metadata: metadata.clone(),
                deadline,
                dedup: dedup.clone(),
                fallbacks: fallbacks.clone(),
                links,
            },
            tokio::spawn,
        );
        Self {
            snapshot,
            metadata,
            deadline,
            dedup,
            fallbacks,
            loader,
        }
    }

    /// Calls `method` once per distinct request within this operation.
    pub async fn call(&self, method: &MethodDescriptor, request: DynamicMessage) -> CallResult {
        call_deduped(
            &self.snapshot,
            &self.dedup,
            &self.fallbacks,
            &self.metadata,
            self.deadline,
            method,
            request,
        )
        .await
    }

    /// The metadata every call of this operation sends.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// How many distinct backend calls this operation made so far.
    pub fn calls_made(&self) -> usize {
        self.dedup.len()
    }
}

/// Makes a call through the snapshot's upstream, deduplicated within `dedup`.
pub(crate) async fn call_deduped(
    snapshot: &Arc<Snapshot>,
    dedup: &Dedup,
    fallbacks: &Fallbacks,
    metadata: &MetadataMap,
    deadline: Instant,
    method: &MethodDescriptor,
    request: DynamicMessage,
) -> CallResult {
    let snap = snapshot.clone();
    let call = Call {
        method: method.clone(),
        body: CallBody::Unary(request.clone()),
        metadata: metadata.clone(),
        deadline,
        idempotent: is_idempotent(method),
    };
    let fallbacks = fallbacks.clone();
    let name = method.full_name().to_string();
    dedup
        .call(method, &request, move || async move {
            let reply = snap.upstream.unary(call).await.map_err(Arc::new)?;
            if reply.fallback
                && let Ok(mut f) = fallbacks.lock()
            {
                f.push(name);
            }
            Ok(Arc::new(reply.message))
        })
        .await
}
