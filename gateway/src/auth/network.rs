//! The network stage: IP allow and deny lists (the `access` section), for the whole listener
//! (every request), per gRPC method (every call to it, whichever door planned it), per REST
//! route and per named GraphQL operation. It goes by the client's address as the ingress resolved it
//! (`trusted_proxies`), runs before anything else, and refuses with 403.

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::request::Parts;

use crate::config::{AccessConfig, AccessList};
use crate::error::GatewayError;
use crate::request::policy::{Access, CallSite, Next, Outcome, Policy};
use crate::request::{Door, RequestCtx};
use crate::upstream::Call;

/// The network policy of an `access` section.
#[derive(Debug)]
pub struct Network {
    listener: AccessList,
    methods: HashMap<String, AccessList>,
    routes: HashMap<String, AccessList>,
    operations: HashMap<String, AccessList>,
}

impl Network {
    /// The policy of `access`; `None` when it lets everyone in everywhere.
    pub fn new(access: &AccessConfig) -> Option<Network> {
        let listener = access.listener();
        let keep = |m: &std::collections::BTreeMap<String, AccessList>| {
            m.iter()
                .filter(|(_, l)| !l.is_open())
                .map(|(k, l)| (k.clone(), l.clone()))
                .collect::<HashMap<_, _>>()
        };
        let (methods, routes, operations) = (
            keep(&access.methods),
            keep(&access.routes),
            keep(&access.operations),
        );
        if listener.is_open() && methods.is_empty() && routes.is_empty() && operations.is_empty() {
            return None;
        }
        Some(Network {
            listener,
            methods,
            routes,
            operations,
        })
    }

    fn check(list: &AccessList, ctx: &RequestCtx, what: &str) -> Result<(), GatewayError> {
        match ctx.client_ip {
            Some(ip) if !list.admits(ip) => {
                tracing::info!(client = %ip, what, "refused by an access list");
                Err(GatewayError::PermissionDenied(format!(
                    "{what} is not open to requests from this address"
                )))
            }
            _ => Ok(()),
        }
    }

    /// One line for the startup listing.
    pub fn describe(&self) -> String {
        format!(
            "access lists: listener allow {} / deny {} blocks; {} method, {} route and {} operation lists",
            self.listener.allow.len(),
            self.listener.deny.len(),
            self.methods.len(),
            self.routes.len(),
            self.operations.len()
        )
    }
}

impl Policy for Network {
    fn name(&self) -> &str {
        "network"
    }

    fn on_request<'a>(
        &'a self,
        _parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        // Health checks come from the platform, which must reach them whatever the lists say.
        let verdict = if ctx.door == Door::Admin {
            Ok(())
        } else {
            Self::check(&self.listener, ctx, "this gateway")
        };
        futures::future::ready(verdict).boxed()
    }

    fn on_access<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        access: &'a Access<'a>,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let verdict = match access {
            Access::Operation(name) => match self.operations.get(*name) {
                Some(list) => Self::check(list, ctx, &format!("the operation {name}")),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        futures::future::ready(verdict).boxed()
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        let method = call.method.full_name();
        let mut verdict = match self.methods.get(method) {
            Some(list) => Self::check(list, ctx, method),
            None => Ok(()),
        };
        if verdict.is_ok()
            && let CallSite::Route(route) = site
            && let Some(list) = self.routes.get(route.as_ref())
        {
            verdict = Self::check(list, ctx, route);
        }
        match verdict {
            Ok(()) => next.run(ctx, site, call),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}
