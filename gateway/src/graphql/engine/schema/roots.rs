//! Root fields (one per exposed method) and link fields: the resolvers that make calls.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::Error;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use futures::StreamExt;
use prost_reflect::{DynamicMessage, Kind, MethodDescriptor, Value};

use super::input::args_to_message;
use super::links::{LinkKey, LinkPlan};
use super::output::{Part, parent_message, to_field_value};
use super::shape::Shape;
use crate::error::GatewayError;
use crate::error::graphql::field_error;
use crate::graphql::engine::context::GraphqlCtx;
use crate::request::policy::CallSite;
use crate::upstream::{CallBody, Target, UpstreamError};

/// The shape of a method's whole response.
pub fn response_shape(method: &MethodDescriptor) -> Shape {
    Shape::of_kind(Kind::Message(method.output()))
}

/// A call's reply as a field value: objects are shared (no copy), scalar-like WKTs converted.
fn reply_value(
    reply: Arc<DynamicMessage>,
    shape: &Shape,
) -> Result<Option<FieldValue<'static>>, Error> {
    match shape {
        Shape::Object(_) => Ok(Some(FieldValue::owned_any(reply))),
        other => to_field_value(Cow::Owned(Value::Message((*reply).clone())), other).map(Some),
    }
}

fn ctx_of<'a>(
    ctx: &'a async_graphql::dynamic::ResolverContext<'a>,
) -> Result<&'a GraphqlCtx, Error> {
    ctx.data::<GraphqlCtx>()
        .map_err(|_| Error::new("internal: the GraphQL request has no gateway context"))
}

/// A query or mutation root field calling `target`'s method; `site` names it for policies.
pub fn root_field(name: &str, target: &Arc<Target>, site: CallSite, ty: TypeRef) -> Field {
    let target = target.clone();
    let shape = response_shape(&target.method);
    Field::new(name, ty, move |ctx| {
        let target = target.clone();
        let shape = shape.clone();
        let site = site.clone();
        FieldFuture::new(async move {
            let run = async {
                let g = ctx_of(&ctx)?;
                let req = args_to_message(
                    &target.method.input(),
                    ctx.args.as_index_map(),
                    g.max_struct_values(),
                )?;
                let reply = g.call(&target, &site, req).await.map_err(|e| {
                    field_error(
                        &e,
                        Some(target.method.parent_service().full_name()),
                        Some(g.pool()),
                    )
                })?;
                reply_value(reply, &shape)
            };
            Ok(or_report(&ctx, run.await))
        })
    })
}

/// A subscription field streaming `target`'s server-streaming method. The stream's deadline
/// is the call's, by the one rule: the method's timeout, capped by the request's budget.
pub fn subscription_field(
    name: &str,
    target: &Arc<Target>,
    site: CallSite,
    ty: TypeRef,
) -> SubscriptionField {
    let target = target.clone();
    let shape = response_shape(&target.method);
    SubscriptionField::new(name, ty, move |ctx| {
        let target = target.clone();
        let shape = shape.clone();
        let site = site.clone();
        SubscriptionFieldFuture::new(async move {
            let g = ctx_of(&ctx)?;
            let service = target.method.parent_service().full_name().to_string();
            let req = args_to_message(
                &target.method.input(),
                ctx.args.as_index_map(),
                g.max_struct_values(),
            )?;
            let call = g.request().call_to(&target, CallBody::Unary(req));
            let pool = g.pool().clone();
            let reply = g
                .outbound()
                .server_streaming(g.request(), &site, call)
                .await
                .map_err(|e| field_error(&e, Some(&service), Some(&pool)))?;
            let backend = target.backend.to_string();
            Ok(reply.stream.map(move |item| match item {
                Ok(msg) => {
                    reply_value(Arc::new(msg), &shape).map(|v| v.unwrap_or(FieldValue::NULL))
                }
                Err(status) => Err(field_error(
                    &GatewayError::Upstream(UpstreamError::Status {
                        backend: backend.clone(),
                        status,
                    }),
                    Some(&service),
                    Some(&pool),
                )),
            }))
        })
    })
}

/// The field a link adds to its parent type.
pub fn link_field(plan: &Arc<LinkPlan>, ty: TypeRef) -> Field {
    let description = plan.description.clone().unwrap_or_else(|| {
        format!(
            "Resolved by {}{}.",
            plan.method.full_name(),
            plan.batch
                .as_ref()
                .map(|b| format!(" (batched through {})", b.method.full_name()))
                .unwrap_or_default()
        )
    });
    let plan = plan.clone();
    let field = Field::new(plan.field.clone(), ty, move |ctx| {
        let plan = plan.clone();
        FieldFuture::new(async move {
            let run = resolve_link(&ctx, &plan);
            Ok(or_report(&ctx, run.await))
        })
    });
    field.description(description)
}

/// Resolves a link for the parent in `ctx`.
async fn resolve_link<'a>(
    ctx: &async_graphql::dynamic::ResolverContext<'a>,
    plan: &LinkPlan,
) -> Result<Option<FieldValue<'a>>, Error> {
    let parent = parent_message(ctx.parent_value)?;
    let g = ctx_of(ctx)?;
    if plan.batch.is_some() {
        let Some(key) = plan.key_of(parent) else {
            return Ok(None);
        };
        return match g
            .links
            .load_one(LinkKey {
                link: plan.index,
                key,
            })
            .await
            .map_err(|e| Error::new(e.to_string()))?
        {
            None => Ok(None),
            Some(Ok(item)) => Ok(Some(FieldValue::owned_any(item))),
            Some(Err(e)) => Err(e),
        };
    }
    let req = plan.request_for(parent)?;
    let reply = g.call(&plan.target, &plan.site, req).await.map_err(|e| {
        field_error(
            &e,
            Some(plan.method.parent_service().full_name()),
            Some(g.pool()),
        )
    })?;
    match &plan.result {
        None => reply_value(reply, &plan.shape),
        Some(rf) => {
            if !rf.is_list() && rf.supports_presence() && !reply.has_field(rf) {
                return Ok(None);
            }
            // Messages stay in the reply and are referred to; scalars are copied.
            match &plan.shape {
                Shape::Object(_) if reply.has_field(rf) => {
                    Ok(Some(FieldValue::owned_any(Part::field(reply, rf.clone()))))
                }
                Shape::List(inner) if matches!(inner.as_ref(), Shape::Object(_)) => {
                    let n = reply.get_field(rf).as_list().map_or(0, <[Value]>::len);
                    Ok(Some(FieldValue::list((0..n).map(|i| {
                        FieldValue::owned_any(Part::item(reply.clone(), rf.clone(), i))
                    }))))
                }
                shape => {
                    let v = reply.get_field(rf).into_owned();
                    to_field_value(Cow::Owned(v), shape).map(Some)
                }
            }
        }
    }
}

/// A failed field is null, with its error reported at the field's path (async-graphql's
/// dynamic executor would otherwise drop the field and the path).
pub fn or_report<'a>(
    ctx: &async_graphql::dynamic::ResolverContext<'a>,
    r: Result<Option<FieldValue<'a>>, Error>,
) -> Option<FieldValue<'a>> {
    match r {
        Ok(v) => v,
        Err(e) => {
            ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
            None
        }
    }
}
