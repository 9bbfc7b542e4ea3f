//! GraphQL over HTTP for any `async_graphql::Executor`: the GraphQL-over-HTTP spec (GET and
//! POST), Server-Sent Events, WebSocket, and the GraphiQL page, all on one path.
//!
//! # What a request goes through
//! 1. **Method.** `GET` and `POST` are served (a WebSocket upgrade is a `GET`); anything
//!    else is 405 with `Allow: GET, POST`.
//! 2. **WebSocket.** A `GET` with `Upgrade: websocket` (or an HTTP/2 extended `CONNECT`)
//!    becomes a `graphql-transport-ws` / `graphql-ws` connection (see `ws.rs`).
//! 3. **GraphiQL.** With [`HttpSettings::graphiql`], a `GET` naming `text/html` in `Accept`
//!    and carrying no `query` parameter gets the GraphiQL page.
//! 4. **Accept.** The response media type is negotiated (see `negotiate.rs`):
//!    `application/graphql-response+json`, `application/json` (the default, also for `*/*`),
//!    or `text/event-stream` (SSE); nothing acceptable is 406.
//! 5. **Parameters.** `POST` needs `Content-Type: application/json` (else 415) and a body
//!    holding one JSON object (the ingress read it, under the gateway's body limits); `GET` takes
//!    URL parameters (`variables`/`extensions` as JSON text). Malformed input, wrong types,
//!    a batch (JSON array) or a missing `query` is 400 (see `request.rs`).
//! 6. **Prepare.** [`Prepare::prepare`] may add data or reject (with a [`GatewayError`]:
//!    its kind gives the status and the code).
//! 7. **Parse.** The document is parsed here (and handed to the executor already parsed); a
//!    parse failure is a request error with code `GRAPHQL_PARSE_FAILED`.
//! 8. **Operation.** An operation name that selects nothing is a request error with code
//!    `OPERATION_RESOLUTION_FAILURE`. A mutation over `GET`, or a subscription over `GET` without SSE, is
//!    405 with `Allow: POST`; a subscription over `POST` without SSE is 400 (subscriptions
//!    need SSE or a WebSocket).
//! 9. **Execute** and write the result (see `response.rs` for the request-error rule and the
//!    status codes), or stream it as SSE (see `sse.rs`).
//!
//! Every error body made here is `{"errors":[{"message":…,"extensions":{"code":…}}]}`
//! (the GraphQL renderer of [`crate::error`]), with codes `BAD_REQUEST`,
//! `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`, `NOT_ACCEPTABLE`, `METHOD_NOT_ALLOWED`,
//! `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`, or those of the rejections of
//! [`Prepare`]; the statuses are the taxonomy's.

pub mod graphiql;
mod negotiate;
mod request;
mod response;
mod signal;
mod sse;
mod ws;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_graphql::Executor;
use async_graphql::parser::types::OperationType;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use http::Method;
use http::request::Parts;

use crate::error::{ErrorKind, GatewayError};
use crate::graphql::engine::plan::{Known, operation_of};
use negotiate::MediaType;
use signal::Witness;
pub use signal::{
    DataSlot, ExecuteInstead, StopBeforeExecution, ValidationMemo, ValidationSignal, mark_validated,
};

/// Settings of the GraphQL endpoint.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Serve the GraphiQL page to browsers at the endpoint (a `GET` with `Accept: text/html`
    /// and no `query` parameter). When off, such a `GET` is a 400 like any `GET` without a
    /// query.
    pub graphiql: bool,
    /// The path of the endpoint, e.g. `"/graphql"`; taken literally (a missing leading `/`
    /// is added, `{` and `}` are not route parameters).
    pub path: String,
    /// Most values in a POST body's `variables`, counted before parsing (0: no limit); see
    /// `graphql.limits.max_variable_values`.
    pub max_variable_values: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            graphiql: true,
            path: "/graphql".to_owned(),
            max_variable_values: 10_000,
        }
    }
}

/// Whether the request is a WebSocket upgrade (its operations are prepared with these parts).
pub fn is_websocket(parts: &Parts) -> bool {
    ws::is_upgrade(parts)
}

/// A refusal of a request to this endpoint found before it got here (the ingress: header
/// limits, body limits, policies), written as the endpoint writes its own: GraphQL errors in
/// the media type the request accepts.
pub fn reject(err: &GatewayError, headers: &http::HeaderMap) -> Response {
    let media = negotiate::negotiate(headers).unwrap_or(MediaType::Json);
    response::rejection(err, media)
}

/// Adds per-request data (headers, request id...) and runs limits before execution;
/// implemented by the gateway.
pub trait Prepare: Send + Sync + 'static {
    /// Called for every request before execution; may reject it (the error becomes a
    /// GraphQL request error with its kind's status and `extensions.code`).
    ///
    /// Over HTTP, `parts` are those of the request itself. Over WebSocket, `prepare` runs
    /// for every operation of the connection with the parts of the upgrade request, whose
    /// extensions then also hold the connection's [`ConnectionInitPayload`] (browsers cannot
    /// set headers on a WebSocket, so tokens often travel there).
    ///
    /// `req.query` may be empty when the client sent a `persistedQuery` extension or a
    /// [`DocumentId`] instead of a document: fill it in, or reject (e.g.
    /// `PERSISTED_QUERY_NOT_FOUND`). To inspect the document, call `req.parsed_query()`: it
    /// parses once and the executor reuses it. It is async so that documents can be looked up
    /// in a shared store.
    fn prepare(
        &self,
        req: async_graphql::Request,
        parts: &Parts,
    ) -> impl Future<Output = Result<async_graphql::Request, GatewayError>> + Send;

    /// Called before the GraphiQL page is served for `parts`; may refuse it (the error is
    /// written as a JSON GraphQL error with its kind's status). Serves it by default.
    fn allow_graphiql(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send {
        let _ = parts;
        std::future::ready(Ok(()))
    }
}

/// The `documentId` parameter of a request (GraphQL over HTTP's trusted documents), sent
/// instead of `query`; the HTTP layer puts it in the request data for [`Prepare`] to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentId(pub String);

/// A [`Prepare`] that accepts every request unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl Prepare for PassThrough {
    async fn prepare(
        &self,
        req: async_graphql::Request,
        _parts: &Parts,
    ) -> Result<async_graphql::Request, GatewayError> {
        Ok(req)
    }
}

/// The payload of a WebSocket connection's `connection_init` message (`{}` when absent).
///
/// Found in the extensions of the parts handed to [`Prepare::prepare`] for operations of
/// that connection, and in the session data resolvers see (`ctx.data::<ConnectionInitPayload>()`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionInitPayload(pub serde_json::Value);

/// What every request of the endpoint shares.
struct Shared<E, P> {
    executor: E,
    prepare: Arc<P>,
    settings: HttpSettings,
}

/// The endpoint as a value, for a caller that does its own routing (the gateway's ingress
/// routes by the normalised path): every request handed to [`GraphqlHttp::serve`] is served
/// as a request to the endpoint. Cheap to clone.
pub struct GraphqlHttp<E, P> {
    shared: Arc<Shared<E, P>>,
}

impl<E, P> Clone for GraphqlHttp<E, P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E: Executor + Clone, P: Prepare> GraphqlHttp<E, P> {
    /// The endpoint for executor `E`, prepared by `P`.
    pub fn new(executor: E, prepare: Arc<P>, settings: HttpSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                executor,
                prepare,
                settings,
            }),
        }
    }

    /// Serves one request.
    pub async fn serve(&self, request: Request) -> Response {
        handle(State(self.shared.clone()), request).await
    }
}

/// Returns an axum Router serving `settings.path` (GET, POST; WebSocket upgrade on GET) for
/// the executor `E`.
pub fn router<E: Executor + Clone, P: Prepare>(
    executor: E,
    prepare: Arc<P>,
    settings: HttpSettings,
) -> Router {
    let path = route_path(&settings.path);
    let shared = Arc::new(Shared {
        executor,
        prepare,
        settings,
    });
    Router::new()
        .route(&path, any(handle::<E, P>))
        .with_state(shared)
}

/// The axum route for a literal path: leading `/` ensured, braces escaped.
fn route_path(path: &str) -> String {
    let escaped = path.replace('{', "{{").replace('}', "}}");
    if escaped.starts_with('/') {
        escaped
    } else {
        format!("/{escaped}")
    }
}

/// The one handler of the endpoint.
async fn handle<E: Executor, P: Prepare>(
    State(shared): State<Arc<Shared<E, P>>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if ws::is_upgrade(&parts) {
        return ws::upgrade(shared.executor.clone(), shared.prepare.clone(), parts).await;
    }
    let is_get = parts.method == Method::GET;
    if !is_get && parts.method != Method::POST {
        let media = negotiate::negotiate(&parts.headers).unwrap_or(MediaType::Json);
        let message = format!("method {} is not allowed: use GET or POST", parts.method);
        return response::method_not_allowed(&message, "GET, POST", media);
    }
    if is_get
        && shared.settings.graphiql
        && negotiate::wants_html(&parts.headers)
        && !request::has_query_param(&parts.uri)
    {
        if let Err(refused) = shared.prepare.allow_graphiql(&parts).await {
            return response::rejection(&refused, MediaType::Json);
        }
        return graphiql::respond(&shared.settings.path);
    }
    let Some(media) = negotiate::negotiate(&parts.headers) else {
        let rejection = GatewayError::rejected(
            ErrorKind::NotAcceptable,
            "none of the Accept media types can be served: accept \
             application/graphql-response+json, application/json or text/event-stream",
        );
        return response::rejection(&rejection, MediaType::Json);
    };
    let params = if is_get {
        request::parse_query_string(&parts.uri)
    } else {
        match request::check_content_type(&parts.headers) {
            Ok(()) => match request::read_body(body).await {
                Ok(bytes) => {
                    request::count_variable_values(&bytes, shared.settings.max_variable_values)
                        .and_then(|()| request::parse_body(&bytes))
                }
                Err(rejection) => Err(rejection),
            },
            Err(rejection) => Err(rejection),
        }
    };
    let graphql_request = match params.and_then(request::Params::into_request) {
        Ok(graphql_request) => graphql_request,
        Err(rejection) => return response::rejection(&rejection, media),
    };
    run(&shared, graphql_request, &parts, media).await
}

/// Steps 6 to 9 of the module docs: prepare, parse, check the operation type, execute.
async fn run<E: Executor, P: Prepare>(
    shared: &Shared<E, P>,
    graphql_request: async_graphql::Request,
    parts: &Parts,
    media: MediaType,
) -> Response {
    let mut graphql_request = match shared.prepare.prepare(graphql_request, parts).await {
        Ok(graphql_request) => graphql_request,
        Err(rejection) => return response::rejection(&rejection, media),
    };
    if graphql_request.query.is_empty() {
        let rejection = request::bad_request("the `query` parameter is missing or empty");
        return response::rejection(&rejection, media);
    }
    let operation_name = graphql_request.operation_name.clone();
    // A document seen before: its operation is known without it (see the prepare step).
    let known = Known::of(&graphql_request).and_then(|k| k.operation);
    let operation = match known {
        Some(ty) => Some(ty),
        None => match graphql_request.parsed_query() {
            Ok(document) => operation_of(document, operation_name.as_deref()).map(|op| op.node.ty),
            Err(error) => return response::parse_failure(error, media),
        },
    };
    let Some(operation) = operation else {
        let message = match operation_name {
            Some(name) => format!("the document has no operation named {name:?}"),
            None => "the document has several operations: name one with `operationName`".to_owned(),
        };
        return response::request_error("OPERATION_RESOLUTION_FAILURE", message, media);
    };
    let is_get = parts.method == Method::GET;
    match operation {
        OperationType::Mutation if is_get => {
            return response::method_not_allowed(
                "mutations cannot be sent with GET: use POST",
                "POST",
                media,
            );
        }
        OperationType::Subscription if is_get && media != MediaType::EventStream => {
            return response::method_not_allowed(
                "subscriptions need Accept: text/event-stream (with POST or GET) or a WebSocket",
                "POST",
                media,
            );
        }
        OperationType::Subscription if media != MediaType::EventStream => {
            let rejection =
                request::bad_request("subscriptions need Accept: text/event-stream or a WebSocket");
            return response::rejection(&rejection, media);
        }
        _ => {}
    }
    if media == MediaType::EventStream {
        return sse::respond(&shared.executor, graphql_request, operation).await;
    }
    let (graphql_request, witness) = Witness::attach(graphql_request);
    let (graphql_request, slot) = DataSlot::attach(graphql_request);
    let result = shared.executor.execute(graphql_request).await;
    let request_error = witness.is_request_error(&result);
    response::executed(result, request_error, media, slot.take())
}
