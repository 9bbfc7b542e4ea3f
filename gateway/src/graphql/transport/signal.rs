//! Telling a request error (the operation never ran) from an execution result, per request.
//!
//! async-graphql returns one `Response` type for both, so the HTTP layer puts a [`Witness`]
//! in the request data, and the [`ValidationSignal`] extension (registered on the schema)
//! records in it that the request reached the extension chain and whether validation
//! passed. With the extension, the answer is exact: a request that was seen but not
//! validated is a request error (parse, recursion/directive limits, validation including
//! variable coercion, or an extension's `prepare_request` refusing it).
//!
//! The same extension ends requests carrying [`StopBeforeExecution`] once they are validated,
//! before any resolver runs: how the operations folder is checked against the schema. One
//! extension does both because async-graphql wraps every field's resolution in every
//! registered extension.
//!
//! It skips validation for a request carrying [`ValidationMemo::Skip`] (a document it
//! validated before, with variables that surely pass the one rule that reads them), and
//! records its verdict for one carrying [`ValidationMemo::Record`].
//!
//! And it runs, for a validated request carrying [`ExecuteInstead`], that future in place of
//! the schema's executor: how compiled plans take over from async-graphql's executor after
//! async-graphql has parsed and validated the request.
//!
//! Without the extension (an executor whose schema lacks it), the fallback is
//! [`response::is_request_error`](super::response::is_request_error): `data` null and no
//! error with a `path`. It is approximate: the dynamic schema's resolver errors carry no
//! `path`, so a failing non-null root field would be taken for a request error.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextValidation,
};
use async_graphql::{ServerError, ServerResult, ValidationResult};
use futures::future::BoxFuture;

use super::response;

/// An async-graphql extension that tells the GraphQL HTTP layer whether a request passed
/// validation, so request errors (4xx with `application/graphql-response+json`, no `data`)
/// are told exactly from execution errors.
///
/// Register it on the schema, first among the extensions so that it sees the verdict of
/// all of them: `Schema::build(..).extension(ValidationSignal)`. It does nothing for
/// requests that do not come through this HTTP layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidationSignal;

impl ExtensionFactory for ValidationSignal {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidationSignal)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ValidationSignal {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        // Query data is attached after this hook: read the request's own data.
        if let Some(witness) = request
            .data
            .get(&TypeId::of::<Witness>())
            .and_then(|any| any.as_ref().downcast_ref::<Witness>())
        {
            witness.0.seen.store(true, Ordering::Release);
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        if ctx.data_opt::<StopBeforeExecution>().is_some() {
            return async_graphql::Response::new(async_graphql::Value::Null);
        }
        if let Some(run) = ctx
            .data_opt::<ExecuteInstead>()
            .and_then(ExecuteInstead::take)
        {
            return run.await;
        }
        next.run(ctx, operation_name).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let memo = ctx.data_opt::<ValidationMemo>();
        let result = match memo {
            Some(ValidationMemo::Skip(result)) => Ok(*result),
            _ => next.run(ctx).await,
        };
        if let (Some(ValidationMemo::Record(verdict)), Ok(r)) = (memo, &result) {
            let _ = verdict.set(*r);
        }
        if result.is_ok()
            && let Some(witness) = ctx.data_opt::<Witness>()
        {
            witness.0.validated.store(true, Ordering::Release);
        }
        result
    }
}

/// Tells the HTTP layer that `request` passed validation without going through the
/// extension: for an executor that knows it (a document validated before, with variables
/// that pass) and runs the request without async-graphql.
pub fn mark_validated(request: &async_graphql::Request) {
    if let Some(witness) = request
        .data
        .get(&TypeId::of::<Witness>())
        .and_then(|any| any.as_ref().downcast_ref::<Witness>())
    {
        witness.0.seen.store(true, Ordering::Release);
        witness.0.validated.store(true, Ordering::Release);
    }
}

/// Request data that makes [`ValidationSignal`] end the request after validation: the
/// response has the validation errors, or none and `data: null`; no resolver runs.
#[derive(Clone, Copy, Debug)]
pub struct StopBeforeExecution;

/// Request data that makes [`ValidationSignal`] answer a validated request with this future
/// instead of the schema's executor (a compiled plan of the operation); a request that does
/// not pass validation never runs it.
pub struct ExecuteInstead(Mutex<Option<BoxFuture<'static, async_graphql::Response>>>);

impl ExecuteInstead {
    /// Runs `run` in place of the executor.
    pub fn new(run: BoxFuture<'static, async_graphql::Response>) -> Self {
        Self(Mutex::new(Some(run)))
    }

    fn take(&self) -> Option<BoxFuture<'static, async_graphql::Response>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl std::fmt::Debug for ExecuteInstead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteInstead").finish_non_exhaustive()
    }
}

/// Request data telling [`ValidationSignal`] what is known of the request's document against
/// this schema (see `graphql::engine::validated`).
#[derive(Debug)]
pub enum ValidationMemo {
    /// Validated before, and these variables surely pass: this is the verdict.
    Skip(ValidationResult),
    /// Validate in full, and record a passing verdict here.
    Record(Arc<OnceLock<ValidationResult>>),
    /// Validate in full.
    Validate,
}

/// What the extension saw of one request.
#[derive(Debug, Default)]
struct Seen {
    seen: AtomicBool,
    validated: AtomicBool,
}

/// The per-request record the HTTP layer reads after execution.
#[derive(Clone, Debug, Default)]
pub(crate) struct Witness(Arc<Seen>);

impl Witness {
    /// Puts a fresh witness in the request data; returns the request and the witness.
    pub(crate) fn attach(request: async_graphql::Request) -> (async_graphql::Request, Self) {
        let witness = Self::default();
        (request.data(witness.clone()), witness)
    }

    /// True when `response` (the first of the request) is a request error.
    pub(crate) fn is_request_error(&self, response: &async_graphql::Response) -> bool {
        if self.0.seen.load(Ordering::Acquire) {
            !self.0.validated.load(Ordering::Acquire) && !response.errors.is_empty()
        } else {
            response::is_request_error(response)
        }
    }
}

/// Request data through which the executor may hand a response's `data` back as JSON text
/// (written straight from the backends' replies): the HTTP layer puts one in the requests
/// whose response it writes itself, and writes that text in place of the response's `data`.
/// Other transports (SSE, WebSocket) and doors do not, and get `data` as a value.
#[derive(Clone, Debug, Default)]
pub struct DataSlot(Arc<Mutex<Option<Vec<u8>>>>);

impl DataSlot {
    /// Puts an empty slot in the request data; returns the request and the slot.
    pub(crate) fn attach(request: async_graphql::Request) -> (async_graphql::Request, Self) {
        let slot = Self::default();
        (request.data(slot.clone()), slot)
    }

    /// The slot in `request`'s data, if the HTTP layer put one there.
    pub fn of(request: &async_graphql::Request) -> Option<Self> {
        request
            .data
            .get(&TypeId::of::<DataSlot>())
            .and_then(|any| any.as_ref().downcast_ref::<DataSlot>())
            .cloned()
    }

    /// Leaves the response's `data` as JSON text (valid JSON: the executor wrote it).
    pub fn put(&self, json: Vec<u8>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(json);
    }

    /// The response's `data` as JSON text, if the executor left it.
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}
