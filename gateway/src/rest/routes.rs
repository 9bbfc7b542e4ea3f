//! Building the REST route table of a snapshot from the descriptors and the config.
//!
//! Each method gets a route per `google.api.http` binding (rule plus `additional_bindings`) and,
//! when `rest.default_routes` is on, `POST /{package.Service}/{Method}` with a JSON body. Field
//! paths in templates, `body` and `response_body` are resolved here, once, so that a request
//! only looks things up.

use std::sync::Arc;

use http::{Method, StatusCode};
use prost_reflect::{MethodDescriptor, ServiceDescriptor};

use super::router::Router;
use super::template::PathTemplate;
use crate::config::{Config, RestDecoder, RestEncoder};
use crate::descriptors::http_bindings;
use crate::request::policy::CallSite;
use crate::transcode::direct::{Plans, TypePlan};
use crate::transcode::{BodyTarget, FieldPath, is_http_body, is_http_body_field};
use crate::upstream::{Target, Targets};

/// How messages flow in a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streaming {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    Server,
    /// A stream of requests, one response.
    Client,
}

/// The route a REST answer came from, as a response extension (for the ingress's metrics).
#[derive(Clone, Debug)]
pub struct MatchedRoute(pub std::sync::Arc<RouteTarget>);

/// Where a matched route leads, resolved at load time.
#[derive(Debug)]
pub struct RouteTarget {
    /// The gRPC method.
    pub method: MethodDescriptor,
    /// `package.Service.Method`.
    pub full_name: String,
    /// The call target (backend, timeout, idempotency).
    pub call: Arc<Target>,
    /// The call site policies see: `GET /v1/users/{id}`.
    pub site: CallSite,
    /// The HTTP method of the binding.
    pub http_method: Method,
    /// The path template text of the binding.
    pub template: String,
    /// Where the request body goes.
    pub body: BodyTarget,
    /// The response field written as the body, if not the whole message.
    pub response_body: Option<FieldPath>,
    /// The resolved field of each template variable, in template order.
    pub variables: Vec<FieldPath>,
    /// Status of a success.
    pub success: StatusCode,
    /// Message flow of the method.
    pub streaming: Streaming,
    /// Whether a PATCH body fills an unset `update_mask`.
    pub fill_update_mask: bool,
    /// How to write the reply straight from its wire bytes (`rest.encoder: direct`, the whole
    /// message as the body, unary or client-streaming methods).
    pub reply_plan: Option<TypePlan>,
    /// The plan that writes the request message's bytes straight from a JSON body (`None`:
    /// `rest.decoder: reflect`).
    pub request_plan: Option<TypePlan>,
    /// The body is a `google.api.HttpBody` (the whole request with `body: "*"`, or the field
    /// `body` names): the raw body and its `Content-Type`, whatever they are.
    pub raw_request: bool,
    /// The reply (or its `response_body` field) is a `google.api.HttpBody`: answered as its
    /// raw bytes with its content type (a server stream as a download).
    pub raw_reply: bool,
    /// A `multipart/form-data` body may fill the message the body is (`rest.multipart`
    /// enabled, a body that is the whole request or a message field, not a client stream).
    pub takes_form: bool,
}

/// A problem found while building routes; names the method and the binding.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {binding}: {message}")]
pub struct RouteError {
    /// `package.Service.Method`.
    pub method: String,
    /// e.g. `GET /v1/users/{id}`.
    pub binding: String,
    /// What is wrong.
    pub message: String,
}

/// The route table, and the bindings left out of it.
#[derive(Debug)]
pub struct Routes {
    /// The table.
    pub router: Router<Arc<RouteTarget>>,
    /// Bindings that cannot be served (a template the router cannot express, a streaming
    /// binding it does not serve, a route another method already has), each with the reason.
    /// The rest of the method's service is served.
    pub skipped: Vec<RouteError>,
}

/// Builds the route table for the given services (each with its backend's name), over the
/// snapshot's call targets. A binding that cannot be served is left out and reported in
/// [`Routes::skipped`]; with `rest.strict` it is an error instead.
pub fn build_routes(
    services: &[(ServiceDescriptor, String)],
    targets: &Targets,
    cfg: &Config,
) -> Result<Routes, RouteError> {
    let mut router = Router::new();
    let mut skipped = Vec::new();
    // One set of plans for every unary method's output type (replies) and every method's
    // input type (requests): types they share are planned once.
    let encode = cfg.rest.encoder == RestEncoder::Direct;
    let decode = cfg.rest.decoder == RestDecoder::Direct;
    let plans = (encode || decode).then(|| {
        let methods = || services.iter().flat_map(|(s, _)| s.methods());
        let outputs = methods()
            .filter(|m| encode && !m.is_server_streaming())
            .map(|m| m.output());
        let inputs = methods().filter(|_| decode).map(|m| m.input());
        Plans::for_types(outputs.chain(inputs))
    });
    let mut skip = |e: RouteError| {
        if cfg.rest.strict {
            Err(e)
        } else {
            skipped.push(e);
            Ok(())
        }
    };
    for (service, _) in services {
        for method in service.methods() {
            let streaming = match (method.is_client_streaming(), method.is_server_streaming()) {
                (false, false) => Streaming::Unary,
                (false, true) => Streaming::Server,
                (true, false) => Streaming::Client,
                // Bidirectional methods are served over WebSocket (`crate::websocket`), not
                // as REST routes: `google.api.http` bindings of one are reported.
                (true, true) => {
                    if !http_bindings(&method).is_empty() {
                        skip(RouteError {
                            method: method.full_name().to_string(),
                            binding: "every binding".into(),
                            message: format!(
                                "bidirectional streaming is not a REST route: call it over WebSocket (GET /{}/{} with Upgrade: websocket)",
                                service.full_name(),
                                method.name()
                            ),
                        })?;
                    }
                    continue;
                }
            };
            let mut bindings: Vec<(Method, String, Option<String>, Option<String>)> =
                http_bindings(&method)
                    .into_iter()
                    .map(|b| (b.method, b.path, b.body, b.response_body))
                    .collect();
            if cfg.rest.default_routes {
                bindings.push((
                    Method::POST,
                    format!("/{}/{}", service.full_name(), method.name()),
                    Some("*".to_string()),
                    None,
                ));
            }
            for (http_method, path, body, response_body) in bindings {
                let Some(call) = targets.get(method.full_name()).cloned() else {
                    return Err(RouteError {
                        method: method.full_name().to_string(),
                        binding: format!("{http_method} {path}"),
                        message: "no call target (its service has no backend)".into(),
                    });
                };
                let built = route_target(
                    &method,
                    call,
                    cfg,
                    plans.as_ref(),
                    streaming,
                    http_method.clone(),
                    &path,
                    body,
                    response_body,
                )
                .and_then(|target| {
                    let template = PathTemplate::parse(&path).map_err(|e| RouteError {
                        method: method.full_name().to_string(),
                        binding: format!("{http_method} {path}"),
                        message: e.to_string(),
                    })?;
                    router
                        .insert(http_method.clone(), template, Arc::new(target))
                        .map_err(|dup| RouteError {
                            method: dup.new.full_name.clone(),
                            binding: format!("{} {}", dup.method, dup.template),
                            message: format!(
                                "the same route is already bound to {} ({} {})",
                                dup.existing.full_name,
                                dup.existing.http_method,
                                dup.existing.template
                            ),
                        })
                });
                if let Err(e) = built {
                    skip(e)?;
                }
            }
        }
    }
    Ok(Routes { router, skipped })
}

#[allow(clippy::too_many_arguments)]
fn route_target(
    method: &MethodDescriptor,
    call: Arc<Target>,
    cfg: &Config,
    plans: Option<&Arc<Plans>>,
    streaming: Streaming,
    http_method: Method,
    path: &str,
    body: Option<String>,
    response_body: Option<String>,
) -> Result<RouteTarget, RouteError> {
    let err = |message: String| RouteError {
        method: method.full_name().to_string(),
        binding: format!("{http_method} {path}"),
        message,
    };
    let template = PathTemplate::parse(path).map_err(|e| err(e.to_string()))?;
    let input = method.input();
    let mut variables = Vec::new();
    for v in template.variables() {
        let dotted = v.field_path.join(".");
        let fp = FieldPath::resolve(&input, &dotted)
            .map_err(|e| err(format!("path variable {{{dotted}}}: {e}")))?;
        if fp.last().is_list() || fp.last().is_map() {
            return Err(err(format!(
                "path variable {{{dotted}}} is a repeated or map field"
            )));
        }
        variables.push(fp);
    }
    let body = match body.as_deref() {
        None | Some("") => BodyTarget::None,
        Some("*") => BodyTarget::Whole,
        Some(field) => BodyTarget::Field(
            FieldPath::resolve(&input, field).map_err(|e| err(format!("body {field:?}: {e}")))?,
        ),
    };
    // A client stream's body is the stream of messages (one per NDJSON line): `body: "*"`,
    // or no body at all, which grpc-gateway reads the same way.
    let body = match body {
        BodyTarget::None if streaming == Streaming::Client => BodyTarget::Whole,
        BodyTarget::Field(_) if streaming == Streaming::Client => {
            return Err(err(
                "a client-streaming method's body is its stream of messages: bind it with body: \"*\" (or no body)".into(),
            ));
        }
        other => other,
    };
    let response_body = match response_body.as_deref() {
        None | Some("") => None,
        Some(field) => Some(
            FieldPath::resolve(&method.output(), field)
                .map_err(|e| err(format!("response_body {field:?}: {e}")))?,
        ),
    };
    let method_cfg = cfg.rest.methods.get(method.full_name());
    let success = method_cfg
        .and_then(|m| m.success_status)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let fill_update_mask = http_method == Method::PATCH && matches!(body, BodyTarget::Field(_));
    let raw_request = streaming != Streaming::Client
        && match &body {
            BodyTarget::Whole => is_http_body(&input),
            BodyTarget::Field(f) => is_http_body_field(f.last()),
            BodyTarget::None => false,
        };
    let takes_form = cfg.rest.multipart.enabled
        && !raw_request
        && streaming != Streaming::Client
        && match &body {
            BodyTarget::None => false,
            BodyTarget::Whole => true,
            BodyTarget::Field(f) => {
                !f.last().is_list()
                    && !f.last().is_map()
                    && f.last()
                        .kind()
                        .as_message()
                        .is_some_and(|m| !m.full_name().starts_with("google.protobuf."))
            }
        };
    let raw_reply = match &response_body {
        None => is_http_body(&method.output()),
        Some(f) => is_http_body_field(f.last()),
    };
    let reply_plan = match (plans, &response_body, streaming) {
        _ if raw_reply => None,
        (Some(plans), None, Streaming::Unary | Streaming::Client)
            if cfg.rest.encoder == RestEncoder::Direct =>
        {
            plans.type_plan(&method.output())
        }
        _ => None,
    };
    let request_plan = plans
        .filter(|_| cfg.rest.decoder == RestDecoder::Direct)
        .and_then(|p| p.type_plan(&method.input()));
    Ok(RouteTarget {
        method: method.clone(),
        full_name: method.full_name().to_string(),
        site: CallSite::Route(format!("{http_method} {path}").into()),
        call,
        http_method,
        template: path.to_string(),
        body,
        response_body,
        variables,
        success,
        streaming,
        fill_update_mask,
        reply_plan,
        request_plan,
        raw_request,
        raw_reply,
        takes_form,
    })
}
