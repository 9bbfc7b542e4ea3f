//! Operations of the operations folder published as REST endpoints: the route table built from
//! the `endpoints` config, and the handler that binds a request to the operation's variables,
//! runs it through the GraphQL engine (same prepare step and executor as `/graphql`: limits,
//! deadline, metadata, dedup and batching apply) and answers with its `data`.
//!
//! Endpoint routes are looked up before the REST door's; a template of the same shape as a
//! transcoded REST route (same method) is a load error naming both. See [`bind`] for how
//! variables are bound and [`status`] for the status rule.

pub mod bind;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use async_graphql::parser::types::OperationType;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value as Json};

use crate::config::{Config, EndpointMethod};
use crate::error::GatewayError;
use crate::graphql::executor::execute;
use crate::graphql::operations::{Operation, Operations};
use crate::graphql::prepare::{GatewayPrepare, Origin};
use crate::ingress::body::bytes_of;
use crate::ingress::{Admitted, EndpointMatch, respond};
use crate::rest::router::Router;
use crate::rest::routes::RouteTarget;
use crate::rest::template::{PathTemplate, Segment};
use bind::{Inputs, bind};
use status::{PARTIAL_HEADER, shape};

/// One published operation.
#[derive(Debug)]
pub struct Endpoint {
    /// Its index in `endpoints` (for messages).
    pub index: usize,
    /// The HTTP method.
    pub method: Method,
    /// The path template text.
    pub path: String,
    /// The operation it runs.
    pub operation: Arc<Operation>,
    /// Return `data.<unwrap>` instead of `data`.
    pub unwrap: Option<String>,
    /// The operation's deadline, if set for this endpoint.
    pub timeout: Option<Duration>,
}

/// A config problem of an endpoint: the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct EndpointError {
    /// The key, e.g. `endpoints[0].operation`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn error(key: String, message: impl Into<String>) -> EndpointError {
    EndpointError {
        key,
        message: message.into(),
    }
}

/// Builds the endpoint route table of `cfg` over the loaded `operations`, refusing routes that
/// clash with each other or with the REST door's `rest_routes`.
pub fn build(
    cfg: &Config,
    operations: Option<&Operations>,
    rest_routes: &Router<Arc<RouteTarget>>,
) -> Result<Router<Arc<Endpoint>>, EndpointError> {
    let mut table = Router::new();
    for (index, ep) in cfg.endpoints.iter().enumerate() {
        let key = |k: &str| format!("endpoints[{index}].{k}");
        let operation = operations
            .and_then(|o| o.get(&ep.operation))
            .cloned()
            .ok_or_else(|| {
                let known = operations
                    .map(|o| {
                        o.iter()
                            .map(|o| o.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                error(
                    key("operation"),
                    format!(
                        "no operation named {:?} in the operations folder (known: {known})",
                        ep.operation
                    ),
                )
            })?;
        let method = match (operation.kind, ep.method) {
            (OperationType::Subscription, _) => {
                return Err(error(
                    key("operation"),
                    format!(
                        "{} is a subscription: only queries and mutations can be published",
                        operation.name
                    ),
                ));
            }
            (OperationType::Mutation, Some(EndpointMethod::Get)) => {
                return Err(error(
                    key("method"),
                    format!("{} is a mutation: publish it with POST", operation.name),
                ));
            }
            (_, Some(m)) => m,
            (OperationType::Query, None) => EndpointMethod::Get,
            (OperationType::Mutation, None) => EndpointMethod::Post,
        }
        .http();
        let template =
            PathTemplate::parse(&ep.path).map_err(|e| error(key("path"), e.to_string()))?;
        for v in template.variables() {
            let name = v.dotted();
            let single = v.field_path.len() == 1
                && v.segments.len() == 1
                && template
                    .segments()
                    .get(v.segments.start)
                    .is_some_and(|s| *s == Segment::Single);
            if !single {
                return Err(error(
                    key("path"),
                    format!(
                        "{{{name}}}: an endpoint's path parameter is one segment named after a variable, like {{userId}}"
                    ),
                ));
            }
            if !operation.variables.iter().any(|d| d.name == name) {
                return Err(error(
                    key("path"),
                    format!(
                        "{{{name}}} is not a variable of the operation {} (it declares {})",
                        operation.name,
                        operation
                            .variables
                            .iter()
                            .map(|d| format!("${}", d.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if let Some(u) = &ep.unwrap
            && !operation.root_fields.contains(u)
        {
            return Err(error(
                key("unwrap"),
                format!(
                    "{u:?} is not a root field of the operation {} (it selects {})",
                    operation.name,
                    operation.root_fields.join(", ")
                ),
            ));
        }
        if let Some((m, t, target)) = rest_routes
            .routes()
            .find(|(m, t, _)| **m == method && t.same_shape(&template))
        {
            return Err(error(
                key("path"),
                format!(
                    "{method} {} clashes with the REST route {m} {} of {}",
                    ep.path,
                    t.as_str(),
                    target.full_name
                ),
            ));
        }
        let endpoint = Arc::new(Endpoint {
            index,
            method: method.clone(),
            path: ep.path.clone(),
            operation,
            unwrap: ep.unwrap.clone(),
            timeout: ep.timeout.map(|t| t.get()),
        });
        table.insert(method, template, endpoint).map_err(|dup| {
            error(
                key("path"),
                format!(
                    "{} {} has the same shape as endpoints[{}] ({} {})",
                    dup.method, dup.template, dup.existing.index, dup.method, dup.existing_template
                ),
            )
        })?;
    }
    Ok(table)
}

/// Serves a request the ingress admitted to the endpoint door.
pub async fn handle(admitted: Admitted, req: Request) -> Response {
    let result = match &admitted.endpoint {
        Some(EndpointMatch::Found(endpoint, values)) => {
            tracing::Span::current().record("rpc", endpoint.operation.name.as_str());
            serve(&admitted, endpoint, values, req).await
        }
        Some(EndpointMatch::MethodNotAllowed(allowed)) => Err(GatewayError::MethodNotAllowed {
            method: req.method().clone(),
            path: admitted.ctx.path.clone(),
            allowed: allowed.clone(),
        }),
        None => Err(GatewayError::Internal(
            "the endpoint door got a request without an endpoint".into(),
        )),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => respond(
            admitted.ctx.door,
            &e,
            &http::HeaderMap::new(),
            Some(admitted.snapshot.registry.pool()),
        ),
    }
}

async fn serve(
    admitted: &Admitted,
    endpoint: &Arc<Endpoint>,
    path_values: &[(String, String)],
    req: Request,
) -> Result<Response, GatewayError> {
    let snap = &admitted.snapshot;
    let (parts, body) = req.into_parts();
    let body = if endpoint.method == Method::POST {
        Some(json_object(&parts.headers, &bytes_of(body).await?)?)
    } else {
        None
    };
    let variables = bind(
        &endpoint.operation,
        Inputs {
            path: path_values.to_vec(),
            query: parts.uri.query(),
            body,
            ignored: &snap.config.rest.ignored_query_params,
            plus_is_space: snap.config.rest.query_plus_is_space,
        },
    )?;
    let op = &endpoint.operation;
    let request = async_graphql::Request::new(op.document.to_string())
        .operation_name(op.name.clone())
        .variables(Variables::from_json(Json::Object(variables)));
    // The endpoint's own deadline narrows the request's budget.
    let ctx = match endpoint.timeout {
        Some(t) => {
            let mut ctx = (*admitted.ctx).clone();
            ctx.budget = ctx.budget.narrowed(t);
            Arc::new(ctx)
        }
        None => admitted.ctx.clone(),
    };
    let request = GatewayPrepare::prepare_on(snap.clone(), ctx, request, Origin::Trusted).await?;
    let result = execute(request).await;
    let fallback = result.extensions.contains_key("fallbacks");
    let errors: Vec<async_graphql::Value> = result
        .errors
        .iter()
        .filter_map(|e| async_graphql::to_value(e).ok())
        .collect();
    let shaped = shape(result.data, errors, endpoint.unwrap.as_deref());
    let body = serde_json::to_string(&shaped.body).unwrap_or_else(|_| "null".into());
    let mut resp = json_response(shaped.status, body);
    if shaped.partial {
        resp.headers_mut()
            .insert(PARTIAL_HEADER, HeaderValue::from_static("true"));
    }
    if fallback {
        resp.headers_mut()
            .insert("x-portico-fallback", HeaderValue::from_static("static"));
    }
    Ok(resp)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A POST body: empty means no variables, else one JSON object (`application/json`).
fn json_object(headers: &http::HeaderMap, bytes: &[u8]) -> Result<Map<String, Json>, GatewayError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(GatewayError::UnsupportedMediaType {
                got: ct.to_string(),
                expected: "application/json",
            });
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::bad_request(
            None,
            "the body must be a JSON object whose keys are the operation's variables",
        )),
        Err(e) => Err(GatewayError::bad_request(
            None,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}
