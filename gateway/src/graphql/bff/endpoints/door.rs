//! The endpoint door: binds a request to its operation's variables, runs the operation on the
//! request's pinned snapshot (the same prepare step and executor as the GraphQL endpoint), and
//! answers with its `data` by the status rule.

use std::sync::Arc;

use async_graphql::Variables;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value as Json};

use super::bind::{Inputs, bind};
use super::status::{PARTIAL_HEADER, shape};
use super::table::Endpoint;
use crate::error::GatewayError;
use crate::graphql::run::executor::execute;
use crate::graphql::run::prepare::{GatewayPrepare, Origin};
use crate::ingress::body::{bytes_of, check_json};
use crate::ingress::{Admitted, EndpointMatch, respond};

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
    // Stale wins the mark: part of the answer is older than a static fallback would say.
    let fallback = if result.extensions.contains_key("stale") {
        Some("stale")
    } else if result.extensions.contains_key("fallbacks") {
        Some("static")
    } else {
        None
    };
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
    if let Some(kind) = fallback {
        resp.headers_mut()
            .insert("x-portico-fallback", HeaderValue::from_static(kind));
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
    check_json(headers, false)?;
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
