//! The authorize stage: every backend call against the rule of its gRPC method, every named
//! GraphQL operation against the rule of its name.

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::Challenge;
use crate::config::{AuthConfig, AuthorizationConfig, DefaultRule, Rule};
use crate::error::GatewayError;
use crate::request::policy::{Access, CallSite, Next, Outcome, Policy};
use crate::request::{Identity, RequestCtx};
use crate::upstream::Call;

/// The authorize policy of the `authorization` section.
#[derive(Debug)]
pub struct Authorize {
    default: Rule,
    methods: HashMap<String, Rule>,
    operations: HashMap<String, Rule>,
    introspection: Rule,
    graphiql: Rule,
    challenge: Challenge,
}

impl Authorize {
    /// The policy, when there is anything to enforce: with `auth` configured, every method no
    /// rule names needs an identified caller unless `authorization.default` is `anonymous`.
    pub fn new(auth: Option<&AuthConfig>, rules: Option<&AuthorizationConfig>) -> Option<Self> {
        let empty = AuthorizationConfig::default();
        let rules = rules.unwrap_or(&empty);
        let default = match rules.default {
            Some(DefaultRule::Anonymous) => true,
            Some(DefaultRule::Authenticated) => false,
            None => auth.is_none(),
        };
        let default = Rule {
            anonymous: default,
            ..Rule::default()
        };
        let anyone = Rule {
            anonymous: true,
            ..Rule::default()
        };
        let introspection = rules.introspection.clone().unwrap_or(default.clone());
        let graphiql = rules.graphiql.clone().unwrap_or(anyone);
        let nothing_to_do = [&default, &introspection, &graphiql]
            .into_iter()
            .chain(rules.methods.values())
            .chain(rules.operations.values())
            .all(|r| r.anonymous);
        if nothing_to_do {
            return None;
        }
        Some(Self {
            default,
            methods: rules.methods.clone().into_iter().collect(),
            operations: rules.operations.clone().into_iter().collect(),
            introspection,
            graphiql,
            challenge: auth.map(Challenge::new).unwrap_or_default(),
        })
    }

    /// Whether the caller of `ctx` may do what `rule` guards (`what`, for messages).
    fn check(&self, rule: &Rule, ctx: &RequestCtx, what: &str) -> Result<(), GatewayError> {
        if rule.anonymous {
            return Ok(());
        }
        let Some(id) = ctx.identity.as_deref() else {
            return Err(GatewayError::Unauthenticated {
                message: format!(
                    "{what} needs an identified caller: send {}",
                    self.challenge.accepted()
                ),
                challenge: self.challenge.header(false),
            });
        };
        if let Some(missing) = rule.scopes.iter().find(|s| !id.scopes.contains(s)) {
            return Err(GatewayError::PermissionDenied(format!(
                "{what} needs the scope {missing:?}, which the caller does not have"
            )));
        }
        for (claim, allowed) in &rule.claims {
            if !claim_matches(id, claim, allowed) {
                return Err(GatewayError::PermissionDenied(format!(
                    "{what} needs the claim {claim:?} to be one of {allowed:?}"
                )));
            }
        }
        Ok(())
    }
}

/// Whether the caller's claim `name` has (or, for a list, contains) one of `allowed`.
fn claim_matches(id: &Identity, name: &str, allowed: &[String]) -> bool {
    let one = |v: &Value| match v {
        Value::String(s) => allowed.iter().any(|a| a == s),
        Value::Number(_) | Value::Bool(_) => {
            let text = v.to_string();
            allowed.contains(&text)
        }
        _ => false,
    };
    match id.claims.get(name) {
        Some(Value::Array(items)) => items.iter().any(one),
        Some(v) => one(v),
        None => false,
    }
}

impl Policy for Authorize {
    fn name(&self) -> &str {
        "authorize"
    }

    fn on_access<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        access: &'a Access<'a>,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let verdict = match access {
            Access::Operation(name) => match self.operations.get(*name) {
                Some(rule) => self.check(rule, ctx, &format!("the operation {name}")),
                None => Ok(()),
            },
            Access::Introspection => self.check(&self.introspection, ctx, "introspection"),
            Access::Graphiql => self.check(&self.graphiql, ctx, "the GraphiQL page"),
            Access::Execute { .. } => Ok(()),
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
        let rule = self.methods.get(method).unwrap_or(&self.default);
        match self.check(rule, ctx, &format!("calling {method}")) {
            Ok(()) => next.run(ctx, site, call),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::request::IdentityKind;

    fn ctx(identity: Option<Identity>) -> RequestCtx {
        let mut c = RequestCtx::internal(std::time::Duration::from_secs(1));
        c.identity = identity.map(Arc::new);
        c
    }

    fn caller(scopes: &[&str], claims: Value) -> Identity {
        Identity {
            subject: "u1".into(),
            kind: IdentityKind::Jwt,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            claims: claims.as_object().cloned().unwrap_or_default(),
            plan: None,
        }
    }

    fn rules(yaml: &str) -> AuthorizationConfig {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn without_rules_an_auth_section_means_authenticated() {
        let auth = AuthConfig::default();
        let a = Authorize::new(Some(&auth), None).unwrap();
        assert!(!a.default.anonymous);
        assert!(Authorize::new(None, None).is_none());
        let open = rules("default: anonymous");
        assert!(Authorize::new(Some(&auth), Some(&open)).is_none());
    }

    #[test]
    fn scopes_and_claims_decide() {
        let r = rules(
            "methods:\n  a.S.Write: { scopes: [orders.write] }\n  a.S.Admin: { claims: { role: [admin, support] } }\n  a.S.Open: { anonymous: true }",
        );
        let a = Authorize::new(Some(&AuthConfig::default()), Some(&r)).unwrap();
        let write = &a.methods["a.S.Write"];
        let admin = &a.methods["a.S.Admin"];
        let open = &a.methods["a.S.Open"];
        assert!(a.check(open, &ctx(None), "x").is_ok());
        let e = a.check(write, &ctx(None), "x").unwrap_err();
        assert_eq!(e.http_status(), 401);
        assert!(matches!(e, GatewayError::Unauthenticated { .. }));
        let e = a
            .check(write, &ctx(Some(caller(&["orders.read"], json!({})))), "x")
            .unwrap_err();
        assert_eq!(e.http_status(), 403);
        assert!(e.client_message().contains("orders.write"), "{e}");
        assert!(
            a.check(write, &ctx(Some(caller(&["orders.write"], json!({})))), "x")
                .is_ok()
        );
        let c = |claims| ctx(Some(caller(&[], claims)));
        assert!(a.check(admin, &c(json!({"role": "support"})), "x").is_ok());
        assert!(
            a.check(admin, &c(json!({"role": ["user", "admin"]})), "x")
                .is_ok()
        );
        assert!(a.check(admin, &c(json!({"role": "user"})), "x").is_err());
        assert!(a.check(admin, &c(json!({})), "x").is_err());
        assert!(a.check(&a.default, &c(json!({})), "x").is_ok());
    }
}
