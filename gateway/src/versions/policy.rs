//! The version stage of the policy chain: every call of a retired version's method is refused
//! with 410 Gone (`GONE` in GraphQL, UNIMPLEMENTED over gRPC-Web), whichever door planned it.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::Versions;
use crate::error::GatewayError;
use crate::request::RequestCtx;
use crate::request::policy::{CallSite, Next, Outcome, Policy};
use crate::upstream::Call;

/// Refuses calls to retired methods (installed only when a version is retired).
#[derive(Debug)]
pub struct Retire(pub Arc<Versions>);

impl Policy for Retire {
    fn name(&self) -> &str {
        "retired versions"
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        match self.0.refuse(call.method.full_name()) {
            Ok(()) => next.run(ctx, site, call),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}
