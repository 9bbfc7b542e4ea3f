//! Who is calling, and may they: the network, identify and authorize stages of the policy
//! chain, built from the `access`, `auth` and `authorization` sections.
//!
//! - [`Network`] (stage `Network`, first) refuses addresses the IP allow and deny lists keep
//!   out, before any credential is looked at.
//! - [`identify::Identify`] (stage `Identify`, once per request) reads the credentials a
//!   request presents: a JWT bearer token ([`jwt`]), an API key ([`api_keys`]), a client
//!   certificate the listener verified ([`cert`]). Credentials that do not check out are
//!   refused with 401, whatever the route; a request without any is anonymous. It then
//!   rewrites the identity metadata backends receive: the client's own copies of those
//!   headers are dropped first, so nobody can pass for someone else.
//! - [`authorize::Authorize`] (stage `Authorize`) checks every backend call against the rule
//!   of its gRPC method, whichever door planned it (REST route, GraphQL root or link field,
//!   operation endpoint), and every named GraphQL operation against the rule of its name:
//!   401 for an anonymous caller where one is needed, 403 for a missing scope or claim.

pub mod api_keys;
mod authorize;
pub mod cert;
mod identify;
pub mod jwt;
mod network;

use std::sync::Arc;

pub use authorize::Authorize;
pub use identify::Identify;
pub use jwt::JwtVerifier;
pub use network::Network;

use crate::config::{AuthConfig, Config};
use crate::request::policy::{Policy, Stage};

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "portico";

/// How a 401 says to identify (`WWW-Authenticate`), from what `auth` accepts.
#[derive(Clone, Debug, Default)]
pub struct Challenge {
    bearer: bool,
    api_key_header: Option<String>,
    certificate: bool,
}

impl Challenge {
    /// The challenge of the `auth` section.
    pub fn new(auth: &AuthConfig) -> Self {
        Self {
            bearer: auth.jwt.is_some(),
            api_key_header: auth
                .api_keys
                .as_ref()
                .map(|k| k.header.to_ascii_lowercase()),
            certificate: auth.client_certificates,
        }
    }

    /// The `WWW-Authenticate` value; `invalid_token` when a bearer token was refused.
    pub fn header(&self, invalid_token: bool) -> String {
        let mut parts = Vec::new();
        if self.bearer {
            parts.push(if invalid_token {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
            } else {
                format!("Bearer realm=\"{REALM}\"")
            });
        }
        if let Some(h) = &self.api_key_header {
            parts.push(format!("ApiKey realm=\"{REALM}\", header=\"{h}\""));
        }
        if self.certificate || parts.is_empty() {
            parts.push(format!("Certificate realm=\"{REALM}\""));
        }
        parts.join(", ")
    }

    /// What a caller may send, for messages: "a bearer token, an API key (x-api-key)".
    pub fn accepted(&self) -> String {
        let mut what = Vec::new();
        if self.bearer {
            what.push("`Authorization: Bearer <token>`".to_string());
        }
        if let Some(h) = &self.api_key_header {
            what.push(format!("an API key in the {h} header"));
        }
        if self.certificate {
            what.push("a client certificate".to_string());
        }
        if what.is_empty() {
            return "credentials (none are configured: set the auth section)".into();
        }
        what.join(" or ")
    }
}

/// The network, identify and authorize policies the config asks for, in stage order. `jwt` is a
/// verifier to reuse (the running snapshot's, on a reload that did not change `auth.jwt`):
/// its cached keys survive the reload, and a JWKS endpoint that is down at that moment does
/// not lock callers out.
pub async fn policies(
    config: &Config,
    jwt: Option<Arc<JwtVerifier>>,
) -> Result<(Vec<(Stage, Arc<dyn Policy>)>, Option<Arc<JwtVerifier>>), (String, String)> {
    let mut out: Vec<(Stage, Arc<dyn Policy>)> = Vec::new();
    if let Some(network) = config.access.as_ref().and_then(Network::new) {
        out.push((Stage::Network, Arc::new(network)));
    }
    let mut verifier = None;
    if let Some(auth) = &config.auth {
        if let Some(cfg) = &auth.jwt {
            let v = match jwt.filter(|v| v.config() == cfg) {
                Some(v) => v,
                None => {
                    let v = JwtVerifier::new(cfg, &config.base_dir)
                        .await
                        .map_err(|m| ("auth.jwt.jwks_file".to_string(), m))?;
                    v.refresh_periodically();
                    v
                }
            };
            verifier = Some(v);
        }
        out.push((
            Stage::Identify,
            Arc::new(Identify::new(auth, verifier.clone())),
        ));
    }
    if let Some(a) = Authorize::new(config.auth.as_ref(), config.authorization.as_ref()) {
        out.push((Stage::Authorize, Arc::new(a)));
    }
    Ok((out, verifier))
}
