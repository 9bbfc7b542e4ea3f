//! Executing GraphQL operations: the `async_graphql::Executor` the HTTP, SSE and WebSocket
//! transports drive, and [`execute`] for the other doors that run operations.
//!
//! The prepare step ([`super::prepare`]) puts a [`Prepared`] (the snapshot and the request
//! context) into the request's data; the operation runs on that snapshot's schema, its calls
//! leave through that snapshot's policy chain and upstream, so the limits checked, the schema
//! executed and the backends called always belong to the same snapshot.

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::{Request, Response, ServerError, Variables};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::compiled;
use crate::fanout::batch::Driven;
use crate::graphql::engine::context::{Fallbacks, GraphqlCtx};
use crate::graphql::engine::plan::{Known, operation_of};
use crate::graphql::engine::schema::GraphqlSchema;
use crate::graphql::transport::{DataSlot, ExecuteInstead, ValidationMemo, mark_validated};
use crate::request::RequestCtx;
use crate::snapshot::{Current, Snapshot};
use crate::upstream::Fallback;

/// What the prepare step pinned for one operation.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The snapshot the operation runs on.
    pub snapshot: Arc<Snapshot>,
    /// The request it belongs to (metadata, budget, identity...).
    pub ctx: Arc<RequestCtx>,
    /// Whether the request carries its parsed document (a document seen before is not
    /// copied into it: the executor fetches it from the document cache if it needs it).
    pub document: bool,
}

/// Runs operations; those that did not go through the prepare step (benchmarks, tests) run on
/// the current snapshot with an internal request context.
#[derive(Clone, Debug)]
pub struct GatewayExecutor {
    current: Arc<Current>,
}

impl GatewayExecutor {
    /// An executor over the snapshots of `current`.
    pub fn new(current: Arc<Current>) -> Self {
        Self { current }
    }

    fn with_prepared(&self, request: Request) -> (Request, Prepared) {
        if let Some(p) = prepared_of(&request) {
            return (request, p);
        }
        let snapshot = self.current.load();
        let ctx = Arc::new(RequestCtx::internal(snapshot.config.deadlines.max.get()));
        let p = Prepared {
            snapshot,
            ctx,
            document: false,
        };
        (request.data(p.clone()), p)
    }
}

fn prepared_of(request: &Request) -> Option<Prepared> {
    request
        .data
        .get(&TypeId::of::<Prepared>())
        .and_then(|d| d.downcast_ref::<Prepared>())
        .cloned()
}

fn disabled() -> Response {
    Response::from_errors(vec![ServerError::new(
        "GraphQL is disabled in this gateway's configuration",
        None,
    )])
}

fn operation_ctx(p: &Prepared, fallbacks: Fallbacks) -> Option<GraphqlCtx> {
    operation_ctx_with(p, p.ctx.clone(), fallbacks)
}

/// [`operation_ctx`] whose calls are made under `ctx` (the request's, or a clone with the
/// operation's span).
fn operation_ctx_with(
    p: &Prepared,
    ctx: Arc<RequestCtx>,
    fallbacks: Fallbacks,
) -> Option<GraphqlCtx> {
    let g = p.snapshot.graphql.as_ref()?;
    Some(GraphqlCtx::new(
        ctx,
        p.snapshot.outbound.clone(),
        p.snapshot.registry.pool().clone(),
        g.links.clone(),
        fallbacks,
        p.snapshot.config.limits.max_struct_values,
    ))
}

/// Runs a prepared operation (a request carrying [`Prepared`]) to its response: link lookups
/// batched per round, fallbacks reported in `extensions.fallbacks`, lean payloads applied.
pub async fn execute(request: Request) -> Response {
    let Some(p) = prepared_of(&request) else {
        return Response::from_errors(vec![ServerError::new("internal gateway error", None)]);
    };
    let Some(g) = p.snapshot.graphql.clone() else {
        return disabled();
    };
    let fallbacks = Fallbacks::default();
    // A recorded trace gets a span for the operation, the parent of its backend calls' spans.
    let span = p
        .snapshot
        .tracer()
        .filter(|_| p.ctx.trace.recorded)
        .map(|tracer| {
            let mut ctx = (*p.ctx).clone();
            ctx.trace.span_id = crate::telemetry::traces::new_span_id();
            (tracer.clone(), Arc::new(ctx), std::time::SystemTime::now())
        });
    let call_ctx = span.as_ref().map_or_else(|| p.ctx.clone(), |s| s.1.clone());
    let Some(ctx) = operation_ctx_with(&p, call_ctx, fallbacks.clone()) else {
        return disabled();
    };
    let links = ctx.links.clone();
    let mut request = request;
    let known = Known::of(&request).or_else(|| known_of(&g, &mut request));
    let labels = operation_labels(&mut request, &p.snapshot, known.as_deref());
    let name = request.operation_name.clone();
    let started = std::time::Instant::now();
    let memo = known
        .as_ref()
        .map(|k| validation_memo(k, &g, &request.variables));
    let plan = known.as_ref().and_then(|k| k.plan.clone());
    let mut resp = match (plan, memo) {
        // Planned, validated before, and these variables pass: async-graphql has nothing
        // left to do (parsing, operation choice and the document's limits were checked the
        // first time), the plan runs on its own.
        (Some(plan), Some(ValidationMemo::Skip(_))) => {
            mark_validated(&request);
            // The HTTP door takes `data` as JSON text, unless lean payloads reshape it.
            let slot = DataSlot::of(&request).filter(|_| p.snapshot.shaping.lean.is_noop());
            let ran = Driven::new(
                compiled::run(&plan, &request.variables, &ctx, slot.is_some()).boxed(),
                links,
            )
            .await;
            if let (Some(slot), Some(json)) = (slot, ran.data_json) {
                slot.put(json);
            }
            ran.response
        }
        (plan, memo) => {
            if let Some(plan) = plan {
                // async-graphql parses and validates the request; the plan runs in place of
                // its executor (see `transport::signal::ExecuteInstead`).
                let variables = request.variables.clone();
                let op = ctx.clone();
                let run =
                    async move { compiled::run(&plan, &variables, &op, false).await.response }
                        .boxed();
                request = request.data(ExecuteInstead::new(run));
            }
            if let Some(memo) = memo {
                request = request.data(memo);
            }
            if !p.document {
                g.documents.prime(&mut request);
            }
            Driven::new(g.schema.execute(request.data(ctx)).boxed(), links).await
        }
    };
    if let Some((tracer, op_ctx, start)) = span {
        let ids = crate::telemetry::traces::SpanIds {
            trace_id: op_ctx.trace.trace_id,
            span_id: op_ctx.trace.span_id,
            parent_id: Some(p.ctx.trace.span_id),
            parent_remote: false,
        };
        let took = started.elapsed();
        tracer.operation_span(
            ids,
            start,
            took,
            labels.0,
            name.as_deref(),
            resp.errors.len(),
        );
    }
    if let Some(m) = p.snapshot.metrics() {
        let codes: Vec<String> = resp.errors.iter().map(error_code).collect();
        let has_data = !matches!(resp.data, async_graphql::Value::Null);
        m.graphql_operation(labels.0, labels.1, has_data, &codes);
    }
    let served: Vec<(String, Fallback)> = fallbacks.lock().map(|f| f.clone()).unwrap_or_default();
    for (key, kind) in [("fallbacks", Fallback::Static), ("stale", Fallback::Stale)] {
        let mut methods: Vec<&str> = served
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(m, _)| m.as_str())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        if !methods.is_empty() {
            resp = resp.extension(
                key,
                async_graphql::Value::List(
                    methods
                        .into_iter()
                        .map(async_graphql::Value::from)
                        .collect(),
                ),
            );
        }
    }
    // Lean payloads of this BFF's profile (redaction already happened in the resolvers).
    p.snapshot.shaping.shape_graphql(&mut resp);
    resp
}

/// What is known of the operation `request` runs (its document parsed already).
/// `None` when `graphql.execution` is `interpreted`: async-graphql then validates and
/// executes every request itself.
pub(crate) fn known_of(g: &GraphqlSchema, request: &mut Request) -> Option<Arc<Known>> {
    let model = g.plan_model.as_ref()?;
    // The document is parsed (by the document cache, or just now for the metric labels);
    // the query text is set aside while the parsed document is borrowed.
    request.parsed_query().ok()?;
    let query = std::mem::take(&mut request.query);
    let name = request.operation_name.clone();
    let known = match request.parsed_query() {
        Ok(doc) => g
            .plans
            .get(model, g.schema.registry(), &query, name.as_deref(), doc),
        Err(_) => None,
    };
    request.query = query;
    known
}

/// Skips validation of a document validated before when `variables` surely pass the one
/// rule that reads them; else has async-graphql's verdict recorded.
fn validation_memo(known: &Known, g: &GraphqlSchema, variables: &Variables) -> ValidationMemo {
    match known.validated.get() {
        Some(result)
            if known
                .args
                .as_ref()
                .is_some_and(|a| a.accept(g.schema.registry(), variables)) =>
        {
            ValidationMemo::Skip(*result)
        }
        Some(_) => ValidationMemo::Validate,
        None => ValidationMemo::Record(known.validated.clone()),
    }
}

/// The metric labels of the operation `request` runs: its type (`unknown` when the document
/// does not parse or names no operation) and its name when it is one of the BFF's named
/// operations (`_OTHER` for any other name: clients choose names, labels must stay bounded;
/// empty when anonymous).
fn operation_labels(
    request: &mut Request,
    snapshot: &Snapshot,
    known: Option<&Known>,
) -> (&'static str, String) {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let name = request.operation_name.clone();
    let ty = match known.and_then(|k| k.operation) {
        Some(ty) => Some(ty),
        None => match request.parsed_query() {
            Ok(doc) => match (&doc.operations, name.as_deref()) {
                (DocumentOperations::Single(op), _) => Some(op.node.ty),
                _ => operation_of(doc, name.as_deref()).map(|op| op.node.ty),
            },
            Err(_) => None,
        },
    };
    let kind = match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    };
    let name = match name {
        None => String::new(),
        Some(n)
            if snapshot
                .operations
                .as_ref()
                .is_some_and(|o| o.get(&n).is_some()) =>
        {
            n
        }
        Some(_) => "_OTHER".to_string(),
    };
    (kind, name)
}

/// An error's `extensions.code` (`UNKNOWN` without one).
fn error_code(e: &ServerError) -> String {
    match e.extensions.as_ref().and_then(|x| x.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        Some(async_graphql::Value::Enum(code)) => code.to_string(),
        _ => "UNKNOWN".to_string(),
    }
}

impl async_graphql::Executor for GatewayExecutor {
    async fn execute(&self, request: Request) -> Response {
        let (request, _) = self.with_prepared(request);
        execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        let (request, p) = self.with_prepared(request);
        let Some(g) = p.snapshot.graphql.clone() else {
            return futures::stream::once(async { disabled() }).boxed();
        };
        let Some(ctx) = operation_ctx(&p, Fallbacks::default()) else {
            return futures::stream::once(async { disabled() }).boxed();
        };
        let shaping = p.snapshot.shaping.clone();
        let links = ctx.links.clone();
        let mut request = request;
        let known = Known::of(&request);
        let labels = operation_labels(&mut request, &p.snapshot, known.as_deref());
        if !p.document {
            g.documents.prime(&mut request);
        }
        let metrics = p.snapshot.metrics().cloned();
        let stream = match session_data {
            Some(data) => g
                .schema
                .execute_stream_with_session_data(request.data(ctx), data)
                .boxed(),
            None => g.schema.execute_stream(request.data(ctx)).boxed(),
        };
        // Link lookups are batched per round of resolution of each event.
        let stream = Driven::new(stream, links).boxed();
        // A streamed operation is counted once, by its first answer; the errors of every
        // answer are counted.
        let mut first = Some(labels);
        let stream = stream
            .inspect(move |resp| {
                if let Some(m) = &metrics {
                    let codes: Vec<String> = resp.errors.iter().map(error_code).collect();
                    match first.take() {
                        Some((kind, name)) => {
                            let has_data = !matches!(resp.data, async_graphql::Value::Null);
                            m.graphql_operation(kind, name, has_data, &codes);
                        }
                        None => codes.iter().for_each(|c| m.graphql_error(c)),
                    }
                }
            })
            .boxed();
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
