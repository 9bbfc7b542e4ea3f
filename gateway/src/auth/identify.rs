//! The identify stage: the credentials a request presents become its [`Identity`], and the
//! identity metadata backends receive.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::request::Parts;
use serde_json::Value;
use tonic::metadata::{MetadataKey, MetadataValue};

use super::api_keys::ApiKeys;
use super::jwt::JwtVerifier;
use super::{Challenge, cert};
use crate::config::{AuthConfig, ForwardConfig};
use crate::error::GatewayError;
use crate::request::policy::Policy;
use crate::request::{Door, Identity, IdentityKind, RequestCtx};

/// The identify policy of an `auth` section.
#[derive(Debug)]
pub struct Identify {
    jwt: Option<Arc<JwtVerifier>>,
    api_keys: Option<ApiKeys>,
    certificates: bool,
    forward: ForwardConfig,
    /// Metadata names the gateway owns: a client's copies never reach a backend.
    strip: Vec<String>,
    challenge: Challenge,
}

impl Identify {
    /// The policy of `auth`, verifying tokens with `jwt` (when `auth.jwt` is set).
    pub fn new(auth: &AuthConfig, jwt: Option<Arc<JwtVerifier>>) -> Self {
        let f = &auth.forward;
        let mut strip: Vec<String> = [&f.subject, &f.scopes, &f.key_id, &f.plan]
            .into_iter()
            .flatten()
            .chain(f.claims.keys())
            .map(|n| n.to_ascii_lowercase())
            .collect();
        if !f.authorization {
            strip.push("authorization".into());
        }
        if let Some(k) = &auth.api_keys {
            // The key itself never goes to a backend.
            strip.push(k.header.to_ascii_lowercase());
        }
        Self {
            jwt,
            api_keys: auth.api_keys.as_ref().map(ApiKeys::new),
            certificates: auth.client_certificates,
            forward: auth.forward.clone(),
            strip,
            challenge: Challenge::new(auth),
        }
    }

    fn refuse(&self, message: impl Into<String>, invalid_token: bool) -> GatewayError {
        GatewayError::Unauthenticated {
            message: message.into(),
            challenge: self.challenge.header(invalid_token),
        }
    }

    /// The identity the request's credentials establish; `None` without credentials.
    async fn identify(
        &self,
        parts: &Parts,
        ctx: &RequestCtx,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        let mut identity: Option<Arc<Identity>> = None;
        if let Some(jwt) = &self.jwt {
            let mut values = parts.headers.get_all(AUTHORIZATION).iter();
            if let Some(value) = values.next() {
                if values.next().is_some() {
                    return Err(self.refuse("send one Authorization header, not several", false));
                }
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        let (scheme, token) = v.trim().split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                    })
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        self.refuse("the Authorization header must be `Bearer <token>`", false)
                    })?;
                match jwt.verify(token).await {
                    Ok(id) => identity = Some(id),
                    Err(why) => {
                        tracing::info!(reason = %why, "bearer token refused");
                        return Err(self.refuse(
                            "the bearer token is not valid (expired, not yet valid, or not issued for this API)",
                            true,
                        ));
                    }
                }
            }
        }
        if let Some(keys) = &self.api_keys
            && let Some(presented) = keys.presented(parts)
        {
            let Some(id) = keys.identify(&presented) else {
                tracing::info!("API key refused: not one of the configured keys");
                return Err(self.refuse("the API key is not valid", false));
            };
            match &mut identity {
                // A token and a key: the token says who, the key brings its plan.
                Some(by_token) => {
                    if by_token.plan.is_none() {
                        Arc::make_mut(by_token).plan = id.plan;
                    }
                }
                None => identity = Some(Arc::new(id)),
            }
        }
        if identity.is_none()
            && self.certificates
            && let Some(chain) = &ctx.client_cert
        {
            identity = cert::identity(chain).map(Arc::new);
        }
        Ok(identity)
    }

    /// Drops the client's copies of the identity metadata, then adds the caller's.
    fn rewrite_metadata(&self, ctx: &mut RequestCtx) {
        for name in &self.strip {
            ctx.metadata.remove(name.as_str());
        }
        let Some(id) = ctx.identity.clone() else {
            return;
        };
        let f = &self.forward;
        let mut put = |name: &Option<String>, value: Option<String>| {
            if let (Some(name), Some(value)) = (name, value) {
                insert(ctx, name, &value);
            }
        };
        put(&f.subject, Some(id.subject.clone()));
        put(
            &f.scopes,
            (!id.scopes.is_empty()).then(|| id.scopes.join(" ")),
        );
        put(
            &f.key_id,
            (id.kind == IdentityKind::ApiKey).then(|| id.subject.clone()),
        );
        put(&f.plan, id.plan.clone());
        for (header, claim) in &f.claims {
            if let Some(v) = id.claims.get(claim).and_then(claim_text) {
                insert(ctx, header, &v);
            }
        }
    }
}

/// A claim as one metadata value: strings as they are, lists of strings joined with commas,
/// anything else as compact JSON.
fn claim_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    })
}

/// Adds `name: value` to the call metadata; bytes a header value cannot carry (controls,
/// non-ASCII) are percent-encoded, as is `%` itself.
fn insert(ctx: &mut RequestCtx, name: &str, value: &str) {
    let mut text = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            text.push(b as char);
        } else {
            text.push_str(&format!("%{b:02X}"));
        }
    }
    if let (Ok(key), Ok(val)) = (
        MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()),
        MetadataValue::try_from(text.as_str()),
    ) {
        ctx.metadata.append(key, val);
    }
}

impl Policy for Identify {
    fn name(&self) -> &str {
        "identify"
    }

    fn on_request<'a>(
        &'a self,
        parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        async move {
            // Health and admin endpoints are the operators', not callers'.
            if ctx.door == Door::Admin {
                return Ok(());
            }
            ctx.identity = self.identify(parts, ctx).await?;
            self.rewrite_metadata(ctx);
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_header_text() {
        assert_eq!(claim_text(&Value::from("a b")).unwrap(), "a b");
        assert_eq!(
            claim_text(&serde_json::json!(["admin", "support"])).unwrap(),
            "admin,support"
        );
        assert_eq!(claim_text(&serde_json::json!(42)).unwrap(), "42");
        assert_eq!(
            claim_text(&serde_json::json!({"a": 1})).unwrap(),
            "{\"a\":1}"
        );
        assert!(claim_text(&Value::Null).is_none());
    }

    #[test]
    fn values_a_header_cannot_carry_are_percent_encoded() {
        let mut ctx = RequestCtx::internal(std::time::Duration::from_secs(1));
        insert(&mut ctx, "X-User-Name", "Zoë 100%\n");
        assert_eq!(
            ctx.metadata.get("x-user-name").unwrap().to_str().unwrap(),
            "Zo%C3%AB 100%25%0A"
        );
    }
}
