//! The per-operation context of a GraphQL operation: the request it belongs to, the way out
//! for its calls (the snapshot's policy chain and upstream), the call deduplication and the
//! link batcher every resolver shares.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use prost_reflect::{DescriptorPool, DynamicMessage};

use super::schema::links::{LinkKey, LinkLoader, LinkPlan, LinkValue};
use crate::error::GatewayError;
use crate::fanout::Dedup;
use crate::fanout::batch::{Batcher, LoadFn};
use crate::request::RequestCtx;
use crate::request::policy::{CallSite, Outbound, Outcome};
use crate::upstream::{Call, CallBody, Fallback, Payload, ReplyForm, Target};

/// Methods whose reply in this operation was a fallback, not the backend's answer (reported in
/// the response's `extensions.fallbacks` for static ones, `extensions.stale` for cached ones).
pub type Fallbacks = Arc<std::sync::Mutex<Vec<(String, Fallback)>>>;

/// What every resolver of one operation shares (a clone shares it all).
#[derive(Clone)]
pub struct GraphqlCtx {
    calls: Arc<Calls>,
    /// `limits.max_struct_values`: the free-form values the arguments of one field may hold.
    max_struct_values: usize,
    /// Batches link calls: one call per batch method per round of resolution, when the
    /// operation runs under [`crate::fanout::batch::Driven`].
    pub links: Arc<Batcher<LinkKey, LinkValue>>,
}

impl std::fmt::Debug for GraphqlCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlCtx")
            .field("request", &self.calls.request.id)
            .finish_non_exhaustive()
    }
}

impl GraphqlCtx {
    /// A context for one operation of `request`: its calls leave through `outbound`, errors
    /// render typed details with `pool`, links resolve by `links` (the schema's), arguments
    /// hold at most `max_struct_values` free-form values.
    pub fn new(
        request: Arc<RequestCtx>,
        outbound: Outbound,
        pool: DescriptorPool,
        links: Arc<Vec<LinkPlan>>,
        fallbacks: Fallbacks,
        max_struct_values: usize,
    ) -> Self {
        let calls = Arc::new(Calls {
            request,
            outbound,
            pool,
            dedup: Dedup::default(),
            fallbacks,
        });
        let loader = Arc::new(LinkLoader {
            calls: calls.clone(),
            links,
        });
        let load: LoadFn<LinkKey, LinkValue> = Arc::new(move |keys: Vec<LinkKey>| {
            let loader = loader.clone();
            async move { loader.load(&keys).await }.boxed()
        });
        Self {
            calls,
            max_struct_values,
            links: Arc::new(Batcher::new(load)),
        }
    }

    /// The most free-form values (inside `Struct`/`Value`/`ListValue`) one field's arguments
    /// may hold (`limits.max_struct_values`).
    pub fn max_struct_values(&self) -> usize {
        self.max_struct_values
    }

    /// Calls `target` once per distinct request within this operation.
    pub async fn call(
        &self,
        target: &Arc<Target>,
        site: &CallSite,
        request: DynamicMessage,
    ) -> Result<Arc<DynamicMessage>, GatewayError> {
        self.calls.call(target, site, request).await
    }

    /// [`GraphqlCtx::call`], the reply in `form` (wire bytes are checked by whoever reads
    /// them; [`Payload::into_message`] decodes them).
    pub async fn call_as(
        &self,
        target: &Arc<Target>,
        site: &CallSite,
        request: DynamicMessage,
        form: ReplyForm,
    ) -> Result<Payload, GatewayError> {
        self.calls.call_as(target, site, request, form).await
    }

    /// The request the operation belongs to.
    pub fn request(&self) -> &Arc<RequestCtx> {
        &self.calls.request
    }

    /// The way out for the operation's calls.
    pub fn outbound(&self) -> &Outbound {
        &self.calls.outbound
    }

    /// The descriptor pool backends' error details are rendered with.
    pub fn pool(&self) -> &DescriptorPool {
        &self.calls.pool
    }

    /// How many distinct backend calls this operation made so far.
    pub fn calls_made(&self) -> usize {
        self.calls.dedup.len()
    }
}

/// The backend calls of one operation: the request they belong to, the way out, and the
/// deduplication that makes each distinct call once. Shared by the resolvers and the link
/// loader.
pub(crate) struct Calls {
    request: Arc<RequestCtx>,
    outbound: Outbound,
    pub(crate) pool: DescriptorPool,
    dedup: Dedup,
    fallbacks: Fallbacks,
}

impl Calls {
    /// Makes a call through the policy chain (every call site on its own), then the
    /// operation's deduplication (identical calls made once), then the upstream.
    pub(crate) async fn call(
        &self,
        target: &Arc<Target>,
        site: &CallSite,
        request: DynamicMessage,
    ) -> Result<Arc<DynamicMessage>, GatewayError> {
        let payload = self
            .call_as(target, site, request, ReplyForm::Decoded)
            .await?;
        Ok(payload.into_message(&target.method.output(), &target.backend)?)
    }

    /// [`Calls::call`], the reply in `form`.
    pub(crate) async fn call_as(
        &self,
        target: &Arc<Target>,
        site: &CallSite,
        request: DynamicMessage,
        form: ReplyForm,
    ) -> Result<Payload, GatewayError> {
        let mut call = self.request.call_to(target, CallBody::Unary(request));
        call.reply_form = form;
        let terminal = |call: Call| -> BoxFuture<'_, Result<Outcome, GatewayError>> {
            let upstream = self.outbound.upstream.clone();
            async move {
                let reply = self
                    .dedup
                    .call(
                        call,
                        move |call| async move { Ok(upstream.unary(call).await?) },
                    )
                    .await?;
                Ok(Outcome::Unary(reply))
            }
            .boxed()
        };
        let reply = self
            .outbound
            .call_via(&self.request, site, call, &terminal)
            .await?
            .into_unary()?;
        // A static fallback (made by the upstream) or a stale reply (the cache stage).
        if let Some(kind) = reply.fallback
            && let Ok(mut f) = self.fallbacks.lock()
        {
            f.push((target.method.full_name().to_string(), kind));
        }
        Ok(reply.payload)
    }
}
