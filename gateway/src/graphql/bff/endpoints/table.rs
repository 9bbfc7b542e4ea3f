//! The endpoint route table: the `endpoints` config checked against the operations folder
//! and the REST routes, built once per snapshot.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use http::Method;

use crate::config::{Config, EndpointMethod};
use crate::graphql::bff::operations::{Operation, Operations};
use crate::rest::router::Router;
use crate::rest::routes::RouteTarget;
use crate::rest::template::{PathTemplate, Segment};

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
