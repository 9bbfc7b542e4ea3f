//! The policy chain: the ordered stages between the ingress and the upstream call that every
//! request and every backend call pass through, whichever door planned them: network ->
//! identify -> authorize -> limit -> split -> cache -> call.
//!
//! A [`Policy`] has three hooks. [`Policy::on_request`] runs once per request, right after the
//! ingress built its context and before the door plans anything (who is calling, may they come
//! in at all). [`Policy::on_access`] runs for what is served without a backend call: a named
//! GraphQL operation, introspection, the GraphiQL page. [`Policy::on_call`] wraps every backend call the door plans (a REST route's
//! call, each GraphQL root, link and batch call, each subscription, every call of an operation
//! endpoint): it may refuse the call, answer it itself, change it, or pass it on with
//! [`Next::run`] and look at the outcome. A policy is written once and applies to every door;
//! the [`CallSite`] tells it where the call was planned, should it care.
//!
//! An empty chain costs nothing: calls go straight to the upstream stack.

use std::fmt;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::request::Parts;

use super::RequestCtx;
use crate::error::GatewayError;
use crate::upstream::{Call, CallBody, Reply, StreamReply, Upstream};

/// The stages of the chain, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Which API version the method is (`versions`): a retired one is refused first.
    Version,
    /// Where the caller is (IP allow and deny lists).
    Network,
    /// Who is calling (tokens, keys, client certificates).
    Identify,
    /// May they call this (per method, operation, field).
    Authorize,
    /// Rate limits and quotas.
    Limit,
    /// Which variant of a split backend serves the call (before the cache, which keeps each
    /// variant's answers apart).
    Split,
    /// Response caching.
    Cache,
}

/// Where a backend call was planned: which door, and what in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallSite {
    /// A REST route: `GET /v1/users/{id}`.
    Route(Arc<str>),
    /// A root field of a GraphQL query or mutation: `Query.user`.
    RootField(Arc<str>),
    /// A link field resolved by its own call: `Order.user`.
    LinkField(Arc<str>),
    /// The batch call serving a batched link field: `OrderItem.product`.
    LinkBatch(Arc<str>),
    /// A GraphQL subscription field: `Subscription.watchOrders`.
    Subscription(Arc<str>),
    /// A gRPC-Web call, by its gRPC path: `/demo.v1.UserService/GetUser`.
    GrpcWeb(Arc<str>),
    /// A call over WebSocket, by its gRPC path: `/demo.v1.ChatService/Chat`.
    WebSocket(Arc<str>),
}

impl CallSite {
    /// The route or field, as text.
    pub fn name(&self) -> &str {
        match self {
            CallSite::Route(s)
            | CallSite::RootField(s)
            | CallSite::LinkField(s)
            | CallSite::LinkBatch(s)
            | CallSite::Subscription(s)
            | CallSite::GrpcWeb(s)
            | CallSite::WebSocket(s) => s,
        }
    }
}

/// What a request asks for besides backend calls, which policies may allow or refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// A GraphQL operation, by its name (on the GraphQL endpoint or an operation endpoint).
    Operation(&'a str),
    /// A GraphQL operation that reads the schema (`__schema` or `__type`).
    Introspection,
    /// The GraphiQL page.
    Graphiql,
    /// A GraphQL operation about to run (after the checks above passed): its name, if it has
    /// one, and its estimated cost (`graphql.limits`).
    Execute {
        /// The operation's name.
        operation: Option<&'a str>,
        /// Its estimated cost.
        cost: u32,
    },
}

/// The outcome of a call: one reply, or the start of a stream of them.
#[derive(Debug)]
pub enum Outcome {
    /// A unary or client-streaming call's reply.
    Unary(Reply),
    /// A server-streaming call whose headers arrived (boxed: a stream is large, and rare).
    Stream(Box<StreamReply>),
}

impl Outcome {
    /// The reply of a unary call.
    pub fn into_unary(self) -> Result<Reply, GatewayError> {
        match self {
            Outcome::Unary(r) => Ok(r),
            Outcome::Stream(_) => Err(GatewayError::Internal(
                "a policy answered a unary call with a stream".into(),
            )),
        }
    }

    /// The stream of a server-streaming call.
    pub fn into_stream(self) -> Result<StreamReply, GatewayError> {
        match self {
            Outcome::Stream(s) => Ok(*s),
            Outcome::Unary(_) => Err(GatewayError::Internal(
                "a policy answered a streaming call with a single reply".into(),
            )),
        }
    }
}

/// One stage's logic. Both hooks have pass-through defaults.
pub trait Policy: Send + Sync + 'static {
    /// A short name, for logs.
    fn name(&self) -> &str;

    /// Runs once per request, after the ingress and before the door plans any call. May
    /// refuse the request, or record what later stages need in the context.
    fn on_request<'a>(
        &'a self,
        parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let _ = (parts, ctx);
        futures::future::ready(Ok(())).boxed()
    }

    /// Runs for what a request asks for that is not a backend call: a named GraphQL operation,
    /// an introspection query, the GraphiQL page (see [`Access`]), before it is served. May
    /// refuse it.
    fn on_access<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        access: &'a Access<'a>,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let _ = (ctx, access);
        futures::future::ready(Ok(())).boxed()
    }

    /// Wraps one backend call: refuse it, answer it, or hand it on with `next.run(call)`.
    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        next.run(ctx, site, call)
    }
}

type Entry = (Stage, Arc<dyn Policy>);

/// The ordered policies of one snapshot. Cheap to clone.
#[derive(Clone, Default)]
pub struct Chain {
    policies: Arc<[Entry]>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.policies.iter().map(|(s, p)| (s, p.name())))
            .finish()
    }
}

impl Chain {
    /// This chain with `policy` added to `stage`, after the policies already there.
    pub fn with(&self, stage: Stage, policy: Arc<dyn Policy>) -> Self {
        let mut all: Vec<Entry> = self.policies.to_vec();
        let at = all
            .iter()
            .position(|(s, _)| *s > stage)
            .unwrap_or(all.len());
        all.insert(at, (stage, policy));
        Self {
            policies: all.into(),
        }
    }

    /// Whether no policy is installed.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policies by stage, in order.
    pub fn entries(&self) -> impl Iterator<Item = (Stage, &Arc<dyn Policy>)> {
        self.policies.iter().map(|(s, p)| (*s, p))
    }

    /// The policies' names by stage, in order.
    pub fn describe(&self) -> Vec<(Stage, String)> {
        self.policies
            .iter()
            .map(|(s, p)| (*s, p.name().to_string()))
            .collect()
    }

    /// Runs every policy's [`Policy::on_request`], in order, stopping at the first refusal.
    pub async fn on_request(
        &self,
        parts: &Parts,
        ctx: &mut RequestCtx,
    ) -> Result<(), GatewayError> {
        for (_, p) in self.policies.iter() {
            p.on_request(parts, ctx).await?;
        }
        Ok(())
    }
}

impl Chain {
    /// Runs every policy's [`Policy::on_access`], in order, stopping at the first refusal.
    pub async fn on_access(
        &self,
        ctx: &RequestCtx,
        access: &Access<'_>,
    ) -> Result<(), GatewayError> {
        for (_, p) in self.policies.iter() {
            p.on_access(ctx, access).await?;
        }
        Ok(())
    }
}

/// A door's own last step instead of the plain upstream call (the GraphQL door's per-operation
/// deduplication of identical calls, which must come after the policies).
pub type Terminal<'a> =
    &'a (dyn Fn(Call) -> BoxFuture<'a, Result<Outcome, GatewayError>> + Send + Sync);

/// Where the chain ends.
#[derive(Clone, Copy)]
enum End<'a> {
    Upstream(&'a Upstream),
    Via(Terminal<'a>),
}

/// The rest of the chain after the running policy, ending at the upstream call.
pub struct Next<'a> {
    rest: &'a [Entry],
    end: End<'a>,
}

impl<'a> Next<'a> {
    /// Hands the call to the next policy, or makes it.
    pub fn run(
        self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        match self.rest.split_first() {
            Some(((_, policy), rest)) => policy.on_call(
                ctx,
                site,
                call,
                Next {
                    rest,
                    end: self.end,
                },
            ),
            None => match self.end {
                End::Upstream(upstream) => make(upstream, call).boxed(),
                End::Via(terminal) => terminal(call),
            },
        }
    }
}

/// The upstream call itself: a live request stream, server streaming or not, by the method.
async fn make(upstream: &Upstream, call: Call) -> Result<Outcome, GatewayError> {
    if matches!(call.body, CallBody::Live(_)) {
        Ok(Outcome::Stream(Box::new(upstream.streaming(call).await?)))
    } else if call.method.is_server_streaming() {
        Ok(Outcome::Stream(Box::new(
            upstream.server_streaming(call).await?,
        )))
    } else {
        Ok(Outcome::Unary(upstream.unary(call).await?))
    }
}

/// The way out of the gateway for every call of a snapshot: its policy chain, then its
/// upstream stack. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The policies.
    pub chain: Chain,
    /// Backends and the calls to them.
    pub upstream: Arc<Upstream>,
}

impl Outbound {
    /// Makes `call` for the request `ctx`, planned at `site`, through the chain.
    pub async fn call(
        &self,
        ctx: &RequestCtx,
        site: &CallSite,
        call: Call,
    ) -> Result<Outcome, GatewayError> {
        if self.chain.is_empty() {
            return make(&self.upstream, call).await;
        }
        Next {
            rest: &self.chain.policies,
            end: End::Upstream(&self.upstream),
        }
        .run(ctx, site, call)
        .await
    }

    /// Makes `call` through the chain, ending at `terminal` instead of the plain upstream
    /// call (which `terminal` makes itself, with [`Outbound::upstream`]).
    pub async fn call_via<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        terminal: Terminal<'a>,
    ) -> Result<Outcome, GatewayError> {
        Next {
            rest: &self.chain.policies,
            end: End::Via(terminal),
        }
        .run(ctx, site, call)
        .await
    }

    /// A unary (or client-streaming) call through the chain.
    pub async fn unary(
        &self,
        ctx: &RequestCtx,
        site: &CallSite,
        call: Call,
    ) -> Result<Reply, GatewayError> {
        self.call(ctx, site, call).await?.into_unary()
    }

    /// A server-streaming call through the chain.
    pub async fn server_streaming(
        &self,
        ctx: &RequestCtx,
        site: &CallSite,
        call: Call,
    ) -> Result<StreamReply, GatewayError> {
        self.call(ctx, site, call).await?.into_stream()
    }
}
